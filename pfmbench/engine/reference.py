"""The reference engine: MODEL.md §4 written to be read, one request at a time, in plain Python.

It runs any Policy (built-in or a drop-in file): the policy's `admit` on a miss and its `victim` (the
smallest `key`) until the model fits, and its `on_evict`, `on_insert` and `on_hit` where the fast loop
(fast.replay_requests) calls its hooks of the same names. The cost of a request and the Age of Context come from the same
functions the fast engine compiles (costs.py, context.py), run here as Python; tests/test_engines.py
checks that both engines agree on every request.
"""

from __future__ import annotations

from .context import (
    add_demonstration,
    examples_at_service,
)
from .costs import (
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
    substitute_price,
    tier_time,
    worth_loading,
)
from .fast import next_uses
from .record import (
    C_DECLINED,
    C_DISPATCHED,
    C_REQUESTS,
    RequestLog,
    clear_totals,
    new_log,
)
from .reference_state import CacheEntry, ModelInfo, ReferenceState  # noqa: F401  (CacheEntry: re-exported)
from .tables import ADMIT_COST, ADMIT_OUTRANK, DISPATCH_CHEAPEST, SUB_BEFORE_LOAD, SUB_NEVER, Tables


class ReferenceEngine(ReferenceState):
    """The request step of MODEL.md §4 over ReferenceState's bookkeeping, one request at a time."""

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
                    break
                self._on_evict(v, now)
                if v.model == self.pinned:  # the base the adapter needs: held out, put back below
                    self._hold_out(v)
                    held = v
                    continue
                evictions += self._evict_with_variants(v, now, tell=True)
            if held is not None:  # back in the policy's order, as if loaded by this request
                self._put_back(held, seq)
                self._on_insert(held, now)
            if self.used + need > t.capacity_bytes:
                self.totals.counts[C_DECLINED] += 1
                self._unpin()
                self._offload(i, now, pair, units, input_mb, log_on, log, evictions)
                return
            if with_base:  # its base enters first (its weights), then its adapter
                self._on_insert(self._add(b, seq, now), now)
            entry = self._add(m, seq, now, level, part)
            self._unpin()
            self.keep_checkpoint(m)
            self._on_insert(entry, now)
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
        self._on_hit(entry, loaded, now)
        self._touch_base(m, seq, with_base or held is not None, now)


def replay_reference(tables: Tables, trace, policy, seed: int = 0, names=None, families=None, log: bool = False):
    """Replay a whole TraceArrays; returns (counts, sums, hist, log columns or None)."""
    eng = ReferenceEngine(tables, policy, seed, names, families)
    buf = new_log(len(trace.ts)) if log else None
    nxt = next_uses(tables.pair_model[trace.pair]) if getattr(policy, "needs_next_use", False) else None
    eng.run(trace, buf, nxt)
    return eng.counts, eng.sums, eng.hist, buf._asdict() if log else None
