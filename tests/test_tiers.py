"""Weight tiers (MODEL.md §9.4): where a load reads a checkpoint from. The DRAM tier's LRU rule and the load times
on a hand-made case (both engines), the issue's done-when on the default scenario, validation, chunked replay.
The engines' agreement request by request is tests/test_engines.py (its scenarios draw the tier keys)."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import catalogs, scenarios
from test_engines import POLICIES, assert_same, fast_replay

import pfmbench
from pfmbench import api
from pfmbench.catalog import Catalog, Model, Task
from pfmbench.engine import record as C
from pfmbench.engine.fast import FastEngine
from pfmbench.engine.record import new_log
from pfmbench.engine.reference import replay_reference
from pfmbench.engine.tables import build_tables
from pfmbench.errors import InputError
from pfmbench.policies import get_policy
from pfmbench.scenario import Scenario, load_scenario
from pfmbench.trace.schema import TraceArrays


def three_models():
    """Three 10 GB vision models (one task each): a 10 GB GPU holds one at a time."""
    return Catalog(tuple(Model(n, "VFM", 100.0, 1.0, "fp16", 10.0, 0.0, (Task("t", 80.0),)) for n in "ABC"), "test")


def scenario(**edge):
    sc = Scenario(name="t")
    sc.edge.gpu_memory_gb = 10.0
    for k, v in edge.items():
        setattr(sc.edge, k, v)
    return sc.validate()


def replay(catalog, sc, pairs, policy="lru"):
    """Requests for these pairs a minute apart, on both engines; both must agree."""
    tables = build_tables(sc, catalog)
    n = len(pairs)
    trace = TraceArrays(np.arange(n) * 60.0, np.array(pairs, np.int32), np.full(n, 1.0), np.zeros(n))
    ref = replay_reference(tables, trace, get_policy(policy), 0, log=True)
    engine = FastEngine(tables, get_policy(policy), 0)
    log = new_log(n)
    engine.run(trace, log)
    np.testing.assert_array_equal(engine.counts, ref[0])
    np.testing.assert_allclose(engine.sums, ref[1], rtol=1e-12)
    np.testing.assert_array_equal(log.outcome, ref[3]["outcome"])
    np.testing.assert_allclose(log.switching_cost, ref[3]["switching_cost"], rtol=1e-12)
    return tables, engine, log


def test_dram_tier_keeps_the_most_recent_checkpoints():
    # DRAM holds two of the three 10 GB checkpoints, least recently loaded or evicted from the GPU first:
    # A (ssd) B (ssd, A evicted and refreshed) A (dram) C (ssd; drops B) B (ssd; drops A) A (ssd)
    sc = scenario(checkpoints_in="ssd", dram_gb=20.0, ssd_gbps=2.0, load_overhead_s=0.5, power_w=0.0)
    _, engine, log = replay(three_models(), sc, [0, 1, 0, 2, 1, 0])
    dram, ssd = 0.5 + 10.0 / sc.edge.load_gbps, 0.5 + 10.0 / 2.0
    np.testing.assert_allclose(log.switching_cost, [ssd, ssd, dram, ssd, ssd, ssd], rtol=1e-12)
    c = engine.counts
    assert (c[C.C_LOADS_FROM_DRAM], c[C.C_LOADS_FROM_SSD], c[C.C_LOADS_FROM_REGISTRY]) == (1, 5, 0)
    es = engine.state
    assert list(np.flatnonzero(es.dram_in)) == [0, 1] and es.dram_used[0] == 20 * 10**9  # B, then A


def test_a_checkpoint_larger_than_dram_is_never_kept():
    sc = scenario(checkpoints_in="registry", dram_gb=9.0, registry_gbps=1.0, load_overhead_s=0.0, power_w=0.0)
    _, engine, log = replay(three_models(), sc, [0, 1, 0, 1])
    np.testing.assert_allclose(log.switching_cost, [10.0] * 4, rtol=1e-12)
    assert engine.counts[C.C_LOADS_FROM_REGISTRY] == 4 and engine.state.dram_used[0] == 0


def test_checkpoints_in_dram_is_todays_load():
    base = replay(three_models(), scenario(), [0, 1, 0, 2])
    tiered = replay(three_models(), scenario(checkpoints_in="dram", dram_gb=0.0, ssd_gbps=0.1), [0, 1, 0, 2])
    np.testing.assert_array_equal(base[1].sums, tiered[1].sums)
    assert base[1].counts[C.C_LOADS_FROM_DRAM] == base[1].counts[C.C_LOADS] == 4


def test_cost_admission_prices_the_load_from_its_tier():
    """`cost` admission repays this load's switching cost: a slow registry declines what DRAM would load."""
    cat = three_models()
    kw = {"load_overhead_s": 0.0}
    pairs = [0, 1] * 5
    fast_ = scenario(**kw)
    slow = scenario(checkpoints_in="registry", registry_gbps=0.01, **kw)
    for sc in (fast_, slow):
        sc.serving.admission = "cost"
        sc.cloud.price_per_request = 5.0
    a = replay(cat, fast_, pairs)[1].counts
    b = replay(cat, slow, pairs)[1].counts
    assert a[C.C_DECLINED] < b[C.C_DECLINED]


def run_json(cli, *args):
    r = cli("replay", "--policy", "lru", "--json", *args)
    assert r.code == 0, r.err
    [row] = json.loads(r.out)
    return row


def test_dram_tier_lowers_lru_switching_cost_on_the_default_scenario(cli):
    """The issue's done-when: checkpoints on SSD, a 256 GB DRAM tier makes LRU's loads cheaper than none."""
    none = run_json(cli, "--set", "checkpoints_in=ssd", "--set", "dram_gb=0")
    dram = run_json(cli, "--set", "checkpoints_in=ssd", "--set", "dram_gb=256")
    default = run_json(cli)
    assert dram["switching_cost"] < none["switching_cost"]
    assert dram["loads_from_dram"] > 0
    assert dram["loads_from_dram"] + dram["loads_from_ssd"] == dram["loads"]
    assert none["loads_from_ssd"] == none["loads"] and none["loads_from_dram"] == 0
    assert default["loads_from_dram"] == default["loads"] and default["loads_from_ssd"] == 0
    assert default["loads_from_registry"] == 0
    assert default["switching_cost"] < dram["switching_cost"]  # the first loads of each model come from SSD
    assert none["loads"] == dram["loads"] == default["loads"]  # LRU's choices do not look at load times


@pytest.mark.parametrize("setting, key", [("checkpoints_in=nvme", "edge.checkpoints_in"),
                                          ("ssd_gbps=-1", "edge.ssd_gbps"),
                                          ("registry_gbps=0", "edge.registry_gbps"),
                                          ("dram_gb=-5", "edge.dram_gb")])
def test_bad_tier_settings_are_refused(cli, setting, key):
    r = cli("replay", "--policy", "lru", "--set", setting, "--set", "trace.requests=10")
    assert r.code == 2
    assert key in r.err and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1


def test_tiers_with_adapters_are_refused():
    with pytest.raises(InputError, match="checkpoints_in"):
        load_scenario(None, checkpoints_in="ssd", **{"catalog.variants": "adapter"})


def test_opt_refuses_tiers():
    with pytest.raises(InputError, match="weight tiers"):
        api.replay_many(None, ["opt"], checkpoints_in="ssd", **{"trace.requests": 20})


def test_tier_keys_per_edge_in_a_scenario_file(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text('[edge]\ncheckpoints_in = "registry"\ndram_gb = 64.0\n\n[[edges]]\nname = "a"\n\n'
                 '[[edges]]\nname = "b"\ncheckpoints_in = "ssd"\nssd_gbps = 7.0\n')
    sc = load_scenario(str(p))
    a, b = (sc.edge_scenario(site) for site in sc.edges)
    assert (a.edge.checkpoints_in, a.edge.dram_gb) == ("registry", 64.0)
    assert (b.edge.checkpoints_in, b.edge.ssd_gbps, b.edge.dram_gb) == ("ssd", 7.0, 64.0)


@pytest.mark.parametrize("policy", ["lru", "active", "random-placement", "lc-cost"])
def test_chunked_equals_whole(tmp_path, monkeypatch, policy):
    p = tmp_path / "trace.parquet"
    pfmbench.synth(requests=3000, rate=2.0, alpha=0.9, seed=5).write_parquet(p, row_group_size=400)
    kw = {"checkpoints_in": "ssd", "dram_gb": 100.0, "gpu_memory_gb": 50}
    whole = api.replay_many(str(p), [policy], **kw)
    monkeypatch.setattr(api, "STREAM_MIN_ROWS", 0)
    streamed = api.replay_many(str(p), [policy], chunk_rows=277, **kw)
    assert whole == streamed  # every value, bit for bit
    assert whole[0]["loads_from_dram"] + whole[0]["loads_from_ssd"] == whole[0]["loads"] + whole[0]["preloads"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), policy=st.sampled_from(POLICIES))
def test_engines_agree_with_tiers_under_churn(data, policy):
    """tests/test_engines.py draws the tier keys among everything else; here every case reads from a slower tier,
    with a GPU small enough that models come and go, so DRAM hits, misses and LRU drops all happen."""
    catalog = data.draw(catalogs().filter(lambda c: len(c.models) >= 3 and not any(m.variant_of for m in c.models)))
    sc = data.draw(scenarios())
    sc.edge.checkpoints_in = data.draw(st.sampled_from(["ssd", "registry"]))
    sc.edge.gpu_memory_gb = data.draw(st.sampled_from([4.0, 10.0, 16.0]))
    sc.edge.dram_gb = data.draw(st.sampled_from([0.0, 3.0, 8.0, 20.0, 64.0]))
    n = data.draw(st.integers(20, 300))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))  # every pair, often: models come and go
    trace = TraceArrays(np.cumsum(rng.choice([0.0, 0.5, 5.0, 60.0], size=n)), rng.integers(0, len(catalog.pairs), n,
                        dtype=np.int32), rng.choice([1.0, 64.0], size=n), rng.choice([0.0, 0.01], size=n))
    tables = build_tables(sc.validate(), catalog)
    ref = replay_reference(tables, trace, get_policy(policy, sc.seed), sc.seed, log=True)
    state, log = fast_replay(tables, trace, policy, sc.seed)
    assert_same(state, log, ref)
    c = state.counts
    assert c[C.C_LOADS_FROM_DRAM] + c[C.C_LOADS_FROM_SSD] + c[C.C_LOADS_FROM_REGISTRY] == c[C.C_LOADS] + c[C.C_PRELOADS]
