"""FIFO: evict the model loaded earliest (a linked list in load order; hits do not move it)."""

from typing import NamedTuple

from numba import njit

from ..engine import structures as S
from . import Policy, register


class State(NamedTuple):
    order: S.DList  # cached models, earliest loaded at the head


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


@register
class FIFO(Policy):
    """First in, first out: evict the model loaded earliest; hits do not change the order."""

    name = "fifo"

    def key(self, entry, now):
        return entry.loaded_at
