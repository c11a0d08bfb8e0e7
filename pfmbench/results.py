"""What a run reports (MODEL.md §6): one flat summary row per (trace, scenario, policy)."""

from __future__ import annotations

import json
import math

import numpy as np

from . import __version__
from .engine import costs as C
from .fileio import write_parquet_atomic
from .scenario import Scenario

# (key, label, better) for the Table II-shaped report; better: "min" | "max" | None.
TABLE_ROWS = [
    ("system_cost", "System cost", "min"),
    ("switching_cost", "Switching cost", "min"),
    ("total_accuracy_cost", "Total accuracy cost", "min"),
    ("average_accuracy_cost", "Average accuracy cost", "min"),
    ("inference_latency", "Inference latency (s)", "min"),
    ("offloading_latency", "Offloading latency (s)", "min"),
    ("cloud_cost", "Cloud cost ($)", "min"),
    ("edge_execution_ratio", "Edge execution ratio", "max"),
    ("hit_ratio", "Hit ratio", "max"),
    ("loads", "Loads", "min"),
    ("evictions", "Evictions", "min"),
    ("load_energy_j", "Load energy (J)", "min"),
    ("compute_energy_j", "Compute energy (J)", "min"),
    ("inference_latency_p50", "Edge latency p50 (s)", "min"),
    ("inference_latency_p95", "Edge latency p95 (s)", "min"),
    ("inference_latency_p99", "Edge latency p99 (s)", "min"),
    ("mean_examples_in_context", "Mean examples in context", "max"),
]


def percentile(hist: np.ndarray, q: float, max_value: float) -> float | None:
    """Nearest-rank percentile from the latency histogram (bucket midpoint, at most the observed max)."""
    n = int(hist.sum())
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * n))
    i = int(np.searchsorted(np.cumsum(hist), rank))
    return min(C.hist_value(i), max_value)


def summarize(counts, sums, hist, scenario: Scenario, policy: str, trace_name: str, catalog_name: str,
              engine: str = "fast") -> dict:
    w = scenario.weights
    n = int(counts[C.C_REQUESTS])
    hits, loads, offloads = int(counts[C.C_HITS]), int(counts[C.C_LOADS]), int(counts[C.C_OFFLOADS])
    edge = hits + loads
    switching = float(sums[C.S_SWITCHING])
    acc_cost = float(sums[C.S_ACC_COST])
    edge_lat = float(sums[C.S_EDGE_LATENCY])
    off_lat = float(sums[C.S_OFFLOAD_LATENCY])
    cloud = float(sums[C.S_CLOUD_COST])
    system = w.switch * switching + w.accuracy * acc_cost + w.latency * (edge_lat + off_lat) + w.cloud * cloud
    per = (lambda x: x / n) if n else (lambda x: 0.0)
    lat_max = float(sums[C.S_EDGE_LAT_MAX])
    row = {
        "trace": trace_name,
        "scenario": scenario.name,
        "policy": policy,
        "n_requests": n,
        "edge_hits": hits,
        "loads": loads,
        "evictions": int(counts[C.C_EVICTIONS]),
        "offloads": offloads,
        "hit_ratio": per(hits),
        "edge_execution_ratio": per(edge),
        "system_cost": system,
        "switching_cost": switching,
        "total_accuracy_cost": acc_cost,
        # Per request served at the edge (the cloud has none): this is how Table II's figures relate.
        "average_accuracy_cost": acc_cost / edge if edge else 0.0,
        "inference_latency": edge_lat,
        "offloading_latency": off_lat,
        "cloud_cost": cloud,
        "system_cost_per_request": per(system),
        "switching_cost_per_request": per(switching),
        "accuracy_cost_per_request": per(acc_cost),
        "inference_latency_per_request": per(edge_lat),
        "offloading_latency_per_request": per(off_lat),
        "cloud_cost_per_request": per(cloud),
        "load_energy_j": float(sums[C.S_LOAD_ENERGY]),
        "compute_energy_j": float(sums[C.S_COMPUTE_ENERGY]),
        "load_time_s": float(sums[C.S_LOAD_TIME]),
        "mean_accuracy": per(float(sums[C.S_ACCURACY])),
        "inference_latency_mean": edge_lat / edge if edge else None,
        "inference_latency_p50": percentile(hist, 50, lat_max),
        "inference_latency_p95": percentile(hist, 95, lat_max),
        "inference_latency_p99": percentile(hist, 99, lat_max),
        "inference_latency_max": lat_max if edge else None,
        "queue_wait": float(sums[C.S_WAIT]),
        "mean_examples_in_context": float(sums[C.S_K_EFF]) / edge if edge else 0.0,
        "context_discarded": float(sums[C.S_CONTEXT_DISCARDED]),
        "edge_gflop": float(sums[C.S_EDGE_GFLOP]),
        "cloud_gflop": float(sums[C.S_CLOUD_GFLOP]),
        "engine": engine,
        "seed": scenario.seed,
        "catalog": catalog_name,
        "pfmbench_version": __version__,
    }
    for k, v in scenario.as_dict().items():
        if k not in ("name", "seed"):
            row["setting_" + k.replace(".", "_")] = v
    return row


def summary_frame(rows: list[dict]):
    """The summary rows as a polars DataFrame."""
    import polars as pl

    return pl.DataFrame(rows, infer_schema_length=None)


def write_summary(rows: list[dict], path) -> None:
    write_parquet_atomic(summary_frame(rows), path)


def to_json(rows: list[dict]) -> str:
    def clean(v):
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return json.dumps([{k: clean(v) for k, v in r.items()} for r in rows], indent=2)


# Metrics `pfmbench check` and `compare` use unless told otherwise: every row of the report (TABLE_ROWS:
# the cost terms, ratios, counts and latencies), so that a rename there reaches them.
REPORT_METRICS = tuple(key for key, _, _ in TABLE_ROWS)
# The summands of system_cost as summarize() adds them: (column, weight in scenario [weights]). `pfmbench
# plot` stacks them; tests/test_plot.py checks that they add up to system_cost.
COST_TERMS = (
    ("switching_cost", "switch"),
    ("total_accuracy_cost", "accuracy"),
    ("inference_latency", "latency"),
    ("offloading_latency", "latency"),
    ("cloud_cost", "cloud"),
)
