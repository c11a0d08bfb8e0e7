"""The command line: thin Typer commands over the library, one module per command group.

Library errors (PfmError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from ..errors import PfmError

app = typer.Typer(
    name="pfmbench",
    help="Trace-replay benchmark for caching and serving pretrained foundation models at the edge.\n\n"
    "Example: pfmbench replay --policy lc,lfu",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each command module adds its commands to `app`.
    from . import models, replay, scenario, synth, traces  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    _register()
    try:
        # Standalone mode: click reports usage errors itself (one message, exit 2).
        app(args=argv, standalone_mode=True)
    except PfmError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
