"""The Age of Context (MODEL.md §2): examples in context, how they decay, what a request adds.

Pure functions over a `Context` record, in the subset of Python that numba compiles: the fast kernel runs
them as machine code, the reference engine as Python (its Context holds lists), the same arithmetic in
the same order, so both engines agree bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .jit import shared

# Utilities u(age) (MODEL.md §2).
UTIL_EXP, UTIL_LINEAR, UTIL_NONE = 0, 1, 2
UTILITY_CODES = {"exp": UTIL_EXP, "linear": UTIL_LINEAR, "none": UTIL_NONE}


class Context(NamedTuple):
    """Examples in context: K[m,k] per (model, task) pair and their sum C_m per model, each as of a time."""

    examples: np.ndarray  # float64 per pair: K[m,k] at examples_time
    examples_time: np.ndarray  # float64 per pair
    ctx: np.ndarray  # float64 per model: C_m at ctx_time (exp and none; linear sums its pairs instead)
    ctx_time: np.ndarray  # float64 per model


def new_context(n_models: int, n_pairs: int) -> Context:
    return Context(np.zeros(n_pairs), np.zeros(n_pairs), np.zeros(n_models), np.zeros(n_models))


@shared(inline=False)
def decay(k, dt, utility, half_life_s, linear_rate):
    """Examples in context after dt seconds with no request."""
    if k <= 0.0 or dt <= 0.0:
        return k
    if utility == UTIL_EXP:
        return k * 2.0 ** (-dt / half_life_s)
    if utility == UTIL_LINEAR:
        v = k - linear_rate * dt
        return max(0.0, v)
    return k


@shared
def examples_now(tab, cx, q, now):
    """K[m,k](now) of pair q."""
    return decay(cx.examples[q], now - cx.examples_time[q], tab.utility, tab.half_life_s, tab.linear_rate)


@shared
def context_now(tab, cx, m, now):
    """C_m(now): the examples in context of all of model m's tasks, decayed to now."""
    if tab.utility == UTIL_LINEAR:  # each pair clamps at 0 on its own: sum the pairs
        total = 0.0
        for q in range(tab.first_pair[m], tab.first_pair[m + 1]):
            total += examples_now(tab, cx, q, now)
        return total
    return decay(cx.ctx[m], now - cx.ctx_time[m], tab.utility, tab.half_life_s, tab.linear_rate)


@shared
def context_rank(tab, cx, m):
    """A number ordered as C_m(now) is, for any now, under `exp` and `none`. Under `exp` every context
    decays at one rate, so log2 C_m(t_m) + t_m / half_life orders them without decaying anything."""
    if tab.utility == UTIL_EXP:
        c = cx.ctx[m]
        return math.log2(c) + cx.ctx_time[m] / tab.half_life_s if c > 0.0 else -np.inf
    return cx.ctx[m]


@shared
def examples_at_service(tab, cx, p, m, now):
    """(K[m,k](now), K_eff, f) for a request for pair p of cached model m: K_eff adds the other tasks'
    examples weighted by the relevance rho and is capped at the window. f is the exp decay factor of
    this step (1 where none applied), for add_demonstration."""
    k, dt = cx.examples[p], now - cx.examples_time[p]
    if tab.utility == UTIL_EXP and k > 0.0 and dt > 0.0:
        f = 2.0 ** (-dt / tab.half_life_s)
        k_own = k * f  # = decay(k, dt, ...), bit for bit
    else:
        f = 1.0
        k_own = decay(k, dt, tab.utility, tab.half_life_s, tab.linear_rate)
    k_eff = k_own
    if tab.relevance > 0.0:
        others = 0.0
        for q in range(tab.first_pair[m], tab.first_pair[m + 1]):
            if q != p:
                others += examples_now(tab, cx, q, now)
        k_eff = k_own + tab.relevance * others
    return k_own, min(k_eff, tab.window[m]), f


@shared
def add_demonstration(tab, cx, p, m, now, k_own, f):
    """A request served at the edge leaves one demonstration: K <- min(window, K + 1), and C_m with it."""
    k_new = min(k_own + 1.0, tab.window[m])
    if f != 1.0 and cx.ctx_time[m] == cx.examples_time[p]:  # same age: the same factor (one exp2 saved)
        ctx_now = cx.ctx[m] * f
    else:
        ctx_now = decay(cx.ctx[m], now - cx.ctx_time[m], tab.utility, tab.half_life_s, tab.linear_rate)
    cx.examples[p] = k_new
    cx.examples_time[p] = now
    cx.ctx[m] = ctx_now + (k_new - k_own)
    cx.ctx_time[m] = now


@shared
def start_context(cx, m, now):
    """A model just loaded has an empty context."""
    cx.ctx[m] = 0.0
    cx.ctx_time[m] = now


@shared
def discard_context(tab, cx, m, now):
    """Evicting m discards all its context; returns how much (C_m(now))."""
    lost = context_now(tab, cx, m, now)
    for q in range(tab.first_pair[m], tab.first_pair[m + 1]):
        cx.examples[q] = 0.0
        cx.examples_time[q] = now
    return lost
