"""Comparing result files (`replay --out`, `sweep -o`) and checking results against a baseline.

Rows are matched on their key columns: trace, scenario, policy, seed, catalog, every `setting_*`
column and every sweep grid key, as far as both files have them. Every other numeric column is a metric,
taken from the data itself, so new or renamed metrics need no change here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .fileio import require_file

KEY_COLUMNS = ("trace", "scenario", "policy", "seed", "catalog")
# Provenance, not identity: a file run from another folder or by another version still matches.
IGNORED_COLUMNS = ("run_id", "engine", "pfmbench_version", "setting_source")
ABS_TOLERANCE = 1e-12  # below this a difference is rounding, whatever the relative tolerance


@dataclass
class Results:
    path: str
    rows: list[dict]
    columns: list[str]
    keys: list[str]
    metrics: list[str]
    axes: list[str]


def _is_scenario_key(name: str) -> bool:
    """A column named by a scenario key (a sweep's grid axis), for files whose metadata was lost."""
    if name in KEY_COLUMNS or name in IGNORED_COLUMNS:
        return False
    try:
        from .scenario import _key_index

        return name in _key_index()
    except Exception:  # noqa: BLE001  (if the scenario module changes shape, rely on the file's metadata)
        return False


def read_results(path: str | Path) -> Results:
    """A summary file (replay --out or sweep output) with its key and metric columns."""
    p = Path(path)
    require_file(p, "results")
    try:
        import polars as pl

        df = pl.read_parquet(p)
    except Exception as e:  # noqa: BLE001  (not Parquet, truncated, ...)
        raise InputError(f"{p}: cannot read Parquet: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if df.height == 0:
        raise InputError(f"{p}: has no rows")
    if "policy" not in df.columns:
        raise InputError(f"{p}: not a pfmbench results file (no 'policy' column)")
    if {"request", "outcome", "ts"} <= set(df.columns):  # as plot tells a log; its columns share metric names
        raise InputError(f"{p}: is a per-request log (--requests-out), not summary rows (replay --out, sweep -o)")
    from .sweep import sweep_axes

    axes = [a for a in sweep_axes(p) if a in df.columns]
    axes += [c for c in df.columns if c not in axes and c not in KEY_COLUMNS and _is_scenario_key(c)]
    keys = [c for c in df.columns if c in KEY_COLUMNS or c in axes
            or (c.startswith("setting_") and c not in IGNORED_COLUMNS)]
    numeric = {c for c, t in df.schema.items() if t.is_numeric()}
    metrics = [c for c in df.columns if c in numeric and c not in keys and c not in IGNORED_COLUMNS]
    return Results(str(p), df.to_dicts(), df.columns, keys, metrics, axes)


def _norm(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return v


@dataclass
class Matched:
    keys: list[str]  # the key columns both files have
    pairs: list[tuple[dict, dict]] = field(default_factory=list)
    only_a: list[dict] = field(default_factory=list)
    only_b: list[dict] = field(default_factory=list)


def match(a: Results, b: Results) -> Matched:
    """Pair rows with equal key values (the n-th such row of A with the n-th of B)."""
    keys = [k for k in a.keys if k in b.keys]
    m = Matched(keys)

    def index(rows):
        out, seen = {}, {}
        for r in rows:
            k = tuple(_norm(r.get(c)) for c in keys)
            n = seen[k] = seen.get(k, -1) + 1
            out[(k, n)] = r
        return out

    ia, ib = index(a.rows), index(b.rows)
    for k, ra in ia.items():
        if k in ib:
            m.pairs.append((ra, ib[k]))
        else:
            m.only_a.append(ra)
    m.only_b = [rb for k, rb in ib.items() if k not in ia]
    return m


def better_of(metric: str) -> str | None:
    """'min' or 'max' from results.TABLE_ROWS, or None for a metric without a direction."""
    from .results import TABLE_ROWS

    return {k: b for k, _, b in TABLE_ROWS}.get(metric)


def choose_metrics(a: Results, b: Results, metrics: list[str] | None) -> list[str]:
    """The metrics asked for (each must be in both files), or the report's metrics both files have."""
    if metrics:
        for m in metrics:
            for r in (a, b):
                if m not in r.metrics:
                    raise InputError(f"{r.path}: no metric {m!r} (metrics: {', '.join(r.metrics)})")
        return list(metrics)
    from .results import REPORT_METRICS

    return [m for m in REPORT_METRICS if m in a.metrics and m in b.metrics]


def display_keys(m: Matched, rows: list[dict]) -> list[str]:
    """The key columns worth showing: those that differ between rows (grid keys before settings)."""
    varying = [k for k in m.keys if len({_norm(r.get(k)) for r in rows}) > 1]
    axes_like = [k for k in varying if not k.startswith("setting_")]
    settings = [k for k in varying if k.startswith("setting_")]
    # A grid key and its setting_* column vary together: show the shorter name only.
    shown = [k for k in axes_like if k != "policy"]
    if not any(_is_scenario_key(k) for k in shown):
        shown += settings
    return [*shown, "policy"]


def same(x, y) -> bool:
    """Equal values, NaN equal to NaN: a file compared with itself has no differences."""
    return x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))


def _diff(x, y) -> tuple[float | None, float | None]:
    if x is None or y is None or not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
        return None, None
    d = float(y) - float(x)
    rel = d / abs(x) if x else (0.0 if d == 0 else math.inf)
    return d, rel


def compare(a_path, b_path, metrics: list[str] | None = None) -> dict:
    """Matching rows of two result files side by side: one entry per (row, metric), plus unmatched rows."""
    a, b = read_results(a_path), read_results(b_path)
    m = match(a, b)
    if not m.pairs:
        raise InputError(f"{b.path}: no row matches a row of {a.path} (same trace, settings, seed and policy)")
    chosen = choose_metrics(a, b, metrics)
    if not chosen:
        raise InputError(f"{a.path} and {b.path} have no metric in common")
    shown = display_keys(m, [r for pair in m.pairs for r in pair] + m.only_a + m.only_b)
    entries = []
    for ra, rb in m.pairs:
        for metric in chosen:
            d, rel = _diff(ra.get(metric), rb.get(metric))
            entries.append({**{k: ra.get(k) for k in shown}, "metric": metric, "a": ra.get(metric),
                            "b": rb.get(metric), "abs_diff": d, "rel_diff": rel})
    return {"a": a.path, "b": b.path, "keys": shown, "metrics": chosen, "rows": entries,
            "only_a": [{k: r.get(k) for k in shown} for r in m.only_a],
            "only_b": [{k: r.get(k) for k in shown} for r in m.only_b]}


def check_tolerance(tolerance: float) -> None:
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise InputError(f"--tolerance must be a number >= 0, got {tolerance}")


def check(results_path, baseline_path, tolerance: float = 0.01, metrics: list[str] | None = None) -> dict:
    """Results against a baseline: every metric out of tolerance, as regressed, improved or changed.

    ok is False if any value moved beyond `tolerance` (relative to the baseline, either way: the
    baseline is stale either way) or a baseline row has no match in the results.
    """
    check_tolerance(tolerance)
    base, res = read_results(baseline_path), read_results(results_path)
    m = match(base, res)
    if not m.pairs:
        raise InputError(f"{res.path}: no row matches the baseline {base.path} "
                         "(same trace, settings, seed and policy); is it the right baseline?")
    chosen = choose_metrics(base, res, metrics)
    if not metrics:
        from .results import REPORT_METRICS

        missing = [x for x in REPORT_METRICS if (x in base.metrics) != (x in res.metrics)]
        if missing:
            where = base.path if missing[0] not in base.metrics else res.path
            raise InputError(f"{where}: has no metric {missing[0]!r}; regenerate the baseline")
    if not chosen:
        raise InputError(f"{base.path} and {res.path} have no metric in common")
    shown = display_keys(m, [r for pair in m.pairs for r in pair] + m.only_a + m.only_b)
    changes = []
    for rb, rr in m.pairs:
        for metric in chosen:
            x, y = rb.get(metric), rr.get(metric)
            if same(x, y):
                continue
            d, rel = _diff(x, y)
            if d is not None and (abs(d) <= ABS_TOLERANCE or abs(d) <= tolerance * abs(x)):
                continue
            better = better_of(metric)
            if d is None or math.isnan(d) or better is None:
                status = "changed"
            else:
                status = "regressed" if (d > 0) == (better == "min") else "improved"
            changes.append({**{k: rb.get(k) for k in shown}, "metric": metric, "baseline": x, "result": y,
                            "abs_diff": d, "rel_diff": rel, "status": status})
    missing_rows = [{k: r.get(k) for k in shown} for r in m.only_a]
    new_rows = [{k: r.get(k) for k in shown} for r in m.only_b]
    return {"results": res.path, "baseline": base.path, "tolerance": tolerance, "metrics": chosen,
            "keys": shown, "matched": len(m.pairs), "changes": changes, "missing_rows": missing_rows,
            "new_rows": new_rows, "ok": not changes and not missing_rows}


def update_baseline(results_path, baseline_path) -> int:
    """Copy a (readable) results file over the baseline atomically; returns its row count."""
    import shutil

    from .fileio import atomic_path

    res = read_results(results_path)
    with atomic_path(baseline_path) as tmp:
        shutil.copyfile(results_path, tmp)
    return len(res.rows)
