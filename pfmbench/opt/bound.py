"""opt's lower bound on the system cost (the package docstring proves it): per model, the least of offloading
every request and one load plus each request's least cost; `_Bound` gives it for a suffix of the requests
inside the search, `BoundSums` for a trace fed chunk by chunk."""

from __future__ import annotations

import math

import numpy as np

from ..engine.context import Context, add_demonstration, examples_at_service
from ..engine.costs import (
    accuracy_of,
    edge_service_price,
    edge_work,
    latency_price,
    load_price,
    radio_latency,
    switching,
)
from ..errors import InputError
from .replay import _as_lists, _empty_context, _Trace

SEARCH_PIECES = 32  # parts of [0, Kmax] the search's bound minimises over (_edge_floor); 1 for a whole trace
BOUND_SLACK = 1e-9  # the lower bound is lowered by this fraction (floating-point rounding of Kmax)


def check_defined(tables) -> None:
    """InputError for what opt's decision space leaves out."""
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


def _edge_floor(tab, tr: _Trace, cx: Context, pieces: int = 1) -> list:
    """edge_r for every request (see the package docstring): its least possible edge cost, no switching,
    load or wait, for some K_eff in [0, Kmax_r]. cx: the context as if every request so far had been served
    at the edge and nothing evicted (updated here, so chunks can follow).

    [0, Kmax_r] is cut at 1 and k_few (a(K) is monotone between them) and into `pieces` equal parts; on a
    part [lo, hi] the cost is at least the compute at lo plus the accuracy cost at the better end, and
    edge_r is the least of these (pieces = 1: compute at 0 and the best accuracy anywhere). Priced by
    edge_service_price as a request is, but with compute and accuracy from different K: a bound, not a cost."""
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
            out.append(edge_service_price(tab, 0.0, compute, radio, max(0.0, (tab.a_ref[p] - best) / 100.0)))
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
            low = min(low, edge_service_price(tab, 0.0, compute, radio, max(0.0, (tab.a_ref[p] - best) / 100.0)))
        out.append(low)
    return out


def _first_load(tab, m) -> float:
    """What the first load of m adds at least: its switching cost (the load is charged there only, MODEL.md
    §4), whether a request asked for it or it was a preload in idle time."""
    return load_price(tab, switching(tab, m))


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
            wait[m] = wait.get(m, 0.0) + min(c, e + latency_price(self.tab, free - tr.ts[r])) - min(c, e)
            r += 1
        total = 0.0
        for m in self.models:
            cs, low = self.cloud_sum[m][i], self.low_sum[m][i] + wait.get(m, 0.0)
            if cs != 0.0 or low != 0.0:
                total += _model_bound(self.tab, m, cs, low, bool(cached >> m & 1))
        return total


class BoundSums:
    """The lower bound's sums per model over a trace fed chunk by chunk (any length, bounded memory)."""

    def __init__(self, tables):
        self.tab = tables
        self.models: set = set()  # the models requested so far
        self.cx = _empty_context(tables)
        self.cloud_sum = [0.0] * tables.n_models
        self.low_sum = [0.0] * tables.n_models

    def add(self, chunk) -> None:
        self.models.update(int(x) for x in np.unique(np.asarray(self.tab.pair_model)[np.asarray(chunk.pair)]))
        tr = _as_lists(self.tab, chunk)
        for i, e in enumerate(_edge_floor(self.tab, tr, self.cx)):
            m = tr.model[i]
            self.cloud_sum[m] += tr.cloud[i]
            self.low_sum[m] += min(tr.cloud[i], e)

    def bound(self) -> float:
        total = 0.0
        for m in sorted(self.models):
            total += _model_bound(self.tab, m, self.cloud_sum[m], self.low_sum[m])
        return total * (1.0 - BOUND_SLACK)


def lower_bound(tables, trace) -> float:
    """A lower bound on the system cost of every decision sequence (package docstring: its proof)."""
    check_defined(tables)
    sums = BoundSums(tables)
    sums.add(trace)
    return sums.bound()
