"""Fine-tuned variants as adapters on a shared base (MODEL.md §9.5): the catalog columns, the default adapter
size, the engines' rules on small hand-made cases, and the default scenario under `variants = "adapter"`.
The engines' agreement request by request is tests/test_engines.py (its catalogs draw variants)."""

import numpy as np
import pytest

from pfmbench import api
from pfmbench.catalog import Catalog, Model, Task, default_adapter_mb, load_catalog
from pfmbench.engine import record as C
from pfmbench.engine.fast import FastEngine, next_uses
from pfmbench.engine.record import new_log
from pfmbench.engine.reference import replay_reference
from pfmbench.engine.tables import build_tables
from pfmbench.errors import InputError
from pfmbench.policies import get_policy
from pfmbench.scenario import Scenario, default_scenario
from pfmbench.trace.schema import TraceArrays

GB = 1e9


def small_catalog(adapter_mb=500.0):
    """A 10 GB base with no task of its own, three 500 MB variants, and a 6 GB full model."""
    base = Model("B", "LFM", 100.0, 1.0, "fp16", 10.0, 4.0, ())
    variants = [Model(f"B/t{i}", "LFM", 100.0, 1.0, "fp16", 10.0, 4.0, (Task(f"t{i}", 20.0, 30.0, 35.0, 4),),
                      variant_of="B", adapter_mb=adapter_mb) for i in range(3)]
    full = Model("F", "VFM", 100.0, 1.0, "fp16", 6.0, 0.0, (Task("f", 80.0),))
    return Catalog((base, *variants, full), "test")


def scenario(gpu_gb):
    sc = Scenario(name="t")
    sc.edge.gpu_memory_gb = gpu_gb
    return sc.validate()


def replay(catalog, sc, pairs, policy="lru"):
    """Replay requests for these pairs (one a second) on both engines; both must agree."""
    tables = build_tables(sc, catalog)
    n = len(pairs)
    trace = TraceArrays(np.arange(n, dtype=float), np.array(pairs, np.int32), np.full(n, 8.0), np.zeros(n))
    ref = replay_reference(tables, trace, get_policy(policy), 0, log=True)
    engine = FastEngine(tables, get_policy(policy), 0)
    log = new_log(n)
    nxt = next_uses(tables.pair_model[trace.pair]) if get_policy(policy).needs_next_use else None
    engine.run(trace, log, nxt)
    np.testing.assert_array_equal(engine.counts, ref[0])
    np.testing.assert_allclose(engine.sums, ref[1], rtol=1e-12)
    np.testing.assert_array_equal(log.outcome, ref[3]["outcome"])
    return tables, engine, log


def test_adapter_loads_onto_a_resident_base():
    # pairs: 0, 1, 2 = the variants B/t0..t2; 3 = F
    _tables, engine, log = replay(small_catalog(), scenario(20.0), [0, 1, 2, 0])
    c = engine.counts
    assert list(log.outcome) == [C.LOAD, C.LOAD, C.LOAD, C.HIT]
    assert c[C.C_LOADS] == 3 and c[C.C_ADAPTER_LOADS] == 2  # the first load reads the base too
    es = engine.state
    assert es.used[0] == 10 * GB + 3 * 500e6  # the base counted once
    load0, load1 = log.switching_cost[0], log.switching_cost[1]
    sc = scenario(20.0)
    adapter_s = sc.edge.adapter_overhead_s + 0.5 / sc.edge.load_gbps
    assert load1 == pytest.approx(adapter_s * (1 + sc.edge.power_w / 1000.0))
    assert load0 == pytest.approx((sc.edge.load_overhead_s + 10.0 / sc.edge.load_gbps + adapter_s)
                                  * (1 + sc.edge.power_w / 1000.0))


def test_the_base_of_the_model_being_loaded_stays():
    # 11.2 GB: the base and two adapters fit, not three. Loading t2 evicts t0 (LRU), never the base.
    _tables, engine, log = replay(small_catalog(600.0), scenario(11.2), [0, 1, 2])
    assert list(log.outcome) == [C.LOAD, C.LOAD, C.LOAD]
    assert engine.counts[C.C_EVICTIONS] == 1 and engine.counts[C.C_ADAPTER_LOADS] == 2
    es = engine.state
    assert list(es.cached[:4]) == [1, 0, 1, 1] and es.base_in[0] == 1 and es.used[0] == 10 * GB + 1.2e9
    assert es.base_ref[0] == 2


def test_lru_evicts_a_bare_base_in_its_turn():
    # 12 GB: F (6 GB) needs room; LRU evicts the adapter (its base was used after it), then the bare base.
    _tables, engine, log = replay(small_catalog(), scenario(12.0), [0, 3])
    assert list(log.outcome) == [C.LOAD, C.LOAD] and list(log.evictions) == [0, 2]
    es = engine.state
    assert engine.counts[C.C_EVICTIONS] == 2
    assert list(es.cached) == [0, 0, 0, 0, 1] and es.used[0] == 6 * GB and es.base_in[0] == 0


@pytest.mark.parametrize("policy", ["lru", "lc", "lfu"])
def test_a_bare_base_stays_and_takes_an_adapter(policy):
    # 16.2 GB: F evicts t0 only; the bare base stays, and t1 loads onto it as an adapter. The base, now
    # least recently used, is held out for its adapter (never evicted for it): F leaves instead.
    _tables, engine, log = replay(small_catalog(), scenario(16.2), [0, 3], policy)
    assert list(engine.state.cached) == [1, 0, 0, 0, 1] and engine.state.base_ref[0] == 0
    assert engine.state.used[0] == 16 * GB
    _tables, engine, log = replay(small_catalog(), scenario(16.2), [0, 3, 1], policy)
    assert list(log.outcome) == [C.LOAD, C.LOAD, C.LOAD] and list(log.evictions) == [0, 1, 1]
    assert engine.counts[C.C_ADAPTER_LOADS] == 1
    assert list(engine.state.cached) == [1, 0, 1, 0, 0] and engine.state.used[0] == 10 * GB + 500e6


def test_fifo_evicting_a_base_cascades():
    # 16.5 GB: the base (loaded first, with t0) and two adapters hold 11 GB; F (6 GB) needs room. FIFO's
    # oldest is the base: it leaves with both its adapters, three evictions for one load. LRU evicts t0 only.
    pairs = [0, 1, 3, 2]
    _tables, engine, log = replay(small_catalog(), scenario(16.5), pairs, "fifo")
    assert list(log.outcome) == [C.LOAD] * 4 and list(log.evictions) == [0, 0, 3, 0]
    assert engine.counts[C.C_EVICTIONS] == 3 and engine.counts[C.C_ADAPTER_LOADS] == 1  # t2 reloads the base
    es = engine.state
    assert list(es.cached) == [1, 0, 0, 1, 1] and es.used[0] == 16.5 * GB and es.base_ref[0] == 1
    _, lru, lru_log = replay(small_catalog(), scenario(16.5), pairs, "lru")
    assert list(lru_log.evictions) == [0, 0, 1, 1] and lru.counts[C.C_ADAPTER_LOADS] == 2


@pytest.mark.parametrize("policy", ["fifo", "random", "sieve", "s3fifo", "gdsf", "lfuda", "belady", "belady-size",
                                    "lc-cost", "active", "random-placement"])
def test_every_policy_on_shared_bases(policy):
    """Both engines agree (replay checks) on a trace that makes bases leave, cascade and be held out."""
    rng = np.random.default_rng(3)
    pairs = list(rng.integers(0, 4, 200))
    replay(small_catalog(2000.0), scenario(14.0), pairs, policy)


def test_a_variant_that_never_fits_with_its_base_is_offloaded():
    _, _engine, log = replay(small_catalog(), scenario(10.2), [0, 3])
    assert list(log.outcome) == [C.CLOUD, C.LOAD]


@pytest.mark.parametrize("policy", ["lru", "lc"])
def test_default_scenario_adapters_switch_less(policy):
    """The issue's check: on the default scenario, adapters load onto shared bases and switch far less."""
    full, adapter = (api.replay_many(None, [policy], **{"catalog.variants": v, "trace.requests": 4000})[0]
                     for v in ("full", "adapter"))
    assert full["adapter_loads"] == 0 and adapter["adapter_loads"] > 0
    assert adapter["switching_cost"] < full["switching_cost"]
    assert adapter["n_requests"] == full["n_requests"]  # the same trace


def test_table1_adapters():
    sc = default_scenario().with_overrides(**{"catalog.variants": "adapter"})
    cat = sc.load_catalog()
    by = {m.name: m for m in cat.models}
    assert by["GPT3-13B"].tasks == () and by["GPT3-13B/translation"].variant_of == "GPT3-13B"
    # LoRA rank 16 on q, k, v, o: 8·16·d·L parameters at fp16, d and L from params (GPT3-13B: 53.2 MB)
    assert by["GPT3-13B/translation"].adapter_mb == pytest.approx(53.17, abs=0.01)
    assert default_adapter_mb(by["GPT3-13B"], 8) == pytest.approx(by["GPT3-13B/translation"].adapter_mb / 2)
    assert cat.pair_names() == default_scenario().load_catalog().pair_names()  # the same requests
    assert all(not m.variant_of for m in default_scenario().load_catalog().models)


def write(tmp_path, text, name="c.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


HEAD = "model,family,task,params_m,gflops,zero_shot,base,adapter_mb\n"


def test_catalog_variant_columns(tmp_path):
    p = write(tmp_path, HEAD + "L,LFM,a,7000,14,20,,\nL-med,LFM,qa,7000,14,30,L,40\nL-law,LFM,qa,7000,14,25,L,\n")
    cat = load_catalog(p)
    assert [(m.name, m.variant_of, m.adapter_mb) for m in cat.models] == [("L", "", 0.0), ("L-med", "L", 40.0),
                                                                          ("L-law", "L", 0.0)]
    sc = Scenario(name="t")
    sc.catalog.path, sc.catalog.variants = str(p), "adapter"
    law = sc.validate().load_catalog().models[2]
    assert law.adapter_mb == pytest.approx(default_adapter_mb(cat.models[0]))  # the default fills it in
    sc.catalog.variants = "full"
    assert all(not m.variant_of for m in sc.load_catalog().models)
    t = write(tmp_path, '[[model]]\nname = "L"\nfamily = "LFM"\nparams_m = 7000\ngflops = 14\nzero_shot = 20\n'
                        '[[model]]\nname = "V"\nfamily = "LFM"\nparams_m = 7000\ngflops = 14\nzero_shot = 20\n'
                        'base = "L"\nadapter_mb = 12.5\n', "c.toml")
    assert load_catalog(t).models[1].adapter_mb == 12.5


@pytest.mark.parametrize("rows, error", [
    ("V,LFM,a,7000,14,20,X,10\n", "its base 'X' is not a model of the catalog"),
    ("L,LFM,a,7000,14,20,,\nV,LFM,a,7000,14,20,L,10\nW,LFM,a,7000,14,20,V,10\n", "is itself a variant"),
    ("L,LFM,a,7000,14,20,,\nV,LFM,a,7000,14,20,L,20000\n", "is not smaller than its base"),
    ("L,LFM,a,7000,14,20,,\nV,LFM,a,7000,14,20,L,0\n", "adapter_mb must be a number > 0"),
    ("L,LFM,a,7000,14,20,,10\n", "adapter_mb is given but base is not"),
    ("L,LFM,a,7000,14,20,L,10\n", "cannot be its own base"),
])
def test_catalog_variant_errors(tmp_path, rows, error):
    with pytest.raises(InputError, match=error):
        load_catalog(write(tmp_path, HEAD + rows))


def test_variants_key_is_checked():
    with pytest.raises(InputError, match="catalog.variants must be one of full, adapter"):
        Scenario().with_overrides(**{"catalog.variants": "lora"})


def test_adapters_of_one_base_share_a_batch():
    """With batching (MODEL.md §9.2), requests for different adapters of one base join one batch (S-LoRA)."""
    catalog = small_catalog()
    sc = scenario(20.0)
    sc.edge.batching, sc.edge.max_batch = True, 8
    tables = build_tables(sc.validate(), catalog)
    # three loads (each its own batch: a load is never batched), then one request per adapter, queued behind
    pairs = np.array([0, 1, 2, 0, 1, 2], np.int32)
    trace = TraceArrays(np.array([0.0, 0.0, 0.0, 0.01, 0.01, 0.01]), pairs, np.full(6, 8.0), np.zeros(6))
    ref = replay_reference(tables, trace, get_policy("lru"), 0, log=True)
    engine = FastEngine(tables, get_policy("lru"), 0)
    log = new_log(6)
    engine.run(trace, log)
    np.testing.assert_array_equal(engine.counts, ref[0])
    assert list(log.outcome) == [C.LOAD, C.LOAD, C.LOAD, C.HIT, C.HIT, C.HIT]
    # The hits join the base's last batch, the one the third load started (its executor's last): one batch
    # per load and none more. Batched per model, t0's and t1's hits could not join their loads' batches
    # (work is queued behind them) and would start batches of their own.
    assert engine.counts[C.C_BATCHES] == 3
    assert log.wait[3] > 0.0 and log.wait[3] == pytest.approx(log.wait[4]) and log.wait[3] == pytest.approx(log.wait[5])
