"""`pfmbench import`, `pfmbench export` and `pfmbench trace inspect|validate`: thin wrappers over pfmbench.trace."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..catalog import load_catalog
from ..errors import InputError
from ..trace.schema import problem_count, trace_problems
from . import app
from .options import CatalogOpt, FormatOpt, ScenarioOpt, guard_outputs, progress_bar

IMPORT_FORMATS = ("alibaba-genai", "azure-llm", "csv")
EXPORT_FORMATS = ("libcachesim",)
SDXL_FRACTION = 0.25  # importers.SDXL_FRACTION, kept here so that --help need not load polars (tested)

trace_app = typer.Typer(help="Look at trace files.\n\nExample: pfmbench trace inspect t.parquet",
                        no_args_is_help=True)
app.add_typer(trace_app, name="trace")


MAX_SOURCE_GB = 4.0  # importers read the whole source into memory, a few times its size at peak


def _check_source_size(src: Path, force: bool) -> None:
    """Show the size of a large source, and refuse one beyond MAX_SOURCE_GB unless forced."""
    try:
        size = src.stat().st_size / 1e9
    except OSError:
        return  # the importer reports a missing or unreadable file
    if size > MAX_SOURCE_GB and not force:
        raise InputError(f"{src}: {size:.1f} GB is beyond the {MAX_SOURCE_GB:g} GB limit: an import holds its "
                         "source in memory, several times its size at peak; pass --force to import it")
    if size > 0.1:
        print(f"import: {src} is {size:.2f} GB, held in memory whole (several times that at peak)",
              file=sys.stderr)


def _only(fmt: str, allowed: str, **given) -> None:
    for name, value in given.items():
        if value not in (None, False):
            raise InputError(f"import: --{name.replace('_', '-')} applies to {allowed} only, not {fmt}")


@app.command("import")
def import_(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=f"One of: {', '.join(IMPORT_FORMATS)}.")],
    src: Annotated[Path, typer.Argument(metavar="SRC", help="Source CSV file.")],
    output: Annotated[str, typer.Option("-o", "--output", help="Parquet trace to write (`-`: stdout).")],
    catalog: CatalogOpt = None,
    catalog_out: Annotated[str | None, typer.Option(help="alibaba-genai: write the matching catalog (CSV).")]
    = None,
    scenario_out: Annotated[str | None, typer.Option(
        help="alibaba-genai: write a scenario TOML with load_overhead_s/load_gbps fitted to the measured "
             "base-model load latencies, and the catalog written by --catalog-out.")] = None,
    latency: Annotated[Path | None, typer.Option(
        help="alibaba-genai: load-latency CSV; default base_model_update_latency_anon.csv beside SRC.")] = None,
    only_succeeded: Annotated[bool, typer.Option(help="alibaba-genai: drop FAILED/PENDING/PROCESSING requests.")]
    = False,
    # None: not given, so that an option given to another format is refused instead of ignored (_only)
    sdxl_fraction: Annotated[float | None, typer.Option(help="alibaba-genai: share of base models assigned SDXL "
                                                            f"(by a hash of the id; default {SDXL_FRACTION}).")]
    = None,
    alpha: Annotated[float | None, typer.Option(help="azure-llm: Zipf exponent of the model mix (default 0.8).")]
    = None,
    seed: Annotated[int | None, typer.Option(help="azure-llm: seed of the model mix, 0 to 2**64-1 (default 0).")]
    = None,
    ts: Annotated[str | None, typer.Option(help="csv: time column (default: ts).")] = None,
    model: Annotated[str | None, typer.Option(help="csv: model column (default: model).")] = None,
    task: Annotated[str | None, typer.Option(help="csv: task column (default: 'task' if present).")] = None,
    units: Annotated[str | None, typer.Option(help="csv: units column (default: 'units' if present).")] = None,
    input_mb: Annotated[str | None, typer.Option(help="csv: input_mb column (default: 'input_mb' if present).")]
    = None,
    time_format: Annotated[str | None, typer.Option(
        help="csv: 'seconds', 'ms', 'auto' (the default), or a strftime format like '%Y-%m-%d %H:%M:%S'.")] = None,
    user: Annotated[str | None, typer.Option(help="csv: user column, kept as `user` (default: 'user' if present).")]
    = None,
    edge: Annotated[str | None, typer.Option(help="csv: home edge server column, kept as `edge` (default: 'edge' if "
                                             "present).")] = None,
    force: Annotated[bool, typer.Option("--force", help=f"Import a source larger than {MAX_SOURCE_GB:g} GB "
                                        "(it is read whole into memory).")] = False,
) -> None:
    """Import a real or custom trace into pfmbench's Parquet schema.

    Example: pfmbench import alibaba-genai downloads/alibaba-genai-2026/lora_request_trace.csv
    -o ali.parquet --catalog-out ali.csv --scenario-out ali.toml
    """
    if fmt not in IMPORT_FORMATS:
        raise InputError(f"import: FORMAT must be one of {', '.join(IMPORT_FORMATS)}, got {fmt!r}")
    default_latency = src.with_name("base_model_update_latency_anon.csv") if fmt == "alibaba-genai" else None
    guard_outputs({"--output": output, "--catalog-out": catalog_out, "--scenario-out": scenario_out},
                  [src, catalog, latency, default_latency], parquet=["--output"])
    _check_source_size(src, force)
    from ..trace import importers  # polars-heavy: loaded only by this command

    with progress_bar(f"import {fmt}", importers.STEPS) as update:
        if fmt != "azure-llm":
            _only(fmt, "azure-llm", alpha=alpha, seed=seed)
        if fmt != "csv":
            _only(fmt, "csv", ts=ts, model=model, task=task, units=units, input_mb=input_mb, time_format=time_format,
                  user=user, edge=edge)
        if fmt == "alibaba-genai":
            _only(fmt, "azure-llm and csv", catalog=catalog)
            report = importers.import_alibaba(src, output, catalog_out=catalog_out, scenario_out=scenario_out,
                                              latency_csv=latency, only_succeeded=only_succeeded,
                                              sdxl_fraction=SDXL_FRACTION if sdxl_fraction is None else sdxl_fraction,
                                              progress=update)
        else:
            _only(fmt, "alibaba-genai", catalog_out=catalog_out, scenario_out=scenario_out, latency=latency,
                  only_succeeded=only_succeeded, sdxl_fraction=sdxl_fraction)
            if fmt == "azure-llm":
                report = importers.import_azure(src, output, catalog=catalog, alpha=0.8 if alpha is None else alpha,
                                                seed=0 if seed is None else seed, progress=update)
            else:
                report = importers.import_csv(src, output, catalog=catalog, ts="ts" if ts is None else ts,
                                              model="model" if model is None else model, task=task, units=units,
                                              input_mb=input_mb, user=user, edge=edge, progress=update,
                                              time_format="auto" if time_format is None else time_format)
    dropped = "".join(f"; dropped {n} ({why})" for why, n in report.dropped.items())
    print(f"wrote {report.rows} requests to {'stdout' if output == '-' else report.output}{dropped}",
          file=sys.stderr)
    for note in report.notes:
        print(f"  {note}", file=sys.stderr)


@app.command()
def export(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=f"One of: {', '.join(EXPORT_FORMATS)}.")],
    trace: Annotated[Path, typer.Argument(help="Parquet trace.")],
    output: Annotated[str, typer.Option("-o", "--output", help="CSV file to write (`-`: stdout).")],
    catalog: CatalogOpt = None,
) -> None:
    """Export a trace for another simulator: libcachesim writes time,obj_id,obj_size (bytes) CSV.

    Example: pfmbench export libcachesim t.parquet -o t.csv
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"export: FORMAT must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    guard_outputs({"--output": output}, [trace, catalog])
    with progress_bar("export", None) as update:
        from ..trace import export

        n = export.export_libcachesim(trace, output, catalog=catalog, progress=update)
    print(f"wrote {n} requests to {'stdout' if output == '-' else output}", file=sys.stderr)


@trace_app.command("inspect")
def inspect_(
    trace: Annotated[Path, typer.Argument(help="Parquet trace.")],
    catalog: CatalogOpt = None,
    scenario: ScenarioOpt = None,
    copies_per_task: Annotated[bool | None, typer.Option("--copies-per-task/--shared-tasks",
                               help="One fine-tuned copy per LFM task (the default scenario's choice).")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="Edge GPU preset (for which models fit).")] = None,
    gpu_memory: Annotated[float | None, typer.Option("--gpu-memory", help="Edge GPU memory, GB.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False,
    top: Annotated[int, typer.Option(help="Rows of the popularity table to show.")] = 20,
    output_format: FormatOpt = None,
) -> None:
    """Requests, time span, rates, models (as replay caches them), popularity (fitted Zipf α), burstiness,
    working set and the models that can never fit the GPU.

    Example: pfmbench trace inspect t.parquet --catalog my_models.csv --json

    Example: pfmbench trace inspect t.parquet --format markdown
    """
    from ..formats import choose_format, inspect_blocks, inspect_record, print_blocks, render, to_csv

    fmt = choose_format(output_format, as_json)
    if top < 0:
        raise InputError(f"--top must be at least 0, got {top}")
    from ..api import resolve

    overrides = {k: v for k, v in {"copies_per_task": copies_per_task, "preset": gpu,
                                   "gpu_memory_gb": gpu_memory}.items() if v is not None}
    sc, cat, _ = resolve(scenario, str(catalog) if catalog else None, **overrides)
    with progress_bar("inspect", None) as update:
        from ..trace.inspect import inspect_trace

        stats = inspect_trace(trace, cat, progress=update, gpu_memory_gb=sc.edge.gpu_memory_gb)
    if as_json:
        print(json.dumps(stats, indent=2))
    elif fmt == "csv":
        typer.echo(to_csv([inspect_record(stats)]), nl=False)
    elif fmt != "table":
        typer.echo(render(inspect_blocks(stats, str(trace), top), fmt), nl=False)
    else:
        from rich.console import Console

        print_blocks(inspect_blocks(stats, str(trace), top), Console())


@trace_app.command("validate")
def validate(
    trace: Annotated[Path, typer.Argument(help="Parquet trace.")],
    catalog: CatalogOpt = None,
    limit: Annotated[int, typer.Option(help="Show at most this many problems.")] = 20,
) -> None:
    """Check a trace against a catalog: list every problem with its row, exit 2 if there is any.

    Example: pfmbench trace validate t.parquet --catalog my_models.toml
    """
    if limit < 0:
        raise InputError(f"--limit must be at least 0, got {limit}")
    n, problems = trace_problems(trace, load_catalog(catalog), limit=0)
    if not problems:
        print(f"ok: {n} requests")
        return
    for row, msg in problems[:limit]:
        print(f"row {row}: {msg}" if row >= 0 else msg)
    listed = min(limit, len(problems))  # at most 1,000 of each kind are kept (all are counted)
    shown = f", first {listed:,} shown" if problem_count(problems) > listed else ""
    print(f"error: {trace}: {problem_count(problems):,} problem(s){shown}", file=sys.stderr)
    raise typer.Exit(2)
