"""`pfmbench table2`: the paper's Table II restated, pfmbench's value beside the paper's for every cell."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..errors import InputError
from . import app
from .options import JsonOpt
from .replay import parse_sets


@app.command("table2")
def table2(
    runs: Annotated[int, typer.Option("--runs", help="Seeded runs to average (each from an empty cache).")] = 40,
    requests: Annotated[int, typer.Option("--requests", help="Requests per run (Table II implies about 88).")] = 88,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Change a reconstruction choice for all five "
                                                   "policies, KEY=VALUE (scenario keys, or rate / alpha of the "
                                                   "trace), e.g. --set gpu_memory_gb=80.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay the documented reconstruction of the paper's Table II and print every cell beside the paper's.

    The choices the paper does not publish are made once for all five policies (docs/model.md, "Table II
    restated"); the ratio column says how far each cell is from the paper's.

    Example: pfmbench table2 --runs 40 --json
    """
    from ..table2 import POLICIES, restate, side_by_side

    if not 1 <= runs <= 100_000 or not 1 <= requests <= 1_000_000:
        raise InputError("table2: --runs must be 1..100000 and --requests 1..1000000")
    overrides = parse_sets(sets)
    cells = side_by_side(restate(runs, requests, **overrides))
    if json_out:
        typer.echo(json.dumps(cells, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Table II restated: mean of {runs} runs of {requests} requests "
                        "(pfmbench / paper, ratio)", title_justify="left")
    table.add_column("metric", style="bold")
    for p in POLICIES:
        table.add_column(p, justify="right")
    by = {(c["metric"], c["policy"]): c for c in cells}
    for key, label in dict.fromkeys((c["metric"], c["label"]) for c in cells):
        row = []
        for p in POLICIES:
            c = by[key, p]
            pct = key == "edge_execution_ratio"
            f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.4f}" if abs(v) < 0.1 else f"{v:.2f}")
            ratio = f"×{c['ratio']:.2f}" if c["ratio"] is not None else ("=" if c["pfmbench"] == 0 else "(paper 0)")
            row.append(f"{f(c['pfmbench'])} / {f(c['paper'])} {ratio}")
        table.add_row(label, *row)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(table)
    console.print("choices and sources: docs/model.md, section \"Table II restated\"", style="dim")
