"""The reference engine: MODEL.md §4 written to be read, one request at a time, in plain Python.

It runs any Policy (built-in or a drop-in file): the policy's `admit` on a miss and its `victim` (the
smallest `key`) until the model fits. The cost of a request and the Age of Context come from the same
functions the fast engine compiles (costs.py, context.py), run here as Python; tests/test_engines.py
checks that both engines agree on every request.
"""

from __future__ import annotations

from collections import OrderedDict

from .context import (
    UTIL_LINEAR,
    add_demonstration,
    context_now,
    context_rank,
    discard_context,
    examples_at_service,
    start_context,
)
from .context import Context as _Context
from .costs import (
    account_preload,
    cloud_price,
    device_is_cheapest,
    edge_is_dearer,
    edge_price,
    edge_work,
    first_free_executor,
    forwarded,
    ladder_level,
    prefix_to_grow,
    prefix_to_load,
    serve_cloud,
    serve_device,
    serve_edge,
    service_time,
    substitute_price,
    tier_time,
    worth_loading,
)
from .fast import next_uses
from .record import (
    C_BATCHES,
    C_DECLINED,
    C_DISPATCHED,
    C_EVICTIONS,
    C_REQUESTS,
    S_CONTEXT_DISCARDED,
    RequestLog,
    clear_totals,
    new_log,
    new_totals,
)
from .structures import splitmix64_next
from .tables import ADMIT_COST, ADMIT_OUTRANK, DISPATCH_CHEAPEST, SUB_BEFORE_LOAD, SUB_NEVER, Tables


class CacheEntry:
    """A model in GPU memory, as a policy sees it."""

    def __init__(self, engine: ReferenceEngine, model: int, seq: int, now: float):
        self._engine = engine
        self.model = model
        self.name = engine.names[model] if engine.names else str(model)
        self.memory_gb = engine.t.mem_bytes[model] / 1e9
        self.memory_bytes = int(engine.t.mem_bytes[model])
        self.loaded_at = seq  # request sequence number of the load
        self.last_use = seq
        self.requests = 0  # served since loaded
        self.next_use = float("inf")  # sequence number of its next request after its last service (needs_next_use)
        self.ready_at = now  # when its load has finished (set when served)
        self.level = 0  # its precision level (MODEL.md §9.2): what it holds is mem_level[model, level] bytes
        self.part = 0  # the prefix of its layers resident (MODEL.md §9.3): part_bytes[model, part]; 0: whole

    @property
    def is_base(self) -> bool:
        """A shared base (MODEL.md §9.5): its weights, which its cached variants need (they leave with it)."""
        return int(self._engine.t.base_of[self.model]) == self.model

    @property
    def use_order(self):
        """last_use as policies break ties with it (fast.use_order): a base is touched after the variant that
        used it, so it ranks after the models used by the same request."""
        return self.last_use + 0.5 if self.is_base else self.last_use

    @property
    def load_order(self):
        """loaded_at as load-order policies see it: a base enters before the variant it was loaded with."""
        return self.loaded_at - 0.5 if self.is_base else self.loaded_at

    def variants(self) -> list:
        """A base's cached variants, in catalog order (empty for any other model)."""
        e = self._engine
        if not self.is_base:
            return []
        return [e.entry[q] for q in sorted(e.entry) if q != self.model and int(e.t.base_of[q]) == self.model]

    def cached_flags(self) -> list:
        """1 per cached model, 0 otherwise (what the fast engine's `cached` array holds)."""
        return [1 if q in self._engine.entry else 0 for q in range(self._engine.t.n_models)]

    def context(self, now: float) -> float:
        """C_m(now): the examples in context of all its tasks, decayed to now."""
        return context_now(self._engine.t, self._engine.context, self.model, now)

    @property
    def next_use_in(self) -> float:
        """Requests from the one being replayed to this model's next request (inf: none); needs_next_use."""
        return self.next_use - (self._engine.seq - 1)

    @property
    def examples(self):
        """The engine's examples in context (a context.Context), for a policy that weighs them with the
        shared functions of engine/context.py; read only."""
        return self._engine.context

    @property
    def requests_total(self) -> int:
        """Its requests over the whole trace so far (they survive eviction), this one included."""
        return self._engine.seen[self.model]

    def context_rank(self, now: float) -> float:
        """A number ordered as C_m(now) is (cheaper: under `exp` nothing needs decaying to now)."""
        e = self._engine
        if e.t.utility == UTIL_LINEAR:  # linear: clamping at 0 can change the order; decay to now
            return self.context(now)
        return context_rank(e.t, e.context, self.model)


class ModelInfo:
    """What `Policy.admit` sees of a model that is not cached."""

    def __init__(self, tables: Tables, model: int, name: str, family: str, requests_total: int):
        self.model, self.name, self.family = model, name, family
        self.memory_gb = tables.mem_bytes[model] / 1e9
        self.requests_total = requests_total  # requests over the whole trace so far, this one included
        self.need_bytes = 0  # bytes to free beyond the free memory for it to fit (> 0: it must displace)


class ReferenceEngine:
    def __init__(self, tables: Tables, policy, seed: int = 0, names=None, families=None):
        self.t = tables = tables.for_policy(policy)
        self.policy = policy
        if hasattr(policy, "bind"):  # a policy that needs the tables (capacity, model sizes) sees them first
            policy.bind(tables)
        if hasattr(policy, "attach"):  # a built-in that acts on the cache itself (random-placement)
            policy.attach(self)
        self._on_hit = getattr(policy, "on_hit", None)  # optional: told of every request served at the edge
        self.names, self.families = names, families
        n, k = tables.n_models, len(tables.pair_model)
        self.context = _Context([0.0] * k, [0.0] * k, [0.0] * n, [0.0] * n)
        self.cache: list[CacheEntry] = []  # insertion order; eviction swap-removes (the random policy draws from it)
        self.entry: dict[int, CacheEntry] = {}
        self.used = 0  # bytes
        # Shared bases (MODEL.md §9.5), as fast.EngineState: models cached per base, weights resident, when
        # their load finished, and the base pinned by the load under way (-1: none).
        self.base_ref = [0] * n
        self.base_in = [False] * n
        self.base_ready = [0.0] * n
        self.pinned = -1
        self.free_at = [0.0] * tables.executors
        # each model's last batch (MODEL.md §9.2): executor (-1: none), start, end, requests (as fast.EngineState)
        self.batch_exec = [-1] * n
        self.batch_start = [0.0] * n
        self.batch_end = [0.0] * n
        self.batch_n = [0] * n
        self.seen = [0] * n  # requests per model over the whole trace so far
        self.rng_state = seed & ((1 << 64) - 1)
        self.seq = 0
        self.last_request = (-1, -1)  # (sequence number, model) of the last request; none yet
        self.last_ts = float("-inf")  # its arrival time: no preload starts before it
        self.first_ts = 0.0  # the first request's arrival time: `warmup_s` counts from it
        # The first measured request's sequence number, -1 while warming up (MODEL.md §4, "Warm-up").
        self.measure_from = 0 if tables.warmup_requests == 0 and tables.warmup_s == 0.0 else -1
        self.totals = new_totals()
        # The host's DRAM tier of checkpoints (MODEL.md §9.4), as fast.EngineState's: model -> its checkpoint's bytes,
        # least recently loaded or evicted from the GPU first.
        self.dram: OrderedDict[int, int] = OrderedDict()
        self.dram_used = 0

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
        return self.measure_from

    def _rng(self) -> int:
        self.rng_state, value = splitmix64_next(self.rng_state)
        return value

    def fits_gpu(self, m: int) -> bool:
        """m fits the GPU at all, with its base's weights if it has a base (as fast.fits_gpu)."""
        t, b = self.t, int(self.t.base_of[m])
        return int(t.mem_bytes[m]) + (int(t.base_bytes[b]) if b >= 0 and b != m else 0) <= t.capacity_bytes

    def fits_gpu_at_some_level(self, m: int) -> bool:
        """fits_gpu(m), or m fits at its smallest precision under "ladder" (as fast.fits_gpu_at_some_level)."""
        t = self.t
        if self.fits_gpu(m):
            return True
        if t.base_of[m] >= 0:
            return False
        if int(t.mem_level[m, t.n_levels[m] - 1]) <= t.capacity_bytes:
            return True
        return bool(t.partial) and int(t.part_bytes[m, 1]) <= t.capacity_bytes  # its smallest prefix (§9.3)

    def resident(self, entry: CacheEntry) -> int:
        """The bytes a cached model holds: its prefix's (MODEL.md §9.3), else its precision level's."""
        if entry.part > 0:
            return int(self.t.part_bytes[entry.model, entry.part])
        return int(self.t.mem_level[entry.model, entry.level])

    def load_bytes(self, m: int) -> int:
        """The bytes that loading m now adds: its own, and its base's weights unless resident (fast.load_bytes)."""
        t, b = self.t, int(self.t.base_of[m])
        return int(t.mem_bytes[m]) + (int(t.base_bytes[b]) if self.needs_base(m) else 0)

    def needs_base(self, m: int) -> bool:
        """Loading m loads its base's weights first (as fast.needs_base)."""
        b = int(self.t.base_of[m])
        return b >= 0 and b != m and not self.base_in[b]

    def _unpin(self) -> None:
        self.pinned = -1

    def checkpoint_tier(self, m: int) -> int:
        """Where loading m now reads its checkpoint from (as fast.checkpoint_tier): DRAM (0) if it holds it."""
        return 0 if self.t.tier == 0 or m in self.dram else int(self.t.tier)

    def keep_checkpoint(self, m: int) -> None:
        """m's checkpoint was just read for a load: DRAM keeps it as the most recent, dropping its least recently
        used until it fits; one larger than the whole tier is never kept (as fast.keep_checkpoint)."""
        t = self.t
        if t.tier == 0:
            return
        if m in self.dram:
            self.dram.move_to_end(m)
            return
        size = int(t.ckpt_bytes[m])
        if size > t.dram_bytes:
            return
        while self.dram_used + size > t.dram_bytes:
            _, dropped = self.dram.popitem(last=False)
            self.dram_used -= dropped
        self.dram[m] = size
        self.dram_used += size

    def _add(self, m: int, seq: int, now: float, level: int = 0, part: int = 0) -> CacheEntry:
        """m enters GPU memory with an empty context, with its base's weights if they were not resident, at
        precision level `level` (MODEL.md §9.2)."""
        entry = CacheEntry(self, m, seq, now)
        entry.level, entry.part = level, part
        self.cache.append(entry)
        self.entry[m] = entry
        self.used += self.resident(entry)
        b = int(self.t.base_of[m])
        if b == m:  # a base: its weights, loading from now (the caller sets when they are in)
            self.base_in[b] = True
            self.base_ready[b] = now
        elif b >= 0:  # a variant, added after its base
            if self.base_ready[b] > now:  # an adapter loads once its base is in memory
                entry.ready_at = self.base_ready[b]
            self.base_ref[b] += 1
        start_context(self.context, m, now)
        return entry

    def _evict(self, entry: CacheEntry, now: float) -> None:
        self.totals.sums[S_CONTEXT_DISCARDED] += discard_context(self.t, self.context, entry.model, now)
        i = self.cache.index(entry)
        self.cache[i] = self.cache[-1]  # swap-remove, as the fast engine does
        self.cache.pop()
        del self.entry[entry.model]
        self.used -= self.resident(entry)
        if self.t.tier != 0 and entry.model in self.dram:  # its checkpoint stays in DRAM, now the most recent
            self.dram.move_to_end(entry.model)
        b = int(self.t.base_of[entry.model])
        if b == entry.model:  # its weights; its variants have left before it
            self.base_in[b] = False
        elif b >= 0:
            self.base_ref[b] -= 1
        self.totals.counts[C_EVICTIONS] += 1

    def _evict_with_variants(self, entry: CacheEntry, now: float, tell=False) -> int:
        """Evict entry; a base takes its cached variants with it first, in catalog order (a cascade, as
        fast._evict_with_variants and the fast loop). tell: the policy hears of each variant (on_drop), which
        its victim() did not name. Returns the models evicted."""
        k = 0
        for v in entry.variants():
            if tell:
                self.policy.on_drop(v, now)
            self._evict(v, now)
            k += 1
        self._evict(entry, now)
        return k + 1

    def _hold_out(self, entry: CacheEntry) -> None:
        """The pinned base, named by the policy, leaves the list of cached models (not GPU memory) while room is
        made for its adapter (as fast._hold_out)."""
        i = self.cache.index(entry)
        self.cache[i] = self.cache[-1]
        self.cache.pop()

    def _put_back(self, entry: CacheEntry, seq: int) -> None:
        """The held-out base re-enters the list, as if loaded by this request (as fast._put_back)."""
        self.cache.append(entry)
        entry.loaded_at = entry.last_use = seq
        entry.requests = 0

    def _touch_base(self, m: int, seq: int, loaded: bool, now: float) -> None:
        """Variant m served a request: its base served it too, after it (MODEL.md §9.5)."""
        b = int(self.t.base_of[m])
        if b >= 0 and b != m:
            base = self.entry[b]
            base.last_use = seq
            base.requests += 1
            if self._on_hit is not None:
                self._on_hit(base, loaded, now)
    def preload_start(self) -> tuple[int, float]:
        """(executor, time) of the next preload: the first free executor, from when it is free but not before
        the last request arrived (as fast.preload_start)."""
        j = first_free_executor(self.free_at)
        return j, max(self.free_at[j], self.last_ts)

    def preload_model(self, m: int, victims: list[int], now: float) -> bool:
        """Preload model m before the request arriving at `now`, evicting `victims` (models, in order) until it
        fits; refused (False, nothing changed) as fast.preload_model is: docs/model.md, "Preloading"."""
        t = self.t
        j, start = self.preload_start()
        if start >= now or m in self.entry:
            return False
        b = int(t.base_of[m])
        pin = b if b >= 0 and b != m and self.base_in[b] else -1  # m's resident base is skipped, never evicted
        need = self.used + self.load_bytes(m) - t.capacity_bytes
        k = 0
        while need > 0:
            if k == len(victims) or victims[k] not in self.entry:
                return False
            q = victims[k]
            h = int(t.base_of[q])
            # counted once: a variant whose base is an earlier victim leaves with it; a base takes its variants
            if q != pin and not (h >= 0 and h != q and h != pin and h in victims[:k]):
                need -= self.resident(self.entry[q])
                for w in self.entry[q].variants():
                    if w.model not in victims[:k]:
                        need -= self.resident(w)
            k += 1
        for q in victims[:k]:
            if q != pin and q in self.entry:
                self._evict_with_variants(self.entry[q], start)
        self._load_for_no_request(m, j, start)
        return True

    def _load_for_no_request(self, m: int, j: int, start: float) -> None:
        """Cache m with an empty context and load it on executor j from `start`, costed as a load with the
        preloads (a preload, or random-placement's placement)."""
        t = self.t
        b = int(t.base_of[m])
        with_base = self.needs_base(m)
        tier = self.checkpoint_tier(m)
        if with_base:  # the base enters first, with its weights
            self._add(b, self.last_request[0], start)
        entry = self._add(m, self.last_request[0], start)
        begin = max(start, entry.ready_at)  # an adapter waits for its base
        load = account_preload(t, self.totals, m, with_base, tier)
        self.keep_checkpoint(m)
        self.free_at[j] = begin + load
        entry.ready_at = begin + load
        if with_base:
            self.base_ready[b] = begin + t.base_load[b]
            self.entry[b].ready_at = self.base_ready[b]
        elif b == m:
            self.base_ready[b] = entry.ready_at

    def evict_model(self, m: int, now: float) -> None:
        """Evict cached model m now, a base with its variants (as fast.evict_model)."""
        self._evict_with_variants(self.entry[m], now)

    def place_model(self, m: int, now: float) -> None:
        """Load model m for no request on a miss at `now`, once there is room (as fast.place_model)."""
        j = first_free_executor(self.free_at)
        self._load_for_no_request(m, j, max(self.free_at[j], now))

    def take_executor(self, m, p, units, k_eff, now, ready, load, frac=1.0):
        """(start, compute) of serving a request for pair p on model m, as fast.take_executor: with batching
        and no load, join m's last batch if it has not started, holds this copy, has room, and either is its
        executor's last or ends no later with this request."""
        t = self.t
        if t.batching and load == 0.0 and self.batch_exec[m] >= 0:
            s = self.batch_start[m]
            if s >= now and s >= ready and self.batch_n[m] < t.max_batch:
                k = self.batch_exec[m]
                compute = service_time(t, p, units, k_eff, self.batch_n[m] + 1) * frac
                if self.free_at[k] == self.batch_end[m] or s + compute <= self.batch_end[m]:
                    self.batch_n[m] += 1
                    if s + compute > self.batch_end[m]:
                        self.batch_end[m] = self.free_at[k] = s + compute
                    return s, compute
        j = first_free_executor(self.free_at)
        start = max(now, self.free_at[j], ready)
        compute = service_time(t, p, units, k_eff, 1) * frac
        self.free_at[j] = start + load + compute
        self.batch_exec[m], self.batch_start[m], self.batch_end[m], self.batch_n[m] = j, start + load, self.free_at[j], 1
        self.totals.counts[C_BATCHES] += 1
        return start, compute

    def substitute(self, i, now, pair, units, input_mb, log_on, log, evictions, bar) -> bool:
        """Serve request i (pair `pair`) with the cached equivalent model (MODEL.md §9.1) that costs least now,
        if that is below `bar` (the cloud's price, or loading's), as fast.find_substitute picks it; False: none."""
        t = self.t
        best, best_price = -1, bar
        j = first_free_executor(self.free_at)
        for r in range(t.sub_first[pair], t.sub_first[pair + 1]):
            q = int(t.sub_pair[r])
            entry = self.entry.get(int(t.pair_model[q]))
            if entry is None:
                continue
            _, k_eff, _ = examples_at_service(t, self.context, q, entry.model, now)
            price = substitute_price(t, pair, q, units, input_mb, k_eff,
                                     max(now, self.free_at[j], entry.ready_at) - now)
            if price < best_price:
                best, best_price = q, price
        if best < 0:
            return False
        entry = self.entry[int(t.pair_model[best])]
        k_own, k_eff, f = examples_at_service(t, self.context, best, entry.model, now)
        work, _ = edge_work(t, best, units, k_eff)
        start, compute = self.take_executor(entry.model, best, units, k_eff, now, entry.ready_at, 0.0,
                                            entry.part / t.partial_steps if entry.part > 0 else 1.0)
        serve_edge(t, self.totals, log_on, log, i, pair, int(t.pair_model[pair]), input_mb, k_eff, work, compute,
                   start - now, False, evictions, False, best, entry.level, entry.part, 0.0, 0)
        add_demonstration(t, self.context, best, entry.model, now, k_own, f)  # it joins the equivalent's context
        entry.last_use = self.seq - 1
        entry.requests += 1
        if self._on_hit is not None:
            self._on_hit(entry, False, now)
        self._touch_base(entry.model, self.seq - 1, False, now)
        return True

    def device_serves(self, pair: int, units: float, input_mb: float, now: float) -> bool:
        """The user's device runs this request (MODEL.md §9.4), as fast.device_serves decides it: its model fits
        the device and running it there costs less now than the cloud and the edge as it stands."""
        t = self.t
        m = int(t.pair_model[pair])
        if not t.device_fits[m]:
            return False
        j = first_free_executor(self.free_at)
        entry = self.entry.get(m)
        if entry is not None:
            _, k_eff, _ = examples_at_service(t, self.context, pair, m, now)
            return device_is_cheapest(t, pair, units, input_mb, True, k_eff,
                                      max(now, self.free_at[j], entry.ready_at) - now, 0.0)
        b = int(t.base_of[m])
        load = t.base_load[b] + t.load_time[m] if self.needs_base(m) else t.load_time[m]
        return device_is_cheapest(t, pair, units, input_mb, self.fits_gpu_at_some_level(m), 0.0,
                                  max(now, self.free_at[j]) - now, load)

    def _offload(self, i, now, pair, units, input_mb, log_on, log, evictions) -> None:
        """Request i goes to the cloud, unless a cached equivalent serves it for less (substitute before-cloud)."""
        if self.t.substitute != SUB_NEVER and self.substitute(i, now, pair, units, input_mb, log_on, log, evictions,
                                                              cloud_price(self.t, pair, units, input_mb)):
            return
        serve_cloud(self.t, self.totals, log_on, log, i, pair, units, input_mb, evictions)

    def run(self, trace, log: RequestLog | None = None, next_use=None, neighbour=None, edge_rtt_s=-1.0) -> int:
        """Replay TraceArrays (a whole trace or the next chunk of one); fill `log` if given. next_use,
        neighbour, edge_rtt_s and what it returns: as FastEngine.run."""
        log_on = log is not None
        log = log if log_on else new_log(0)
        self.forward_rtt = edge_rtt_s
        n = len(trace.ts)
        for i in range(len(trace.ts)):
            if neighbour is not None and len(neighbour):  # cooperation forward: stop before a forward candidate
                m = int(self.t.pair_model[int(trace.pair[i])])
                if m not in self.entry and neighbour[m]:
                    n = i
                    break
            self.next_use = float(next_use[i]) if next_use is not None and len(next_use) else float("inf")
            self.request(i, float(trace.ts[i]), int(trace.pair[i]), float(trace.units[i]),
                         float(trace.input_mb[i]), log_on, log)
        if self.measure_from < 0:  # still warming up: nothing so far counts
            clear_totals(self.totals)
        self.forward_rtt = -1.0
        return n

    forward_rtt = -1.0  # >= 0: the request being replayed was forwarded from its home edge (as Requests.edge_rtt_s)

    def request(self, i: int, now: float, pair: int, units: float, input_mb: float, log_on: bool,
                log: RequestLog) -> None:
        t = self.t
        seq = self.seq
        if self.measure_from < 0:  # warming up: the warm-up ends at the first request past N and T
            if seq == 0:
                self.first_ts = now
            if seq >= t.warmup_requests and now >= self.first_ts + t.warmup_s:
                self.measure_from = seq
                clear_totals(self.totals)  # no metric counts the warm-up
        # The user's device runs it when that costs least now (MODEL.md §9.4): the edge never hears of it.
        if t.device_on and self.device_serves(pair, units, input_mb, now):
            self.seq += 1
            self.totals.counts[C_REQUESTS] += 1
            serve_device(t, self.totals, log_on, log, i, pair, units)
            return
        # The idle time before this request: the policy may preload; it sees only the requests before this one.
        if self.forward_rtt < 0.0:  # a request forwarded here is served on arrival: no idle time before it
            self.policy.preload(self, now)
        m = int(t.pair_model[pair])
        self.seq += 1
        self.last_request, self.last_ts = (seq, m), now
        self.totals.counts[C_REQUESTS] += 1
        self.seen[m] += 1
        entry = self.entry.get(m)
        evictions = 0
        with_base = False  # a load of m's base's weights too (MODEL.md §9.5)
        held = None  # m's base, held out of the policy's choice while room was made for m (put back)
        loaded = entry is None
        tier = 0  # where a load of m reads its checkpoint from (MODEL.md §9.4)
        if not loaded:
            k_own, k_eff, f = examples_at_service(t, self.context, pair, m, now)
            if t.dispatch == DISPATCH_CHEAPEST:
                j = first_free_executor(self.free_at)
                wait = max(now, self.free_at[j], entry.ready_at) - now
                if edge_is_dearer(t, pair, units, input_mb, k_eff, wait, 0.0):
                    self.totals.counts[C_DISPATCHED] += 1
                    self._offload(i, now, pair, units, input_mb, log_on, log, 0)
                    return
        else:
            # A model larger than the GPU is always offloaded; otherwise the policy and the admission rule
            # decide (MODEL.md §4), and the dispatch rule may still prefer the cloud.
            admitted = self.fits_gpu_at_some_level(m)
            tier = self.checkpoint_tier(m)
            if admitted:
                info = ModelInfo(t, m, self.names[m] if self.names else str(m),
                                 self.families[m] if self.families else "", self.seen[m])
                info.need_bytes = self.used + self.load_bytes(m) - t.capacity_bytes
                admitted = self.policy.admit(info, now)
                b = int(t.base_of[m])
                with_base = self.needs_base(m)  # its base is not resident: base and adapter load
                load = t.base_load[b] + t.load_time[m] if with_base else tier_time(t, t.load_time[m], tier)
                if admitted and t.admission == ADMIT_OUTRANK and self.used + self.load_bytes(m) > t.capacity_bytes:
                    admitted = self.policy.outranks(info, self.cache, now)
                if admitted and t.admission == ADMIT_COST:
                    admitted = worth_loading(t, self.seen[m], pair, m, now, units, input_mb, with_base, tier)
                if not admitted:
                    self.totals.counts[C_DECLINED] += 1
                elif t.dispatch == DISPATCH_CHEAPEST:
                    j = first_free_executor(self.free_at)
                    if edge_is_dearer(t, pair, units, input_mb, 0.0, max(now, self.free_at[j]) - now, load):
                        self.totals.counts[C_DISPATCHED] += 1
                        admitted = False
            if not admitted:
                self._offload(i, now, pair, units, input_mb, log_on, log, 0)
                return
            if t.substitute == SUB_BEFORE_LOAD:  # a cached equivalent rather than loading, if that costs less now
                j = first_free_executor(self.free_at)
                if self.substitute(i, now, pair, units, input_mb, log_on, log, 0,
                                   edge_price(t, pair, units, input_mb, 0.0, max(now, self.free_at[j]) - now, load)):
                    return
            need = self.load_bytes(m)
            level = 0  # the precision level m loads at (MODEL.md §9.2: the ladder's choice)
            if t.n_levels[m] > 1:
                level = ladder_level(t, m, t.capacity_bytes - self.used, self.seen[m], now)
                need = int(t.mem_level[m, level])
            part = 0  # the prefix of its layers it loads (MODEL.md §9.3; 0: whole)
            if t.partial and t.base_of[m] < 0 and self.used + need > t.capacity_bytes:
                part = prefix_to_load(t, m, t.capacity_bytes - self.used)
                if part > 0:
                    need = int(t.part_bytes[m, part])
            if t.base_of[m] >= 0 and t.base_of[m] != m and not with_base:
                self.pinned = int(t.base_of[m])  # its resident base stays while room is made for its adapter
            while self.used + need > t.capacity_bytes:
                v = self.policy.victim(self.cache, now, self._rng)
                if v is None:  # the policy ranks the newcomer itself lowest (GDSF): offloaded after these evictions
                    if held is not None:
                        self._put_back(held, seq)
                    self.totals.counts[C_DECLINED] += 1
                    self._unpin()
                    self._offload(i, now, pair, units, input_mb, log_on, log, evictions)
                    return
                if v.model == self.pinned:  # the base the adapter needs: held out, put back below
                    self._hold_out(v)
                    held = v
                    continue
                evictions += self._evict_with_variants(v, now, tell=True)
            if held is not None:  # back in the policy's order, as if loaded by this request
                self._put_back(held, seq)
            if with_base:  # its base enters first (its weights), then its adapter
                self._add(b, seq, now)
            entry = self._add(m, seq, now, level, part)
            self._unpin()
            self.keep_checkpoint(m)
            k_own, k_eff, f = examples_at_service(t, self.context, pair, m, now)  # zero-shot: an empty context

        # Served at the edge with the examples in context this copy has (zero-shot right after a load), on
        # the first free executor and, on another executor than the one loading it, once it is in memory.
        work, _ = edge_work(t, pair, units, k_eff)
        load = 0.0
        if loaded:
            load = (t.base_load[t.base_of[m]] + t.load_time[m] if with_base else
                    tier_time(t, t.part_load[m, entry.part] if entry.part > 0 else t.load_level[m, entry.level], tier))
        level = entry.level
        upgrade_s = 0.0  # a hit on a reduced copy reloads the rest of its weights first, once they fit
        if not loaded and level > 0 and self.used + int(t.mem_level[m, 0]) - int(t.mem_level[m, level]) <= t.capacity_bytes:
            self.used += int(t.mem_level[m, 0]) - int(t.mem_level[m, level])
            entry.level = 0
            upgrade_s = tier_time(t, t.upgrade_time[m, level], self.checkpoint_tier(m))
            level = 0
        part = entry.part
        if not loaded and part > 0:  # a prefix grows by what fits the free memory now (MODEL.md §9.3)
            grow = prefix_to_grow(t, m, part, t.capacity_bytes - self.used)
            if grow != part:
                self.used += int(t.part_bytes[m, grow]) - int(t.part_bytes[m, part])
                upgrade_s = tier_time(t, t.part_load[m, 0] + (t.part_load[m, grow] - t.part_load[m, part]),
                                      self.checkpoint_tier(m))
                part = grow if grow < t.partial_steps else 0
                entry.part = part
        upgraded = upgrade_s > 0.0
        if upgraded:
            load = upgrade_s
            self.keep_checkpoint(m)
        start, compute = self.take_executor(m, pair, units, k_eff, now, entry.ready_at, load,
                                            part / t.partial_steps if part > 0 else 1.0)
        if loaded or upgraded:
            entry.ready_at = start + load
            if with_base:
                self.base_ready[t.base_of[m]] = start + t.base_load[t.base_of[m]]
                self.entry[int(t.base_of[m])].ready_at = self.base_ready[t.base_of[m]]
            elif t.base_of[m] == m:  # a base loaded for its own task: its variants wait for it
                self.base_ready[m] = entry.ready_at
        latency = serve_edge(t, self.totals, log_on, log, i, pair, m, input_mb, k_eff, work, compute, start - now,
                             loaded, evictions, with_base, pair, level, part, upgrade_s, tier)
        if self.forward_rtt >= 0.0 and not loaded:  # served for a neighbour's request (cooperation forward)
            forwarded(t, self.totals, log_on, log, i, latency, self.forward_rtt)
        # The request leaves one demonstration in this copy's context.
        add_demonstration(t, self.context, pair, m, now, k_own, f)
        entry.last_use = seq
        entry.next_use = self.next_use
        entry.requests += 1
        if self._on_hit is not None:
            self._on_hit(entry, loaded, now)
        self._touch_base(m, seq, with_base or held is not None, now)


def replay_reference(tables: Tables, trace, policy, seed: int = 0, names=None, families=None, log: bool = False):
    """Replay a whole TraceArrays; returns (counts, sums, hist, log columns or None)."""
    eng = ReferenceEngine(tables, policy, seed, names, families)
    buf = new_log(len(trace.ts)) if log else None
    nxt = next_uses(tables.pair_model[trace.pair]) if getattr(policy, "needs_next_use", False) else None
    eng.run(trace, buf, nxt)
    return eng.counts, eng.sums, eng.hist, buf._asdict() if log else None
