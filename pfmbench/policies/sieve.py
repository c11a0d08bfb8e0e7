"""SIEVE (Zhang et al., NSDI'24), as libCacheSim's Sieve.c: one FIFO queue of cached models in load
order, a visited bit per model set by a hit, and a hand that walks from the oldest towards the newest,
clearing visited bits, and evicts the first model it finds unvisited; it then rests on the next newer
model (or, past the newest, starts again from the oldest). Hits never move a model.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from . import Policy, register


class State(NamedTuple):
    order: S.DList  # cached models in load order, the oldest at the head (libCacheSim's tail)
    visited: np.ndarray  # int8 per model: hit since loaded or since the hand last passed it
    hand: np.ndarray  # int64 [2]: where the next search starts (-1: at the oldest); the last victim named


def new_state(tables, seed):
    return State(S.new_dlist(tables.n_models), np.zeros(tables.n_models, np.int8), np.full(2, -1, np.int64))


@njit(inline="always")
def victim(ps, es, tab, now):
    p = ps.hand[0]
    if p < 0:
        p = S.dlist_head(ps.order)
    while ps.visited[p]:
        ps.visited[p] = 0
        p = ps.order.next[p]
        if p < 0:
            p = S.dlist_head(ps.order)
    ps.hand[1] = p
    return p


@njit(inline="always")
def on_evict(ps, es, tab, v):
    # The hand rests after the victim: the next newer model, or -1: start again from the oldest. A variant
    # leaving with its base (MODEL.md §9.5) moves it only if it rests there.
    if v == ps.hand[1] or v == ps.hand[0]:
        ps.hand[0] = ps.order.next[v]
    S.dlist_remove(ps.order, v)


@njit(inline="always")
def on_insert(ps, es, tab, m):
    S.dlist_push(ps.order, m)
    ps.visited[m] = 0


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    if not loaded:
        ps.visited[m] = 1


@register
class Sieve(Policy):
    """SIEVE: a FIFO queue with a visited bit and a moving hand (libCacheSim's Sieve)."""

    name = "sieve"

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self.cleared = {}  # model -> (loaded_at, requests when the hand last cleared its visited bit)
        self.hand = None  # load_order of the last victim, or None: the next search starts at the oldest
        self.newer = set()  # the models newer than the last victim when it was named

    def _visited(self, e) -> bool:
        loaded_at, base = self.cleared.get(e.model, (None, 1))
        return e.requests > (base if loaded_at == e.loaded_at else 1)  # the load's own request is no hit

    def victim(self, cache, now, rng):
        order = sorted(cache, key=lambda e: e.load_order)  # load order (unique; a base before its variant)
        i = 0
        if self.hand is not None:
            i = next((j for j, e in enumerate(order) if e.load_order > self.hand), 0)
        while self._visited(order[i]):
            self.cleared[order[i].model] = (order[i].loaded_at, order[i].requests)
            i = (i + 1) % len(order)
        self.hand = order[i].load_order if i + 1 < len(order) else None
        self.newer = {e.model for e in order[i + 1:]}  # where the hand may rest
        return order[i]

    def on_drop(self, entry, now):
        """A variant leaving with the base just named (MODEL.md §9.5): if no model newer than the base is
        left, the hand is past the newest and starts again from the oldest (as the fast hand, -1)."""
        self.newer.discard(entry.model)
        if not self.newer:
            self.hand = None
