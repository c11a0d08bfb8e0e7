"""Pure scalar pieces of the cost model (MODEL.md §2, §4) that both engines call.

Written in the subset of Python that numba compiles, so the reference engine runs them as Python
and the fast kernel as machine code: the same arithmetic in the same order.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ..catalog import accuracy_at  # noqa: F401  (re-exported: the accuracy curve a(K))

# Utility codes (MODEL.md §2).
UTIL_EXP, UTIL_LINEAR, UTIL_NONE = 0, 1, 2
UTILITY_CODES = {"exp": UTIL_EXP, "linear": UTIL_LINEAR, "none": UTIL_NONE}

# Request outcomes in the per-request log.
HIT, LOAD, CLOUD = 0, 1, 2
OUTCOMES = ("hit", "load", "cloud")

# The per-request log (`--requests-out`), in this order; the fast kernel fills the float columns as one
# 2-D array in the order they stand here.
LOG_COLUMNS = [("outcome", np.int8), ("latency", np.float64), ("wait", np.float64), ("accuracy", np.float64),
               ("accuracy_cost", np.float64), ("k_eff", np.float64), ("evictions", np.int32),
               ("switching_cost", np.float64), ("cloud_cost", np.float64)]
LOG_FLOATS = tuple(name for name, dt in LOG_COLUMNS if dt is np.float64)

# Counters (int64) and sums (float64) that a replay accumulates; results.py names them.
C_REQUESTS, C_HITS, C_LOADS, C_EVICTIONS, C_OFFLOADS, N_COUNTS = range(6)
(S_SWITCHING, S_LOAD_ENERGY, S_COMPUTE_ENERGY, S_LOAD_TIME, S_ACC_COST, S_ACCURACY, S_EDGE_LATENCY,
 S_WAIT, S_OFFLOAD_LATENCY, S_CLOUD_COST, S_K_EFF, S_CONTEXT_DISCARDED, S_EDGE_GFLOP, S_CLOUD_GFLOP,
 S_EDGE_LAT_MAX, N_SUMS) = range(16)

# Edge-latency histogram: 1024 buckets per power of two (relative width < 0.1%) from 2^-31 to 2^31 s;
# percentiles come from it so that memory stays bounded and chunked replays merge exactly.
HIST_SUB = 1024
HIST_EXP_MIN = -30
HIST_EXP_MAX = 31
HIST_SIZE = (HIST_EXP_MAX - HIST_EXP_MIN + 1) * HIST_SUB


def decay(k, dt, utility, half_life_s, linear_rate):
    """Examples in context after dt seconds with no request (MODEL.md §2)."""
    if k <= 0.0 or dt <= 0.0:
        return k
    if utility == UTIL_EXP:
        return k * 2.0 ** (-dt / half_life_s)
    if utility == UTIL_LINEAR:
        v = k - linear_rate * dt
        return max(0.0, v)
    return k


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


def hist_index_bits(bits):
    """hist_index(x) from x's IEEE-754 bits as an int64 (equal for every x; no frexp in the hot loop)."""
    i = (bits >> 42) - HIST_BITS_OFFSET
    if i < 0:
        return 0
    if i >= HIST_SIZE:
        return HIST_SIZE - 1
    return i


def float_bits(x):
    """x's IEEE-754 bits as a Python int (the reference engine's way to call hist_index_bits)."""
    return struct.unpack("<q", struct.pack("<d", x))[0]


def hist_value(i):
    """Midpoint of bucket i, seconds."""
    e = i // HIST_SUB + HIST_EXP_MIN
    j = i % HIST_SUB
    return math.ldexp(0.5 * (1.0 + (j + 0.5) / HIST_SUB), e)


def splitmix64_next(state):
    """One step of SplitMix64 on a Python int (the reference engine); returns (new_state, value)."""
    mask = (1 << 64) - 1
    state = (state + 0x9E3779B97F4A7C15) & mask
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return state, z ^ (z >> 31)
