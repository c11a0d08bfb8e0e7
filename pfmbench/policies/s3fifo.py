"""S3-FIFO (Yang et al., SOSP'23), as libCacheSim's S3FIFO.c with its Python binding's defaults: a small
FIFO of 10% of the GPU's bytes, a main FIFO of the rest (a clock with a 2-bit counter), and a ghost FIFO
of the ids of models evicted from the small queue, holding up to 90% of the GPU's bytes of them.

- A miss for a model in the ghost removes it from the ghost and loads it into the main queue. Otherwise a
  model smaller than the small queue loads into the small queue (into the main queue while the small
  queue is full and nothing was ever evicted); a model at least as large as the small queue is offloaded.
- A hit adds 1 to the model's count.
- To evict, while the main queue holds more than its share or the small queue is empty: take the main
  queue's oldest; with a count of 1 or more it goes back in as the newest with min(count, 3) - 1, else it
  is evicted. Otherwise take the small queue's oldest: with a count of 2 or more it moves to the main queue
  (count 0), else it is evicted and its id enters the ghost (the ghost's oldest leave to make room).

The one difference from libCacheSim: a model of exactly the small queue's size is offloaded without
evicting anything; libCacheSim evicts until it fits and then does not insert it.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from . import Policy, register

SMALL_RATIO, GHOST_RATIO, TO_MAIN = 0.1, 0.9, 2  # libCacheSim's defaults (S3FIFO.c, the binding's S3FIFO)
NONE, SMALL, MAIN = 0, 1, 2
CAP_SMALL, CAP_MAIN, CAP_GHOST = 0, 1, 2


def sizes(capacity_bytes: int) -> tuple[int, int, int]:
    """(small, main, ghost) bytes, computed as libCacheSim does (C doubles, truncated)."""
    small = int(capacity_bytes * SMALL_RATIO)
    return small, capacity_bytes - small, int(capacity_bytes * GHOST_RATIO)


class State(NamedTuple):
    small: S.DList  # oldest at the head
    main: S.DList
    ghost: S.DList
    where: np.ndarray  # int8 per model: NONE, SMALL, MAIN
    in_ghost: np.ndarray  # int8 per model
    freq: np.ndarray  # int64 per model
    cap: np.ndarray  # int64 [3]: small, main, ghost bytes
    used: np.ndarray  # int64 [3]: bytes in the small and main queues, and of ids in the ghost
    flags: np.ndarray  # int64 [3]: anything evicted yet; this miss's model was in the ghost; that model


def new_state(tables, seed):
    n = tables.n_models
    return State(S.new_dlist(n), S.new_dlist(n), S.new_dlist(n), np.zeros(n, np.int8), np.zeros(n, np.int8),
                 np.zeros(n, np.int64), np.array(sizes(int(tables.capacity_bytes)), np.int64),
                 np.zeros(3, np.int64), np.array([0, 0, -1], np.int64))


@njit(inline="always")
def admit(ps, es, tab, m, now):
    ps.flags[1] = 0
    ps.flags[2] = m
    if ps.in_ghost[m]:
        ps.in_ghost[m] = 0
        ps.used[CAP_GHOST] -= tab.mem_bytes[m]
        S.dlist_remove(ps.ghost, m)
        ps.flags[1] = 1
        return True
    return tab.mem_bytes[m] < ps.cap[CAP_SMALL]


@njit(inline="always")
def victim(ps, es, tab, now):
    ps.flags[0] = 1
    if ps.used[CAP_SMALL] == 0 and ps.used[CAP_MAIN] == 0:
        # Only models of 0 bytes are cached (a shared base's own tasks, MODEL.md §9.5) and the engine still needs
        # room (for the bases they hold): the oldest goes, as a model of the small queue (or the main).
        v = S.dlist_head(ps.small)
        return v if v >= 0 else S.dlist_head(ps.main)
    while True:
        if ps.used[CAP_MAIN] > ps.cap[CAP_MAIN] or ps.used[CAP_SMALL] == 0:
            while ps.used[CAP_MAIN] > 0:
                v = S.dlist_head(ps.main)
                f = ps.freq[v]
                if f < 1:
                    return v
                S.dlist_to_tail(ps.main, v)
                ps.freq[v] = min(f, 3) - 1
        else:
            while ps.used[CAP_SMALL] > 0:
                v = S.dlist_head(ps.small)
                if ps.freq[v] < TO_MAIN:
                    return v
                S.dlist_remove(ps.small, v)
                ps.used[CAP_SMALL] -= tab.mem_bytes[v]
                S.dlist_push(ps.main, v)
                ps.used[CAP_MAIN] += tab.mem_bytes[v]
                ps.where[v] = MAIN
                ps.freq[v] = 0


@njit(inline="always")
def on_evict(ps, es, tab, v):
    size = tab.mem_bytes[v]
    if ps.where[v] == MAIN:
        S.dlist_remove(ps.main, v)
        ps.used[CAP_MAIN] -= size
    else:
        S.dlist_remove(ps.small, v)
        ps.used[CAP_SMALL] -= size
        if ps.cap[CAP_GHOST] > 0 and size <= ps.cap[CAP_GHOST]:
            while ps.used[CAP_GHOST] + size > ps.cap[CAP_GHOST]:
                g = S.dlist_head(ps.ghost)
                S.dlist_remove(ps.ghost, g)
                ps.in_ghost[g] = 0
                ps.used[CAP_GHOST] -= tab.mem_bytes[g]
            S.dlist_push(ps.ghost, v)
            ps.in_ghost[v] = 1
            ps.used[CAP_GHOST] += size
    ps.where[v] = NONE


@njit(inline="always")
def on_insert(ps, es, tab, m):
    size = tab.mem_bytes[m]
    ghost = ps.flags[1] != 0 and ps.flags[2] == m
    if ps.in_ghost[m]:  # a base loaded with its variant (MODEL.md §9.5) while in the ghost: a ghost hit too
        ps.in_ghost[m] = 0
        ps.used[CAP_GHOST] -= size
        S.dlist_remove(ps.ghost, m)
        ghost = True
    if ghost or (ps.flags[0] == 0 and ps.used[CAP_SMALL] >= ps.cap[CAP_SMALL]):
        S.dlist_push(ps.main, m)
        ps.used[CAP_MAIN] += size
        ps.where[m] = MAIN
    else:
        S.dlist_push(ps.small, m)
        ps.used[CAP_SMALL] += size
        ps.where[m] = SMALL
    if ps.flags[2] == m:
        ps.flags[1] = 0
    ps.freq[m] = 0


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    if not loaded:
        ps.freq[m] += 1


@register
class S3FIFO(Policy):
    """S3-FIFO: small, main and ghost FIFO queues (libCacheSim's S3FIFO with its defaults)."""

    name = "s3fifo"

    def bind(self, tables):
        self.mem = [int(b) for b in tables.mem_bytes]
        self.base_of = [int(b) for b in tables.base_of]
        self.cap = sizes(int(tables.capacity_bytes))
        self.queues = {SMALL: [], MAIN: []}  # models, oldest first
        self.used = {SMALL: 0, MAIN: 0}
        self.where = {}  # model -> (queue, loaded_at)
        self.count = {}  # model -> (count when it last entered its place, requests then)
        self.ghost = []  # model ids, oldest first
        self.evicted = False
        self.ghost_hit = {}  # model -> whether its last admit found it in the ghost

    def _place(self, cache):
        """Place the models loaded since the last call, in load order (no eviction since, so the engine's
        list is in load order for them)."""
        for e in sorted(cache, key=lambda e: e.load_order):
            if self.where.get(e.model, (0, None))[1] != e.loaded_at:
                # a base loaded with its variant (MODEL.md §9.5) was not the model admitted: the ghost alone says
                with_variant = self.base_of[e.model] == e.model and any(
                    c.loaded_at == e.loaded_at and c.model != e.model for c in cache)
                hit = not with_variant and self.ghost_hit.get(e.model, False)
                if e.model in self.ghost:
                    self.ghost.remove(e.model)
                    hit = True
                q = MAIN if hit or (not self.evicted and self.used[SMALL] >= self.cap[CAP_SMALL]) else SMALL
                self.queues[q].append(e.model)
                self.used[q] += self.mem[e.model]
                self.where[e.model] = (q, e.loaded_at)
                self.count[e.model] = (0, 1)  # the load's own request is no hit

    def _freq(self, e) -> int:
        base, at = self.count[e.model]
        return base + e.requests - at

    def admit(self, model, now):
        m = model.model
        self.ghost_hit[m] = m in self.ghost
        if self.ghost_hit[m]:
            self.ghost.remove(m)
            return True
        return self.mem[m] < self.cap[CAP_SMALL]

    def victim(self, cache, now, rng):
        self._place(cache)
        entry = {e.model: e for e in cache}
        self.evicted = True
        if self.used[SMALL] == 0 and self.used[MAIN] == 0:  # only models of 0 bytes cached (as the fast hook)
            q = SMALL if self.queues[SMALL] else MAIN
            m = self.queues[q].pop(0)
            del self.where[m]
            if q == SMALL:
                self._to_ghost(m)
            return entry[m]
        while True:
            if self.used[MAIN] > self.cap[CAP_MAIN] or self.used[SMALL] == 0:
                while self.used[MAIN] > 0:
                    e = entry[self.queues[MAIN][0]]
                    f = self._freq(e)
                    if f < 1:
                        self.queues[MAIN].pop(0)
                        self.used[MAIN] -= self.mem[e.model]
                        del self.where[e.model]
                        return e
                    self.queues[MAIN].append(self.queues[MAIN].pop(0))
                    self.count[e.model] = (min(f, 3) - 1, e.requests)
            else:
                while self.used[SMALL] > 0:
                    e = entry[self.queues[SMALL].pop(0)]
                    self.used[SMALL] -= self.mem[e.model]
                    if self._freq(e) < TO_MAIN:
                        del self.where[e.model]
                        self._to_ghost(e.model)
                        return e
                    self.queues[MAIN].append(e.model)
                    self.used[MAIN] += self.mem[e.model]
                    self.where[e.model] = (MAIN, e.loaded_at)
                    self.count[e.model] = (0, e.requests)

    def on_drop(self, entry, now):
        """A variant leaving with its base: out of its queue, and into the ghost from the small one (on_evict)."""
        m = entry.model
        q = self.where.pop(m)[0]
        self.queues[q].remove(m)
        self.used[q] -= self.mem[m]
        if q == SMALL:
            self._to_ghost(m)

    def _to_ghost(self, m):
        size, cap = self.mem[m], self.cap[CAP_GHOST]
        if cap <= 0 or size > cap:
            return
        while sum(self.mem[g] for g in self.ghost) + size > cap:
            self.ghost.pop(0)
        self.ghost.append(m)
