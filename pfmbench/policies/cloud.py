"""Cloud only: never loads a model; every request is offloaded."""

from typing import NamedTuple

from numba import njit

from . import Policy, register


class State(NamedTuple):
    nothing: int  # cloud keeps no state (numba needs a field)


def new_state(tables, seed):
    return State(0)


@njit(inline="always")
def admit(ps, es, tab, m, now):
    return False


@register
class Cloud(Policy):
    """Cloud only: never loads a model; every request is offloaded."""

    name = "cloud"

    def admit(self, model, now):
        return False

    def key(self, entry, now):
        return entry.last_use
