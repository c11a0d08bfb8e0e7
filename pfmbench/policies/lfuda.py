"""LFUDA (LFU with dynamic aging, Arlitt et al. 2000) as libCacheSim's `LFUDA.c` defines it.

Each cached model has a priority (libCacheSim's `freq`) and the cache an age L (its `min_freq`, 0 at
first). A model loaded gets priority L + 1; a hit adds L to it (so before the first eviction a hit only
moves the model to the back of its priority's queue). The lowest priority goes first, equal priorities in
the order they reached it (a load or a hit). L becomes the evicted model's priority, then the least
priority still cached, if any. On a hit on a model whose priority was L and that was the last one at L,
L becomes the least priority of the other cached models, if any (libCacheSim's `update_min_freq`).

The one difference from libCacheSim: once the cache has emptied (by evictions, or by a hit as above on
the only model cached), libCacheSim's L points at an empty queue and its next eviction dereferences a
null pointer (the binding segfaults); pfmbench evicts the lowest priority as always. Elsewhere hits,
misses and evictions equal libCacheSim's request by request (tests/test_oracle.py).

Priorities are float64: exact while they stay below 2^53.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from ..engine.fast import use_order
from ..engine.jit import compiled
from . import Policy, register

_use_order = compiled(use_order)


class State(NamedTuple):
    heap: S.LazyHeap  # cached models by (priority, when it reached it), kept exact (heap_raise on a hit)
    pri: np.ndarray  # float64 per model: priority
    at: np.ndarray  # float64 per model: sequence number of the request that set it
    age: np.ndarray  # float64 [1]: L


def new_state(tables, seed):
    n = tables.n_models
    return State(S.new_heap(n), np.zeros(n), np.zeros(n), np.zeros(1))


@njit(inline="always")
def victim(ps, es, tab, now):
    return S.heap_fresh_top(ps.heap, ps.pri, ps.at)


@njit(inline="always")
def on_evict(ps, es, tab, v):
    # the top victim() named, or a variant leaving with its base (MODEL.md §9.5): L as for a victim either way
    S.heap_remove(ps.heap, v)
    ps.age[0] = ps.pri[v]
    if ps.heap.size[0] > 0:
        ps.age[0] = ps.heap.hkey1[ps.heap.heap[0]]


@njit(inline="always")
def on_insert(ps, es, tab, m):
    ps.pri[m] = ps.age[0] + 1.0
    ps.at[m] = _use_order(tab, m, es.last_use[m])  # a base loaded with its variant: reached it after it
    S.heap_push(ps.heap, m, ps.pri[m], ps.at[m])


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    if loaded:
        return
    old = ps.pri[m]
    ps.pri[m] = old + ps.age[0]
    ps.at[m] = _use_order(tab, m, es.last_use[m])
    S.heap_raise(ps.heap, m, ps.pri[m], ps.at[m])
    if old == ps.age[0]:  # L's queue may have emptied: L moves to the least of the others
        least = ps.heap.hkey1[ps.heap.heap[0]] if ps.heap.heap[0] != m else S.heap_second_key1(ps.heap)
        if least < np.inf:
            ps.age[0] = least


@register
class LFUDA(Policy):
    """LFU with dynamic aging, as libCacheSim's LFUDA: evict the lowest priority; ties → reached it first."""

    name = "lfuda"

    def bind(self, tables):
        self.pri = {}  # cached model -> priority
        self.at = {}  # cached model -> sequence number of the request that set it
        self.age = 0.0  # L

    def victim(self, cache, now, rng):
        return min(cache, key=lambda e: (self.pri[e.model], self.at[e.model]))

    def on_evict(self, entry, now):
        # the model victim() named, or a variant leaving with its base (MODEL.md §9.5): L as for a victim either way
        self.age = self.pri.pop(entry.model)
        del self.at[entry.model]
        if self.pri:
            self.age = min(self.pri.values())

    def on_insert(self, entry, now):
        self.pri[entry.model] = self.age + 1.0
        self.at[entry.model] = entry.use_order  # a base loaded with its variant: reached it after it

    def on_hit(self, entry, loaded, now):
        if loaded:
            return
        m = entry.model
        old = self.pri[m]
        self.pri[m] = old + self.age
        self.at[m] = entry.use_order
        if old == self.age:  # L's queue may have emptied: L moves to the least of the others
            others = [p for k, p in self.pri.items() if k != m]
            if others:
                self.age = min(others)
