"""`opt`: the exact minimum system cost of a replay (MODEL.md §4) on small instances, a lower bound beyond.

The system cost is a sum of non-negative per-request terms, and every term follows from the state the
requests before it left: which models are cached, their examples in context, when each executor frees up
and when each cached model finished loading. `opt` searches every decision sequence over that state by
depth-first branch and bound, costing each step with the functions both engines use (engine/costs.py,
engine/context.py), so that replaying its decisions (`replay_decisions`) gives its cost exactly.

**Decisions.** One per request, for model m: a `Decision(victims, edge)`: evict `victims` (cached models,
in that order), then serve at the edge (a hit if m is cached, else a load, which must then fit) or offload
(`edge=False`). `replay_decisions` replays any such sequence; the search explores only these:

* m cached: serve the hit at the edge; offload; or *reload* (evict m and load it again, with an empty
  context: examples in context can cost more compute than they earn in accuracy).
* m not cached, no larger than the GPU: offload; or load it after evicting a victim set V that makes it fit
  and is *minimal*: no proper subset of V makes it fit (V is empty when m fits as it is).
* m larger than the GPU: offload.

Why nothing cheaper is lost (the general space: at any request, evict any set of cached models, then
serve at the edge, if m fits, or offload). Take any sequence that evicts model v at request i although
v's memory is not needed there (v is not among a minimal victim set of a load at i, and v != m or m is
not reloaded). Keep v cached instead until the first later request j that either loads a model that needs
v's memory (evict v there) or is for v itself (then evict v there if the original loads v at j, and keep
deferring otherwise). Between i and j nothing changes but v's presence: evicting touches neither the
executors' queues nor the other models' contexts, and no cost term depends on a model that is cached
and not requested. So the deferred sequence costs the same, and it is in the searched space: every
eviction is then either of a minimal victim set of a load or of m itself right before it is reloaded. A
non-minimal victim set V of a load is V' plus models not needed for space (V' ⊂ V minimal), which the same
argument defers. Evictions at the end of the trace change nothing. Hence the searched space reaches the
minimum of the general space, which holds everything a policy can do (GDSF evicts and then offloads, the
`cheapest` dispatch rule offloads hits): opt <= every policy under every admission and dispatch rule
that loads a model only when a request asks for it. tests/test_opt.py checks this against a search of the
general space with no pruning.

**Preloading is outside that space.** `active` may load a model in idle time before any request asks for
it (docs/model.md, "Preloading"): it pays the switching cost but no request waits for that load, so it can
cost less than opt. opt is the minimum of MODEL.md §4's per-request decisions; the lower bound below, as
reported, holds for preloading policies too.

**Pruning.** A node (request i, state) is cut when its cost so far plus the lower bound (below) of
requests i.. is no less than the best complete sequence found. That bound starts from the node's state:
its cached models need no first load, and a request at t before the earliest time F an executor frees up
in that state waits at least F - t at the edge (free times never decrease). States that
agree on request, cached set and every number of the cached models' contexts are compared by the
executors' free times (sorted: executors are interchangeable), the cached models' ready times and the
cost so far: one no better in all of them than a state already searched is cut (waits, and so latencies,
only grow with those times; all else is equal).

**The lower bound** (`lower_bound`; the suffix bound at request 0 with an empty cache). For request r
(pair p of model m) let cloud_r be its offloading cost (w_cloud * cloud cost + w_cloud_latency * cloud
latency) and edge_r = w_latency * (compute at K = 0 + radio latency) + w_accuracy * (a_ref - max a(K) over
0 <= K <= Kmax_r) / 100, where Kmax_r is the K_eff request r would have if every earlier request of m had
been served at the edge and m had never been evicted. Then for each model m with requests R_m,

    bound_m = sum of cloud_r over R_m                     if m is larger than the GPU, else
    bound_m = min(sum of cloud_r, w_switch * switching_m + sum of min(cloud_r, edge_r))

and the bound is the sum of bound_m. Valid: each request of m costs at least min(cloud_r, edge_r) (an edge
service adds a wait >= 0 to latency; compute is W / R_edge, smallest at K = 0; the accuracy cost is smallest
where a(K) is largest; K_eff cannot exceed Kmax_r because decay, +1 and the window cap are monotone in K and
serving fewer requests or evicting only lowers it). If m serves no request at the edge its requests cost
sum of cloud_r; if it serves any, m is loaded at least once, which pays the switching cost on top (a load
is charged there only, MODEL.md §4: the latency term leaves the request's own load out, so the bound holds
for a preload in idle time, `active`'s, too). a(K) is monotone on [0, 1], on [1, k_few] and beyond (catalog.
accuracy_at), so its maximum over [0, Kmax] is at 0, 1, k_few or Kmax. The bound is lowered by a relative
1e-9 so that rounding in Kmax cannot lift it above the optimum. Inside the search, edge_r is tightened by
minimising compute and accuracy cost together over parts of [0, Kmax] (`_edge_floor`, SEARCH_PIECES): on
each part, the compute at its lower end plus the accuracy cost at its better end.

**The instance limit**: MAX_REQUESTS requests for MAX_MODELS distinct models, and MAX_NODES search nodes.
`solve(exact=None)` (`--policy opt`) gives the lower bound beyond it; `solve(exact=True)` (`opt-exact`)
raises InputError. benchmarks/README.md ("opt: search time") shows how the search grows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .engine.context import Context, add_demonstration, discard_context, examples_at_service, start_context
from .engine.costs import (
    accuracy_of,
    cloud_price,
    edge_work,
    first_free_executor,
    radio_latency,
    serve_cloud,
    serve_edge,
    switching,
)
from .engine.record import C_EVICTIONS, C_REQUESTS, S_CONTEXT_DISCARDED, new_log, new_totals
from .errors import InputError

# The instance limit of the exact search: requests, distinct models requested, and nodes searched.
MAX_REQUESTS = 100
MAX_MODELS = 32
MAX_NODES = 200_000  # 15-40 s of CPU (benchmarks/README.md)
SEARCH_PIECES = 32  # parts of [0, Kmax] the search's bound minimises over (_edge_floor); 1 for a whole trace
BOUND_SLACK = 1e-9  # the lower bound is lowered by this fraction (floating-point rounding of Kmax)
EXACT, BOUND = "exact", "lower bound"


class Decision(NamedTuple):
    """What happens to one request: evict `victims` (model indices, in order), then serve at the edge
    (`edge`: a hit, or a load that must fit) or offload."""

    victims: tuple
    edge: bool


@dataclass
class OptResult:
    system_cost: float  # the minimum system cost (exact), or a lower bound on it
    kind: str  # EXACT or BOUND
    decisions: list | None = None  # one Decision per request (exact only)
    nodes: int = 0  # search nodes expanded
    seconds: float = 0.0
    totals: object = None  # engine.record.Totals of replaying the decisions (exact only)
    reason: str = ""  # why only a bound
    n_requests: int = 0

    @property
    def exact(self) -> bool:
        return self.kind == EXACT


class _State:
    """What the requests so far left behind: the cached models (a bit set) and their memory, the Age of
    Context, when each executor frees up and when each model finished loading."""

    __slots__ = ("cached", "cx", "free_at", "ready_at", "used")

    def __init__(self, cached, used, cx, free_at, ready_at):
        self.cached, self.used, self.cx, self.free_at, self.ready_at = cached, used, cx, free_at, ready_at

    @classmethod
    def empty(cls, tab):
        n, k = tab.n_models, len(tab.pair_model)
        return cls(0, 0, Context([0.0] * k, [0.0] * k, [0.0] * n, [0.0] * n), [0.0] * tab.executors, [0.0] * n)

    def copy(self):
        cx = self.cx
        return _State(self.cached, self.used, Context(cx.examples[:], cx.examples_time[:], cx.ctx[:], cx.ctx_time[:]),
                      self.free_at[:], self.ready_at[:])


class _Trace(NamedTuple):
    ts: list
    pair: list
    model: list
    units: list
    input_mb: list
    cloud: list  # what offloading each request adds to the system cost


def _as_lists(tab, trace) -> _Trace:
    ts, pair = [float(x) for x in trace.ts], [int(x) for x in trace.pair]
    units, mb = [float(x) for x in trace.units], [float(x) for x in trace.input_mb]
    cloud = [cloud_price(tab, p, u, b) for p, u, b in zip(pair, units, mb, strict=True)]
    return _Trace(ts, pair, [int(tab.pair_model[p]) for p in pair], units, mb, cloud)


def _step(tab, st: _State, tr: _Trace, i: int, d: Decision, rec=None, log=None) -> float:
    """Apply decision d to request i in state st (changed in place); return what it adds to the system
    cost. With `rec` (Totals), account it as the engines do (serve_edge / serve_cloud)."""
    now, p, m = tr.ts[i], tr.pair[i], tr.model[i]
    units, input_mb = tr.units[i], tr.input_mb[i]
    for v in d.victims:
        if not st.cached >> v & 1:
            raise ValueError(f"request {i}: victim {v} is not cached")
        lost = discard_context(tab, st.cx, v, now)
        st.cached &= ~(1 << v)
        st.used -= int(tab.mem_bytes[v])
        if rec is not None:
            rec.sums[S_CONTEXT_DISCARDED] += lost
            rec.counts[C_EVICTIONS] += 1
    if rec is not None:
        rec.counts[C_REQUESTS] += 1
    if not d.edge:
        if rec is not None:
            serve_cloud(tab, rec, log is not None, log if log is not None else _NO_LOG, i, p, units, input_mb,
                        len(d.victims))
        return tr.cloud[i]
    loaded = not st.cached >> m & 1
    if loaded:
        if st.used + int(tab.mem_bytes[m]) > tab.capacity_bytes:
            raise ValueError(f"request {i}: model {m} does not fit")
        st.cached |= 1 << m
        st.used += int(tab.mem_bytes[m])
        start_context(st.cx, m, now)
        st.ready_at[m] = now
    k_own, k_eff, f = examples_at_service(tab, st.cx, p, m, now)
    work, compute = edge_work(tab, p, units, k_eff)
    load = tab.load_time[m] if loaded else 0.0
    j = first_free_executor(st.free_at)
    start = max(now, st.free_at[j], st.ready_at[m])
    st.free_at[j] = start + load + compute
    if loaded:
        st.ready_at[m] = start + load
    if rec is not None:
        serve_edge(tab, rec, log is not None, log if log is not None else _NO_LOG, i, p, m, input_mb, k_eff, work,
                   compute, start - now, loaded, len(d.victims), False, p, 0, 0, 0.0, 0)
    add_demonstration(tab, st.cx, p, m, now, k_own, f)
    _, accuracy_cost = accuracy_of(tab, p, k_eff)
    # The request's own load is charged once, in the switching cost (MODEL.md §4), not in its latency.
    cost = tab.w_latency * (start - now + compute + radio_latency(tab, input_mb)) + tab.w_accuracy * accuracy_cost
    if loaded:
        cost += tab.w_switch * switching(tab, m)[2]
    return cost


_NO_LOG = new_log(0)


def replay_decisions(tables, trace, decisions, log=None):
    """Replay one Decision per request through the cost model; returns (Totals, system cost as the sum of
    the per-request terms). Raises ValueError for an infeasible decision. `log`: a RequestLog to fill."""
    tab = tables
    tr = _as_lists(tab, trace)
    if len(decisions) != len(tr.ts):
        raise ValueError(f"{len(decisions)} decisions for {len(tr.ts)} requests")
    st = _State.empty(tab)
    rec = new_totals()
    total = 0.0
    for i, d in enumerate(decisions):
        total += _step(tab, st, tr, i, Decision(tuple(d[0]), bool(d[1])), rec, log)
    return rec, total


# -- the lower bound ---------------------------------------------------------------------------------------
def _edge_floor(tab, tr: _Trace, cx: Context, pieces: int = 1) -> list:
    """edge_r for every request (see the module docstring): its least possible edge cost, no switching,
    load or wait, for some K_eff in [0, Kmax_r]. cx: the context as if every request so far had been served
    at the edge and nothing evicted (updated here, so chunks can follow).

    [0, Kmax_r] is cut at 1 and k_few (a(K) is monotone between them) and into `pieces` equal parts; on a
    part [lo, hi] the cost is at least the compute at lo plus the accuracy cost at the better end, and
    edge_r is the least of these (pieces = 1: compute at 0 and the best accuracy anywhere)."""
    out = []
    c = tab.curve
    for i in range(len(tr.ts)):
        p, m, now = tr.pair[i], tr.model[i], tr.ts[i]
        k_own, k_max, f = examples_at_service(tab, cx, p, m, now)
        add_demonstration(tab, cx, p, m, now, k_own, f)
        k_max = min(k_max * (1.0 + 1e-12), float(tab.window[m]))
        radio = radio_latency(tab, tr.input_mb[i])
        if pieces == 1:
            best = -math.inf
            for kk in (0.0, min(1.0, k_max), min(float(c[p, 3]), k_max), k_max):
                best = max(best, accuracy_of(tab, p, kk)[0])
            _, compute = edge_work(tab, p, tr.units[i], 0.0)
            out.append(tab.w_latency * (compute + radio) + tab.w_accuracy * max(0.0, (tab.a_ref[p] - best) / 100.0))
            continue
        ks = {0.0, k_max, *(k_max * j / pieces for j in range(1, pieces))}
        ks.update(k for k in (1.0, float(c[p, 3])) if 0.0 < k < k_max)
        ks = sorted(ks)
        acc = [accuracy_of(tab, p, k)[0] for k in ks]
        low = math.inf
        for j in range(max(1, len(ks) - 1)):
            hi = min(j + 1, len(ks) - 1)
            _, compute = edge_work(tab, p, tr.units[i], ks[j])
            best = max(acc[j], acc[hi])
            low = min(low, tab.w_latency * (compute + radio) + tab.w_accuracy * max(0.0, (tab.a_ref[p] - best) / 100.0))
        out.append(low)
    return out


def _empty_context(tab) -> Context:
    n, k = tab.n_models, len(tab.pair_model)
    return Context([0.0] * k, [0.0] * k, [0.0] * n, [0.0] * n)


def _first_load(tab, m) -> float:
    """What the first load of m adds at least: its switching cost (the load is charged there only, MODEL.md
    §4), whether a request asked for it or it was a preload in idle time."""
    return tab.w_switch * switching(tab, m)[2]


def _model_bound(tab, m, cloud_sum, low_sum, cached=False) -> float:
    if cached:
        return low_sum
    if int(tab.mem_bytes[m]) > tab.capacity_bytes:
        return cloud_sum
    return min(cloud_sum, _first_load(tab, m) + low_sum)


class _Bound:
    """Suffix sums per model, so that the bound of requests i.. given the cached set is O(models)."""

    def __init__(self, tab, tr: _Trace):
        n, nm = len(tr.ts), tab.n_models
        edge = _edge_floor(tab, tr, _empty_context(tab), SEARCH_PIECES)
        self.tab = tab
        # cloud_sum[m][i], low_sum[m][i]: over requests r >= i of model m
        self.cloud_sum = [[0.0] * (n + 1) for _ in range(nm)]
        self.low_sum = [[0.0] * (n + 1) for _ in range(nm)]
        for i in range(n - 1, -1, -1):
            for m in range(nm):
                self.cloud_sum[m][i] = self.cloud_sum[m][i + 1]
                self.low_sum[m][i] = self.low_sum[m][i + 1]
            m = tr.model[i]
            self.cloud_sum[m][i] += tr.cloud[i]
            self.low_sum[m][i] += min(tr.cloud[i], edge[i])
        self.models = sorted(set(tr.model))
        self.tr, self.edge = tr, edge

    def suffix(self, i: int, cached: int, free: float = 0.0) -> float:
        """The bound of requests i.. with the models in `cached` cached and no executor free before `free`:
        an executor's free time never decreases, so a request at t < free served at the edge waits at least
        free - t (on top of edge_r)."""
        tr, wait = self.tr, {}
        r = i
        while r < len(tr.ts) and tr.ts[r] < free:
            c, e = tr.cloud[r], self.edge[r]
            m = tr.model[r]
            wait[m] = wait.get(m, 0.0) + min(c, e + self.tab.w_latency * (free - tr.ts[r])) - min(c, e)
            r += 1
        total = 0.0
        for m in self.models:
            cs, low = self.cloud_sum[m][i], self.low_sum[m][i] + wait.get(m, 0.0)
            if cs != 0.0 or low != 0.0:
                total += _model_bound(self.tab, m, cs, low, bool(cached >> m & 1))
        return total


class OptCollector:
    """opt fed chunk by chunk (api.replay_many): keeps the requests while they are within the exact limit,
    and the lower bound's sums per model always (so a streamed trace of any length gets its bound)."""

    def __init__(self, tables, exact: bool | None = None, max_requests: int = MAX_REQUESTS,
                 max_models: int = MAX_MODELS, max_nodes: int = MAX_NODES):
        if (tables.base_of >= 0).any():
            raise InputError("opt: not defined for variants served as adapters (catalog.variants = 'adapter'); "
                             "use variants = 'full'")
        if (tables.n_levels > 1).any():
            raise InputError("opt: not defined for precision_mode = 'ladder' (its search loads every model at its "
                             "catalog precision); use precision_mode = 'fixed'")
        if tables.partial:
            raise InputError("opt: not defined for caching = 'partial' (its search caches whole models); use "
                             "caching = 'binary'")
        if tables.batching:
            raise InputError("opt: not defined with batching (its search serves one request at a time); use "
                             "batching = false")
        if tables.substitute != 0:  # tables.SUB_NEVER
            raise InputError("opt: not defined with equivalent models serving in place (serving.substitute); "
                             "use substitute = 'never'")
        if tables.tier != 0:  # tables.TIER_DRAM
            raise InputError("opt: not defined with weight tiers (edge.checkpoints_in = ssd or registry: its search "
                             "prices every load at load_gbps); use checkpoints_in = 'dram'")
        self.tab, self.exact = tables, exact
        self.limits = (max_requests, max_models, max_nodes)
        self.chunks: list | None = [] if exact is not False else None
        self.n = 0
        self.models: set = set()
        self.cx = _empty_context(tables)
        self.cloud_sum = [0.0] * tables.n_models
        self.low_sum = [0.0] * tables.n_models
        self.trace = None  # the whole trace, when within the exact limit
        self.result: OptResult | None = None  # solve()'s, kept by the caller

    def add(self, chunk) -> None:
        self.n += len(chunk)
        self.models.update(int(x) for x in np.unique(np.asarray(self.tab.pair_model)[np.asarray(chunk.pair)]))
        if self.chunks is not None:
            if self.n <= self.limits[0] and len(self.models) <= self.limits[1]:
                self.chunks.append(chunk)
            else:
                self.chunks = None
                if self.exact:
                    raise InputError(f"opt: {self._beyond()}; use --policy opt for a lower bound instead")
        tr = _as_lists(self.tab, chunk)
        for i, e in enumerate(_edge_floor(self.tab, tr, self.cx)):
            m = tr.model[i]
            self.cloud_sum[m] += tr.cloud[i]
            self.low_sum[m] += min(tr.cloud[i], e)

    def _beyond(self) -> str:
        return (f"{self.n:,} requests for {len(self.models)} models is beyond opt's exact limit ({self.limits[0]} "
                f"requests, {self.limits[1]} models)")

    def bound(self) -> float:
        total = 0.0
        for m in sorted(self.models):
            total += _model_bound(self.tab, m, self.cloud_sum[m], self.low_sum[m])
        return total * (1.0 - BOUND_SLACK)

    def request_log(self):
        """(TraceArrays, log columns) of the solved result's decisions replayed: empty for a bound."""
        from .trace.schema import TraceArrays

        r = self.result
        if r is None or not r.exact:
            empty = TraceArrays(np.zeros(0), np.zeros(0, np.int32), np.zeros(0), np.zeros(0))
            return empty, new_log(0)._asdict()
        log = new_log(len(self.trace.ts))
        replay_decisions(self.tab, self.trace, r.decisions, log)
        return self.trace, log._asdict()

    def solve(self) -> OptResult:
        if self.chunks is not None:
            from .trace.schema import TraceArrays

            cs = self.chunks or [TraceArrays(np.zeros(0), np.zeros(0, np.int32), np.zeros(0), np.zeros(0))]
            trace = TraceArrays(*(np.concatenate([getattr(c, f) for c in cs]) for f in ("ts", "pair", "units", "input_mb")),
                                cs[0].origin)
            self.trace = trace
            return solve(self.tab, trace, exact=self.exact, max_requests=self.limits[0], max_models=self.limits[1],
                         max_nodes=self.limits[2])
        return OptResult(self.bound(), BOUND, n_requests=self.n, reason=self._beyond())


def lower_bound(tables, trace) -> float:
    """A lower bound on the system cost of every decision sequence (module docstring: its proof)."""
    c = OptCollector(tables, exact=False)
    c.add(trace)
    return c.bound()


# -- the exact search --------------------------------------------------------------------------------------
def minimal_victim_sets(tab, st: _State, m: int):
    """Every set of cached models whose eviction makes m fit and none of whose proper subsets does."""
    need = st.used + int(tab.mem_bytes[m]) - tab.capacity_bytes
    if need <= 0:
        return [()]
    cached = [v for v in range(tab.n_models) if st.cached >> v & 1]
    out = []

    def grow(start, chosen, freed):
        for x in range(start, len(cached)):
            v = cached[x]
            got = freed + int(tab.mem_bytes[v])
            now = (*chosen, v)
            if got >= need:
                # minimal: dropping any one member leaves too little
                if all(got - int(tab.mem_bytes[u]) < need for u in now):
                    out.append(now)
            else:
                grow(x + 1, now, got)

    grow(0, (), 0)
    return out


def options(tab, st: _State, m: int) -> list:
    """The decisions the search tries for a request for model m in state st (module docstring)."""
    if st.cached >> m & 1:
        return [Decision((), True), Decision((), False), Decision((m,), True)]
    if int(tab.mem_bytes[m]) > tab.capacity_bytes:
        return [Decision((), False)]
    return [Decision((), False)] + [Decision(v, True) for v in minimal_victim_sets(tab, st, m)]


class _OutOfNodes(Exception):
    pass


def _context_key(tab, st: _State):
    cx, key = st.cx, []
    for m in range(tab.n_models):
        if st.cached >> m & 1:
            key += (cx.ctx[m], cx.ctx_time[m])
            for q in range(tab.first_pair[m], tab.first_pair[m + 1]):
                key += (cx.examples[q], cx.examples_time[q])
    return tuple(key)


def _search(tab, tr: _Trace, max_nodes: int):
    n = len(tr.ts)
    bound = _Bound(tab, tr)
    best = [sum(tr.cloud) * (1.0 + 1e-12) + 1e-12, None]  # everything offloaded: a first upper bound
    path: list = []
    nodes = [0]
    seen: dict = {}

    def dfs(i, st, cost):
        if i == n:
            if cost < best[0]:
                best[0], best[1] = cost, list(path)
            return
        nodes[0] += 1
        if nodes[0] > max_nodes:
            raise _OutOfNodes
        key = (i, st.cached, _context_key(tab, st))
        times = (*sorted(st.free_at), *(st.ready_at[m] for m in range(tab.n_models) if st.cached >> m & 1))
        entries = seen.setdefault(key, [])
        for t0, c0 in entries:
            if c0 <= cost and all(a <= b for a, b in zip(t0, times, strict=True)):
                return
        entries.append((times, cost))
        children = []
        for d in options(tab, st, tr.model[i]):
            child = st.copy()
            c = _step(tab, child, tr, i, d)
            children.append((c + bound.suffix(i + 1, child.cached, min(child.free_at)), c, d, child))
        children.sort(key=lambda x: x[0])
        for est, c, d, child in children:
            if cost + est >= best[0]:
                break  # sorted: the rest are no better
            path.append(d)
            dfs(i + 1, child, cost + c)
            path.pop()

    dfs(0, _State.empty(tab), 0.0)
    return best[1], nodes[0]


def instance_size(tables, trace) -> tuple[int, int]:
    """(requests, distinct models requested): what the instance limit is about."""
    return len(trace.ts), len({int(x) for x in np.asarray(tables.pair_model)[np.asarray(trace.pair)]})


def solve(tables, trace, *, exact: bool | None = None, max_requests: int = MAX_REQUESTS,
          max_models: int = MAX_MODELS, max_nodes: int = MAX_NODES) -> OptResult:
    """The minimum system cost of replaying `trace` (TraceArrays) under `tables`, over every decision
    sequence (module docstring), or a lower bound on it.

    exact=None: exact within the instance limit (requests <= max_requests, distinct models <= max_models,
    at most max_nodes search nodes), the lower bound beyond. exact=True: exact or InputError. exact=False:
    the lower bound only.
    """
    t0 = time.perf_counter()
    n, models = instance_size(tables, trace)
    reason = ""
    if exact is not False:
        if n > min(max_requests, 900) or models > max_models:  # 900: the search recurses once per request
            reason = (f"{n:,} requests for {models} models is beyond opt's exact limit ({max_requests} requests, "
                      f"{max_models} models)")
        else:
            tr = _as_lists(tables, trace)
            try:
                decisions, nodes = _search(tables, tr, max_nodes)
            except _OutOfNodes:
                reason = f"the exact search of {n} requests for {models} models needs more than {max_nodes:,} nodes"
            else:
                if decisions is None:  # nothing beat offloading everything (within its rounding margin)
                    decisions = [Decision((), False)] * n
                totals, _ = replay_decisions(tables, trace, decisions)
                return OptResult(_system_cost(tables, totals), EXACT, decisions, nodes,
                                 time.perf_counter() - t0, totals, n_requests=n)
        if exact:
            raise InputError(f"opt: {reason}; use --policy opt for a lower bound instead")
    return OptResult(lower_bound(tables, trace), BOUND, seconds=time.perf_counter() - t0, reason=reason, n_requests=n)


def _system_cost(tab, totals) -> float:
    """The system cost as results.summarize adds it up from the totals."""
    from .engine import record as C

    s = totals.sums
    return (tab.w_switch * (float(s[C.S_SWITCHING]) + float(s[C.S_PRELOAD_SWITCHING])) + tab.w_accuracy * float(s[C.S_ACC_COST])
            + tab.w_latency * (float(s[C.S_INFERENCE_LATENCY]) + float(s[C.S_OFFLOADING_LATENCY]))
            + tab.w_cloud * float(s[C.S_CLOUD_COST]) + tab.w_cloud_latency * float(s[C.S_CLOUD_LATENCY]))
