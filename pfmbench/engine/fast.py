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

import numpy as np
from numba import njit

from . import accountant
from . import jit as _jit  # noqa: F401  (installs the kernel cache locator before anything compiles)
from .context import (
    add_demonstration,
    examples_at_service,
)
from .costs import (
    account_block,
    cloud_price,
    edge_is_dearer,
    edge_price,
    first_free_executor,
    ladder_level,
    prefix_to_grow,
    prefix_to_load,
    tier_time,
    worth_loading,
)
from .jit import compiling, shared
from .memory import (  # noqa: F401  (re-exported: policies, the kernel and tests read them from fast)
    _arrive,
    _evict,
    _evict_with_variants,
    _hold_out,
    _insert,
    _listed,
    _load_for_no_request,
    _put_back,
    _unpin,
    checkpoint_tier,
    device_serves,
    evict_model,
    find_substitute,
    fits_gpu,
    fits_gpu_at_some_level,
    forward_candidate,
    keep_checkpoint,
    load_bytes,
    needs_base,
    place_model,
    preload_model,
    preload_start,
    resident_bytes,
    take_executor,
    touch_checkpoint,
    use_order,
    warmup_ends,
)
from .record import (
    C_DECLINED,
    C_DISPATCHED,
    CLOUD,
    DEVICE,
    HIT,
    LOAD,
    SUBSTITUTE,
    RequestLog,
    Totals,
    clear_totals,
    new_log,
)
from .state import (  # noqa: F401  (re-exported: policies, the kernel and tests read them from fast)
    _NO_NEIGHBOUR,
    _NO_NEXT_USE,
    BLOCK,
    Block,
    EngineState,
    Requests,
    _readonly,
    new_block,
    new_engine_state,
    next_uses,
    requests,
)
from .tables import ADMIT_COST, ADMIT_OUTRANK, DISPATCH_CHEAPEST, SUB_BEFORE_LOAD, SUB_NEVER, Tables

# The kernel of a replay that uses none of MODEL.md §9's options that change what the loop does (devices,
# weight tiers, shared bases, substitutes, precision levels, partial caching: Tables.all_options) is compiled
# with ALL_OPTIONS = False, and LLVM drops those paths (kernel.py); every other is compiled with True.
ALL_OPTIONS = True

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
def _decided(block, b, options, outcome, k_eff, wait, evictions, with_base, served, level, part, upgrade_s, compute,
             tier):
    """Request b of the block was decided: account_block accounts it with the block. options: ALL_OPTIONS; without
    MODEL.md §9's options, with_base, level, part, upgrade_s and tier are always 0, as the block was allocated
    (new_block), and are not stored."""
    if options:
        block.tier[b] = tier
        block.part[b] = part
        block.level[b] = level
        block.upgrade_s[b] = upgrade_s
        block.with_base[b] = with_base
    block.compute[b] = compute
    block.served[b] = served
    block.outcome[b] = outcome
    block.k_eff[b] = k_eff
    block.wait[b] = wait
    block.evictions[b] = evictions


def replay_requests(code, tab, es, pss, rq, log_on, log):
    """Replay one chunk of requests; updates es, the policy state pss[code] and log in place.

    Decided a block of requests at a time, then accounted (account_block): what a request costs never
    feeds back into the cache, so the loop that decides carries only the state that does. Under cooperation
    forward it stops before the first forward candidate (rq.neighbour) and leaves es.seq[0] at it."""
    cx, blk = es.context, es.block
    seq0 = es.seq[0]
    n = rq.ts.shape[0]
    stop = n  # the first forward candidate (cooperation forward), touched by nothing
    forwarding = rq.neighbour.shape[0] > 0  # cooperation forward: look for forward candidates
    idle = rq.edge_rtt_s < 0.0  # a request forwarded here is served on arrival: no idle time before it
    # Deferred (FastEngine's accounting thread): blk holds the whole chunk's decisions, which the caller
    # accounts on another thread while this one decides the next chunk (issue 18).
    deferred = es.defer[0] != 0
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        b0 = 0 if deferred else lo  # request i's decisions are at blk[i - b0]
        done = lo  # the block's requests before this one are accounted
        for i in range(lo, hi):
            if forwarding and forward_candidate(tab, es, rq, i):
                stop = i
                break
            es.seq[0] = seq0 + i
            now = rq.ts[i]
            if es.measure_from[0] < 0:  # warming up: account the warm-up so far, then drop it if it ends here
                account_block(tab, es.totals, rq, blk, b0, done, i, log_on, log)
                done = i
                warmup_ends(tab, es, seq0 + i, now)
            # The user's device runs it when that costs least now (MODEL.md §9.4): decided before the edge hears
            # of it, so the edge's cache, policy, context, queue and request counts never see it.
            if (ALL_OPTIONS and tab.device_on != 0
                    and device_serves(tab, es, rq.pair[i], rq.units[i], rq.input_mb[i], now)):
                _decided(blk, i - b0, ALL_OPTIONS, DEVICE, 0.0, 0.0, 0, False, rq.pair[i], 0, 0, 0.0, 0.0, 0)
                continue
            # The idle time before this request: the policy may preload (preload_model); it sees only the
            # requests before this one (docs/model.md, "Preloading"). A no-op for every built-in but `active`.
            if idle:
                preload(code, pss, es, tab, now)
            p = rq.pair[i]
            m = tab.pair_model[p]
            _arrive(es, seq0 + i, m, now)
            units = rq.units[i]
            input_mb = rq.input_mb[i]
            es.seen[m] += 1
            evictions = 0
            with_base = False  # a load of m's base's weights too (MODEL.md §9.5)
            held = -1  # m's base, held out of the policy's choice while room was made for m (put back)
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
                # where m's checkpoint is read from (MODEL.md §9.4)
                tier = checkpoint_tier(tab, es, m) if ALL_OPTIONS else 0
                load = tier_time(tab, tab.load_time[m], tier)
                admitted = fits_gpu_at_some_level(tab, m)
                if admitted:
                    admitted = admit(code, pss, es, tab, m, now)
                    g = tab.base_of[m]
                    if ALL_OPTIONS and needs_base(tab, es, m):  # its base is not resident: base and adapter load
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
            # rather than loading, if that costs less now
            if ALL_OPTIONS and loaded and tab.substitute == SUB_BEFORE_LOAD:
                j = first_free_executor(es.free_at)
                sub = find_substitute(tab, es, p, units, input_mb, now,
                                      edge_price(tab, p, units, input_mb, 0.0, max(now, es.free_at[j]) - now, load))
                loaded = sub < 0
            load_level = 0  # the precision level m loads at (MODEL.md §9.2: the ladder's choice)
            load_part = 0  # the prefix of its layers it loads (MODEL.md §9.3; 0: whole)
            if loaded:
                need = load_bytes(tab, es, m)
                if ALL_OPTIONS and tab.n_levels[m] > 1:
                    load_level = ladder_level(tab, m, tab.capacity_bytes - es.used[0], es.seen[m], now)
                    need = tab.mem_level[m, load_level]
                    load = tier_time(tab, tab.load_level[m, load_level], tier)
                if ALL_OPTIONS and tab.partial != 0 and tab.base_of[m] < 0 and es.used[0] + need > tab.capacity_bytes:
                    load_part = prefix_to_load(tab, m, tab.capacity_bytes - es.used[0])  # MODEL.md §9.3
                    if load_part > 0:
                        need = tab.part_bytes[m, load_part]
                        load = tier_time(tab, tab.part_load[m, load_part], tier)
                if ALL_OPTIONS and tab.base_of[m] >= 0 and tab.base_of[m] != m and not with_base:
                    es.pinned[0] = tab.base_of[m]  # its resident base stays while room is made for its adapter
                while es.used[0] + need > tab.capacity_bytes:
                    v = victim(code, pss, es, tab, now)
                    if v < 0:
                        break  # the policy ranks the newcomer itself lowest (GDSF): offloaded after these evictions
                    on_evict(code, pss, es, tab, v)
                    if ALL_OPTIONS and v == es.pinned[0]:  # the base the adapter needs: held out, put back below
                        _hold_out(es, v)
                        held = v
                        continue
                    if ALL_OPTIONS and tab.base_of[v] == v:  # a base: its cached variants leave first (a cascade)
                        for q in range(tab.base_of.shape[0]):
                            if tab.base_of[q] == v and q != v and es.cached[q] != 0:
                                on_evict(code, pss, es, tab, q)
                                _evict(tab, es, q, now)
                                evictions += 1
                    _evict(tab, es, v, now)
                    evictions += 1
                if held >= 0:  # back in the policy's order, as if loaded by this request
                    _put_back(es, held, seq0 + i)
                    on_insert(code, pss, es, tab, held)
                if es.used[0] + need > tab.capacity_bytes:
                    es.totals.counts[C_DECLINED] += 1
                    admitted = False
                    _unpin(tab, es)
            # rather than offloading, if that costs less now
            if ALL_OPTIONS and not admitted and tab.substitute != SUB_NEVER:
                sub = find_substitute(tab, es, p, units, input_mb, now, cloud_price(tab, p, units, input_mb))
            if sub >= 0:  # served by the equivalent's copy, with its context, on the first free executor
                e = tab.pair_model[sub]
                k_own, k_eff, f = examples_at_service(tab, cx, sub, e, now)
                start, compute = take_executor(tab, es, e, sub, units, k_eff, now, es.ready_at[e], 0.0,
                                               es.part[e] / tab.partial_steps if es.part[e] > 0 else 1.0)
                _decided(blk, i - b0, ALL_OPTIONS, SUBSTITUTE, k_eff, start - now, evictions, False, sub,
                         es.level[e], es.part[e], 0.0, compute, 0)
                add_demonstration(tab, cx, sub, e, now, k_own, f)
                es.last_use[e] = seq0 + i
                es.requests[e] += 1
                on_hit(code, pss, es, tab, e, False)
                g = tab.base_of[e]
                if g >= 0 and g != e:  # its base served too
                    es.last_use[g] = seq0 + i
                    es.requests[g] += 1
                    on_hit(code, pss, es, tab, g, False)
                continue
            if not admitted:
                _decided(blk, i - b0, ALL_OPTIONS, CLOUD, 0.0, 0.0, evictions, False, p, 0, 0, 0.0, 0.0, 0)
                continue
            if loaded:
                if ALL_OPTIONS:  # (both 0 without the options, as eviction left them)
                    es.level[m] = load_level
                    es.part[m] = load_part
                if with_base:  # its base enters first (its weights), then its adapter
                    g = tab.base_of[m]
                    _insert(tab, es, g, seq0 + i, now)
                    on_insert(code, pss, es, tab, g)
                _insert(tab, es, m, seq0 + i, now)
                _unpin(tab, es)
                if ALL_OPTIONS:
                    keep_checkpoint(tab, es, m)
                on_insert(code, pss, es, tab, m)
            level = es.level[m] if ALL_OPTIONS else 0  # (no precision levels, no prefixes without the options)
            upgrade_s = 0.0  # a hit on a reduced copy reloads the rest of its weights first, once they fit
            if not loaded and level > 0 and (es.used[0] + tab.mem_level[m, 0] - tab.mem_level[m, level]
                                             <= tab.capacity_bytes):
                es.used[0] += tab.mem_level[m, 0] - tab.mem_level[m, level]
                es.level[m] = 0
                upgrade_s = tier_time(tab, tab.upgrade_time[m, level], checkpoint_tier(tab, es, m))
                level = 0
            part = es.part[m] if ALL_OPTIONS else 0
            # a prefix grows by what fits the free memory now (MODEL.md §9.3)
            if not loaded and part > 0:
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
                    es.ready_at[tab.base_of[m]] = es.base_ready[tab.base_of[m]]
                elif tab.base_of[m] == m:  # a base loaded for its own task: its variants wait for it
                    es.base_ready[m] = es.ready_at[m]
            _decided(blk, i - b0, ALL_OPTIONS, LOAD if loaded else HIT, k_eff, start - now, evictions, with_base, p,
                     level, part, upgrade_s, compute, tier)
            add_demonstration(tab, cx, p, m, now, k_own, f)
            es.last_use[m] = seq0 + i
            if rq.next_use.shape[0] > 0:
                es.next_use[m] = rq.next_use[i]
            es.requests[m] += 1
            on_hit(code, pss, es, tab, m, loaded)
            g = tab.base_of[m]
            # a variant served: its base is used too, after it (loaded with it, or put back)
            if ALL_OPTIONS and g >= 0 and g != m:
                es.last_use[g] = seq0 + i
                es.requests[g] += 1
                base_loaded = with_base or held >= 0
                on_hit(code, pss, es, tab, g, base_loaded)
        if not deferred:
            account_block(tab, es.totals, rq, blk, b0, done, min(hi, stop), log_on, log)
        if stop < n:
            break
    if es.measure_from[0] < 0:  # still warming up at the chunk's end: nothing so far counts
        clear_totals(es.totals)
    es.seq[0] = seq0 + stop


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

    def __init__(self, tables: Tables, policy, seed: int = 0, account_thread: bool | None = None,
                 all_options: bool = False):
        """account_thread: account on a second thread where that gives the same results (accountant.py);
        default: yes, unless PFMBENCH_ACCOUNT_THREAD=0. all_options: the kernel with MODEL.md §9's paths
        (ALL_OPTIONS) even where the tables use none of those options (Tables.all_options)."""
        from ..policies import BUILTIN_GROUPS, builtin_modules
        from .kernel import load_kernel

        if policy.fast is None:
            raise ValueError(f"policy {policy.name!r} has no fast implementation")
        group = next(g for g in BUILTIN_GROUPS if policy.fast in g)
        modules = builtin_modules(group)
        self.tables = tables = tables.for_policy(policy)
        self.kernel = load_kernel(modules, all_options or tables.all_options)  # never lean where it is needed
        self.code = group.index(policy.fast)
        self.policy = policy
        self.state = new_engine_state(tables)
        # Every built-in's state, so that the kernel's argument types (and its cache entry) never change;
        # only this policy's is used.
        self.pstates = tuple(sys.modules[mod].new_state(tables, seed) for mod in modules)
        self.last_ts = -math.inf  # chunks must continue in time order
        # The loop of a policy that loads models for no request accounts those loads itself (accountant.py).
        inline = getattr(sys.modules[modules[self.code]], "LOADS_FOR_NO_REQUEST", False)
        wanted = accountant.enabled() if account_thread is None else account_thread
        self.accountant = accountant.Accountant(self.state.totals) if wanted and not inline else None
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
        self.flush()
        return self.state.totals

    @property
    def counts(self):
        return self.totals.counts

    @property
    def sums(self):
        return self.totals.sums

    @property
    def hist(self):
        return self.totals.hist

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
        if (self.accountant is not None and log is None and neighbour is None and edge_rtt_s < 0
                and self.state.measure_from[0] >= 0 and len(trace.ts) >= accountant.MIN_ROWS):
            return self._run_deferred(trace, next_use)
        self.flush()  # what was handed over is accounted before this chunk's own accounting
        rq = requests(trace, next_use, neighbour, edge_rtt_s)
        seq0 = int(self.state.seq[0])
        self.kernel.replay(self.code, self.tables, self.state, self.pstates, rq, log is not None,
                           log if log is not None else _NO_LOG)
        done = int(self.state.seq[0]) - seq0
        if done:
            self.last_ts = float(trace.ts[done - 1])
        return done

    def _run_deferred(self, trace, next_use) -> int:
        """Replay a chunk a piece at a time, each piece's accounting handed to the accounting thread."""
        acc, n = self.accountant, len(trace.ts)
        loop_totals = acc.start()
        if not accountant.account_piece.signatures:  # compile it (or load it from the cache) on this thread
            empty = requests(trace.slice(0, 0))
            accountant.account_piece(self.tables, loop_totals, empty, acc.buffers[0], 0, _NO_LOG)
        es = self.state
        es.defer[0] = 1
        try:
            for lo in range(0, n, acc.piece):
                hi = min(n, lo + acc.piece)
                rq = requests(trace.slice(lo, hi), None if next_use is None else next_use[lo:hi])
                piece = es._replace(block=acc.buffer(), totals=loop_totals)
                self.kernel.replay(self.code, self.tables, piece, self.pstates, rq, False, _NO_LOG)
                acc.submit(self.tables, rq, hi - lo, _NO_LOG)
        finally:
            es.defer[0] = 0
        self.last_ts = float(trace.ts[n - 1])
        return n

    def flush(self) -> None:
        """Wait for the accounting thread: afterwards the totals count every request replayed."""
        if self.accountant is not None:
            self.accountant.flush()


_NO_LOG = new_log(0)
