"""`pfmbench scenario show`: the resolved scenario values."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..scenario import load_scenario
from . import app
from .options import JsonOpt, ScenarioOpt
from .replay import parse_sets

scenario_app = typer.Typer(help="Inspect scenarios.\n\nExample: pfmbench scenario show --set gpu_memory_gb=40",
                           no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("show")
def show(
    scenario: ScenarioOpt = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a value, KEY=VALUE (repeatable).")] = None,
    json_out: JsonOpt = False,
    toml_out: Annotated[bool, typer.Option("--toml", help="Print the scenario as TOML (a starting point for --scenario).")] = False,
) -> None:
    """Print every resolved scenario value: edge, cloud, context, weights, catalog and synthetic trace.

    Example: pfmbench scenario show --scenario my.toml --set cloud.rtt_s=0.2
    """
    sc = load_scenario(scenario, **parse_sets(sets))
    # Several edge servers ([[edges]]): each edge's resolved [edge] values (its keys over the [edge] section)
    edges = {site.name: dataclasses.asdict(sc.edge_scenario(site).edge) for site in sc.edges}
    if json_out:
        extra = {"cooperation": sc.cooperation, "edges": edges} if edges else {}
        typer.echo(json.dumps({**sc.as_dict(), **extra}, indent=2))
        return
    if toml_out:
        typer.echo(sc.to_toml(), nl=False)
        return
    table = Table(title=f"scenario {sc.name} ({sc.source})", title_justify="left")
    table.add_column("key")
    table.add_column("value", justify="right")
    table.add_row("derived: R_edge GFLOP/s", f"{sc.edge_rate:,.0f}")
    table.add_row("derived: R_cloud GFLOP/s", f"{sc.cloud_rate:,.0f}")
    for k, v in sc.as_dict().items():
        table.add_row(k, str(v))
    Console().print(table)
    if edges:
        et = Table(title=f"{len(edges)} edge servers (cooperation {sc.cooperation}): each one's edge.* values",
                   title_justify="left")
        et.add_column("key")
        for name in edges:
            et.add_column(name, justify="right")
        for k in next(iter(edges.values())):
            et.add_row(f"edge.{k}", *(str(values[k]) for values in edges.values()))
        Console().print(et)
    Console().print("Sources of every default: docs/model.md")
