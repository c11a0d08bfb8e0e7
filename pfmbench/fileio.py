"""Output files: one policy for every command that writes (docs/results.md, "Output paths").

* check_outputs() refuses, before any work, an output that is also an input of the command, two outputs on
  one path, an empty path, a directory, a missing or unwritable folder, and an existing file that is not a
  regular file (a device, FIFO or socket): `--out /dev/null` must never replace a device with Parquet.
  To stream, name the output `-`: it goes to stdout (redirect stdout wherever you like).
* atomic_path() writes to a temporary file beside the target and renames it into place only when the
  write is complete, and only over a regular file; on any error or interruption (Ctrl-C, SIGTERM) the
  temporary file is removed. OS errors (disk full, permission, read-only file system) become one
  InputError line naming the output.
* One writer per output: check_outputs() and atomic_path() take an exclusive lock (fcntl.flock on
  `.NAME.lock` beside the output) and hold it until the command ends (release_locks(); the CLI calls it
  on the way out). A second process writing the same output while the first runs is refused in one line
  (exit 2) before it does any work, so two runs never lose each other's rows or delete each other's files.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
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


def check_outputs(outputs: Mapping[str, object], inputs: Iterable = (), *, stdout_taken: str | None = None) -> list[str]:
    """Refuse (InputError, one line) any output that breaks the output-path rules.

    outputs: {label: path or None}, e.g. {"--out": out, "--requests-out": log}; `-` means stdout.
    inputs: every file the command reads (paths, None, or non-path values, which are ignored).
    stdout_taken: a label if the command already prints data on stdout (e.g. "--json"): then no output may be `-`.
    Then locks every file output (lock_output) and returns the keys, for unlock_output() when done (the
    CLI releases every lock at the end of the command).
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
    keys = []
    try:
        for label, p in seen.values():  # held until the command ends (release_locks)
            keys.append(lock_output(p, label))
    except BaseException:
        for k in keys:
            unlock_output(k)
        raise
    return keys


# -- one writer per output -----------------------------------------------------------------------------

# Locks this process holds: realpath of the output -> [fd, lock file path, holders].
_LOCKS: dict[str, list] = {}


def lock_path(path) -> Path:
    """The lock file of an output: `.NAME.lock` beside the file it names (through a symbolic link)."""
    target = Path(os.path.realpath(path))
    return target.parent / f".{target.name}.lock"


def lock_output(path, label: str = "output") -> str:
    """Take (or take again) this process's exclusive lock on output `path`; returns its key for unlock_output().

    Refused in one line (InputError, exit 2) when another process holds it: that run is writing the same
    file, and two writers would lose each other's rows.
    """
    key = os.path.realpath(path)
    held = _LOCKS.get(key)
    if held is not None:
        held[2] += 1
        return key
    lp = lock_path(path)
    while True:
        try:
            fd = os.open(lp, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~_umask())
        except OSError as e:
            raise InputError(f"{label} {path}: cannot lock the output ({lp.name}): {os_error_text(e)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"{label} {path}: another pfmbench run is writing this output now (lock {lp}); "
                             "wait for it to finish or choose another output file") from None
        except OSError as e:  # a file system without locks: nothing to serialise against
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise InputError(f"{label} {path}: cannot lock the output ({lp.name}): {os_error_text(e)}") from None
        try:  # the holder before us may have removed the lock file while we waited for it: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(lp))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _LOCKS[key] = [fd, lp, 1]
    return key


def unlock_output(key: str) -> None:
    """Drop one hold on a lock taken by lock_output(); the last one removes the lock file and releases it."""
    held = _LOCKS.get(key)
    if held is None:
        return
    held[2] -= 1
    if held[2] > 0:
        return
    del _LOCKS[key]
    fd, lp, _ = held
    try:
        os.unlink(lp)  # while still holding it: a process waiting on this file then retries on a new one
    except OSError:
        pass
    os.close(fd)


def release_locks() -> None:
    """Release every output lock this process holds (the end of a command)."""
    for key in list(_LOCKS):
        _LOCKS[key][2] = 1
        unlock_output(key)


atexit.register(release_locks)


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def atomic_path(path: str | Path, *, lock: bool = True):
    """Yield a temporary path next to `path`; on success rename it to `path`, on any error remove it.

    An interrupted run therefore never leaves a half-written file under the final name. `path` may be
    `-`: the finished file is then copied to stdout. Refuses (InputError) what check_output() refuses,
    and an output another process is writing (lock_output; `lock=False` for files inside a folder that a
    lock already covers, a sweep's parts).
    """
    if is_stdout(path):
        with _stdout_path() as tmp:
            yield tmp
        return
    check_output(path)
    if lock:
        key = lock_output(path)
        try:
            with atomic_path(path, lock=False) as tmp:
                yield tmp
        finally:
            unlock_output(key)
        return
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
        why = _write_failure(e, Path(tmp))
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if why is not None:
            raise InputError(f"{path}: cannot write: {why}") from None
        raise


def _write_failure(e: BaseException, tmp: Path) -> str | None:
    """Why writing `tmp` failed, in a few words, if `e` is a failed write; None for anything else.

    polars reports a full disk or a file-size limit as a ComputeError ("Invalid thrift: transport error")
    rather than an OSError: the reason is then found by writing to the file again, which tells it plainly.
    """
    if isinstance(e, OSError):
        return os_error_text(e)
    if not type(e).__module__.split(".")[0] in ("polars", "pyarrow") or not isinstance(e, Exception):
        return None
    try:
        with open(tmp, "ab") as f:
            f.write(b"\0" * (1 << 16))
            f.flush()
            os.fsync(f.fileno())
    except OSError as probe:
        return os_error_text(probe)
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return f"{text} (is the disk full?)"


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
