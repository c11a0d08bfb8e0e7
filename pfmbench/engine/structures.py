"""Data structures that policies keep their victims in, as numba-compiled functions over NamedTuples of
arrays: a doubly linked list (LRU, FIFO), frequency buckets (O(1) LFU), a lazy indexed min-heap (LC),
and SplitMix64 (random). Each is O(1) or O(log n) per request, as in libCacheSim.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

jit = njit(inline="always")


# -- doubly linked list of models -------------------------------------------------------------------------
class DList(NamedTuple):
    prev: np.ndarray  # int32 per model (-1 ends the list)
    next: np.ndarray  # int32 per model
    ends: np.ndarray  # int64 [2]: head, tail (-1: empty)


def new_dlist(n: int) -> DList:
    return DList(np.full(n, -1, np.int32), np.full(n, -1, np.int32), np.full(2, -1, np.int64))


@jit
def dlist_head(lst):
    return lst.ends[0]


@jit
def dlist_push(lst, m):
    """Append m at the tail."""
    tail = lst.ends[1]
    lst.prev[m] = tail
    lst.next[m] = -1
    if tail >= 0:
        lst.next[tail] = m
    else:
        lst.ends[0] = m
    lst.ends[1] = m


@jit
def dlist_remove(lst, m):
    a, b = lst.prev[m], lst.next[m]
    if a >= 0:
        lst.next[a] = b
    else:
        lst.ends[0] = b
    if b >= 0:
        lst.prev[b] = a
    else:
        lst.ends[1] = a
    lst.prev[m] = -1
    lst.next[m] = -1


@jit
def dlist_to_tail(lst, m):
    """Move m to the tail (a use, for LRU order)."""
    if lst.ends[1] != m:
        dlist_remove(lst, m)
        dlist_push(lst, m)


# -- frequency buckets (O(1) LFU) ------------------------------------------------------------------------
# Buckets in increasing order of count, each a list of its models in the order they reached that count.
B_FREQ, B_HEAD, B_TAIL, B_PREV, B_NEXT = range(5)


class Buckets(NamedTuple):
    table: np.ndarray  # int64 [n + 1, 5]: per bucket B_FREQ, B_HEAD, B_TAIL, B_PREV, B_NEXT
    free: np.ndarray  # int32 [n + 1]: stack of unused buckets
    meta: np.ndarray  # int64 [2]: first bucket (-1: none), number of free buckets
    bucket_of: np.ndarray  # int32 per model
    prev: np.ndarray  # int32 per model: the model's bucket list
    next: np.ndarray  # int32 per model


def new_buckets(n: int) -> Buckets:
    return Buckets(np.full((n + 1, 5), -1, np.int64), np.arange(n + 1, dtype=np.int32),
                   np.array([-1, n + 1], np.int64), np.full(n, -1, np.int32), np.full(n, -1, np.int32),
                   np.full(n, -1, np.int32))


@jit
def buckets_first_model(bk):
    """The model that reached the lowest count first."""
    return bk.table[bk.meta[0], B_HEAD]


@jit
def _bucket_new(bk, freq, after):
    """A bucket for `freq`, linked after bucket `after` (-1: first)."""
    t = bk.table
    nf = bk.meta[1] - 1
    bk.meta[1] = nf
    b = bk.free[nf]
    nb = bk.meta[0] if after < 0 else t[after, B_NEXT]
    t[b, B_FREQ] = freq
    t[b, B_HEAD] = -1
    t[b, B_TAIL] = -1
    t[b, B_PREV] = after
    t[b, B_NEXT] = nb
    if after < 0:
        bk.meta[0] = b
    else:
        t[after, B_NEXT] = b
    if nb >= 0:
        t[nb, B_PREV] = b
    return b


@jit
def _bucket_append(bk, m, b):
    t = bk.table
    tail = t[b, B_TAIL]
    bk.prev[m] = tail
    bk.next[m] = -1
    if tail >= 0:
        bk.next[tail] = m
    else:
        t[b, B_HEAD] = m
    t[b, B_TAIL] = m
    bk.bucket_of[m] = b


@jit
def buckets_remove(bk, m):
    """Take m out of its bucket, and drop the bucket if that empties it."""
    t = bk.table
    b = bk.bucket_of[m]
    a, c = bk.prev[m], bk.next[m]
    if a >= 0:
        bk.next[a] = c
    else:
        t[b, B_HEAD] = c
    if c >= 0:
        bk.prev[c] = a
    else:
        t[b, B_TAIL] = a
    bk.prev[m] = -1
    bk.next[m] = -1
    bk.bucket_of[m] = -1
    if t[b, B_HEAD] < 0:
        pb, nb = t[b, B_PREV], t[b, B_NEXT]
        if pb >= 0:
            t[pb, B_NEXT] = nb
        else:
            bk.meta[0] = nb
        if nb >= 0:
            t[nb, B_PREV] = pb
        bk.free[bk.meta[1]] = b
        bk.meta[1] += 1


@jit
def buckets_next_model(bk, m):
    """The model after m in victim order (lowest count first, then the order they reached it); -1: none."""
    c = bk.next[m]
    if c >= 0:
        return c
    b = bk.table[bk.bucket_of[m], B_NEXT]
    return bk.table[b, B_HEAD] if b >= 0 else -1


@jit
def buckets_insert(bk, m, freq):
    """Add m with count `freq`, which must not exceed the lowest count present (a new model)."""
    b = bk.meta[0]
    if b < 0 or bk.table[b, B_FREQ] != freq:
        b = _bucket_new(bk, freq, -1)
    _bucket_append(bk, m, b)


@jit
def buckets_increment(bk, m, freq):
    """m's count went up by one, to `freq`: to the tail of the next count's bucket."""
    t = bk.table
    b = bk.bucket_of[m]
    nb = t[b, B_NEXT]
    if nb < 0 or t[nb, B_FREQ] != freq:  # no bucket for `freq` yet
        if t[b, B_HEAD] == m and t[b, B_TAIL] == m:  # alone: its bucket moves up a count
            t[b, B_FREQ] = freq
            return
        nb = _bucket_new(bk, freq, b)
    buckets_remove(bk, m)
    _bucket_append(bk, m, nb)


# -- lazy indexed min-heap on (key1, key2) ---------------------------------------------------------------
# The heap keeps the keys each model had when it was last placed (hkey1, hkey2). Its owner may let a
# model's current key grow without touching the heap (O(1)); a placed key is then never above the
# current one, and a top whose placed keys equal its current keys is the true minimum. heap_fresh_top
# re-places a stale top with its current keys first.
class LazyHeap(NamedTuple):
    heap: np.ndarray  # int32: models
    pos: np.ndarray  # int32 per model (-1: not in the heap)
    size: np.ndarray  # int64 [1]
    hkey1: np.ndarray  # float64 per model: placed keys
    hkey2: np.ndarray


def new_heap(n: int) -> LazyHeap:
    return LazyHeap(np.zeros(n, np.int32), np.full(n, -1, np.int32), np.zeros(1, np.int64), np.zeros(n),
                    np.zeros(n))


@jit
def _less(h, a, b):
    k1, k2 = h.hkey1, h.hkey2
    return k1[a] < k1[b] or (k1[a] == k1[b] and k2[a] < k2[b])


@jit
def _sift_up(h, i):
    heap, pos = h.heap, h.pos
    m = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        q = heap[parent]
        if not _less(h, m, q):
            break
        heap[i] = q
        pos[q] = i
        i = parent
    heap[i] = m
    pos[m] = i


@jit
def _sift_down(h, i):
    heap, pos, n = h.heap, h.pos, h.size[0]
    m = heap[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _less(h, heap[c + 1], heap[c]):
            c += 1
        q = heap[c]
        if not _less(h, q, m):
            break
        heap[i] = q
        pos[q] = i
        i = c
    heap[i] = m
    pos[m] = i


@jit
def heap_push_last(h, m, key1, key2):
    """Add m at the bottom: only where its key is the largest possible (it is placed on its first update)."""
    n = h.size[0]
    h.heap[n] = m
    h.pos[m] = n
    h.size[0] = n + 1
    h.hkey1[m] = key1
    h.hkey2[m] = key2


@jit
def heap_push(h, m, key1, key2):
    """Add m with keys (key1, key2) anywhere in the order."""
    heap_push_last(h, m, key1, key2)
    _sift_up(h, h.size[0] - 1)


@jit
def heap_fresh_top(h, key1, key2):
    """The model with the least current keys (key1[m], key2[m]): stale tops are re-placed first."""
    v = h.heap[0]
    while h.hkey1[v] != key1[v] or h.hkey2[v] != key2[v]:
        h.hkey1[v] = key1[v]
        h.hkey2[v] = key2[v]
        _sift_down(h, 0)
        v = h.heap[0]
    return v


@jit
def heap_pop_top(h):
    """Remove the top."""
    v = h.heap[0]
    n = h.size[0] - 1
    h.size[0] = n
    h.pos[v] = -1
    if n > 0:
        h.heap[0] = h.heap[n]
        h.pos[h.heap[0]] = 0
        _sift_down(h, 0)


@jit
def heap_remove(h, m):
    """Remove any model m (a base's variants leave with it, MODEL.md §9.5); on the top it is heap_pop_top."""
    i = h.pos[m]
    n = h.size[0] - 1
    h.size[0] = n
    h.pos[m] = -1
    if i < n:
        q = h.heap[n]
        h.heap[i] = q
        h.pos[q] = i
        _sift_down(h, i)
        if h.pos[q] == i:
            _sift_up(h, i)


@jit
def heap_update(h, m, key1, key2):
    """m's current keys are now (key1, key2). A larger key waits (lazy); a smaller one is placed at once."""
    if key1 < h.hkey1[m] or (key1 == h.hkey1[m] and key2 < h.hkey2[m]):
        h.hkey1[m] = key1
        h.hkey2[m] = key2
        _sift_up(h, h.pos[m])


@jit
def heap_raise(h, m, key1, key2):
    """m's keys grew to (key1, key2): sink it now, so that the heap stays exact (no lazy entries)."""
    h.hkey1[m] = key1
    h.hkey2[m] = key2
    _sift_down(h, h.pos[m])


@jit
def heap_second_key1(h):
    """The least key1 below the top (the top's children), inf if the top is alone: for an exact heap."""
    n = h.size[0]
    k = np.inf
    for c in (1, 2):
        if c < n and h.hkey1[h.heap[c]] < k:
            k = h.hkey1[h.heap[c]]
    return k


# -- SplitMix64 ------------------------------------------------------------------------------------------
@jit
def splitmix64(rng):
    """The next value of the SplitMix64 stream whose state is rng[0] (uint64)."""
    s = rng[0] + np.uint64(0x9E3779B97F4A7C15)
    rng[0] = s
    z = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def splitmix64_next(state: int) -> tuple[int, int]:
    """One step of SplitMix64 on a Python int (the reference engine); returns (new_state, value)."""
    mask = (1 << 64) - 1
    state = (state + 0x9E3779B97F4A7C15) & mask
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return state, z ^ (z >> 31)
