"""`pfmbench compare` and `pfmbench check`: result files side by side, and a regression check (pfmbench.compare)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..compare import check as check_results
from ..compare import check_tolerance, same, update_baseline
from ..compare import compare as compare_results
from ..fileio import require_file
from . import app
from .options import JsonOpt

MetricOpt = Annotated[list[str] | None, typer.Option("--metric", "-m", help="A metric column (repeatable); "
                                                     "default: every metric of the replay table.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing; the exit code says it all.")]


def _console() -> Console:
    # Off a terminal (a pipe, a CI log) rich would wrap at 80 columns: give the table room instead.
    return Console(highlight=False) if sys.stdout.isatty() else Console(width=200, highlight=False)


def _v(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (bool, str)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.6g}"
    return str(v)


def _pct(v) -> str:
    if v is None:
        return "-"
    if not math.isfinite(v):
        return "new" if v > 0 else str(v)
    return f"{100 * v:+.2f}%"


def _clean(obj):
    """JSON has no inf/nan: null instead."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _rows_table(title: str, keys: list[str], rows: list[dict]) -> Table:
    t = Table(title=title, title_justify="left")
    for k in keys:
        t.add_column(k)
    for r in rows:
        t.add_row(*[_v(r.get(k)) for k in keys])
    return t


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Results file A (replay --out or sweep -o).")],
    b: Annotated[Path, typer.Argument(help="Results file B.")],
    metric: MetricOpt = None,
    changed: Annotated[bool, typer.Option("--changed", help="Show only values that differ.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Matching rows of two result files (same trace, settings, seed and policy) side by side.

    Example: pfmbench compare before.parquet after.parquet --metric system_cost --metric hit_ratio

    Prints A, B, B - A and (B - A) / |A| for each matched row and metric, then the rows found in one
    file only. Exit codes: 0 compared (whatever the differences); 2 unusable input (missing or unreadable
    file, no matching rows, an unknown metric).
    """
    res = compare_results(a, b, metric)
    rows = [r for r in res["rows"] if not changed or not same(r["a"], r["b"])]
    if json_out:
        typer.echo(json.dumps(_clean({**res, "rows": rows}), indent=2))
        return
    console = _console()
    t = Table(title=f"A = {res['a']}   B = {res['b']}", title_justify="left")
    for k in res["keys"]:
        t.add_column(k)
    for col in ("metric", "A", "B", "B - A", "rel"):
        t.add_column(col, justify="left" if col == "metric" else "right")
    for r in rows:
        t.add_row(*[_v(r.get(k)) for k in res["keys"]], r["metric"], _v(r["a"]), _v(r["b"]),
                  _v(r["abs_diff"]), _pct(r["rel_diff"]))
    console.print(t)
    for side, only in (("A", res["only_a"]), ("B", res["only_b"])):
        if only:
            console.print(_rows_table(f"only in {side} ({len(only)} rows)", res["keys"], only))
    differ = sum(1 for r in res["rows"] if not same(r["a"], r["b"]))
    console.print(f"{len(res['rows']) // max(1, len(res['metrics']))} rows matched; {differ} of "
                  f"{len(res['rows'])} values differ; {len(res['only_a'])} rows only in A, "
                  f"{len(res['only_b'])} only in B")


@app.command()
def check(
    results: Annotated[Path, typer.Argument(help="Results to check (replay --out or sweep -o).")],
    baseline: Annotated[Path, typer.Option("--baseline", "-b", help="The baseline results file.")] = ...,
    tolerance: Annotated[float, typer.Option("--tolerance", "-t", help="Allowed relative change, e.g. 0.01 = 1%.")] = 0.01,
    metric: MetricOpt = None,
    update: Annotated[bool, typer.Option("--update", help="Replace the baseline with these results (atomically).")] = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check results against a baseline: exit 1 with a table if any metric moved beyond the tolerance.

    Example: pfmbench check ci.parquet --baseline reports/baseline-ci.parquet --tolerance 0.01

    A value that is worse (by each metric's direction in the replay table) is "regressed", a better one
    "improved"; either fails the check, since the baseline no longer describes the code. Exit codes:
    0 within tolerance (or baseline updated); 1 some value moved, or a baseline row is missing from the
    results; 2 unusable input (missing or unreadable file, no matching rows, a missing metric).
    """
    if update:
        check_tolerance(tolerance)  # refused as in a check, though unused here
        n = update_baseline(results, baseline)
        if json_out:  # a script that asked for JSON gets it, as from a check
            typer.echo(json.dumps({"baseline": str(baseline), "results": str(results), "rows": n, "updated": True},
                                  indent=2))
        elif not quiet:
            print(f"baseline {baseline} updated from {results} ({n} rows)", file=sys.stderr)
        return
    require_file(baseline, "baseline", f"{baseline}: baseline not found (create it with: pfmbench check {results} "
                 f"--baseline {baseline} --update)")
    res = check_results(results, baseline, tolerance, metric)
    if json_out:
        typer.echo(json.dumps(_clean(res), indent=2))
    elif not quiet:
        _print_check(res)
    if not res["ok"]:
        raise typer.Exit(1)


def _print_check(res: dict) -> None:
    console = _console()
    tol = f"{100 * res['tolerance']:g}%"
    if res["changes"]:
        t = Table(title=f"{res['results']} against {res['baseline']} (tolerance {tol})", title_justify="left")
        for k in res["keys"]:
            t.add_column(k)
        for col in ("metric", "baseline", "result", "change", "status"):
            t.add_column(col, justify="left" if col in ("metric", "status") else "right")
        style = {"regressed": "bold red", "improved": "green", "changed": "yellow"}
        for c in res["changes"]:
            t.add_row(*[_v(c.get(k)) for k in res["keys"]], c["metric"], _v(c["baseline"]), _v(c["result"]),
                      _pct(c["rel_diff"]), f"[{style[c['status']]}]{c['status']}[/]")
        console.print(t)
    if res["missing_rows"]:
        console.print(_rows_table(f"in the baseline, missing from the results ({len(res['missing_rows'])} rows)",
                                  res["keys"], res["missing_rows"]))
    if res["new_rows"]:
        console.print(f"note: {len(res['new_rows'])} rows of the results are not in the baseline (not checked)")
    n_reg = sum(c["status"] == "regressed" for c in res["changes"])
    n_imp = sum(c["status"] == "improved" for c in res["changes"])
    n_chg = len(res["changes"]) - n_reg - n_imp
    if res["ok"]:
        console.print(f"ok: {res['matched']} rows x {len(res['metrics'])} metrics within {tol} of {res['baseline']}")
    else:
        console.print(f"FAILED: {n_reg} regressed, {n_imp} improved, {n_chg} changed, "
                      f"{len(res['missing_rows'])} rows missing ({res['matched']} rows matched, tolerance {tol}). "
                      f"If the change is intended, update the baseline: pfmbench check {res['results']} "
                      f"--baseline {res['baseline']} --update")
