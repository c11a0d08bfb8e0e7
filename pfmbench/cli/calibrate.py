"""`pfmbench calibrate`: fit unpublished constants, shared by every policy, to a target table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from . import app
from .options import (
    CatalogOpt,
    GpuMemoryOpt,
    GpuOpt,
    JsonOpt,
    ScenarioOpt,
    SeedOpt,
    WarmupOpt,
    WarmupSOpt,
    guard_outputs,
    progress_bar,
)
from .replay import parse_sets


@app.command("calibrate")
def calibrate(
    target: Annotated[str, typer.Argument(help="Target cells: a CSV (policy,metric,value) or TOML file, or "
                                               "paper-table2 (the paper's Table II, built in).")],
    free: Annotated[list[str], typer.Option("--free", help="A constant to fit, KEY=LO:HI (repeatable): a scenario "
                                            "key, warmup, warmup_s, or trace.alpha / trace.rate of a synthetic "
                                            "trace.")],
    trace: Annotated[Path | None, typer.Option("--trace", "-t", help="Parquet trace to replay (default: the "
                                               "scenario's synthetic trace; not with paper-table2).")] = None,
    policy: Annotated[str | None, typer.Option("--policy", "-p", help="Policies to replay, comma-separated "
                                                "(default: the target's).")] = None,
    holdout: Annotated[str | None, typer.Option("--holdout", help="Policies whose cells are not fitted, only "
                                                 "predicted and scored (comma-separated).")] = None,
    scenario: ScenarioOpt = None,
    catalog: CatalogOpt = None,
    gpu: GpuOpt = None,
    gpu_memory: GpuMemoryOpt = None,
    seed: SeedOpt = None,
    warmup: WarmupOpt = None,
    warmup_s: WarmupSOpt = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="A fixed scenario value KEY=VALUE (repeatable).")] = None,
    runs: Annotated[int, typer.Option("--runs", help="paper-table2: seeded runs per evaluation.")] = 40,
    requests: Annotated[int, typer.Option("--requests", help="paper-table2: measured requests per run.")] = 88,
    generations: Annotated[int, typer.Option("--generations", help="Differential-evolution generations (at most).")] = 12,
    popsize: Annotated[int, typer.Option("--popsize", help="Population per free key (scipy's popsize).")] = 6,
    start: Annotated[list[str] | None, typer.Option("--start", help="KEY=VALUE for every free key: a point the "
                                                    "search starts from (e.g. a previous fit).")] = None,
    polish: Annotated[int, typer.Option("--polish", help="At most this many more evaluations refining the best "
                                        "point locally (Nelder-Mead over the continuous keys).")] = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Evaluations run at once on this machine "
                                         "(processes; 1 = in this process).")] = 1,
    executor: Annotated[str, typer.Option("--executor", help="local, or ray (needs pfmbench[ray]).")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address (default: start a local Ray).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="auto, fast or reference.")] = "auto",
    scenario_out: Annotated[str | None, typer.Option("--scenario-out", help="Write the fitted scenario (TOML).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Fit constants the target does not publish (the same value for every policy) to its cells.

    Minimises the mean |ln(pfmbench / target)| over the target's non-zero cells with scipy's differential
    evolution (seeded: same command, same fit); prints the fitted constants, the score and every cell's
    ratio (docs/model.md, "Calibrating").

    Example: pfmbench calibrate paper-table2 --free load_gbps=5:200 --free utilization=0.01:1 --free warmup=0:300 -j 2

    Example: pfmbench calibrate testbed.csv --trace my.parquet --free load_overhead_s=0:5 --holdout lfu --json
    """
    from ..calibrate import PAPER_TARGET, Objective, calibrate, load_target, parse_free
    from ..policies import get_policy

    cells = load_target(target)
    paper = target == PAPER_TARGET
    if paper and (trace is not None or scenario is not None or catalog is not None):
        raise InputError("calibrate paper-table2 replays the Table II reconstruction (docs/model.md): "
                         "--trace, --scenario and --catalog do not apply")
    if not paper and (runs != 40 or requests != 88):
        raise InputError("--runs and --requests apply to paper-table2 only")
    if not 1 <= runs <= 100_000 or not 1 <= requests <= 1_000_000:
        raise InputError("calibrate: --runs must be 1..100000 and --requests 1..1000000")
    chosen = list(dict.fromkeys(c.policy for c in cells))
    if policy is not None:
        chosen = [p.strip().lower() for p in policy.split(",") if p.strip()]
        missing = sorted({c.policy for c in cells} - set(chosen))
        if missing:
            raise InputError(f"--policy: the target has cells of {', '.join(missing)}; replay them too")
    if not paper:
        for p in chosen:
            get_policy(p)  # an unknown name fails here, in one line
    held = [p.strip().lower() for p in (holdout or "").split(",") if p.strip()]
    unknown = [p for p in held if p not in chosen]
    if unknown:
        raise InputError(f"--holdout: {', '.join(unknown)} has no cells in the target")
    fitted_cells = [c for c in cells if c.policy not in held]
    if not any(c.target != 0 for c in fitted_cells):
        raise InputError("--holdout leaves no non-zero cell to fit")
    keys = parse_free(free, trace_keys=paper or trace is None)
    base = parse_sets(sets)
    base.update({k: v for k, v in {"preset": gpu, "gpu_memory_gb": gpu_memory, "seed": seed,
                                   "warmup_requests": warmup, "warmup_s": warmup_s}.items() if v is not None})
    guard_outputs({"--scenario-out": scenario_out}, [target, trace, catalog, scenario],
                  stdout_taken="--json" if json_out else None)
    objective = Objective("table2" if paper else "replay", keys, fitted_cells, chosen, base,
                          str(trace) if trace else None, scenario, str(catalog) if catalog else None, engine,
                          runs, requests)
    objective.values([(k.lo + k.hi) / 2 for k in keys])  # a bad --set or key fails here, before any worker
    with progress_bar("calibrate (generations)") as update:
        fit = calibrate(objective, cells, held, workers=workers, executor=executor, address=address,
                        generations=generations, popsize=popsize, start=_start(start), polish=polish,
                        progress=update)
    if scenario_out is not None:
        _write_scenario(objective, fit.constants, scenario_out)
    if json_out:
        out = {"constants": fit.constants, "score": fit.score}
        if held:
            out["holdout_score"] = fit.holdout_score
        out["cells"] = fit.cells
        out["evaluations"] = fit.evaluations
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(f"fitted {len(keys)} constant(s) to {sum(c.target != 0 for c in fitted_cells)} non-zero cells "
                  f"({fit.evaluations} evaluations, {fit.generations} generations)", markup=False)
    for k in keys:
        console.print(f"  {k.key} = {fit.constants[k.key]:g}   (searched {k.lo:g}..{k.hi:g})", markup=False)
    console.print(f"score (mean |ln ratio|, fitted cells): {fit.score:.4f}  (typical factor ×{2.718281828 ** fit.score:.2f})",
                  markup=False)
    if held:
        console.print(f"hold-out score ({', '.join(held)}, not fitted): {fit.holdout_score:.4f}", markup=False)
    t = Table("policy", "metric", "target", "pfmbench", "ratio")
    for c in fit.cells:
        v, r = c["value"], c["ratio"]
        t.add_row(c["policy"] + (" (held out)" if c["policy"] in held else ""), c["metric"], f"{c['target']:.4g}",
                  "" if v is None else f"{v:.4g}", "" if r is None else f"×{r:.2f}")
    console.print(t)
    if scenario_out is not None:
        console.print(f"scenario: {scenario_out}", markup=False)


def _start(items: list[str] | None) -> dict | None:
    if not items:
        return None
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise InputError(f"--start expects KEY=NUMBER, got {item!r}") from None
        if not eq:
            raise InputError(f"--start expects KEY=NUMBER, got {item!r}")
    return out


def _write_scenario(objective, constants: dict, path: str) -> None:
    """The fitted scenario as TOML: the base scenario (table2's for paper-table2) with the fitted keys."""
    from ..fileio import atomic_path

    over = {**objective.base, **constants}
    if objective.kind == "table2":
        from ..table2 import SETTINGS, scenario

        trace = {f"trace.{k}": v for k, v in SETTINGS.items() if k in ("rate", "alpha")}
        sc = scenario(**{**trace, **over})
    else:
        from ..api import resolve

        sc, _, _ = resolve(objective.scenario, objective.catalog, **over)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(f"# pfmbench calibrate: fitted {', '.join(constants)}\n" + sc.to_toml())
