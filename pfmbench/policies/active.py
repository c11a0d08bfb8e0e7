"""active: predictive caching (the paper's "active caching": models are evicted and loaded "based on
predictions of future demand"), with preloading in idle time (docs/model.md, "Preloading").

Forecast. Each model's demand is an exponentially weighted moving average of its request rate with the
half-life H = `serving.cost_horizon_s` (600 s by default: the horizon within which a load must pay back, and
the default context half-life). It is kept as the decayed count D_m(t) = Σ 2^(−(t − t_i)/H) over the model's
requests t_i so far (its rate is D_m(t)·ln2/H per second); every request counts, those served in the cloud
too, and the policy learns of one only at the next request (it never sees the request being served).
Since every D_m decays at the same rate, log2 D_m(t_m) + t_m/H (t_m: its last request) orders the models
as D_m(now) does without decaying anything.

Eviction (a miss that must make room, and a preload's victims): the lowest forecast goes first; ties go to
the least recently used, then the lowest catalog index.

Preloading, at each idle moment before a request (an executor free since the last request arrived): take
the uncached model c with the highest forecast (ties: the lowest index) that fits the GPU, and preload it if
1. its victims (the lowest forecasts, until c fits) together forecast less than 1/MARGIN of c's demand
   (MARGIN = 2: no two models of similar demand are swapped back and forth); and
2. it pays: with P_m = 1 − 2^(−D_m) the chance of at least one request for m within H at its forecast rate
   (Poisson), P_c · w_latency · load time of c (what a preload takes off its next request's path) ≥
   (1 − P_c) · (w_switch · switching cost of c + Σ over victims P_v · (w_switch · switching cost of v +
   w_latency · load time of v)): if c is requested, a passive cache would have loaded it (and evicted
   for it) anyway; if not, the preload and the victims' reloads are wasted. With no victims, in the
   default scenario, that is D_c ≥ 1.2.
Then the next idle moment (another executor, or this one after the load) is tried, until the request
arrives. Only the best candidate is considered at each moment. O(models) per request and per eviction: fine
for catalogs of tens of models, not for thousands.

Under `outrank` admission the newcomer always loads (it has no forecast of this request yet).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine.costs import latency_price, load_price, switching
from ..engine.fast import fits_gpu as _fits_gpu_py
from ..engine.fast import load_bytes as _load_bytes_py
from ..engine.fast import preload_model as _preload_model_py
from ..engine.fast import preload_start as _preload_start_py
from ..engine.fast import use_order as _use_order_py
from ..engine.jit import compiled, shared
from . import Policy, register

# Its loop accounts the loads it makes for no request itself: the engine keeps its accounting inline
# (engine/accountant.py).
LOADS_FOR_NO_REQUEST = True

MARGIN = 2.0  # a preload's victims must forecast less than 1/MARGIN of its demand


@shared  # plain Python for the reference class, compiled (with what it calls) for the hooks
def observe(count, at, rank, m, ts, half_life):
    """A request for model m at ts: D_m <- D_m·2^(−(ts − t_m)/H) + 1, and its rank log2 D_m + ts/H."""
    c = count[m]
    if c > 0.0:
        c = c * 2.0 ** (-(ts - at[m]) / half_life)
    c = c + 1.0
    count[m] = c
    at[m] = ts
    rank[m] = math.log2(c) + ts / half_life


@shared
def demand(count, at, m, t, half_life):
    """D_m(t): model m's requests decayed to t (its forecast rate is D_m(t)·ln2/H)."""
    c = count[m]
    if c > 0.0:
        return c * 2.0 ** (-(t - at[m]) / half_life)
    return 0.0


@shared
def switching_price(tab, m):
    """w_switch·switching cost of loading m, and w_latency·its load time."""
    load = switching(tab, m)
    return load_price(tab, load), latency_price(tab, load[0])


@shared
def reload_price(tab, v, d):
    """What evicting v may cost: P_v·(w_switch·switching cost + w_latency·load time), P_v = 1 − 2^(−d)."""
    switch, latency = switching_price(tab, v)
    return (1.0 - 2.0 ** (-d)) * (switch + latency)


@shared
def pays(tab, m, d, victims_price):
    """Rule 2: P·w_latency·load time ≥ (1 − P)·(w_switch·switching cost + the victims' reload_price),
    P = 1 − 2^(−d)."""
    switch, latency = switching_price(tab, m)
    q = 2.0 ** (-d)
    return (1.0 - q) * latency >= q * (switch + victims_price)


_observe, _demand, _pays, _reload_price = compiled(observe), compiled(demand), compiled(pays), compiled(reload_price)
_preload_model, _preload_start = compiled(_preload_model_py), compiled(_preload_start_py)
_fits_gpu, _load_bytes = compiled(_fits_gpu_py), compiled(_load_bytes_py)
_use_order = compiled(_use_order_py)


class State(NamedTuple):
    count: np.ndarray  # float64 per model: D_m at its last request
    at: np.ndarray  # float64 per model: its last request's time
    rank: np.ndarray  # float64 per model: log2 D_m + at/H (-inf: never requested)
    victims: np.ndarray  # int64 per model: a preload's victims, -1 after the last


def new_state(tables, seed):
    n = tables.n_models
    return State(np.zeros(n), np.zeros(n), np.full(n, -np.inf), np.full(n + 1, -1, np.int64))


@njit(inline="always")
def _before(ps, es, tab, a, b):
    """a goes before b (evicted first): lower forecast, then less recently used, then lower index."""
    if ps.rank[a] != ps.rank[b]:
        return ps.rank[a] < ps.rank[b]
    ua, ub = _use_order(tab, a, es.last_use[a]), _use_order(tab, b, es.last_use[b])
    if ua != ub:
        return ua < ub
    return a < b


@njit(inline="always")
def _next_victim(ps, es, tab, after):
    """The cached model that goes first among those after `after` (-1: from the start); -1 if none."""
    v = -1
    for k in range(es.n_cached[0]):
        q = es.clist[k]
        if (after < 0 or _before(ps, es, tab, after, q)) and (v < 0 or _before(ps, es, tab, q, v)):
            v = q
    return v


@njit(inline="always")
def victim(ps, es, tab, now):
    return _next_victim(ps, es, tab, -1)


@njit(inline="always")
def preload(ps, es, tab, now):
    h = tab.cost_horizon_s
    last = es.last_request[1]
    if last >= 0:
        _observe(ps.count, ps.at, ps.rank, last, es.last_ts[0], h)
        g = tab.base_of[last]
        if g >= 0 and g != last:  # a variant's request is demand for its base too (MODEL.md §9.5)
            _observe(ps.count, ps.at, ps.rank, g, es.last_ts[0], h)
    while True:
        _, t = _preload_start(es)
        if t >= now:
            return
        c = -1
        for q in range(tab.mem_bytes.shape[0]):
            if (es.cached[q] == 0 and ps.rank[q] > -np.inf and _fits_gpu(tab, q)
                    and (c < 0 or ps.rank[q] > ps.rank[c])):
                c = q
        if c < 0:
            return
        d = _demand(ps.count, ps.at, c, t, h)
        need = es.used[0] + _load_bytes(tab, es, c) - tab.capacity_bytes
        lost = 0.0
        price = 0.0
        k = 0
        v = -1
        while need > 0:
            v = _next_victim(ps, es, tab, v)
            if v < 0:  # every cached model (their bytes leave out a shared base's): preload_model counts exactly
                break
            need -= tab.mem_bytes[v]
            dv = _demand(ps.count, ps.at, v, t, h)
            lost += dv
            price += _reload_price(tab, v, dv)
            ps.victims[k] = v
            k += 1
        ps.victims[k] = -1
        if lost * MARGIN >= d or not _pays(tab, c, d, price):
            return
        if not _preload_model(tab, es, c, ps.victims, now):
            return


@register  # defined after new_state: the registry then knows it has fast hooks
class Active(Policy):
    """Predictive: evict the lowest forecast demand (EWMA of request rates); preload the highest when idle.

    The forecast's half-life is serving.cost_horizon_s; a preload must pay (docs/model.md, "Preloading")."""

    name = "active"
    preloads = True  # False: the same forecast and evictions, no preloading (policies/active_passive.py)

    def bind(self, tables):
        n = tables.n_models
        self.tables = tables
        self.count, self.at, self.rank = [0.0] * n, [0.0] * n, [-math.inf] * n

    def key(self, entry, now):
        return (self.rank[entry.model], entry.use_order, entry.model)

    def preload(self, engine, now):
        tab, h = self.tables, self.tables.cost_horizon_s
        last = engine.last_request[1]
        if last >= 0:
            observe(self.count, self.at, self.rank, last, engine.last_ts, h)
            g = int(tab.base_of[last])
            if g >= 0 and g != last:  # a variant's request is demand for its base too
                observe(self.count, self.at, self.rank, g, engine.last_ts, h)
        while self.preloads:
            _, t = engine.preload_start()
            if t >= now:
                return
            candidates = [q for q in range(tab.n_models) if q not in engine.entry and self.rank[q] > -math.inf
                          and engine.fits_gpu(q)]
            if not candidates:
                return
            c = min(candidates, key=lambda q: (-self.rank[q], q))
            d = demand(self.count, self.at, c, t, h)
            need = engine.used + engine.load_bytes(c) - tab.capacity_bytes
            victims, lost, price = [], 0.0, 0.0
            for e in sorted(engine.cache, key=lambda e: self.key(e, t)):
                if need <= 0:
                    break
                need -= int(tab.mem_bytes[e.model])
                dv = demand(self.count, self.at, e.model, t, h)
                lost += dv
                price += reload_price(tab, e.model, dv)
                victims.append(e.model)
            if lost * MARGIN >= d or not pays(tab, c, d, price):
                return
            if not engine.preload_model(c, victims, now):
                return
