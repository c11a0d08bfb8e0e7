"""Random placement (the paper's "Random", MODEL.md §5): what is cached is chosen at random, not by what is
requested.

On each miss for a model that fits the GPU, the server draws one model uniformly from the catalog's models
that fit and are not cached, evicts cached models drawn at random until it fits, and loads it. The request
is served at the edge only if the drawn model is the one it names; otherwise it is offloaded, and the load
made for no request is costed as a load and counted with the preloads (`preloads`). Hits are served at the
edge. A request for a model that can never fit is offloaded with no draw. One seeded SplitMix64 stream gives
the draws and the victims, in the order the engine asks for them (same seed, same placements).

This is the random-caching baseline of the edge-caching literature; `random` (random eviction of what is
requested, as libCacheSim's) is the other reading. docs/model.md compares the two against Table II.
"""

import numpy as np
from numba import njit

from ..engine import structures as S
from ..engine.fast import evict_model as _evict_model_py
from ..engine.fast import fits_gpu as _fits_gpu_py
from ..engine.fast import load_bytes as _load_bytes_py
from ..engine.fast import place_model as _place_model_py
from ..engine.jit import compiled
from . import register
from .random import Random, State, new_state, victim  # noqa: F401  (random eviction's state and victims)

_evict_model, _place_model = compiled(_evict_model_py), compiled(_place_model_py)
_fits_gpu, _load_bytes = compiled(_fits_gpu_py), compiled(_load_bytes_py)

# Its loop accounts the loads it makes for no request itself: the engine keeps its accounting inline
# (engine/accountant.py).
LOADS_FOR_NO_REQUEST = True


@njit(inline="always")
def _drawable(es, tab, q):
    """Not cached, fits the GPU (with its base), and requestable (a shared base with no task of its own is not:
    it is loaded with its variants, MODEL.md §9.5)."""
    return es.cached[q] == 0 and _fits_gpu(tab, q) and tab.first_pair[q + 1] > tab.first_pair[q]


@njit(inline="always")
def admit(ps, es, tab, m, now):
    # Draw among the models that fit and are not cached (m is one of them), in catalog order.
    n = 0
    for q in range(tab.mem_bytes.shape[0]):
        if _drawable(es, tab, q):
            n += 1
    if n == 0:  # m fits only below its catalog precision (precision_mode = "ladder"): placements are at it
        return False
    r = S.splitmix64(ps.rng) % np.uint64(n)
    x = -1
    for q in range(tab.mem_bytes.shape[0]):
        if _drawable(es, tab, q):
            if r == 0:
                x = q
                break
            r -= np.uint64(1)
    if x == m:
        return True  # the engine loads m for this request, evicting at random (victim)
    while es.used[0] + _load_bytes(tab, es, x) > tab.capacity_bytes:  # its base may leave too: re-counted
        _evict_model(tab, es, victim(ps, es, tab, now), now)
    _place_model(tab, es, x, now)
    return False


@register
class RandomPlacement(Random):
    """Random placement, the paper's Random: after each miss, load a model drawn uniformly from those that
    fit (evicting at random, as Random does); a request is served at the edge only if its model is cached."""

    name = "random-placement"

    def attach(self, engine):
        self.engine = engine

    def admit(self, model, now):
        e, t = self.engine, self.engine.t
        fit = [q for q in range(t.n_models)
               if q not in e.entry and e.fits_gpu(q) and t.first_pair[q + 1] > t.first_pair[q]]
        if not fit:  # as the fast admit: nothing fits at its catalog precision
            return False
        x = fit[e._rng() % len(fit)]
        if x == model.model:
            return True
        while e.used + e.load_bytes(x) > t.capacity_bytes:
            e.evict_model(self.victim(e.cache, now, e._rng).model, now)
        e.place_model(x, now)
        return False
