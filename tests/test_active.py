"""`active` (predictive caching with preloading in idle time): preloads counted and costed, causal, and
honest about a load still running when the request arrives. fast = reference for it is in test_engines.py
(which reads the registry)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import cases
from test_engines import assert_same, fast_replay

from pfmbench.catalog import Catalog, Model, Task
from pfmbench.engine import record as C
from pfmbench.engine.reference import replay_reference
from pfmbench.engine.tables import build_tables
from pfmbench.policies import get_policy
from pfmbench.results import summarize
from pfmbench.scenario import Scenario
from pfmbench.trace.schema import TraceArrays


def two_models(executors=1):
    """A and B, 6 GB each, on a 10 GB GPU: only one fits at a time."""
    task = (Task("t", 10, 20, 30, 8),)
    cat = Catalog((Model("A", "LFM", 1.0, 1.0, "fp16", 6.0, 8.0, task),
                   Model("B", "LFM", 1.0, 1.0, "fp16", 6.0, 8.0, task)))
    sc = Scenario()
    sc.edge.gpu_memory_gb = 10.0
    sc.edge.executors = executors
    return build_tables(sc.validate(), cat)


def trace(ts, models):
    n = len(ts)
    return TraceArrays(np.array(ts, float), np.array(models, np.int32), np.ones(n), np.ones(n))


def both(tables, tr):
    """(fast engine, fast log, reference (counts, sums, hist, log))."""
    engine, log = fast_replay(tables, tr, "active", 0)
    return engine, log, replay_reference(tables, tr, get_policy("active"), log=True)


def test_a_preload_in_an_idle_gap_is_counted_and_costed_as_a_load():
    tables = two_models()
    L = tables.load_time[0]  # 0.5 s + 6 GB / 12.9 GB/s, both models
    # A three times, then B (a miss: evicts A). In the gap after B, A forecasts 2.67 against B's 1.0: A is
    # preloaded (evicting B) as soon as B's load and request are done, so A's next request is a hit.
    tr = trace([0, 1, 2, 100, 1000], [0, 0, 0, 1, 0])
    engine, log, (counts, sums, _, ref_log) = both(tables, tr)
    for c, s, lg in ((engine.counts, engine.sums, log), (counts, sums, ref_log)):
        assert c[C.C_PRELOADS] == 1 and c[C.C_LOADS] == 2 and c[C.C_HITS] == 3 and c[C.C_EVICTIONS] == 2
        assert list(lg["outcome"]) == [C.LOAD, C.HIT, C.HIT, C.LOAD, C.HIT]
        assert lg["wait"][4] == 0.0
        # three loads of 6 GB (two for requests, one preload, in sums of its own), each L s + 300 W · L s / 1000
        assert s[C.S_SWITCHING] == pytest.approx(2 * (L + 300.0 * L / 1000.0), rel=1e-12)
        assert s[C.S_LOAD_ENERGY] == pytest.approx(2 * 300.0 * L, rel=1e-12)
        assert s[C.S_LOAD_TIME] == pytest.approx(2 * L, rel=1e-12)
        assert s[C.S_PRELOAD_SWITCHING] == L + 300.0 * L / 1000.0
        assert s[C.S_PRELOAD_ENERGY] == 300.0 * L and s[C.S_PRELOAD_TIME] == L
        # the per-request log carries the two requests' loads only
        assert lg["switching_cost"].sum() == pytest.approx(2 * (L + 0.3 * L), rel=1e-12)
    assert summarize(engine.counts, engine.sums, engine.hist, Scenario(), "active", "t", "c")["preloads"] == 1


def test_a_request_arriving_during_its_preload_waits_for_it():
    tables = two_models()
    L = tables.load_time[0]
    # B's request at 100 occupies the executor until 100 + L + compute; A's preload starts then and runs
    # past the next request (for A) at 100 + L + 0.5 s: that request waits for the load to finish.
    _, log, _ = both(tables, trace([0, 1, 2, 100], [0, 0, 0, 1]))
    b_done = 100.0 + log["latency"][3]  # B's request: its load and compute (no queue)
    arrival = 100.0 + L + 0.5
    assert b_done < arrival
    engine, log, (counts, _, _, ref_log) = both(tables, trace([0, 1, 2, 100, arrival], [0, 0, 0, 1, 0]))
    assert engine.counts[C.C_PRELOADS] == counts[C.C_PRELOADS] == 1
    assert log["outcome"][4] == ref_log["outcome"][4] == C.HIT
    want = b_done + L - arrival
    assert log["wait"][4] == pytest.approx(want, rel=1e-9) and ref_log["wait"][4] == pytest.approx(want, rel=1e-9)


def test_no_preload_without_idle_time_or_before_the_request_that_shows_the_demand():
    tables = two_models()
    # The next request arrives while the executor is still busy with B's load: no idle time, no preload.
    engine, log, (counts, _, _, _) = both(tables, trace([0, 1, 2, 100, 100.1], [0, 0, 0, 1, 0]))
    assert engine.counts[C.C_PRELOADS] == counts[C.C_PRELOADS] == 0
    assert log["outcome"][4] == C.LOAD
    # A single request for A before B: A's forecast (1.0, decayed) does not beat B's by the margin of 2.
    engine, _, (counts, _, _, _) = both(tables, trace([0, 100, 1000], [0, 1, 0]))
    assert engine.counts[C.C_PRELOADS] == counts[C.C_PRELOADS] == 0


def test_two_models_requested_alike_are_not_swapped_in_idle_time():
    """A and B in turn, one slot: neither forecasts twice the other's demand, so nothing is preloaded and every
    request loads its model, as a reactive policy would."""
    tables = two_models()
    ts = np.arange(0, 2000, 20.0)
    engine, _, (counts, _, _, _) = both(tables, trace(ts, [0, 1] * (len(ts) // 2)))
    assert engine.counts[C.C_PRELOADS] == counts[C.C_PRELOADS] == 0
    assert engine.counts[C.C_LOADS] == len(ts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_preloads_are_causal(data):
    """Preloads before request i use nothing of request i: changing its model changes none of them (the
    preloads made before it are the last ones counted)."""
    _, sc, tr, tables = data.draw(cases())
    other = data.draw(st.integers(0, len(tables.pair_model) - 1))
    changed = TraceArrays(tr.ts, np.concatenate([tr.pair[:-1], np.array([other], np.int32)]), tr.units, tr.input_mb)
    a, _ = fast_replay(tables, tr, "active", sc.seed)
    b, _ = fast_replay(tables, changed, "active", sc.seed)
    assert a.counts[C.C_PRELOADS] == b.counts[C.C_PRELOADS]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_preload_costs_are_the_sum_of_loads(data):
    """Switching cost, load energy and load time: the log's loads, and apart the preloads, each a whole load."""
    _, sc, tr, tables = data.draw(cases())
    engine, log = fast_replay(tables, tr, "active", sc.seed)
    s = engine.sums
    first = engine.measure_from_seq  # the log has the warm-up's rows too; the sums only the measured ones
    measured = log["switching_cost"][first:].sum() if first >= 0 else 0.0
    assert s[C.S_SWITCHING] == pytest.approx(measured, rel=1e-9, abs=1e-12)
    for energy, time in ((C.S_LOAD_ENERGY, C.S_LOAD_TIME), (C.S_PRELOAD_ENERGY, C.S_PRELOAD_TIME)):
        assert s[energy] == pytest.approx(tables.power_w * s[time], rel=1e-9, abs=1e-12)
    # each preload: its load time + its energy (kJ) + the wear of a load
    assert s[C.S_PRELOAD_SWITCHING] == pytest.approx(
        s[C.S_PRELOAD_TIME] + s[C.S_PRELOAD_ENERGY] / 1000.0 + tables.wear_per_load * engine.counts[C.C_PRELOADS],
        rel=1e-9, abs=1e-12)
    if engine.counts[C.C_PRELOADS] == 0:
        assert s[C.S_PRELOAD_SWITCHING] == s[C.S_PRELOAD_ENERGY] == s[C.S_PRELOAD_TIME] == 0.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), chunk=st.integers(1, 40))
def test_fast_engine_agrees_with_reference_request_by_request(data, chunk):
    """test_engines.py covers every built-in; this gives `active` more examples, and chunks (the previous
    request, which the next preloads learn from, is carried across a chunk's end)."""
    _, sc, tr, tables = data.draw(cases())
    ref = replay_reference(tables, tr, get_policy("active", sc.seed), sc.seed, log=True)
    engine, log = fast_replay(tables, tr, "active", sc.seed, chunk=chunk)
    assert_same(engine, log, ref)
