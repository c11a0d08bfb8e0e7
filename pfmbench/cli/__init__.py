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
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except PfmError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors arrive here with standalone_mode=False
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            print("error: aborted", file=sys.stderr)
            sys.exit(1)
        raise
