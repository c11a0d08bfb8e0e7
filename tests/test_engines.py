"""Differential tests: the numba kernel against the plain reference engine, and chunked against whole."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import cases

from pfmbench.engine import record as C
from pfmbench.engine.fast import FastEngine, next_uses
from pfmbench.engine.record import LOG_COLUMNS, RequestLog, new_log
from pfmbench.engine.reference import replay_reference
from pfmbench.engine.tables import build_tables
from pfmbench.policies import builtin_names, get_policy

POLICIES = [n for n in builtin_names() if get_policy(n).fast]  # every built-in (drop-ins registered by other tests aside)
LOG_FLOATS = [name for name, dt in LOG_COLUMNS if dt is np.float64]


def fast_replay(tables, trace, policy, seed, chunk=None):
    engine = FastEngine(tables, get_policy(policy, seed), seed)
    n = len(trace.ts)
    log = new_log(n)
    step = chunk or n
    nxt = next_uses(tables.pair_model[trace.pair]) if get_policy(policy).needs_next_use else None
    for s in range(0, n, step):
        engine.run(trace.slice(s, s + step), RequestLog(*(col[s:s + step] for col in log)),
                   nxt[s:s + step] if nxt is not None else None)
    return engine, log._asdict()


def assert_same(fast_state, fast_log, ref):
    counts, sums, hist, cols = ref
    np.testing.assert_array_equal(fast_state.counts, counts)
    np.testing.assert_allclose(fast_state.sums, sums, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(fast_state.hist, hist)
    np.testing.assert_array_equal(fast_log["outcome"], cols["outcome"])
    np.testing.assert_array_equal(fast_log["evictions"], cols["evictions"])
    np.testing.assert_array_equal(fast_log["served_pair"], cols["served_pair"])
    np.testing.assert_array_equal(fast_log["precision_level"], cols["precision_level"])
    np.testing.assert_array_equal(fast_log["resident_fraction"], cols["resident_fraction"])
    for name in LOG_FLOATS:
        np.testing.assert_allclose(fast_log[name], cols[name], rtol=1e-9, atol=1e-12, err_msg=name)


# Every built-in gets its own examples (test_registry checks that POLICIES is every built-in): about 400 in all.
@pytest.mark.parametrize("policy", POLICIES)
@settings(max_examples=max(20, 400 // len(POLICIES)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_engine_agrees_with_reference(data, policy):
    _, sc, trace, tables = data.draw(cases())
    ref = replay_reference(tables, trace, get_policy(policy, sc.seed), sc.seed, log=True)
    state, log = fast_replay(tables, trace, policy, sc.seed)
    assert_same(state, log, ref)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), policy=st.sampled_from(POLICIES))
def test_fast_engine_agrees_with_reference_on_shared_bases(data, policy):
    """Variants as adapters (MODEL.md §9.5) on a GPU barely larger than a base: bases evicted with their
    variants (cascades), held out while their adapters load, kept bare; adapters larger than the free memory."""
    _, sc, trace, tables = data.draw(cases(variants=True))
    ref = replay_reference(tables, trace, get_policy(policy, sc.seed), sc.seed, log=True)
    state, log = fast_replay(tables, trace, policy, sc.seed)
    assert_same(state, log, ref)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), policy=st.sampled_from(POLICIES), chunk=st.integers(1, 50))
def test_chunked_replay_equals_whole(data, policy, chunk):
    _, sc, trace, tables = data.draw(cases())
    whole, wlog = fast_replay(tables, trace, policy, sc.seed)
    parts, plog = fast_replay(tables, trace, policy, sc.seed, chunk=chunk)
    np.testing.assert_array_equal(whole.counts, parts.counts)
    np.testing.assert_array_equal(whole.sums, parts.sums)  # bit for bit
    np.testing.assert_array_equal(whole.hist, parts.hist)
    for k in wlog:
        np.testing.assert_array_equal(wlog[k], plog[k])


@settings(max_examples=80, deadline=None)
@given(data=st.data(), policy=st.sampled_from(POLICIES))
def test_invariants(data, policy):
    """Counts add up, memory is never over-committed, costs are non-negative."""
    _, sc, trace, tables = data.draw(cases())
    state, log = fast_replay(tables, trace, policy, sc.seed)
    c = state.counts
    first = state.measure_from_seq  # the warm-up's requests are in no metric (-1: all of them are warm-up)
    measured = len(trace.ts) - first if first >= 0 else 0
    assert c[C.C_REQUESTS] == measured == (c[C.C_HITS] + c[C.C_LOADS] + c[C.C_OFFLOADS] + c[C.C_SUBSTITUTED]
                                           + c[C.C_DEVICE_SERVED])
    # only a model that fits the device runs there (MODEL.md §9.4), and none without a device
    on_device = log["outcome"] == C.DEVICE
    assert np.all(tables.device_fits[tables.pair_model[trace.pair[on_device]]] == 1)
    assert tables.device_on or not on_device.any()
    # each eviction made room for a load, a preload or an upgrade (a grown prefix) of the same request; after a
    # warm-up, a model the warm-up loaded may leave once with no measured load (hypothesis: lc, warm-up of 7)
    # (a base evicted takes its variants with it, MODEL.md §9.5: a cascade, each counted)
    warm = tables.n_models if first != 0 else 0
    if not (tables.base_of >= 0).any():
        assert c[C.C_EVICTIONS] <= c[C.C_LOADS] + c[C.C_PRELOADS] + c[C.C_UPGRADES] + warm
    # every load and preload read its checkpoint from one tier (MODEL.md §9.4); DRAM holds at most dram_gb
    assert c[C.C_LOADS_FROM_DRAM] + c[C.C_LOADS_FROM_SSD] + c[C.C_LOADS_FROM_REGISTRY] == c[C.C_LOADS] + c[C.C_PRELOADS]
    if tables.tier == 0:
        assert c[C.C_LOADS_FROM_DRAM] == c[C.C_LOADS] + c[C.C_PRELOADS]
    assert state.state.dram_used[0] == tables.ckpt_bytes[state.state.dram_in.astype(bool)].sum() <= tables.dram_bytes
    if policy not in ("active", "random-placement"):  # the built-ins that load for no request
        assert c[C.C_PRELOADS] == 0
    assert 0 <= state.state.used[0] <= tables.capacity_bytes
    es = state.state
    # A shared base is a cache entry (MODEL.md §9.5): its weights counted once, cached with its variants.
    resident = tables.mem_level[np.arange(tables.n_models), es.level]  # at its precision level (MODEL.md §9.2)
    prefix = es.part > 0  # or a prefix of its layers (MODEL.md §9.3)
    resident[prefix] = tables.part_bytes[np.arange(tables.n_models)[prefix], es.part[prefix]]
    assert np.all(es.part[es.cached == 0] == 0) and np.all(es.part < tables.partial_steps)
    if sc.serving.caching == "binary":
        assert c[C.C_PARTIAL_SERVES] == 0 and np.all(log["resident_fraction"] == 1.0)
    assert np.all(es.level[es.cached == 0] == 0) and np.all(es.level < tables.n_levels)
    assert es.used[0] == resident[es.cached.astype(bool)].sum()  # a shared base is an entry: its weights once
    assert c[C.C_REDUCED_LOADS] <= c[C.C_LOADS] and c[C.C_UPGRADES] <= c[C.C_HITS]
    if sc.serving.precision_mode == "fixed":  # (a prefix grown under partial caching counts as an upgrade too)
        assert c[C.C_REDUCED_LOADS] == 0 and np.all(log["precision_level"] == 0)
        assert c[C.C_UPGRADES] == 0 or sc.serving.caching == "partial"
    for b in range(tables.n_models):  # a base is cached with every cached variant of it (or bare)
        variants = (tables.base_of == b) & (np.arange(tables.n_models) != b)
        assert es.base_ref[b] == es.cached[variants].sum()
        assert es.base_in[b] == (es.cached[b] if tables.base_of[b] == b else 0)
        assert es.cached[b] or not es.cached[variants].any()
    assert es.pinned[0] == -1 and es.n_cached[0] == es.cached.sum()
    assert np.all(state.sums[:C.S_EDGE_LAT_MAX] >= 0)
    pm = tables.pair_model[trace.pair]
    too_big = tables.mem_level[pm, tables.n_levels[pm] - 1] > tables.capacity_bytes  # even at its lowest level
    if tables.partial:  # or its smallest prefix (models of a shared base have none)
        too_big &= (tables.part_bytes[pm, 1] > tables.capacity_bytes) | (tables.base_of[pm] >= 0)
    assert np.all(np.isin(log["outcome"][too_big], [C.CLOUD, C.SUBSTITUTE, C.DEVICE]))
    # a substitute is another model that may serve the request's pair (MODEL.md §9.1); any other row names its own
    sub = log["outcome"] == C.SUBSTITUTE
    assert np.all(log["served_pair"][~sub] == trace.pair[~sub])
    for i in np.flatnonzero(sub):
        p = trace.pair[i]
        assert log["served_pair"][i] in tables.sub_pair[tables.sub_first[p]:tables.sub_first[p + 1]]
    # accuracy never above the best on its curve; k_eff within the window
    assert np.all(log["accuracy_cost"] >= -1e-12)
    assert np.all(log["k_eff"] <= tables.window[tables.pair_model[log["served_pair"]]] + 1e-12)
    if policy == "cloud":
        assert c[C.C_OFFLOADS] + c[C.C_DEVICE_SERVED] == measured  # (a device may run some: MODEL.md §9.4)


def test_lc_evicts_models_without_context_first():
    """The paper's LC: context-free models go first, whatever their size (MODEL.md §7)."""
    from pfmbench.catalog import Catalog, Model, Task
    from pfmbench.scenario import Scenario
    from pfmbench.trace.schema import TraceArrays

    llm = Model("LLM", "LFM", 1.0, 1.0, "fp16", 6.0, 64.0, (Task("t", 10, 20, 30, 64),))
    small = [Model(f"V{i}", "VFM", 1.0, 1.0, "fp16", 1.0, 0.0, (Task("t", 50),)) for i in range(4)]
    big = Model("LLM2", "LFM", 1.0, 1.0, "fp16", 6.0, 64.0, (Task("t", 10, 20, 30, 64),))
    cat = Catalog((llm, *small, big))
    sc = Scenario()
    sc.edge.gpu_memory_gb = 12.0
    tables = build_tables(sc.validate(), cat)
    # LLM (6 GB) and four 1 GB vision models use 10 of 12 GB; LLM2 needs 6 GB: LC evicts all four small ones
    # although evicting LLM alone would free enough.
    seq = [0, 0, 1, 2, 3, 4, 5]
    tr = TraceArrays(np.arange(len(seq), dtype=float), np.array(seq, np.int32), np.ones(len(seq)), np.ones(len(seq)))
    state, log = fast_replay(tables, tr, "lc", 0)
    assert log["evictions"][-1] == 4
    assert state.state.cached[0] == 1
    state, log = fast_replay(tables, tr, "lru", 0)
    assert log["evictions"][-1] == 1 and state.state.cached[0] == 0


@pytest.mark.parametrize("utility", ["exp", "linear", "none"])
def test_context_grows_and_eviction_discards_it(utility):
    from pfmbench.catalog import Catalog, Model, Task
    from pfmbench.scenario import Scenario
    from pfmbench.trace.schema import TraceArrays

    a = Model("A", "LFM", 1.0, 1.0, "fp16", 6.0, 8.0, (Task("t", 10, 20, 30, 8),))
    b = Model("B", "LFM", 1.0, 1.0, "fp16", 6.0, 8.0, (Task("t", 10, 20, 30, 8),))
    sc = Scenario()
    sc.edge.gpu_memory_gb = 10.0
    sc.context.utility = utility
    tables = build_tables(sc.validate(), Catalog((a, b)))
    seq = [0, 0, 0, 1, 0]
    tr = TraceArrays(np.arange(5, dtype=float), np.array(seq, np.int32), np.ones(5), np.ones(5))
    state, log = fast_replay(tables, tr, "lru", 0)
    k = log["k_eff"]
    assert k[0] == 0 and 0 < k[1] <= 1 and k[1] < k[2] <= 2  # zero-shot after a load, then it grows
    assert k[4] == 0  # A was evicted by B: its context was discarded
    assert state.sums[C.S_CONTEXT_DISCARDED] > 0


@given(st.one_of(st.floats(min_value=0.0, allow_nan=False), st.floats(max_value=0.0, allow_nan=False),
                 st.sampled_from([0.0, -0.0, 5e-324, 2.0**-31, 2.0**-30, 2.0**31, 2.0**32, float("inf")])))
def test_histogram_bucket_from_bits_equals_frexp_definition(x):
    assert C.hist_index_bits(C.float_bits(x)) == C.hist_index(x)
    if 2.0**-30 <= x < 2.0**31:  # the bucket's midpoint is within 0.05% of x
        assert abs(C.hist_value(C.hist_index(x)) - x) <= 5e-4 * x


def test_a_hit_on_another_executor_waits_for_the_load():
    from pfmbench.catalog import Catalog, Model, Task
    from pfmbench.scenario import Scenario
    from pfmbench.trace.schema import TraceArrays

    sc = Scenario()
    sc.edge.executors = 2
    tables = build_tables(sc.validate(), Catalog((Model("V", "VFM", 1.0, 1.0, "fp16", 12.9, 0.0, (Task("t", 50),)),)))
    load = tables.load_time[0]  # 0.5 s + 12.9 GB / 12.9 GB/s
    tr = TraceArrays(np.array([0.0, 0.0, 5.0]), np.zeros(3, np.int32), np.ones(3), np.ones(3))
    for engine in ("fast", "reference"):
        if engine == "fast":
            _, log = fast_replay(tables, tr, "lru", 0)
            wait = log["wait"]
        else:
            wait = replay_reference(tables, tr, get_policy("lru"), log=True)[3]["wait"]
        assert wait[0] == 0 and wait[1] == pytest.approx(load) and wait[2] == 0, engine


def test_the_kernel_is_generated_from_the_registry():
    """Every built-in policy module, and only those, has a branch at each hook call of the kernel."""
    from pfmbench.engine.kernel import kernel_source
    from pfmbench.policies import BUILTIN_GROUPS, BUILTINS, builtin_modules

    assert sorted(BUILTINS) == sorted(set(BUILTINS))  # a policy in one group only
    for group in BUILTIN_GROUPS:
        text = kernel_source(builtin_modules(group))
        for i, mod in enumerate(builtin_modules(group)):
            assert f"import {mod} as p{i}" in text
        assert f"code == {len(group) - 1}:" in text and f"code == {len(group)}:" not in text
        if "active" not in group:  # no module of the group preloads: the default's call, no switch
            assert text.count("no_preload(") == 1 and "preload(pss[" not in text.replace("no_preload(pss[", "")
