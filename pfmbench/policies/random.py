"""Random: evict a cached model drawn uniformly with a seeded SplitMix64 stream."""

from typing import NamedTuple

import numpy as np
from numba import njit

from ..engine import structures as S
from . import Policy, register


class State(NamedTuple):
    rng: np.ndarray  # uint64 [1]: SplitMix64 state


def new_state(tables, seed):
    return State(np.array([seed & (2**64 - 1)], dtype=np.uint64))


@njit(inline="always")
def victim(ps, es, tab, now):
    # Drawn from the engine's list of cached models (insertion order, swap-remove), as the reference does.
    return es.clist[S.splitmix64(ps.rng) % np.uint64(es.n_cached[0])]


@register
class Random(Policy):
    """Evict a cached model drawn uniformly with the seeded SplitMix64 stream (same seed, same victims)."""

    name = "random"

    def key(self, entry, now):
        return 0

    def victim(self, cache, now, rng):
        return cache[rng() % len(cache)]
