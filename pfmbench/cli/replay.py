"""`pfmbench replay`: replay a trace under one or more policies and compare them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..api import replay_many
from ..errors import InputError
from ..report import comparison_table
from ..results import to_json, write_summary
from . import app
from .options import CatalogOpt, JsonOpt, ScenarioOpt, SeedOpt, progress_bar


def parse_sets(sets: list[str] | None) -> dict:
    out = {}
    for s in sets or []:
        key, eq, value = s.partition("=")
        if not eq or not key.strip():
            raise InputError(f"--set expects KEY=VALUE, got {s!r}")
        out[key.strip()] = value.strip()
    return out


@app.command()
def replay(
    trace: Annotated[Path | None, typer.Argument(help="Parquet trace (ts, model[, task, units, input_mb]). "
                                                      "Omit to replay the scenario's synthetic trace.")] = None,
    policy: Annotated[str, typer.Option("--policy", "-p", help="Policies, comma-separated: lc, lfu, lru, fifo, "
                                        "random, cloud, a path to a .py policy, or 'all' (the paper's five + lru).")] = "all",
    scenario: ScenarioOpt = None,
    catalog: CatalogOpt = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="Edge GPU preset: a100-80, h100-80, l40s, l4, rtx4090 "
                                            "(memory, TFLOPS, power, load rate; docs/model.md).")] = None,
    gpu_memory: Annotated[float | None, typer.Option("--gpu-memory", help="Edge GPU memory, GB.")] = None,
    half_life: Annotated[float | None, typer.Option("--half-life", help="Age-of-Context half-life, s (exp utility).")] = None,
    utility: Annotated[str | None, typer.Option("--utility", help="Age-of-Context utility: exp, linear or none.")] = None,
    admission: Annotated[str | None, typer.Option("--admission", help="On a miss, load: always, outrank (only if "
                                                  "it would not be the first victim), cost (only if it pays back), "
                                                  "or default (each policy's own).")] = None,
    dispatch: Annotated[str | None, typer.Option("--dispatch", help="edge (serve at the edge whatever its queue) or "
                                                 "cheapest (send a request to the cloud when that costs less now).")] = None,
    seed: SeedOpt = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Any scenario value, KEY=VALUE (repeatable), "
                                                   "e.g. --set cloud.rtt_s=0.2; see `pfmbench scenario show`.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write one summary row per policy to this Parquet file.")] = None,
    requests_out: Annotated[Path | None, typer.Option("--requests-out", help="Write one row per request and policy to this Parquet file.")] = None,
    json_out: JsonOpt = False,
    engine: Annotated[str, typer.Option("--engine", help="auto (numba kernel for built-ins), fast, or reference.")] = "auto",
) -> None:
    """Replay a request trace through the edge cache under each policy and compare their costs.

    Example: pfmbench replay trace.parquet --policy lc,lfu,lru --gpu l4 --gpu-memory 20 --out results.parquet

    Example: pfmbench replay --admission outrank --dispatch cheapest --json
    """
    overrides = parse_sets(sets)
    overrides.update({k: v for k, v in {"preset": gpu, "gpu_memory_gb": gpu_memory, "half_life_s": half_life, "utility": utility,
                                         "admission": admission, "dispatch": dispatch, "seed": seed}.items() if v is not None})
    with progress_bar("replay") as update:
        rows = replay_many(str(trace) if trace else None, policy, scenario,
                           str(catalog) if catalog else None, engine=engine, requests_out=requests_out,
                           progress=update, **overrides)
    if out is not None:
        write_summary(rows, out)
    if json_out:
        typer.echo(to_json(rows))
        return
    r0 = rows[0]
    title = (f"{r0['trace']} · scenario {r0['scenario']} · {r0['n_requests']:,} requests · "
             f"GPU {r0['setting_edge_preset']}, {r0['setting_edge_gpu_memory_gb']:g} GB")
    # Off a terminal (a pipe, a CI log) rich would wrap the table at 80 columns: give it room instead.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(title, style="bold", highlight=False)
    console.print(comparison_table(rows, None))
    queued = [r["policy"] for r in rows if r["queueing_share"] > 0.5]
    if queued:  # the server cannot keep up: latency is mostly waiting, whatever the policy does
        console.print(f"note: queueing is more than half the edge latency under {', '.join(queued)}; "
                      "the edge cannot keep up with this trace (try --dispatch cheapest, --set executors=N or a "
                      "faster --gpu)", style="yellow", highlight=False)
    if out is not None:
        console.print(f"summary: {out}")
    if requests_out is not None:
        console.print(f"requests: {requests_out}")
