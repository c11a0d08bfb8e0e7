"""The cost of serving one request (MODEL.md §4), written once: both engines call these functions.

Written in the subset of Python that numba compiles, so the reference engine runs them as Python and the
fast kernel as machine code: the same arithmetic in the same order. The system cost's terms are listed
in engine/terms.py; docs/engine.md ("Adding a cost term") says what a new one touches here (its price in
"deciding", its sum in serve_*): neither engine changes.
"""

from __future__ import annotations

import math

from ..catalog import accuracy_at
from .jit import shared

shared(accuracy_at, inline=False)  # the catalog's curve a(K), compiled too (numbers in, a number out)


@shared
def radio_latency(tab, input_mb):
    """Device -> edge: the paper's offloading latency of a request served at the edge (MODEL.md §4)."""
    return tab.radio_rtt_s + input_mb * 8.0 / tab.radio_uplink_mbps


@shared
def cloud_terms(tab, p, units, input_mb):
    """(GFLOP, latency s, cloud cost) of offloading a request for pair p: radio, the core network and the
    cloud's compute with a full context (it serves at a_ref)."""
    work = tab.gflops[p] * (units + tab.cloud_context_units[p])
    latency = radio_latency(tab, input_mb) + tab.rtt_s + input_mb * 8.0 / tab.uplink_mbps + work / tab.cloud_rate
    return work, latency, tab.price_per_request + tab.price_per_tflop * work / 1000.0


@shared
def accuracy_of(tab, p, k_eff):
    """(accuracy %, accuracy cost) of serving pair p with k_eff examples in context."""
    c = tab.curve
    accuracy = accuracy_at(k_eff, c[p, 0], c[p, 1], c[p, 2], c[p, 3], c[p, 4], c[p, 5], c[p, 6])
    if tab.penalty[p] > 0.0:  # served below full precision (MODEL.md §9.2); the cloud serves at full precision
        accuracy = max(0.0, accuracy - tab.penalty[p])
    return accuracy, (tab.a_ref[p] - accuracy) / 100.0


@shared
def substitute_accuracy(tab, p, q, k_eff):
    """(accuracy %, accuracy cost) of serving a request for pair p with pair q of a cached equivalent model
    (MODEL.md §9.1): q's curve at its examples in context, against p's a_ref (the cloud serves the requested
    model); a substitute better than that pays nothing (our reading: docs/model.md)."""
    c = tab.curve
    accuracy = accuracy_at(k_eff, c[q, 0], c[q, 1], c[q, 2], c[q, 3], c[q, 4], c[q, 5], c[q, 6])
    if tab.penalty[q] > 0.0:
        accuracy = max(0.0, accuracy - tab.penalty[q])
    return accuracy, max(0.0, tab.a_ref[p] - accuracy) / 100.0


@shared
def served_accuracy(tab, p, q, k_eff, level):
    """(accuracy %, accuracy cost) of a request for pair p served by pair q (p itself or a substitute) with its
    model at precision level `level` (MODEL.md §9.2): q's curve minus that level's penalty, against p's a_ref."""
    c = tab.curve
    accuracy = accuracy_at(k_eff, c[q, 0], c[q, 1], c[q, 2], c[q, 3], c[q, 4], c[q, 5], c[q, 6])
    penalty = tab.pen_level[tab.pair_model[q], level]
    if penalty > 0.0:
        accuracy = max(0.0, accuracy - penalty)
    return accuracy, max(0.0, tab.a_ref[p] - accuracy) / 100.0


@shared
def edge_work(tab, p, units, k_eff):
    """(GFLOP, seconds) of serving `units` of pair p at the edge with k_eff demonstrations prepended."""
    work = tab.gflops[p] * (units + k_eff * tab.example_units[p])
    return work, work / tab.edge_rate


@shared
def service_time(tab, p, units, k_eff, n):
    """Seconds of serving `units` of pair p with k_eff demonstrations, as the n-th request of a batch (MODEL.md
    §9.2; docs/model.md, "Batching"). Batching off: the compute-only W / edge_rate. On: the roofline, each step
    max(weights / mem_gbps, n x the step's GFLOP / edge_rate): an LFM generates `units` tokens, one step each,
    after a compute-bound prefill of its demonstrations; other models run one step of all their units. A
    request is timed with the batch as it is when it joins (n requests, itself included)."""
    work, compute = edge_work(tab, p, units, k_eff)
    if tab.batching == 0:
        return compute
    t_mem = tab.weight_bytes[tab.pair_model[p]] / (tab.mem_gbps * 1e9)
    if tab.decode[p] != 0:
        prefill = tab.gflops[p] * k_eff * tab.example_units[p] / tab.edge_rate
        return prefill + max(1.0, units) * max(t_mem, n * tab.gflops[p] / tab.edge_rate)
    return max(t_mem, n * work / tab.edge_rate)


@shared
def first_free_executor(free_at):
    """The executor that frees up first (the lowest index among ties)."""
    j = 0
    for e in range(1, len(free_at)):
        if free_at[e] < free_at[j]:
            j = e
    return j


@shared
def switching(tab, m):
    """(load time s, load energy J, switching cost) of loading model m."""
    load = tab.load_time[m]
    energy = tab.power_w * load
    return load, energy, load + energy / 1000.0 + tab.wear_per_load


@shared
def switching_load(tab, m, with_base):
    """switching(tab, m), or with `with_base` (MODEL.md §9.5: m's base was not resident) of loading m's base's
    weights and then m's adapter: one load of both."""
    if not with_base:
        return switching(tab, m)
    load = tab.base_load[tab.base_of[m]] + tab.load_time[m]
    energy = tab.power_w * load
    return load, energy, load + energy / 1000.0 + tab.wear_per_load


@shared
def switching_level(tab, m, with_base, level):
    """switching_load(tab, m, with_base) of loading m at precision level `level` (MODEL.md §9.2)."""
    if level == 0:
        return switching_load(tab, m, with_base)
    load = tab.load_level[m, level]
    energy = tab.power_w * load
    return load, energy, load + energy / 1000.0 + tab.wear_per_load


@shared
def switching_time(tab, load):
    """(time s, energy J, switching cost) of a load taking `load` s (an upgrade, a prefix grown, a prefix loaded)."""
    energy = tab.power_w * load
    return load, energy, load + energy / 1000.0 + tab.wear_per_load


@shared
def tier_time(tab, load, tier):
    """The time of a load that takes `load` s from the DRAM tier (load_overhead_s + GB / load_gbps) when its
    checkpoint is read from `tier` instead (MODEL.md §9.4): load_overhead_s + GB / that tier's GB/s."""
    if tier == 0:
        return load
    return tab.load_overhead_s + (load - tab.load_overhead_s) * tab.tier_ratio


@shared
def switching_tier(tab, m, with_base, tier):
    """switching_load(tab, m, with_base) of loading m's whole checkpoint from `tier` (MODEL.md §9.4)."""
    if tier == 0:
        return switching_load(tab, m, with_base)
    return switching_time(tab, tier_time(tab, tab.load_time[m], tier))


@shared
def ladder_level(tab, m, free, requests_so_far, now):
    """The precision level to load m at under precision_mode = "ladder" (MODEL.md §9.2; docs/model.md,
    "Precision"): the level of least expected loss, where a level's loss is its accuracy penalty over m's
    expected requests within cost_horizon_s, plus, if it does not fit the free memory, what evicting costs,
    counted as one reload of m's own size at its catalog precision (a stand-in for the victims' reloads).
    Levels larger than the GPU are never chosen; ties go to the higher precision."""
    horizon = tab.cost_horizon_s
    expected = requests_so_far / max(now, horizon) * horizon
    reload = load_price(tab, switching(tab, m))
    best = 0
    best_loss = math.inf
    for lv in range(tab.n_levels[m]):
        if tab.mem_level[m, lv] > tab.capacity_bytes:
            continue
        loss = accuracy_price(tab, tab.pen_level[m, lv] / 100.0 * expected)
        if tab.mem_level[m, lv] > free:
            loss += reload
        if loss < best_loss:
            best = lv
            best_loss = loss
    return best


@shared
def prefix_to_load(tab, m, free):
    """caching = partial (MODEL.md §9.3), on a miss for m that does not fit the free memory whole: the prefix
    (layer groups s of S) to load, 0 for the whole model. The largest prefix that fits the free memory (no
    eviction); if none does, the whole model when it fits the GPU (evicting as binary caching does), else
    the largest prefix that fits the GPU (evicting for it); 0 if none."""
    steps = tab.partial_steps
    for s in range(steps - 1, 0, -1):
        if tab.part_bytes[m, s] <= free:
            return s
    if tab.mem_bytes[m] <= tab.capacity_bytes:
        return 0
    for s in range(steps - 1, 0, -1):
        if tab.part_bytes[m, s] <= tab.capacity_bytes:
            return s
    return 0


@shared
def prefix_to_grow(tab, m, part, free):
    """A hit on m resident as prefix `part`: the largest prefix s > part whose extra bytes fit the free memory
    now (S: the whole model), or `part` itself if none."""
    steps = tab.partial_steps
    for s in range(steps, part, -1):
        if tab.part_bytes[m, s] - tab.part_bytes[m, part] <= free:
            return s
    return part


@shared
def device_terms(tab, p, units):
    """(GFLOP, seconds, energy J) of serving `units` of pair p on the user's device (MODEL.md §9.4): zero-shot (a
    device serves one user: no demonstrations of others in context), at the device's rate, no queue, no radio."""
    work = tab.gflops[p] * units
    seconds = work / tab.device_rate
    return work, seconds, tab.device_power_w * seconds


# -- deciding (MODEL.md §4) --------------------------------------------------------------------------------
# What one request adds to the system cost, for the rules that decide, the policies that price decisions and
# opt. Each weight multiplies its term in one function here (the totals' weighting: engine/terms.py).
@shared
def latency_price(tab, seconds):
    """w_latency x seconds: an edge request's wait, compute and transfer, a device's compute."""
    return tab.w_latency * seconds


@shared
def accuracy_price(tab, accuracy_cost):
    return tab.w_accuracy * accuracy_cost


@shared
def load_price(tab, load):
    """What a load adds: w_switch x its switching cost. load: (time s, energy J, switching cost), as the
    switching functions return it."""
    return tab.w_switch * load[2]


@shared
def edge_service_price(tab, wait, compute, radio, accuracy_cost):
    """What a request served at the edge adds, its load aside (load_price): its latency (queue wait, compute,
    the device -> edge transfer) and its accuracy cost."""
    return latency_price(tab, wait + compute + radio) + accuracy_price(tab, accuracy_cost)


@shared  # inlined in the two compiled functions that call it (and opt's Python)
def cloud_price(tab, p, units, input_mb):
    """What offloading this request adds to the system cost."""
    _, latency, cost = cloud_terms(tab, p, units, input_mb)
    return tab.w_cloud * cost + tab.w_cloud_latency * latency


@shared  # inlined in the compiled functions that call it
def edge_price(tab, p, units, input_mb, k_eff, wait, load):
    """What serving this request at the edge now costs, for the `cheapest` dispatch rule (MODEL.md §4): queue
    wait, load and compute latency, the device -> edge transfer, and its accuracy cost. The load time stands
    for the load's switching cost (which the system cost charges instead of the latency: once)."""
    _, compute = edge_work(tab, p, units, k_eff)
    _, accuracy_cost = accuracy_of(tab, p, k_eff)
    return edge_service_price(tab, wait + load, compute, radio_latency(tab, input_mb), accuracy_cost)


@shared
def substitute_price(tab, p, q, units, input_mb, k_eff, wait):
    """What serving a request for pair p with pair q of a cached equivalent (MODEL.md §9.1) costs now: as
    edge_price, with q's compute and accuracy against p's a_ref, and no load."""
    _, compute = edge_work(tab, q, units, k_eff)
    _, accuracy_cost = substitute_accuracy(tab, p, q, k_eff)
    return edge_service_price(tab, wait, compute, radio_latency(tab, input_mb), accuracy_cost)


@shared(inline=False)
def edge_is_dearer(tab, p, units, input_mb, k_eff, wait, load):
    """The `cheapest` dispatch rule: send the request to the cloud when the edge would cost more now."""
    return edge_price(tab, p, units, input_mb, k_eff, wait, load) > cloud_price(tab, p, units, input_mb)


@shared
def device_price(tab, p, units):
    """What running this request on the user's device adds to the system cost (MODEL.md §9.4)."""
    _, seconds, energy = device_terms(tab, p, units)
    _, accuracy_cost = accuracy_of(tab, p, 0.0)
    return latency_price(tab, seconds) + tab.w_device_energy * energy / 1000.0 + accuracy_price(tab, accuracy_cost)


@shared(inline=False)
def device_is_cheapest(tab, p, units, input_mb, edge_ok, k_eff, wait, load):
    """The device rule (MODEL.md §9.4): run a request whose model fits the device there when that costs less now
    than the cloud and, if the edge could serve it (edge_ok), less than the edge with k_eff examples in context
    after `wait` s in its queue and `load` s of loading (edge_price, as the `cheapest` dispatch rule prices it).
    Ties go to the edge or the cloud."""
    price = device_price(tab, p, units)
    if price >= cloud_price(tab, p, units, input_mb):
        return False
    return not edge_ok or price < edge_price(tab, p, units, input_mb, k_eff, wait, load)


@shared(inline=False)
def worth_loading(tab, requests_so_far, p, m, now, units, input_mb, with_base, tier):
    """The `cost` admission rule: load m only if what its expected requests within the horizon save at the
    edge (zero-shot, a pessimistic bound) repays the switching cost (which carries the load's time).

    Expected requests: m's rate so far (its requests over the time since the trace began, at least one
    horizon) times the horizon; this request stands for the size of the next ones. The switching cost is this
    load's, from the tier its checkpoint is read from now (MODEL.md §9.4)."""
    horizon = tab.cost_horizon_s
    expected = requests_so_far / max(now, horizon) * horizon
    saving = cloud_price(tab, p, units, input_mb) - edge_price(tab, p, units, input_mb, 0.0, 0.0, 0.0)
    return expected * saving > load_price(tab, switching_tier(tab, m, with_base, tier))


# Accounting what a request cost lives in account.py (it prices with the functions above).
from .account import (  # noqa: F401  (re-exported)
    account_block,
    account_preload,
    forwarded,
    serve_cloud,
    serve_device,
    serve_edge,
)
