"""Accounting (MODEL.md §4, §6): what each decided request cost, added to the totals and the per-request log,
with the cost model of costs.py: a request served at the edge, by the cloud, on the user's device, for a
neighbour edge; a block of the fast loop's decisions (account_block); a load made for no request."""

from __future__ import annotations

from .costs import (
    accuracy_of,
    cloud_terms,
    device_terms,
    edge_work,
    radio_latency,
    served_accuracy,
    switching_level,
    switching_tier,
    switching_time,
    tier_time,
)
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
def _log_away(log, i, outcome, p, latency, accuracy, accuracy_cost, evictions, cloud_cost):
    """The log row of request i served away from the edge (the cloud, the user's device): the whole model,
    no queue, no context, no load."""
    log.outcome[i] = outcome
    log.served_pair[i] = p
    log.precision_level[i] = 0
    log.resident_fraction[i] = 1.0
    log.latency[i] = latency
    log.wait[i] = 0.0
    log.accuracy[i] = accuracy
    log.accuracy_cost[i] = accuracy_cost
    log.k_eff[i] = 0.0
    log.evictions[i] = evictions
    log.switching_cost[i] = 0.0
    log.cloud_cost[i] = cloud_cost


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
        _log_away(log, i, CLOUD, p, latency, accuracy, 0.0, evictions, cloud_cost)


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
        _log_away(log, i, DEVICE, p, latency, accuracy, accuracy_cost, 0, 0.0)
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
