"""The reference engine: MODEL.md §4 written to be read, one request at a time, in plain Python.

It runs any Policy (built-in or a drop-in file). The fast kernel (fast.py) must agree with it on
every count and, to 1e-9 relative, on every cost; tests/test_engines.py checks that.
"""

from __future__ import annotations

import math

import numpy as np

from . import costs as C
from . import tables as T
from .costs import LOG_COLUMNS, accuracy_at, decay, float_bits, hist_index_bits
from .tables import Tables


class CacheEntry:
    """A model in GPU memory, as a policy sees it."""

    def __init__(self, engine: ReferenceEngine, model: int, seq: int, now: float):
        self._engine = engine
        self.model = model
        self.name = engine.names[model] if engine.names else str(model)
        self.memory_gb = engine.t.mem_bytes[model] / 1e9
        self.loaded_at = seq  # request sequence number of the load
        self.last_use = seq
        self.requests = 0  # served since loaded
        self.ctx = 0.0  # C_m at time ctx_time (exp and none; linear sums its pairs instead)
        self.ctx_time = now
        self.ready_at = now  # when its load has finished (set when served)

    def context(self, now: float) -> float:
        """C_m(now): the examples in context of all its tasks, decayed to now."""
        return self._engine.context_now(self, now)

    def context_rank(self, now: float) -> float:
        """A number ordered as C_m(now) is. Under `exp` all contexts decay at one rate, so
        log2 C_m(t_m) + t_m / half_life orders them without decaying anything to now."""
        e = self._engine
        if e.utility == C.UTIL_EXP:
            return math.log2(self.ctx) + self.ctx_time / e.half_life if self.ctx > 0.0 else -math.inf
        return self.context(now)


class ModelInfo:
    """What `Policy.admit` sees of a model that is not cached."""

    def __init__(self, tables: Tables, model: int, name: str, family: str):
        self.model, self.name, self.family = model, name, family
        self.memory_gb = tables.mem_bytes[model] / 1e9


class ReferenceEngine:
    def __init__(self, tables: Tables, policy, seed: int = 0, names=None, families=None):
        t = self.t = tables
        self.policy = policy
        self.names, self.families = names, families
        p = t.params
        self.utility = int(p[T.P_UTILITY])
        self.half_life, self.linear_rate, self.relevance = p[T.P_HALF_LIFE], p[T.P_LINEAR_RATE], p[T.P_RELEVANCE]
        n_pairs = len(t.pair_model)
        self.examples = [0.0] * n_pairs  # K[m,k]
        self.examples_time = [0.0] * n_pairs  # when K[m,k] was last updated
        self.cache: list[CacheEntry] = []  # insertion order; eviction swap-removes (the random policy draws from it)
        self.entry: dict[int, CacheEntry] = {}
        self.used = 0  # bytes
        self.free_at = [0.0] * t.executors
        self.rng_state = seed & ((1 << 64) - 1)
        self.seq = 0
        self.counts = np.zeros(C.N_COUNTS, dtype=np.int64)
        self.sums = np.zeros(C.N_SUMS, dtype=np.float64)
        self.hist = np.zeros(C.HIST_SIZE, dtype=np.int64)

    # -- context (MODEL.md §2) --------------------------------------------------------------------
    def _k_now(self, pair: int, now: float) -> float:
        return decay(self.examples[pair], now - self.examples_time[pair], self.utility, self.half_life,
                     self.linear_rate)

    def context_now(self, entry: CacheEntry, now: float) -> float:
        if self.utility == C.UTIL_LINEAR:  # per-pair clamping at 0: sum the pairs
            t = self.t
            return sum(self._k_now(q, now) for q in range(t.first_pair[entry.model], t.first_pair[entry.model + 1]))
        return decay(entry.ctx, now - entry.ctx_time, self.utility, self.half_life, self.linear_rate)

    def _rng(self) -> int:
        self.rng_state, value = C.splitmix64_next(self.rng_state)
        return value

    # -- the cache ----------------------------------------------------------------------------------
    def _evict(self, entry: CacheEntry, now: float) -> None:
        t = self.t
        self.sums[C.S_CONTEXT_DISCARDED] += self.context_now(entry, now)
        i = self.cache.index(entry)
        self.cache[i] = self.cache[-1]  # swap-remove, as the fast engine does
        self.cache.pop()
        del self.entry[entry.model]
        self.used -= int(t.mem_bytes[entry.model])
        for q in range(t.first_pair[entry.model], t.first_pair[entry.model + 1]):
            self.examples[q], self.examples_time[q] = 0.0, now  # evicting discards all its context
        self.counts[C.C_EVICTIONS] += 1

    def run(self, trace, log: bool = False) -> dict | None:
        """Replay TraceArrays (a whole trace or the next chunk of one); the per-request columns if log."""
        rows = [self.request(float(trace.ts[i]), int(trace.pair[i]), float(trace.units[i]), float(trace.input_mb[i]))
                for i in range(len(trace.ts))]
        if not log:
            return None
        return {name: np.array([r[k] for r in rows], dtype=dt) for k, (name, dt) in enumerate(LOG_COLUMNS)}

    def request(self, now: float, pair: int, units: float, input_mb: float):
        """Replay one request; returns (outcome, latency, wait, accuracy, accuracy_cost, k_eff, evictions,
        switching_cost, cloud_cost)."""
        t, p = self.t, self.t.params
        m = int(t.pair_model[pair])
        seq = self.seq
        self.seq += 1
        self.counts[C.C_REQUESTS] += 1
        entry = self.entry.get(m)
        evictions = 0
        if entry is not None:
            outcome = C.HIT
        else:
            fits = t.mem_bytes[m] <= t.capacity_bytes
            info = ModelInfo(t, m, self.names[m] if self.names else str(m),
                             self.families[m] if self.families else "")
            if fits and self.policy.admit(info, now):
                while self.used + t.mem_bytes[m] > t.capacity_bytes:
                    self._evict(self.policy.victim(self.cache, now, self._rng), now)
                    evictions += 1
                entry = CacheEntry(self, m, seq, now)
                self.cache.append(entry)
                self.entry[m] = entry
                self.used += int(t.mem_bytes[m])
                outcome = C.LOAD
            else:
                outcome = C.CLOUD

        if outcome == C.CLOUD:  # the cloud keeps full context and serves at a_ref
            work = t.gflops[pair] * (units + t.cloud_context_units[pair])
            latency = p[T.P_RTT] + input_mb * 8.0 / p[T.P_UPLINK] + work / p[T.P_CLOUD_RATE]
            cloud_cost = p[T.P_PRICE_REQ] + p[T.P_PRICE_TFLOP] * work / 1000.0
            accuracy = t.a_ref[pair]
            self.counts[C.C_OFFLOADS] += 1
            s = self.sums
            s[C.S_OFFLOAD_LATENCY] += latency
            s[C.S_CLOUD_COST] += cloud_cost
            s[C.S_CLOUD_GFLOP] += work
            s[C.S_ACCURACY] += accuracy
            return outcome, latency, 0.0, accuracy, 0.0, 0.0, evictions, 0.0, cloud_cost

        # Served at the edge with the examples in context that this copy has (zero-shot right after a load).
        window = t.window[m]
        k_own = self._k_now(pair, now)
        k_eff = k_own
        if self.relevance > 0.0:
            others = 0.0
            for q in range(t.first_pair[m], t.first_pair[m + 1]):
                if q != pair:
                    others += self._k_now(q, now)
            k_eff = k_own + self.relevance * others
        k_eff = min(k_eff, window)
        accuracy = accuracy_at(k_eff, *t.curve[pair])
        work = t.gflops[pair] * (units + k_eff * t.example_units[pair])
        compute = work / p[T.P_EDGE_RATE]
        load = t.load_time[m] if outcome == C.LOAD else 0.0
        j = min(range(len(self.free_at)), key=lambda i: self.free_at[i])  # first free executor
        # It starts when that executor is free and, on another executor than the one loading it, when the
        # model is in memory.
        start = max(now, self.free_at[j], entry.ready_at)
        wait = start - now
        self.free_at[j] = start + load + compute
        if outcome == C.LOAD:
            entry.ready_at = start + load
        latency = wait + load + compute
        switching = 0.0
        s = self.sums
        if outcome == C.LOAD:
            load_energy = p[T.P_POWER] * load
            switching = load + load_energy / 1000.0 + p[T.P_WEAR]
            self.counts[C.C_LOADS] += 1
            s[C.S_SWITCHING] += switching
            s[C.S_LOAD_ENERGY] += load_energy
            s[C.S_LOAD_TIME] += load
        else:
            self.counts[C.C_HITS] += 1
        accuracy_cost = (t.a_ref[pair] - accuracy) / 100.0
        s[C.S_COMPUTE_ENERGY] += p[T.P_POWER] * compute
        s[C.S_ACC_COST] += accuracy_cost
        s[C.S_ACCURACY] += accuracy
        s[C.S_EDGE_LATENCY] += latency
        s[C.S_WAIT] += wait
        s[C.S_K_EFF] += k_eff
        s[C.S_EDGE_GFLOP] += work
        s[C.S_EDGE_LAT_MAX] = max(s[C.S_EDGE_LAT_MAX], latency)
        self.hist[hist_index_bits(float_bits(latency))] += 1  # = hist_index(latency)

        # The request leaves one demonstration in this copy's context.
        k_new = min(window, k_own + 1.0)
        ctx_now = decay(entry.ctx, now - entry.ctx_time, self.utility, self.half_life, self.linear_rate)
        self.examples[pair], self.examples_time[pair] = k_new, now
        entry.ctx = ctx_now + (k_new - k_own)
        entry.ctx_time = now
        entry.last_use = seq
        entry.requests += 1
        return outcome, latency, wait, accuracy, accuracy_cost, k_eff, evictions, switching, 0.0


def replay_reference(tables: Tables, trace, policy, seed: int = 0, names=None, families=None, log: bool = False):
    """Replay a whole TraceArrays; returns (counts, sums, hist, log columns or None)."""
    eng = ReferenceEngine(tables, policy, seed, names, families)
    cols = eng.run(trace, log)
    return eng.counts, eng.sums, eng.hist, cols
