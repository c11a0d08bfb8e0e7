"""Errors the library raises; the CLI turns them into one line and exit code 2."""


class PfmError(Exception):
    """Base class: a problem with the user's input, described in one line."""


class InputError(PfmError, ValueError):
    """Bad trace, catalog, scenario or option. The message names the file and the row or field."""


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C (temporary files are removed), then the CLI exits 143.

    A BaseException, as KeyboardInterrupt is, so that `except Exception` in user code cannot swallow it.
    """
