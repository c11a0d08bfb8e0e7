"""Reading a sweep: the TOML file (or the command line's grid) into a SweepSpec, and the Point it expands to."""

from __future__ import annotations

import inspect
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, cut
from ..fileio import read_toml, require_file

SWEEP_KEYS = ("scenario", "catalog", "policies", "seeds", "traces", "engine", "set", "grid", "zip")
# Columns of every summary row that a grid key must not shadow.
RESERVED_COLUMNS = ("run_id", "trace", "scenario", "policy", "seed", "catalog", "engine", "pfmbench_version")
SWEEP_METADATA_KEY = b"pfmbench.sweep"  # Parquet key-value metadata: {"axes": [...], "source": ...}
# Test hook (not a user option): sleep this many seconds in each point, so that tests can interrupt a
# sweep at a known place. It changes no result.
DELAY_ENV = "PFMBENCH_SWEEP_POINT_DELAY"


@dataclass(frozen=True)
class TraceRef:
    """What a point replays: a Parquet file, an inline synthetic spec, or the scenario's own trace."""

    kind: str  # "file" | "synth" | "scenario"
    name: str  # the `trace` column of its rows ("" for the scenario's own: replay_many names it)
    path: str | None = None
    spec: tuple = ()  # synth keyword arguments as sorted (key, value) pairs


@dataclass
class SweepSpec:
    """A grid before expansion. `groups` are the product's axes: each is (keys, rows of values)."""

    source: str
    scenario: str | None = None
    catalog: str | None = None
    policies: list[str] = field(default_factory=lambda: ["all"])
    seeds: list[int | None] = field(default_factory=lambda: [None])
    traces: list[TraceRef] = field(default_factory=lambda: [TraceRef("scenario", "")])
    engine: str = "auto"
    fixed: dict = field(default_factory=dict)
    groups: list[tuple[tuple[str, ...], list[tuple]]] = field(default_factory=list)

    @property
    def axes(self) -> list[str]:
        return [k for keys, _ in self.groups for k in keys]


@dataclass
class Point:
    index: int
    run_id: str
    axes: dict  # grid key -> value: one column each
    overrides: dict  # passed to the scenario, in order (later keys win)
    seed: int | None
    trace: TraceRef
    policies: tuple[str, ...]
    scenario: str | None
    catalog: str | None
    engine: str
    cwd: str = ""  # the driver's folder: relative paths (scenario, catalog) are read from there
    catalog_path: str = ""  # the catalog file the point reads (from --catalog, the scenario or a grid key)

    def describe(self) -> str:
        """The point's grid values, for messages."""
        parts = [f"{k}={cut(v)}" for k, v in self.axes.items()]
        if self.trace.kind != "scenario":
            parts.append(f"trace={cut(self.trace.name)}")
        if self.seed is not None:
            parts.append(f"seed={cut(self.seed)}")
        return f"point {self.index} ({', '.join(parts) or 'no grid values'})"


# -- reading a sweep ---------------------------------------------------------------------------------

def parse_value(text: str):
    """A --set-grid value as TOML would read it (16 -> int, 0.5 -> float, true -> bool), else the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_grid_option(item: str) -> tuple[str, list]:
    """`KEY=V1,V2,...` -> (key, [values])."""
    key, eq, values = item.partition("=")
    if not eq or not key.strip() or not values.strip():
        raise InputError(f"--set-grid expects KEY=V1,V2,..., got {item!r}")
    parsed = [parse_value(v) for v in values.split(",") if v.strip()]
    if not parsed:  # `KEY=,`: an axis without values would make a grid of no points, and no output
        raise InputError(f"--set-grid {key.strip()}: no values, got {item!r}")
    return key.strip(), parsed


def _flatten(table: dict, src, prefix: str = "") -> dict:
    """{"cloud": {"rtt_s": [..]}} -> {"cloud.rtt_s": [..]}: a TOML sub-table is a scenario section."""
    out = {}
    for k, v in table.items():
        flat = _flatten(v, src, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
        for key, value in flat.items():
            if key in out:  # [grid.cloud] rtt_s and "cloud.rtt_s": one list would silently replace the other
                raise InputError(f"{src}: key {key!r} is given twice")
            out[key] = value
    return out


def _canonical(key: str) -> str:
    """The one spelling of a scenario key (gpu_memory_gb and edge.gpu_memory_gb are the same key)."""
    from ..scenario import resolve_key

    try:
        section, name = resolve_key(key)
    except InputError:  # unknown: reported with its point below
        return key
    return f"{section}.{name}" if section else name


def _rel(base: Path, value: str) -> str:
    """A path in a sweep file is relative to that file."""
    p = Path(value)
    return str(p if p.is_absolute() else base / p)


def _trace_ref(value, where: str, base: Path | None) -> TraceRef:
    if isinstance(value, dict):
        if set(value) != {"synth"} or not isinstance(value["synth"], dict):
            raise InputError(f"{where}: a trace is a path or {{synth = {{requests = ..., rate = ...}}}}, got {value!r}")
        spec = value["synth"]
        known = set(inspect.signature(_synthesize()).parameters) - {"catalog", "batch_rows"}
        for k, v in spec.items():
            if k not in known:
                raise InputError(f"{where}: synth has no key {k!r} (keys: {', '.join(sorted(known))})")
            if k == "mmpp" and isinstance(v, list):
                spec[k] = tuple(v)
            elif isinstance(v, (list, dict)):
                raise InputError(f"{where}: synth {k} must be a single value, got {v!r} (sweep it as another trace)")
        return TraceRef("synth", "", spec=tuple(sorted(spec.items())))
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: a trace is a path or an inline synth spec, got {value!r}")
    if value == "scenario":
        return TraceRef("scenario", "")
    path = _rel(base, value) if base is not None else value
    try:  # the name a user would type from here (as `replay` records it)
        name = os.path.relpath(path) if base is not None else value
    except ValueError:
        name = path
    return TraceRef("file", name, path=path)


def _synthesize():
    from ..trace.synth import synthesize

    return synthesize


def _policy_ref(name: str, base: Path | None) -> str:
    if base is not None and (name.endswith(".py") or "/" in name):
        return os.path.relpath(_rel(base, name))
    return name


def load_sweep_file(path: str | Path) -> SweepSpec:
    """Read a sweep TOML file. Unusable content raises InputError naming the file and key."""
    p = Path(path)
    require_file(p, "sweep")
    doc = read_toml(p, "sweep file")
    base = p.parent
    spec = SweepSpec(source=str(p))
    for key in doc:
        if key not in SWEEP_KEYS:
            raise InputError(f"{p}: unknown key {key!r} (keys: {', '.join(SWEEP_KEYS)})")
    if "scenario" in doc:
        s = _need(doc["scenario"], str, p, "scenario", "a built-in name or a TOML path")
        from ..scenario import SCENARIOS

        spec.scenario = s if s in SCENARIOS else _rel(base, s)
    if "catalog" in doc:
        c = _need(doc["catalog"], str, p, "catalog", "a path (or table1)")
        spec.catalog = c if c == "table1" else _rel(base, c)
    if "engine" in doc:
        spec.engine = _need(doc["engine"], str, p, "engine", "auto, fast or reference")
    if "policies" in doc:
        pol = doc["policies"]
        pol = [x.strip() for x in pol.split(",") if x.strip()] if isinstance(pol, str) else pol
        if not isinstance(pol, list) or not pol or not all(isinstance(x, str) for x in pol):
            raise InputError(f"{p}: policies must be a list of names or paths, or \"all\"")
        spec.policies = [_policy_ref(x, base) for x in pol]
    if "seeds" in doc:
        seeds = doc["seeds"]
        seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
        if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) and not isinstance(x, bool)
                                                               and x >= 0 for x in seeds):
            raise InputError(f"{p}: seeds must be a list of integers >= 0")
        spec.seeds = seeds
    if "traces" in doc:
        traces = doc["traces"]
        traces = traces if isinstance(traces, list) else [traces]
        if not traces:
            raise InputError(f"{p}: traces is empty")
        spec.traces = [_trace_ref(t, f"{p}: traces[{i}]", base) for i, t in enumerate(traces)]
    if "set" in doc:
        if not isinstance(doc["set"], dict):
            raise InputError(f"{p}: [set] must be a table of KEY = VALUE")
        spec.fixed = _flatten(doc["set"], p)
    if "grid" in doc:
        if not isinstance(doc["grid"], dict):
            raise InputError(f"{p}: [grid] must be a table of KEY = [values]")
        for key, values in _flatten(doc["grid"], p).items():
            if not isinstance(values, list) or not values:
                raise InputError(f"{p}: [grid] {key} must be a non-empty list of values")
            spec.groups.append(((key,), [(v,) for v in values]))
    if "zip" in doc:
        zips = doc["zip"] if isinstance(doc["zip"], list) else [doc["zip"]]
        for i, z in enumerate(zips):
            if not isinstance(z, dict) or not z:
                raise InputError(f"{p}: [[zip]] {i} must be a table of KEY = [values]")
            z = _flatten(z, p)
            lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in z.items()}
            if min(lengths.values()) < 1 or len(set(lengths.values())) != 1:
                raise InputError(f"{p}: [[zip]] {i}: every key needs a list of the same length, got "
                                 + ", ".join(f"{k}: {n if n >= 0 else 'not a list'}" for k, n in lengths.items()))
            spec.groups.append((tuple(z), list(zip(*z.values(), strict=True))))
    return spec


def _need(value, typ, p, key, what):
    if not isinstance(value, typ):
        raise InputError(f"{p}: {key} must be {what}, got {value!r}")
    return value
