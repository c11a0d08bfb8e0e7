"""What a run reports (MODEL.md §6): one flat summary row per (trace, scenario, policy)."""

from __future__ import annotations

import json
import math

import numpy as np

from .engine import record as C
from .fileio import write_parquet_atomic
from .scenario import Scenario
from .version import __version__

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
    ("cloud_latency", "Cloud latency (s)", "min"),
    ("queueing_share", "Queueing share of edge latency", "min"),
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
              engine: str = "fast", admission: str | None = None) -> dict:
    w = scenario.weights
    n = int(counts[C.C_REQUESTS])
    hits, loads, offloads = int(counts[C.C_HITS]), int(counts[C.C_LOADS]), int(counts[C.C_OFFLOADS])
    edge = hits + loads
    switching = float(sums[C.S_SWITCHING])
    acc_cost = float(sums[C.S_ACC_COST])
    edge_lat = float(sums[C.S_EDGE_LATENCY])
    off_lat = float(sums[C.S_OFFLOADING_LATENCY])  # device -> edge, requests served at the edge
    cloud_lat = float(sums[C.S_CLOUD_LATENCY])  # requests served in the cloud
    cloud = float(sums[C.S_CLOUD_COST])
    # MODEL.md §4: with w_cloud_latency = 0 (the default) this is the paper's sum exactly.
    system = (w.switch * switching + w.accuracy * acc_cost + w.latency * (edge_lat + off_lat) + w.cloud * cloud
              + w.cloud_latency * cloud_lat)
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
        "declined_loads": int(counts[C.C_DECLINED]),  # misses that fit but the admission rule offloaded
        "dispatched_to_cloud": int(counts[C.C_DISPATCHED]),  # sent to the cloud by the dispatch rule
        "admission": admission or scenario.serving.admission,
        "dispatch": scenario.serving.dispatch,
        "hit_ratio": per(hits),
        "edge_execution_ratio": per(edge),
        "system_cost": system,
        "switching_cost": switching,
        "total_accuracy_cost": acc_cost,
        # Per request served at the edge (the cloud has none): this is how Table II's figures relate.
        "average_accuracy_cost": acc_cost / edge if edge else 0.0,
        "inference_latency": edge_lat,
        "offloading_latency": off_lat,
        "cloud_latency": cloud_lat,
        "cloud_cost": cloud,
        "system_cost_per_request": per(system),
        "switching_cost_per_request": per(switching),
        "accuracy_cost_per_request": per(acc_cost),
        "inference_latency_per_request": per(edge_lat),
        "offloading_latency_per_request": per(off_lat),
        "cloud_latency_per_request": per(cloud_lat),
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
        "queueing_share": float(sums[C.S_WAIT]) / edge_lat if edge_lat > 0 else 0.0,  # of edge inference latency
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
