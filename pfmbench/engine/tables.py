"""One (scenario, catalog) as the static numbers both engines read: settings, per model, per (model, task) pair.

A NamedTuple, so the numba kernel reads it by field name too; nothing here changes during a replay.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..catalog import (
    BYTES_PER_PARAM,
    PARTIAL_GAMMA,
    Catalog,
    accuracy_penalty,
    best_accuracy,
    transformer_shape,
)
from ..errors import InputError
from ..scenario import Scenario
from .context import UTILITY_CODES

# Admission and dispatch rules (MODEL.md §4).
ADMIT_DEFAULT, ADMIT_ALWAYS, ADMIT_OUTRANK, ADMIT_COST = -1, 0, 1, 2
ADMISSION_CODES = {"default": ADMIT_DEFAULT, "always": ADMIT_ALWAYS, "outrank": ADMIT_OUTRANK, "cost": ADMIT_COST}
ADMISSION_NAMES = {code: name for name, code in ADMISSION_CODES.items()}
DISPATCH_EDGE, DISPATCH_CHEAPEST = 0, 1
DISPATCH_CODES = {"edge": DISPATCH_EDGE, "cheapest": DISPATCH_CHEAPEST}
# Equivalent models (MODEL.md §9.1): when a cached equivalent may serve a request instead.
SUB_NEVER, SUB_BEFORE_CLOUD, SUB_BEFORE_LOAD = 0, 1, 2
SUBSTITUTE_CODES = {"never": SUB_NEVER, "before-cloud": SUB_BEFORE_CLOUD, "before-load": SUB_BEFORE_LOAD}
# Weight tiers (MODEL.md §9.4): where a load reads a checkpoint from. TIER_DRAM is load_gbps, the tables' load times.
TIER_DRAM, TIER_SSD, TIER_REGISTRY = 0, 1, 2
TIER_CODES = {"dram": TIER_DRAM, "ssd": TIER_SSD, "registry": TIER_REGISTRY}


class Tables(NamedTuple):
    # the edge server and the cloud (MODEL.md §3)
    capacity_bytes: int  # GPU memory; memory accounting is exact, in bytes
    executors: int  # requests served at once
    edge_rate: float  # GFLOP/s reached at the edge
    power_w: float
    cloud_rate: float  # GFLOP/s reached in the cloud
    radio_rtt_s: float  # device -> edge round trip
    radio_uplink_mbps: float  # device -> edge
    rtt_s: float  # edge -> cloud round trip
    uplink_mbps: float  # edge -> cloud
    price_per_request: float
    price_per_tflop: float
    wear_per_load: float  # switching cost added per load
    # the Age of Context (MODEL.md §2)
    utility: int  # context.UTIL_*
    half_life_s: float
    linear_rate: float
    relevance: float  # cross-task relevance rho
    # deciding (MODEL.md §4) and the weights the decisions use
    admission: int  # ADMIT_*; a replay replaces ADMIT_DEFAULT by its policy's own rule
    dispatch: int  # DISPATCH_*
    cost_horizon_s: float
    w_switch: float
    w_accuracy: float
    w_latency: float
    w_cloud: float
    w_cloud_latency: float
    # the warm-up (MODEL.md §4): requests replayed but not measured
    warmup_requests: int  # the first N requests
    warmup_s: float  # and those before the first request's time + this
    # per model
    mem_bytes: np.ndarray  # int64: what caching m takes itself (a variant: its adapter; a base: its weights)
    load_time: np.ndarray  # float64 s: load_overhead_s + memory_gb / load_gbps (a variant: its adapter's,
    #                        adapter_overhead_s + adapter GB / load_gbps; a base: its weights)
    window: np.ndarray  # float64 context window (0: no in-context learning)
    first_pair: np.ndarray  # int32 [n_models + 1]: pairs of model m are first_pair[m]..first_pair[m+1]-1
    # shared bases (MODEL.md §9.5, variants = "adapter"): a model whose base_of is b >= 0 needs b's weights
    # resident (a variant of b, or b itself); every model is -1 under variants = "full"
    base_of: np.ndarray  # int32
    base_bytes: np.ndarray  # int64 per base b: its weights (= mem_bytes[b]: the base is a cache entry, counted once)
    base_load: np.ndarray  # float64 s per base b: loading its weights (= load_time[b])
    # per (model, task) pair
    pair_model: np.ndarray  # int32
    gflops: np.ndarray  # float64 GFLOP per unit
    example_units: np.ndarray  # float64 units per demonstration (0 for models without in-context learning)
    curve: np.ndarray  # float64 [n_pairs, 7]: accuracy_at() arguments after k
    a_ref: np.ndarray  # float64 best accuracy on the curve: what the cloud serves at
    cloud_context_units: np.ndarray  # float64 window * example_units: the cloud serves with full context
    penalty: np.ndarray  # float64 percent points its model loses at its precision (MODEL.md §9.2; 0 at fp16)
    # equivalent models (MODEL.md §9.1): the pairs that may serve a request for pair p in its place are
    # sub_pair[sub_first[p]:sub_first[p+1]] (other models of p's model's `equivalent` group, same task name)
    substitute: int  # SUB_*
    sub_first: np.ndarray  # int32 [n_pairs + 1]
    sub_pair: np.ndarray  # int32
    # precision levels (MODEL.md §9.2): level 0 is a model's catalog precision; under precision_mode = "ladder",
    # levels 1.. are the lower precisions of catalog.ladder (fewer bytes per parameter, in decreasing bytes);
    # every model has one level under "fixed", and so does every model of a shared base
    n_levels: np.ndarray  # int32 per model
    mem_level: np.ndarray  # int64 [n_models, L]: bytes resident at each level (level 0: mem_bytes)
    load_level: np.ndarray  # float64 [n_models, L] s: loading it at that level (level 0: load_time)
    pen_level: np.ndarray  # float64 [n_models, L]: accuracy penalty in points at that level
    upgrade_time: np.ndarray  # float64 [n_models, L] s: reloading the rest of its weights from that level to level 0
    # batching (MODEL.md §9.2; docs/model.md, "Batching"): off (0) = compute-only W / edge_rate
    batching: int
    max_batch: int
    mem_gbps: float  # GB/s, the roofline's memory leg
    weight_bytes: np.ndarray  # float64 per model: its weights, read once per step of a batch
    decode: np.ndarray  # int8 per pair: its units are generated tokens, one step each (LFMs)
    # partial caching (MODEL.md §9.3): a model of no shared base may be resident as a prefix of s of its
    # partial_steps S layer groups, s = 1..S-1 (0 in the engine's state: whole), part_bytes[m, s] bytes
    partial: int  # 0: binary caching
    partial_steps: int
    part_bytes: np.ndarray  # int64 [n_models, S + 1]: mem_bytes * s // S (s = S: mem_bytes)
    part_load: np.ndarray  # float64 [n_models, S + 1] s: loading that prefix (load_overhead_s + its GB / load_gbps)
    gamma: np.ndarray  # float64 per pair: a prefix f serves a(K) * f^gamma (catalog.PARTIAL_GAMMA)
    # the user's device (MODEL.md §9.4; docs/model.md, "Devices"): off when device_on = 0 ([device] memory_gb = 0)
    device_on: int
    device_rate: float  # GFLOP/s reached on the device
    device_power_w: float
    w_device_energy: float  # per kJ of device energy
    device_fits: np.ndarray  # int8 per model: its whole catalog size (with its base's weights) fits the device
    # weight tiers (MODEL.md §9.4; docs/model.md, "Weight tiers"): every load time above is the DRAM tier's
    # (load_gbps); a load whose checkpoint the host's DRAM tier does not hold reads from `tier` instead
    tier: int  # TIER_*: where checkpoints sit (TIER_DRAM: every load from DRAM, the DRAM tier is not modelled)
    tier_ratio: float  # load_gbps / that tier's GB/s: its load of t s in DRAM takes overhead + (t - overhead) * ratio
    load_overhead_s: float
    dram_bytes: int  # the host DRAM that keeps checkpoints (LRU)
    ckpt_bytes: np.ndarray  # int64 per model: its checkpoint in DRAM, the bytes its whole load moves

    @property
    def n_models(self) -> int:
        return len(self.mem_bytes)

    @property
    def all_options(self) -> bool:
        """Does a replay need the loop's paths for MODEL.md §9's options (fast.ALL_OPTIONS)? Not when devices,
        weight tiers, shared bases, substitutes, precision levels and partial caching are all off."""
        return bool(self.device_on != 0 or self.tier != 0 or (self.base_of >= 0).any() or self.substitute != SUB_NEVER
                    or (self.n_levels > 1).any() or self.partial != 0)

    def for_policy(self, policy) -> Tables:
        """These tables with the admission rule that `policy` replays under (its own unless the scenario
        names one)."""
        if self.admission != ADMIT_DEFAULT:
            return self
        return self._replace(admission=ADMISSION_CODES[getattr(policy, "admission", "always")])


def build_tables(scenario: Scenario, catalog: Catalog) -> Tables:
    e, c, x, w = scenario.edge, scenario.cloud, scenario.context, scenario.weights
    models = catalog.models
    n = len(models)
    mem_bytes = np.array([m.memory_bytes for m in models], dtype=np.int64)
    load_time = np.array([e.load_overhead_s + m.memory_gb / e.load_gbps for m in models], dtype=np.float64)
    # What scales with precision and is loaded (GB), and what a model holds besides (GB): with batching, its
    # weights and max_batch requests' runtime memory (MODEL.md §9.2); without, its memory_gb and nothing.
    weights_gb = [m.memory_gb / (1.0 + scenario.catalog.runtime_overhead) for m in models]
    if e.batching:
        runtime_gb = [e.max_batch * _runtime_gb(scenario, m, w) for m, w in zip(models, weights_gb, strict=True)]
        scaled_gb = weights_gb
        mem_bytes = np.array([round((w + r) * 1e9) for w, r in zip(weights_gb, runtime_gb, strict=True)], np.int64)
        load_time = np.array([e.load_overhead_s + w / e.load_gbps for w in weights_gb], dtype=np.float64)
    else:
        runtime_gb = [0.0] * n
        scaled_gb = [m.memory_gb for m in models]
    base_of = np.full(n, -1, np.int32)
    base_bytes = np.zeros(n, np.int64)
    base_load = np.zeros(n, np.float64)
    index = {m.name.lower(): i for i, m in enumerate(models)}
    for i, m in enumerate(models):
        if m.variant_of:  # a variant: its adapter; its base's weights once, shared (MODEL.md §9.5)
            b = index[m.variant_of.lower()]
            base_of[i] = base_of[b] = b
            base_bytes[b], base_load[b] = mem_bytes[b], load_time[b]
            mem_bytes[i] = m.adapter_bytes
            load_time[i] = e.adapter_overhead_s + m.adapter_mb / 1000.0 / e.load_gbps
    if e.checkpoints_in != "dram" and (base_of >= 0).any():  # (scenario validation says so for variants = adapter)
        raise InputError(f"edge.checkpoints_in = {e.checkpoints_in!r} is not supported with variants served as "
                         "adapters (a base and its adapter are separate checkpoints); use checkpoints_in = 'dram'")
    # A base keeps its own bytes and load time: it is a cache entry of its own (its weights), which its own
    # tasks (if any) run on with no adapter.
    pairs = catalog.pairs
    first = np.zeros(len(models) + 1, dtype=np.int32)
    for i, m in enumerate(models):
        first[i + 1] = first[i] + len(m.tasks)
    icl = np.array([models[i].context_window > 0 for i, _ in pairs], dtype=bool)
    window = np.array([m.context_window for m in models], dtype=np.float64)
    pm = np.array([i for i, _ in pairs], dtype=np.int32)
    ex_units = np.where(icl, x.example_units, 0.0)
    sub_first, sub_pair = _equivalents(models, pairs)
    steps = scenario.serving.partial_steps
    part_bytes = np.zeros((n, steps + 1), np.int64)
    for s in range(1, steps + 1):  # exact integers: a prefix never rounds above its share
        part_bytes[:, s] = mem_bytes * s // steps
    ladder = [p.strip() for p in scenario.catalog.ladder.split(",") if p.strip()]
    ladder = sorted(dict.fromkeys(ladder), key=lambda p: -BYTES_PER_PARAM[p])  # stable: bf16 after fp16
    # a row's own `precisions` replace catalog.ladder for it (docs/catalogs.md)
    levels = [[m.precision] + ([p for p in (sorted(m.precisions, key=lambda p: -BYTES_PER_PARAM[p]) or ladder)
                                if BYTES_PER_PARAM[p] < BYTES_PER_PARAM[m.precision]]
                               if scenario.serving.precision_mode == "ladder" and base_of[i] < 0 else [])
              for i, m in enumerate(models)]
    width = max(len(lv) for lv in levels)
    mem_level = np.zeros((n, width), np.int64)
    load_level = np.zeros((n, width))
    pen_level = np.zeros((n, width))
    upgrade_time = np.zeros((n, width))
    for i, m in enumerate(models):
        for j, prec in enumerate(levels[i]):
            if j == 0:
                mem_level[i, 0], load_level[i, 0] = mem_bytes[i], load_time[i]
            else:
                ratio = BYTES_PER_PARAM[prec] / BYTES_PER_PARAM[m.precision]
                mem_level[i, j] = round((scaled_gb[i] * ratio + runtime_gb[i]) * 1e9)
                load_level[i, j] = e.load_overhead_s + scaled_gb[i] * ratio / e.load_gbps
                upgrade_time[i, j] = e.load_overhead_s + (mem_level[i, 0] - mem_level[i, j]) / 1e9 / e.load_gbps
            pen_level[i, j] = accuracy_penalty(m.family, prec)
    return Tables(
        capacity_bytes=round(e.gpu_memory_gb * 1e9),
        executors=int(e.executors),
        edge_rate=float(scenario.edge_rate),
        power_w=float(e.power_w),
        cloud_rate=float(scenario.cloud_rate),
        radio_rtt_s=float(e.radio_rtt_s),
        radio_uplink_mbps=float(e.radio_uplink_mbps),
        rtt_s=float(c.rtt_s),
        uplink_mbps=float(c.uplink_mbps),
        price_per_request=float(c.price_per_request),
        price_per_tflop=float(c.price_per_tflop),
        wear_per_load=float(w.wear_per_load),
        utility=UTILITY_CODES[x.utility],
        half_life_s=float(x.half_life_s),
        linear_rate=float(x.linear_rate),
        relevance=float(x.relevance),
        admission=ADMISSION_CODES[scenario.serving.admission],
        dispatch=DISPATCH_CODES[scenario.serving.dispatch],
        cost_horizon_s=float(scenario.serving.cost_horizon_s),
        w_switch=float(w.switch),
        w_accuracy=float(w.accuracy),
        w_latency=float(w.latency),
        w_cloud=float(w.cloud),
        w_cloud_latency=float(w.cloud_latency),
        warmup_requests=int(scenario.run.warmup_requests),
        warmup_s=float(scenario.run.warmup_s),
        mem_bytes=mem_bytes,
        load_time=load_time,
        window=window,
        first_pair=first,
        base_of=base_of,
        base_bytes=base_bytes,
        base_load=base_load,
        pair_model=pm,
        gflops=np.array([models[i].gflops for i, _ in pairs], dtype=np.float64),
        example_units=ex_units,
        curve=np.array([models[i].tasks[j].curve_params for i, j in pairs], dtype=np.float64).reshape(len(pairs), 7),
        a_ref=np.array([best_accuracy(models[i].tasks[j], models[i].context_window) for i, j in pairs],
                       dtype=np.float64),
        cloud_context_units=window[pm] * ex_units,
        penalty=np.array([models[i].accuracy_penalty for i, _ in pairs], dtype=np.float64),
        substitute=SUBSTITUTE_CODES[scenario.serving.substitute],
        sub_first=sub_first,
        sub_pair=np.array(sub_pair, dtype=np.int32),
        n_levels=np.array([len(lv) for lv in levels], dtype=np.int32),
        mem_level=mem_level,
        load_level=load_level,
        pen_level=pen_level,
        upgrade_time=upgrade_time,
        batching=int(e.batching),
        max_batch=int(e.max_batch),
        mem_gbps=float(e.mem_gbps),
        weight_bytes=np.array([w * 1e9 for w in weights_gb], dtype=np.float64),
        decode=np.array([models[i].family == "LFM" for i, _ in pairs], dtype=np.int8),
        partial=int(scenario.serving.caching == "partial"),
        partial_steps=int(steps),
        part_bytes=part_bytes,
        part_load=part_bytes / 1e9 / e.load_gbps + e.load_overhead_s,
        gamma=np.array([PARTIAL_GAMMA.get(models[i].family, 1.0) for i, _ in pairs], dtype=np.float64),
        device_on=int(scenario.device.memory_gb > 0.0),
        device_rate=float(scenario.device_rate),
        device_power_w=float(scenario.device.power_w),
        w_device_energy=float(w.device_energy),
        device_fits=_device_fits(scenario, models),
        tier=TIER_CODES[e.checkpoints_in],
        tier_ratio=float(e.load_gbps / {"dram": e.load_gbps, "ssd": e.ssd_gbps,
                                        "registry": e.registry_gbps}[e.checkpoints_in]),
        load_overhead_s=float(e.load_overhead_s),
        dram_bytes=round(e.dram_gb * 1e9),
        ckpt_bytes=np.array([round(g * 1e9) for g in (weights_gb if e.batching else [m.memory_gb for m in models])],
                            dtype=np.int64),
    )


def _device_fits(scenario: Scenario, models) -> np.ndarray:
    """Per model: it fits the device ([device] memory_gb, MODEL.md §9.4) at its catalog size, one request at a time
    (no batch's runtime memory); a variant with its base's weights, as results.never_fit counts it."""
    cap = round(scenario.device.memory_gb * 1e9)
    by = {m.name.lower(): m for m in models}
    size = [by[m.variant_of.lower()].memory_bytes + m.adapter_bytes if m.variant_of else m.memory_bytes
            for m in models]
    return np.array([cap > 0 and b <= cap for b in size], dtype=np.int8)


def _equivalents(models, pairs):
    """(sub_first, sub_pair): for each pair, the pairs of the other models of its model's `equivalent` group
    with the same task name (case-insensitive), in pair order (MODEL.md §9.1)."""
    by_task: dict = {}
    for q, (i, j) in enumerate(pairs):
        g = models[i].equivalent.lower()
        if g:
            by_task.setdefault((g, models[i].tasks[j].name.lower()), []).append(q)
    first = np.zeros(len(pairs) + 1, dtype=np.int32)
    out = []
    for p, (i, j) in enumerate(pairs):
        g = models[i].equivalent.lower()
        if g:
            out += [q for q in by_task[g, models[i].tasks[j].name.lower()] if pairs[q][0] != i]
        first[p + 1] = len(out)
    return first, out


# Tokens a request keeps in the KV cache, beyond its demonstrations: the default LFM request (a prompt plus an
# answer, docs/model.md "Choices MODEL.md leaves open").
KV_TOKENS_PER_REQUEST = 256


def _runtime_gb(scenario: Scenario, m, weights_gb: float) -> float:
    """GB of runtime memory one request of a batch holds (MODEL.md §9.2): edge.runtime_mb_per_request if set;
    else for an LFM the fp16 KV cache of 256 tokens and a full context window of demonstrations (2 x layers x
    d_model x 2 bytes per token, catalog.transformer_shape), for the others runtime_overhead x its weights."""
    if scenario.edge.runtime_mb_per_request > 0:
        return scenario.edge.runtime_mb_per_request / 1000.0
    if m.family == "LFM":
        d, layers = transformer_shape(m.params_m, "LFM")
        tokens = KV_TOKENS_PER_REQUEST + m.context_window * scenario.context.example_units
        return 2.0 * layers * d * 2.0 * tokens / 1e9
    return scenario.catalog.runtime_overhead * weights_gb
