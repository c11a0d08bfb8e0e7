"""The fast engine: one numba kernel for the built-in policies, with state that carries between chunks.

Each policy keeps its victims in the structure that makes it O(1) or O(log n), as libCacheSim does:
  lru, fifo: a doubly linked list in order of last use / load (a hit moves an LRU model to the tail);
  lfu: frequency buckets in increasing order of requests since load, each a list of its models in the
    order they reached that count (O(1) LFU): a hit moves a model to the tail of the next bucket;
  lc: an indexed binary min-heap keyed by (key, last use): lc/exp key log2 C_m + t_m/half_life,
    lc/none key C_m; LC keeps its models without in-context learning (C_m = 0, evicted first)
    in an LRU list instead;
  lc/linear: contexts clamp at 0 one pair at a time and the order can change between requests, so LC
    scans the cached models; random: draws from the list of cached models.

The heap is lazy: a hit only rewrites the model's current key (O(1)); the heap keeps the key each model
had when it was last placed. Keys only grow on a hit, so a stored key is never above the current one,
and when the top's stored key equals its current key it is the true minimum; a stale top is re-placed
with its current key first. (A key that rounding makes smaller is placed at once.)
The loop touches only numpy arrays and numbers; no Python objects per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from . import costs as C
from . import tables as T
from .tables import Tables

POL_LC, POL_LFU, POL_LRU, POL_FIFO, POL_RANDOM, POL_CLOUD = 0, 1, 2, 3, 4, 5

_decay = njit(inline="always")(C.decay)
_accuracy_at = njit(inline="always")(C.accuracy_at)
_hist_index_bits = njit(inline="always")(C.hist_index_bits)

# Indices into EngineState.scalars (int64).
X_USED, X_N_CACHED, X_HEAP_N, X_SEQ, X_HEAD, X_TAIL, X_BFIRST, X_BFREE_N, N_SCALARS = range(9)
# Columns of EngineState.buckets (LFU).
B_FREQ, B_HEAD, B_TAIL, B_PREV, B_NEXT = range(5)


@dataclass
class EngineState:
    """Everything a replay carries from one chunk of a trace to the next."""

    scalars: np.ndarray  # int64 [N_SCALARS]: bytes used, models cached, heap size, requests seen, list head,
    # list tail, first LFU bucket, free LFU buckets
    rng: np.ndarray  # uint64 [1]: SplitMix64 state of the random policy
    cached: np.ndarray  # int8 per model
    last_use: np.ndarray  # int64 per model
    requests: np.ndarray  # int64 per model: served since loaded
    ctx: np.ndarray  # float64 per model: C_m at ctx_time (exp, none)
    ctx_time: np.ndarray  # float64 per model
    ready_at: np.ndarray  # float64 per model: when its last load finished
    key1: np.ndarray  # float64 per model: LC's current key (its second key is last_use)
    hkey1: np.ndarray  # float64 per model: the keys the heap ordered it by (<= the current ones)
    hkey2: np.ndarray
    heap: np.ndarray  # int32: heap of cached models
    heap_pos: np.ndarray  # int32 per model
    clist: np.ndarray  # int32: cached models in insertion order, swap-remove
    clist_pos: np.ndarray  # int32 per model
    prev: np.ndarray  # int32 per model: the LRU/FIFO list, or the model's LFU bucket list (-1 ends it)
    next: np.ndarray  # int32 per model
    buckets: np.ndarray  # int64 [n_models + 1, 5]: LFU buckets (B_FREQ, B_HEAD, B_TAIL, B_PREV, B_NEXT)
    bucket_free: np.ndarray  # int32 [n_models + 1]: stack of unused buckets
    bucket_of: np.ndarray  # int32 per model: its LFU bucket
    examples: np.ndarray  # float64 per pair: K[m,k]
    examples_time: np.ndarray  # float64 per pair
    free_at: np.ndarray  # float64 per executor
    counts: np.ndarray  # int64 [N_COUNTS]
    sums: np.ndarray  # float64 [N_SUMS]
    hist: np.ndarray  # int64 [HIST_SIZE]
    last_ts: float = -math.inf  # the last request's time: chunks must continue in time order

    @classmethod
    def new(cls, tables: Tables, seed: int = 0) -> EngineState:
        n, k = tables.n_models, len(tables.pair_model)
        return cls(
            scalars=np.array([0, 0, 0, 0, -1, -1, -1, n + 1], np.int64), rng=np.array([seed & (2**64 - 1)], dtype=np.uint64),
            cached=np.zeros(n, np.int8), last_use=np.zeros(n, np.int64),
            requests=np.zeros(n, np.int64), ctx=np.zeros(n), ctx_time=np.zeros(n), ready_at=np.zeros(n), key1=np.zeros(n),
            hkey1=np.zeros(n), hkey2=np.zeros(n), heap=np.zeros(n, np.int32), heap_pos=np.full(n, -1, np.int32),
            clist=np.zeros(n, np.int32), clist_pos=np.full(n, -1, np.int32),
            prev=np.full(n, -1, np.int32), next=np.full(n, -1, np.int32),
            buckets=np.full((n + 1, 5), -1, np.int64), bucket_free=np.arange(n + 1, dtype=np.int32),
            bucket_of=np.full(n, -1, np.int32), examples=np.zeros(k),
            examples_time=np.zeros(k), free_at=np.zeros(tables.executors),
            counts=np.zeros(C.N_COUNTS, np.int64), sums=np.zeros(C.N_SUMS), hist=np.zeros(C.HIST_SIZE, np.int64))

    def arrays(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "last_ts")


# -- indexed min-heap on (key1, key2) ---------------------------------------------------------------
@njit(inline="always")
def _less(a, b, key1, key2):
    return key1[a] < key1[b] or (key1[a] == key1[b] and key2[a] < key2[b])


@njit(inline="always")
def _sift_up(heap, pos, i, key1, key2):
    m = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        q = heap[parent]
        if not _less(m, q, key1, key2):
            break
        heap[i] = q
        pos[q] = i
        i = parent
    heap[i] = m
    pos[m] = i


@njit(inline="always")
def _sift_down(heap, pos, n, i, key1, key2):
    m = heap[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _less(heap[c + 1], heap[c], key1, key2):
            c += 1
        q = heap[c]
        if not _less(q, m, key1, key2):
            break
        heap[i] = q
        pos[q] = i
        i = c
    heap[i] = m
    pos[m] = i


@njit(inline="always")
def _list_push(m, scalars, prev, nxt):
    """Append m at the tail of the LRU/FIFO list."""
    tail = scalars[X_TAIL]
    prev[m] = tail
    nxt[m] = -1
    if tail >= 0:
        nxt[tail] = m
    else:
        scalars[X_HEAD] = m
    scalars[X_TAIL] = m


@njit(inline="always")
def _list_remove(m, scalars, prev, nxt):
    a, b = prev[m], nxt[m]
    if a >= 0:
        nxt[a] = b
    else:
        scalars[X_HEAD] = b
    if b >= 0:
        prev[b] = a
    else:
        scalars[X_TAIL] = a
    prev[m] = -1
    nxt[m] = -1


# -- LFU frequency buckets ------------------------------------------------------------------------------
@njit(inline="always")
def _bucket_new(freq, after, scalars, buckets, bucket_free):
    """A bucket for `freq`, linked after bucket `after` (-1: first)."""
    nf = scalars[X_BFREE_N] - 1
    scalars[X_BFREE_N] = nf
    b = bucket_free[nf]
    nb = scalars[X_BFIRST] if after < 0 else buckets[after, B_NEXT]
    buckets[b, B_FREQ] = freq
    buckets[b, B_HEAD] = -1
    buckets[b, B_TAIL] = -1
    buckets[b, B_PREV] = after
    buckets[b, B_NEXT] = nb
    if after < 0:
        scalars[X_BFIRST] = b
    else:
        buckets[after, B_NEXT] = b
    if nb >= 0:
        buckets[nb, B_PREV] = b
    return b


@njit(inline="always")
def _bucket_append(m, b, buckets, prev, nxt, bucket_of):
    t = buckets[b, B_TAIL]
    prev[m] = t
    nxt[m] = -1
    if t >= 0:
        nxt[t] = m
    else:
        buckets[b, B_HEAD] = m
    buckets[b, B_TAIL] = m
    bucket_of[m] = b


@njit(inline="always")
def _bucket_unlink(m, scalars, buckets, bucket_free, prev, nxt, bucket_of):
    """Take m out of its bucket, and drop the bucket if that empties it."""
    b = bucket_of[m]
    a, c = prev[m], nxt[m]
    if a >= 0:
        nxt[a] = c
    else:
        buckets[b, B_HEAD] = c
    if c >= 0:
        prev[c] = a
    else:
        buckets[b, B_TAIL] = a
    prev[m] = -1
    nxt[m] = -1
    bucket_of[m] = -1
    if buckets[b, B_HEAD] < 0:
        pb, nb = buckets[b, B_PREV], buckets[b, B_NEXT]
        if pb >= 0:
            buckets[pb, B_NEXT] = nb
        else:
            scalars[X_BFIRST] = nb
        if nb >= 0:
            buckets[nb, B_PREV] = pb
        bucket_free[scalars[X_BFREE_N]] = b
        scalars[X_BFREE_N] += 1


@njit(inline="always")
def _splitmix64(rng):
    s = rng[0] + np.uint64(0x9E3779B97F4A7C15)
    rng[0] = s
    z = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def _context_now(m, now, utility, half_life, linear_rate, ctx, ctx_time, examples, examples_time, first_pair):
    if utility == C.UTIL_LINEAR:
        total = 0.0
        for q in range(first_pair[m], first_pair[m + 1]):
            total += _decay(examples[q], now - examples_time[q], utility, half_life, linear_rate)
        return total
    return _decay(ctx[m], now - ctx_time[m], utility, half_life, linear_rate)


@njit(inline="always")
def _lc_key(utility, half_life, ctx, ctx_time):
    """LC's heap key: ordered as C_m(now) is (see CacheEntry.context_rank). Scalars only: array arguments
    would cost reference counting on every request."""
    if utility == C.UTIL_EXP:
        return math.log2(ctx) + ctx_time / half_life if ctx > 0.0 else -np.inf
    return ctx


@njit(nogil=True, cache=True)
def replay_kernel(policy, params, capacity, mem_bytes, load_time, window, first_pair, pair_model, gflops,
                  example_units, curve, a_ref, cloud_context_units,
                  ts, pair, units, input_mb, log_on, log_outcome, log_f, log_evictions,
                  scalars, rng, cached, last_use, requests, ctx, ctx_time, ready_at, key1, hkey1, hkey2, heap,
                  heap_pos, clist, clist_pos, prev, nxt, buckets, bucket_free, bucket_of, examples, examples_time,
                  free_at, counts, sums, hist):
    """Replay one chunk; updates the state arrays in place. log_f columns: latency, wait, accuracy,
    accuracy_cost, k_eff, switching_cost, cloud_cost."""
    edge_rate, cloud_rate, power = params[T.P_EDGE_RATE], params[T.P_CLOUD_RATE], params[T.P_POWER]
    rtt, uplink, price_req, price_tflop = params[T.P_RTT], params[T.P_UPLINK], params[T.P_PRICE_REQ], params[T.P_PRICE_TFLOP]
    utility, half_life, linear_rate = int(params[T.P_UTILITY]), params[T.P_HALF_LIFE], params[T.P_LINEAR_RATE]
    relevance, wear = params[T.P_RELEVANCE], params[T.P_WEAR]
    use_list = policy == POL_LRU or policy == POL_FIFO
    use_buckets = policy == POL_LFU
    use_heap = policy == POL_LC and utility != C.UTIL_LINEAR
    # LC evicts models without in-context learning first (their context is 0: key -inf), least recently
    # used first: they wait in an LRU list, and only the models with context in the heap.
    lc_split = policy == POL_LC and use_heap
    n_exec = free_at.shape[0]
    fbits = np.empty(1, np.float64)  # a float's bits for the histogram, through an int64 view
    ibits = fbits.view(np.int64)
    seq0 = scalars[X_SEQ]
    for i in range(ts.shape[0]):
        now = ts[i]
        p = pair[i]
        m = pair_model[p]
        seq = seq0 + i  # the request's sequence number over the whole trace
        evictions = 0
        if cached[m]:
            outcome = C.HIT
        elif policy != POL_CLOUD and mem_bytes[m] <= capacity:
            outcome = C.LOAD
            while scalars[X_USED] + mem_bytes[m] > capacity:
                # whom to evict
                if policy == POL_RANDOM:
                    v = clist[_splitmix64(rng) % np.uint64(scalars[X_N_CACHED])]
                elif use_list or (lc_split and scalars[X_HEAD] >= 0):
                    v = scalars[X_HEAD]
                elif use_buckets:  # the first to reach the lowest count
                    v = buckets[scalars[X_BFIRST], B_HEAD]
                elif use_heap:
                    v = heap[0]
                    while hkey1[v] != key1[v] or hkey2[v] != last_use[v]:  # stale: re-place with its keys now
                        hkey1[v] = key1[v]
                        hkey2[v] = last_use[v]
                        _sift_down(heap, heap_pos, scalars[X_HEAP_N], 0, hkey1, hkey2)
                        v = heap[0]
                else:  # LC under linear decay: scan for the least context, ties to least recently used
                    v = -1
                    best = 0.0
                    for j in range(scalars[X_N_CACHED]):
                        q = clist[j]
                        c = _context_now(q, now, utility, half_life, linear_rate, ctx, ctx_time, examples,
                                         examples_time, first_pair)
                        if v < 0 or c < best or (c == best and last_use[q] < last_use[v]):
                            v, best = q, c
                # evict it
                sums[C.S_CONTEXT_DISCARDED] += _context_now(v, now, utility, half_life, linear_rate, ctx,
                                                            ctx_time, examples, examples_time, first_pair)
                n = scalars[X_N_CACHED] - 1
                last = clist[n]
                clist[clist_pos[v]] = last
                clist_pos[last] = clist_pos[v]
                clist_pos[v] = -1
                scalars[X_N_CACHED] = n
                if use_list or (lc_split and window[v] == 0.0):
                    _list_remove(v, scalars, prev, nxt)
                elif use_buckets:
                    _bucket_unlink(v, scalars, buckets, bucket_free, prev, nxt, bucket_of)
                elif use_heap:  # v is the top: pop it
                    hn = scalars[X_HEAP_N] - 1
                    scalars[X_HEAP_N] = hn
                    heap_pos[v] = -1
                    if hn > 0:
                        heap[0] = heap[hn]
                        heap_pos[heap[0]] = 0
                        _sift_down(heap, heap_pos, hn, 0, hkey1, hkey2)
                cached[v] = 0
                scalars[X_USED] -= mem_bytes[v]
                for q in range(first_pair[v], first_pair[v + 1]):
                    examples[q] = 0.0
                    examples_time[q] = now
                counts[C.C_EVICTIONS] += 1
                evictions += 1
            # insert m with empty context
            cached[m] = 1
            scalars[X_USED] += mem_bytes[m]
            last_use[m] = seq
            requests[m] = 0
            ctx[m] = 0.0
            ctx_time[m] = now
            ready_at[m] = now  # set to the end of its load once an executor takes it, below
            n = scalars[X_N_CACHED]
            clist[n] = m
            clist_pos[m] = n
            scalars[X_N_CACHED] = n + 1
            if use_list or (lc_split and window[m] == 0.0):
                _list_push(m, scalars, prev, nxt)
            elif use_buckets:  # it will have served one request by the time anyone looks
                b = scalars[X_BFIRST]
                if b < 0 or buckets[b, B_FREQ] != 1:
                    b = _bucket_new(1, -1, scalars, buckets, bucket_free)
                _bucket_append(m, b, buckets, prev, nxt, bucket_of)
            elif use_heap:
                hn = scalars[X_HEAP_N]
                heap[hn] = m
                heap_pos[m] = hn
                scalars[X_HEAP_N] = hn + 1
                # At the bottom for now: its key (an empty context, -inf) changes as soon as it serves this
                # request, below, which places it; nothing is evicted in between.
                key1[m] = hkey1[m] = np.inf
                hkey2[m] = last_use[m]
        else:
            outcome = C.CLOUD

        if outcome == C.CLOUD:
            work = gflops[p] * (units[i] + cloud_context_units[p])
            latency = rtt + input_mb[i] * 8.0 / uplink + work / cloud_rate
            cloud_cost = price_req + price_tflop * work / 1000.0
            accuracy = a_ref[p]
            counts[C.C_OFFLOADS] += 1
            sums[C.S_OFFLOAD_LATENCY] += latency
            sums[C.S_CLOUD_COST] += cloud_cost
            sums[C.S_CLOUD_GFLOP] += work
            sums[C.S_ACCURACY] += accuracy
            if log_on:
                log_outcome[i] = outcome
                log_evictions[i] = evictions
                log_f[i, 0] = latency
                log_f[i, 1] = 0.0
                log_f[i, 2] = accuracy
                log_f[i, 3] = 0.0
                log_f[i, 4] = 0.0
                log_f[i, 5] = 0.0
                log_f[i, 6] = cloud_cost
            continue

        w = window[m]
        k, dt = examples[p], now - examples_time[p]
        have_f = utility == C.UTIL_EXP and k > 0.0 and dt > 0.0
        if have_f:  # keep the factor: a single-task model's context decays by the same one below
            f = 2.0 ** (-dt / half_life)
            k_own = k * f  # = _decay(k, dt, ...), bit for bit
        else:
            f = 1.0
            k_own = _decay(k, dt, utility, half_life, linear_rate)
        k_eff = k_own
        if relevance > 0.0:
            others = 0.0
            for q in range(first_pair[m], first_pair[m + 1]):
                if q != p:
                    others += _decay(examples[q], now - examples_time[q], utility, half_life, linear_rate)
            k_eff = k_own + relevance * others
        k_eff = min(k_eff, w)
        accuracy = _accuracy_at(k_eff, curve[p, 0], curve[p, 1], curve[p, 2], curve[p, 3], curve[p, 4],
                                curve[p, 5], curve[p, 6])
        work = gflops[p] * (units[i] + k_eff * example_units[p])
        compute = work / edge_rate
        load = load_time[m] if outcome == C.LOAD else 0.0
        j = 0
        for e in range(1, n_exec):
            if free_at[e] < free_at[j]:
                j = e
        start = max(now, free_at[j], ready_at[m])  # a free executor, and the model in memory
        wait = start - now
        free_at[j] = start + load + compute
        if outcome == C.LOAD:
            ready_at[m] = start + load
        latency = wait + load + compute
        switching = 0.0
        if outcome == C.LOAD:
            load_energy = power * load
            switching = load + load_energy / 1000.0 + wear
            counts[C.C_LOADS] += 1
            sums[C.S_SWITCHING] += switching
            sums[C.S_LOAD_ENERGY] += load_energy
            sums[C.S_LOAD_TIME] += load
        else:
            counts[C.C_HITS] += 1
        accuracy_cost = (a_ref[p] - accuracy) / 100.0
        sums[C.S_COMPUTE_ENERGY] += power * compute
        sums[C.S_ACC_COST] += accuracy_cost
        sums[C.S_ACCURACY] += accuracy
        sums[C.S_EDGE_LATENCY] += latency
        sums[C.S_WAIT] += wait
        sums[C.S_K_EFF] += k_eff
        sums[C.S_EDGE_GFLOP] += work
        sums[C.S_EDGE_LAT_MAX] = max(sums[C.S_EDGE_LAT_MAX], latency)
        fbits[0] = latency
        hist[_hist_index_bits(ibits[0])] += 1

        k_new = k_own + 1.0
        k_new = min(k_new, w)
        if have_f and ctx_time[m] == examples_time[p]:
            ctx_now = ctx[m] * f
        else:
            ctx_now = _decay(ctx[m], now - ctx_time[m], utility, half_life, linear_rate)
        examples[p] = k_new
        examples_time[p] = now
        ctx[m] = ctx_now + (k_new - k_own)
        ctx_time[m] = now
        last_use[m] = seq
        requests[m] += 1
        if policy == POL_LRU or (lc_split and w == 0.0):
            if scalars[X_TAIL] != m:
                _list_remove(m, scalars, prev, nxt)
                _list_push(m, scalars, prev, nxt)
        elif use_buckets:
            if outcome == C.HIT:  # one more request: to the tail of the next count's bucket
                b = bucket_of[m]
                nb = buckets[b, B_NEXT]
                if nb >= 0 and buckets[nb, B_FREQ] == requests[m]:
                    _bucket_unlink(m, scalars, buckets, bucket_free, prev, nxt, bucket_of)
                    _bucket_append(m, nb, buckets, prev, nxt, bucket_of)
                elif buckets[b, B_HEAD] == m and buckets[b, B_TAIL] == m:  # alone: its bucket moves up a count
                    buckets[b, B_FREQ] = requests[m]
                else:
                    nb = _bucket_new(requests[m], b, scalars, buckets, bucket_free)
                    _bucket_unlink(m, scalars, buckets, bucket_free, prev, nxt, bucket_of)
                    _bucket_append(m, nb, buckets, prev, nxt, bucket_of)
        elif use_heap:
            key1[m] = _lc_key(utility, half_life, ctx[m], ctx_time[m])
            if key1[m] < hkey1[m] or (key1[m] == hkey1[m] and last_use[m] < hkey2[m]):
                hkey1[m] = key1[m]
                hkey2[m] = last_use[m]
                _sift_up(heap, heap_pos, heap_pos[m], hkey1, hkey2)
        if log_on:
            log_outcome[i] = outcome
            log_evictions[i] = evictions
            log_f[i, 0] = latency
            log_f[i, 1] = wait
            log_f[i, 2] = accuracy
            log_f[i, 3] = accuracy_cost
            log_f[i, 4] = k_eff
            log_f[i, 5] = switching
            log_f[i, 6] = 0.0
    # Derived once per chunk, not per request: requests seen so far.
    scalars[X_SEQ] = seq0 + ts.shape[0]
    counts[C.C_REQUESTS] += ts.shape[0]


def new_log(n: int) -> dict:
    """Buffers for replay_chunk's per-request log of n requests."""
    return {"outcome": np.zeros(n, np.int8), "floats": np.zeros((n, len(C.LOG_FLOATS))),
            "evictions": np.zeros(n, np.int32)}


def log_columns(buf: dict) -> dict:
    """The filled buffers as named columns, as the reference engine returns them."""
    cols = {"outcome": buf["outcome"], "evictions": buf["evictions"]}
    cols.update({name: buf["floats"][:, k] for k, name in enumerate(C.LOG_FLOATS)})
    return cols


def replay_chunk(tables: Tables, policy_code: int, state: EngineState, trace, log: dict | None = None) -> None:
    """Replay one chunk of TraceArrays into `state`. `log`: preallocated columns to fill, or None."""
    if len(trace.ts) == 0:
        return
    if trace.ts[0] < state.last_ts:
        from ..errors import InputError
        raise InputError(f"{trace.source}: chunk starts at t={trace.ts[0]} before the previous chunk ended "
                         f"(t={state.last_ts}); chunked replay needs a time-sorted trace")
    t = tables
    if log is None:
        lo, lf, le, on = np.zeros(0, np.int8), np.zeros((0, 7)), np.zeros(0, np.int32), False
    else:
        lo, lf, le, on = log["outcome"], log["floats"], log["evictions"], True
    replay_kernel(policy_code, t.params, t.capacity_bytes, t.mem_bytes, t.load_time, t.window, t.first_pair,
                  t.pair_model, t.gflops, t.example_units, t.curve, t.a_ref, t.cloud_context_units,
                  trace.ts, trace.pair, trace.units, trace.input_mb, on, lo, lf, le, *state.arrays())
    state.last_ts = float(trace.ts[-1])
