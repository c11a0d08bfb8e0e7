"""Options shared by several commands."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..fileio import check_outputs, is_stdout, stdout_is_terminal

ScenarioOpt = Annotated[str | None, typer.Option("--scenario", "-s", help="Scenario TOML file or built-in name (default).")]
CatalogOpt = Annotated[Path | None, typer.Option("--catalog", "-c", help="Catalog CSV or TOML (default: Table I).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of the random policy (scenario `seed`, 0 to 2**64-1).")]
GpuOpt = Annotated[str | None, typer.Option("--gpu", help="Edge GPU preset: a100-80, h100-80, l40s, l4, rtx4090 "
                                          "(memory, TFLOPS, power, load rate; docs/model.md).")]
GpuMemoryOpt = Annotated[float | None, typer.Option("--gpu-memory", help="Edge GPU memory, GB.")]
WarmupOpt = Annotated[int | None, typer.Option("--warmup", help="Warm-up: the first N requests are replayed but "
                                              "counted in no metric (scenario run.warmup_requests).")]
WarmupSOpt = Annotated[float | None, typer.Option("--warmup-s", help="Warm-up: requests in the first T seconds "
                                                  "of the trace are replayed but counted in no metric "
                                                  "(scenario run.warmup_s).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="table (the default), markdown (GitHub-flavoured), "
                                          "latex (a booktabs tabular) or csv (the records --json prints).")]


@contextmanager
def progress_bar(description: str, total: float | None = None):
    """Yield update(done, total=None) drawing a rich bar on stderr, or a no-op when stderr is not a terminal.

    Ctrl-C (exit 130) and SIGTERM (exit 143) pass through: main() reports them in one line, after atomic
    writes inside have removed their temporary files.
    """
    if not sys.stderr.isatty():
        yield lambda done, total=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def update(done, total=None):
            bar.update(task, completed=done, **({"total": total} if total is not None else {}))

        yield update


def guard_outputs(outputs: dict, inputs: list, *, parquet: list[str] = (), stdout_taken: str | None = None) -> None:
    """The output-path rules (pfmbench.fileio.check_outputs), and no binary Parquet on a terminal."""
    check_outputs(outputs, inputs, stdout_taken=stdout_taken)
    for label in parquet:
        if is_stdout(outputs.get(label)) and stdout_is_terminal():
            raise InputError(f"{label} -: refusing to write Parquet to a terminal; redirect stdout to a file or pipe")


def policy_names_help() -> str:
    """The policy names for --policy's help, read from the registry (a new built-in appears by itself)."""
    from ..api import DEFAULT_POLICIES
    from ..policies import PAPER_POLICIES, builtin_names

    others = [n for n in builtin_names() if n not in PAPER_POLICIES]
    return (f"the paper's {', '.join(PAPER_POLICIES)} (random-placement is its Random); {', '.join(others)} "
            f"(`pfmbench policies`); a path to a .py policy; 'all' ({', '.join(DEFAULT_POLICIES)})")
