"""Hypothesis strategies: random catalogs, scenarios and traces for the engine tests."""

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from pfmbench.catalog import Catalog, Model, Task
from pfmbench.scenario import Scenario
from pfmbench.trace.schema import TraceArrays


@st.composite
def tasks(draw, icl: bool):
    zero = draw(st.floats(0, 90))
    if not icl or draw(st.booleans()) is False and draw(st.booleans()):
        return lambda name: Task(name, zero)
    one = draw(st.floats(0, 100))
    few = draw(st.one_of(st.none(), st.floats(0, 100)))
    k_few = draw(st.sampled_from([None, 1, 2, 8, 32, 64]))
    return lambda name: Task(name, zero, one, few, k_few)


@st.composite
def catalogs(draw, max_models=8, variants=False):
    """variants: always some shared bases (MODEL.md §9.5); else drawn or not."""
    n = draw(st.integers(2 if variants else 1, max_models))
    models = []
    for i in range(n):
        icl = draw(st.booleans())
        n_tasks = draw(st.integers(1, 3))
        ts = tuple(draw(tasks(icl))(f"t{j}") for j in range(n_tasks))
        mem = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 40.0]))
        window = float(draw(st.sampled_from([1, 4, 16, 64]))) if icl else 0.0
        models.append(Model(f"M{i}", "LFM" if icl else draw(st.sampled_from(["VFM", "MFM"])),
                            100.0, draw(st.floats(0.1, 500)), draw(st.sampled_from(["fp16", "fp16", "int8", "int4"])),
                            mem, window, ts))
    if variants or (n > 1 and draw(st.booleans())):
        models = draw(with_variants(models))
    if n > 1 and draw(st.booleans()):  # equivalent groups (MODEL.md §9.1): tasks t0..t2 are shared by name
        models = [replace(m, equivalent=draw(st.sampled_from(["", "g0", "G0", "g1"]))) for m in models]
    if draw(st.booleans()):  # a row's own ladder (MODEL.md §9.2): none below, one rung, or the scenario's
        models = [replace(m, precisions=draw(st.sampled_from([(), ("fp16",), ("int4", "fp32"), ("int8",)])))
                  for m in models]
    return Catalog(tuple(models), "hypothesis")


@st.composite
def with_variants(draw, models):
    """Some models become variants (adapters) of one or two shared bases (MODEL.md §9.5, variants = "adapter"):
    bases shared by several variants, with or without tasks of their own, adapters from a megabyte to larger
    than the free memory (and than their base)."""
    n_bases = draw(st.integers(1, min(2, len(models) - 1)))
    out = list(models)
    for i in range(n_bases, len(models)):
        if draw(st.integers(0, 3)) > 0:
            b = draw(st.integers(0, n_bases - 1))
            out[i] = replace(out[i], variant_of=f"M{b}",
                             adapter_mb=draw(st.sampled_from([1.0, 50.0, 500.0, 2000.0, 9000.0])))
    for b in range(n_bases):  # a base with no task of its own (as Table I's under copies_per_task)
        if any(m.variant_of == f"M{b}" for m in out) and draw(st.booleans()):
            out[b] = replace(out[b], tasks=())
    if not any(m.tasks for m in out):
        out[0] = models[0]
    return out


@st.composite
def scenarios(draw):
    sc = Scenario(name="hyp")
    sc.edge.gpu_memory_gb = draw(st.sampled_from([0.0, 1.0, 4.0, 10.0, 16.0, 50.0]))
    sc.edge.executors = draw(st.integers(1, 3))
    sc.edge.load_overhead_s = draw(st.floats(0, 3))
    sc.edge.adapter_overhead_s = draw(st.sampled_from([0.0, 0.08, 2.0]))
    sc.context.utility = draw(st.sampled_from(["exp", "linear", "none"]))
    sc.context.half_life_s = draw(st.sampled_from([1.0, 30.0, 600.0]))
    sc.context.linear_rate = draw(st.sampled_from([0.01, 0.5]))
    sc.context.relevance = draw(st.sampled_from([0.0, 0.0, 0.3, 1.0]))
    sc.weights.wear_per_load = draw(st.sampled_from([0.0, 1.5]))
    sc.cloud.price_per_tflop = draw(st.sampled_from([0.0, 0.01]))
    sc.cloud.price_per_request = draw(st.sampled_from([0.0, 0.05, 1.25, 20.0]))
    sc.serving.admission = draw(st.sampled_from(["default", "always", "outrank", "cost"]))
    sc.serving.dispatch = draw(st.sampled_from(["edge", "edge", "cheapest"]))
    sc.serving.cost_horizon_s = draw(st.sampled_from([1.0, 600.0]))
    sc.serving.substitute = draw(st.sampled_from(["never", "never", "before-cloud", "before-load"]))
    sc.serving.precision_mode = draw(st.sampled_from(["fixed", "fixed", "ladder"]))
    sc.catalog.ladder = draw(st.sampled_from(["int8,int4", "int4", "int4,int8,fp32", ""]))
    sc.edge.batching = draw(st.sampled_from([False, False, True]))
    sc.serving.caching = draw(st.sampled_from(["binary", "binary", "partial"]))
    sc.serving.partial_steps = draw(st.sampled_from([1, 2, 4, 7]))
    if sc.serving.caching == "partial":
        sc.serving.precision_mode = "fixed"  # the two are exclusive (scenario validation)
    sc.edge.max_batch = draw(st.sampled_from([1, 2, 8]))
    sc.edge.mem_gbps = draw(st.sampled_from([1935.0, 0.5]))  # 0.5 GB/s: memory-bound steps of seconds
    sc.edge.runtime_mb_per_request = draw(st.sampled_from([0.0, 0.0, 10.0, 3000.0]))
    sc.weights.cloud_latency = draw(st.sampled_from([0.0, 1.0]))
    sc.edge.radio_rtt_s = draw(st.sampled_from([0.0, 0.005]))
    sc.run.warmup_requests = draw(st.sampled_from([0, 0, 0, 1, 7, 60, 500]))
    sc.run.warmup_s = draw(st.sampled_from([0.0, 0.0, 0.0, 5.0, 300.0]))
    # a user's device (MODEL.md §9.4): none, or one holding some of the catalog's sizes; slow or fast, cheap or
    # dear energy, so that it wins some requests and loses others
    sc.device.memory_gb = draw(st.sampled_from([0.0, 0.0, 1.0, 4.0, 16.0]))
    sc.device.tflops = draw(st.sampled_from([0.5, 17.0, 400.0]))
    sc.device.utilization = draw(st.sampled_from([0.2, 1.0]))
    sc.device.power_w = draw(st.sampled_from([0.0, 5.0, 5000.0]))
    sc.weights.device_energy = draw(st.sampled_from([1.0, 0.0, 100.0]))
    # Weight tiers (MODEL.md §9.4): a DRAM tier from none to more than every checkpoint, slower and faster tiers.
    sc.edge.checkpoints_in = draw(st.sampled_from(["dram", "dram", "ssd", "registry"]))
    sc.edge.dram_gb = draw(st.sampled_from([0.0, 0.5, 2.0, 5.0, 8.0, 16.0, 64.0]))
    sc.edge.ssd_gbps = draw(st.sampled_from([3.5, 0.7, 40.0]))
    sc.edge.registry_gbps = draw(st.sampled_from([1.25, 0.1]))
    sc.seed = draw(st.integers(0, 2**64 - 1))
    return sc.validate()


@st.composite
def traces(draw, n_pairs, max_len=300):
    n = draw(st.integers(1, max_len))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # Inter-arrival gaps include exact ties (0) and long idle periods.
    gaps = rng.choice([0.0, 0.0, 0.05, 1.0, 7.0, 100.0, 2000.0], size=n)
    ts = np.cumsum(gaps) - gaps[0]
    weights = rng.dirichlet(np.full(n_pairs, 0.5))
    pair = rng.choice(n_pairs, size=n, p=weights).astype(np.int32)
    units = rng.choice([0.0, 1.0, 64.0, 256.0], size=n)
    input_mb = rng.choice([0.0, 0.01, 2.0], size=n)
    return TraceArrays(ts, pair, units, input_mb)


def for_catalog(sc, catalog):
    """sc, with what the catalog rules out turned off: weight tiers are refused with adapters (validation)."""
    if any(m.variant_of for m in catalog.models):
        sc.edge.checkpoints_in = "dram"
    return sc


@st.composite
def cases(draw, variants=False):
    """(catalog, scenario, trace, tables): one replay to run. variants: a catalog with shared bases on a GPU
    barely larger than one (cascades, held-out bases)."""
    from pfmbench.engine.tables import build_tables

    catalog = draw(catalogs(variants=variants))
    sc = for_catalog(draw(scenarios()), catalog)
    bases = sorted({m.variant_of for m in catalog.models if m.variant_of})
    if bases and (variants or draw(st.booleans())):
        # A GPU a little larger than a shared base (MODEL.md §9.5): its variants' adapters, some larger than
        # the free memory, compete with it and with the full models; bases leave with their variants (cascades)
        # and are held out while their adapters load.
        name = draw(st.sampled_from(bases))
        base = next(m for m in catalog.models if m.name == name)
        other = draw(st.sampled_from([m.memory_gb for m in catalog.models]))  # room for another model, or not
        sc.edge.gpu_memory_gb = (base.memory_gb * draw(st.sampled_from([1.0, 1.05, 1.3, 2.0]))
                                 + other * draw(st.sampled_from([0.0, 0.5, 1.0]))
                                 + draw(st.sampled_from([0.0, 0.05, 0.5, 2.0, 9.0])))
        if variants and draw(st.booleans()):  # loads rather than the cloud, from the first request
            sc.serving.admission, sc.serving.dispatch, sc.run.warmup_requests = "always", "edge", 0
        sc = sc.validate()
    trace = draw(traces(len(catalog.pairs)))
    return catalog, sc, trace, build_tables(sc, catalog)
