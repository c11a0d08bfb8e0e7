"""`pfmbench sweep`: replay a grid of settings x traces x seeds under several policies (pfmbench.sweep)."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..sweep import SweepSpec, TraceRef, expand, load_sweep_file, parse_grid_option, run_sweep
from . import app
from .options import CatalogOpt, JsonOpt, ScenarioOpt, WarmupOpt, WarmupSOpt, guard_outputs, policy_names_help
from .replay import parse_sets


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, a CI runner, a scheduler): stop as on Ctrl-C, keeping finished points."""


def _on_sigterm(signum, frame):
    raise Terminated


@contextmanager
def _sweep_progress(show: bool):
    """Yield (update(done, total), echo(line)): a bar with ETA on stderr when it is a terminal."""
    if not show or not sys.stderr.isatty():
        yield (lambda done, total: None), (lambda line: print(line, file=sys.stderr))
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, highlight=False)
    with Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("points"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("sweep", total=None)
        yield (lambda done, total: bar.update(task, completed=done, total=total)), \
            (lambda line: console.print(line, markup=False, soft_wrap=True))


def _seeds(seeds: str | None, seed: int | None) -> list[int] | None:
    if seeds is None:
        return None if seed is None else [seed]
    out = []
    for s in seeds.split(","):
        s = s.strip()
        if not s:
            continue
        if not s.isdigit():
            raise InputError(f"--seeds expects integers >= 0 separated by commas, got {seeds!r}")
        out.append(int(s))
    if seed is not None:
        out.append(seed)
    if not out:
        raise InputError("--seeds is empty")
    return out


def _print_points(points, json_out: bool) -> None:
    rows = [{"point": p.index, "run_id": p.run_id, **p.axes, "trace": p.trace.name or "scenario", "seed": p.seed,
             "policies": list(p.policies)} for p in points]
    if json_out:
        import json

        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        values = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("point", "run_id", "policies") and v is not None)
        typer.echo(f"{r['point']}\t{r['run_id']}\t{values}")


@app.command()
def sweep(
    target: Annotated[Path | None, typer.Argument(
        help="A sweep file (.toml), or a Parquet trace for a quick grid given by --set-grid. "
             "Omit both to sweep the scenario's own synthetic trace.")] = None,
    output: Annotated[str | None, typer.Option("-o", "--output", help="Parquet file: one row per (point, policy) "
                                               "(`-`: stdout; required unless --dry-run).")] = None,
    set_grid: Annotated[list[str] | None, typer.Option(
        "--set-grid", help="A grid axis KEY=V1,V2,... over any scenario key (repeatable; axes multiply).")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="A fixed scenario value KEY=VALUE (repeatable).")] = None,
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="Policies, comma-separated: " + policy_names_help()
                                                + "; and opt (default: the sweep file's, else all).")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="Seeds, comma-separated: one point per seed.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="One seed (same as --seeds N).")] = None,
    warmup: WarmupOpt = None,
    warmup_s: WarmupSOpt = None,
    scenario: ScenarioOpt = None,
    catalog: CatalogOpt = None,
    engine: Annotated[str | None, typer.Option("--engine", help="auto, fast or reference.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Points run at once on this machine "
                                         "(processes; 1 = in this process).")] = 1,
    executor: Annotated[str, typer.Option("--executor", help="local, or ray (needs pfmbench[ray]).")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (default: start a local Ray).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Keep the points an interrupted or failed run of this "
                                         "sweep finished; compute only the rest.")] = False,
    json_out: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line on stderr.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the grid and print its points (run id and "
                                          "values; --json: as JSON); run nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Run a large sweep (1,000 points or more, or 1e9 "
                                      "requests replayed in all): without it, it is refused with an estimate.")] = False,
) -> None:
    """Replay every point of a grid (scenario keys x traces x seeds) under each policy; write all rows.

    Example: pfmbench sweep --set-grid gpu_memory_gb=16,24,40,80 --set-grid half_life_s=60,600 --seeds 1,2,3 -o sweep.parquet

    Example: pfmbench sweep reports/calibration.toml -o cal.parquet --resume

    Example: pfmbench sweep traces/poisson-5k.parquet --set-grid warmup=0,500,2000 -p lc,lfu -o warm.parquet

    Exit codes: 0 all points done; 1 some point failed (reported with its grid values; the output
    holds the others; --resume redoes only the missing); 2 unusable sweep file or option (nothing run);
    130 on Ctrl-C and 143 on SIGTERM (finished points are kept for --resume).
    """
    if target is not None and target.suffix.lower() == ".toml":
        spec = load_sweep_file(target)
    else:
        spec = SweepSpec(source="command line")
        if target is not None:
            spec.traces = [TraceRef("file", str(target), path=str(target))]
    if policy is not None:
        spec.policies = [p.strip() for p in policy.split(",") if p.strip()]
    chosen_seeds = _seeds(seeds, seed)
    if chosen_seeds is not None:
        spec.seeds = chosen_seeds
    if scenario is not None:
        spec.scenario = scenario
    if catalog is not None:
        spec.catalog = str(catalog)
    if engine is not None:
        spec.engine = engine
    spec.fixed.update(parse_sets(sets))
    spec.fixed.update({k: str(v) for k, v in {"warmup_requests": warmup, "warmup_s": warmup_s}.items() if v is not None})
    for item in set_grid or []:
        key, values = parse_grid_option(item)
        spec.groups.append(((key,), [(v,) for v in values]))

    if dry_run:
        _print_points(expand(spec, confirmed=True), json_out)  # runs nothing: no confirmation needed
        return
    if output is None:
        raise InputError("sweep: give the output file, -o OUT.parquet")
    # run_sweep refuses an output that is an input; here: stdout is for one thing, never Parquet on a terminal.
    guard_outputs({"-o": output}, [], parquet=["-o"], stdout_taken="--json" if json_out else None)
    try:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding program): leave its signals alone
        old = None
    try:
        with _sweep_progress(not quiet) as (update, echo):
            def failed(point, message):
                echo(f"error: {point.describe()}: {message}")

            result = run_sweep(spec, output, workers=workers, executor=executor, address=address, resume=resume,
                               progress=update, on_failure=failed, confirm_large=yes)
    except KeyboardInterrupt as e:
        code = 143 if isinstance(e, Terminated) else 130
        print(f"error: sweep {'terminated' if code == 143 else 'interrupted'}; finished points are kept: "
              f"rerun with --resume to compute only the rest", file=sys.stderr)
        raise typer.Exit(code) from None
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    if json_out and result.out is not None:
        import polars as pl

        from ..results import to_json

        typer.echo(to_json(pl.read_parquet(result.out).to_dicts()))
    if result.lost:
        print(f"error: {result.lost}", file=sys.stderr)
    if result.failed:
        print(f"error: {len(result.failed)} of {result.points} points failed"
              + (f"; the other points' {result.rows} rows are in {output}" if result.rows else "")
              + "; fix the cause and rerun with --resume to compute only the missing points", file=sys.stderr)
        raise typer.Exit(1)
    if not quiet:
        resumed = f" ({result.resumed} resumed)" if result.resumed else ""
        print(f"sweep: {result.points} points{resumed}, {result.rows} rows -> {output}", file=sys.stderr)
