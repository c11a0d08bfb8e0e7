"""LC (least context, the paper's policy): evict the model with the fewest examples in context, C_m(now).

Fast structures: models without in-context learning (C_m = 0 always, evicted first) wait in an LRU list;
the others in a lazy heap keyed by (context rank, last use). Under `exp` every context decays at one
rate, so the rank log2 C_m(t_m) + t_m / half_life never needs decaying; under `none` it is C_m itself.
Under `linear` contexts clamp at 0 one pair at a time and their order can change between requests, so
LC scans the cached models instead.

Shared bases (MODEL.md §9.5): a base is ranked by the context evicting it discards, its own and its cached
variants', C_b(t) = C_b + Σ C_v(t) (under `exp` as log2 Σ 2^rank, which orders as C_b(t) does), ties after
them (use_order); it is always in the heap (never in the list of models without context), and its key is
placed again when a variant serves (its on_hit follows) or leaves. So a base goes after its variants, and a
bare base in its turn.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from ..engine.context import UTIL_EXP, UTIL_LINEAR, context_now, context_rank
from ..engine.fast import use_order
from ..engine.jit import compiled, shared
from . import Policy, register


@shared
def base_rank(tab, cx, cached, b, now, skip):
    """LC's rank of base b: the context evicting it discards, its own and that of its cached variants (but
    skip), C_b(now) under `linear`, else a number ordered as it is (context_rank's, of the sum)."""
    n = tab.base_of.shape[0]
    if tab.utility == UTIL_LINEAR:
        total = context_now(tab, cx, b, now)
        for q in range(n):
            if tab.base_of[q] == b and q != b and q != skip and cached[q] != 0:
                total += context_now(tab, cx, q, now)
        return total
    if tab.utility != UTIL_EXP:
        total = cx.ctx[b]
        for q in range(n):
            if tab.base_of[q] == b and q != b and q != skip and cached[q] != 0:
                total += cx.ctx[q]
        return total
    top = context_rank(tab, cx, b)  # log2 of a sum of 2^rank, from the largest (no overflow)
    for q in range(n):
        if tab.base_of[q] == b and q != b and q != skip and cached[q] != 0:
            top = max(top, context_rank(tab, cx, q))
    if top == -np.inf:
        return top
    total = 2.0 ** (context_rank(tab, cx, b) - top)
    for q in range(n):
        if tab.base_of[q] == b and q != b and q != skip and cached[q] != 0:
            total += 2.0 ** (context_rank(tab, cx, q) - top)
    return top + math.log2(total)


_context_now, _context_rank = compiled(context_now), compiled(context_rank)
_base_rank, _use_order = compiled(base_rank), compiled(use_order)


class State(NamedTuple):
    no_context: S.DList  # cached models without in-context learning, least recently used first
    heap: S.LazyHeap  # the others, by (rank, last use) as last placed
    rank: np.ndarray  # float64 per model: its current rank
    order: np.ndarray  # float64 per model: its current use_order (last use; a base after its variants)


def new_state(tables, seed):
    n = tables.n_models
    return State(S.new_dlist(n), S.new_heap(n), np.zeros(n), np.zeros(n))


@njit(inline="always")
def _in_list(tab, m):
    """m waits in the list of models without context (no in-context learning, and no base)."""
    return tab.window[m] == 0.0 and tab.base_of[m] != m


@njit(inline="always")
def victim(ps, es, tab, now):
    if tab.utility == UTIL_LINEAR:  # the least context now, ties to the least recently used
        v = -1
        best = 0.0
        for j in range(es.n_cached[0]):
            q = es.clist[j]
            if tab.base_of[q] == q:
                c = _base_rank(tab, es.context, es.cached, q, now, -1)
            else:
                c = _context_now(tab, es.context, q, now)
            if v < 0 or c < best or (c == best and _use_order(tab, q, es.last_use[q]) < _use_order(tab, v, es.last_use[v])):
                v, best = q, c
        return v
    a = S.dlist_head(ps.no_context)
    if ps.heap.size[0] == 0:
        return a
    top = S.heap_fresh_top(ps.heap, ps.rank, ps.order)
    if a < 0:
        return top
    # The list's models have no context; a base without any (its variants' too) competes with them by last use.
    zero = -np.inf if tab.utility == UTIL_EXP else 0.0
    if ps.rank[top] == zero and ps.order[top] < es.last_use[a]:
        return top
    return a


@njit(inline="always")
def outranks(ps, es, tab, m, now):
    # MODEL.md §4: a newcomer has no context yet, so under `outrank` LC loads only into free memory.
    return False


@njit(inline="always")
def on_evict(ps, es, tab, v):
    if tab.utility == UTIL_LINEAR:
        return
    if _in_list(tab, v):
        S.dlist_remove(ps.no_context, v)
    else:  # the heap's top, or a variant leaving with its base
        S.heap_remove(ps.heap, v)
    b = tab.base_of[v]
    if b >= 0 and b != v and ps.heap.pos[b] >= 0:  # its base discards less now
        ps.rank[b] = _base_rank(tab, es.context, es.cached, b, 0.0, v)
        S.heap_update(ps.heap, b, ps.rank[b], ps.order[b])


@njit(inline="always")
def on_insert(ps, es, tab, m):
    if tab.utility == UTIL_LINEAR:
        return
    if _in_list(tab, m):
        S.dlist_push(ps.no_context, m)
    else:
        # At the bottom for now: its key (an empty context) changes as soon as it serves the request it
        # was loaded for, which places it; nothing is evicted in between.
        ps.rank[m] = np.inf
        ps.order[m] = _use_order(tab, m, es.last_use[m])
        S.heap_push_last(ps.heap, m, np.inf, ps.order[m])


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    if tab.utility == UTIL_LINEAR:
        return
    if _in_list(tab, m):
        S.dlist_to_tail(ps.no_context, m)
    else:
        if tab.base_of[m] == m:  # after its variant: the context of all of them
            ps.rank[m] = _base_rank(tab, es.context, es.cached, m, 0.0, -1)
        else:
            ps.rank[m] = _context_rank(tab, es.context, m)
        ps.order[m] = _use_order(tab, m, es.last_use[m])
        S.heap_update(ps.heap, m, ps.rank[m], ps.order[m])


@register
class LC(Policy):
    """Least context (the paper's LC): evict the model with the fewest examples in context, C_m(now).

    Models without in-context learning have C_m = 0 and go first, whatever their size, as published.
    Ties go to the least recently used.
    """

    name = "lc"

    def key(self, entry, now):
        # context_rank orders models as C_m(now) does (see CacheEntry.context_rank); a base by what its
        # eviction discards (its variants' context with its own), after them on ties.
        if entry.is_base:
            e = entry._engine
            return (base_rank(e.t, e.context, entry.cached_flags(), entry.model, now, -1), entry.use_order)
        return (entry.context_rank(now), entry.use_order)

    def outranks(self, model, cache, now):
        return False  # a newcomer has no context yet: under `outrank` LC loads only into free memory (MODEL.md §4)
