"""What a run reports (MODEL.md §6): one flat summary row per (trace, scenario, policy)."""

from __future__ import annotations

import json
import math

import numpy as np

from .engine import record as C
from .engine.terms import TERMS, scenario_weights, system_cost, term_values
from .fileio import write_parquet_atomic
from .scenario import Scenario
from .version import __version__

# (key, label, better) for the Table II-shaped report; better: "min" | "max" | None. Every label says its unit
# and whether it is a total over the run, a mean over all requests, or a mean over edge-served requests
# (docs/results.md describes every column).
TABLE_ROWS = [
    ("system_cost", "System cost (total)", "min"),
    ("system_cost_per_request", "System cost per request", "min"),
    ("switching_cost", "Switching cost (total: s + kJ + wear)", "min"),
    ("total_accuracy_cost", "Accuracy cost (total)", "min"),
    ("average_accuracy_cost", "Average accuracy cost (per edge request)", "min"),
    ("inference_latency_s", "Inference latency: wait + compute (total, s)", "min"),
    ("offloading_latency_s", "Offloading latency (total, s)", "min"),
    ("cloud_cost", "Cloud cost (total, $)", "min"),
    ("edge_execution_ratio", "Edge execution ratio (% of requests)", "max"),
    ("cloud_latency_s", "Cloud latency (total, s)", "min"),
    ("queueing_share", "Queueing share of edge latency (%)", "min"),
    ("hit_ratio", "Hit ratio (% of requests)", "max"),
    ("loads", "Loads (count)", "min"),
    ("adapter_loads", "Adapter loads onto a resident base (count)", "min"),
    ("substituted", "Served by an equivalent model (count)", None),
    ("reduced_precision_loads", "Loads below catalog precision (count)", None),
    ("upgrades", "Upgrades to catalog precision (count)", None),
    ("mean_batch_size", "Batch size (mean requests per edge batch)", None),
    ("partial_serves", "Served by a partial model (count)", None),
    ("device_served", "Run on the user's device (count)", None),
    ("device_latency_s", "Device latency: compute (total, s)", "min"),
    ("device_energy_kj", "Device energy (total, kJ)", "min"),
    ("evictions", "Evictions (count)", "min"),
    ("load_energy_j", "Load energy (total, J)", "min"),
    ("compute_energy_j", "Compute energy (total, J)", "min"),
    ("edge_latency_mean_s", "Edge latency with loads, mean (per edge request, s)", "min"),
    ("edge_latency_p50_s", "Edge latency p50 (per edge request, s)", "min"),
    ("edge_latency_p95_s", "Edge latency p95 (per edge request, s)", "min"),
    ("edge_latency_p99_s", "Edge latency p99 (per edge request, s)", "min"),
    ("examples_in_context_mean_edge", "Examples in context (mean per edge request)", "max"),
]

# Rows the report adds when a row's loads come from weight tiers (MODEL.md §9.4: edge.checkpoints_in = ssd or
# registry); kept out of TABLE_ROWS so that `check` against an older baseline finds every metric it names.
TIER_TABLE_ROWS = [("loads_from_dram", "Loads from host DRAM (count)", None),
                   ("loads_from_ssd", "Loads from SSD (count)", None),
                   ("loads_from_registry", "Loads from the registry (count)", None)]

# Old summary keys (before units were part of every name) -> the current ones; docs/results.md lists them.
RENAMED = {
    "inference_latency": "inference_latency_s",
    "offloading_latency": "offloading_latency_s",
    "inference_latency_per_request": "inference_latency_per_request_s",
    "offloading_latency_per_request": "offloading_latency_per_request_s",
    "mean_accuracy": "accuracy_per_request_pct",
    # The edge latency (with the request's own load) was once under inference_latency_*: since loads are
    # counted once (MODEL.md §4), inference_latency_* excludes it and the user-facing figure is edge_latency_*.
    "inference_latency_mean": "edge_latency_mean_s",
    "inference_latency_p50": "edge_latency_p50_s",
    "inference_latency_p95": "edge_latency_p95_s",
    "inference_latency_p99": "edge_latency_p99_s",
    "inference_latency_max": "edge_latency_max_s",
    "inference_latency_p50_edge_s": "edge_latency_p50_s",
    "inference_latency_p95_edge_s": "edge_latency_p95_s",
    "inference_latency_p99_edge_s": "edge_latency_p99_s",
    "inference_latency_max_edge_s": "edge_latency_max_s",
    "queue_wait": "queue_wait_s",
    "mean_examples_in_context": "examples_in_context_mean_edge",
}


def percentile(hist: np.ndarray, q: float, max_value: float) -> float | None:
    """Nearest-rank percentile from the latency histogram (bucket midpoint, at most the observed max)."""
    n = int(hist.sum())
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * n))
    i = int(np.searchsorted(np.cumsum(hist), rank))
    if i == len(hist) - 1 and max_value >= HIST_TOP_S:
        # The top bucket also holds every latency above 2^31 s: its midpoint says nothing of them. The
        # largest is known exactly; any other rank there is unknown: None (run_notes says why).
        return max_value if rank == n else None
    return min(C.hist_value(i), max_value)


HIST_TOP_S = 2.0 ** C.HIST_EXP_MAX  # latencies from here on share the histogram's top bucket


def never_fit(scenario: Scenario, catalog) -> list[str]:
    """Models larger than the edge GPU memory: every request for them goes to the cloud."""
    cap = round(scenario.edge.gpu_memory_gb * 1e9)
    by = {m.name.lower(): m for m in catalog.models}

    def size(m):  # a variant served as an adapter needs its base's weights too (MODEL.md §9.5)
        return by[m.variant_of.lower()].memory_bytes + m.adapter_bytes if m.variant_of else m.memory_bytes

    return [m.name for m in catalog.models if size(m) > cap]


def run_notes(row: dict, scenario: Scenario, catalog=None) -> list[str]:
    """Plain-language notes about one summary row: what a reader might otherwise misread.

    The `notes` column joins them with "; " (no note contains that separator)."""
    notes = []
    if catalog is not None:
        big = never_fit(scenario, catalog)
        if big:
            sizes = {m.name: m.memory_gb for m in catalog.models}
            shown = ", ".join(f"{n} ({sizes[n]:,.1f} GB)" for n in big[:4]) + (f" and {len(big) - 4} more"
                                                                              if len(big) > 4 else "")
            notes.append(f"{len(big)} model(s) can never fit the {scenario.edge.gpu_memory_gb:g} GB GPU and always "
                         f"go to the cloud: {shown}")
        notes += list(getattr(catalog, "warnings", ()))
    # Only where no load was declined, dispatched away or made early: then every model that fits was
    # loaded on its first request and stayed, which any eviction policy does too.
    if (row["loads"] > 0 and row["evictions"] == 0 and row["declined_loads"] == 0
            and row["dispatched_to_cloud"] == 0 and row["preloads"] == 0):
        notes.append("no model was ever evicted, so every eviction policy gives these same numbers "
                     "(every model that fits stays cached: try a smaller --gpu-memory)")
    lat_max = max((v for k, v in row.items() if "latency_max" in k and isinstance(v, float)), default=0.0)
    if lat_max >= HIST_TOP_S:
        notes.append(f"edge latencies reach {lat_max:.4g} s, beyond the latency histogram's range (2^31 s): a "
                     "percentile that falls there is left empty rather than estimated")
    return notes


def summarize(counts, sums, hist, scenario: Scenario, policy: str, trace_name: str, catalog_name: str,
              engine: str = "fast", catalog=None, admission: str | None = None) -> dict:
    """One flat summary row (MODEL.md §6); the keys and their units are documented in docs/results.md.

    catalog (optional): the catalog replayed, for the `never_fit_models` column and the notes.
    """
    w = scenario.weights
    n = int(counts[C.C_REQUESTS])
    hits, loads, offloads = int(counts[C.C_HITS]), int(counts[C.C_LOADS]), int(counts[C.C_OFFLOADS])
    substituted = int(counts[C.C_SUBSTITUTED])  # served by a cached equivalent model (MODEL.md §9.1)
    edge = hits + loads + substituted
    edge_lat = float(sums[C.S_EDGE_LATENCY])  # what users wait at the edge: queue wait + own load + compute
    # The system cost's terms (engine/terms.py: their sums and weights), each a column of the row.
    terms = term_values(sums)
    switching, acc_cost = terms["switching_cost"], terms["total_accuracy_cost"]
    inference_lat, off_lat = terms["inference_latency_s"], terms["offloading_latency_s"]
    cloud_lat, cloud = terms["cloud_latency_s"], terms["cloud_cost"]
    device_lat, device_kj = terms["device_latency_s"], terms["device_energy_kj"]
    device = int(counts[C.C_DEVICE_SERVED])  # run on the user's device (MODEL.md §9.4): 0 without a [device]
    device_acc = float(sums[C.S_DEVICE_ACC_COST])  # of total_accuracy_cost, the device's
    edge_acc = float(sums[C.S_ACC_COST])
    system = system_cost(scenario_weights(w), sums)
    per = (lambda x: x / n) if n else (lambda x: 0.0)
    lat_max = float(sums[C.S_EDGE_LAT_MAX])
    row = {
        "trace": trace_name,
        "scenario": scenario.name,
        "policy": policy,
        "n_requests": n,
        "edge_hits": hits,
        "loads": loads,
        "adapter_loads": int(counts[C.C_ADAPTER_LOADS]),  # of them, adapters alone onto a resident base (§9.5)
        "evictions": int(counts[C.C_EVICTIONS]),
        "offloads": offloads,
        "declined_loads": int(counts[C.C_DECLINED]),  # misses that fit but the admission rule offloaded
        "dispatched_to_cloud": int(counts[C.C_DISPATCHED]),  # sent to the cloud by the dispatch rule
        "preloads": int(counts[C.C_PRELOADS]),  # loads in idle time, for no request (costed as loads)
        "substituted": substituted,
        "reduced_precision_loads": int(counts[C.C_REDUCED_LOADS]),  # of `loads`, below catalog precision (§9.2)
        "upgrades": int(counts[C.C_UPGRADES]),  # reduced copies reloaded to their catalog precision (as loads)
        # loads and preloads by the tier their checkpoint came from (MODEL.md §9.4): they add up to loads + preloads
        "loads_from_dram": int(counts[C.C_LOADS_FROM_DRAM]),
        "loads_from_ssd": int(counts[C.C_LOADS_FROM_SSD]),
        "loads_from_registry": int(counts[C.C_LOADS_FROM_REGISTRY]),
        # edge-served requests per batch started (MODEL.md §9.2); 1 without batching
        "mean_batch_size": edge / int(counts[C.C_BATCHES]) if counts[C.C_BATCHES] else None,
        # served by a prefix of their model's layers (caching = partial, MODEL.md §9.3), and its mean fraction
        "partial_serves": int(counts[C.C_PARTIAL_SERVES]),
        "partial_fraction_mean": (float(sums[C.S_PARTIAL_FRACTION]) / int(counts[C.C_PARTIAL_SERVES])
                                  if counts[C.C_PARTIAL_SERVES] else None),
        "device_served": device,  # run on the user's device (MODEL.md §9.4): in none of the edge's counts
        "admission": admission or scenario.serving.admission,
        "dispatch": scenario.serving.dispatch,
        "hit_ratio": per(hits),
        "edge_execution_ratio": per(edge),
        "device_execution_ratio": per(device),
        "system_cost": system,
        "switching_cost": switching,
        "total_accuracy_cost": acc_cost,
        # Per request served at the edge (the cloud has none): this is how Table II's figures relate.
        "average_accuracy_cost": edge_acc / edge if edge else 0.0,
        "device_accuracy_cost": device_acc,  # of total_accuracy_cost, the device's (zero-shot)
        "inference_latency_s": inference_lat,
        "edge_latency_s": edge_lat,
        "offloading_latency_s": off_lat,
        "cloud_latency_s": cloud_lat,
        "cloud_cost": cloud,
        "device_latency_s": device_lat,
        "device_energy_kj": device_kj,
        "system_cost_per_request": per(system),
        "switching_cost_per_request": per(switching),
        "accuracy_cost_per_request": per(acc_cost),
        "inference_latency_per_request_s": per(inference_lat),
        "offloading_latency_per_request_s": per(off_lat),
        "cloud_latency_per_request_s": per(cloud_lat),
        "cloud_cost_per_request": per(cloud),
        "device_latency_per_request_s": per(device_lat),
        "device_energy_per_request_kj": per(device_kj),
        "load_energy_j": float(sums[C.S_LOAD_ENERGY]) + float(sums[C.S_PRELOAD_ENERGY]),
        "compute_energy_j": float(sums[C.S_COMPUTE_ENERGY]),
        "load_time_s": float(sums[C.S_LOAD_TIME]) + float(sums[C.S_PRELOAD_TIME]),
        "accuracy_per_request_pct": per(float(sums[C.S_ACCURACY])),
        "inference_latency_mean_edge_s": inference_lat / edge if edge else None,
        "edge_latency_mean_s": edge_lat / edge if edge else None,
        "edge_latency_p50_s": percentile(hist, 50, lat_max),
        "edge_latency_p95_s": percentile(hist, 95, lat_max),
        "edge_latency_p99_s": percentile(hist, 99, lat_max),
        "edge_latency_max_s": lat_max if edge else None,
        "queue_wait_s": float(sums[C.S_WAIT]),
        "examples_in_context_mean_edge": float(sums[C.S_K_EFF]) / edge if edge else 0.0,
        "queueing_share": float(sums[C.S_WAIT]) / edge_lat if edge_lat > 0 else 0.0,  # of edge latency
        "context_discarded": float(sums[C.S_CONTEXT_DISCARDED]),
        "edge_gflop": float(sums[C.S_EDGE_GFLOP]),
        "cloud_gflop": float(sums[C.S_CLOUD_GFLOP]),
        "device_gflop": float(sums[C.S_DEVICE_GFLOP]),
        "engine": engine,
        "seed": scenario.seed,
        "catalog": catalog_name,
        "pfmbench_version": __version__,
    }
    for k, v in terms.items():  # a term added to engine/terms.py is a column with no edit here
        row.setdefault(k, v)
    row["never_fit_models"] = ",".join(never_fit(scenario, catalog)) if catalog is not None else ""
    row["notes"] = "; ".join(run_notes(row, scenario, catalog))
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
# The summands of system_cost: (column, weight in scenario [weights]), read off engine/terms.py's TERMS.
# `pfmbench plot` stacks them; tests/test_plot.py checks that they add up to system_cost.
COST_TERMS = tuple((t.column, t.weight) for t in TERMS)


# Columns every row of a replay gets when opt was computed (docs/results.md, "Gap to opt").
OPT_COLUMNS = ("opt_kind", "opt_system_cost", "gap_to_opt", "gap_to_opt_pct")
OPT_TABLE_ROWS = [("gap_to_opt", "Gap to opt (system cost, total)", "min"),
                  ("gap_to_opt_pct", "Gap to opt (% of opt's system cost)", "min")]
# The columns a lower bound leaves empty: it is a number, not a replay.
_BOUND_KEEPS = {"trace", "scenario", "policy", "n_requests", "admission", "dispatch", "system_cost",
                "system_cost_per_request", "engine", "seed", "catalog", "pfmbench_version", "never_fit_models",
                "notes"}


def opt_row(result, scenario: Scenario, trace_name: str, catalog_name: str, catalog=None) -> dict:
    """The summary row of `opt` (pfmbench/opt/): the replay of its decisions when exact; when only a lower
    bound, its system cost and nothing it cannot know (the other metrics are empty)."""
    from .engine.record import new_totals

    exact = result.totals is not None
    t = result.totals if exact else new_totals()
    row = summarize(t.counts, t.sums, t.hist, scenario, "opt", trace_name, catalog_name, "opt", catalog, "any")
    row["dispatch"] = "any"  # opt chooses every load and every offload itself
    if exact:
        note = f"opt: the minimum system cost over every decision sequence ({result.nodes:,} search nodes)"
    else:
        n = result.n_requests
        for k in row:
            if k not in _BOUND_KEEPS and not k.startswith("setting_"):
                row[k] = None
        row["n_requests"] = n
        row["system_cost"] = result.system_cost
        row["system_cost_per_request"] = result.system_cost / n if n else 0.0
        note = (f"opt is a lower bound on the system cost, not a replay ({result.reason}): its other "
                "metrics are empty")
    # opt is no eviction policy: the note that every eviction policy would give its numbers does not apply
    kept = [n for n in row["notes"].split("; ") if n and not n.startswith("no model was ever evicted")]
    row["notes"] = "; ".join([note, *kept])
    return row


def with_opt(rows: list[dict], result, position: int, scenario: Scenario, trace_name: str, catalog_name: str,
             catalog=None) -> list[dict]:
    """The rows with opt's row at `position` and every row's gap to opt (OPT_COLUMNS)."""
    rows = [*rows[:position], opt_row(result, scenario, trace_name, catalog_name, catalog), *rows[position:]]
    opt = result.system_cost
    for r in rows:
        gap = r["system_cost"] - opt
        r["opt_kind"] = result.kind
        r["opt_system_cost"] = opt
        r["gap_to_opt"] = gap
        r["gap_to_opt_pct"] = 100.0 * gap / opt if opt > 0 else None
    return rows
