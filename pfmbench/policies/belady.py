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
from ..engine.fast import use_order
from ..engine.jit import compiled, shared
from . import Policy, register


@shared
def base_next_use(tab, next_use, cached, b, skip):
    """A shared base's next use (MODEL.md §9.5): the soonest of its own and its cached variants' (but skip)."""
    t = next_use[b]
    for q in range(tab.base_of.shape[0]):
        if tab.base_of[q] == b and q != b and q != skip and cached[q] != 0 and next_use[q] < t:
            t = next_use[q]
    return t


_base_next_use, _use_order = compiled(base_next_use), compiled(use_order)


@njit(inline="always")
def _place_base(ps, es, tab, b, skip):
    """Set base b's keys from its variants' next uses (either way: the heap re-places a stale top)."""
    ps.k1[b] = -_base_next_use(tab, es.next_use, es.cached, b, skip)
    ps.k2[b] = _use_order(tab, b, es.last_use[b])
    S.heap_update(ps.heap, b, ps.k1[b], ps.k2[b])


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
    S.heap_remove(ps.heap, v)  # the top victim() named, or a variant leaving with its base
    b = tab.base_of[v]
    if b >= 0 and b != v and ps.heap.pos[b] >= 0:  # its base's next use may move later
        _place_base(ps, es, tab, b, v)


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    # A served request moves the model's next use later: its key only falls, and is placed at once. A base's
    # is its variants' soonest (it is served after the variant that used it).
    if tab.base_of[m] == m:
        ps.k1[m] = -_base_next_use(tab, es.next_use, es.cached, m, -1)
    else:
        ps.k1[m] = -es.next_use[m]
    ps.k2[m] = _use_order(tab, m, es.last_use[m])
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
        nxt = min([entry.next_use] + [v.next_use for v in entry.variants()])  # a base: its variants' soonest
        return (-nxt, entry.use_order)
