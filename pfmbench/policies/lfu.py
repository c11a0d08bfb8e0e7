"""LFU: fewest requests since it was loaded, as libCacheSim's LFU (O(1) frequency buckets)."""

from typing import NamedTuple

from numba import njit

from ..engine import structures as S
from ..engine.fast import load_bytes
from ..engine.jit import compiled
from . import Policy, register

_load_bytes = compiled(load_bytes)


class State(NamedTuple):
    counts: S.Buckets  # cached models by requests since load; within a count, in the order they reached it


def new_state(tables, seed):
    return State(S.new_buckets(tables.n_models))


@njit(inline="always")
def victim(ps, es, tab, now):
    return S.buckets_first_model(ps.counts)


@njit(inline="always")
def outranks(ps, es, tab, m, now):
    # Against every model it would displace, in victim order until m fits (MODEL.md §4), ranked by requests
    # over the whole trace (counts that survive eviction: a newcomer's since-load count would always lose);
    # a tie goes to the newcomer, whose last request is the newest.
    need = es.used[0] + _load_bytes(tab, es, m) - tab.capacity_bytes
    v = S.buckets_first_model(ps.counts)
    while need > 0 and v >= 0:
        if es.seen[m] < es.seen[v]:
            return False
        need -= tab.mem_bytes[v]
        v = S.buckets_next_model(ps.counts, v)
    return True


@njit(inline="always")
def on_evict(ps, es, tab, v):
    S.buckets_remove(ps.counts, v)


@njit(inline="always")
def on_insert(ps, es, tab, m):
    S.buckets_insert(ps.counts, m, 1)  # it will have served one request by the time anyone looks


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    if not loaded:
        S.buckets_increment(ps.counts, m, es.requests[m])
    elif tab.base_of[m] == m:  # a base loaded (or put back) with its variant reached count 1 after it
        S.buckets_remove(ps.counts, m)
        S.buckets_insert(ps.counts, m, 1)


@register
class LFU(Policy):
    """Least frequently used: fewest requests since it was loaded (the count resets on eviction).

    Ties go to the model that reached its count first, which is the one whose last request is
    oldest: a model reaches its current count at its last request.
    """

    name = "lfu"

    def key(self, entry, now):
        return (entry.requests, entry.use_order)

    def outranks(self, model, cache, now):
        # `outrank` ranks by requests over the whole trace so far (counts that survive eviction), against
        # every model it would displace.
        return all(model.requests_total >= e.requests_total for e in self.displaced(model, cache, now))
