"""The reference engine's state: the cache as a policy sees it (CacheEntry, ModelInfo) and the engine's
bookkeeping (ReferenceState), each written as the fast engine's in engine/state.py and engine/memory.py.
reference.py holds the request step.
"""

from __future__ import annotations

from collections import OrderedDict

from .context import (
    UTIL_LINEAR,
    context_now,
    context_rank,
    discard_context,
    start_context,
)
from .context import Context as _Context
from .costs import (
    account_preload,
    first_free_executor,
    service_time,
)
from .record import (
    C_BATCHES,
    C_EVICTIONS,
    S_CONTEXT_DISCARDED,
    new_totals,
)
from .structures import splitmix64_next
from .tables import Tables


def _not_told(*args) -> None:
    """A hook the policy does not define."""


class CacheEntry:
    """A model in GPU memory, as a policy sees it."""

    def __init__(self, engine: ReferenceState, model: int, seq: int, now: float):
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


class ReferenceState:
    """The reference engine's state and its bookkeeping (as engine/state.py and engine/memory.py are the fast
    engine's): what fits, inserting and evicting (shared bases and their cascades), the DRAM tier, preloads and
    placements, executors and batches. ReferenceEngine (reference.py) adds the request step."""

    def __init__(self, tables: Tables, policy, seed: int = 0, names=None, families=None):
        self.t = tables = tables.for_policy(policy)
        self.policy = policy
        if hasattr(policy, "bind"):  # a policy that needs the tables (capacity, model sizes) sees them first
            policy.bind(tables)
        if hasattr(policy, "attach"):  # a built-in that acts on the cache itself (random-placement)
            policy.attach(self)
        # The hooks that keep a policy's own structure, called where the fast loop calls its hooks of the same
        # names (none for a preload or a placement); a policy that does not define one is not told.
        self._on_insert = getattr(policy, "on_insert", _not_told)
        self._on_evict = getattr(policy, "on_evict", _not_told)
        self._on_hit = getattr(policy, "on_hit", _not_told)
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
        fast._evict_with_variants and the fast loop). tell: the policy hears of each variant (on_evict, after
        the base's), as in the fast loop; not for a preload's or a placement's evictions. Returns the models evicted."""
        k = 0
        for v in entry.variants():
            if tell:
                self._on_evict(v, now)
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
        executor's last or ends no later with this request. The adapters of one base batch together (its batch)."""
        t = self.t
        bk = int(t.base_of[m]) if t.base_of[m] >= 0 else m
        if t.batching and load == 0.0 and self.batch_exec[bk] >= 0:
            s = self.batch_start[bk]
            if s >= now and s >= ready and self.batch_n[bk] < t.max_batch:
                k = self.batch_exec[bk]
                compute = service_time(t, p, units, k_eff, self.batch_n[bk] + 1) * frac
                if self.free_at[k] == self.batch_end[bk] or s + compute <= self.batch_end[bk]:
                    self.batch_n[bk] += 1
                    if s + compute > self.batch_end[bk]:
                        self.batch_end[bk] = self.free_at[k] = s + compute
                    return s, compute
        j = first_free_executor(self.free_at)
        start = max(now, self.free_at[j], ready)
        compute = service_time(t, p, units, k_eff, 1) * frac
        self.free_at[j] = start + load + compute
        self.batch_exec[bk], self.batch_start[bk], self.batch_end[bk], self.batch_n[bk] = j, start + load, self.free_at[j], 1
        self.totals.counts[C_BATCHES] += 1
        return start, compute
