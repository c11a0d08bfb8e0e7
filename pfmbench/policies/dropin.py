"""Drop-in policies: a user's .py file imported through the registry, and the guards around its code.

A drop-in file is imported once (again only if it changed), its Policy subclasses registered; its code runs
with its prints sent to stderr (stdout is for results) and its exits and errors turned into one line
naming the file (policy_failed).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import io
import math
import numbers
import os
import re
import sys
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileio import require_file
from . import REGISTRY, Policy, _builtins, register

_LOADED: dict[tuple, type[Policy]] = {}  # (resolved path, mtime, size) -> the file's first policy class


def load_policy_file(path: str | Path) -> type[Policy]:
    """Import a drop-in policy file and register the Policy subclasses it defines; return the first.

    A file is imported once (again only if it changed). Refused, in one line naming the file: a file that
    cannot be imported, that exits or prints on import, that defines no Policy, or whose policy name is a
    built-in's. Its `key` is checked on every call (a number that is not NaN, a string, or a tuple of
    them: NaN and None cannot be ordered), and its `admit` returns a bool. What it prints while replaying goes
    to stderr (prints_to_stderr). A later file may register a drop-in name again.
    """
    p = Path(path)
    require_file(p, "policy")
    _builtins()
    real = Path(os.path.realpath(p))
    st = real.stat()
    ident = (str(real), st.st_mtime_ns, st.st_size)
    if ident in _LOADED:
        return _LOADED[ident]
    stem = re.sub(r"\W", "_", p.stem)
    mod_name = f"pfmbench_user_policy_{len(_LOADED)}_{stem}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise InputError(f"{p}: cannot load policy: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look the module up by name
    printed = io.StringIO()
    _guard_exit()
    try:
        with contextlib.redirect_stdout(printed), stdout_fd_to_stderr(), _in_policy():
            spec.loader.exec_module(module)
    except SystemExit as e:
        del sys.modules[mod_name]
        raise InputError(f"{p}: cannot load policy: the file calls {_exit_name(e)}({e.code!r}) when imported") from None
    except BaseException as e:  # a user's file: report it, do not crash
        from .. import errors

        del sys.modules[mod_name]
        if errors.is_stop(e):  # a real Ctrl-C or SIGTERM while it loaded
            raise
        msg = (str(e).strip().splitlines() or [""])[0]
        raise InputError(f"{p}: cannot load policy: {type(e).__name__}: {msg}") from None
    if printed.getvalue():
        del sys.modules[mod_name]
        first = printed.getvalue().strip().splitlines()[0] if printed.getvalue().strip() else "blank lines"
        raise InputError(f"{p}: the policy file prints when imported ({first[:60]!r}), which would corrupt "
                         "--json output; remove the print")
    found = [c for _, c in inspect.getmembers(module, inspect.isclass)
             if issubclass(c, Policy) and c is not Policy and c.__module__ == module.__name__]
    if not found:
        raise InputError(f"{p}: defines no subclass of pfmbench.policies.Policy")
    for c in found:
        if not c.name:
            c.name = p.stem
        if not isinstance(c.name, str) or not c.name.strip():
            raise InputError(f"{p}: policy class {c.__name__}: name must be a non-empty string, got {c.name!r}")
        key = c.name.lower()
        taken = REGISTRY.get(key)
        if taken is not None and taken.__module__.startswith("pfmbench.policies"):
            raise InputError(f"{p}: policy name {c.name!r} is a built-in policy's; give the class another name")
    for c in found:
        c.source_file = str(p)  # for error messages
        key_fn = c.__dict__.get("key")
        if callable(key_fn) and not isinstance(key_fn, (staticmethod, classmethod)):
            c.key = _checked_key(key_fn, c)
        admit_fn = c.__dict__.get("admit")
        if callable(admit_fn) and not isinstance(admit_fn, (staticmethod, classmethod)):
            c.admit = _checked_admit(admit_fn)
        register(c)
    _LOADED[ident] = found[0]
    return found[0]


def _orderable(k) -> bool:
    if isinstance(k, (tuple, list)):
        return all(_orderable(x) for x in k)
    if isinstance(k, str):
        return True
    if isinstance(k, numbers.Real):
        return not math.isnan(k)
    return False


def _checked_key(key, cls):
    """Wrap a drop-in policy's key: an unorderable key (NaN, None, a dict) would make min() pick any entry."""

    @functools.wraps(key)
    def checked(self, entry, now):
        k = key(self, entry, now)
        if not _orderable(k):
            raise InputError(f"key() returned {k!r} for model {getattr(entry, 'name', '?')!r}: a key must be a "
                             "number (not NaN), a string, or a tuple of them")
        return k

    return checked


def _checked_admit(admit):
    """Wrap a drop-in policy's admit: only a bool is an answer (NaN and "no" are truthy, None is falsy)."""

    @functools.wraps(admit)
    def checked(self, model, now):
        a = admit(self, model, now)
        if not isinstance(a, (bool, np.bool_)):
            raise InputError(f"admit() returned {a!r} for model {getattr(model, 'name', '?')!r}: it must return "
                             "True (load) or False (offload)")
        return bool(a)

    return checked


_inside_policy = threading.local()  # .depth: how deep this thread is in a drop-in policy's code
_stdout_lock = threading.Lock()
_stdout_users = 0  # drop-in calls under way, on any thread: sys.stdout is the proxy while there are any


class _PolicyStdout:
    """sys.stdout while drop-in policy code runs: a thread inside that code writes to stderr, every other
    thread to the stdout this replaced (stdout carries --json and `--out -` data)."""

    def __init__(self, out):
        self.out = out

    def _target(self):
        return sys.stderr if getattr(_inside_policy, "depth", 0) else self.out

    def write(self, s):
        return self._target().write(s)

    def __getattr__(self, name):  # flush, buffer, fileno, encoding, ...
        return getattr(self._target(), name)


@contextlib.contextmanager
def _in_policy():
    """Mark this thread as running drop-in code (what it prints goes to stderr; os._exit is its error)."""
    _inside_policy.depth = getattr(_inside_policy, "depth", 0) + 1
    try:
        yield
    finally:
        _inside_policy.depth -= 1


class PolicyExit(SystemExit):
    """A drop-in policy called os._exit(): reported as its error, naming its file, instead of ending the
    process with no message (and no cleanup of temporary files)."""


_real_exit = os._exit


def _exit_guard(code):
    if getattr(_inside_policy, "depth", 0):
        raise PolicyExit(code)
    _real_exit(code)


def _guard_exit() -> None:
    """Install the os._exit guard (once, when the first drop-in loads): only a thread inside drop-in code is
    affected; any other call goes straight to the real os._exit."""
    if os._exit is not _exit_guard:
        os._exit = _exit_guard


def _exit_name(e: SystemExit) -> str:
    return "os._exit" if isinstance(e, PolicyExit) else "sys.exit"


@contextlib.contextmanager
def stdout_fd_to_stderr():
    """File descriptor 1 points at stderr meanwhile (restored after): what drop-in code writes past sys.stdout
    (os.write(1, ...), sys.__stdout__, a C library) cannot reach stdout, which carries --json and `--out -`.
    Used around a replay with drop-in policies (pfmbench writes nothing on stdout until it has finished) and
    around importing a drop-in file. Without a usable fd 1 or 2 it does nothing."""
    try:
        for stream in (sys.stdout, sys.__stdout__):
            if stream is not None:
                stream.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(saved)
        yield
        return
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.__stdout__):  # what was buffered meanwhile goes where it was written
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def prints_to_stderr():
    """Run a drop-in policy's code with what it prints sent to stderr. Policies replay side by side on worker
    threads, so contextlib.redirect_stdout (one global swap per call) would race: the proxy is installed by
    the first call under way and removed by the last, and it redirects only the threads inside a policy."""
    global _stdout_users
    with _stdout_lock:
        if _stdout_users == 0:
            sys.stdout = _PolicyStdout(sys.stdout)
        _stdout_users += 1
    _inside_policy.depth = getattr(_inside_policy, "depth", 0) + 1
    try:
        yield
    finally:
        _inside_policy.depth -= 1
        with _stdout_lock:
            _stdout_users -= 1
            if _stdout_users == 0 and isinstance(sys.stdout, _PolicyStdout):
                sys.stdout = sys.stdout.out


def policy_failed(cls: type[Policy], e: BaseException) -> InputError:
    """A drop-in policy's own code raised or exited while replaying: one line naming its file."""
    where = getattr(cls, "source_file", cls.__module__)
    # SystemExit is caught too: it would otherwise end the run with no output and its exit code (0 for exit()).
    why = f"it calls {_exit_name(e)}({e.code!r})" if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}"
    return InputError(f"{where}: policy {cls.name!r} failed: {why}")
