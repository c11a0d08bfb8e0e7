"""opt's decisions and their replay: the state the requests so far left behind, one request's step, and
`replay_decisions`. A step serves and prices a request with the engines' own functions (costs.serve_edge,
serve_cloud, edge_price, cloud_price, load_price; context.py), so that replaying opt's decisions gives its
cost exactly and the search (search.py) costs what the engines would."""

from __future__ import annotations

from typing import NamedTuple

from ..engine.context import Context, add_demonstration, discard_context, examples_at_service, start_context
from ..engine.costs import (
    cloud_price,
    edge_price,
    edge_work,
    first_free_executor,
    load_price,
    serve_cloud,
    serve_edge,
    switching,
)
from ..engine.record import C_EVICTIONS, C_REQUESTS, S_CONTEXT_DISCARDED, new_log, new_totals


class Decision(NamedTuple):
    """What happens to one request: evict `victims` (model indices, in order), then serve at the edge
    (`edge`: a hit, or a load that must fit) or offload."""

    victims: tuple
    edge: bool


def _empty_context(tab) -> Context:
    n, k = tab.n_models, len(tab.pair_model)
    return Context([0.0] * k, [0.0] * k, [0.0] * n, [0.0] * n)


class _State:
    """What the requests so far left behind: the cached models (a bit set) and their memory, the Age of
    Context, when each executor frees up and when each model finished loading."""

    __slots__ = ("cached", "cx", "free_at", "ready_at", "used")

    def __init__(self, cached, used, cx, free_at, ready_at):
        self.cached, self.used, self.cx, self.free_at, self.ready_at = cached, used, cx, free_at, ready_at

    @classmethod
    def empty(cls, tab):
        return cls(0, 0, _empty_context(tab), [0.0] * tab.executors, [0.0] * tab.n_models)

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
    load = switching(tab, m) if loaded else (0.0, 0.0, 0.0)  # (time s, energy J, switching cost)
    j = first_free_executor(st.free_at)
    start = max(now, st.free_at[j], st.ready_at[m])
    st.free_at[j] = start + load[0] + compute
    if loaded:
        st.ready_at[m] = start + load[0]
    if rec is not None:
        serve_edge(tab, rec, log is not None, log if log is not None else _NO_LOG, i, p, m, input_mb, k_eff, work,
                   compute, start - now, loaded, len(d.victims), False, p, 0, 0, 0.0, 0)
    add_demonstration(tab, st.cx, p, m, now, k_own, f)
    # The request's own load is charged once, in the switching cost (MODEL.md §4), not in its latency.
    cost = edge_price(tab, p, units, input_mb, k_eff, start - now, 0.0)
    if loaded:
        cost += load_price(tab, load)
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
