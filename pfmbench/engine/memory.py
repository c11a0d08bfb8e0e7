"""The fast engine's own bookkeeping (MODEL.md §4, §9): what fits, what a load adds, inserting and evicting
(shared bases and their cascades, MODEL.md §9.5), the host's DRAM tier of checkpoints (§9.4), the warm-up,
preloads and placements, executors and batches, substitutes (§9.1) and the user's device. Every function is
@shared: compiled into the kernel, and plain Python for the reference engine and the tests.
"""

from __future__ import annotations

import numpy as np

from . import jit as _jit  # noqa: F401  (installs the kernel cache locator before anything compiles)
from .context import (
    discard_context,
    examples_at_service,
    start_context,
)
from .costs import (
    account_preload,
    device_is_cheapest,
    first_free_executor,
    service_time,
    substitute_price,
)
from .jit import shared
from .record import (
    C_BATCHES,
    C_EVICTIONS,
    S_CONTEXT_DISCARDED,
    clear_totals,
)
from .structures import dlist_head, dlist_push, dlist_remove, dlist_to_tail


@shared
def fits_gpu(tab, m):
    """Model m fits the GPU at all: its own bytes, and its base's weights if it has a base (MODEL.md §9.5)."""
    b = tab.base_of[m]
    if b < 0 or b == m:
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
    if b >= 0 and b != m and es.base_in[b] == 0:
        return tab.mem_bytes[m] + tab.base_bytes[b]
    return tab.mem_bytes[m]


@shared
def needs_base(tab, es, m):
    """Loading m loads its base's weights first: m is a variant whose base is not resident (MODEL.md §9.5)."""
    b = tab.base_of[m]
    return b >= 0 and b != m and es.base_in[b] == 0


@shared
def use_order(tab, m, last_use):
    """last_use as policies break ties with it: a base is touched after the variant that used it, so among
    models used by the same request it ranks after them (+0.5; MODEL.md §9.5)."""
    if tab.base_of[m] == m:
        return last_use + 0.5
    return last_use + 0.0


@shared
def _unpin(tab, es):
    """The load is done (or given up): no base is held out any more."""
    es.pinned[0] = -1


@shared
def _hold_out(es, b):
    """The pinned base b, named by the policy, leaves the list of cached models (not GPU memory) while room is
    made for its adapter: it cannot be named again."""
    n = es.n_cached[0] - 1
    last = es.clist[n]
    es.clist[es.clist_pos[b]] = last
    es.clist_pos[last] = es.clist_pos[b]
    es.clist_pos[b] = -1
    es.n_cached[0] = n


@shared
def _put_back(es, b, seq):
    """The held-out base re-enters the list, as if loaded by this request (the policy's on_insert follows)."""
    n = es.n_cached[0]
    es.clist[n] = b
    es.clist_pos[b] = n
    es.n_cached[0] = n + 1
    es.last_use[b] = seq
    es.requests[b] = 0


@shared
def _insert(tab, es, m, seq, now):
    """m enters GPU memory with an empty context (with its base's weights if they were not resident), at
    precision level es.level[m] (0 unless the loop chose another)."""
    es.cached[m] = 1
    es.used[0] += resident_bytes(tab, es, m)
    es.last_use[m] = seq
    es.requests[m] = 0
    es.ready_at[m] = now  # the end of its load once an executor takes it
    es.next_use[m] = np.inf  # known once it serves (a base loaded with its variant has not)
    b = tab.base_of[m]
    if b == m:  # a base: its weights, loading from now (the caller sets when they are in)
        es.base_in[b] = 1
        es.base_ready[b] = now
    elif b >= 0:  # a variant, inserted after its base
        if es.base_ready[b] > now:  # an adapter loads once its base is in memory
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
    _hold_out(es, v)  # out of the list of cached models (swap-remove)
    es.cached[v] = 0
    es.used[0] -= resident_bytes(tab, es, v)
    touch_checkpoint(tab, es, v)
    es.level[v] = 0
    es.part[v] = 0
    b = tab.base_of[v]
    if b == v:  # its weights (resident_bytes above); its variants have left before it (_evict_with_variants)
        es.base_in[b] = 0
    elif b >= 0:
        es.base_ref[b] -= 1
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
def _evict_with_variants(tab, es, v, now):
    """Evict v; a base takes its cached variants with it first, in catalog order (a cascade, MODEL.md §9.5).
    For evictions no policy hook hears of (preloads, random-placement's); returns the models evicted."""
    k = 0
    if tab.base_of[v] == v:
        for q in range(tab.base_of.shape[0]):
            if tab.base_of[q] == v and q != v and es.cached[q] != 0:
                _evict(tab, es, q, now)
                k += 1
    _evict(tab, es, v, now)
    return k + 1


@shared
def _listed(victims, k, q):
    """q is among victims[0..k-1]."""
    for r in range(k):
        if victims[r] == q:
            return True
    return False


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
    pin = b if b >= 0 and b != m and es.base_in[b] != 0 else -1  # m's resident base is skipped, never evicted
    need = es.used[0] + load_bytes(tab, es, m) - tab.capacity_bytes
    k = 0
    room = True
    while need > 0:
        if k == victims.shape[0] or victims[k] < 0 or es.cached[victims[k]] == 0:
            room = False
            break
        q = victims[k]
        h = tab.base_of[q]
        # counted once: a variant whose base is an earlier victim leaves with it; a base takes its variants
        if q != pin and not (h >= 0 and h != q and h != pin and _listed(victims, k, h)):
            need -= resident_bytes(tab, es, q)
            if h == q:
                for w in range(tab.base_of.shape[0]):
                    if tab.base_of[w] == q and w != q and es.cached[w] != 0 and not _listed(victims, k, w):
                        need -= resident_bytes(tab, es, w)
        k += 1
    if not room:
        return False
    for r in range(k):
        q = victims[r]
        if q != pin and es.cached[q] != 0:
            _evict_with_variants(tab, es, q, t)
    _load_for_no_request(tab, es, m, j, t)
    return True


@shared
def _load_for_no_request(tab, es, m, j, t):
    """Cache m with an empty context and load it on executor j from t (an adapter once its base is in),
    costed as a load with the preloads: a preload, or random-placement's placement."""
    b = tab.base_of[m]
    with_base = needs_base(tab, es, m)
    tier = checkpoint_tier(tab, es, m)
    if with_base:  # the base enters first, with its weights
        _insert(tab, es, b, es.last_request[0], t)
    _insert(tab, es, m, es.last_request[0], t)
    start = max(t, es.ready_at[m])  # an adapter waits for its base
    load = account_preload(tab, es.totals, m, with_base, tier)
    keep_checkpoint(tab, es, m)
    es.free_at[j] = start + load
    es.ready_at[m] = start + load
    if with_base:
        es.base_ready[b] = start + tab.base_load[b]
        es.ready_at[b] = es.base_ready[b]
    elif b == m:
        es.base_ready[b] = es.ready_at[m]


@shared
def take_executor(tab, es, m, p, units, k_eff, now, ready, load, frac):
    """Serve a request for pair p on model m (ready at `ready`; `load` s of loading or upgrading first):
    (start, compute). With batching (MODEL.md §9.2; docs/model.md, "Batching") and no load, it joins m's last
    batch if that has not started, holds this copy of m (starts once it is ready) and has room, and waits for
    it: a batch that is its executor's last may grow longer; one with work queued behind it takes the request
    only if it ends no later. Otherwise it starts a batch of its own on the first free executor. frac: the
    fraction of m's layers resident (MODEL.md §9.3: both roofline legs scale with it; 1.0 for a whole model).
    The adapters of one shared base (and the base's own tasks) batch together, as S-LoRA serves them (MODEL.md
    §9.5): their batch is the base's."""
    bk = tab.base_of[m] if tab.base_of[m] >= 0 else m  # whose batch it may join
    if tab.batching != 0 and load == 0.0 and es.batch_exec[bk] >= 0:
        s = es.batch_start[bk]
        if s >= now and s >= ready and es.batch_n[bk] < tab.max_batch:
            k = es.batch_exec[bk]
            compute = service_time(tab, p, units, k_eff, es.batch_n[bk] + 1) * frac
            last = es.free_at[k] == es.batch_end[bk]
            if last or s + compute <= es.batch_end[bk]:
                es.batch_n[bk] += 1
                if s + compute > es.batch_end[bk]:
                    es.batch_end[bk] = s + compute
                    es.free_at[k] = s + compute
                return s, compute
    j = first_free_executor(es.free_at)
    start = max(now, es.free_at[j], ready)
    compute = service_time(tab, p, units, k_eff, 1) * frac
    es.free_at[j] = start + load + compute
    if tab.batching != 0:  # the batch it starts (read only with batching on: 4 stores a request saved)
        es.batch_exec[bk] = j
        es.batch_start[bk] = start + load
        es.batch_end[bk] = es.free_at[j]
        es.batch_n[bk] = 1
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
    load = tab.base_load[g] + tab.load_time[m] if needs_base(tab, es, m) else tab.load_time[m]
    return device_is_cheapest(tab, p, units, input_mb, fits_gpu_at_some_level(tab, m), 0.0,
                              max(now, es.free_at[j]) - now, load)


@shared
def evict_model(tab, es, v, now):
    """Evict cached model v now (a base with its variants), for a policy that makes room itself
    (random-placement's placements)."""
    _evict_with_variants(tab, es, v, now)


@shared
def place_model(tab, es, m, now):
    """Load model m, for no request, on a miss at `now` (random-placement, MODEL.md §5), once the policy has
    evicted room for it: inserted with an empty context and loaded on the first free executor from when it
    is free (not before `now`), which is then busy, and m not ready, until the load ends. Costed as a load
    and counted with the preloads (C_PRELOADS, the S_PRELOAD_* sums): loads made for no request."""
    j = first_free_executor(es.free_at)
    _load_for_no_request(tab, es, m, j, max(es.free_at[j], now))


@shared
def forward_candidate(tab, es, rq, i):
    """Request i misses here while a neighbour edge holds its model (cooperation forward, MODEL.md §9.4)."""
    m = tab.pair_model[rq.pair[i]]
    return es.cached[m] == 0 and rq.neighbour[m] != 0
