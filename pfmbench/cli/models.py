"""`pfmbench models`: the catalog with sizes and fitted accuracy curves."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..api import resolve
from ..catalog import best_accuracy
from . import app
from .options import CatalogOpt, JsonOpt, ScenarioOpt


@app.command()
def models(
    catalog: CatalogOpt = None,
    scenario: ScenarioOpt = None,
    copies_per_task: Annotated[bool | None, typer.Option("--copies-per-task/--shared-tasks",
                               help="One fine-tuned copy per LFM task (the default scenario's choice).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the catalog: size, memory, GFLOPs, context window and the fitted accuracy curve a(K) per task.

    Example: pfmbench models --catalog my_models.csv
    """
    overrides = {} if copies_per_task is None else {"copies_per_task": copies_per_task}
    sc, cat, _ = resolve(scenario, str(catalog) if catalog else None, **overrides)
    rows = []
    for m in cat.models:
        for t in m.tasks:
            rows.append({
                "model": m.name, "family": m.family, "params_m": m.params_m, "precision": m.precision,
                "memory_gb": m.memory_gb, "gflops": m.gflops, "context_window": m.context_window, "task": t.name,
                "curve": t.curve_label, "c": t.c, "alpha": t.alpha,
                "a0": t.accuracy(0), "a1": t.accuracy(1),
                "k_few": t.k_few, "a_k_few": t.accuracy(t.k_few) if t.k_few else None, "a_ref": best_accuracy(t, m.context_window),
            })
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    copies = " · one fine-tuned copy per LFM task (--shared-tasks: as the table prints them)" \
        if sc.catalog.copies_per_task else ""
    table = Table(title=f"catalog {cat.source} · {len(cat.models)} models · {len(rows)} (model, task) pairs{copies}",
                  title_justify="left")
    for col, just in [("model", "left"), ("family", "left"), ("params (M)", "right"), ("prec.", "left"),
                      ("memory GB", "right"), ("GFLOPs", "right"), ("window", "right"), ("task", "left"),
                      ("accuracy curve", "left"), ("a(0)", "right"), ("a(1)", "right"), ("a(k_few)", "right"),
                      ("a_ref", "right")]:
        table.add_column(col, justify=just)
    last = None
    for r in rows:
        first = r["model"] != last
        last = r["model"]
        table.add_row(
            r["model"] if first else "", r["family"] if first else "", f"{r['params_m']:,.0f}" if first else "",
            r["precision"] if first else "", f"{r['memory_gb']:.2f}" if first else "",
            f"{r['gflops']:g}" if first else "", f"{r['context_window']:g}" if first else "", r["task"], r["curve"],
            f"{r['a0']:.2f}", f"{r['a1']:.2f}",
            f"{r['a_k_few']:.2f} @{r['k_few']:g}" if r["k_few"] else "-", f"{r['a_ref']:.2f}")
    Console().print(table)
