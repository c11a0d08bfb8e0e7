"""Output files: one policy for every command that writes (docs/results.md, "Output paths").

* check_outputs() refuses, before any work, an output that is also an input of the command, two outputs on
  one path, an empty path, a directory, a missing or unwritable folder, and an existing file that is not a
  regular file (a device, FIFO or socket): `--out /dev/null` must never replace a device with Parquet.
  To stream, name the output `-`: it goes to stdout (redirect stdout wherever you like).
* atomic_path() writes to a temporary file beside the target and renames it into place only when the
  write is complete, and only over a regular file; on any error or interruption (Ctrl-C, SIGTERM) the
  temporary file is removed. OS errors (disk full, permission, read-only file system) become one
  InputError line naming the output.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path

from . import errors
from .errors import InputError

STDOUT = "-"  # the output name that means "stream to stdout"


def is_stdout(path) -> bool:
    return path is not None and str(path) == STDOUT


def not_a_file(path, what: str) -> str | None:
    """Why an existing `path` cannot be read as a `what` file, in one line naming it (None if it is a regular
    file or does not exist): Path.is_file() is False for a directory too, and "not found" would mislead."""
    p = Path(path)
    if p.is_dir():
        return f"{p}: is a directory, not a {what} file"
    if p.exists() and not p.is_file():
        return f"{p}: is a device, FIFO or socket, not a {what} file"
    return None


def require_file(path, what: str, missing: str | None = None) -> None:
    """Refuse, in one line naming it, a `what` file that is not a regular file: a directory, a device, or
    missing (`missing`: that message instead of "PATH: WHAT file not found")."""
    if not Path(path).is_file():
        raise InputError(not_a_file(path, what) or missing or f"{path}: {what} file not found")


def os_error_text(e: OSError) -> str:
    """The first line of an OS error, without the path (the caller names the file)."""
    if e.errno is not None and e.errno in errno.errorcode:
        return os.strerror(e.errno)
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output(path, label: str = "output") -> Path | None:
    """Check one output path (see the module docstring); returns it as a Path, None for None or `-`."""
    if path is None or is_stdout(path):
        return None
    text = str(path)
    if not text.strip():
        raise InputError(f"{label}: the output path is empty")
    if text.endswith(("/", os.sep)):
        raise InputError(f"{label} {text}: is a directory, expected a file name")
    p = Path(text)
    try:
        st = os.stat(p)  # follows symlinks: what a write would hit
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise InputError(f"{label} {text}: cannot use as output: {os_error_text(e)}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{label} {text}: is a directory, expected a file name")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{label} {text}: exists and is not a regular file (a device, FIFO or socket); "
                             f"pfmbench only replaces regular files. To stream, give `{STDOUT}` and redirect stdout")
    elif p.is_symlink():
        raise InputError(f"{label} {text}: is a dangling symbolic link")
    parent = Path(os.path.realpath(p)).parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise InputError(f"{label} {text}: output folder {p.parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{label} {text}: cannot write in folder {p.parent} (permission denied or read-only)")
    return p


def check_outputs(outputs: Mapping[str, object], inputs: Iterable = (), *, stdout_taken: str | None = None) -> None:
    """Refuse (InputError, one line) any output that breaks the output-path rules.

    outputs: {label: path or None}, e.g. {"--out": out, "--requests-out": log}; `-` means stdout.
    inputs: every file the command reads (paths, None, or non-path values, which are ignored).
    stdout_taken: a label if the command already prints data on stdout (e.g. "--json"): then no output may be `-`.
    """
    seen: dict[str, tuple[str, Path]] = {}
    streams = [label for label, path in outputs.items() if is_stdout(path)]
    if stdout_taken:
        streams.insert(0, stdout_taken)
    if len(streams) > 1:
        raise InputError(f"{' and '.join(streams)} both write to stdout; give one of them a file")
    in_paths = []
    for i in inputs:
        if isinstance(i, (str, Path)) and str(i).strip() and not is_stdout(i) and Path(i).exists():
            in_paths.append(Path(i))
    for label, path in outputs.items():
        p = check_output(path, label)
        if p is None:
            continue
        for q in in_paths:
            if _same(p, q):
                raise InputError(f"{label} {path}: is also an input of this command ({q}); "
                                 "refusing to overwrite it, choose another output file")
        key = os.path.realpath(p)
        for other_label, other in seen.values():
            if _same(p, other) or os.path.realpath(other) == key:
                raise InputError(f"{other_label} and {label} both write to {path}; give each output its own file")
        seen[key] = (label, p)


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to `path`; on success rename it to `path`, on any error remove it.

    An interrupted run therefore never leaves a half-written file under the final name. `path` may be
    `-`: the finished file is then copied to stdout. Refuses (InputError) what check_output() refuses.
    """
    if is_stdout(path):
        with _stdout_path() as tmp:
            yield tmp
        return
    check_output(path)
    target = Path(os.path.realpath(path))  # through a symlink to the regular file it names
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as e:
        raise InputError(f"{path}: cannot write: {os_error_text(e)}") from None
    try:
        yield Path(tmp)
        errors.raise_if_stopped()  # a stop signal whose exception was swallowed: do not make the file final
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        _check_replaceable(target, path)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise InputError(f"{path}: cannot write: {os_error_text(e)}") from None
        raise


def _check_replaceable(target: Path, shown) -> None:
    """Rename only over a regular file (or nothing): something may have appeared while we wrote."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{shown}: exists and is not a regular file; not replaced")


@contextmanager
def _stdout_path():
    """A temporary file whose finished content is copied to stdout (nothing reaches stdout on failure)."""
    fd, tmp = tempfile.mkstemp(prefix=".pfmbench-stdout.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        copy_to_stdout(Path(tmp))
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def copy_to_stdout(src: Path) -> None:
    try:
        sys.stdout.flush()
        try:
            fd = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        with open(src, "rb") as f:
            if fd is not None:  # straight to the descriptor: nothing is left in Python's buffers on failure
                while chunk := f.read(1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            else:  # stdout replaced in-process (tests)
                shutil.copyfileobj(f, sys.stdout.buffer)
                sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise InputError(f"stdout: cannot write: {os_error_text(e)}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet_atomic(df, path: str | Path) -> Path:
    """Write a polars DataFrame to Parquet atomically."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)
    return Path(path)


def read_toml(path: Path, what: str, src=None) -> dict:
    """A TOML file as a dict (a leading BOM allowed); unreadable or invalid: one InputError naming it."""
    import tomllib

    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"{src or path}: cannot read {what}: {e}") from None
