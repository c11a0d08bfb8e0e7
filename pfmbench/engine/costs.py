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
from .record import (
    C_ADAPTER_LOADS,
    C_DEVICE_SERVED,
    C_FORWARDED,
    C_HITS,
    C_LOADS,
    C_LOADS_FROM_DRAM,
    C_OFFLOADS,
    C_PARTIAL_SERVES,
    C_PRELOADS,
    C_REDUCED_LOADS,
    C_REQUESTS,
    C_SUBSTITUTED,
    C_UPGRADES,
    CLOUD,
    DEVICE,
    HIT,
    LOAD,
    S_ACC_COST,
    S_ACCURACY,
    S_CLOUD_COST,
    S_CLOUD_GFLOP,
    S_CLOUD_LATENCY,
    S_COMPUTE_ENERGY,
    S_DEVICE_ACC_COST,
    S_DEVICE_ENERGY,
    S_DEVICE_GFLOP,
    S_DEVICE_LATENCY,
    S_EDGE_GFLOP,
    S_EDGE_LAT_MAX,
    S_EDGE_LATENCY,
    S_INFERENCE_LATENCY,
    S_K_EFF,
    S_LOAD_ENERGY,
    S_LOAD_TIME,
    S_OFFLOADING_LATENCY,
    S_PARTIAL_FRACTION,
    S_PRELOAD_ENERGY,
    S_PRELOAD_SWITCHING,
    S_PRELOAD_TIME,
    S_SWITCHING,
    S_WAIT,
    SUBSTITUTE,
    count_latency,
    hist_index_bits,
)

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
def serve_edge(tab, rec, log_on, log, i, p, m, input_mb, k_eff, work, compute, wait, loaded, evictions, with_base, q,
               level, part, upgrade_s, tier):
    """Account request i, served at the edge by model m (loaded for it if `loaded`, with its base's weights
    if `with_base`), after `wait` s in the queue; returns its latency. q: the pair that served it, p itself
    or, for a substitute (MODEL.md §9.1), a cached equivalent's pair (k_eff, work and compute are then q's).
    level: the precision level q's model served at (MODEL.md §9.2); part: the prefix of its layers it served
    with (MODEL.md §9.3, s of partial_steps; 0: whole; `compute` is already the prefix's); upgrade_s > 0: m
    was first reloaded up to that (a precision upgrade, a prefix grown), costed as a load of that many s.
    tier: where a load read m's checkpoint from (MODEL.md §9.4; tables.TIER_*, 0: DRAM at load_gbps)."""
    load = 0.0
    switching_cost = 0.0
    if loaded:
        if part > 0:  # a prefix of its layers
            load, load_energy, switching_cost = switching_time(tab, tier_time(tab, tab.part_load[m, part], tier))
        elif tier != 0:  # from a slower tier than DRAM
            load, load_energy, switching_cost = switching_time(tab, tier_time(tab, tab.load_level[m, level], tier))
        else:
            load, load_energy, switching_cost = switching_level(tab, m, with_base, level)
        rec.counts[C_LOADS] += 1
        rec.counts[C_LOADS_FROM_DRAM + tier] += 1
        if level > 0:
            rec.counts[C_REDUCED_LOADS] += 1
        if not with_base and tab.base_of[m] >= 0 and tab.base_of[m] != m:  # an adapter onto its resident base
            rec.counts[C_ADAPTER_LOADS] += 1
        rec.sums[S_SWITCHING] += switching_cost
        rec.sums[S_LOAD_ENERGY] += load_energy
        rec.sums[S_LOAD_TIME] += load
    elif q == p:
        rec.counts[C_HITS] += 1
        if upgrade_s > 0.0:
            load, load_energy, switching_cost = switching_time(tab, upgrade_s)
            rec.counts[C_UPGRADES] += 1
            rec.sums[S_SWITCHING] += switching_cost
            rec.sums[S_LOAD_ENERGY] += load_energy
            rec.sums[S_LOAD_TIME] += load
    else:
        rec.counts[C_SUBSTITUTED] += 1
    latency = wait + load + compute
    if q == p and level == 0 and part == 0:
        accuracy, accuracy_cost = accuracy_of(tab, p, k_eff)
    else:
        accuracy, accuracy_cost = served_accuracy(tab, p, q, k_eff, level)
    fraction = 1.0
    if part > 0:  # early exit after the resident layers (MODEL.md §9.3): a(K) * f^gamma, floor 0
        fraction = part / tab.partial_steps
        accuracy = accuracy * fraction ** tab.gamma[q]
        accuracy_cost = max(0.0, tab.a_ref[p] - accuracy) / 100.0
        work = work * fraction
        rec.counts[C_PARTIAL_SERVES] += 1
        rec.sums[S_PARTIAL_FRACTION] += fraction
    s = rec.sums
    s[S_COMPUTE_ENERGY] += tab.power_w * compute
    s[S_ACC_COST] += accuracy_cost
    s[S_ACCURACY] += accuracy
    s[S_EDGE_LATENCY] += latency
    s[S_INFERENCE_LATENCY] += wait + compute  # the system cost's term: its own load is in switching_cost
    s[S_OFFLOADING_LATENCY] += radio_latency(tab, input_mb)
    s[S_WAIT] += wait
    s[S_K_EFF] += k_eff
    s[S_EDGE_GFLOP] += work
    s[S_EDGE_LAT_MAX] = max(s[S_EDGE_LAT_MAX], latency)
    count_latency(rec, latency)
    if log_on:
        log.outcome[i] = LOAD if loaded else (HIT if q == p else SUBSTITUTE)
        log.served_pair[i] = q
        log.precision_level[i] = level
        log.resident_fraction[i] = fraction
        log.latency[i] = latency
        log.wait[i] = wait
        log.accuracy[i] = accuracy
        log.accuracy_cost[i] = accuracy_cost
        log.k_eff[i] = k_eff
        log.evictions[i] = evictions
        log.switching_cost[i] = switching_cost
        log.cloud_cost[i] = 0.0
    return latency


@shared
def serve_cloud(tab, rec, log_on, log, i, p, units, input_mb, evictions):
    """Account request i, offloaded: the cloud keeps full context and serves at a_ref."""
    work, latency, cloud_cost = cloud_terms(tab, p, units, input_mb)
    accuracy = tab.a_ref[p]
    rec.counts[C_OFFLOADS] += 1
    s = rec.sums
    s[S_CLOUD_LATENCY] += latency
    s[S_CLOUD_COST] += cloud_cost
    s[S_CLOUD_GFLOP] += work
    s[S_ACCURACY] += accuracy
    if log_on:
        log.outcome[i] = CLOUD
        log.served_pair[i] = p
        log.precision_level[i] = 0
        log.resident_fraction[i] = 1.0
        log.latency[i] = latency
        log.wait[i] = 0.0
        log.accuracy[i] = accuracy
        log.accuracy_cost[i] = 0.0
        log.k_eff[i] = 0.0
        log.evictions[i] = evictions
        log.switching_cost[i] = 0.0
        log.cloud_cost[i] = cloud_cost


@shared
def forwarded(tab, rec, log_on, log, i, latency, rtt):
    """Request i, already accounted by serve_edge with `latency`, was served here for its home edge (cooperation
    = forward, MODEL.md §9.4): it also pays the round trip between the edges, rtt s, in its edge latency (its
    histogram bucket moves) and in the offloading latency, the system cost's device -> edge term."""
    rec.counts[C_FORWARDED] += 1
    s = rec.sums
    s[S_EDGE_LATENCY] += rtt
    s[S_OFFLOADING_LATENCY] += rtt
    s[S_EDGE_LAT_MAX] = max(s[S_EDGE_LAT_MAX], latency + rtt)
    rec.fbits[0] = latency
    rec.hist[hist_index_bits(rec.ibits[0])] -= 1
    count_latency(rec, latency + rtt)
    if log_on:
        log.latency[i] = latency + rtt


@shared
def device_terms(tab, p, units):
    """(GFLOP, seconds, energy J) of serving `units` of pair p on the user's device (MODEL.md §9.4): zero-shot (a
    device serves one user: no demonstrations of others in context), at the device's rate, no queue, no radio."""
    work = tab.gflops[p] * units
    seconds = work / tab.device_rate
    return work, seconds, tab.device_power_w * seconds


@shared
def serve_device(tab, rec, log_on, log, i, p, units):
    """Account request i, run on the user's device: its latency (weighted as the edge's inference latency), its
    energy (costed per kJ with w_device_energy) and its zero-shot accuracy cost."""
    work, latency, energy = device_terms(tab, p, units)
    accuracy, accuracy_cost = accuracy_of(tab, p, 0.0)
    rec.counts[C_DEVICE_SERVED] += 1
    s = rec.sums
    s[S_DEVICE_LATENCY] += latency
    s[S_DEVICE_ENERGY] += energy
    s[S_DEVICE_ACC_COST] += accuracy_cost
    s[S_DEVICE_GFLOP] += work
    s[S_ACCURACY] += accuracy
    if log_on:
        log.outcome[i] = DEVICE
        log.served_pair[i] = p
        log.precision_level[i] = 0
        log.resident_fraction[i] = 1.0
        log.latency[i] = latency
        log.wait[i] = 0.0
        log.accuracy[i] = accuracy
        log.accuracy_cost[i] = accuracy_cost
        log.k_eff[i] = 0.0
        log.evictions[i] = 0
        log.switching_cost[i] = 0.0
        log.cloud_cost[i] = 0.0
        log.device_energy_j[i] = energy


@shared(inline=False)
def account_block(tab, rec, rq, block, base, lo, hi, log_on, log):
    """Account requests lo..hi-1 of a chunk `rq` (Requests) as the fast loop decided them: block.outcome,
    k_eff, wait and evictions of request i are at i - base. The same calls, in the same order, as accounting
    each request when it is decided: nothing accounted feeds back into the decisions."""
    rec.counts[C_REQUESTS] += hi - lo
    for i in range(lo, hi):
        b = i - base
        p = rq.pair[i]
        if block.outcome[b] == CLOUD:
            serve_cloud(tab, rec, log_on, log, i, p, rq.units[i], rq.input_mb[i], block.evictions[b])
        elif block.outcome[b] == DEVICE:
            serve_device(tab, rec, log_on, log, i, p, rq.units[i])
        else:
            k_eff = block.k_eff[b]
            q = block.served[b]  # p, or a substitute's pair (MODEL.md §9.1)
            work, _ = edge_work(tab, q, rq.units[i], k_eff)
            compute = block.compute[b]  # service_time when decided (its batch, MODEL.md §9.2)
            latency = serve_edge(tab, rec, log_on, log, i, p, tab.pair_model[p], rq.input_mb[i], k_eff, work,
                                 compute, block.wait[b], block.outcome[b] == LOAD, block.evictions[b],
                                 block.with_base[b] != 0, q, block.level[b], block.part[b], block.upgrade_s[b], block.tier[b])
            if rq.edge_rtt_s >= 0.0 and block.outcome[b] == HIT:  # served for a neighbour (cooperation forward)
                forwarded(tab, rec, log_on, log, i, latency, rq.edge_rtt_s)


@shared
def account_preload(tab, rec, m, with_base, tier):
    """Account a preload of model m (with its base's weights if `with_base`), costed as a load from `tier`
    (MODEL.md §9.4; in the S_PRELOAD_* sums); returns its load time."""
    load, energy, switching_cost = switching_tier(tab, m, with_base, tier)
    rec.counts[C_PRELOADS] += 1
    rec.counts[C_LOADS_FROM_DRAM + tier] += 1
    rec.sums[S_PRELOAD_SWITCHING] += switching_cost
    rec.sums[S_PRELOAD_ENERGY] += energy
    rec.sums[S_PRELOAD_TIME] += load
    return load


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
