"""The environment pfmbench runs in, checked once at import, before numba is loaded (docs/results.md,
"Environment").

* Numba's compiled cache: numba saves compiled kernels in the first writable of NUMBA_CACHE_DIR, the
  package's own `__pycache__` folders and the user cache folder (~/.cache/numba); when none is writable
  (a read-only install, a read-only or missing home) numba refuses to compile at all. Then the kernels
  are compiled into a private temporary folder removed at exit: the run works, its first replay compiles
  (about 10 s), and one warning line says so.
* A corrupt or truncated cache file: numba would raise loading it; it is treated as absent instead, so the
  kernel compiles again and the file is replaced (guard_numba_cache()), with one warning line.
* pfmbench's own variables (PFMBENCH_*): a value that does not parse is ignored, with one warning line
  naming it, and the default is used (env_number()).
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

_PKG = Path(__file__).resolve().parent
_warned: set[str] = set()


def warn(key: str, message: str) -> None:
    """One warning line on stderr, once per process and key."""
    if key in _warned:
        return
    _warned.add(key)
    try:
        print(f"warning: {message}", file=sys.stderr)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to tell
        pass


def env_number(name: str, default, *, kind=float, lo=None, hi=None):
    """The number in environment variable `name`, or `default` (with one warning) if it is unset, empty or
    not a number of `kind` within [lo, hi]."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = kind(text.strip())
        if kind is float and math.isnan(value):
            raise ValueError
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError
    except (ValueError, OverflowError):
        from .errors import shown

        bounds = f" from {lo:g}" if lo is not None else ""
        bounds += f" to {hi:g}" if hi is not None else ""
        what = "a whole number" if kind is int else "a number"
        warn(name, f"{name}={shown(text)} is not {what}{bounds}; using the default, {default}")
        return default
    return value


def _writable(folder: Path) -> bool:
    """Whether numba could keep its cache in `folder` (as its locators test it: make it, write a file)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "numba"


def numba_cache_folder() -> str | None:
    """Make sure numba has somewhere to keep compiled code; returns the temporary folder if one was needed."""
    if "numba" in sys.modules:  # too late to steer (an embedding program loaded numba first)
        return None
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given and _writable(Path(given)):
        return None
    in_tree = (_PKG / "__pycache__", _PKG / "engine" / "__pycache__", _PKG / "policies" / "__pycache__")
    if all(_writable(f) for f in in_tree) or _writable(_user_cache()):
        return None
    try:
        tmp = tempfile.mkdtemp(prefix="pfmbench-numba-")
    except OSError:
        return None  # nowhere at all: numba says so itself
    atexit.register(shutil.rmtree, tmp, True)
    os.environ["NUMBA_CACHE_DIR"] = tmp
    where = f"NUMBA_CACHE_DIR ({given})" if given else "the package folder or ~/.cache/numba"
    warn("numba-cache", f"cannot write numba's compiled cache ({where}): compiling for this run only, in a "
                        "temporary folder (each run compiles again); set NUMBA_CACHE_DIR to a writable folder")
    return tmp


def guard_numba_cache() -> None:
    """A corrupt or truncated file in numba's cache (a disk filled while it was saved, a copy cut short) makes
    numba raise while loading it, whatever the kernel: treat such a file as absent instead, so that the
    kernel compiles again and the next save replaces the file. One warning line says so."""
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover
        return
    cls = caching.IndexDataCacheFile
    if getattr(cls, "_pfmbench_guarded", False):
        return
    load_index, load = cls._load_index, cls.load

    def corrupt(path) -> None:
        warn("numba-corrupt", f"numba's compiled cache is damaged ({path}): compiling again and replacing it")

    def _load_index(self):
        try:
            return load_index(self)
        except Exception:  # noqa: BLE001  (any unpickling error: a damaged index is an empty one)
            corrupt(self._index_path)
            return {}

    def _load(self, key):
        try:
            return load(self, key)
        except Exception:  # noqa: BLE001  (a damaged data file: compile again)
            corrupt(self._index_path)
            return None

    cls._load_index, cls.load, cls._pfmbench_guarded = _load_index, _load, True


numba_cache_folder()
guard_numba_cache()
