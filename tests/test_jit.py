"""pfmbench/engine/jit.py's numba patches, each against unpatched numba, and the fallback when numba's
internals are not as the patches expect (or PFMBENCH_NUMBA_PATCHES=0): same results, one warning line."""

import json
import operator
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from numba import njit, types
from numba.core.inline_closurecall import InlineWorker
from numba.core.registry import cpu_target
from numba.core.types.functions import BaseFunction

from pfmbench.engine import jit

ROOT = Path(__file__).resolve().parent.parent
patched = pytest.mark.skipif(not jit.SPEEDUPS, reason="numba's compile-time patches are off (PFMBENCH_NUMBA_PATCHES=0 "
                             "or this numba's internals differ)")


# -- the builtin-signature cache -----------------------------------------------------------------------
CALLS = [
    (operator.add, (types.float64, types.float64)),
    (operator.add, (types.int64, types.float64)),
    (operator.lt, (types.int32, types.int64)),
    (operator.truediv, (types.int64, types.int64)),
    (max, (types.int64, types.float64)),
    (min, (types.float64, types.float64)),
    (abs, (types.int8,)),
    (operator.getitem, (types.Array(types.float64, 1, "C", readonly=True), types.intp)),
]


@patched
def test_signature_cache_resolves_as_numba_does_and_once():
    ctx = cpu_target.typing_context
    ctx.refresh()
    fns = [ctx.resolve_value_type(fn) for fn, _ in CALLS]
    unpatched = [fn.get_call_type(ctx, args, {}) for fn, (_, args) in zip(fns, CALLS, strict=True)]
    original = BaseFunction.get_call_type
    with jit.compiling():
        assert BaseFunction.get_call_type is not original
        first = [fn.get_call_type(ctx, args, {}) for fn, (_, args) in zip(fns, CALLS, strict=True)]
        again = [fn.get_call_type(ctx, args, {}) for fn, (_, args) in zip(fns, CALLS, strict=True)]
    assert BaseFunction.get_call_type is original  # restored
    assert first == unpatched and None not in first
    assert all(a is b for a, b in zip(first, again, strict=True))  # resolved once, then kept


@patched
def test_signature_cache_keeps_no_failures():
    """A failed resolution raises each time it is tried (nothing is kept for it)."""
    from numba.core.errors import TypingError

    ctx = cpu_target.typing_context
    fn = ctx.resolve_value_type(operator.add)
    args = (types.unicode_type, types.float64)
    with jit.compiling():
        for _ in range(2):
            with pytest.raises(TypingError):
                fn.get_call_type(ctx, args, {})


# -- the inliner: untyped passes once per function, private copies -----------------------------------------
@njit(inline="always")
def _twice(x):
    y = x + x
    return y


def _three_calls(a):
    return _twice(a) + _twice(a + 1) + _twice(a * 2)


@patched
def test_inliner_runs_a_functions_untyped_passes_once_and_inlines_the_same(monkeypatch):
    calls = []
    original = InlineWorker.run_untyped_passes

    def counting(self, func, enable_ssa=False):
        calls.append(func)
        return original(self, func, enable_ssa)

    monkeypatch.setattr(InlineWorker, "run_untyped_passes", counting)
    with jit.compiling():
        f = njit(_three_calls)
        assert f(3) == 2 * (3 + 4 + 6)
        assert f(2.5) == 2 * (2.5 + 3.5 + 5.0)
    assert calls.count(_twice.py_func) == 1  # three inlined calls, one untyped pipeline
    assert InlineWorker.run_untyped_passes is counting  # restored to what it was


def test_fresh_scope_is_independent_of_the_original():
    from numba.core import ir

    scope = ir.Scope(None, ir.Loc("<test>", 1))
    scope.define("a", scope.loc)
    copy = jit._fresh_scope(scope)
    copy.redefine("a", scope.loc)
    copy.define("b", scope.loc)
    assert "b" not in scope.localvars._con and "b" in copy.localvars._con
    assert scope.var_redefinitions != copy.var_redefinitions


# -- the kernel's pipeline: one pass more, the same results ------------------------------------------------
class Rec(NamedTuple):  # as the kernel's arguments: records of arrays and numbers, never a bare array
    xs: np.ndarray
    scale: float
    out: np.ndarray


@njit(inline="always")
def _weigh(r, i):
    return r.xs[i] * r.scale


def _total(r):
    for i in range(r.xs.shape[0]):
        r.out[0] += _weigh(r, i) + _weigh(r, i) / 3.0


@patched
def test_kernel_pipeline_collapses_copies_and_computes_the_same(monkeypatch):
    ran = []
    collapse = jit._collapse_aliases
    monkeypatch.setattr(jit, "_collapse_aliases", lambda func_ir: ran.append(collapse(func_ir)) or ran[-1])
    xs = np.linspace(0.1, 7.3, 11)
    plain, ours = Rec(xs, 1.7, np.zeros(1)), Rec(xs, 1.7, np.zeros(1))
    njit(_total)(plain)
    njit(pipeline_class=jit.kernel_pipeline())(_total)(ours)
    assert ran == [True]  # the pass ran once and rewrote the inlined copies
    assert ours.out[0] == plain.out[0] != 0  # bit for bit


# -- the stamped cache locator -----------------------------------------------------------------------------
def test_cache_locators_come_after_a_user_cache_dir_and_before_numbas():
    from numba.core import caching

    classes = jit._numba_class(caching, "CacheImpl")._locator_classes
    if not jit.CACHE_STAMPED:
        assert jit.PackageInTreeLocator not in classes
        return
    names = [c.__name__ for c in classes]
    assert names[:3] == ["UserProvidedCacheLocator", "PackageInTreeLocator", "PackageUserWideLocator"]


@pytest.mark.skipif(not jit.CACHE_STAMPED, reason="the stamped cache locator is off")
def test_a_package_function_is_cached_beside_its_source_under_the_sources_stamp(tmp_path, monkeypatch):
    """What numba writes for a function of the package: its index in the file's __pycache__, stamped with the
    hash of all engine sources (so an edit of any of them makes it stale); a function elsewhere: numba's own
    locator and stamp. The package is stood in for by a folder of this test's own."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    stamp = jit.sources_stamp()
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "elsewhere.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.setattr(jit, "_PKG", pkg)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(pkg))
    import elsewhere
    import mod

    inside = njit(cache=True)(mod.double)
    assert inside(21) == 42
    assert isinstance(inside._cache._impl.locator, jit.PackageInTreeLocator)
    index = list((pkg / "__pycache__").glob("mod.double-*.nbi"))
    assert len(index) == 1
    with open(index[0], "rb") as f:
        pickle.load(f)  # numba's version
        written_stamp, _ = pickle.loads(f.read())
    assert written_stamp == stamp

    outside = njit(cache=True)(elsewhere.triple)
    assert outside(2) == 6
    assert type(outside._cache._impl.locator).__module__ == "numba.core.caching"


# -- the fallback -----------------------------------------------------------------------------------------
REPLAY = """
import json, sys
import pfmbench
r = pfmbench.replay(sys.argv[1], policy="active", gpu_memory_gb=40)
print(json.dumps(r.summary if hasattr(r, "summary") else r, default=str, sort_keys=True))
"""

BREAK_GET_CALL_TYPE = """
from numba.core.types.functions import BaseFunction
_original = BaseFunction.get_call_type
def get_call_type(self, context, args, kws, literal_hint=None):  # a numba of another signature
    return _original(self, context, args, kws)
BaseFunction.get_call_type = get_call_type
"""


def _run(code: str, *args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=900, check=False)


def test_the_switch_turns_every_patch_off_silently():
    out = _run("import pfmbench.engine.jit as j; from numba.core import caching\n"
               "print(j.PATCHES_ON, j.CACHE_STAMPED, j.SPEEDUPS, j.kernel_pipeline().__name__, "
               "j.PackageInTreeLocator in caching.CacheImpl._locator_classes)", env={"PFMBENCH_NUMBA_PATCHES": "0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False", "Compiler", "False"]
    assert out.stderr == ""


def test_an_internal_of_another_signature_falls_back_with_one_warning_line():
    out = _run(BREAK_GET_CALL_TYPE + "import pfmbench.engine.jit as j\nprint(j.SPEEDUPS, j.CACHE_STAMPED)",
               env={"PFMBENCH_NUMBA_PATCHES": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]  # the cache's internals are still as expected
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "BaseFunction.get_call_type" in lines[0] and "same results" in lines[0]


def test_the_fallback_replays_the_same_numbers(tmp_path):
    """A replay compiled by unpatched numba (fresh cache, so it really compiles) against the patched one."""
    import pfmbench

    trace = tmp_path / "t.parquet"
    pfmbench.synth(requests=400, rate=1.0, alpha=0.9, seed=3).write_parquet(trace)
    code = textwrap.dedent(REPLAY)
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "PFMBENCH_NUMBA_PATCHES": "1"}
    fallback = _run(BREAK_GET_CALL_TYPE + code, str(trace), env=env)
    assert fallback.returncode == 0, fallback.stderr
    assert "BaseFunction.get_call_type" in fallback.stderr and "same results" in fallback.stderr
    patched_run = _run(code, str(trace), env={"PFMBENCH_NUMBA_PATCHES": "1"})
    assert patched_run.returncode == 0, patched_run.stderr
    assert json.loads(fallback.stdout.splitlines()[-1]) == json.loads(patched_run.stdout.splitlines()[-1])
