"""opt's exact search: depth-first branch and bound over the decisions of the package docstring, each step
costed by replay._step and pruned with bound._Bound; `solve` gives the exact minimum within the instance
limit and the lower bound beyond."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..engine.terms import system_cost, table_weights
from ..errors import InputError
from .bound import _Bound, lower_bound
from .replay import Decision, _as_lists, _State, _step, _Trace, replay_decisions

# The instance limit of the exact search: requests, distinct models requested, and nodes searched.
MAX_REQUESTS = 100
MAX_MODELS = 32
MAX_NODES = 200_000  # 15-40 s of CPU (benchmarks/README.md)
EXACT, BOUND = "exact", "lower bound"


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
                return OptResult(system_cost(table_weights(tables), totals.sums), EXACT, decisions, nodes,
                                 time.perf_counter() - t0, totals, n_requests=n)
        if exact:
            raise InputError(f"opt: {reason}; use --policy opt for a lower bound instead")
    return OptResult(lower_bound(tables, trace), BOUND, seconds=time.perf_counter() - t0, reason=reason, n_requests=n)
