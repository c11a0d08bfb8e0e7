"""Several edge servers with cooperation forward (MODEL.md §9.4, issue 22): a miss at the home edge served by a
neighbour that holds the model, at edge_rtt_s more latency. fast = reference request by request (hypothesis),
the issue's done-when comparison with cooperation none, parallel = sequential, Ray = local, bad inputs."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import catalogs, for_catalog, scenarios, traces
from test_edges import scenario_file

import pfmbench
from pfmbench import api
from pfmbench.edges import ForwardJob, forward_policy
from pfmbench.engine import record as C
from pfmbench.errors import InputError
from pfmbench.policies import builtin_names, get_policy
from pfmbench.scenario import EdgeSite, load_scenario

POLICIES = [n for n in builtin_names() if get_policy(n).fast and not get_policy(n).needs_next_use]

TWO_40 = """cooperation = "{coop}"
[edge]
gpu_memory_gb = 40
[[edges]]
name = "a"
[[edges]]
name = "b"
"""


@pytest.fixture(scope="module")
def trace():
    return pfmbench.synth(requests=3000, rate=0.5, seed=5, users=40)


# -- fast = reference ------------------------------------------------------------------------------------

@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), policy=st.sampled_from(POLICIES))
def test_forward_fast_agrees_with_reference(data, policy):
    """Two or three edges of different memory, requests homed at random: both engines stop before the same
    forward candidates, forward them to the same neighbour, and every edge's totals agree."""
    catalog = data.draw(catalogs())
    sc = for_catalog(data.draw(scenarios()), catalog)
    n_edges = data.draw(st.integers(2, 3))
    sites = [EdgeSite(f"e{k}", (("gpu_memory_gb", data.draw(st.sampled_from([0.0, 4.0, 10.0, 16.0, 50.0]))),
                                ("executors", data.draw(st.integers(1, 2)))))
             for k in range(n_edges)]
    edge_scs = [sc.edge_scenario(s) for s in sites]
    tr = data.draw(traces(len(catalog.pairs)))
    home = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).integers(0, n_edges, len(tr)).astype(np.int32)
    rtt = data.draw(st.sampled_from([0.0, 0.002, 3.0]))
    ref = forward_policy(ForwardJob(edge_scs, catalog, tr, home, policy, "reference", rtt))
    fast = forward_policy(ForwardJob(edge_scs, catalog, tr, home, policy, "fast", rtt))
    assert sum(int(r[3][C.C_REQUESTS]) for r in fast) <= len(tr)  # all of them unless a warm-up dropped some
    for (_, f_fast, _, fc, fs, fh), (_, r_fast, _, rc, rs, rh) in zip(fast, ref, strict=True):
        assert f_fast and not r_fast
        np.testing.assert_array_equal(fc, rc)
        np.testing.assert_allclose(fs, rs, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(fh, rh)


def test_forwarded_request_pays_the_round_trip_and_is_a_hit_at_the_neighbour():
    """Edge a loads GPT3-13B; edge b's request for it is then served by a: a hit there, rtt more latency."""
    from pfmbench.trace.schema import TraceArrays

    sc = load_scenario("default", gpu_memory_gb=80)
    cat = sc.load_catalog()
    pair = next(i for i, (m, _) in enumerate(cat.pair_names()) if m.startswith("GPT3-13B"))
    tr = TraceArrays(np.array([0.0, 100.0]), np.array([pair, pair], np.int32), np.array([64.0, 64.0]),
                     np.array([0.01, 0.01]))
    edge_scs = [sc.edge_scenario(EdgeSite(n)) for n in ("a", "b")]
    for engine in ("fast", "reference"):
        res = {rtt: forward_policy(ForwardJob(edge_scs, cat, tr, np.array([0, 1], np.int32), "lru", engine, rtt))
               for rtt in (0.0, 0.25)}
        (_, _, _, ca, sa, _), (_, _, _, cb, _, _) = res[0.25]
        assert ca[C.C_REQUESTS] == 2 and ca[C.C_LOADS] == 1 and ca[C.C_HITS] == 1 and ca[C.C_FORWARDED] == 1
        assert cb[C.C_REQUESTS] == 0  # nothing reached b's own engine
        s0 = res[0.0][0][4]
        assert sa[C.S_EDGE_LATENCY] == pytest.approx(s0[C.S_EDGE_LATENCY] + 0.25)
        assert sa[C.S_OFFLOADING_LATENCY] == pytest.approx(s0[C.S_OFFLOADING_LATENCY] + 0.25)
        assert sa[C.S_EDGE_LAT_MAX] >= 0.25 and res[0.25][0][5].sum() == 2


# -- the done-when ---------------------------------------------------------------------------------

def test_forward_beats_none_on_two_40gb_edges(tmp_path, trace):
    """Two edges of 40 GB: forwarding serves misses at a neighbour instead of loading, so the total switching
    cost falls (issue 22's done-when)."""
    none = api.replay_many(trace, "lru,lc", scenario_file(tmp_path, TWO_40.format(coop="none"), "none.toml"))
    fwd = api.replay_many(trace, "lru,lc", scenario_file(tmp_path, TWO_40.format(coop="forward"), "fwd.toml"))
    for p in ("lru", "lc"):
        n = next(r for r in none if r["edge"] == "total" and r["policy"] == p)
        f = next(r for r in fwd if r["edge"] == "total" and r["policy"] == p)
        assert n["forwarded"] == 0 and f["forwarded"] > 0
        assert f["cooperation"] == "forward" and f["edge_rtt_s"] == 0.002
        assert f["n_requests"] == n["n_requests"] == 3000
        assert f["loads"] < n["loads"] and f["switching_cost"] < n["switching_cost"]
        per = [r for r in fwd if r["policy"] == p and r["edge"] != "total"]
        assert f["forwarded"] == sum(r["forwarded"] for r in per)
        assert f["forwarded"] <= f["edge_hits"]  # a forwarded request is a hit at the edge that serves it


def test_forward_with_one_edge_is_cooperation_none(tmp_path, trace):
    one = '[[edges]]\nname = "only"\n'
    fwd = api.replay_many(trace, "lru,fifo", scenario_file(tmp_path, 'cooperation = "forward"\n' + one, "f.toml"))
    none = api.replay_many(trace, "lru,fifo", scenario_file(tmp_path, one, "n.toml"))
    skip = ("cooperation", "notes", "scenario", "setting_source")
    for f, n in zip(fwd, none, strict=True):
        assert {k: v for k, v in f.items() if k not in skip} == {k: v for k, v in n.items() if k not in skip}


def test_forward_parallel_equals_sequential(tmp_path, trace):
    p = scenario_file(tmp_path, TWO_40.format(coop="forward"))
    one = api.replay_many(trace, "lru,lc", p, workers=1)
    two = api.replay_many(trace, "lru,lc", p, workers=2)  # the policies on two processes
    assert json.dumps(one) == json.dumps(two)


def test_ray_executor_equals_sequential(tmp_path, trace):
    pytest.importorskip("ray", reason="Ray is the [ray] extra: pip install 'pfmbench[ray]'")
    for coop in ("none", "forward"):
        p = scenario_file(tmp_path, TWO_40.format(coop=coop), f"{coop}.toml")
        local = api.replay_many(trace, "lru,lc", p)
        on_ray = api.replay_many(trace, "lru,lc", p, executor="ray", workers=2)  # a real local Ray
        assert json.dumps(local) == json.dumps(on_ray)


# -- inputs --------------------------------------------------------------------------------------------------

def test_edge_rtt_is_a_top_level_key_and_a_sweep_axis(tmp_path):
    sc = load_scenario(scenario_file(tmp_path, 'edge_rtt_s = 0.01\n' + TWO_40.format(coop="forward")))
    assert sc.cooperation == "forward" and sc.edge_rtt_s == 0.01
    assert sc.with_overrides(edge_rtt_s="0.5").edge_rtt_s == 0.5
    again = load_scenario(scenario_file(tmp_path, sc.to_toml(), "again.toml"))
    assert again.edge_rtt_s == 0.01 and again.cooperation == "forward"
    with pytest.raises(InputError, match="edge_rtt_s must be a number from 0"):
        sc.with_overrides(edge_rtt_s=-1.0)


def test_policies_that_need_next_uses_are_refused_with_forward(tmp_path, trace):
    p = scenario_file(tmp_path, TWO_40.format(coop="forward"))
    with pytest.raises(InputError, match="policy 'belady' needs each request's next use"):
        api.replay_many(trace.head(50), "belady", p)


@pytest.mark.parametrize("args, message", [
    (["--set", "edges=2", "--set", "edge_rtt_s=-1"], "edge_rtt_s must be a number from 0"),
    (["--executor", "ray"], "--executor ray: applies to several edge servers only"),
    (["--set", "edges=2", "--executor", "dask"], "--executor must be one of local, ray"),
    (["--set", "edges=2", "--address", "x:1"], "--address applies with --executor ray only"),
    (["--set", "edges=2", "--set", "cooperation=forward", "--warmup", "5", "--policy", "belady"],
     "needs each request's next use"),
])
def test_cli_bad_forward_inputs_exit_2_with_one_line(cli, tmp_path, args, message):
    t = tmp_path / "t.parquet"
    pfmbench.synth(requests=50, seed=1, users=5).write_parquet(t)
    r = cli("replay", t, *(["--policy", "lru"] if "--policy" not in args else []), *args)
    assert r.code == 2, (r.out, r.err)
    assert len(r.err.strip().splitlines()) == 1 and r.err.startswith("error: ")
    assert message in r.err, r.err


def test_cli_forward_prints_forwarded(cli, tmp_path, trace):
    t = tmp_path / "t.parquet"
    trace.write_parquet(t)
    r = cli("replay", t, "--scenario", scenario_file(tmp_path, TWO_40.format(coop="forward")), "--policy", "lru")
    assert r.code == 0, r.err
    assert "cooperation forward" in r.out and "forwarded" in r.out
