"""The command line: thin Typer commands over the library, one module per command group.

Library errors (PfmError) become one line on stderr and exit code 2, never a traceback.
Exit codes: 0 ok, 1 a failed check, 2 bad usage or input (including an output that cannot be written),
130 interrupted (SIGINT, Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from .. import errors
from ..errors import PfmError, Terminated, cut, tidy

try:  # typer >= 0.16 vendors click as typer._click; older versions use click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors

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
    from . import (  # noqa: F401
        calibrate,
        compare,
        models,
        plot,
        policies,
        replay,
        report,
        scenario,
        sweep,
        synth,
        table2,
        traces,
    )


def _terminate(signum, frame):
    # Unwind like Ctrl-C, so that atomic writes remove their temporary files on the way out; remember it, in
    # case the exception is swallowed (errors.raise_if_stopped).
    errors.stop_signal = signum
    raise Terminated()


def _hangup(signum, frame):
    # The terminal went away: clean up as for SIGTERM (temporary files removed), exit 129.
    errors.stop_signal = signum
    raise errors.HungUp()


def _settle_streams() -> None:
    """Make stdout and stderr safe to write whatever the environment did to them (docs/results.md,
    "Environment"): a closed descriptor gets /dev/null (else the next file opened would take its number and
    receive what is printed), with one warning line for stdout; an encoding that cannot show every character
    (PYTHONIOENCODING=ascii, a latin-1 locale) shows the others escaped (\\u03b1) instead of failing."""
    for fd, name in ((2, "stderr"), (1, "stdout")):
        stream = getattr(sys, name)
        try:
            os.fstat(fd)
            closed = stream is None
        except OSError:
            closed = True
        if not closed:
            continue
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False))  # noqa: SIM115  (it replaces sys.stdout for the run)
        except OSError:
            continue
        if name == "stdout":
            print("warning: stdout is closed: what pfmbench prints there is discarded", file=sys.stderr)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if encoding not in ("utf8", "utf8sig") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


def _interrupt(signum, frame):
    errors.stop_signal = signum
    raise KeyboardInterrupt()


def _unraisable(hook):
    """sys.unraisablehook that stays quiet about a stop signal's exception swallowed in a C callback (it is
    raised again where it counts: errors.raise_if_stopped) and reports anything else as before."""

    def quiet(u):
        if errors.stop_signal is not None and isinstance(u.exc_value, (Terminated, KeyboardInterrupt)):
            return
        hook(u)

    return quiet


def _quiet_stdout() -> None:
    """After a failed write to stdout, point it at /dev/null so that the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _usage_line(e: click_errors.ClickException) -> str:
    """A click usage error (bad option value, unknown option, missing argument) as one line."""
    ctx = getattr(e, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    return f"error: {where}{' '.join(e.format_message().split())}{hint}"


def main(argv: list[str] | None = None) -> None:
    """The `pfmbench` script: run a command; every failure is one line on stderr and an exit code
    (0 ok, 1 a failed check, 2 bad usage or input, 130 SIGINT, 143 SIGTERM; docs/results.md)."""
    _settle_streams()
    _register()
    errors.stop_signal = None
    previous_hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
        previous_int = signal.signal(signal.SIGINT, _interrupt)
        previous_hup = signal.signal(signal.SIGHUP, _hangup) if hasattr(signal, "SIGHUP") else None
    except ValueError:  # not the main thread (an embedding application): leave its handlers alone
        previous = previous_int = previous_hup = None
    code = 0
    try:
        try:
            rv = app(args=argv, standalone_mode=False, prog_name="pfmbench")
            code = rv if isinstance(rv, int) else 0
            if code == 0:
                errors.raise_if_stopped()  # a stop signal whose exception something swallowed
            if code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into exit code 130, silently
                print("error: interrupted (SIGINT); no output written", file=sys.stderr)
        finally:
            sys.stdout.flush()  # a full disk behind `> file` shows here: report it below, not at exit
    except click_errors.ClickException as e:
        if type(e).__name__ != "NoArgsIsHelpError":  # `pfmbench trace`: typer has printed the group's help
            print(tidy(_usage_line(e)), file=sys.stderr)
        code = e.exit_code if e.exit_code else 2
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        code = 1
    except PfmError as e:
        print(f"error: {tidy(e)}", file=sys.stderr)
        code = 2
    except OverflowError as e:  # a number no check caught (a 400-digit integer somewhere): still one line
        print(f"error: a number is too large: {cut(e, 200)}", file=sys.stderr)
        code = 2
    except errors.HungUp:
        print("error: hung up (SIGHUP); no output written", file=sys.stderr)
        code = 129
    except Terminated:
        print("error: terminated (SIGTERM); no output written", file=sys.stderr)
        code = 143
    except KeyboardInterrupt:
        print("error: interrupted (SIGINT); no output written", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # `pfmbench ... | head`: the reader left; stay quiet as typer does
        _quiet_stdout()
        code = 1
    except OSError as e:  # e.g. stdout on a full disk
        _quiet_stdout()
        where = f"{e.filename}: " if getattr(e, "filename", None) else "stdout: " if e.errno else ""
        msg = os.strerror(e.errno) if e.errno else (str(e).splitlines() or [type(e).__name__])[0]
        print(tidy(f"error: {where}{msg}"), file=sys.stderr)
        code = 2
    finally:
        from ..fileio import release_locks

        release_locks()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
            if previous_hup is not None:
                signal.signal(signal.SIGHUP, previous_hup)
        sys.unraisablehook = previous_hook
    if argv is None and code in (129, 130, 143) and _replays_left_running():
        # Stopped while a replay thread is still inside compiled code (it cannot be interrupted): finalizing
        # the interpreter under it can crash (SIGSEGV instead of the exit code). Temporary files are already
        # removed and the message printed: leave at once.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def _replays_left_running() -> bool:
    """Whether a replay's worker thread (api.replay_many's daemon threads) is still running."""
    import threading

    return any(t.daemon and t.is_alive() and t.name.startswith("pfmbench-") for t in threading.enumerate())
