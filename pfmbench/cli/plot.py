"""`pfmbench plot`: figures from result files and request logs (pfmbench.plot; needs pfmbench[plot])."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from . import app


@app.command()
def plot(
    results: Annotated[Path, typer.Argument(help="A results file (replay --out, sweep -o) or a --requests-out log.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Figure file: .png, .svg or .pdf (vector).")] = ...,
    kind: Annotated[str, typer.Option("--kind", "-k", help="auto, cost (stacked cost terms per policy), sweep "
                                      "(a metric against a swept axis) or timeline (from a request log).")] = "auto",
    x: Annotated[str | None, typer.Option("--x", help="sweep: the axis column on x (default: the first swept one).")] = None,
    metric: Annotated[str | None, typer.Option("--metric", "-m", help="sweep: the metric on y (default system_cost).")] = None,
    where: Annotated[list[str] | None, typer.Option("--where", help="Keep rows with COLUMN=VALUE (repeatable).")] = None,
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="Policies to show, comma-separated (default: all in the file).")] = None,
    bins: Annotated[int | None, typer.Option("--bins", help="timeline: number of time bins (default 60).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line on stderr naming the figure.")] = False,
) -> None:
    """Draw a paper-ready figure: Table II's cost terms, a metric against a swept axis, or a request timeline.

    Example: pfmbench plot sweep.parquet -o memory.pdf --x gpu_memory_gb --metric system_cost_per_request

    Example: pfmbench plot requests.parquet -o timeline.png --policy lc,lfu

    Exit codes: 0 figure written; 2 unusable input (missing file or column, an option the figure does not
    use, matplotlib not installed).
    """
    from ..plot import plot as draw

    filters = {}
    for w in where or []:
        key, eq, value = w.partition("=")
        if not eq or not key.strip():
            raise InputError(f"--where expects COLUMN=VALUE, got {w!r}")
        filters[key.strip()] = value.strip()
    if bins is not None and bins < 1:
        raise InputError(f"--bins must be at least 1, got {bins}")
    policies = [p.strip() for p in policy.split(",") if p.strip()] if policy else None
    draw(results, output, kind=kind, x=x, metric=metric, where=filters, policies=policies, bins=bins)
    if not quiet:
        print(f"figure: {output}", file=sys.stderr)
