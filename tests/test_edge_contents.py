"""What the edge caches (issue 21, MODEL.md §9.1-§9.3): equivalent models serving in place of the requested
one. Each option is off by default; tests/test_engines.py draws every one of them (fast = reference)."""

import json

import numpy as np
import polars as pl
import pytest

from pfmbench import api
from pfmbench.catalog import load_catalog
from pfmbench.engine import record as C
from pfmbench.engine.tables import build_tables
from pfmbench.errors import InputError
from pfmbench.scenario import Scenario

SHORT = {"trace.requests": 1500}


# -- equivalent models (MODEL.md §9.1) ----------------------------------------------------------------------
def test_table1_groups_are_built_in():
    by = {m.name: m.equivalent for m in load_catalog().models}
    assert by["GPT3-13B"] == by["GPT3-175B"] != ""
    assert by["CLIP-ViT-L/14"] == by["CLIP-ViT-H/14"] != ""
    assert by["UniFormer-S/pose_estimation"] == by["UniFormer-B/pose_estimation"] != ""
    sc = Scenario()
    cat = sc.load_catalog()
    t = build_tables(sc, cat)
    names = cat.pair_names()
    for p, (model, task) in enumerate(names):  # a substitute is another model of the group with the same task
        for q in t.sub_pair[t.sub_first[p]:t.sub_first[p + 1]]:
            assert names[q][1] == task and names[q][0] != model and by[names[q][0]] == by[model]
    p175 = names.index(("GPT3-175B", "translation"))
    assert [names[q] for q in t.sub_pair[t.sub_first[p175]:t.sub_first[p175 + 1]]] == [("GPT3-13B", "translation")]


def test_substitute_before_cloud_serves_gpt3_175b_at_the_edge(cli, tmp_path):
    """Done when: on the default scenario, some GPT3-175B requests are served at the edge by GPT3-13B, with
    an accuracy cost > 0 and a lower cloud cost than `never`."""
    rows = {}
    for sub in ("never", "before-cloud"):
        log = tmp_path / f"{sub}.parquet"
        r = cli("replay", "--policy", "lru", "--substitute", sub, "--set", "trace.requests=1500", "--json",
                "--requests-out", str(log))
        assert r.code == 0, r.err
        rows[sub] = json.loads(r.out)[0]
        rows[sub]["log"] = pl.read_parquet(log)
    never, sub = rows["never"], rows["before-cloud"]
    assert never["substituted"] == 0 and sub["substituted"] > 0
    assert sub["cloud_cost"] < never["cloud_cost"]
    assert sub["edge_execution_ratio"] > never["edge_execution_ratio"]
    log = sub["log"].filter(pl.col("outcome") == "substitute")
    assert len(log) == sub["substituted"]
    # the default scenario runs a copy per LFM task (GPT3-175B/translation, ...): served by 13B's copy for the task
    big = log.filter(pl.col("model").cast(pl.String).str.starts_with("GPT3-175B/"))
    assert len(big) > 0
    assert (big["served_by"].cast(pl.String) == big["model"].cast(pl.String).str.replace("175B", "13B")).all()
    assert (big["accuracy_cost"] > 0).all() and (big["cloud_cost"] == 0).all()
    # every other row was served by the model it names
    other = sub["log"].filter(pl.col("outcome") != "substitute")
    assert (other["served_by"].cast(pl.String) == other["model"].cast(pl.String)).all()


def test_before_load_substitutes_more_than_before_cloud():
    rows = {s: api.replay_many(None, ["lru"], substitute=s, engine="fast", **SHORT)[0]
            for s in ("before-cloud", "before-load")}
    assert rows["before-load"]["substituted"] > rows["before-cloud"]["substituted"]
    assert rows["before-load"]["loads"] < rows["before-cloud"]["loads"]


def test_a_substitute_pays_its_accuracy_gap():
    """GPT3-13B serving GPT3-175B's request: 13B's curve, against 175B's a_ref."""
    from pfmbench.engine.costs import accuracy_of, substitute_accuracy

    cat = load_catalog()
    t = build_tables(Scenario(), cat)
    names = cat.pair_names()
    p, q = names.index(("GPT3-175B", "superglue")), names.index(("GPT3-13B", "superglue"))
    acc, cost = substitute_accuracy(t, p, q, 0.0)
    assert acc == accuracy_of(t, q, 0.0)[0] == 54.4
    assert t.a_ref[p] >= 73.2  # 175B's best (few-shot, or beyond at its window)
    assert cost == pytest.approx((t.a_ref[p] - 54.4) / 100)
    assert substitute_accuracy(t, q, p, 32.0)[1] == 0.0  # a stronger substitute (175B few-shot) pays nothing


def test_substitute_is_a_scenario_key_and_checked():
    assert Scenario().serving.substitute == "never"
    assert Scenario().with_overrides(substitute="before-load").serving.substitute == "before-load"
    with pytest.raises(InputError, match="serving.substitute must be one of never, before-cloud, before-load"):
        Scenario().with_overrides(substitute="always")


def test_catalog_equivalent_column(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("model,family,task,params_m,gflops,zero_shot,equivalent\nA,VFM,t,10,1,50,g\nB,VFM,t,20,1,60,g\n"
                 "C,VFM,t,20,1,60,\n")
    by = {m.name: m.equivalent for m in load_catalog(p).models}
    assert by == {"A": "g", "B": "g", "C": ""}
    p.write_text("model,family,task,params_m,gflops,zero_shot,equivalent\nA,VFM,t,10,1,50,g\nA,VFM,u,10,1,50,h\n")
    with pytest.raises(InputError, match="every row of a model gives the same equivalent group"):
        load_catalog(p)


def test_opt_refuses_substitution():
    with pytest.raises(InputError, match="opt: not defined with equivalent models"):
        api.replay_many(None, ["opt"], substitute="before-cloud", **{"trace.requests": 20})


def test_without_groups_nothing_changes():
    """A catalog with no `equivalent` groups replays as `never` whatever `substitute` says."""
    from dataclasses import replace

    from pfmbench.catalog import Catalog

    sc = Scenario().with_overrides(gpu_memory_gb=40, **SHORT)
    cat = sc.load_catalog()
    bare = Catalog(tuple(replace(m, equivalent="") for m in cat.models), cat.source)
    a, b = (api.replay_many(None, ["lc"], scenario=sc, catalog=bare, engine="fast", substitute=s)[0]
            for s in ("never", "before-load"))
    assert b["substituted"] == 0
    assert b["system_cost"] == a["system_cost"] and b["loads"] == a["loads"]
    assert int(C.C_SUBSTITUTED) == 9 and np.int8(C.SUBSTITUTE) == 3  # added at the end of the ranges


# -- precision (MODEL.md §9.2) ------------------------------------------------------------------------------
def test_models_int4_quarter_memory_and_a_penalty(cli):
    """Done when: `pfmbench models --set catalog.precision=int4 --json` shows GPT3-13B at a quarter of its fp16
    memory and a non-zero accuracy penalty."""
    rows = {}
    for prec in ("fp16", "int4"):
        r = cli("models", "--set", f"catalog.precision={prec}", "--json")
        assert r.code == 0, r.err
        rows[prec] = next(x for x in json.loads(r.out) if x["model"].startswith("GPT3-13B"))
    assert rows["int4"]["memory_gb"] == pytest.approx(rows["fp16"]["memory_gb"] / 4)
    assert rows["fp16"]["accuracy_penalty"] == 0 and rows["int4"]["accuracy_penalty"] > 0
    r = cli("models", "--set", "catalog.precision=int8", "--shared-tasks")
    assert r.code == 0 and "-acc." in r.out


def test_a_quantized_model_serves_below_its_curve():
    from pfmbench.engine.costs import accuracy_of

    cat8, cat16 = load_catalog(precision="int8"), load_catalog()
    t8, t16 = build_tables(Scenario(), cat8), build_tables(Scenario(), cat16)
    p = cat16.pair_names().index(("GPT3-13B", "translation"))
    a16, c16 = accuracy_of(t16, p, 4.0)
    a8, c8 = accuracy_of(t8, p, 4.0)
    assert a8 == pytest.approx(a16 - 0.1) and c8 == pytest.approx(c16 + 0.001)
    v = cat16.pair_names().index(("CLIP-ViT-L/14", "classification"))
    assert accuracy_of(t8, v, 0.0)[0] == pytest.approx(75.20 - 0.3)


def test_ladder_loads_reduced_copies_and_costs_no_more_at_40gb(cli):
    """Done when: `--precision ladder` on a small GPU reports reduced_precision_loads > 0 and a system cost no
    higher than `fixed` (default scenario at 40 GB; a shorter trace here, docs/model.md has the full one)."""
    rows = {}
    for mode in ("fixed", "ladder"):
        r = cli("replay", "--policy", "lru,lc", "--precision", mode, "--gpu-memory", "40", "--set",
                "trace.requests=1500", "--json")
        assert r.code == 0, r.err
        rows[mode] = {x["policy"]: x for x in json.loads(r.out)}
    for policy in ("lru", "lc"):
        fixed, ladder = rows["fixed"][policy], rows["ladder"][policy]
        assert fixed["reduced_precision_loads"] == fixed["upgrades"] == 0
        assert ladder["reduced_precision_loads"] > 0
        assert ladder["system_cost"] <= fixed["system_cost"]
        assert ladder["setting_serving_precision_mode"] == "ladder"


def test_ladder_levels_and_upgrade():
    """A model that does not fit beside another at fp16 loads at int8 into the free memory, and is upgraded to
    fp16 on a hit once the other has left; both engines, request by request."""
    from pfmbench.catalog import Catalog, Model, Task
    from pfmbench.engine.fast import FastEngine
    from pfmbench.engine.record import new_log
    from pfmbench.engine.reference import replay_reference
    from pfmbench.policies import get_policy
    from pfmbench.trace.schema import TraceArrays

    a = Model("A", "LFM", 1.0, 1.0, "fp16", 6.0, 8.0, (Task("t", 10, 20, 30, 8),))
    b = Model("B", "LFM", 1.0, 1.0, "fp16", 4.0, 8.0, (Task("t", 10, 20, 30, 8),))
    sc = Scenario().with_overrides(gpu_memory_gb=9.0, precision_mode="ladder", ladder="int8", cost_horizon_s=1.0)
    t = build_tables(sc, Catalog((a, b)))
    assert list(t.n_levels) == [2, 2] and t.mem_level[0, 1] == 3_000_000_000
    # A (6 GB) loads; B (4 GB) would evict it: B at int8 (2 GB) fits beside it (penalty 0.1 point over few
    # expected requests < a reload); then B's hits, A evicted by ..., B upgraded once 4 GB are free.
    ts = np.array([0.0, 1.0, 2.0, 3.0])
    tr = TraceArrays(ts, np.array([0, 1, 1, 1], np.int32), np.ones(4), np.zeros(4))
    ref = replay_reference(t, tr, get_policy("lru"), 0, log=True)
    eng = FastEngine(t, get_policy("lru"), 0)
    log = new_log(4)
    eng.run(tr, log)
    assert list(log.precision_level) == list(ref[3]["precision_level"]) == [0, 1, 1, 1]
    assert eng.counts[C.C_REDUCED_LOADS] == 1 and eng.counts[C.C_UPGRADES] == 0
    assert log.accuracy[1] == pytest.approx(10 - 0.1)  # zero-shot, minus int8's LFM penalty
    # C (int8 already: one level) evicts A (LRU); B's next hit finds room for its fp16 weights: upgraded first,
    # costed as a load of the other half of its weights, and served at fp16
    c = Model("C", "LFM", 1.0, 1.0, "int8", 2.0, 8.0, (Task("t", 10, 20, 30, 8),))
    t = build_tables(sc, Catalog((a, b, c)))
    tr = TraceArrays(np.arange(4.0), np.array([0, 1, 2, 1], np.int32), np.ones(4), np.zeros(4))
    ref = replay_reference(t, tr, get_policy("lru"), 0, log=True)
    eng = FastEngine(t, get_policy("lru"), 0)
    log = new_log(4)
    eng.run(tr, log)
    assert list(log.precision_level) == list(ref[3]["precision_level"]) == [0, 1, 0, 0]
    assert list(log.outcome) == [C.LOAD, C.LOAD, C.LOAD, C.HIT]
    assert eng.counts[C.C_UPGRADES] == ref[0][C.C_UPGRADES] == 1 and eng.counts[C.C_REDUCED_LOADS] == 1
    up = t.upgrade_time[1, 1]
    assert up == pytest.approx(sc.edge.load_overhead_s + 2.0 / sc.edge.load_gbps)
    assert log.switching_cost[3] == pytest.approx(up + sc.edge.power_w * up / 1000)
    assert log.latency[3] >= up
    assert eng.state.used[0] == 6_000_000_000 <= t.capacity_bytes  # B at fp16 (4 GB) and C (2 GB)


# -- batching (MODEL.md §9.2) -------------------------------------------------------------------------------
def test_batching_on_a_queued_a100_lowers_queueing_and_p95(cli, tmp_path):
    """Done when: on a trace that queues on one A100 (`synth --rate 5`), with batching on, max_batch=8 gives a
    lower queueing share and a lower p95 edge latency than max_batch=1. One model per task group here
    (copies_per_task=false): with the default scenario's three GPT3-13B copies the KV cache of 8 requests per
    copy makes them evict each other (docs/model.md, "Batching")."""
    trace = tmp_path / "r5.parquet"
    assert cli("synth", "-o", str(trace), "--requests", "1000", "--rate", "5", "--seed", "1").code == 0
    rows = {}
    for mb in (1, 8):
        r = cli("replay", str(trace), "--policy", "lru", "--set", "copies_per_task=false", "--set", "batching=true",
                "--set", f"max_batch={mb}", "--json")
        assert r.code == 0, r.err
        rows[mb] = json.loads(r.out)[0]
    assert rows[1]["mean_batch_size"] == 1.0 < rows[8]["mean_batch_size"] <= 8
    assert rows[8]["queueing_share"] < rows[1]["queueing_share"]
    assert rows[8]["edge_latency_p95_s"] < rows[1]["edge_latency_p95_s"]
    off = json.loads(cli("replay", str(trace), "--policy", "lru", "--set", "copies_per_task=false", "--json").out)[0]
    assert off["mean_batch_size"] == 1.0 and off["edge_latency_p95_s"] < rows[1]["edge_latency_p95_s"]  # roofline


def test_batching_memory_and_roofline():
    from pfmbench.engine.costs import edge_work, service_time

    cat = load_catalog()
    off = build_tables(Scenario(), cat)
    sc = Scenario().with_overrides(batching="true", max_batch="8")
    on = build_tables(sc, cat)
    g = [m.name for m in cat.models].index("GPT3-13B")
    weights = cat.models[g].memory_gb / 1.2
    assert on.weight_bytes[g] == pytest.approx(weights * 1e9)
    kv = on.mem_bytes[g] / 1e9 - weights  # 8 requests' fp16 KV cache of 256 + 64 x 32 tokens
    assert 8 * 1.5 < kv < 8 * 2.5 and on.mem_bytes[g] > off.mem_bytes[g]
    assert build_tables(Scenario().with_overrides(batching="true", max_batch="1", runtime_mb_per_request="100"),
                        cat).mem_bytes[g] == round((weights + 0.1) * 1e9)
    p = cat.pair_names().index(("GPT3-13B", "translation"))
    assert service_time(off, p, 256.0, 4.0, 1) == edge_work(off, p, 256.0, 4.0)[1]  # off: compute-only
    t_mem = weights / 1935.0
    one = service_time(on, p, 256.0, 0.0, 1)
    assert one == pytest.approx(256 * t_mem)  # decoding is memory-bound at a batch of one
    assert service_time(on, p, 256.0, 0.0, 8) == one  # ... and still at eight
    assert service_time(on, p, 256.0, 0.0, 4096) > one  # compute-bound at last


# -- partial caching (MODEL.md §9.3) ------------------------------------------------------------------------
def test_partial_caching_serves_a_model_larger_than_the_gpu(cli, tmp_path):
    """Done when: `--caching partial` on a GPU smaller than a requested model's full size serves it
    (partial_serves > 0); memory is never over-committed (here, and under hypothesis in test_engines)."""
    log = tmp_path / "log.parquet"
    r = cli("replay", "--policy", "lru", "--caching", "partial", "--gpu", "l4", "--set", "trace.requests=800",
            "--json", "--requests-out", str(log))
    assert r.code == 0, r.err
    row = json.loads(r.out)[0]
    assert row["partial_serves"] > 0 and 0 < row["partial_fraction_mean"] < 1
    rows = pl.read_parquet(log)
    big = rows.filter(pl.col("model").cast(pl.String).str.starts_with("GPT3-13B/") & (pl.col("outcome") != "cloud"))
    assert len(big) > 0 and big["resident_fraction"].max() == 0.75  # at most 3 of 4 layer groups: 23.1 of 24 GB
    assert (big["resident_fraction"] < 1).all()
    binary = json.loads(cli("replay", "--policy", "lru", "--gpu", "l4", "--set", "trace.requests=800",
                            "--json").out)[0]
    assert binary["partial_serves"] == 0 and binary["partial_fraction_mean"] is None


def test_partial_prefix_accuracy_compute_and_growth():
    from pfmbench.catalog import Catalog, Model, Task
    from pfmbench.engine.fast import FastEngine
    from pfmbench.engine.record import new_log
    from pfmbench.engine.reference import replay_reference
    from pfmbench.policies import get_policy
    from pfmbench.trace.schema import TraceArrays

    a = Model("A", "VFM", 1.0, 10.0, "fp16", 6.0, 0.0, (Task("t", 80.0),))
    b = Model("B", "VFM", 1.0, 10.0, "fp16", 4.0, 0.0, (Task("t", 60.0),))
    sc = Scenario().with_overrides(gpu_memory_gb=8.0, caching="partial", partial_steps=4)
    t = build_tables(sc, Catalog((a, b)))
    # A (6 GB) loads whole; B (4 GB) does not fit beside it: its largest prefix that fits the free 2 GB,
    # 2 of 4 groups (2 GB), loads without evicting; B's next hit finds no more room; then A is evicted by ...
    tr = TraceArrays(np.arange(3.0), np.array([0, 1, 1], np.int32), np.ones(3), np.zeros(3))
    ref = replay_reference(t, tr, get_policy("lru"), 0, log=True)
    eng = FastEngine(t, get_policy("lru"), 0)
    log = new_log(3)
    eng.run(tr, log)
    assert list(log.resident_fraction) == list(ref[3]["resident_fraction"]) == [1.0, 0.5, 0.5]
    assert list(log.evictions) == [0, 0, 0]
    assert log.accuracy[1] == pytest.approx(60.0 * 0.5 ** 0.3)  # a(K) * f^gamma, VFM gamma 0.3
    assert eng.counts[C.C_PARTIAL_SERVES] == 2 and eng.state.used[0] == 8_000_000_000
    # with 9 GB, B loads 3 of 4 groups (3 GB free); C (1 GB) then evicts A (LRU), and B's next hit grows to
    # its whole 4 GB, the missing 1 GB costed as a load (counted in upgrades), and is served whole
    c = Model("C", "VFM", 1.0, 10.0, "fp16", 1.0, 0.0, (Task("t", 50.0),))
    t9 = build_tables(sc.with_overrides(gpu_memory_gb=9.0), Catalog((a, b, c)))
    tr = TraceArrays(np.arange(4.0), np.array([0, 1, 2, 1], np.int32), np.ones(4), np.zeros(4))
    eng = FastEngine(t9, get_policy("lru"), 0)
    log = new_log(4)
    eng.run(tr, log)
    ref = replay_reference(t9, tr, get_policy("lru"), 0, log=True)
    assert list(log.resident_fraction) == list(ref[3]["resident_fraction"]) == [1.0, 0.75, 1.0, 1.0]
    assert list(log.evictions) == [0, 0, 1, 0] and eng.counts[C.C_UPGRADES] == ref[0][C.C_UPGRADES] == 1
    grow = t9.part_load[1, 0] + (t9.part_load[1, 4] - t9.part_load[1, 3])
    assert grow == pytest.approx(sc.edge.load_overhead_s + 1.0 / sc.edge.load_gbps)
    assert log.switching_cost[3] == pytest.approx(grow + sc.edge.power_w * grow / 1000)
    assert eng.state.used[0] == 5_000_000_000  # B whole and C


def test_partial_and_ladder_are_exclusive():
    with pytest.raises(InputError, match="caching = 'partial' with precision_mode = 'ladder' is not supported"):
        Scenario().with_overrides(caching="partial", precision_mode="ladder")
    with pytest.raises(InputError, match="opt: not defined for caching = 'partial'"):
        api.replay_many(None, ["opt"], caching="partial", **{"trace.requests": 20})


def test_catalog_precisions_column(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text('model,family,task,params_m,gflops,zero_shot,precisions\nA,LFM,t,1000,1,50,"fp16,int8"\n'
                 'B,VFM,t,100,1,60,\nC,VFM,t,100,1,60,fp16\n')
    cat = load_catalog(p)
    assert [m.precisions for m in cat.models] == [("fp16", "int8"), (), ("fp16",)]
    t = build_tables(Scenario().with_overrides(precision_mode="ladder"), cat)
    assert list(t.n_levels) == [2, 3, 1]  # its own rung; the scenario's int8,int4; none
    assert list(build_tables(Scenario(), cat).n_levels) == [1, 1, 1]  # fixed
    p.write_text("model,family,task,params_m,gflops,zero_shot,precisions\nA,LFM,t,1000,1,50,int3\n")
    with pytest.raises(InputError, match="precisions must be from"):
        load_catalog(p)
