"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ScenarioOpt = Annotated[str | None, typer.Option("--scenario", "-s", help="Scenario TOML file or built-in name (default).")]
CatalogOpt = Annotated[Path | None, typer.Option("--catalog", "-c", help="Catalog CSV or TOML (default: Table I).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of the random policy (scenario `seed`).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
