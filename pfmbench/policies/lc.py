"""LC (least context, the paper's policy): evict the model with the fewest examples in context, C_m(now).

Fast structures: models without in-context learning (C_m = 0 always, evicted first) wait in an LRU list;
the others in a lazy heap keyed by (context rank, last use). Under `exp` every context decays at one
rate, so the rank log2 C_m(t_m) + t_m / half_life never needs decaying; under `none` it is C_m itself.
Under `linear` contexts clamp at 0 one pair at a time and their order can change between requests, so
LC scans the cached models instead.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from ..engine.context import UTIL_LINEAR, context_now, context_rank
from ..engine.jit import compiled
from . import Policy, register

_context_now, _context_rank = compiled(context_now), compiled(context_rank)


class State(NamedTuple):
    no_context: S.DList  # cached models without in-context learning, least recently used first
    heap: S.LazyHeap  # the others, by (rank, last use) as last placed
    rank: np.ndarray  # float64 per model: its current rank


def new_state(tables, seed):
    n = tables.n_models
    return State(S.new_dlist(n), S.new_heap(n), np.zeros(n))


@njit(inline="always")
def victim(ps, es, tab, now):
    if tab.utility == UTIL_LINEAR:  # the least context now, ties to the least recently used
        v = -1
        best = 0.0
        for j in range(es.n_cached[0]):
            q = es.clist[j]
            c = _context_now(tab, es.context, q, now)
            if v < 0 or c < best or (c == best and es.last_use[q] < es.last_use[v]):
                v, best = q, c
        return v
    if S.dlist_head(ps.no_context) >= 0:
        return S.dlist_head(ps.no_context)
    return S.heap_fresh_top(ps.heap, ps.rank, es.last_use)


@njit(inline="always")
def outranks(ps, es, tab, m, now):
    # MODEL.md §4: a newcomer has no context yet, so under `outrank` LC loads only into free memory.
    return False


@njit(inline="always")
def on_evict(ps, es, tab, v):
    if tab.utility == UTIL_LINEAR:
        return
    if tab.window[v] == 0.0:
        S.dlist_remove(ps.no_context, v)
    else:  # v is the heap's top
        S.heap_pop_top(ps.heap)


@njit(inline="always")
def on_insert(ps, es, tab, m):
    if tab.utility == UTIL_LINEAR:
        return
    if tab.window[m] == 0.0:
        S.dlist_push(ps.no_context, m)
    else:
        # At the bottom for now: its key (an empty context) changes as soon as it serves the request it
        # was loaded for, which places it; nothing is evicted in between.
        ps.rank[m] = np.inf
        S.heap_push_last(ps.heap, m, np.inf, es.last_use[m])


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    if tab.utility == UTIL_LINEAR:
        return
    if tab.window[m] == 0.0:
        S.dlist_to_tail(ps.no_context, m)
    else:
        ps.rank[m] = _context_rank(tab, es.context, m)
        S.heap_update(ps.heap, m, ps.rank[m], es.last_use[m])


@register
class LC(Policy):
    """Least context (the paper's LC): evict the model with the fewest examples in context, C_m(now).

    Models without in-context learning have C_m = 0 and go first, whatever their size, as published.
    Ties go to the least recently used.
    """

    name = "lc"

    def key(self, entry, now):
        # context_rank orders models as C_m(now) does (see CacheEntry.context_rank).
        return (entry.context_rank(now), entry.last_use)

    def outranks(self, model, cache, now):
        return False  # a newcomer has no context yet: under `outrank` LC loads only into free memory (MODEL.md §4)
