"""`pfmbench policies`: the registered eviction policies."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..policies import REGISTRY, load_policy_file, policy_names
from . import app


@app.command()
def policies(
    files: Annotated[list[str] | None, typer.Argument(help="Drop-in policy files to load and list too.")] = None,
) -> None:
    """List the eviction policies: built in, and drop-in files given by path.

    Example: pfmbench policies policies/lc_size.py
    """
    policy_names()
    for f in files or []:
        load_policy_file(f)
    table = Table(title="policies", title_justify="left")
    for col in ("name", "engine", "what it evicts"):
        table.add_column(col)
    for name, cls in REGISTRY.items():
        lines = (cls.description or cls.__doc__ or "").strip().splitlines()
        doc = lines[0].strip() if lines else "(no description: set `description` or a docstring)"
        table.add_row(name, "fast + reference" if cls.fast is not None else "reference", doc)
    table.add_row("opt", "search", "not a policy: the minimum system cost over every decision sequence (exact up to "
                  "100 requests, a lower bound beyond; opt-exact: exact or refused); docs/opt.md")
    Console().print(table)
