"""Accounting on a second thread (engine/accountant.py, issue 18) gives the same results, bit for bit, as
accounting inline on the replaying thread."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import cases

from pfmbench.engine import accountant
from pfmbench.engine.fast import FastEngine, next_uses
from pfmbench.engine.record import RequestLog, new_log
from pfmbench.policies import builtin_modules, builtin_names, get_policy

POLICIES = [n for n in builtin_names() if get_policy(n).fast]


def replay(tables, trace, policy, seed, chunk, thread, logged=()):
    """Totals and the engine state after replaying `trace` in chunks; chunks whose index is in `logged` fill
    a per-request log (which keeps their accounting on the replaying thread)."""
    engine = FastEngine(tables, get_policy(policy, seed), seed, account_thread=thread)
    n = len(trace.ts)
    nxt = next_uses(tables.pair_model[trace.pair]) if get_policy(policy).needs_next_use else None
    for k, s in enumerate(range(0, n, chunk)):
        part = trace.slice(s, s + chunk)
        log = RequestLog(*new_log(len(part.ts))) if k in logged else None
        engine.run(part, log, nxt[s:s + chunk] if nxt is not None else None)
    return engine


def assert_identical(a, b):
    for x, y in zip(a.totals[:3], b.totals[:3]):
        np.testing.assert_array_equal(x.view(np.int64), y.view(np.int64))  # bits: sums in the same order
    for name, x in a.state._asdict().items():
        if isinstance(x, np.ndarray) and name != "defer":
            np.testing.assert_array_equal(x, getattr(b.state, name), err_msg=name)


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of a few requests, handed over from the first chunk on: every hand-over path is exercised."""
    monkeypatch.setattr(accountant, "PIECE", 5)
    monkeypatch.setattr(accountant, "MIN_ROWS", 1)


@pytest.mark.usefixtures("small_pieces")
@settings(max_examples=120, deadline=None)
@given(data=st.data(), policy=st.sampled_from(POLICIES), chunk=st.integers(1, 40),
       logged=st.sets(st.integers(0, 8), max_size=3))
def test_accounting_thread_gives_the_same_bits(data, policy, chunk, logged):
    _, sc, trace, tables = data.draw(cases())
    inline = replay(tables, trace, policy, sc.seed, chunk, False)
    threaded = replay(tables, trace, policy, sc.seed, chunk, True, logged)
    assert_identical(inline, threaded)


def test_the_two_thread_path_and_the_single_thread_path_agree_on_a_trace(small_pieces, tmp_path):
    """The default scenario's trace (20,000 requests, a warm-up of 500), every policy whose loop does not
    account itself: handed over in pieces of 5 on a second thread, and accounted inline."""
    from pfmbench.api import resolve, scenario_trace
    from pfmbench.engine.tables import build_tables
    from pfmbench.trace.schema import read_trace

    sc, cat, _ = resolve(warmup_requests=500)
    trace = read_trace(scenario_trace(sc, cat), cat)
    tables = build_tables(sc, cat)
    for policy in ("lc", "lru", "fifo", "lfu", "random", "belady"):
        a = replay(tables, trace, policy, sc.seed, 4096, False)
        b = replay(tables, trace, policy, sc.seed, 4096, True)
        assert b.accountant is not None
        assert_identical(a, b)


def test_policies_that_load_for_no_request_account_inline():
    """Their loop writes the load counters the accounting writes too: no second thread for them."""
    import importlib
    import inspect

    for name in builtin_names():
        if not get_policy(name).fast:
            continue
        mod = importlib.import_module(builtin_modules((get_policy(name).fast,))[0])
        src = inspect.getsource(mod)
        loads = "place_model" in src or "preload_model" in src
        assert getattr(mod, "LOADS_FOR_NO_REQUEST", False) == loads, name


def test_environment_turns_the_thread_off(monkeypatch):
    from pfmbench.api import resolve
    from pfmbench.engine.tables import build_tables

    sc, cat, _ = resolve()
    tables = build_tables(sc, cat)
    monkeypatch.setenv("PFMBENCH_ACCOUNT_THREAD", "0")
    assert FastEngine(tables, get_policy("lru"), 0).accountant is None
    monkeypatch.setenv("PFMBENCH_ACCOUNT_THREAD", "1")
    assert FastEngine(tables, get_policy("lru"), 0).accountant is not None
    assert FastEngine(tables, get_policy("active"), 0).accountant is None


@pytest.mark.parametrize("preset", [None, "1"])
def test_ray_tasks_filling_the_cluster_account_inline(monkeypatch, preset):
    """A Ray task among as many as the cluster has CPUs keeps its accounting inline, unless the user said."""
    import os

    from pfmbench.sweep import point

    if preset is None:
        monkeypatch.delenv("PFMBENCH_ACCOUNT_THREAD", raising=False)
    else:
        monkeypatch.setenv("PFMBENCH_ACCOUNT_THREAD", preset)
    monkeypatch.setattr(point, "run_point", lambda p: ([{"point": p}], None))
    assert point.run_point_cores_busy("p") == ([{"point": "p"}], None)
    assert os.environ["PFMBENCH_ACCOUNT_THREAD"] == (preset or "0")
    assert accountant.enabled() == (preset == "1")
