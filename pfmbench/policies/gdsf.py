"""GDSF (GreedyDual-Size-Frequency, Cherkasova 1998), as libCacheSim's GDSF with each model's switching cost
(MODEL.md §4: what a miss that loads it costs) as its cost. `gdsf-unit` (policies/gdsf_unit.py) is the same
with libCacheSim's constant cost of 10^6, and agrees with libCacheSim's GDSF request by request.

A model's priority is L + requests since it was loaded × cost / bytes, set when it is loaded and at each
hit, where L is the priority of the last model evicted (the "inflation"; 0 at the start). The lowest
priority goes first; equal priorities go in the order they were set. As in libCacheSim, the newcomer
competes too: it is ranked with the L before its own evictions, and if it ranks lowest before it fits it
is not loaded (the request is offloaded, after the evictions made so far) and L becomes its priority.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from ..engine.costs import switching
from ..engine.fast import use_order
from ..engine.jit import compiled
from . import Policy, register

_use_order = compiled(use_order)


class State(NamedTuple):
    heap: S.LazyHeap  # cached models by (priority, request sequence number when it was set)
    pri: np.ndarray  # float64 per model: current priority
    at: np.ndarray  # float64 per model: the sequence number it was set at
    cost: np.ndarray  # float64 per model: the cost of a miss
    size: np.ndarray  # float64 per model: bytes
    inflation: np.ndarray  # float64 [2]: L; the newcomer's priority (set on the miss)


def switching_costs(tables) -> np.ndarray:
    return np.array([switching(tables, m)[2] for m in range(tables.n_models)], dtype=np.float64)


def state_with_costs(tables, cost) -> State:
    n = tables.n_models
    return State(S.new_heap(n), np.zeros(n), np.zeros(n), np.asarray(cost, np.float64),
                 tables.mem_bytes.astype(np.float64), np.zeros(2))


def new_state(tables, seed):
    return state_with_costs(tables, switching_costs(tables))


@njit(inline="always")
def value(requests, cost, size):
    """requests × cost / bytes, as C doubles give it (x / 0 = inf), with no value where the cost is 0."""
    v = requests * cost
    if size == 0.0:
        return math.inf if v > 0.0 else 0.0
    return v / size


@njit(inline="always")
def admit(ps, es, tab, m, now):
    ps.inflation[1] = ps.inflation[0] + value(1.0, ps.cost[m], ps.size[m])
    return True


@njit(inline="always")
def victim(ps, es, tab, now):
    if ps.heap.size[0] == 0:
        ps.inflation[0] = ps.inflation[1]
        return -1
    v = S.heap_fresh_top(ps.heap, ps.pri, ps.at)
    if ps.pri[v] > ps.inflation[1]:  # the newcomer ranks lowest (on a tie it is the newest: it stays)
        ps.inflation[0] = ps.inflation[1]
        return -1
    ps.inflation[0] = ps.pri[v]
    return v


@njit(inline="always")
def on_evict(ps, es, tab, v):
    S.heap_remove(ps.heap, v)  # the top victim() named, or a variant leaving with its base (MODEL.md §9.5)


@njit(inline="always")
def on_insert(ps, es, tab, m):
    ps.pri[m] = ps.inflation[1]
    ps.at[m] = _use_order(tab, m, es.last_use[m])  # a base loaded with its variant: set after it
    S.heap_push(ps.heap, m, ps.pri[m], ps.at[m])


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    if not loaded:  # the priority only grows: the heap re-places it when it reaches the top (lazy)
        ps.pri[m] = ps.inflation[0] + value(float(es.requests[m]), ps.cost[m], ps.size[m])
        ps.at[m] = _use_order(tab, m, es.last_use[m])


def _value(requests, cost, size):
    v = requests * cost
    if size == 0.0:
        return math.inf if v > 0.0 else 0.0
    return v / size


@register
class GDSF(Policy):
    """GreedyDual-Size-Frequency with each model's switching cost as its cost (libCacheSim's GDSF rule)."""

    name = "gdsf"

    def costs(self, tables):
        return switching_costs(tables).tolist()

    def bind(self, tables):
        self.cost = self.costs(tables)
        self.size = [float(b) for b in tables.mem_bytes]
        self.inflation = 0.0  # L
        self.newcomer = 0.0  # the priority of the model of this miss (set by admit)
        self.pri = {}  # cached model -> (priority, sequence number it was set at)

    def admit(self, model, now):
        self.newcomer = self.inflation + _value(1.0, self.cost[model.model], self.size[model.model])
        return True

    def victim(self, cache, now, rng):
        if not self.pri:
            self.inflation = self.newcomer
            return None
        m = min(self.pri, key=self.pri.get)
        pri = self.pri[m][0]
        if pri > self.newcomer:  # the newcomer ranks lowest (on a tie it is the newest: it stays)
            self.inflation = self.newcomer
            return None
        self.inflation = pri
        return next(e for e in cache if e.model == m)

    def on_evict(self, entry, now):
        del self.pri[entry.model]  # the model victim() named, or a variant leaving with its base (MODEL.md §9.5)

    def on_insert(self, entry, now):
        self.pri[entry.model] = (self.newcomer, entry.use_order)  # a base loaded with its variant: set after it

    def on_hit(self, entry, loaded, now):
        if not loaded:
            m = entry.model
            self.pri[m] = (self.inflation + _value(float(entry.requests), self.cost[m], self.size[m]), entry.use_order)
