"""`pfmbench compare` and `pfmbench check`: result files side by side, and a regression check (pfmbench.compare)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..compare import check as check_results
from ..compare import check_tolerance, same, update_baseline
from ..compare import compare as compare_results
from ..errors import InputError
from ..fileio import require_file
from ..formats import check_blocks, choose_format, compare_blocks, print_blocks, render, to_csv
from . import app
from .options import FormatOpt, JsonOpt

MetricOpt = Annotated[list[str] | None, typer.Option("--metric", "-m", help="A metric column (repeatable); "
                                                     "default: every metric of the replay table.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing; the exit code says it all.")]


def _console() -> Console:
    # Off a terminal (a pipe, a CI log) rich would wrap at 80 columns: give the table room instead.
    return Console(highlight=False) if sys.stdout.isatty() else Console(width=200, highlight=False)


def _clean(obj):
    """JSON has no inf/nan: null instead."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Results file A (replay --out or sweep -o).")],
    b: Annotated[Path, typer.Argument(help="Results file B.")],
    metric: MetricOpt = None,
    changed: Annotated[bool, typer.Option("--changed", help="Show only values that differ.")] = False,
    json_out: JsonOpt = False,
    output_format: FormatOpt = None,
) -> None:
    """Matching rows of two result files (same trace, settings, seed and policy) side by side.

    Example: pfmbench compare before.parquet after.parquet --metric system_cost --metric hit_ratio

    Example: pfmbench compare before.parquet after.parquet --changed --format markdown

    Prints A, B, B - A and (B - A) / |A| for each matched row and metric, then the rows found in one
    file only. Exit codes: 0 compared (whatever the differences); 2 unusable input (missing or unreadable
    file, no matching rows, an unknown metric).
    """
    fmt = choose_format(output_format, json_out)
    res = compare_results(a, b, metric)
    rows = [r for r in res["rows"] if not changed or not same(r["a"], r["b"])]
    if json_out:
        typer.echo(json.dumps(_clean({**res, "rows": rows}), indent=2))
    elif fmt == "csv":  # the matched values, as --json's "rows"
        typer.echo(to_csv(rows, [*res["keys"], "metric", "a", "b", "abs_diff", "rel_diff"]), nl=False)
    elif fmt != "table":
        typer.echo(render(compare_blocks(res, rows), fmt), nl=False)
    else:
        print_blocks(compare_blocks(res, rows), _console())


@app.command()
def check(
    results: Annotated[Path, typer.Argument(help="Results to check (replay --out or sweep -o).")],
    baseline: Annotated[Path, typer.Option("--baseline", "-b", help="The baseline results file.")] = ...,
    tolerance: Annotated[float, typer.Option("--tolerance", "-t", help="Allowed relative change, e.g. 0.01 = 1%.")] = 0.01,
    metric: MetricOpt = None,
    update: Annotated[bool, typer.Option("--update", help="Replace the baseline with these results (atomically).")] = False,
    json_out: JsonOpt = False,
    output_format: FormatOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Check results against a baseline: exit 1 with a table if any metric moved beyond the tolerance.

    Example: pfmbench check ci.parquet --baseline reports/baseline-ci.parquet --tolerance 0.01

    Example: pfmbench check ci.parquet -b reports/baseline-ci.parquet --format markdown >> "$GITHUB_STEP_SUMMARY"

    A value that is worse (by each metric's direction in the replay table) is "regressed", a better one
    "improved"; either fails the check, since the baseline no longer describes the code. Exit codes:
    0 within tolerance (or baseline updated); 1 some value moved, or a baseline row is missing from the
    results; 2 unusable input (missing or unreadable file, no matching rows, a missing metric).
    """
    fmt = choose_format(output_format, json_out)
    if update:
        check_tolerance(tolerance)  # refused as in a check, though unused here
        if fmt != "table":
            raise InputError(f"--format {fmt} applies to a check, not to --update (use --json for an answer to parse)")
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
    elif fmt == "csv":  # the values that moved, as --json's "changes"
        cols = [*res["keys"], "metric", "baseline", "result", "abs_diff", "rel_diff", "status"]
        typer.echo(to_csv(res["changes"], cols), nl=False)
    elif fmt != "table":
        typer.echo(render(check_blocks(res), fmt), nl=False)
    elif not quiet:
        print_blocks(check_blocks(res), _console())
    if not res["ok"]:
        raise typer.Exit(1)

