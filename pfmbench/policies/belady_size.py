"""Belady-Size (offline): evict the cached model with the largest size × distance to its next request, where
the size is in bytes and the distance in requests (from the request being replayed, which is at distance
0, to the model's next one); models never requested again go first, the least recently used of them
first; equal products go to the least recently used. The size-aware variant of `belady`, as libCacheSim's
`BeladySize.c` scores its candidates (bytes × (next access − requests so far)).

Exactly the rule, not libCacheSim's sampling: its BeladySize scores 128 objects drawn at random with
replacement (the head of a random non-empty hash bucket, so an object behind another in its bucket is never
drawn) and evicts the first best; with enough draws and no shared bucket that is this rule, ties aside (it
breaks them by its draw order). It also never caches an object that will not be requested again, and drops
one at its last hit; pfmbench loads it (the request is served at the edge) and evicts it first, which
changes no hit or miss. tests/test_oracle.py compares hits request by request under those settings, up to
the first eviction that libCacheSim decides by a tie.

The scores change with every request (they are products), so each eviction scans the cached models:
O(models cached) per eviction, no structure to keep. Products are float64, exact below 2^53 (e.g. a 90 GB
model 100,000 requests ahead). Needs each request's next use, as belady does (Policy.needs_next_use).
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine.fast import use_order
from ..engine.jit import compiled
from . import Policy, register
from .belady import base_next_use

_base_next_use, _use_order = compiled(base_next_use), compiled(use_order)


class State(NamedTuple):
    unused: np.ndarray  # the scan needs no state (a NamedTuple of arrays, as every policy's)


def new_state(tables, seed):
    return State(np.zeros(0))


def score(memory_bytes, next_use, seq):
    """bytes × requests to the next use, seen at request `seq`; inf if never used again."""
    if next_use == np.inf:
        return np.inf
    return memory_bytes * (next_use - seq)


_score = njit(inline="always")(score)


@njit(inline="always")
def victim(ps, es, tab, now):
    seq = es.seq[0]
    v = -1
    best = 0.0
    for j in range(es.n_cached[0]):
        q = es.clist[j]
        nxt = es.next_use[q]
        if tab.base_of[q] == q:  # a base: its variants' soonest next use (MODEL.md §9.5)
            nxt = _base_next_use(tab, es.next_use, es.cached, q, -1)
        s = _score(float(tab.mem_bytes[q]), nxt, seq)
        if v < 0 or s > best or (s == best and _use_order(tab, q, es.last_use[q]) < _use_order(tab, v, es.last_use[v])):
            v, best = q, s
    return v


@register
class BeladySize(Policy):
    """Belady-Size: evict the model with the largest bytes × requests to its next use (offline)."""

    name = "belady-size"
    needs_next_use = True

    def bind(self, tables):
        self.bytes = [float(b) for b in tables.mem_bytes]

    def key(self, entry, now):
        d = entry.next_use_in  # its next use minus this request's sequence number
        if entry.is_base:  # its variants' soonest (MODEL.md §9.5)
            d = min([entry.next_use] + [v.next_use for v in entry.variants()]) - (entry._engine.seq - 1)
        return (-(np.inf if d == np.inf else self.bytes[entry.model] * d), entry.use_order)
