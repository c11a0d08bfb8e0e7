"""Eviction policies, registered by name; drop-in policies load from a .py file through the same registry.

The Policy API (what a drop-in file implements): the engine owns find -> evict-until-fit -> insert and
all memory accounting. A policy only answers two questions:

* ``admit(model, now) -> bool``: on a miss, load this model (True) or offload the request to the cloud.
  The engine never loads a model larger than the GPU memory, whatever this says.
* ``key(entry, now)``: a sortable value per cached model; the engine evicts the smallest, one at a
  time, until the new model fits. Include ``entry.last_use`` (unique per model) to break ties.

``entry`` (a CacheEntry) has: ``model`` (catalog index), ``name``, ``memory_gb``, ``loaded_at`` and
``last_use`` (request sequence numbers; ``use_order`` and ``load_order`` break ties between a shared base and
its variants as the fast engine does, ``is_base`` and ``variants()`` under catalog.variants = "adapter"), ``requests`` (served since it was loaded), ``context(now)``
(C_m, the examples in context decayed to now) and ``context_rank(now)`` (a number in the same order as
C_m(now) that is cheaper to keep). ``model`` (in admit) has ``name``, ``memory_gb``, ``family``.

Optional, for a policy that keeps its own state: ``bind(tables)`` (called once before the first request, with
the engine's Tables), and the fast hooks' names with an entry for a model: ``on_insert(entry, now)`` (it was
cached), ``on_evict(entry, now)`` (it is leaving: the victim, and a base's variants with it) and
``on_hit(entry, loaded, now)`` (it served a request, the load's first included), called where the fast loop
calls its hooks of the same names (docs/engine.md, "The policy hooks").

Drop-in policies run on the reference engine. A built-in policy is one module holding both its reference
behaviour (this class) and its fast hooks (``new_state`` and numba functions named after FAST_HOOKS, see
docs/engine.md), checked when the registry loads it (check_builtin); the registry below is the one list of
built-ins that the CLI, tests, benchmarks and docs read.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from ..errors import InputError

# The built-in policies, by module: one module each (pfmbench/policies/NAME.py). Adding one is a new
# module and a line here; the CLI, tests, benchmarks and docs read this list through the registry.
# The fast engine compiles one kernel per group, on first use (then it is cached on disk): a replay of the
# paper's policies compiles only theirs (14 s of CPU the first time, where all eleven take 34 s).
BUILTIN_GROUPS = (
    ("lc", "lfu", "lru", "fifo", "random", "cloud", "random_placement"),  # the paper's five, lru, the paper's Random
    ("sieve", "s3fifo", "gdsf", "gdsf_unit", "belady"),  # beyond the paper
    ("lfuda", "belady_size", "lc_cost"),  # beyond the paper, added later (the kernels above keep their compile time)
    ("active",),  # predictive: preloads in idle time (the only group whose preload hook does anything)
)
BUILTINS = tuple(name for group in BUILTIN_GROUPS for name in group)


class _FastModule:
    """`Policy.fast`: the module name in BUILTINS of a built-in policy class (its fast hooks), else None.

    Worked out when read, from the class's module, so it does not depend on the order in which a module
    defines its class and its hooks. A class defined elsewhere (a drop-in extending a built-in) runs on
    the reference engine: the kernel would run the built-in's hooks, not its overrides. That a built-in
    module does define its fast hooks is checked when the registry loads it (check_builtin): loudly."""

    def __get__(self, obj, cls):
        short = cls.__module__.rsplit(".", 1)[-1]
        return short if cls.__module__ == f"{__name__}.{short}" and short in BUILTINS else None


class Policy:
    """Base class: evict the smallest key; admit every model that fits."""

    name: str = ""
    fast = _FastModule()  # a built-in with fast hooks: its module name in BUILTINS, else None (read-only)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "fast" in cls.__dict__:  # only the registry says which policies have fast hooks
            raise TypeError(f"policy class {cls.__name__}: `fast` is set by pfmbench.policies, not by a policy")
        if "on_drop" in cls.__dict__:  # the hook's old name: a policy still using it would silently go unheard
            raise TypeError(f"policy class {cls.__name__}: on_drop is now on_evict(entry, now), called for every "
                            "model leaving (the victim too)")
    description: str = ""

    def __init__(self, seed: int = 0):
        self.seed = seed

    needs_next_use: bool = False  # offline policies (belady): the engine hands each model its next request
    admission: str = "always"  # the admission rule it replays under unless the scenario names one (MODEL.md §4)

    def admit(self, model, now: float) -> bool:
        return True

    def outranks(self, model, cache: list, now: float) -> bool:
        """Under `outrank` admission, when m must displace models: does m, ranked by this policy's key as if
        loaded now, outrank every model it would displace (``self.displaced(model, cache, now)``; MODEL.md
        §4)? Default: yes (a newcomer is the most recent, the newest)."""
        return True

    def displaced(self, model, cache: list, now: float) -> list:
        """The entries this policy would evict, in order, until `model` fits (``model.need_bytes`` more
        than the free memory), without evicting them: the smallest keys first."""
        out, need = [], model.need_bytes
        for e in sorted(cache, key=lambda e: self.key(e, now)):
            if need <= 0:
                break
            out.append(e)
            need -= e.memory_bytes
        return out

    def key(self, entry, now: float):
        raise NotImplementedError

    def preload(self, engine, now: float) -> None:
        """Called before each request (arrival time `now`), in the idle time since the last one: a policy may
        call `engine.preload_model(model, victims, now)` (docs/model.md, "Preloading"). It may read what the
        engine knew before this request (`engine.cache`, `engine.last_request`, `engine.last_ts`,
        `engine.preload_start()`) and must not use `now` but as that call's deadline. Default: nothing."""

    def victim(self, cache: list, now: float, rng):
        """The entry to evict next. `cache` is in the engine's insertion order (swap-remove on eviction)."""
        return min(cache, key=lambda e: self.key(e, now))

    # The hooks that keep a policy's own structure, named and called as the fast hooks are (FAST_HOOKS, fast.py's
    # request loop): on_insert, on_evict and on_hit. The engine calls none of them for a preload or a placement.
    def on_insert(self, entry, now: float) -> None:
        """`entry` was just cached for this request (``loaded_at`` = ``last_use`` = this request, ``requests``
        = 0): a load, a shared base loaded before its variant (MODEL.md §9.5), or a base held out while room was
        made for its adapter and put back. Default: nothing."""

    def on_evict(self, entry, now: float) -> None:
        """`entry` is leaving, still cached: the model victim() just named (also the base the adapter needs,
        held out and then put back with on_insert), then each cached variant of a base it named, in catalog
        order, which leaves with it (MODEL.md §9.5). Default: nothing."""

    def on_hit(self, entry, loaded: bool, now: float) -> None:
        """`entry` served a request (`loaded`: the load's first, or its base loaded or put back for it), with
        ``last_use`` and ``requests`` already updated. Default: nothing."""


REGISTRY: dict[str, type[Policy]] = {}
# Table II's columns, in its order; its Random is random placement (MODEL.md §5, docs/model.md)
PAPER_POLICIES = ("random-placement", "cloud", "fifo", "lfu", "lc")


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a policy available by its `name`."""
    if not cls.name:
        raise ValueError(f"policy class {cls.__name__} has no name")
    REGISTRY[cls.name.lower()] = cls
    return cls


def builtin_modules(group: tuple[str, ...] = BUILTINS) -> list[str]:
    """The built-in policy modules of a group (default: all), in order (a kernel's policy codes)."""
    return [f"{__name__}.{name}" for name in group]


def builtin_names(group: tuple[str, ...] = BUILTINS) -> list[str]:
    """The registered names of a group's built-in policies (default: all), in their group's order: what the
    CLI's help, the docs' tests and the test parametrisations list."""
    _builtins()
    return [c.name.lower() for mod in builtin_modules(group) for c in REGISTRY.values() if c.__module__ == mod]


class BuiltinPolicyError(RuntimeError):
    """A module listed in BUILTIN_GROUPS is not a complete built-in policy (a bug in pfmbench, not an input)."""


# The fast hooks a built-in module may define (engine/kernel.py writes a switch over them at each call).
FAST_HOOKS = ("admit", "outranks", "victim", "on_evict", "on_insert", "on_hit", "preload")


def check_builtin(module_name: str) -> list[type[Policy]]:
    """The policy classes a built-in module registers, once it is imported; raises BuiltinPolicyError, naming
    the module, if it registers none, lacks `new_state(tables, seed)` (the state its fast hooks get), or
    defines a hook that is not a numba function. Every built-in runs on the fast engine and is checked
    against the reference engine (tests/test_engines.py): there is no silent reference-only built-in."""
    mod = sys.modules[module_name]
    where = f"{module_name} (listed in pfmbench.policies.BUILTIN_GROUPS)"
    classes = [c for c in REGISTRY.values() if c.__module__ == module_name]
    if not classes:
        raise BuiltinPolicyError(f"{where} registers no policy: decorate its Policy subclass with @register")
    if not callable(getattr(mod, "new_state", None)):
        raise BuiltinPolicyError(f"{where} defines no new_state(tables, seed): a built-in policy needs its fast "
                                 "hooks (docs/engine.md, 'Adding a fast built-in policy'); a policy without them "
                                 "is a drop-in file, loaded by path")
    from numba.core.dispatcher import Dispatcher

    for hook in FAST_HOOKS:
        fn = getattr(mod, hook, None)
        if fn is not None and not isinstance(fn, Dispatcher):
            raise BuiltinPolicyError(f"{where}: its fast hook {hook} is a {type(fn).__name__}, not a numba "
                                     "function: decorate it with @njit(inline=\"always\")")
    return classes


_checked: set[str] = set()  # built-in modules imported and checked


def _builtins() -> None:
    for mod in builtin_modules():
        if mod not in _checked:
            importlib.import_module(mod)
            check_builtin(mod)
            _checked.add(mod)


def policy_names() -> list[str]:
    _builtins()
    return list(REGISTRY)


def get_policy(name: str, seed: int = 0) -> Policy:
    """A policy by registered name, or by path to a drop-in .py file."""
    _builtins()
    if name.endswith(".py") or "/" in name:
        cls = load_policy_file(name)
        try:
            with prints_to_stderr():
                return cls(seed)
        except (Exception, SystemExit) as e:  # noqa: BLE001  (the user's constructor)
            raise policy_failed(cls, e) from None
    cls = REGISTRY.get(name.lower())
    if cls is None:
        raise InputError(f"unknown policy {name!r} (built in: {', '.join(REGISTRY)}; or a path to a .py file)")
    return cls(seed)


# Drop-in loading and its guards live in dropin.py (they need Policy and the registry above).
from .dropin import (
    PolicyExit,
    load_policy_file,
    policy_failed,
    prints_to_stderr,
    stdout_fd_to_stderr,
)

__all__ = ["BUILTINS", "BUILTIN_GROUPS", "FAST_HOOKS", "PAPER_POLICIES", "REGISTRY", "BuiltinPolicyError", "Policy",
           "PolicyExit", "builtin_modules", "builtin_names", "check_builtin", "get_policy", "load_policy_file",
           "policy_failed", "policy_names", "prints_to_stderr", "register", "stdout_fd_to_stderr"]
