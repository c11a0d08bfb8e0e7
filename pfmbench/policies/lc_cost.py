"""LC-cost: LC weighted by what an eviction loses, per GB it frees; loads under the `cost` admission rule.

What evicting model m at time t loses, in system-cost units (MODEL.md §4's weights):

    loss_m(t) = w_acc · E_m · gain_m(t)  +  (1 − e^(−E_m)) · w_switch · switching_m   (the reload is charged once: MODEL.md §4)

- E_m: m's expected requests within the cost horizon (`serving.cost_horizon_s`), estimated as the `cost`
  admission rule does (costs.worth_loading): its requests so far over the time since the trace began (at
  least one horizon), times the horizon.
- gain_m(t): the accuracy cost its context saves per request: for each of m's tasks, the accuracy cost
  zero-shot minus the accuracy cost with the examples it has now (K_eff: its own examples decayed to t, plus
  the relevance ρ times its other tasks', capped at the window), averaged over its tasks. A reload starts
  from an empty context, so each expected request would pay that much more. Further decay and the context
  the next requests would rebuild are ignored: the value of what is discarded, as of now.
- 1 − e^(−E_m): the probability that m is requested again within the horizon (Poisson arrivals at its
  rate so far), the chance that a reload's switching cost (its load time included) is paid.

The key is loss_m(t) / memory_gb (a model of 0 bytes frees nothing: never evicted before another); the
smallest goes first, ties → least recently used. A shared base (MODEL.md §9.5) frees its weights and its
cached variants, and loses their losses with its own (its reload: E from the requests of all its models, its
own tasks' context if any): key = (loss_b + Σ loss_v) / (its GB + Σ theirs), after its variants on ties. Under `outrank` admission a newcomer is ranked the same
way with its empty context. The key moves with time (decay, rates), so each eviction scans the cached
models: O(models cached) per eviction.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine.context import examples_now
from ..engine.costs import accuracy_of, accuracy_price, load_price, switching
from ..engine.fast import load_bytes, use_order
from ..engine.jit import compiled, shared
from . import Policy, register


@shared
def loss_per_gb(tab, cx, requests_so_far, m, now):
    """What evicting model m now loses (loss_m above) per GB it frees; inf for a model of 0 bytes."""
    if tab.mem_bytes[m] == 0:
        return np.inf
    return loss(tab, cx, requests_so_far, m, now) / (tab.mem_bytes[m] / 1e9)


@shared
def loss(tab, cx, requests_so_far, m, now):
    """What evicting model m now loses (loss_m above)."""
    horizon = tab.cost_horizon_s
    expected = requests_so_far / max(now, horizon) * horizon
    a, b = tab.first_pair[m], tab.first_pair[m + 1]
    total = 0.0
    for q in range(a, b):
        total += examples_now(tab, cx, q, now)
    gain = 0.0
    for q in range(a, b):
        k = examples_now(tab, cx, q, now)
        k_eff = min(k + tab.relevance * (total - k), tab.window[m])
        if k_eff > 0.0:
            gain += accuracy_of(tab, q, 0.0)[1] - accuracy_of(tab, q, k_eff)[1]
    if b > a:  # a shared base may have no task of its own
        gain /= b - a
    # A reload is charged once, in the switching cost (MODEL.md §4: the load is not in the latency term).
    return accuracy_price(tab, expected * gain) + (1.0 - math.exp(-expected)) * load_price(tab, switching(tab, m))


@shared
def cost_key(tab, cx, seen, cached, m, now):
    """The key of model m (loss_per_gb); a shared base's counts its cached variants, which leave with it."""
    if tab.base_of[m] != m:
        return loss_per_gb(tab, cx, seen[m], m, now)
    requests = seen[m]
    for q in range(tab.base_of.shape[0]):  # its reload is paid when any of its models is requested
        if tab.base_of[q] == m and q != m:
            requests += seen[q]
    total = loss(tab, cx, requests, m, now)
    size = tab.mem_bytes[m]
    for q in range(tab.base_of.shape[0]):
        if tab.base_of[q] == m and q != m and cached[q] != 0:
            total += loss(tab, cx, seen[q], q, now)
            size += tab.mem_bytes[q]
    if size == 0:
        return np.inf
    return total / (size / 1e9)


_loss_per_gb, _load_bytes = compiled(loss_per_gb), compiled(load_bytes)
_cost_key, _use_order = compiled(cost_key), compiled(use_order)


class State(NamedTuple):
    unused: np.ndarray  # the scan needs no state


def new_state(tables, seed):
    return State(np.zeros(0))


@njit(inline="always")
def _first_victim(es, tab, now):
    v = -1
    best = 0.0
    for j in range(es.n_cached[0]):
        q = es.clist[j]
        k = _cost_key(tab, es.context, es.seen, es.cached, q, now)
        if v < 0 or k < best or (k == best and _use_order(tab, q, es.last_use[q]) < _use_order(tab, v, es.last_use[v])):
            v, best = q, k
    return v, best


@njit(inline="always")
def victim(ps, es, tab, now):
    return _first_victim(es, tab, now)[0]


@njit(inline="always")
def outranks(ps, es, tab, m, now):
    # m must outrank every model it would displace (MODEL.md §4). Victims go in key order, so that holds
    # when the cached models m outranks (key at most m's, empty context: on a tie m is the most recent and
    # the other goes first) free enough memory between them.
    # If they do not (by their own bytes: a base leaving with its last adapter is not counted), every cached
    # model is displaced in turn, as Policy.displaced lists them in the reference engine: m must outrank all.
    need = es.used[0] + _load_bytes(tab, es, m) - tab.capacity_bytes
    km = _cost_key(tab, es.context, es.seen, es.cached, m, now)
    above = False
    for j in range(es.n_cached[0]):
        q = es.clist[j]
        if _cost_key(tab, es.context, es.seen, es.cached, q, now) <= km:
            need -= tab.mem_bytes[q]
        else:
            above = True
    return need <= 0 or not above


@register
class LCCost(Policy):
    """LC weighted by what an eviction loses (context's accuracy value + reload cost) per GB freed."""

    name = "lc-cost"
    admission = "cost"

    def bind(self, tables):
        self.tables = tables

    def key(self, entry, now):
        return (cost_key(self.tables, entry.examples, entry._engine.seen, entry.cached_flags(), entry.model, now),
                entry.use_order)

    def outranks(self, model, cache, now):
        if not cache:
            return True
        # Not cached: its pairs' examples are 0 (discarded, or never loaded): its key with an empty context.
        e = cache[0]._engine
        mine = cost_key(self.tables, cache[0].examples, e.seen, cache[0].cached_flags(), model.model, now)
        return all(self.key(e, now)[0] <= mine for e in self.displaced(model, cache, now))
