"""`pfmbench replay`: replay a trace under one or more policies and compare them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..api import replay_many, resolve
from ..errors import InputError
from ..fileio import is_stdout
from ..formats import choose_format, replay_text
from ..policies import load_policy_file
from ..report import comparison_table
from ..results import TABLE_ROWS, to_json, write_summary
from ..scenario import EDGE_PRESETS, SCENARIOS, resolve_key
from . import app
from .options import (
    CatalogOpt,
    FormatOpt,
    GpuMemoryOpt,
    GpuOpt,
    JsonOpt,
    ScenarioOpt,
    SeedOpt,
    WarmupOpt,
    WarmupSOpt,
    guard_outputs,
    policy_names_help,
    progress_bar,
)


def parse_sets(sets: list[str] | None) -> dict:
    out = {}
    for s in sets or []:
        key, eq, value = s.partition("=")
        if not eq or not key.strip():
            raise InputError(f"--set expects KEY=VALUE, got {s!r}")
        out[key.strip()] = value.strip()
    return out


def refuse_ignored(sets: dict, flags: dict, sc) -> None:
    """A value the run would ignore is refused: a half-life without the exp utility, a linear rate without
    the linear one. `sets`: --set overrides; `flags`: {option: scenario key} of the options given."""
    needs = {("context", "half_life_s"): "exp", ("context", "linear_rate"): "linear"}
    given = [(f"--set {k}", resolve_key(k)) for k in sets] + [(f, resolve_key(k)) for f, k in flags.items()]
    for label, key in given:
        if key in needs and sc.context.utility != needs[key]:
            raise InputError(f"{label} applies to the {needs[key]} utility only, not {sc.context.utility!r}: it "
                             f"would be ignored (drop it, or add --utility {needs[key]})")


def _policy_files(policy: str) -> list[str]:
    return [n.strip() for n in policy.split(",") if n.strip().endswith(".py") or "/" in n]


def refuse_duplicate_policies(policy: str) -> None:
    """Two policies of one run with one name would give two indistinguishable result rows."""
    seen: dict[str, str] = {}
    for spec in filter(None, (n.strip() for n in policy.split(","))):
        name = (load_policy_file(spec).name if spec in _policy_files(spec) else spec).lower()
        if name in seen:
            same = "" if seen[name] == spec else f" ({seen[name]} and {spec})"
            raise InputError(f"--policy: policy {name!r} is given twice{same}")
        seen[name] = spec


def header(r0: dict) -> str:
    """The run's title line: trace, scenario, requests, and the GPU in effect (not just the preset's name)."""
    mem, preset = r0["setting_edge_gpu_memory_gb"], r0["setting_edge_preset"]
    preset_mem = EDGE_PRESETS.get(preset, {}).get("gpu_memory_gb")
    gpu = f"{mem:g} GB GPU memory ({preset} preset" + \
        (f", its {preset_mem:g} GB overridden)" if preset_mem is not None and preset_mem != mem else ")")
    return (f"{r0['trace']} · scenario {r0['scenario']} · {r0['n_requests']:,} requests · {gpu}, "
            f"{r0['setting_edge_tflops']:g} TFLOPS · catalog {r0['catalog']}")


def table_notes(rows: list[dict]) -> list[str]:
    """The notes of every row, once each; a per-policy note names its policies."""
    by_note: dict[str, list[str]] = {}
    for r in rows:
        for n in filter(None, r["notes"].split("; ")):
            by_note.setdefault(n, []).append(r["policy"])
    out = []
    for note, pols in by_note.items():
        out.append(note if len(pols) == len(rows) else f"{note} [{', '.join(pols)}]")
    # Every edge policy with the same summary (not only where nothing was evicted): say so, or the table reads
    # as if the policies were compared and tied by chance.
    edge = [r for r in rows if r.get("engine") != "opt" and r["policy"] != "cloud"]
    if (len(edge) > 1 and not any(n.startswith("no model was ever evicted") for n in by_note)
            and len({tuple(repr(r.get(k)) for k, _, _ in TABLE_ROWS) for r in edge}) == 1):
        out.append(f"every edge policy ({', '.join(r['policy'] for r in edge)}) gives the same numbers on this trace: "
                   "their different choices cost the same here (try a smaller --gpu-memory or a longer trace)")
    queued = [r["policy"] for r in rows if (r["queueing_share"] or 0.0) > 0.5]  # None: opt as a bound
    if queued:  # the server cannot keep up: latency is mostly waiting, whatever the policy does
        cheapest = all(r.get("dispatch") == "cheapest" for r in rows if r["policy"] in queued)
        hint = "--set executors=N or a faster --gpu" if cheapest else \
            "--dispatch cheapest, --set executors=N or a faster --gpu"  # not the rule already in force
        out.append(f"queueing is more than half the edge latency under {', '.join(queued)}; the edge cannot keep "
                   f"up with this trace (try {hint})")
    return out


@app.command()
def replay(
    trace: Annotated[Path | None, typer.Argument(help="Parquet trace (ts, model[, task, units, input_mb]). "
                                                      "Omit to replay the scenario's synthetic trace.")] = None,
    policy: Annotated[str, typer.Option("--policy", "-p", help="Policies, comma-separated: " + policy_names_help()
                                        + "; and opt (the minimum system cost, or a lower bound beyond 100 requests; "
                                        "docs/opt.md), e.g. all,opt.")] = "all",
    scenario: ScenarioOpt = None,
    catalog: CatalogOpt = None,
    gpu: GpuOpt = None,
    gpu_memory: GpuMemoryOpt = None,
    half_life: Annotated[float | None, typer.Option("--half-life", help="Age-of-Context half-life, s (exp utility "
                                                    "only).")] = None,
    utility: Annotated[str | None, typer.Option("--utility", help="Age-of-Context utility: exp, linear or none.")] = None,
    admission: Annotated[str | None, typer.Option("--admission", help="On a miss, load: always, outrank (only if "
                                                  "it outranks every model it would displace), cost (only if it pays back), "
                                                  "or default (each policy's own).")] = None,
    dispatch: Annotated[str | None, typer.Option("--dispatch", help="edge (serve at the edge whatever its queue) or "
                                                 "cheapest (send a request to the cloud when that costs less now).")] = None,
    substitute: Annotated[str | None, typer.Option("--substitute", help="Equivalent models (catalog column "
                                                   "`equivalent`): never, before-cloud (a cached equivalent serves a "
                                                   "request that would go to the cloud, when that costs less now), "
                                                   "before-load (also one that would load).")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="fixed (every model at its catalog "
                                                  "precision) or ladder (a miss that would evict may load the model "
                                                  "at int8/int4, catalog.ladder; upgraded when memory frees).")] = None,
    caching: Annotated[str | None, typer.Option("--caching", help="binary (whole models) or partial (a model "
                                                "may be resident as a prefix of its layers, served by early exit; "
                                                "--set partial_steps=N).")] = None,
    seed: SeedOpt = None,
    warmup: WarmupOpt = None,
    warmup_s: WarmupSOpt = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Any scenario value, KEY=VALUE (repeatable), "
                                                   "e.g. --set cloud.rtt_s=0.2; see `pfmbench scenario show`.")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Write one summary row per policy to this Parquet "
                                            "file (`-`: stdout).")] = None,
    requests_out: Annotated[str | None, typer.Option("--requests-out", help="Write one row per request and policy "
                                                     "to this Parquet file (`-`: stdout).")] = None,
    json_out: JsonOpt = False,
    output_format: FormatOpt = None,
    engine: Annotated[str, typer.Option("--engine", help="auto (numba kernel for built-ins), fast, or reference.")] = "auto",
    policy_timeout: Annotated[float | None, typer.Option("--policy-timeout", help="Seconds of replay any one policy "
                                                         "may take: a drop-in policy exceeding it is stopped with "
                                                         "one error line naming its file (default: no limit).")] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="With several edge servers ([[edges]] in the "
                                         "scenario, or --set edges=N): edges replayed at once, on processes "
                                         "(1 = one after the other in this process; same results).")] = 1,
    executor: Annotated[str, typer.Option("--executor", help="With several edge servers: local (--workers "
                                          "processes), or ray (Ray tasks; needs pfmbench[ray]; same results).")]
    = "local",
    address: Annotated[str | None, typer.Option("--address", help="With --executor ray: a Ray cluster's address "
                                                "(default: start a local Ray).")] = None,
) -> None:
    """Replay a request trace through the edge cache under each policy and compare their costs.

    Example: pfmbench replay trace.parquet --policy lc,lfu,lru --gpu l4 --gpu-memory 20 --out results.parquet

    Example: pfmbench replay --admission outrank --dispatch cheapest --json

    Example: pfmbench replay traces/poisson-5k.parquet --warmup 1000   # measured from a warm cache

    Example: pfmbench replay --policy lru,lc,opt --set trace.requests=60 --gpu-memory 40

    Example: pfmbench replay --substitute before-cloud --json   # GPT3-13B serves GPT3-175B's requests

    Example: pfmbench replay --precision ladder --gpu-memory 40   # int8/int4 copies where fp16 would evict

    Example: pfmbench replay --caching partial --gpu l4   # GPT3-13B (30.8 GB) served from 3/4 of its layers

    Example: pfmbench replay --set device.memory_gb=8   # small models run on the user's phone when that costs least

    Example: pfmbench replay --set checkpoints_in=ssd --set dram_gb=256   # loads from host DRAM, else from SSD

    Example: pfmbench replay --format markdown >> "$GITHUB_STEP_SUMMARY"

    Example: pfmbench replay t.parquet --scenario edges.toml --workers 2   # several edge servers, per edge and total

    Example: pfmbench replay t.parquet --scenario edges.toml --set cooperation=forward   # neighbours serve misses
    """
    overrides = parse_sets(sets)
    overrides.update({k: v for k, v in {"preset": gpu, "gpu_memory_gb": gpu_memory, "half_life_s": half_life,
                                         "utility": utility, "admission": admission, "dispatch": dispatch,
                                         "substitute": substitute, "precision_mode": precision,
                                         "caching": caching,
                                         "seed": seed, "warmup_requests": warmup,
                                         "warmup_s": warmup_s}.items() if v is not None})
    if trace is not None and str(trace) in SCENARIOS and not trace.exists():  # `replay default`: its own trace
        if scenario is not None:
            raise InputError(f"{trace} names a built-in scenario and its trace; give --scenario or it, not both")
        scenario, trace = str(trace), None
    sc, cat, _ = resolve(scenario, str(catalog) if catalog else None, **overrides)
    refuse_ignored(parse_sets(sets), {"--half-life": "half_life_s"} if half_life is not None else {}, sc)
    inputs = [trace, catalog, scenario, sc.catalog.path, *_policy_files(policy)]
    refuse_duplicate_policies(policy)
    if workers < 1 or (workers > 1 and not sc.edges):
        raise InputError(f"--workers {workers}: " + ("must be at least 1" if workers < 1 else "applies to several edge "
                         "servers only ([[edges]] in the scenario, or --set edges=N)"))
    if (executor != "local" or address is not None) and not sc.edges:
        raise InputError(f"--{'executor ' + executor if executor != 'local' else 'address'}: applies to several edge "
                         "servers only ([[edges]] in the scenario, or --set edges=N)")
    fmt = choose_format(output_format, json_out, {"--out": out, "--requests-out": requests_out})
    guard_outputs({"--out": out, "--requests-out": requests_out}, inputs, parquet=["--out", "--requests-out"],
                  stdout_taken="--json" if json_out else None)
    with progress_bar("replay") as update:
        rows = replay_many(str(trace) if trace else None, policy, sc, cat, engine=engine,
                           requests_out=requests_out, progress=update, workers=workers,
                           policy_timeout=policy_timeout, executor=executor, address=address)
    if out is not None:
        write_summary(rows, out)
    if json_out:
        typer.echo(to_json(rows))
        return
    if rows and "edge" in rows[0]:  # several edge servers: the total's table, then each edge's system cost
        _print_edges(rows, fmt, out, is_stdout(out))
        return
    if fmt != "table":  # the same table as below, as Markdown, LaTeX or CSV (pfmbench.formats)
        typer.echo(replay_text(rows, fmt, header(rows[0]), table_notes(rows)), nl=False)
        return
    streamed = is_stdout(out) or is_stdout(requests_out)  # stdout carries Parquet: the table goes to stderr
    # Off a terminal (a pipe, a CI log) rich would wrap the table at 80 columns: give it room instead.
    console = Console(stderr=True) if streamed else Console() if sys.stdout.isatty() else Console(width=160)
    # markup=False: trace names, paths and notes are text ("[lc, lru]" names policies; rich would take it as
    # a style and drop it).
    console.print(header(rows[0]), style="bold", highlight=False, soft_wrap=True, markup=False)
    console.print(comparison_table(rows, None))
    for note in table_notes(rows):
        console.print(f"note: {note}", style="yellow", highlight=False, soft_wrap=True, markup=False)
    if out is not None and not is_stdout(out):
        console.print(f"summary: {out}", markup=False)
    if requests_out is not None and not is_stdout(requests_out):
        console.print(f"requests: {requests_out}", markup=False)


def _print_edges(rows: list[dict], fmt: str, out: str | None, streamed: bool) -> None:
    from ..edges import edge_grid, edges_header
    from ..formats import comparison_grid, print_blocks, render, to_csv
    from ..scenario import TOTAL_EDGE

    if fmt == "csv":
        typer.echo(to_csv(rows), nl=False)
        return
    totals = [r for r in rows if r["edge"] == TOTAL_EDGE]
    notes = table_notes(totals)
    for edge in dict.fromkeys(r["edge"] for r in rows if r["edge"] != TOTAL_EDGE):
        notes += [f"edge {edge}: {n}" for n in table_notes([r for r in rows if r["edge"] == edge]) if n not in notes]
    blocks = [edges_header(rows), comparison_grid(totals, f"Total over {totals[0]['edges']} edge servers"),
              edge_grid(rows), *(f"note: {n}" for n in notes)]
    if fmt != "table":
        typer.echo(render(blocks, fmt), nl=False)
        return
    console = Console(stderr=True) if streamed else Console() if sys.stdout.isatty() else Console(width=160)
    print_blocks(blocks, console)
    if out is not None and not streamed:
        console.print(f"summary: {out}", markup=False)
