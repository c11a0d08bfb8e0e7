"""opt (pfmbench/opt/): never above any policy, equal to a search of every decision sequence with no
pruning, reproduced by replaying its decisions; its lower bound never above opt or any policy."""

import itertools
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import tasks
from test_results_doc import DOC

from pfmbench import opt
from pfmbench.catalog import Catalog, Model
from pfmbench.engine.record import CLOUD
from pfmbench.engine.reference import ReferenceEngine, replay_reference
from pfmbench.engine.tables import ADMISSION_CODES, DISPATCH_CODES, build_tables
from pfmbench.errors import InputError
from pfmbench.policies import get_policy, policy_names
from pfmbench.results import OPT_COLUMNS, summarize
from pfmbench.scenario import Scenario
from pfmbench.trace.schema import TraceArrays

POLICIES = policy_names()  # every built-in
REACTIVE = [p for p in POLICIES if p not in ("active", "random-placement")]  # load only when a request asks
#   (random-placement places a random model for no request: outside opt's decision space, as active's preloads)
TOL = 1e-9


def close_below(a, b):
    """a <= b up to rounding (sums of the same terms added in another order)."""
    return a <= b + TOL * max(1.0, abs(b))


@st.composite
def small_cases(draw, max_requests=8, max_models=4):
    """A catalog of a few models of varied sizes (one may exceed the GPU), a small GPU, 1-2 executors,
    varied weights, context and serving settings, and a short trace."""
    n = draw(st.integers(1, max_models))
    models = []
    for i in range(n):
        icl = draw(st.booleans())
        ts = tuple(draw(tasks(icl))(f"t{j}") for j in range(draw(st.integers(1, 2))))
        mem = draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0, 9.0]))
        window = float(draw(st.sampled_from([1, 4, 64]))) if icl else 0.0
        models.append(Model(f"M{i}", "LFM" if icl else "VFM", 100.0, draw(st.floats(0.5, 500)), "fp16", mem, window, ts))
    cat = Catalog(tuple(models), "hypothesis")
    sc = Scenario(name="opt")
    sc.edge.gpu_memory_gb = draw(st.sampled_from([2.0, 4.0, 6.0]))
    sc.edge.executors = draw(st.integers(1, 2))
    sc.edge.load_overhead_s = draw(st.sampled_from([0.0, 0.5, 2.0]))
    sc.edge.radio_rtt_s = draw(st.sampled_from([0.0, 0.005]))
    sc.context.utility = draw(st.sampled_from(["exp", "linear", "none"]))
    sc.context.half_life_s = draw(st.sampled_from([1.0, 30.0]))
    sc.context.linear_rate = draw(st.sampled_from([0.01, 0.5]))
    sc.context.relevance = draw(st.sampled_from([0.0, 0.5]))
    sc.cloud.price_per_request = draw(st.sampled_from([0.0, 0.05, 1.0, 5.0]))
    sc.cloud.price_per_tflop = draw(st.sampled_from([0.0, 0.01]))
    sc.weights.switch = draw(st.sampled_from([0.0, 0.2, 1.0]))
    sc.weights.accuracy = draw(st.sampled_from([1.0, 20.0]))
    sc.weights.latency = draw(st.sampled_from([0.5, 1.0]))
    sc.weights.cloud = draw(st.sampled_from([0.0, 1.0]))
    sc.weights.cloud_latency = draw(st.sampled_from([0.0, 1.0]))
    sc.weights.wear_per_load = draw(st.sampled_from([0.0, 1.5]))
    sc.serving.cost_horizon_s = draw(st.sampled_from([1.0, 600.0]))
    sc.seed = draw(st.integers(0, 2**32))
    sc.validate()
    k = draw(st.integers(1, max_requests))
    pairs = len(cat.pairs)
    gaps = draw(st.lists(st.sampled_from([0.0, 0.05, 1.0, 30.0]), min_size=k, max_size=k))
    trace = TraceArrays(np.cumsum(gaps) - gaps[0], np.array(draw(st.lists(st.integers(0, pairs - 1), min_size=k,
                                                                         max_size=k)), np.int32),
                        np.array(draw(st.lists(st.sampled_from([1.0, 64.0, 256.0]), min_size=k, max_size=k))),
                        np.array(draw(st.lists(st.sampled_from([0.0, 0.5]), min_size=k, max_size=k))))
    return cat, sc, trace, build_tables(sc, cat)


def system_cost(tables, sc, totals):
    return summarize(totals.counts, totals.sums, totals.hist, sc, "x", "t", "c")["system_cost"]


def policy_cost(tables, sc, policy, trace):
    counts, sums, hist, _ = replay_reference(tables, trace, get_policy(policy, sc.seed), sc.seed)
    return summarize(counts, sums, hist, sc, policy, "t", "c")["system_cost"]


def enumerate_all(tables, trace):
    """The minimum over the general decision space with no pruning: before each request evict any set of
    cached models (the model itself included), then serve at the edge (if it is or now fits in memory)
    or offload."""
    tr = opt._as_lists(tables, trace)
    best = [np.inf]

    def go(i, state, cost):
        if i == len(tr.ts):
            best[0] = min(best[0], cost)
            return
        cached = [v for v in range(tables.n_models) if state.cached >> v & 1]
        m = tr.model[i]
        for r in range(len(cached) + 1):
            for victims in itertools.combinations(cached, r):
                freed = sum(int(tables.mem_bytes[v]) for v in victims)
                still = m in cached and m not in victims
                for edge in (False, True):
                    if edge and not still and state.used - freed + int(tables.mem_bytes[m]) > tables.capacity_bytes:
                        continue
                    child = state.copy()
                    go(i + 1, child, cost + opt._step(tables, child, tr, i, opt.Decision(victims, edge)))

    go(0, opt._State.empty(tables), 0.0)
    return best[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=small_cases())
def test_opt_is_never_above_any_policy_under_any_rule(case):
    _, sc, trace, tables = case
    r = opt.solve(tables, trace, exact=True)
    assert r.exact
    totals, _ = opt.replay_decisions(tables, trace, r.decisions)
    assert system_cost(tables, sc, totals) == r.system_cost  # its decisions, replayed, cost exactly that
    bound = opt.lower_bound(tables, trace)
    assert close_below(bound, r.system_cost)
    for admission, dispatch in itertools.product(["always", "outrank", "cost", "default"], DISPATCH_CODES):
        t = tables._replace(admission=ADMISSION_CODES[admission], dispatch=DISPATCH_CODES[dispatch])
        for policy in REACTIVE:
            cost = policy_cost(t, sc, policy, trace)
            assert close_below(r.system_cost, cost), (admission, dispatch, policy, r.system_cost, cost)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=small_cases(max_requests=5, max_models=3))
def test_opt_equals_exhaustive_enumeration(case):
    _, _, trace, tables = case
    r = opt.solve(tables, trace, exact=True)
    assert r.system_cost == pytest.approx(enumerate_all(tables, trace), rel=TOL, abs=TOL)


class _Recording(ReferenceEngine):
    """The reference engine, noting each request's victims."""

    def run(self, trace, log=None, next_use=None):
        self.victims = []
        super().run(trace, log, next_use)

    def request(self, i, *args):
        self.victims.append([])
        super().request(i, *args)

    def _evict(self, entry, now):
        self.victims[-1].append(entry.model)
        super()._evict(entry, now)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=small_cases(max_requests=30), policy=st.sampled_from(REACTIVE),
       admission=st.sampled_from(list(ADMISSION_CODES)), dispatch=st.sampled_from(list(DISPATCH_CODES)))
def test_a_policys_own_decisions_replayed_cost_what_the_engine_says(case, policy, admission, dispatch):
    """opt costs decisions with the engines' functions: a policy's decisions, replayed by opt, give the
    reference engine's sums exactly (the counts of declined and dispatched requests aside)."""
    _, sc, trace, tables = case
    tables = tables._replace(admission=ADMISSION_CODES[admission], dispatch=DISPATCH_CODES[dispatch])
    p = get_policy(policy, sc.seed)
    eng = _Recording(tables, p, sc.seed)
    from pfmbench.engine.fast import next_uses
    from pfmbench.engine.record import new_log

    log = new_log(len(trace.ts))
    eng.run(trace, log, next_uses(tables.pair_model[trace.pair]) if p.needs_next_use else None)
    decisions = [opt.Decision(tuple(v), int(o) != CLOUD) for v, o in zip(eng.victims, log.outcome, strict=True)]
    totals, _ = opt.replay_decisions(tables, trace, decisions)
    np.testing.assert_array_equal(totals.sums, eng.sums)
    np.testing.assert_array_equal(totals.hist, eng.hist)
    assert system_cost(tables, sc, totals) >= opt.solve(tables, trace).system_cost - TOL


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=small_cases(max_requests=200, max_models=4))
def test_bound_is_below_every_policy_on_larger_traces(case):
    _, sc, trace, tables = case
    bound = opt.solve(tables, trace, exact=False)
    assert bound.kind == opt.BOUND and bound.decisions is None
    for policy in POLICIES:
        assert close_below(bound.system_cost, policy_cost(tables, sc, policy, trace)), policy


def test_limits_refuse_exact_and_fall_back_to_the_bound():
    cat = Catalog((Model("A", "VFM", 1.0, 10.0, "fp16", 1.0, 0.0, (tasks_flat("t"),)),
                   Model("B", "VFM", 1.0, 10.0, "fp16", 1.0, 0.0, (tasks_flat("t"),))), "x")
    sc = Scenario(name="x")
    sc.edge.gpu_memory_gb = 1.0
    sc.validate()
    tables = build_tables(sc, cat)
    n = 12
    trace = TraceArrays(np.arange(n, dtype=float), np.array([0, 1] * (n // 2), np.int32), np.ones(n), np.zeros(n))
    with pytest.raises(InputError, match="exact limit"):
        opt.solve(tables, trace, exact=True, max_requests=n - 1)
    with pytest.raises(InputError, match="nodes"):
        opt.solve(tables, trace, exact=True, max_nodes=3)
    r = opt.solve(tables, trace, max_nodes=3)
    assert r.kind == opt.BOUND and "nodes" in r.reason
    exact = opt.solve(tables, trace)
    assert exact.exact and close_below(r.system_cost, exact.system_cost)


def test_a_load_may_need_two_victims():
    """A 4 GB model loaded into a full 4 GB GPU evicts both 2 GB models: a victim set of two."""
    cat = Catalog(tuple(Model(n, "VFM", 1.0, 10.0, "fp16", mem, 0.0, (tasks_flat("t"),))
                        for n, mem in (("A", 2.0), ("B", 2.0), ("C", 4.0))), "x")
    sc = Scenario(name="x")
    sc.edge.gpu_memory_gb = 4.0
    sc.cloud.price_per_request = 5.0
    sc.validate()
    tables = build_tables(sc, cat)
    pair = np.array([0, 1, 2, 2, 2, 2], np.int32)
    trace = TraceArrays(np.arange(6.0) * 10, pair, np.ones(6), np.zeros(6))
    r = opt.solve(tables, trace, exact=True)
    assert [d.victims for d in r.decisions] == [(), (), (0, 1), (), (), ()]
    assert all(d.edge for d in r.decisions)
    assert r.system_cost == pytest.approx(enumerate_all(tables, trace), rel=TOL)


def tasks_flat(name):
    from pfmbench.catalog import Task

    return Task(name, 50.0)


def test_cli_opt_row_and_gap_columns(cli, tmp_path):
    out, req = tmp_path / "s.parquet", tmp_path / "r.parquet"
    r = cli("replay", "--policy", "lru,opt", "--set", "trace.requests=30", "--gpu-memory", "40", "--out", out, "--json",
            "--requests-out", req)
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert [x["policy"] for x in rows] == ["lru", "opt"]
    lru, best = rows
    assert best["opt_kind"] == "exact" and best["engine"] == "opt" and best["gap_to_opt"] == 0.0
    assert lru["opt_system_cost"] == best["system_cost"] <= lru["system_cost"]
    assert lru["gap_to_opt"] == pytest.approx(lru["system_cost"] - best["system_cost"])
    assert pl.read_parquet(out).columns[-len(OPT_COLUMNS):] == list(OPT_COLUMNS)
    log = pl.read_parquet(req).filter(pl.col("policy") == "opt")  # its decisions, request by request
    assert len(log) == 30 and (log["outcome"] == "load").sum() == best["loads"]
    assert log["switching_cost"].sum() == pytest.approx(best["switching_cost"])
    # documented in docs/results.md, in their own section
    section = DOC.read_text().split("## Gap to opt", 1)[1].split("\n## ", 1)[0]
    for c in OPT_COLUMNS:
        assert f"| `{c}` |" in section


def test_cli_opt_beyond_the_limit(cli):
    r = cli("replay", "--policy", "lc,opt", "--set", "trace.requests=300", "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert rows[1]["opt_kind"] == "lower bound" and rows[1]["loads"] is None
    assert rows[0]["gap_to_opt"] > 0
    r = cli("replay", "--policy", "opt-exact", "--set", "trace.requests=300")
    assert r.code == 2 and "exact limit" in r.err and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("replay", "--policy", "opt,opt-exact")
    assert r.code == 2 and "not both" in r.err
