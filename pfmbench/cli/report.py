"""`pfmbench report`: one self-contained HTML page from result files (pfmbench.htmlreport)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from . import app


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="Results files (replay --out, sweep -o); one section each.")],
    output: Annotated[str, typer.Option("-o", "--output", help="The HTML file to write (`-`: stdout).")] = ...,
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="Sweeps: a metric to draw against each "
                                                     "swept axis (repeatable; default system_cost_per_request).")] = None,
    title: Annotated[str, typer.Option("--title", help="The page's title.")] = "pfmbench report",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line on stderr naming the report.")] = False,
) -> None:
    """Write one self-contained HTML report: settings, comparison table, cost terms, sweep figures.

    Example: pfmbench report results.parquet memory.parquet -o report.html

    Every figure is inline SVG and the page loads nothing from elsewhere (no script, font or CDN), so it
    can be mailed or attached to a CI run as it is. Exit codes: 0 written; 2 unusable input (a missing or
    unreadable results file, a request log, an unknown metric) or an output that breaks the output rules.
    """
    from ..htmlreport import write_report

    write_report(results, output, metric, title)
    if not quiet and output != "-":
        print(f"report: {output}", file=sys.stderr)
