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

    def bind(self, tables):
        self.order = []  # cached models in load order, the oldest first
        self.visited = set()  # hit since loaded or since the hand last passed it
        self.hand = None  # where the next search starts (None: at the oldest)
        self.named = None  # the last victim named

    def victim(self, cache, now, rng):
        i = 0 if self.hand is None else self.order.index(self.hand)
        while self.order[i] in self.visited:
            self.visited.discard(self.order[i])
            i = (i + 1) % len(self.order)
        self.named = self.order[i]
        return next(e for e in cache if e.model == self.named)

    def on_evict(self, entry, now):
        # The hand rests after the victim: the next newer model, or None: start again from the oldest. A variant
        # leaving with its base (MODEL.md §9.5) moves it only if it rests there.
        i = self.order.index(entry.model)
        if entry.model in (self.named, self.hand):
            self.hand = self.order[i + 1] if i + 1 < len(self.order) else None
        del self.order[i]

    def on_insert(self, entry, now):
        self.order.append(entry.model)
        self.visited.discard(entry.model)

    def on_hit(self, entry, loaded, now):
        if not loaded:
            self.visited.add(entry.model)
