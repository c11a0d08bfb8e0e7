"""LRU: evict the model whose last request is oldest (a linked list in order of last use)."""

from typing import NamedTuple

from numba import njit

from ..engine import structures as S
from . import Policy, register


class State(NamedTuple):
    order: S.DList  # cached models, least recently used at the head


def new_state(tables, seed):
    return State(S.new_dlist(tables.n_models))


@njit(inline="always")
def victim(ps, es, tab, now):
    return S.dlist_head(ps.order)


@njit(inline="always")
def on_evict(ps, es, tab, v):
    S.dlist_remove(ps.order, v)


@njit(inline="always")
def on_insert(ps, es, tab, m):
    S.dlist_push(ps.order, m)


@njit(inline="always")
def on_hit(ps, es, tab, m, loaded):
    S.dlist_to_tail(ps.order, m)


@register
class LRU(Policy):
    """Least recently used: evict the model whose last request is oldest."""

    name = "lru"

    def key(self, entry, now):
        return entry.use_order  # last_use; a base after the variant that used it (MODEL.md §9.5)
