"""Errors the library raises; the CLI turns them into one line and exit code 2."""


class PfmError(Exception):
    """Base class: a problem with the user's input, described in one line."""


class InputError(PfmError, ValueError):
    """Bad trace, catalog, scenario or option. The message names the file and the row or field."""


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C (temporary files are removed), then the CLI exits 143.

    A BaseException, as KeyboardInterrupt is, so that `except Exception` in user code cannot swallow it.
    """


class HungUp(Terminated):
    """SIGHUP arrived (the terminal closed): unwinds as SIGTERM does, then the CLI exits 129."""


# The signal that asked this process to stop, set by the CLI's handlers. The exception a handler raises can
# be swallowed when the signal lands inside a C library's callback into Python (numba's compiler caching a
# kernel does that), so whatever is about to make an output final asks here too.
stop_signal: int | None = None


def is_stop(e: BaseException) -> bool:
    """Whether `e` is a stop signal's exception (Ctrl-C, SIGTERM, SIGHUP) rather than one that code raised
    itself: a drop-in policy raising KeyboardInterrupt is that policy's error, not the user's Ctrl-C."""
    return isinstance(e, (KeyboardInterrupt, Terminated)) and stop_signal is not None


def raise_if_stopped() -> None:
    """Raise again what a stop signal raised, in case it was swallowed."""
    import signal

    if stop_signal == signal.SIGTERM:
        raise Terminated()
    if stop_signal == getattr(signal, "SIGHUP", None):
        raise HungUp()
    if stop_signal == signal.SIGINT:
        raise KeyboardInterrupt()


SHOWN_MAX = 60  # characters of a value quoted in a message


def shown(value, limit: int = SHOWN_MAX) -> str:
    """A value quoted in a one-line message: repr for a string (control characters escaped), at most `limit`
    characters; longer (a 400-digit number, a megabyte-long name) it is cut, saying how long it was."""
    text = repr(value) if isinstance(value, str) or not isinstance(value, (int, float)) else str(value)
    digits = isinstance(value, int) and not isinstance(value, bool)
    return cut(text, limit, "digits" if digits else "characters")


def cut(text, limit: int = SHOWN_MAX, unit: str = "characters") -> str:
    """Text (a name, a path) for a one-line message: control characters escaped, at most about `limit`
    characters (a longer one is cut, saying how long it was)."""
    if isinstance(text, int) and not isinstance(text, bool):
        unit = "digits"
    text = one_line(str(text))
    if len(text) > limit:
        text = f"{text[:max(limit - 20, 8)]}… ({len(text):,} {unit})"
    return text


def one_line(text: str) -> str:
    """Text for a one-line message: control characters (newlines, escapes, ...) shown escaped."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


MESSAGE_MAX = 1500  # characters of one error line


def tidy(message: str) -> str:
    """An error message as exactly one readable line: control characters escaped, each very long word (a
    megabyte-long name, a 400-digit number) cut, and the whole kept under MESSAGE_MAX characters."""
    import re

    text = re.sub(r"\S{201,}", lambda m: cut(m.group(0), 120), one_line(str(message)))
    if len(text) > MESSAGE_MAX:
        keep = MESSAGE_MAX // 2 - 20
        text = f"{text[:keep]} … ({len(text) - 2 * keep:,} characters) … {text[-keep:]}"
    return text
