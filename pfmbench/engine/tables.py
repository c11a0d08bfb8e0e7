"""Static arrays of one (scenario, catalog): per model, per (model, task) pair, and scalar settings.

Both engines read only these, so the cost model is set up in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog, best_accuracy
from ..scenario import Scenario
from .costs import UTILITY_CODES

# Indices into Tables.params (float64).
(P_CAPACITY, P_EDGE_RATE, P_CLOUD_RATE, P_POWER, P_RTT, P_UPLINK, P_PRICE_REQ, P_PRICE_TFLOP, P_UTILITY,
 P_HALF_LIFE, P_LINEAR_RATE, P_RELEVANCE, P_W_SWITCH, P_W_ACC, P_W_LAT, P_W_CLOUD, P_WEAR, N_PARAMS) = range(18)


@dataclass
class Tables:
    params: np.ndarray  # float64 [N_PARAMS]
    capacity_bytes: int
    executors: int
    # per model
    mem_bytes: np.ndarray  # int64: memory accounting is exact, in bytes
    load_time: np.ndarray  # float64 s: load_overhead_s + memory_gb / load_gbps
    window: np.ndarray  # float64 context window (0: no in-context learning)
    first_pair: np.ndarray  # int32 [n_models + 1]: pairs of model m are first_pair[m]..first_pair[m+1]-1
    # per pair
    pair_model: np.ndarray  # int32
    gflops: np.ndarray  # float64 GFLOP per unit
    example_units: np.ndarray  # float64 units per demonstration (0 for models without in-context learning)
    curve: np.ndarray  # float64 [n_pairs, 7]: accuracy_at() arguments after k
    a_ref: np.ndarray  # float64 best accuracy on the curve
    cloud_context_units: np.ndarray  # float64 window * example_units: the cloud serves with full context

    @property
    def n_models(self) -> int:
        return len(self.mem_bytes)


def build_tables(scenario: Scenario, catalog: Catalog) -> Tables:
    e, c, x, w = scenario.edge, scenario.cloud, scenario.context, scenario.weights
    params = np.zeros(N_PARAMS)
    params[P_CAPACITY] = e.gpu_memory_gb * 1e9
    params[P_EDGE_RATE] = scenario.edge_rate
    params[P_CLOUD_RATE] = scenario.cloud_rate
    params[P_POWER] = e.power_w
    params[P_RTT] = c.rtt_s
    params[P_UPLINK] = c.uplink_mbps
    params[P_PRICE_REQ] = c.price_per_request
    params[P_PRICE_TFLOP] = c.price_per_tflop
    params[P_UTILITY] = UTILITY_CODES[x.utility]
    params[P_HALF_LIFE] = x.half_life_s
    params[P_LINEAR_RATE] = x.linear_rate
    params[P_RELEVANCE] = x.relevance
    params[P_W_SWITCH], params[P_W_ACC], params[P_W_LAT], params[P_W_CLOUD] = w.switch, w.accuracy, w.latency, w.cloud
    params[P_WEAR] = w.wear_per_load

    models = catalog.models
    pairs = catalog.pairs
    first = np.zeros(len(models) + 1, dtype=np.int32)
    for i, m in enumerate(models):
        first[i + 1] = first[i] + len(m.tasks)
    icl = np.array([models[i].context_window > 0 for i, _ in pairs], dtype=bool)
    window = np.array([m.context_window for m in models], dtype=np.float64)
    pm = np.array([i for i, _ in pairs], dtype=np.int32)
    ex_units = np.where(icl, x.example_units, 0.0)
    return Tables(
        params=params,
        capacity_bytes=round(e.gpu_memory_gb * 1e9),
        executors=int(e.executors),
        mem_bytes=np.array([m.memory_bytes for m in models], dtype=np.int64),
        load_time=np.array([e.load_overhead_s + m.memory_gb / e.load_gbps for m in models], dtype=np.float64),
        window=window,
        first_pair=first,
        pair_model=pm,
        gflops=np.array([models[i].gflops for i, _ in pairs], dtype=np.float64),
        example_units=ex_units,
        curve=np.array([models[i].tasks[j].curve_params for i, j in pairs], dtype=np.float64).reshape(len(pairs), 7),
        a_ref=np.array([best_accuracy(models[i].tasks[j], models[i].context_window) for i, j in pairs]),
        cloud_context_units=window[pm] * ex_units,
    )
