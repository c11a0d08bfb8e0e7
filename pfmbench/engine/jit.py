"""Numba glue: the on-disk cache keyed on all of the engine's sources, compiled twins of shared functions,
and compile-time speed-ups for the kernel.

Numba keys a cached function on its own source file only. A policy's compiled loop inlines the engine
(fast.py, costs.py, context.py, ...) and the catalog's accuracy curve from other files, so an edit
there would leave a stale kernel in the cache. This locator stamps every function compiled from a
pfmbench module with a hash of all the sources a kernel can include.

This module patches numba internals (the cache locators; in `compiling()` InlineWorker, get_call_type and
the IR scope copies; in `kernel_pipeline()` a pass of its own). They were written for and tested on
numba 0.68 (pyproject.toml bounds numba to the tested range). At import, each patched internal is checked
to exist with the signature the patch expects; if one does not, the patches of that concern are not
applied and one warning line says so: numba then compiles as it does unpatched (a slower first compile,
the same results; without the stamped cache locator, the twins compiled out of line are not cached on
disk, so none can be stale). `PFMBENCH_NUMBA_PATCHES=0` turns every patch off the same way, silently.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import os
import sys
import threading
import types
from contextlib import contextmanager
from pathlib import Path

import numba
from numba import njit
from numba.core import caching

_PKG = Path(__file__).resolve().parent.parent  # pfmbench/
_SOURCES = ("engine", "policies", "catalog.py")
_stamp: str | None = None


def sources_stamp() -> str:
    global _stamp
    if _stamp is None:
        h = hashlib.sha256()
        for part in _SOURCES:
            p = _PKG / part
            for f in sorted(f for f in p.rglob("*.py") if "__pycache__" not in f.parts) if p.is_dir() else [p]:
                h.update(f.name.encode())
                h.update(f.read_bytes())
        _stamp = h.hexdigest()
    return _stamp


# -- which patches apply to the numba installed ------------------------------------------------------------
PATCHES_SWITCH = "PFMBENCH_NUMBA_PATCHES"  # 0: numba as it comes (no patch at all)


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _numba_class(module, name: str):
    return getattr(module, name, None) or getattr(module, "_" + name, None)  # public since numba 0.5x


def _problems(checks: dict) -> list[str]:
    """The internals of `checks` (description -> a test) that are missing or not as a patch expects."""
    bad = []
    for what, test in checks.items():
        try:
            ok = test()
        except Exception:  # noqa: BLE001  (any failure means: not the internal the patch was written for)
            ok = False
        if not ok:
            bad.append(what)
    return bad


def _cache_problems() -> list[str]:
    """What the stamped cache locators (below) need of numba.core.caching."""
    def locator(name):
        cls = _numba_class(caching, name)
        return (isinstance(cls, type) and _params(cls.from_function) == ["py_func", "py_file"]
                and _params(cls.get_source_stamp) == ["self"] and callable(cls.get_cache_path))

    return _problems({
        "caching.CacheImpl._locator_classes": lambda: isinstance(_numba_class(caching, "CacheImpl")._locator_classes,
                                                                 list),
        "caching.InTreeCacheLocator.from_function(py_func, py_file)": lambda: locator("InTreeCacheLocator"),
        "caching.UserWideCacheLocator.from_function(py_func, py_file)": lambda: locator("UserWideCacheLocator"),
    })


def _fresh_scope(scope):
    """A copy of a numba IR scope that later definitions in one do not change in the other."""
    new = copy.copy(scope)
    new.localvars = copy.copy(scope.localvars)
    new.localvars._con = dict(scope.localvars._con)
    new.redefined = copy.copy(scope.redefined)
    new.var_redefinitions = copy.deepcopy(scope.var_redefinitions)
    return new


def _speedup_problems() -> list[str]:
    """What compiling() and kernel_pipeline() patch or subclass, with the signatures they rely on."""
    from numba.core import compiler, compiler_machinery, inline_closurecall, ir, ir_utils, untyped_passes
    from numba.core.types.functions import BaseFunction

    def scope():
        sc = ir.Scope(None, ir.Loc("<pfmbench check>", 0))
        fresh = _fresh_scope(sc)
        fresh.redefine("x", sc.loc)  # a copy's definitions must not reach the original
        return isinstance(sc.localvars._con, dict) and "x" not in sc.localvars._con

    return _problems({
        "InlineWorker.run_untyped_passes(self, func, enable_ssa)":
            lambda: _params(inline_closurecall.InlineWorker.run_untyped_passes) == ["self", "func", "enable_ssa"],
        "inline_closurecall.copy (the copy module)": lambda: inline_closurecall.copy is copy,
        "ir.Scope (localvars._con, redefined, var_redefinitions)": scope,
        "ir.Loc": lambda: isinstance(ir.Loc, type),
        "BaseFunction.get_call_type(self, context, args, kws)":
            lambda: _params(BaseFunction.get_call_type) == ["self", "context", "args", "kws"],
        "DefaultPassBuilder.define_nopython_pipeline(state, name)":
            lambda: _params(compiler.DefaultPassBuilder.define_nopython_pipeline)[:2] == ["state", "name"],
        "PassManager.add_pass_after(pass_cls, location)":
            lambda: _params(compiler_machinery.PassManager.add_pass_after) == ["self", "pass_cls", "location"],
        "compiler_machinery.FunctionPass, register_pass": lambda: callable(compiler_machinery.register_pass)
            and isinstance(compiler_machinery.FunctionPass, type),
        "untyped_passes.InlineInlinables": lambda: isinstance(untyped_passes.InlineInlinables, type),
        "Flags.enable_ssa": lambda: hasattr(compiler.Flags(), "enable_ssa"),
        "ir_utils.build_definitions(blocks), replace_vars(blocks, vardict)":
            lambda: _params(ir_utils.build_definitions)[:1] == ["blocks"]
            and _params(ir_utils.replace_vars) == ["blocks", "vardict"],
        "ir.Arg, ir.Expr.getattr, ir.Expr.static_getitem": lambda: isinstance(ir.Arg, type)
            and callable(ir.Expr.getattr) and callable(ir.Expr.static_getitem),
    })


PATCHES_ON = os.environ.get(PATCHES_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")
_missing = (_cache_problems(), _speedup_problems()) if PATCHES_ON else ([], [])
CACHE_STAMPED = PATCHES_ON and not _missing[0]  # the stamped locators are installed
SPEEDUPS = PATCHES_ON and not _missing[1]  # compiling() and kernel_pipeline() patch numba
if _missing[0] or _missing[1]:
    print(f"pfmbench: numba {numba.__version__}: {'; '.join(_missing[0] + _missing[1])}: not as pfmbench's patches "
          f"expect (written for numba 0.68); compiling without them: slower first compile, same results "
          f"({PATCHES_SWITCH}=0 silences this)", file=sys.stderr)

_InTree = _numba_class(caching, "InTreeCacheLocator") if CACHE_STAMPED else object
_UserWide = _numba_class(caching, "UserWideCacheLocator") if CACHE_STAMPED else object


class _Stamped:
    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            inside = Path(py_file).resolve().is_relative_to(_PKG)
        except (OSError, ValueError):
            inside = False
        return super().from_function(py_func, py_file) if inside else None

    def get_source_stamp(self):
        return sources_stamp()


class PackageInTreeLocator(_Stamped, _InTree):
    pass


class PackageUserWideLocator(_Stamped, _UserWide):
    pass


def _install() -> None:
    if not CACHE_STAMPED:
        return
    classes = _numba_class(caching, "CacheImpl")._locator_classes
    if PackageInTreeLocator in classes:
        return
    # After a user-provided NUMBA_CACHE_DIR (numba's first), before the per-file locators.
    at = 1 if classes and classes[0].__name__.endswith("UserProvidedCacheLocator") else 0
    classes[at:at] = [PackageInTreeLocator, PackageUserWideLocator]


_install()



def shared(fn=None, *, inline=True):
    """Mark a pure function that both engines call: the reference engine calls it as plain Python, compiled
    code calls its twin (`compiled`). `@shared(inline=False)`: compiled code calls one compiled function
    instead of inlining a copy at each call (for a step off the common path, or a small function of
    numbers, which LLVM inlines anyway: numba's inlining costs compile time at every copy)."""
    def mark(f):
        f.__pfmbench_shared__ = True
        f.__pfmbench_inline__ = inline
        return f
    return mark if fn is None else mark(fn)


_twins: dict = {}


def compiled(fn, **hooks):
    """fn compiled for the kernel, with the shared functions it calls compiled too: inlined where called,
    or (`@shared(inline=False)`) a function of its own, compiled and cached once and called by every
    kernel. `hooks` rebind other global names it calls (the fast loop's policy hooks)."""
    twin = None if hooks else _twins.get(fn)
    if twin is None:
        g = dict(fn.__globals__)  # a copy: the Python function keeps calling Python
        for name in fn.__code__.co_names:  # the globals it uses
            v = g.get(name)
            if v is not fn and getattr(v, "__pfmbench_shared__", False) is True:
                g[name] = compiled(v)
        g.update(hooks)
        f = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
        f.__module__, f.__qualname__, f.__doc__ = fn.__module__, fn.__qualname__, fn.__doc__
        if getattr(fn, "__pfmbench_inline__", True):
            twin = njit(inline="always")(f)
        else:  # called only from compiled code, which holds every array: no wrappers, no reference counts
            # Cached on disk only under the stamp (numba's own key, its file, would miss an edit elsewhere).
            twin = njit(cache=CACHE_STAMPED, nogil=True, _nrt=False, no_cpython_wrapper=True,
                        no_cfunc_wrapper=True)(f)
        if not hooks:
            _twins[fn] = twin
    return twin


_compile_lock = threading.Lock()


@contextmanager
def compiling():
    """Compile the kernel with less repeated work in numba's inliner and its signature resolution.

    - Numba's inliner runs the untyped pipeline of a callee at every call it inlines (each dlist_remove,
      decay, ... again, with all they inline in turn): while this is active, once per function, and each
      inlined call gets a copy of that IR with a scope of its own (the inliner adds names to it).
    - It deep-copies the callee's IR twice at each call (once to change, once kept unchanged and unused),
      and with it the variable scope (once per basic block) and every source location. The copy handed
      to it above is its own already, and scopes and locations are only read after a copy: while this
      is active, neither copy is made again, and copies share scopes and locations.
    - Numba resolves the signature of a builtin function or operator (`+` on two float64, `max`, an
      array's getitem) from scratch at every call site, once in type inference and again in lowering,
      trying each of its templates in turn (NumPy's ufunc rules for every `+` on numbers). The kernel has
      thousands of call sites and a few hundred distinct (function, argument types): while this is
      active, each is resolved once. A resolution depends only on the function, the argument types and
      the typing context (failures are not kept: they are tried again); the machine code is the same.
    On the kernel's hooks this repeated work was over a third of the compile time. Restored afterwards;
    one thread at a time. Without the speed-ups (SPEEDUPS false: see the module's docstring), only that.
    """
    if not SPEEDUPS:
        with _compile_lock:
            yield
        return
    from numba.core import inline_closurecall, ir
    from numba.core.inline_closurecall import InlineWorker
    from numba.core.types.functions import BaseFunction

    own: dict = {}  # id -> block, of the copies made below, which the inliner need not copy again (held: ids stay theirs)

    def deepcopy(x, memo=None):
        return x if id(x) in own else copy.deepcopy(x, memo)

    with _compile_lock:
        saved = {cls: cls.__dict__.get("__deepcopy__") for cls in (ir.Scope, ir.Loc)}
        for cls in saved:
            cls.__deepcopy__ = lambda self, memo: self
        untyped = InlineWorker.run_untyped_passes
        memo: dict = {}

        def run_untyped_passes(self, func, enable_ssa=False):
            key = (func, enable_ssa)
            if key not in memo:
                memo[key] = untyped(self, func, enable_ssa)
            fir = memo[key]
            blocks = fir.blocks
            scope = next(iter(blocks.values())).scope
            copies = {id(scope): _fresh_scope(scope)}
            out = fir.copy()
            out.blocks = {label: copy.deepcopy(block, copies) for label, block in blocks.items()}
            own.update((id(b), b) for b in out.blocks.values())
            return out

        resolve = BaseFunction.get_call_type
        resolved: dict = {}

        def get_call_type(self, context, args, kws):
            key = (self, id(context), args, tuple(kws.items()))
            sig = resolved.get(key)
            if sig is None:
                sig = resolved[key] = resolve(self, context, args, kws)
            return sig

        InlineWorker.run_untyped_passes = run_untyped_passes
        inline_closurecall.copy = types.SimpleNamespace(deepcopy=deepcopy)
        BaseFunction.get_call_type = get_call_type
        try:
            yield
        finally:
            BaseFunction.get_call_type = resolve
            inline_closurecall.copy = copy
            InlineWorker.run_untyped_passes = untyped
            for cls, method in saved.items():
                if method is None:
                    del cls.__deepcopy__
                else:
                    cls.__deepcopy__ = method


# -- the kernel's compiler: numba's nopython pipeline and one pass more -------------------------------------
def _collapse_aliases(func_ir) -> bool:
    """Give each part of the kernel's arguments one variable, read once at entry.

    Inlining a hook binds its parameters to copies of the caller's variables (`tab.3 = tab`), and each
    hook reads the arrays it needs again (`getattr(tab.3, 'mem_bytes')`). The kernel held hundreds of
    copies of the engine's records (Tables, EngineState, the policies' states) and of their arrays, each
    lowered as a stack slot that LLVM then had to take apart again (its SROA pass was the largest part of
    the compile). The arguments are records (NamedTuples and tuples, never arrays), immutable, with one
    value for the whole call, and so is every attribute read from them and every constant item of a
    tuple argument: each is read once in the entry block, and every copy of it becomes that variable.
    The code computed is unchanged."""
    from numba.core import ir
    from numba.core.ir_utils import build_definitions, replace_vars

    blocks = func_ir.blocks
    entry = blocks[min(blocks)]
    scope = entry.scope
    defs = build_definitions(blocks)
    args = {name for name, d in defs.items() if len(d) == 1 and isinstance(d[0], ir.Arg)}
    canon: dict = {}  # variable -> the variable holding its value at entry (None: not invariant)
    parts: dict = {}  # (base, op, attribute or index) -> variable read at entry
    reads = []  # the entry block's new statements, each after the ones it reads

    def canonical(name):
        if name in canon:
            return canon[name]
        canon[name] = None  # a cycle is not invariant
        d = defs.get(name, [])
        out = None
        if name in args:
            out = name
        elif len(d) == 1 and isinstance(d[0], ir.Var):
            out = canonical(d[0].name)
        elif len(d) == 1 and isinstance(d[0], ir.Expr) and d[0].op in ("getattr", "static_getitem"):
            e = d[0]
            base = canonical(e.value.name)
            # A constant item only of a tuple argument itself: `es.used[0]` reads an array, which changes.
            if base is not None and (e.op == "getattr" or base in args):
                key = (base, e.op, e.attr if e.op == "getattr" else e.index)
                if key not in parts:
                    var = scope.redefine("$pfm_entry", e.loc)
                    b = ir.Var(scope, base, e.loc)
                    value = (ir.Expr.getattr(b, e.attr, e.loc) if e.op == "getattr"
                             else ir.Expr.static_getitem(b, e.index, None, e.loc))
                    reads.append(ir.Assign(value, var, e.loc))
                    parts[key] = var.name
                out = parts[key]
        canon[name] = out
        return out

    vardict = {}
    for block in blocks.values():
        for stmt in block.body:
            if isinstance(stmt, ir.Assign) and isinstance(stmt.value, (ir.Var, ir.Expr)):
                if isinstance(stmt.value, ir.Expr) and stmt.value.op not in ("getattr", "static_getitem"):
                    continue
                c = canonical(stmt.target.name)
                if c is not None and c != stmt.target.name:
                    vardict[stmt.target.name] = ir.Var(scope, c, stmt.target.loc)
    if not vardict:
        return False
    for block in blocks.values():
        block.body = [s for s in block.body if not (isinstance(s, ir.Assign) and s.target.name in vardict)]
    at = max((i + 1 for i, s in enumerate(entry.body) if isinstance(s, ir.Assign) and isinstance(s.value, ir.Arg)),
             default=0)
    entry.body[at:at] = reads
    replace_vars(blocks, vardict)
    func_ir._definitions = build_definitions(blocks)
    return True


@functools.cache
def kernel_pipeline():
    """numba's compiler with _collapse_aliases run after inlining, and without SSA reconstruction (for
    `njit(pipeline_class=...)`); numba's own compiler without the speed-ups (SPEEDUPS false)."""
    if not SPEEDUPS:
        from numba.core.compiler import Compiler

        return Compiler
    from numba.core.compiler import CompilerBase, DefaultPassBuilder
    from numba.core.compiler_machinery import FunctionPass, register_pass
    from numba.core.untyped_passes import InlineInlinables

    @register_pass(mutates_CFG=False, analysis_only=False)
    class CollapseAliases(FunctionPass):
        _name = "pfmbench_collapse_aliases"

        def __init__(self):
            FunctionPass.__init__(self)

        def run_pass(self, state):
            return _collapse_aliases(state.func_ir)

    class KernelCompiler(CompilerBase):
        def define_pipelines(self):
            # Without numba's SSA reconstruction (a second of the compile): every variable of the loop and
            # its hooks keeps one type, which is all it needs, and the code made is the same.
            self.state.flags.enable_ssa = False
            pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
            pm.add_pass_after(CollapseAliases, InlineInlinables)
            pm.finalize()
            return [pm]

    return KernelCompiler
