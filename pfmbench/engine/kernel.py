"""The compiled kernel: the request loop (fast.replay_requests) with every built-in policy's hooks inlined
behind a switch at each call, generated from the registry: one kernel per group of
pfmbench.policies.BUILTIN_GROUPS, compiled when a policy of the group is first replayed; and of each, two
variants: the loop's constant ALL_OPTIONS set to True, or to False for a replay that uses none of MODEL.md §9's
options (Tables.all_options), so that LLVM drops their paths (issue 18: ~15% of the deciding thread's time).

Why one generated kernel, and the switch written out in the loop:
- A loop specialised per policy compiled in 2.5-6.6 s each (24 s for the six built-ins), where one loop
  with a switch compiles once and runs as fast (the switch takes the same branch on every request).
- A switch inside a helper function that receives every policy's state cost 10x in speed. Written out at
  the call site, each branch passes one policy's state.
- The kernel is compiled without numba's reference counting (`_nrt=False`): it allocates nothing, and its
  caller holds every array for the whole call. With counting, numba increfs and decrefs every array of a
  tuple each time the tuple enters an inlined hook (60 ns per call for a tuple of 10 arrays, 10x a
  request's work), and emitting those counts was a fifth of the compile time.
- It is compiled with one pass more in numba's pipeline (jit.kernel_pipeline: copies of the arguments
  made by inlining become one variable), and functions marked `@shared(inline=False)` are called, not
  inlined: compiled once for every group's kernel.
Numba caches only functions defined in a file, so the kernel is written as a small module (in the
package's __pycache__, or a user cache folder if that is read-only) whose name and text change whenever
the registry or any engine source does, and compiled and cached like any other.

The rules the loop's source (fast.replay_requests) must follow, because the kernel is made by rewriting
its text line by line (kernel_source checks rules 1-3 and raises KernelSourceError naming the file and
line):
1. A hook call (a name of HOOKS) is one statement on one line, exactly `hook(code, pss, ARGS)` or
   `TARGET = hook(code, pss, ARGS)`: one call per line, ARGS a plain argument list without hook calls, not
   split over lines, not inside an expression (`if admit(...)`, `x = 1 + admit(...)`). A hook name is read
   nowhere else in the loop.
2. Every other global name the loop reads is one of: a builtin (range, min, max, ...); a function marked
   `@jit.shared` (its compiled twin is carried over); a numba function (carried over as is); or a constant
   int, float or bool of the loop's module (carried over by value, `NAME = fast.NAME`). Anything else (a
   module, a list, a numpy array, a plain Python function) is refused: the generated module would not
   define it, and numba would fail inside the generated file.
3. The loop is one undecorated function of `(code, tab, es, pss, rq, log_on, log)` with no nested
   functions, lambdas or comprehensions, and reads no global named like the generated module's own names
   (fast, njit, compiled, kernel_pipeline, replay, p0, p1, ...).
4. Its arguments are records (NamedTuples, tuples) and numbers, never a bare array: the kernel's pass
   (jit._collapse_aliases) reads every attribute of an argument, and every constant item of a tuple
   argument, once at entry, which would be wrong for `arr[0]` of an array argument. Not checked here (the
   source has no types); it holds for the arguments FastEngine passes.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dis
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import tempfile
import textwrap
import types
from pathlib import Path

from . import fast
from .jit import sources_stamp

HOOKS = {  # hook -> what a policy module without it does (a function of engine/fast.py)
    "admit": "admit_always",
    "outranks": "outranks_always",
    "victim": "no_victim",
    "on_evict": "ignore",
    "on_insert": "ignore",
    "on_hit": "ignore_hit",
    "preload": "no_preload",
}
_CALL = re.compile(r"^(\s*)(?:(\w+) = )?(" + "|".join(HOOKS) + r")\(code, pss, (.*)\)$")


class KernelSourceError(ValueError):
    """The loop's source breaks a rule of the kernel generator (this module's docstring); names the line."""


_LOOP_ARGS = ["code", "tab", "es", "pss", "rq", "log_on", "log"]
_CONSTANTS = (int, float, bool)  # carried over by value


def _check_loop(loop, text: str, first: int, modules: list[str]) -> tuple[list[str], list[str], set[int]]:
    """Check the loop against the rules; return the global names to carry over (shared functions, others)
    and the line numbers of the hook calls."""
    path = inspect.getsourcefile(loop) or loop.__code__.co_filename
    lines = text.splitlines()

    def fail(lineno: int, why: str):
        src = lines[lineno - first].strip() if 0 <= lineno - first < len(lines) else ""
        raise KernelSourceError(f"{path}:{lineno}: {why} (rules: pfmbench/engine/kernel.py): {src}")

    if list(inspect.signature(loop).parameters) != _LOOP_ARGS:
        fail(first, f"the loop's parameters must be ({', '.join(_LOOP_ARGS)})")
    if lines and lines[0].lstrip().startswith("@"):
        fail(first, "the loop must not be decorated (the kernel module compiles it)")
    for c in loop.__code__.co_consts:
        if isinstance(c, types.CodeType):
            fail(c.co_firstlineno, "no nested function, lambda or comprehension in the loop")
    own = {"fast", "njit", "compiled", "kernel_pipeline", "replay", loop.__name__,
           *(f"p{i}" for i in range(len(modules)))}
    hook_lines: dict[int, int] = {}
    shared, carried = [], []
    for ins in dis.get_instructions(loop):
        if ins.opname not in ("LOAD_GLOBAL", "LOAD_NAME"):
            continue
        name, lineno = ins.argval, ins.positions.lineno
        if name in HOOKS:
            hook_lines[lineno] = hook_lines.get(lineno, 0) + 1
            continue
        if name in own:
            fail(lineno, f"the loop reads the global {name!r}, a name the generated module defines itself")
        if name not in loop.__globals__:
            if hasattr(builtins, name):
                continue
            fail(lineno, f"the loop reads {name!r}, which its module does not define")
        v = loop.__globals__[name]
        if getattr(v, "__pfmbench_shared__", False) is True:
            target = shared
        elif type(v) in _CONSTANTS or getattr(v, "py_func", None) is not None:  # a number, a numba function
            target = carried
        else:
            fail(lineno, f"the loop reads the global {name!r}, a {type(v).__name__}: only builtins, @shared "
                 "functions, numba functions and int/float/bool constants are carried into the kernel")
        if name not in target:
            target.append(name)
    for lineno, n in sorted(hook_lines.items()):
        line = lines[lineno - first]
        mt = _CALL.match(line)
        if n != 1 or not mt:
            fail(lineno, "a hook call must be one statement on one line, `[target =] hook(code, pss, ...)`")
        try:
            call = ast.parse(f"f({mt.group(4)})", mode="eval").body
        except SyntaxError:
            call = None
        if not isinstance(call, ast.Call):
            fail(lineno, "a hook call's arguments must be a plain argument list")
    return shared, carried, set(hook_lines)


def kernel_source(modules: list[str], loop=None, all_options: bool = True) -> str:
    """The text of the kernel module for these policy modules (policy code i = modules[i]), made from the loop
    (default: fast.replay_requests) under the rules above; raises KernelSourceError naming a line that breaks
    one."""
    loop = loop or fast.replay_requests
    raw, first = inspect.getsourcelines(loop)
    text = textwrap.dedent("".join(raw))
    shared, consts, hook_lines = _check_loop(loop, text, first, modules)
    out = []
    for lineno, line in enumerate(text.splitlines(), first):
        mt = _CALL.match(line) if lineno in hook_lines else None
        if not mt:
            out.append(line)
            continue
        indent, target, hook, args = mt.groups()
        assign = f"{target} = " if target else ""
        # A branch for each policy with its own hook; the others share one call of the default, which
        # ignores the policy's state (each inlined copy costs compile time, none costs speed).
        default = f"{assign}fast.{HOOKS[hook]}(pss[0], {args})"
        own = [i for i, mod in enumerate(modules) if hasattr(sys.modules[mod], hook)]
        if not own:
            out.append(indent + default)
            continue
        for k, i in enumerate(own):
            out += [f"{indent}{'elif' if k else 'if'} code == {i}:", f"{indent}    {assign}p{i}.{hook}(pss[{i}], {args})"]
        if len(own) < len(modules):
            out += [f"{indent}else:", f"{indent}    {default}"]
    lines = ["# Generated by pfmbench.engine.kernel from pfmbench.policies.BUILTINS; do not edit.",
             f"# engine sources {sources_stamp()[:16]}",
             "from numba import njit", "", f"import {loop.__module__} as fast",
             "from pfmbench.engine.jit import compiled, kernel_pipeline"]
    lines += [f"import {mod} as p{i}" for i, mod in enumerate(modules)]
    # ALL_OPTIONS is the kernel's variant (fast.py): False drops the paths of options a replay does not use.
    lines += [""] + [f"{n} = compiled(fast.{n})" for n in shared]
    lines += [f"{n} = {all_options}" if n == "ALL_OPTIONS" else f"{n} = fast.{n}" for n in consts]
    lines += ["", "", '@njit(inline="always")', *out, "", "",
              "@njit(nogil=True, cache=True, _nrt=False, pipeline_class=kernel_pipeline())", "def replay(code, tab, es, pss, rq, log_on, log):",
              f"    {loop.__name__}(code, tab, es, pss, rq, log_on, log)",
              ""]
    return "\n".join(lines)


_kernels: dict = {}


def _prune(folder: Path, prefix: str, keep: str) -> None:
    """Remove this group's kernels from older sources, with numba's cache files for them (a new kernel is
    written only when the sources changed, so the old one can never be loaded again)."""
    for f in [*folder.glob(prefix + "*"), *(folder / "__pycache__").glob(prefix + "*")]:  # numba's files
        if not f.name.startswith(keep[:-3]):
            with contextlib.suppress(OSError):
                f.unlink()


def load_kernel(modules: list[str], all_options: bool = True):
    """The kernel module for these policy modules, written if needed and imported once per process;
    all_options=False: the variant without MODEL.md §9's paths (Tables.all_options)."""
    key = (tuple(modules), all_options)
    if key in _kernels:
        return _kernels[key]
    for mod in modules:
        importlib.import_module(mod)
    text = kernel_source(modules, all_options=all_options)
    group = hashlib.sha256((" ".join(modules) + ("" if all_options else " lean")).encode()).hexdigest()[:6]
    name = f"kernel_{group}_{hashlib.sha256(text.encode()).hexdigest()[:12]}.py"
    path = None
    for folder in (Path(__file__).parent / "__pycache__",
                   Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pfmbench",
                   Path(tempfile.gettempdir()) / f"pfmbench-{os.getuid()}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            if not path.is_file() or path.read_text() != text:
                tmp = folder / f".{name}.{os.getpid()}.tmp"
                tmp.write_text(text)
                os.replace(tmp, path)  # atomic: another process may be reading it
                _prune(folder, f"kernel_{group}_", name)
            break
        except OSError:
            path = None
    if path is None:
        raise RuntimeError("pfmbench: no writable folder for the compiled kernel")
    spec = importlib.util.spec_from_file_location(f"pfmbench.engine._{name[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.MODULES = list(modules)
    _kernels[key] = module
    return module
