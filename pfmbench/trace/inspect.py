"""Summary statistics of a trace, computed batch by batch so that any size fits in memory.

Popularity is counted per (model, task) pair, as synthesis draws it. The Zipf exponent is the least-squares
slope of log(count) against log(rank) over the pairs requested (rank 1 = most requested), negated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import Catalog, load_catalog
from ..errors import InputError
from .schema import MAX_ABS_TS, _seconds, open_parquet

MAX_MINUTE_BINS = 50_000_000  # beyond this span, per-minute counts are kept sparse


def fit_zipf_alpha(counts) -> float | None:
    """-slope of the least-squares line through (log rank, log count), counts sorted descending; None if < 2."""
    c = np.sort(np.asarray([x for x in counts if x > 0], dtype=np.float64))[::-1]
    if c.size < 2:
        return None
    x, y = np.log(np.arange(1, c.size + 1)), np.log(c)
    slope = np.polyfit(x, y, 1)[0]
    return float(-slope)


def _batches(pf: pq.ParquetFile, src: str, columns: list[str], batch_rows: int):
    """(first row, batch) pairs; ts of each batch as float seconds, checked to be finite."""
    row = 0
    try:
        for b in pf.iter_batches(batch_size=batch_rows, columns=columns):
            ts = _seconds(b.column("ts"))
            valid = np.asarray(b.column("ts").is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            bad = np.flatnonzero(~valid | ~(np.abs(ts) <= MAX_ABS_TS))
            if bad.size:
                raise InputError(f"{src}: row {row + int(bad[0])}: ts is null, not finite or beyond "
                                 f"±{MAX_ABS_TS:g} s")
            yield row, ts, b
            row += b.num_rows
    except pa.ArrowException as e:
        raise InputError(f"{src}: cannot read Parquet: {str(e).splitlines()[0]}") from None


def inspect_trace(path: str | Path, catalog: Catalog | str | Path | None = None, *, batch_rows: int = 1 << 20,
                  progress: Callable[[int], None] | None = None, gpu_memory_gb: float | None = None) -> dict:
    """Statistics of a trace file as a JSON-ready dict (rates in requests/s; sizes in GB).

    Models are counted as replay caches them: catalog models (with a scenario's per-task copies, pass the
    catalog it resolves), not the distinct names in the trace (n_model_names).
    Keys: n_requests, start_s, span_s, rate_mean, requests_per_minute_mean, requests_per_minute_peak,
    rate_peak_minute, n_models, n_model_names, n_tasks, n_pairs, zipf_alpha, interarrival_cv, units_mean,
    working_set_gb, models, gpu_memory_gb, never_fit_models, unknown_requests, catalog,
    popularity [{model, task, requests, share}] (descending).
    """
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    src = str(path)
    pf = open_parquet(path)
    names = pf.schema_arrow.names
    has_task, has_units = "task" in names, "units" in names

    # Pass 1: the time range, so that per-minute bins can be counted from the first request.
    t0, t1 = math.inf, -math.inf
    for _, ts, _ in _batches(pf, src, ["ts"], batch_rows):
        if ts.size:
            t0, t1 = min(t0, float(ts.min())), max(t1, float(ts.max()))
    if t0 == math.inf:
        raise InputError(f"{src}: the trace has no requests")
    n_bins = int((t1 - t0) // 60) + 1
    minutes = np.zeros(n_bins, np.int64) if n_bins <= MAX_MINUTE_BINS else None
    sparse: dict[int, int] = {}

    # Pass 2: counts per pair and minute; inter-arrival moments while the file is in time order.
    cols = ["ts", "model"] + (["task"] if has_task else []) + (["units"] if has_units else [])
    pair_counts: dict[tuple[str, str | None], int] = {}
    n, units_sum = 0, 0.0
    gaps_n, gaps_sum, gaps_sq, last, in_order = 0, 0.0, 0.0, None, True
    for row, ts, b in _batches(pf, src, cols, batch_rows):
        if ts.size == 0:
            continue
        n += ts.size
        m = ((ts - t0) // 60).astype(np.int64)
        if minutes is not None:
            minutes += np.bincount(m, minlength=n_bins)
        else:
            for k, c in zip(*np.unique(m, return_counts=True), strict=True):
                sparse[int(k)] = sparse.get(int(k), 0) + int(c)
        if in_order:
            g = np.diff(ts) if last is None else np.diff(ts, prepend=last)
            if np.any(g < 0):
                in_order = False
            gaps_n, gaps_sum, gaps_sq = gaps_n + g.size, gaps_sum + float(g.sum()), gaps_sq + float(g @ g)
            last = float(ts[-1])
        df = pl.from_arrow(pa.Table.from_batches([b]))
        keys = [pl.col("model").cast(pl.String)] + ([pl.col("task").cast(pl.String)] if has_task else [])
        for r in df.group_by(keys).len().iter_rows():
            key = (r[0], r[1] if has_task else None)
            pair_counts[key] = pair_counts.get(key, 0) + r[-1]
        if has_units:
            units_sum += float(df["units"].cast(pl.Float64).sum())
        if progress:
            progress(row + b.num_rows)

    if not in_order:  # rare: read the times whole and sort them
        ts = np.sort(np.concatenate([t for _, t, _ in _batches(pf, src, ["ts"], batch_rows)]))
        g = np.diff(ts)
        gaps_n, gaps_sum, gaps_sq = g.size, float(g.sum()), float(g @ g)
    cv = None
    if gaps_n > 1 and gaps_sum > 0:
        mean = gaps_sum / gaps_n
        cv = math.sqrt(max(gaps_sq / gaps_n - mean * mean, 0.0)) / mean

    lookup = cat.lookup()
    used, unknown = set(), 0
    for (model, task), c in pair_counts.items():
        p = lookup.get(((model or "").lower(), task.lower() if task else None), -1)
        if p < 0:
            unknown += c
        else:
            used.add(cat.pairs[p][0])
    popularity = sorted(pair_counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    models = [cat.models[i] for i in sorted(used)]
    cap = None if gpu_memory_gb is None else round(gpu_memory_gb * 1e9)
    span = t1 - t0
    peak = int(minutes.max()) if minutes is not None else max(sparse.values())
    return {
        "n_requests": n,
        "start_s": t0,
        "span_s": span,
        "rate_mean": n / span if span > 0 else None,
        "requests_per_minute_mean": n / (span / 60) if span > 0 else None,
        "requests_per_minute_peak": peak,
        "rate_peak_minute": peak / 60,
        "n_models": len(used),
        "n_model_names": len({m for m, _ in pair_counts}),
        "n_tasks": len({t for _, t in pair_counts if t is not None}),
        "n_pairs": len(pair_counts),
        "zipf_alpha": fit_zipf_alpha(pair_counts.values()),
        "interarrival_cv": cv,
        "units_mean": units_sum / n if has_units else None,
        "working_set_gb": sum(m.memory_gb for m in models),
        "models": [m.name for m in models],
        "gpu_memory_gb": gpu_memory_gb,
        "never_fit_models": None if cap is None else [m.name for m in models if m.memory_bytes > cap],
        "unknown_requests": unknown,
        "catalog": cat.source,
        "popularity": [{"model": m, "task": t, "requests": c, "share": c / n} for (m, t), c in popularity],
    }
