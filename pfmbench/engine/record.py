"""What a replay records: totals (counters, sums, an edge-latency histogram) and the per-request log.

Both engines fill the same records through the cost model (costs.py); results.py names the totals.
"""

from __future__ import annotations

import math
import struct
from collections import namedtuple
from typing import NamedTuple

import numpy as np

from .jit import shared

# Request outcomes.
# SUBSTITUTE: served at the edge by a cached equivalent model (MODEL.md §9.1). DEVICE: run on the user's device,
# zero-shot, never seen by the edge (MODEL.md §9.4).
HIT, LOAD, CLOUD, SUBSTITUTE, DEVICE = 0, 1, 2, 3, 4
OUTCOMES = ("hit", "load", "cloud", "substitute", "device")

# Counters (int64) and sums (float64).
# C_DECLINED: misses that fit but the admission rule offloaded; C_DISPATCHED: requests the dispatch rule sent
# to the cloud although the edge could serve them; C_PRELOADS: loads made in idle time, for no request
# (docs/model.md, "Preloading"; costed in the sums as loads are, but not in C_LOADS).
# C_ADAPTER_LOADS: loads of a variant's adapter alone, onto its resident base (MODEL.md §9.5; also in C_LOADS).
# C_SUBSTITUTED: requests served at the edge by a cached equivalent model (MODEL.md §9.1; not in C_HITS).
# C_REDUCED_LOADS: loads below the model's catalog precision (ladder, MODEL.md §9.2; also in C_LOADS);
# C_UPGRADES: hits that first reloaded the rest of a reduced model's weights (costed as loads; also in C_HITS).
# C_BATCHES: batches started at the edge (MODEL.md §9.2: one per edge request unless batching joins them).
# C_PARTIAL_SERVES: edge requests served by a prefix of their model's layers (caching = partial, MODEL.md §9.3).
# C_FORWARDED: requests a neighbour edge served for their home edge (cooperation = forward, MODEL.md §9.4;
# counted at the serving edge, also in C_HITS there).
# C_DEVICE_SERVED: requests run on the user's device ([device], MODEL.md §9.4; in none of the edge's counts).
# C_LOADS_FROM_DRAM, _SSD, _REGISTRY: loads and preloads by the tier their checkpoint was read from (MODEL.md §9.4;
# C_LOADS_FROM_DRAM + tables.TIER_*); they add up to C_LOADS + C_PRELOADS.
(C_REQUESTS, C_HITS, C_LOADS, C_EVICTIONS, C_OFFLOADS, C_DECLINED, C_DISPATCHED, C_PRELOADS, C_ADAPTER_LOADS,
 C_SUBSTITUTED, C_REDUCED_LOADS, C_UPGRADES, C_BATCHES, C_PARTIAL_SERVES, C_FORWARDED, C_DEVICE_SERVED,
 C_LOADS_FROM_DRAM, C_LOADS_FROM_SSD, C_LOADS_FROM_REGISTRY, N_COUNTS) = range(20)
# S_OFFLOADING_LATENCY: device -> edge, per edge-served request; S_CLOUD_LATENCY: per offloaded request.
# S_EDGE_LATENCY: what a user waits at the edge (queue wait + its own load + compute); S_INFERENCE_LATENCY:
# the system cost's term (queue wait + compute: the request's own load is in its switching cost already).
# S_PRELOAD_*: the switching cost, energy and time of preloads, kept apart from the loads' so that every
# sum of a request's terms adds them in request order (the fast engine accounts a block of requests after
# deciding them); results.py adds them to the loads'.
# S_PARTIAL_FRACTION: the resident fraction f summed over partial serves (MODEL.md §9.3).
# S_DEVICE_*: requests run on the device (MODEL.md §9.4): compute latency (s), energy (J), accuracy cost, GFLOP.
(S_SWITCHING, S_LOAD_ENERGY, S_COMPUTE_ENERGY, S_LOAD_TIME, S_ACC_COST, S_ACCURACY, S_EDGE_LATENCY,
 S_WAIT, S_CLOUD_LATENCY, S_CLOUD_COST, S_K_EFF, S_CONTEXT_DISCARDED, S_EDGE_GFLOP, S_CLOUD_GFLOP,
 S_EDGE_LAT_MAX, S_OFFLOADING_LATENCY, S_PRELOAD_SWITCHING, S_PRELOAD_ENERGY, S_PRELOAD_TIME, S_INFERENCE_LATENCY,
 S_PARTIAL_FRACTION, S_DEVICE_LATENCY, S_DEVICE_ENERGY, S_DEVICE_ACC_COST, S_DEVICE_GFLOP, N_SUMS) = range(26)

# Edge-latency histogram: 1024 buckets per power of two (relative width < 0.1%) from 2^-31 to 2^31 s;
# percentiles come from it so that memory stays bounded and chunked replays merge exactly.
HIST_SUB = 1024
HIST_EXP_MIN = -30
HIST_EXP_MAX = 31
HIST_SIZE = (HIST_EXP_MAX - HIST_EXP_MIN + 1) * HIST_SUB


class Totals(NamedTuple):
    counts: np.ndarray  # int64 [N_COUNTS]
    sums: np.ndarray  # float64 [N_SUMS]
    hist: np.ndarray  # int64 [HIST_SIZE]
    fbits: np.ndarray  # float64 [1], and ibits its int64 view: a latency's bits for its histogram bucket
    ibits: np.ndarray


def new_totals() -> Totals:
    fbits = np.zeros(1, np.float64)
    return Totals(np.zeros(N_COUNTS, np.int64), np.zeros(N_SUMS), np.zeros(HIST_SIZE, np.int64), fbits,
                  fbits.view(np.int64))


@shared
def clear_totals(t):
    """Drop everything counted so far (the warm-up's: MODEL.md §4)."""
    t.counts[:] = 0
    t.sums[:] = 0.0
    t.hist[:] = 0


# The per-request log (`--requests-out`): one array per column, named once here.
LOG_COLUMNS = [("outcome", np.int8), ("latency", np.float64), ("wait", np.float64), ("accuracy", np.float64),
               ("accuracy_cost", np.float64), ("k_eff", np.float64), ("evictions", np.int32),
               ("switching_cost", np.float64), ("cloud_cost", np.float64),
               ("served_pair", np.int32),  # the (model, task) pair that served it (a substitute's own: §9.1)
               ("precision_level", np.int8),  # 0: its model's catalog precision; k: the k-th rung below (§9.2)
               ("resident_fraction", np.float64),  # of the serving model's layers resident (§9.3; 1: whole, cloud)
               ("device_energy_j", np.float64)]  # energy spent on the user's device (§9.4; 0 unless outcome device)
RequestLog = namedtuple("RequestLog", [name for name, _ in LOG_COLUMNS])


def new_log(n: int) -> RequestLog:
    """Buffers for the log of n requests (n = 0: no log)."""
    return RequestLog(*(np.zeros(n, dt) for _, dt in LOG_COLUMNS))


def hist_index(x):
    """Histogram bucket of a latency x >= 0 (0 for x below 2^-31 s, the last bucket above 2^31 s)."""
    if x <= 0.0:
        return 0
    if x == math.inf:
        return HIST_SIZE - 1
    mant, e = math.frexp(x)  # x = mant * 2^e, mant in [0.5, 1)
    if e < HIST_EXP_MIN:
        return 0
    if e > HIST_EXP_MAX:
        return HIST_SIZE - 1
    return (e - HIST_EXP_MIN) * HIST_SUB + int((mant * 2.0 - 1.0) * HIST_SUB)


# The same bucket straight from the float's bits: exponent and the top 10 mantissa bits (HIST_SUB = 2^10).
HIST_BITS_OFFSET = (1022 + HIST_EXP_MIN) * HIST_SUB


@shared
def hist_index_bits(bits):
    """hist_index(x) from x's IEEE-754 bits as an int64 (equal for every x; no frexp in the hot loop)."""
    i = (bits >> 42) - HIST_BITS_OFFSET
    if i < 0:
        return 0
    if i >= HIST_SIZE:
        return HIST_SIZE - 1
    return i


def float_bits(x):
    """x's IEEE-754 bits as a Python int."""
    return struct.unpack("<q", struct.pack("<d", x))[0]


def hist_value(i):
    """Midpoint of bucket i, seconds."""
    e = i // HIST_SUB + HIST_EXP_MIN
    j = i % HIST_SUB
    return math.ldexp(0.5 * (1.0 + (j + 0.5) / HIST_SUB), e)


@shared
def count_latency(rec, latency):
    """One edge latency into the histogram (the bucket from its bits, through the Totals' view)."""
    rec.fbits[0] = latency
    rec.hist[hist_index_bits(rec.ibits[0])] += 1
