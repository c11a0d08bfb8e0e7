"""`pfmbench table2`: the paper's Table II restated, pfmbench's value beside the paper's for every cell."""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated

import typer

from ..errors import InputError
from . import app
from .options import FormatOpt, JsonOpt, WarmupOpt, WarmupSOpt
from .replay import parse_sets


@app.command("table2")
def table2(
    runs: Annotated[int, typer.Option("--runs", help="Seeded runs to average (each from an empty cache).")] = 40,
    requests: Annotated[int, typer.Option("--requests", help="Requests per run (Table II implies about 88).")] = 88,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Change a reconstruction choice for all five "
                                                   "policies, KEY=VALUE (scenario keys, or rate / alpha of the "
                                                   "trace), e.g. --set gpu_memory_gb=80.")] = None,
    calibrated: Annotated[bool, typer.Option("--calibrated", help="The calibrated view: the constants `pfmbench "
                                             "calibrate paper-table2` fitted (stored with pfmbench), instead of "
                                             "the physical view's sourced ones.")] = False,
    warmup: WarmupOpt = None,
    warmup_s: WarmupSOpt = None,
    json_out: JsonOpt = False,
    output_format: FormatOpt = None,
) -> None:
    """Replay the documented reconstruction of the paper's Table II and print every cell beside the paper's.

    Two views (docs/model.md, "Table II restated"): physical (the default: MODEL.md's sourced constants) and
    --calibrated (the unpublished constants fitted once for all five policies). Either way every choice is
    made once for all five policies; the ratio column says how far each cell is from the paper's, and the
    score line the mean |ln ratio| over the non-zero cells of the four edge columns.

    Example: pfmbench table2 --runs 40 --json

    Example: pfmbench table2 --calibrated

    Example: pfmbench table2 --format latex > table2.tex
    """
    from ..formats import choose_format, render, table2_grid, to_csv
    from ..table2 import distance, restate, side_by_side

    fmt = choose_format(output_format, json_out)

    if not 1 <= runs <= 100_000 or not 1 <= requests <= 1_000_000:
        raise InputError("table2: --runs must be 1..100000 and --requests 1..1000000")
    overrides = parse_sets(sets)
    overrides.update({k: v for k, v in {"warmup_requests": warmup, "warmup_s": warmup_s}.items() if v is not None})
    cells = side_by_side(restate(runs, requests, calibrated=calibrated, **overrides))
    if json_out:
        typer.echo(json.dumps(cells, indent=2))
        return
    grid = table2_grid(cells, runs, requests)  # pfmbench.formats: the same cells in every format
    d = distance(cells)
    note = (f"{'calibrated' if calibrated else 'physical'} view: mean |ln(pfmbench / paper)| over the non-zero "
            f"cells of the four edge columns = {d:.3f} (a typical factor of ×{math.exp(d):.2f}); choices, "
            "sources and fitted values: docs/model.md, section \"Table II restated\"")
    if fmt == "csv":
        typer.echo(to_csv(cells), nl=False)
        return
    if fmt != "table":
        typer.echo(render([grid, note], fmt), nl=False)
        return
    from rich.console import Console

    from ..formats import to_rich

    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(to_rich(grid))
    console.print(note, style="dim", markup=False)
