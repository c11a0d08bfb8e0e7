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
        self.cap = sizes(int(tables.capacity_bytes))
        self.queues = {SMALL: [], MAIN: []}  # models, oldest first
        self.used = {SMALL: 0, MAIN: 0}  # bytes in the small and main queues
        self.ghost_used = 0  # bytes of the ids in the ghost
        self.where = {}  # cached model -> SMALL or MAIN
        self.freq = {}  # cached model -> its count
        self.ghost = []  # model ids, oldest first
        self.evicted = False  # anything evicted yet
        self.ghost_hit = None  # the model of this miss, if its admit found it in the ghost

    def _from_ghost(self, m):
        self.ghost.remove(m)
        self.ghost_used -= self.mem[m]

    def admit(self, model, now):
        m = model.model
        self.ghost_hit = None
        if m in self.ghost:
            self._from_ghost(m)
            self.ghost_hit = m
            return True
        return self.mem[m] < self.cap[CAP_SMALL]

    def victim(self, cache, now, rng):
        entry = {e.model: e for e in cache}
        self.evicted = True
        if self.used[SMALL] == 0 and self.used[MAIN] == 0:  # only models of 0 bytes cached (as the fast hook)
            return entry[(self.queues[SMALL] or self.queues[MAIN])[0]]
        while True:
            if self.used[MAIN] > self.cap[CAP_MAIN] or self.used[SMALL] == 0:
                while self.used[MAIN] > 0:
                    m = self.queues[MAIN][0]
                    f = self.freq[m]
                    if f < 1:
                        return entry[m]
                    self.queues[MAIN].append(self.queues[MAIN].pop(0))
                    self.freq[m] = min(f, 3) - 1
            else:
                while self.used[SMALL] > 0:
                    m = self.queues[SMALL][0]
                    if self.freq[m] < TO_MAIN:
                        return entry[m]
                    self.queues[SMALL].pop(0)
                    self.used[SMALL] -= self.mem[m]
                    self.queues[MAIN].append(m)
                    self.used[MAIN] += self.mem[m]
                    self.where[m] = MAIN
                    self.freq[m] = 0

    def on_evict(self, entry, now):
        """Out of its queue (the victim, or a variant leaving with its base), and into the ghost from the small one."""
        m = entry.model
        q = self.where.pop(m)
        self.queues[q].remove(m)
        self.used[q] -= self.mem[m]
        size, cap = self.mem[m], self.cap[CAP_GHOST]
        if q == SMALL and cap > 0 and size <= cap:
            while self.ghost_used + size > cap:
                self._from_ghost(self.ghost[0])
            self.ghost.append(m)
            self.ghost_used += size

    def on_insert(self, entry, now):
        m = entry.model
        ghost = self.ghost_hit == m
        if m in self.ghost:  # a base loaded with its variant (MODEL.md §9.5) while in the ghost: a ghost hit too
            self._from_ghost(m)
            ghost = True
        q = MAIN if ghost or (not self.evicted and self.used[SMALL] >= self.cap[CAP_SMALL]) else SMALL
        self.queues[q].append(m)
        self.used[q] += self.mem[m]
        self.where[m] = q
        if self.ghost_hit == m:
            self.ghost_hit = None
        self.freq[m] = 0

    def on_hit(self, entry, loaded, now):
        if not loaded:
            self.freq[entry.model] += 1
