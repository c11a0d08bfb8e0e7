"""GDSF with libCacheSim's constant cost (10^6 per miss): equal to libCacheSim's GDSF request by request.
The hooks are gdsf's; only the costs differ."""

import numpy as np

from . import register
from .gdsf import GDSF, admit, on_evict, on_hit, on_insert, state_with_costs, victim  # noqa: F401

UNIT_COST = 1.0e6  # libCacheSim's GDSF: priority = L + freq * 1.0e6 / obj_size


def new_state(tables, seed):
    return state_with_costs(tables, np.full(tables.n_models, UNIT_COST))


@register
class GDSFUnit(GDSF):
    """GDSF with a constant cost per miss (libCacheSim's GDSF exactly)."""

    name = "gdsf-unit"

    def costs(self, tables):
        return [UNIT_COST] * tables.n_models
