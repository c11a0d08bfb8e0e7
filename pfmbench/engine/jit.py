"""Numba's on-disk cache, keyed on all of the engine's sources.

Numba keys a cached function on its own source file only. A policy's compiled loop inlines the engine
(fast.py, costs.py, context.py, ...) and the catalog's accuracy curve from other files, so an edit
there would leave a stale kernel in the cache. This locator stamps every function compiled from a
pfmbench module with a hash of all the sources a kernel can include.
"""

from __future__ import annotations

import hashlib
import threading
import types
from contextlib import contextmanager
from pathlib import Path

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


_InTree = getattr(caching, "InTreeCacheLocator", None) or caching._InTreeCacheLocator
_UserWide = getattr(caching, "UserWideCacheLocator", None) or caching._UserWideCacheLocator


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
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    classes = impl._locator_classes
    if PackageInTreeLocator in classes:
        return
    # After a user-provided NUMBA_CACHE_DIR (numba's first), before the per-file locators.
    at = 1 if classes and classes[0].__name__.endswith("UserProvidedCacheLocator") else 0
    classes[at:at] = [PackageInTreeLocator, PackageUserWideLocator]


_install()



def shared(fn):
    """Mark a pure function that both engines call: the reference engine calls it as plain Python, compiled
    code calls its twin (`compiled`)."""
    fn.__pfmbench_shared__ = True
    return fn


_twins: dict = {}


def compiled(fn, **hooks):
    """fn compiled for the kernel (inlined where called), with the shared functions it calls compiled too;
    `hooks` rebind other global names it calls (the fast loop's policy hooks)."""
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
        twin = njit(inline="always")(f)
        if not hooks:
            _twins[fn] = twin
    return twin


_compile_lock = threading.Lock()


@contextmanager
def compiling():
    """Compile the kernel with a cheaper copy in numba's inliner.

    Numba's inliner deep-copies the callee's variable scope once per basic block, and a copied block only
    reads it: on the kernel's hooks that quadratic copying was a third of the compile time. While this is
    active, copies share the callee's scope (restored afterwards; one thread at a time).
    """
    from numba.core import ir

    with _compile_lock:
        saved = ir.Scope.__dict__.get("__deepcopy__")
        ir.Scope.__deepcopy__ = lambda self, memo: self
        try:
            yield
        finally:
            if saved is None:
                del ir.Scope.__deepcopy__
            else:
                ir.Scope.__deepcopy__ = saved
