"""Belady's MIN (offline): evict the cached model whose next request is farthest in the future; models never
requested again go first, the least recently used of them first. Needs each request's next use: from one
reverse look over a trace in memory, or, for a trace streamed in chunks, from an index on disk built in
bounded memory (trace/nextuse.py). Its hits and
misses equal libCacheSim's Belady request by request (ties between models never requested again decide
only which of them leave, never a later hit or miss).
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from . import Policy, register


class State(NamedTuple):
    heap: S.LazyHeap  # cached models by (-next use, last use): the farthest next use on top
    k1: np.ndarray  # float64 per model: -next use
    k2: np.ndarray  # float64 per model: last use


def new_state(tables, seed):
    n = tables.n_models
    return State(S.new_heap(n), np.zeros(n), np.zeros(n))


@njit(inline="always")
def victim(ps, es, tab, now):
    return S.heap_fresh_top(ps.heap, ps.k1, ps.k2)


@njit(inline="always")
def on_evict(ps, es, tab, v):
    S.heap_pop_top(ps.heap)


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    # A served request moves the model's next use later: its key only falls, and is placed at once.
    ps.k1[m] = -es.next_use[m]
    ps.k2[m] = es.last_use[m]
    if loaded:
        S.heap_push(ps.heap, m, ps.k1[m], ps.k2[m])
    else:
        S.heap_update(ps.heap, m, ps.k1[m], ps.k2[m])


@register
class Belady(Policy):
    """Belady's MIN: evict the model whose next request is farthest away (offline: it reads the trace ahead)."""

    name = "belady"
    needs_next_use = True

    def key(self, entry, now):
        return (-entry.next_use, entry.last_use)
