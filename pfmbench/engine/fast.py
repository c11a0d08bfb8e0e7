"""The fast engine: the request loop of MODEL.md §4, compiled with numba.

The loop owns find -> admit -> evict until it fits -> insert -> serve and the memory accounting; a
built-in policy's module supplies up to seven hooks, which the loop calls in one place each:

  admit(ps, es, tab, m, now) -> bool   on a miss for model m that fits the GPU: load it, or offload
  outranks(ps, es, tab, m, now) -> bool  under `outrank` admission, when m needs evictions: m, ranked as if
                                       loaded now, outranks every model it would displace
  victim(ps, es, tab, now) -> model    the next model to evict (called until m fits); -1: m itself,
                                       which is then offloaded (after the evictions made so far)
  on_evict(ps, es, tab, v)             v is leaving: drop it from the policy's structure
  on_insert(ps, es, tab, m)            m was loaded (cached, last_use = this request, no context yet)
  on_hit(ps, es, tab, m, loaded)       m served a request (a hit, or the load's first request);
                                       last_use, requests and the context are already updated
  preload(ps, es, tab, now)            before each request: the idle time since the last one, in which
                                       the policy may call preload_model (it sees only earlier requests)

`ps` is the policy's own state (a NamedTuple of arrays from its `new_state(tables, seed)`), `es` the
engine's (EngineState), `tab` the static Tables. kernel.py compiles this loop once with every
built-in's hooks behind a switch on the policy's code. Per request the loop touches numbers and arrays
only: no Python objects.
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
from numba import njit

from . import jit as _jit  # noqa: F401  (installs the kernel cache locator before anything compiles)
from .context import (
    Context,
    add_demonstration,
    discard_context,
    examples_at_service,
    new_context,
    start_context,
)
from .costs import (
    account_block,
    account_preload,
    cloud_price,
    device_is_cheapest,
    edge_is_dearer,
    edge_price,
    first_free_executor,
    ladder_level,
    prefix_to_grow,
    prefix_to_load,
    service_time,
    substitute_price,
    tier_time,
    worth_loading,
)
from .jit import compiling, shared
from .structures import DList, dlist_head, dlist_push, dlist_remove, dlist_to_tail, new_dlist
from .record import (
    C_BATCHES,
    C_DECLINED,
    C_DISPATCHED,
    C_EVICTIONS,
    CLOUD,
    DEVICE,
    HIT,
    LOAD,
    S_CONTEXT_DISCARDED,
    SUBSTITUTE,
    RequestLog,
    Totals,
    clear_totals,
    new_log,
    new_totals,
)
from .tables import ADMIT_COST, ADMIT_OUTRANK, DISPATCH_CHEAPEST, SUB_BEFORE_LOAD, SUB_NEVER, Tables

# Requests decided between two accountings (account_block): the decisions of a block stay in the L2 cache.
BLOCK = 4096


class Block(NamedTuple):
    """How the loop decided each request of the current block, for account_block."""

    outcome: np.ndarray  # int8: HIT, LOAD or CLOUD
    k_eff: np.ndarray  # float64: examples in context it was served with (edge)
    wait: np.ndarray  # float64 s: in the queue (edge)
    evictions: np.ndarray  # int32: models evicted for it
    with_base: np.ndarray  # int8: its load loaded its model's base's weights too (MODEL.md §9.5)
    served: np.ndarray  # int32: the pair that served it (its own, or a substitute's: MODEL.md §9.1)
    level: np.ndarray  # int8: the precision level of the model that served it (MODEL.md §9.2)
    part: np.ndarray  # int8: the prefix of that model's layers that served it (MODEL.md §9.3; 0: whole)
    upgrade_s: np.ndarray  # float64 s: that model was first reloaded up (a precision upgrade, a prefix grown)
    compute: np.ndarray  # float64 s: its service time (service_time, in the batch it joined)
    tier: np.ndarray  # int8: the tier its load read the checkpoint from (MODEL.md §9.4; tables.TIER_*)


def new_block() -> Block:
    return Block(np.zeros(BLOCK, np.int8), np.zeros(BLOCK), np.zeros(BLOCK), np.zeros(BLOCK, np.int32),
                 np.zeros(BLOCK, np.int8), np.zeros(BLOCK, np.int32), np.zeros(BLOCK, np.int8),
                 np.zeros(BLOCK, np.int8), np.zeros(BLOCK), np.zeros(BLOCK), np.zeros(BLOCK, np.int8))


class EngineState(NamedTuple):
    """What the engine carries from one request, and one chunk, to the next (policies keep their own)."""

    used: np.ndarray  # int64 [1]: bytes of GPU memory in use
    n_cached: np.ndarray  # int64 [1]: models cached
    seq: np.ndarray  # int64 [1]: requests seen before the one being replayed (its sequence number, for hooks)
    cached: np.ndarray  # int8 per model
    last_use: np.ndarray  # int64 per model: sequence number of its last request
    requests: np.ndarray  # int64 per model: served since loaded
    ready_at: np.ndarray  # float64 per model: when its last load finished
    clist: np.ndarray  # int32: the cached models in insertion order, swap-remove on eviction
    clist_pos: np.ndarray  # int32 per model (-1: not cached)
    free_at: np.ndarray  # float64 per executor: when it is free
    seen: np.ndarray  # int64 per model: its requests over the whole trace so far, this one included
    next_use: np.ndarray  # float64 per model: sequence number of its next request after its last service
    #                       (inf: none), for policies that need it (Policy.needs_next_use); inf otherwise
    last_request: np.ndarray  # int64 [2]: sequence number and model of the last request (-1: none yet)
    last_ts: np.ndarray  # float64 [1]: its arrival time (-inf: none yet); no preload starts before it
    first_ts: np.ndarray  # float64 [1]: the first request's arrival time (the warm-up's `warmup_s` counts from it)
    measure_from: np.ndarray  # int64 [1]: sequence number of the first measured request (-1: still warming up)
    # Shared bases (MODEL.md §9.5): a base's weights are resident while any model of it is cached (base_ref > 0),
    # or while it is pinned: the base of the model being loaded, which its evictions must not free.
    base_ref: np.ndarray  # int32 per base: its models cached
    base_in: np.ndarray  # int8 per base: its weights are in GPU memory (counted once in `used`)
    base_ready: np.ndarray  # float64 per base: when the load of its weights finished
    pinned: np.ndarray  # int64 [1]: the pinned base (-1: none)
    level: np.ndarray  # int8 per model: its precision level while cached (MODEL.md §9.2; 0 otherwise)
    part: np.ndarray  # int8 per model: the prefix of its layers resident (MODEL.md §9.3; 0: whole, or not cached)
    # Each model's last batch (MODEL.md §9.2): its executor (-1: none yet), start, end, requests so far.
    batch_exec: np.ndarray  # int64 per model
    batch_start: np.ndarray  # float64 per model
    batch_end: np.ndarray  # float64 per model
    batch_n: np.ndarray  # int64 per model
    context: Context
    totals: Totals
    block: Block
    # The host's DRAM tier of checkpoints (MODEL.md §9.4; unused under checkpoints_in = dram): which it holds, its
    # bytes, and their order of last load or eviction from the GPU (least recent at the head: the next to go).
    dram_in: np.ndarray  # int8 per model
    dram_used: np.ndarray  # int64 [1]
    dram_lru: DList


def new_engine_state(tables: Tables) -> EngineState:
    n, k = tables.n_models, len(tables.pair_model)
    return EngineState(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(n, np.int8),
                       np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n), np.zeros(n, np.int32),
                       np.full(n, -1, np.int32), np.zeros(tables.executors), np.zeros(n, np.int64),
                       np.full(n, np.inf), np.full(2, -1, np.int64), np.full(1, -np.inf), np.zeros(1),
                       np.array([0 if tables.warmup_requests == 0 and tables.warmup_s == 0.0 else -1], np.int64),
                       np.zeros(n, np.int32), np.zeros(n, np.int8), np.zeros(n), np.full(1, -1, np.int64),
                       np.zeros(n, np.int8), np.zeros(n, np.int8), np.full(n, -1, np.int64), np.zeros(n), np.zeros(n),
                       np.zeros(n, np.int64),
                       new_context(n, k), new_totals(), new_block(),
                       np.zeros(n, np.int8), np.zeros(1, np.int64), new_dlist(n))


class Requests(NamedTuple):
    """A chunk of a trace, as the loop reads it."""

    ts: np.ndarray  # float64 s, sorted
    pair: np.ndarray  # int32 (model, task) pair
    units: np.ndarray  # float64
    input_mb: np.ndarray  # float64
    next_use: np.ndarray  # float64: sequence number of the same model's next request (inf: none); empty
    #                       unless the policy needs it (Policy.needs_next_use)
    # cooperation = forward (MODEL.md §9.4; pfmbench/edges.py): per model, a neighbour edge holds it now; the
    # loop stops before the first request that misses here for such a model (a forward candidate). Empty: off.
    neighbour: np.ndarray  # int8 per model, or empty
    edge_rtt_s: float  # >= 0: this chunk is one request forwarded from its home edge, served here at that extra
    #                    latency (no preload before it); < 0: not forwarded


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    # Arrays from Arrow are read-only and numba types them apart from writable ones: one kernel for both.
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


def requests(trace, next_use=None, neighbour=None, edge_rtt_s=-1.0) -> Requests:
    return Requests(_readonly(trace.ts, np.float64), _readonly(trace.pair, np.int32),
                    _readonly(trace.units, np.float64), _readonly(trace.input_mb, np.float64),
                    _readonly(next_use if next_use is not None else _NO_NEXT_USE, np.float64),
                    _readonly(neighbour if neighbour is not None else _NO_NEIGHBOUR, np.int8), float(edge_rtt_s))


_NO_NEXT_USE = np.zeros(0)
_NO_NEIGHBOUR = np.zeros(0, np.int8)


def next_uses(models: np.ndarray, start: int = 0) -> np.ndarray:
    """For each request (its model's index), the sequence number (start + position) of the same model's next
    request, inf if none: one reverse look over a whole trace, in memory."""
    models = np.asarray(models)
    out = np.full(len(models), np.inf)
    order = np.argsort(models, kind="stable")
    same = models[order[1:]] == models[order[:-1]]
    out[order[:-1][same]] = order[1:][same] + start
    return out


# -- the engine's own bookkeeping ---------------------------------------------------------------------------
@shared
def fits_gpu(tab, m):
    """Model m fits the GPU at all: its own bytes, and its base's weights if it has a base (MODEL.md §9.5)."""
    b = tab.base_of[m]
    if b < 0:
        return tab.mem_bytes[m] <= tab.capacity_bytes
    return tab.mem_bytes[m] + tab.base_bytes[b] <= tab.capacity_bytes


@shared
def fits_gpu_at_some_level(tab, m):
    """fits_gpu(tab, m), or, under precision_mode = "ladder", m fits at its smallest precision (MODEL.md §9.2),
    or, under caching = "partial", its smallest prefix fits (MODEL.md §9.3)."""
    # (a model of a shared base has one level and no prefixes: fits_gpu, with its base's weights, says it all)
    if fits_gpu(tab, m):
        return True
    if tab.base_of[m] >= 0:
        return False
    if tab.mem_level[m, tab.n_levels[m] - 1] <= tab.capacity_bytes:
        return True
    return tab.partial != 0 and tab.part_bytes[m, 1] <= tab.capacity_bytes


@shared
def resident_bytes(tab, es, m):
    """The bytes cached model m holds: a prefix of its layers (MODEL.md §9.3), else its precision level's."""
    s = es.part[m]
    if s > 0:
        return tab.part_bytes[m, s]
    return tab.mem_level[m, es.level[m]]


@shared
def load_bytes(tab, es, m):
    """The bytes that loading m now adds: its own, and its base's weights unless they are resident."""
    b = tab.base_of[m]
    if b >= 0 and es.base_in[b] == 0:
        return tab.mem_bytes[m] + tab.base_bytes[b]
    return tab.mem_bytes[m]


@shared
def _unpin(tab, es):
    """The load is done (or given up): the pinned base is an ordinary one again, freed if nothing uses it."""
    b = es.pinned[0]
    es.pinned[0] = -1
    if b >= 0 and es.base_ref[b] == 0 and es.base_in[b] != 0:
        es.base_in[b] = 0
        es.used[0] -= tab.base_bytes[b]


@shared
def _insert(tab, es, m, seq, now):
    """m enters GPU memory with an empty context (with its base's weights if they were not resident), at
    precision level es.level[m] (0 unless the loop chose another)."""
    es.cached[m] = 1
    es.used[0] += resident_bytes(tab, es, m)
    es.last_use[m] = seq
    es.requests[m] = 0
    es.ready_at[m] = now  # the end of its load once an executor takes it
    b = tab.base_of[m]
    if b >= 0:
        if es.base_in[b] == 0:
            es.base_in[b] = 1
            es.used[0] += tab.base_bytes[b]
        elif es.base_ready[b] > now:  # an adapter loads once its base is in memory
            es.ready_at[m] = es.base_ready[b]
        es.base_ref[b] += 1
    start_context(es.context, m, now)
    n = es.n_cached[0]
    es.clist[n] = m
    es.clist_pos[m] = n
    es.n_cached[0] = n + 1


@shared
def _evict(tab, es, v, now):
    es.totals.sums[S_CONTEXT_DISCARDED] += discard_context(tab, es.context, v, now)
    n = es.n_cached[0] - 1
    last = es.clist[n]
    es.clist[es.clist_pos[v]] = last
    es.clist_pos[last] = es.clist_pos[v]
    es.clist_pos[v] = -1
    es.n_cached[0] = n
    es.cached[v] = 0
    es.used[0] -= resident_bytes(tab, es, v)
    touch_checkpoint(tab, es, v)
    es.level[v] = 0
    es.part[v] = 0
    b = tab.base_of[v]
    if b >= 0:  # the last model of a base frees its weights, unless the model being loaded needs them
        es.base_ref[b] -= 1
        if es.base_ref[b] == 0 and b != es.pinned[0]:
            es.base_in[b] = 0
            es.used[0] -= tab.base_bytes[b]
    es.totals.counts[C_EVICTIONS] += 1


@shared
def checkpoint_tier(tab, es, m):
    """Where loading m now reads its checkpoint from (MODEL.md §9.4): 0 (DRAM, at load_gbps) if checkpoints_in =
    dram or the host's DRAM tier holds it, else tab.tier (SSD, registry)."""
    if tab.tier == 0 or es.dram_in[m] != 0:
        return 0
    return tab.tier


@shared
def keep_checkpoint(tab, es, m):
    """m's checkpoint was just read for a load: the DRAM tier keeps it as its most recent, first dropping its
    least recently used checkpoints until it fits (one larger than the whole tier is never kept)."""
    if tab.tier == 0:
        return
    if es.dram_in[m] != 0:
        dlist_to_tail(es.dram_lru, m)
        return
    size = tab.ckpt_bytes[m]
    if size > tab.dram_bytes:
        return
    while es.dram_used[0] + size > tab.dram_bytes:
        v = dlist_head(es.dram_lru)
        dlist_remove(es.dram_lru, v)
        es.dram_in[v] = 0
        es.dram_used[0] -= tab.ckpt_bytes[v]
    dlist_push(es.dram_lru, m)
    es.dram_in[m] = 1
    es.dram_used[0] += size


@shared
def touch_checkpoint(tab, es, m):
    """m leaves GPU memory: its checkpoint, if the DRAM tier still holds it, becomes the most recent there."""
    if tab.tier != 0 and es.dram_in[m] != 0:
        dlist_to_tail(es.dram_lru, m)


@shared
def warmup_ends(tab, es, seq, now):
    """Called for each request while the warm-up lasts: is request seq (arriving at now) the first measured
    one? Then every total so far is dropped (MODEL.md §4: no metric counts the warm-up)."""
    if seq == 0:
        es.first_ts[0] = now
    if seq < tab.warmup_requests or now < es.first_ts[0] + tab.warmup_s:
        return False
    es.measure_from[0] = seq
    clear_totals(es.totals)
    return True


@shared
def _arrive(es, seq, m, now):
    """Request seq (model m) arrived at now: what the next request's preloads may know of it."""
    es.last_request[0] = seq
    es.last_request[1] = m
    es.last_ts[0] = now


@shared
def preload_start(es):
    """(executor, time) of the next preload: the first free executor, from when it is free but not before the
    last request arrived (a preload knows only the requests before it). Preloads are queued after every
    request already assigned to that executor, so they never delay one."""
    j = first_free_executor(es.free_at)
    return j, max(es.free_at[j], es.last_ts[0])


@shared
def preload_model(tab, es, m, victims, now):
    """Preload model m in the idle time before the request arriving at `now` (docs/model.md, "Preloading"):
    evict victims[0], victims[1], ... (the policy's, distinct cached models, in its order) until m fits,
    insert m with an empty context, and load it on the first free executor from preload_start(), which is
    then busy, and m not ready, until the load ends (a request that arrives before that waits). Costed as a
    load (switching cost, load energy and time, in the S_PRELOAD_* sums) and counted in C_PRELOADS. Refused (False, nothing changed)
    if the load would not start before `now`, m is cached, or the victims do not make room."""
    j, t = preload_start(es)
    if t >= now or es.cached[m] != 0:
        return False
    b = tab.base_of[m]
    with_base = b >= 0 and es.base_in[b] == 0
    pin = b if b >= 0 and not with_base else -1
    need = es.used[0] + load_bytes(tab, es, m) - tab.capacity_bytes
    k = 0
    room = True
    while need > 0:
        if k == victims.shape[0] or victims[k] < 0 or es.cached[victims[k]] == 0:
            room = False
            break
        q = victims[k]
        need -= resident_bytes(tab, es, q)
        h = tab.base_of[q]
        if h >= 0:  # tentatively: does evicting q free its base's weights too?
            es.base_ref[h] -= 1
            if es.base_ref[h] == 0 and h != pin:
                need -= tab.base_bytes[h]
        k += 1
    for r in range(k):  # undo the tentative counts
        h = tab.base_of[victims[r]]
        if h >= 0:
            es.base_ref[h] += 1
    if not room:
        return False
    es.pinned[0] = pin
    for q in range(k):
        _evict(tab, es, victims[q], t)
    _load_for_no_request(tab, es, m, j, t)
    es.pinned[0] = -1
    return True


@shared
def _load_for_no_request(tab, es, m, j, t):
    """Cache m with an empty context and load it on executor j from t (an adapter once its base is in),
    costed as a load with the preloads: a preload, or random-placement's placement."""
    b = tab.base_of[m]
    with_base = b >= 0 and es.base_in[b] == 0
    tier = checkpoint_tier(tab, es, m)
    _insert(tab, es, m, es.last_request[0], t)
    start = max(t, es.ready_at[m])  # an adapter waits for its base
    load = account_preload(tab, es.totals, m, with_base, tier)
    keep_checkpoint(tab, es, m)
    es.free_at[j] = start + load
    es.ready_at[m] = start + load
    if with_base:
        es.base_ready[b] = start + tab.base_load[b]


@shared
def take_executor(tab, es, m, p, units, k_eff, now, ready, load, frac):
    """Serve a request for pair p on model m (ready at `ready`; `load` s of loading or upgrading first):
    (start, compute). With batching (MODEL.md §9.2; docs/model.md, "Batching") and no load, it joins m's last
    batch if that has not started, holds this copy of m (starts once it is ready) and has room, and waits for
    it: a batch that is its executor's last may grow longer; one with work queued behind it takes the request
    only if it ends no later. Otherwise it starts a batch of its own on the first free executor. frac: the
    fraction of m's layers resident (MODEL.md §9.3: both roofline legs scale with it; 1.0 for a whole model)."""
    if tab.batching != 0 and load == 0.0 and es.batch_exec[m] >= 0:
        s = es.batch_start[m]
        if s >= now and s >= ready and es.batch_n[m] < tab.max_batch:
            k = es.batch_exec[m]
            compute = service_time(tab, p, units, k_eff, es.batch_n[m] + 1) * frac
            last = es.free_at[k] == es.batch_end[m]
            if last or s + compute <= es.batch_end[m]:
                es.batch_n[m] += 1
                if s + compute > es.batch_end[m]:
                    es.batch_end[m] = s + compute
                    es.free_at[k] = s + compute
                return s, compute
    j = first_free_executor(es.free_at)
    start = max(now, es.free_at[j], ready)
    compute = service_time(tab, p, units, k_eff, 1) * frac
    es.free_at[j] = start + load + compute
    es.batch_exec[m] = j
    es.batch_start[m] = start + load
    es.batch_end[m] = es.free_at[j]
    es.batch_n[m] = 1
    es.totals.counts[C_BATCHES] += 1
    return start, compute


@shared
def find_substitute(tab, es, p, units, input_mb, now, bar):
    """The pair of the cached equivalent model (MODEL.md §9.1) that would serve a request for pair p at the
    lowest price now (substitute_price; the first in pair order among ties), if that is below `bar`, what
    the alternative costs now (the cloud, or loading); -1: none."""
    best = -1
    best_price = bar
    j = first_free_executor(es.free_at)
    for r in range(tab.sub_first[p], tab.sub_first[p + 1]):
        q = tab.sub_pair[r]
        e = tab.pair_model[q]
        if es.cached[e] == 0:
            continue
        _, k_eff, _ = examples_at_service(tab, es.context, q, e, now)
        wait = max(now, es.free_at[j], es.ready_at[e]) - now
        price = substitute_price(tab, p, q, units, input_mb, k_eff, wait)
        if price < best_price:
            best = q
            best_price = price
    return best


@shared
def device_serves(tab, es, p, units, input_mb, now):
    """The user's device runs this request (MODEL.md §9.4; docs/model.md, "Devices"): its model fits the device
    and running it there costs less now than the cloud and than the edge as it stands (device_is_cheapest): a hit
    with this copy's examples in context after the queue, a miss after the queue and the load, no edge at all
    for a model that never fits the GPU. Reads the edge's state and changes nothing."""
    m = tab.pair_model[p]
    if tab.device_fits[m] == 0:
        return False
    j = first_free_executor(es.free_at)
    if es.cached[m] != 0:
        _, k_eff, _ = examples_at_service(tab, es.context, p, m, now)
        return device_is_cheapest(tab, p, units, input_mb, True, k_eff,
                                  max(now, es.free_at[j], es.ready_at[m]) - now, 0.0)
    g = tab.base_of[m]
    load = tab.base_load[g] + tab.load_time[m] if g >= 0 and es.base_in[g] == 0 else tab.load_time[m]
    return device_is_cheapest(tab, p, units, input_mb, fits_gpu_at_some_level(tab, m), 0.0,
                              max(now, es.free_at[j]) - now, load)


@shared
def evict_model(tab, es, v, now):
    """Evict cached model v now, for a policy that makes room itself (random-placement's placements)."""
    _evict(tab, es, v, now)


@shared
def place_model(tab, es, m, now):
    """Load model m, for no request, on a miss at `now` (random-placement, MODEL.md §5), once the policy has
    evicted room for it: inserted with an empty context and loaded on the first free executor from when it
    is free (not before `now`), which is then busy, and m not ready, until the load ends. Costed as a load
    and counted with the preloads (C_PRELOADS, the S_PRELOAD_* sums): loads made for no request."""
    j = first_free_executor(es.free_at)
    _load_for_no_request(tab, es, m, j, max(es.free_at[j], now))


# -- the request loop -----------------------------------------------------------------------------------
# The policy hooks as the loop calls them. kernel.py compiles the loop with each call replaced by a switch
# over a group of built-ins (code = the policy's index in its group, pss = every state of the group): one statement
# per call, `[target =] hook(code, pss, ...)`.
def admit(code, pss, es, tab, m, now): ...
def outranks(code, pss, es, tab, m, now): ...
def victim(code, pss, es, tab, now): ...
def on_evict(code, pss, es, tab, v): ...
def on_insert(code, pss, es, tab, m): ...
def on_hit(code, pss, es, tab, m, loaded): ...
def preload(code, pss, es, tab, now): ...


@shared
def _decided(block, b, outcome, k_eff, wait, evictions, with_base, served, level, part, upgrade_s, compute, tier):
    """Request b of the block was decided: account_block accounts it with the block."""
    block.tier[b] = tier
    block.compute[b] = compute
    block.part[b] = part
    block.served[b] = served
    block.level[b] = level
    block.upgrade_s[b] = upgrade_s
    block.outcome[b] = outcome
    block.k_eff[b] = k_eff
    block.wait[b] = wait
    block.evictions[b] = evictions
    block.with_base[b] = with_base


def replay_requests(code, tab, es, pss, rq, log_on, log):
    """Replay one chunk of requests; updates es, the policy state pss[code] and log in place.

    Decided a block of requests at a time, then accounted (account_block): what a request costs never
    feeds back into the cache, so the loop that decides carries only the state that does. Under cooperation
    forward it stops before the first forward candidate (rq.neighbour) and leaves es.seq[0] at it."""
    cx, blk = es.context, es.block
    seq0 = es.seq[0]
    n = rq.ts.shape[0]
    stop = n  # the first forward candidate (cooperation forward), touched by nothing
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        done = lo  # the block's requests before this one are accounted
        for i in range(lo, hi):
            if rq.neighbour.shape[0] > 0 and forward_candidate(tab, es, rq, i):
                stop = i
                break
            es.seq[0] = seq0 + i
            now = rq.ts[i]
            if es.measure_from[0] < 0:  # warming up: account the warm-up so far, then drop it if it ends here
                account_block(tab, es.totals, rq, blk, lo, done, i, log_on, log)
                done = i
                warmup_ends(tab, es, seq0 + i, now)
            # The user's device runs it when that costs least now (MODEL.md §9.4): decided before the edge hears
            # of it, so the edge's cache, policy, context, queue and request counts never see it.
            if tab.device_on != 0 and device_serves(tab, es, rq.pair[i], rq.units[i], rq.input_mb[i], now):
                _decided(blk, i - lo, DEVICE, 0.0, 0.0, 0, False, rq.pair[i], 0, 0, 0.0, 0.0, 0)
                continue
            # The idle time before this request: the policy may preload (preload_model); it sees only the
            # requests before this one (docs/model.md, "Preloading"). A no-op for every built-in but `active`.
            if rq.edge_rtt_s < 0.0:  # a request forwarded here is served on arrival: no idle time before it
                preload(code, pss, es, tab, now)
            p = rq.pair[i]
            m = tab.pair_model[p]
            _arrive(es, seq0 + i, m, now)
            units = rq.units[i]
            input_mb = rq.input_mb[i]
            es.seen[m] += 1
            evictions = 0
            with_base = False  # a load of m's base's weights too (MODEL.md §9.5)
            cached = es.cached[m] != 0
            if cached:
                admitted = True
                k_own, k_eff, f = examples_at_service(tab, cx, p, m, now)
                load = 0.0
                tier = 0
            else:
                # A model larger than the GPU is always offloaded; otherwise the policy and the admission
                # rule decide (MODEL.md §4). A model loaded now serves zero-shot: its context is empty.
                k_own, k_eff, f = 0.0, 0.0, 1.0
                tier = checkpoint_tier(tab, es, m)  # where m's checkpoint is read from (MODEL.md §9.4)
                load = tier_time(tab, tab.load_time[m], tier)
                admitted = fits_gpu_at_some_level(tab, m)
                if admitted:
                    admitted = admit(code, pss, es, tab, m, now)
                    g = tab.base_of[m]
                    if g >= 0 and es.base_in[g] == 0:  # its base is not resident: base and adapter load
                        with_base = True
                        load = tab.base_load[g] + tab.load_time[m]
                    if (admitted and tab.admission == ADMIT_OUTRANK
                            and es.used[0] + load_bytes(tab, es, m) > tab.capacity_bytes):
                        admitted = outranks(code, pss, es, tab, m, now)
                    if admitted and tab.admission == ADMIT_COST:
                        admitted = worth_loading(tab, es.seen[m], p, m, now, units, input_mb, with_base, tier)
                    if not admitted:
                        es.totals.counts[C_DECLINED] += 1
            if admitted and tab.dispatch == DISPATCH_CHEAPEST:  # the edge may still cost more than the cloud now
                j = first_free_executor(es.free_at)
                wait = max(now, es.free_at[j], es.ready_at[m] if cached else now) - now
                if edge_is_dearer(tab, p, units, input_mb, k_eff, wait, load):
                    es.totals.counts[C_DISPATCHED] += 1
                    admitted = False
            loaded = admitted and not cached
            sub = -1  # the pair of a cached equivalent that serves it instead (MODEL.md §9.1)
            if loaded and tab.substitute == SUB_BEFORE_LOAD:  # rather than loading, if that costs less now
                j = first_free_executor(es.free_at)
                sub = find_substitute(tab, es, p, units, input_mb, now,
                                      edge_price(tab, p, units, input_mb, 0.0, max(now, es.free_at[j]) - now, load))
                loaded = sub < 0
            load_level = 0  # the precision level m loads at (MODEL.md §9.2: the ladder's choice)
            load_part = 0  # the prefix of its layers it loads (MODEL.md §9.3; 0: whole)
            if loaded:
                need = load_bytes(tab, es, m)
                if tab.n_levels[m] > 1:
                    load_level = ladder_level(tab, m, tab.capacity_bytes - es.used[0], es.seen[m], now)
                    need = tab.mem_level[m, load_level]
                    load = tier_time(tab, tab.load_level[m, load_level], tier)
                if tab.partial != 0 and tab.base_of[m] < 0 and es.used[0] + need > tab.capacity_bytes:
                    load_part = prefix_to_load(tab, m, tab.capacity_bytes - es.used[0])  # MODEL.md §9.3
                    if load_part > 0:
                        need = tab.part_bytes[m, load_part]
                        load = tier_time(tab, tab.part_load[m, load_part], tier)
                if tab.base_of[m] >= 0 and not with_base:
                    es.pinned[0] = tab.base_of[m]  # its resident base stays while room is made for its adapter
                while es.used[0] + need > tab.capacity_bytes:
                    v = victim(code, pss, es, tab, now)
                    if v < 0:
                        break  # the policy ranks the newcomer itself lowest (GDSF): offloaded after these evictions
                    on_evict(code, pss, es, tab, v)
                    _evict(tab, es, v, now)
                    evictions += 1
                if es.used[0] + need > tab.capacity_bytes:
                    es.totals.counts[C_DECLINED] += 1
                    admitted = False
                    _unpin(tab, es)
            if not admitted and tab.substitute != SUB_NEVER:  # rather than offloading, if that costs less now
                sub = find_substitute(tab, es, p, units, input_mb, now, cloud_price(tab, p, units, input_mb))
            if sub >= 0:  # served by the equivalent's copy, with its context, on the first free executor
                e = tab.pair_model[sub]
                k_own, k_eff, f = examples_at_service(tab, cx, sub, e, now)
                start, compute = take_executor(tab, es, e, sub, units, k_eff, now, es.ready_at[e], 0.0,
                                               es.part[e] / tab.partial_steps if es.part[e] > 0 else 1.0)
                _decided(blk, i - lo, SUBSTITUTE, k_eff, start - now, evictions, False, sub, es.level[e], es.part[e],
                         0.0, compute, 0)
                add_demonstration(tab, cx, sub, e, now, k_own, f)
                es.last_use[e] = seq0 + i
                es.requests[e] += 1
                on_hit(code, pss, es, tab, e, False)
                continue
            if not admitted:
                _decided(blk, i - lo, CLOUD, 0.0, 0.0, evictions, False, p, 0, 0, 0.0, 0.0, 0)
                continue
            if loaded:
                es.level[m] = load_level
                es.part[m] = load_part
                _insert(tab, es, m, seq0 + i, now)
                _unpin(tab, es)
                keep_checkpoint(tab, es, m)
                on_insert(code, pss, es, tab, m)
            level = es.level[m]
            upgrade_s = 0.0  # a hit on a reduced copy reloads the rest of its weights first, once they fit
            if not loaded and level > 0 and (es.used[0] + tab.mem_level[m, 0] - tab.mem_level[m, level]
                                              <= tab.capacity_bytes):
                es.used[0] += tab.mem_level[m, 0] - tab.mem_level[m, level]
                es.level[m] = 0
                upgrade_s = tier_time(tab, tab.upgrade_time[m, level], checkpoint_tier(tab, es, m))
                level = 0
            part = es.part[m]
            if not loaded and part > 0:  # a prefix grows by what fits the free memory now (MODEL.md §9.3)
                grow = prefix_to_grow(tab, m, part, tab.capacity_bytes - es.used[0])
                if grow != part:
                    es.used[0] += tab.part_bytes[m, grow] - tab.part_bytes[m, part]
                    upgrade_s = tier_time(tab, tab.part_load[m, 0] + (tab.part_load[m, grow] - tab.part_load[m, part]),
                                          checkpoint_tier(tab, es, m))
                    part = grow if grow < tab.partial_steps else 0
                    es.part[m] = part
            upgraded = upgrade_s > 0.0
            if upgraded:
                load = upgrade_s
                keep_checkpoint(tab, es, m)
            # Served at the edge with the examples in context this copy has, on the first free executor,
            # once the model is in memory.
            start, compute = take_executor(tab, es, m, p, units, k_eff, now, es.ready_at[m], load,
                                           part / tab.partial_steps if part > 0 else 1.0)
            if loaded or upgraded:
                es.ready_at[m] = start + load
                if with_base:
                    es.base_ready[tab.base_of[m]] = start + tab.base_load[tab.base_of[m]]
            _decided(blk, i - lo, LOAD if loaded else HIT, k_eff, start - now, evictions, with_base, p, level, part,
                     upgrade_s, compute, tier)
            add_demonstration(tab, cx, p, m, now, k_own, f)
            es.last_use[m] = seq0 + i
            if rq.next_use.shape[0] > 0:
                es.next_use[m] = rq.next_use[i]
            es.requests[m] += 1
            on_hit(code, pss, es, tab, m, loaded)
        account_block(tab, es.totals, rq, blk, lo, done, min(hi, stop), log_on, log)
        if stop < n:
            break
    if es.measure_from[0] < 0:  # still warming up at the chunk's end: nothing so far counts
        clear_totals(es.totals)
    es.seq[0] = seq0 + stop


@shared
def forward_candidate(tab, es, rq, i):
    """Request i misses here while a neighbour edge holds its model (cooperation forward, MODEL.md §9.4)."""
    m = tab.pair_model[rq.pair[i]]
    return es.cached[m] == 0 and rq.neighbour[m] != 0


# Hooks for policies that need nothing at that point.
@njit(inline="always")
def admit_always(ps, es, tab, m, now):
    return True


@njit(inline="always")
def outranks_always(ps, es, tab, m, now):
    """A newcomer never ranks first among the victims (LRU: it is the most recent; FIFO: the newest)."""
    return True


@njit(inline="always")
def no_victim(ps, es, tab, now):
    return -1


@njit(inline="always")
def ignore(ps, es, tab, m):
    pass


@njit(inline="always")
def ignore_hit(ps, es, tab, m, loaded):
    pass


@njit(inline="always")
def no_preload(ps, es, tab, now):
    pass


class FastEngine:
    """Replays chunks of a trace through a built-in policy on the compiled kernel; state carries over."""

    def __init__(self, tables: Tables, policy, seed: int = 0):
        from ..policies import BUILTIN_GROUPS, builtin_modules
        from .kernel import load_kernel

        if policy.fast is None:
            raise ValueError(f"policy {policy.name!r} has no fast implementation")
        group = next(g for g in BUILTIN_GROUPS if policy.fast in g)
        modules = builtin_modules(group)
        self.kernel = load_kernel(modules)
        self.code = group.index(policy.fast)
        self.tables = tables = tables.for_policy(policy)
        self.policy = policy
        self.state = new_engine_state(tables)
        # Every built-in's state, so that the kernel's argument types (and its cache entry) never change;
        # only this policy's is used.
        self.pstates = tuple(sys.modules[mod].new_state(tables, seed) for mod in modules)
        self.last_ts = -math.inf  # chunks must continue in time order
        if not self.kernel.replay.signatures:  # compile it (or load it from the cache) here, on one thread
            empty = requests(Requests(np.zeros(0), np.zeros(0, np.int32), np.zeros(0), np.zeros(0), _NO_NEXT_USE,
                                      _NO_NEIGHBOUR, -1.0))
            with compiling():
                self.kernel.replay(self.code, tables, self.state, self.pstates, empty, False, _NO_LOG)

    @property
    def pstate(self):
        return self.pstates[self.code]

    @property
    def totals(self) -> Totals:
        return self.state.totals

    @property
    def counts(self):
        return self.state.totals.counts

    @property
    def sums(self):
        return self.state.totals.sums

    @property
    def hist(self):
        return self.state.totals.hist

    @property
    def measure_from_seq(self) -> int:
        """The first measured request's sequence number; -1 while the warm-up lasts."""
        return int(self.state.measure_from[0])

    def run(self, trace, log: RequestLog | None = None, next_use=None, neighbour=None, edge_rtt_s=-1.0) -> int:
        """Replay one chunk of TraceArrays; fill `log` (new_log(len(trace))) if given. next_use: this
        chunk's slice of next_uses() over the whole trace, for a policy that needs_next_use. neighbour,
        edge_rtt_s: cooperation forward (Requests); returns how many requests it replayed (all, unless it
        stopped before a forward candidate)."""
        if len(trace.ts) == 0:
            return 0
        if trace.ts[0] < self.last_ts:
            from ..errors import InputError
            raise InputError(f"{trace.source}: chunk starts at t={trace.ts[0]} before the previous chunk ended "
                             f"(t={self.last_ts}); chunked replay needs a time-sorted trace")
        rq = requests(trace, next_use, neighbour, edge_rtt_s)
        seq0 = int(self.state.seq[0])
        self.kernel.replay(self.code, self.tables, self.state, self.pstates, rq, log is not None,
                           log if log is not None else _NO_LOG)
        done = int(self.state.seq[0]) - seq0
        if done:
            self.last_ts = float(trace.ts[done - 1])
        return done


_NO_LOG = new_log(0)
