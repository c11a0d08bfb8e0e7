"""The system cost's terms (MODEL.md §4, "System cost"; docs/model.md, "Devices"), listed once.

A term is a summary column (results.summarize reports it), the weight that multiplies it (a key of the
scenario's [weights]; the tables carry it as `w_<key>`) and the record sums it adds up. `system_cost` is
their weighted sum, from a replay's sums: results.summarize and opt both call it, and results.COST_TERMS
(the plot's and the HTML report's stacked terms) is read off TERMS. What one request adds to the system
cost, for deciding, is priced in costs.py (`*_price`) with the same weights. docs/engine.md, "Adding a
cost term", lists what else a new term touches.
"""

from __future__ import annotations

from typing import NamedTuple

from . import record as C


class Term(NamedTuple):
    column: str  # the summary column (docs/results.md documents it)
    weight: str  # its weight: scenario [weights] key; tables.w_<weight>
    sums: tuple  # the record sums (S_*) it adds up, in this order
    per: float = 1.0  # the sums are divided by this (1000.0: J reported in kJ)


TERMS = (
    Term("switching_cost", "switch", (C.S_SWITCHING, C.S_PRELOAD_SWITCHING)),  # loads' and preloads': s + kJ + wear
    Term("total_accuracy_cost", "accuracy", (C.S_ACC_COST, C.S_DEVICE_ACC_COST)),  # the edge's and the device's
    # queue wait + compute: a request's own load is charged once, in the switching cost
    Term("inference_latency_s", "latency", (C.S_INFERENCE_LATENCY,)),
    Term("offloading_latency_s", "latency", (C.S_OFFLOADING_LATENCY,)),  # device -> edge
    Term("cloud_cost", "cloud", (C.S_CLOUD_COST,)),
    Term("cloud_latency_s", "cloud_latency", (C.S_CLOUD_LATENCY,)),  # weight 0 by default: the paper's sum
    Term("device_latency_s", "latency", (C.S_DEVICE_LATENCY,)),  # run on the user's device (MODEL.md §9.4)
    Term("device_energy_kj", "device_energy", (C.S_DEVICE_ENERGY,), 1000.0),
)


def term_values(sums) -> dict:
    """Each term's value (by its column) from a replay's sums."""
    out = {}
    for t in TERMS:
        v = float(sums[t.sums[0]])
        for s in t.sums[1:]:
            v += float(sums[s])
        out[t.column] = v / t.per if t.per != 1.0 else v
    return out


def system_cost(weight, sums) -> float:
    """The system cost of a replay's sums; weight(key) gives a weight (`scenario_weights`, `table_weights`).

    Neighbouring terms of one weight are added before it multiplies them (w_latency x (inference +
    offloading latency), as MODEL.md §4 writes the sum), so the result keeps its bits whatever reads it."""
    values = term_values(sums)
    total, i = 0.0, 0
    while i < len(TERMS):
        key, part = TERMS[i].weight, values[TERMS[i].column]
        i += 1
        while i < len(TERMS) and TERMS[i].weight == key:
            part += values[TERMS[i].column]
            i += 1
        total += weight(key) * part
    return total


def scenario_weights(weights):
    """weight(key) of a scenario's [weights] section."""
    return lambda key: getattr(weights, key)


def table_weights(tab):
    """weight(key) of the tables (engine/tables.py: w_<key>)."""
    return lambda key: getattr(tab, "w_" + key)
