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


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"pfmbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Trace-replay benchmark for caching and serving pretrained foundation models at the edge.

    Example: pfmbench replay --policy lc,lfu
    """


def _register() -> None:
    # Each command module adds its commands to `app`.
    from . import compare, models, plot, policies, replay, scenario, sweep, synth, traces  # noqa: F401


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
