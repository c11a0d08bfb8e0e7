"""Errors the library raises; the CLI turns them into one line and exit code 2."""


class PfmError(Exception):
    """Base class: a problem with the user's input, described in one line."""


class InputError(PfmError, ValueError):
    """Bad trace, catalog, scenario or option. The message names the file and the row or field."""


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C (temporary files are removed), then the CLI exits 143.

    A BaseException, as KeyboardInterrupt is, so that `except Exception` in user code cannot swallow it.
    """


# The signal that asked this process to stop, set by the CLI's handlers. The exception a handler raises can
# be swallowed when the signal lands inside a C library's callback into Python (numba's compiler caching a
# kernel does that), so whatever is about to make an output final asks here too.
stop_signal: int | None = None


def raise_if_stopped() -> None:
    """Raise again what a stop signal raised, in case it was swallowed."""
    import signal

    if stop_signal == signal.SIGTERM:
        raise Terminated()
    if stop_signal == signal.SIGINT:
        raise KeyboardInterrupt()
