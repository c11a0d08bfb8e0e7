"""Sweeps: replay every point of a grid (scenario settings x traces x seeds) under a list of policies.

A sweep is described by a TOML file (or by `pfmbench sweep --set-grid ...`)::

    scenario = "default"              # built-in name or scenario TOML (relative to this file)
    catalog = "my_models.csv"         # optional (relative to this file)
    policies = "all"                  # or ["lc", "lfu", "policies/lc_size.py"]
    seeds = [1, 2, 3]                 # optional
    traces = ["t.parquet", {synth = {requests = 500, rate = 1.0, alpha = 0.8}}]   # optional

    [set]                             # the same value at every point (any --set key)
    "trace.requests" = 2000

    [grid]                            # the cartesian product of these axes
    gpu_memory_gb = [16, 24, 40, 80]
    half_life_s = [60, 600]

    [[zip]]                           # keys varied together (equal-length lists): one more axis
    preset = ["l4", "a100-80"]
    tflops = [121, 312]

A point is one (trace, grid values, seed); it is replayed under every policy by `api.replay_many`, in
one process, so the trace is read once per point. Its rows get one column per grid key and a `run_id`
derived from the point's resolved values. Finished points are written as they complete, one small
Parquet part file each in a hidden folder beside the output (`.NAME.parts/`), and merged in point
order at the end, so the output does not depend on the executor or on which points were resumed.

A seed sets the scenario `seed` (the random policy) and the seed of a synthetic trace (an inline
`synth` spec without its own seed, or the scenario's own trace unless `trace.seed` is set explicitly).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import json
import os
import signal
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError, cut
from .fileio import check_outputs, not_a_file, read_toml, require_file

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
    from .scenario import resolve_key

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
    from .trace.synth import synthesize

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
        from .scenario import SCENARIOS

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


# -- expanding and validating ---------------------------------------------------------------------

MAX_POINTS = 100_000  # a grid beyond this is refused before it is expanded: split it into several sweeps
CONFIRM_POINTS = 1_000  # from here a sweep runs only when confirmed (--yes), after an estimate of its size
CONFIRM_REPLAYED = 10**9  # ... or when it would replay this many requests in all (points x policies x trace)
EST_REQUESTS_PER_S = 2e6  # per replay, for the estimate only (a policy on the fast engine; docs/results.md)
EST_SECONDS_PER_REPLAY = 0.05  # each point's own overhead: reading or drawing its trace, summarizing


def grid_size(spec: SweepSpec) -> int:
    """The number of points of a sweep, counted without expanding the grid."""
    n = len(spec.traces) * len(spec.seeds)
    for _, rows in spec.groups:
        n *= len(rows)
    return n


def size_estimate(spec: SweepSpec, points: int, policies: int) -> tuple[float, float]:
    """(requests replayed in all, seconds on one core), roughly: for the confirmation of a large sweep."""
    from .scenario import load_scenario

    try:
        base = load_scenario(spec.scenario).trace.requests
    except InputError:
        base = 0
    per_trace = []
    for t in spec.traces:
        if t.kind == "file":
            try:
                import pyarrow.parquet as pq

                per_trace.append(pq.read_metadata(t.path).num_rows)
            except Exception:  # noqa: BLE001  (reported with its point)
                per_trace.append(0)
        elif t.kind == "synth":
            per_trace.append(dict(t.spec).get("requests") or base)
        else:
            fixed = {_canonical(k): v for k, v in spec.fixed.items()}
            axis = [v for keys, rows in spec.groups for i, k in enumerate(keys) if _canonical(k) == "trace.requests"
                    for v in (row[i] for row in rows)]
            axis = [int(x) if isinstance(x, str) and x.strip().isdigit() else x for x in axis]
            per_trace.append(max([x for x in axis if isinstance(x, int)] or [fixed.get("trace.requests", base)]))
    per_trace = [int(x) if isinstance(x, str) and x.strip().isdigit() else x for x in per_trace]  # from --set
    per_trace = [min(x, 10**15) if isinstance(x, int) and not isinstance(x, bool) and x > 0 else 0 for x in per_trace]
    mean = sum(per_trace) / len(per_trace) if per_trace else 0
    replays = points * policies
    requests = replays * float(mean)
    return requests, replays * EST_SECONDS_PER_REPLAY + requests / EST_REQUESTS_PER_S


def check_size(spec: SweepSpec, confirmed: bool = False, policies: int = 1) -> int:
    """Refuse a grid beyond MAX_POINTS, and a large one (CONFIRM_POINTS points or CONFIRM_REPLAYED requests)
    unless `confirmed`, with an estimate; before anything is expanded. Returns the number of points."""
    n = grid_size(spec)
    if n > MAX_POINTS:
        raise InputError(f"{spec.source}: the grid has {n:,} points, beyond the limit of {MAX_POINTS:,}: "
                         "split it into several sweeps")
    if confirmed:
        return n
    requests, seconds = size_estimate(spec, n, policies)
    if n >= CONFIRM_POINTS or requests >= CONFIRM_REPLAYED:
        raise InputError(f"{spec.source}: a large sweep: {n:,} points x {policies} policies, about {requests:.3g} "
                         f"requests replayed, roughly {_duration(seconds)} on one core; give --yes "
                         "(confirm_large=True) to run it")
    return n


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def expand(spec: SweepSpec, confirmed: bool = False) -> list[Point]:
    """Every point of the grid, each checked (keys, values, policies, traces) before anything runs.

    Its size is checked first (check_size): a grid too large is refused before it is expanded, a large one
    runs only when `confirmed`."""
    from .api import parse_policies

    src = spec.source
    try:
        n_policies = len(parse_policies(spec.policies))
    except InputError:
        n_policies = 1  # reported below, with its source
    check_size(spec, confirmed, n_policies)
    if spec.engine not in ("auto", "fast", "reference"):
        raise InputError(f"{src}: engine must be auto, fast or reference, got {spec.engine!r}")
    seen_keys = {}
    for key in [*spec.fixed, *spec.axes]:
        if key in ("seed", "name"):
            raise InputError(f"{src}: {key!r} cannot be set here (use seeds = [...] for seeds)")
        if key in RESERVED_COLUMNS or key.startswith("setting_"):
            raise InputError(f"{src}: grid key {key!r} would shadow a result column")
        canon = _canonical(key)
        if canon in seen_keys:  # under any spelling: one value would silently override the other
            also = f" (also as {seen_keys[canon]!r})" if seen_keys[canon] != key else ""
            raise InputError(f"{src}: key {key!r} is given twice{also}")
        seen_keys[canon] = key
    try:
        policies = tuple(parse_policies(spec.policies))
    except InputError as e:
        raise InputError(f"{src}: policies: {e}") from None
    # Workers may run elsewhere (a Ray worker's folder is not ours): files go to them as absolute paths.
    policies = tuple(os.path.abspath(p) if p.endswith(".py") or "/" in p else p for p in policies)
    for t in spec.traces:
        if t.kind == "file" and not Path(t.path).is_file():
            raise InputError(f"{src}: {not_a_file(t.path, 'trace') or f'trace file not found: {t.path}'}")
    from .scenario import load_scenario

    try:
        base = load_scenario(spec.scenario)
    except InputError as e:
        raise InputError(f"{src}: scenario: {e}") from None
    axes = spec.axes
    grid = list(itertools.product(*[rows for _, rows in spec.groups]))
    points: list[Point] = []
    ids: dict[str, int] = {}
    catalogs: dict = {}
    synth_checked: set = set()
    for trace in spec.traces:
        for combo in grid:
            values = [v for row in combo for v in row]
            axis_values = dict(zip(axes, values, strict=True))
            for seed in spec.seeds:
                overrides = {}
                if seed is not None:
                    overrides["seed"] = seed
                    if trace.kind == "scenario":
                        overrides["trace.seed"] = seed  # set first: an explicit trace.seed below wins
                overrides.update(spec.fixed)
                overrides.update(axis_values)
                where = _describe(axis_values, trace, seed)
                tref = trace
                if trace.kind == "file":
                    tref = TraceRef("file", trace.name, path=os.path.abspath(trace.path))
                try:
                    sc = base.with_overrides(**overrides)
                    if spec.catalog is not None:  # as api.resolve does
                        sc = sc.with_overrides(**{"catalog.path": spec.catalog})
                    c = sc.catalog
                    key = (c.path, c.precision, c.runtime_overhead, c.copies_per_task, c.variants, c.adapter_rank)
                    if key not in catalogs:  # a grid over catalog keys loads each distinct catalog once
                        catalogs[key] = sc.load_catalog()
                    if trace.kind == "synth":
                        tref = _synth_ref(trace, seed)
                        if (key, tref.spec) not in synth_checked:  # its first block checks every argument
                            try:
                                next(_synthesize()(catalogs[key], batch_rows=1, **dict(tref.spec)))
                            except InputError:
                                raise
                            except (TypeError, ValueError) as e:
                                raise InputError(f"synth: {e}") from None
                            synth_checked.add((key, tref.spec))
                except InputError as e:
                    raise InputError(f"{src}: {where}: {e}") from None
                settings = {k: v for k, v in sc.as_dict().items() if k != "source"}
                run_id = hashlib.sha256(json.dumps(
                    {"settings": settings, "trace": [tref.kind, tref.name, tref.spec], "policies": policies,
                     "engine": spec.engine, "axes": axis_values},
                    sort_keys=True, default=str).encode()).hexdigest()[:12]
                if run_id in ids:
                    raise InputError(f"{src}: {where} repeats point {ids[run_id]}: every point must differ")
                ids[run_id] = len(points)
                points.append(Point(len(points), run_id, axis_values, overrides, seed, tref, policies,
                                    spec.scenario, spec.catalog, spec.engine, os.getcwd(), str(c.path)))
    return points


def _synth_ref(trace: TraceRef, seed: int | None) -> TraceRef:
    spec = dict(trace.spec)
    if "seed" not in spec:
        spec["seed"] = seed if seed is not None else 0
    items = tuple(sorted(spec.items()))
    name = "synth:" + ",".join(f"{k}={_fmt(v)}" for k, v in items)
    return TraceRef("synth", name, spec=items)


def _fmt(v) -> str:
    if isinstance(v, tuple):
        return "/".join(map(_fmt, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _describe(axis_values: dict, trace: TraceRef, seed) -> str:
    parts = [f"{k}={cut(v)}" for k, v in axis_values.items()]  # a 400-digit value stays one short line
    if trace.kind == "file":
        parts.append(f"trace={cut(trace.name)}")
    elif trace.kind == "synth":
        parts.append("trace=" + cut(_synth_ref(trace, seed).name))
    if seed is not None:
        parts.append(f"seed={cut(seed)}")
    return f"point ({', '.join(parts)})" if parts else "point"


# -- running one point (in any worker) ------------------------------------------------------------

def run_point(point: Point) -> tuple[list[dict] | None, str | None]:
    """Replay one point under all its policies: (rows, None), or (None, one-line message) on failure.

    Runs in a worker process or on a Ray node: it touches no output file; the driver writes the parts.
    """
    from .environment import env_number

    delay = env_number(DELAY_ENV, 0.0, lo=0.0, hi=3600.0)
    if delay:
        time.sleep(delay)
    from .api import replay_many, resolve
    from .errors import PfmError

    if point.cwd and os.path.isdir(point.cwd) and os.getcwd() != point.cwd:
        os.chdir(point.cwd)  # a Ray worker starts in a folder of its own
    try:
        sc, cat, _ = resolve(point.scenario, point.catalog, **point.overrides)
        if point.trace.kind == "synth":
            import pyarrow as pa

            from .trace.synth import SCHEMA

            trace = pa.Table.from_batches(list(_synthesize()(cat, **dict(point.trace.spec))), SCHEMA)
        elif point.trace.kind == "file":
            trace = point.trace.path
        else:
            trace = None
        rows = replay_many(trace, list(point.policies), sc, cat, engine=point.engine)
    except PfmError as e:
        return None, str(e)
    except MemoryError:
        return None, "out of memory"
    except Exception as e:  # noqa: BLE001  (report it with the point's values; keep the other points)
        return None, f"{type(e).__name__}: {e}"
    out = []
    for r in rows:
        row = {"run_id": point.run_id, **point.axes}
        row.update(r)
        if point.trace.kind != "scenario":
            row["trace"] = point.trace.name
        out.append(row)
    return out, None


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is the driver's to handle (it stops the workers itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- part files ---------------------------------------------------------------------------------

class PartStore:
    """One Parquet file per finished point in `.NAME.parts/` beside the output; each written atomically."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        parent = self.out.parent if str(self.out.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"{self.out}: output folder {parent} does not exist")
        if self.out.is_dir():
            raise InputError(f"{self.out}: is a directory")
        self.dir = parent / f".{self.out.name}.parts"

    def path(self, point: Point) -> Path:
        return self.dir / f"{point.run_id}.parquet"

    def valid(self, point: Point) -> bool:
        """A part counts only if it reads back whole with this point's run id and every policy."""
        p = self.path(point)
        if not p.is_file():
            return False
        try:
            import pyarrow.parquet as pq

            t = pq.read_table(p, columns=["run_id"])
        except Exception:  # noqa: BLE001  (unreadable: redo the point)
            return False
        return t.num_rows == len(point.policies) and set(t.column("run_id").to_pylist()) == {point.run_id}

    def write(self, point: Point, rows: list[dict]) -> None:
        from .fileio import atomic_path
        from .results import summary_frame

        try:
            self.dir.mkdir(exist_ok=True)
        except OSError as e:
            from .fileio import os_error_text

            raise InputError(f"{self.out}: cannot make its part folder {self.dir.name}: {os_error_text(e)}") from None
        with atomic_path(self.path(point), lock=False) as tmp:  # the output's lock covers its parts
            summary_frame(rows).write_parquet(tmp)

    def clear(self) -> None:
        """Remove our part files (and the folder once empty); nothing else is touched."""
        if not self.dir.is_dir():
            return
        for p in self.dir.iterdir():
            if p.suffix in (".parquet", ".tmp") and p.is_file():
                p.unlink()
        try:
            self.dir.rmdir()
        except OSError:
            pass

    def merge(self, points: list[Point], axes: list[str], source: str) -> int:
        """Write the parts of `points` (finished ones) to the output in point order, atomically."""
        import polars as pl
        import pyarrow.parquet as pq

        from .fileio import atomic_path

        frames = [pl.read_parquet(self.path(p)) for p in points if self.path(p).is_file()]
        df = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        table = df.to_arrow()
        meta = dict(table.schema.metadata or {})
        meta[SWEEP_METADATA_KEY] = json.dumps({"axes": axes, "source": source}).encode()
        table = table.replace_schema_metadata(meta)
        with atomic_path(self.out) as tmp:
            pq.write_table(table, tmp)
        return df.height


# -- executors ----------------------------------------------------------------------------------

Done = Callable[[Point, list[dict] | None, str | None], None]


def _run_inline(points: list[Point], done: Done) -> None:
    for p in points:
        rows, err = run_point(p)
        done(p, rows, err)


def _run_processes(points: list[Point], workers: int, done: Done) -> None:
    """A pool of spawned processes: each point is independent and Python-heavy around the kernel."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_ignore_sigint)
    # Workers started while SIGINT is ignored inherit that, so a Ctrl-C never reaches one before its
    # initializer has run; the driver stops them itself.
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        futures = {pool.submit(run_point, p): p for p in points}
    finally:
        signal.signal(signal.SIGINT, old)
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            broken = []
            for f in sorted(finished, key=lambda f: futures[f].index):
                try:
                    rows, err = f.result()
                except BrokenProcessPool:
                    broken.append(futures[f])
                    continue
                done(futures[f], rows, err)
            if broken:  # every point not finished is lost with the pool
                raise WorkerDied(sorted(broken + [futures[f] for f in pending], key=lambda p: p.index))
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


class WorkerDied(Exception):
    """A worker process died (a signal, the OOM killer): the points it and the pool had not finished."""

    def __init__(self, points: list[Point]):
        super().__init__(f"a worker process died (killed by a signal, or out of memory); {len(points)} points "
                         "were not finished")
        self.points = points


def _stop(pool) -> None:
    """Stop a process pool now: cancel what has not started and end the running workers."""
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.terminate()
        except (OSError, ValueError):
            pass
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.join(timeout=5)


def start_ray(address: str | None, workers: int) -> bool:
    """Connect to Ray (a cluster at `address`, else a local one with `workers` CPUs when > 1), unless this
    process already is; returns whether it started it (and so must shut it down). One line if it cannot."""
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'pfmbench[ray]'") from None
    if ray.is_initialized():
        return False
    import logging

    kwargs = {"address": address, "include_dashboard": False, "log_to_driver": False,
              "logging_level": logging.ERROR, "configure_logging": True}
    if address is None:
        if workers > 1:
            kwargs["num_cpus"] = workers
        # Local workers import this very pfmbench (a source tree may shadow an installed copy).
        kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": worker_pythonpath()}}
    try:
        ray.init(**kwargs)
    except Exception as e:  # noqa: BLE001  (no cluster at that address, ...)
        raise InputError(f"cannot start or reach Ray{f' at {address}' if address else ''}: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return True


def _run_ray(points: list[Point], address: str | None, workers: int, done: Done) -> None:
    """Points as Ray tasks (retried if a node is lost); results come back to the driver, which writes them."""
    started = start_ray(address, workers)
    import ray
    task = ray.remote(max_retries=3, num_cpus=1)(run_point)
    refs = {task.remote(p): p for p in points}
    pending = list(refs)
    # Ray prints its own notes (object store, scheduling) on stdout at times: stdout is for results only.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                for ref in ready:
                    try:
                        rows, err = ray.get(ref)
                    except Exception as e:  # noqa: BLE001  (the task's node or worker was lost for good)
                        rows, err = None, f"Ray task failed: {type(e).__name__}; rerun with --resume"
                    done(refs[ref], rows, err)
        except BaseException:
            for ref in pending:
                with contextlib.suppress(Exception):  # already finished or gone
                    ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()


def worker_pythonpath() -> str:
    """PYTHONPATH for local Ray workers: the folder this pfmbench is imported from, then the caller's."""
    here = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)


# -- a whole sweep --------------------------------------------------------------------------------

@dataclass
class SweepResult:
    points: int
    computed: int = 0
    resumed: int = 0
    rows: int = 0
    failed: list[tuple[Point, str]] = field(default_factory=list)
    out: Path | None = None
    lost: str | None = None  # why points were lost at once (a dead worker process)


def run_sweep(spec: SweepSpec, out: str | Path, *, workers: int = 1, executor: str = "local",
              address: str | None = None, resume: bool = False,
              progress: Callable[[int, int], None] | None = None,
              on_failure: Callable[[Point, str], None] | None = None, confirm_large: bool = False) -> SweepResult:
    """Expand, check and run a sweep; write one row per (point, policy) to `out` (Parquet).

    Finished points are kept as part files until the output is complete, so that `resume=True` after an
    interruption (KeyboardInterrupt propagates) or a failure computes only the missing points. If any
    point fails, the output holds the others and the parts are kept.
    """
    if executor not in ("local", "ray"):
        raise InputError(f"--executor must be local or ray, got {executor!r}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    points = expand(spec, confirmed=confirm_large)
    # The output rules of every command (fileio): never over an input (the sweep file, a trace, the
    # scenario, a catalog, a policy file), a device or a folder, checked before anything runs.
    # One writer per output (and so per part folder): a second sweep to `out` is refused here, before it
    # clears or resumes the parts of the one running.
    locks = check_outputs({"-o": out}, sweep_inputs(spec, points))
    try:
        return _run_locked(spec, points, out, workers, executor, address, resume, progress, on_failure)
    finally:
        from .fileio import unlock_output

        for key in locks:
            unlock_output(key)


def _run_locked(spec, points, out, workers, executor, address, resume, progress, on_failure) -> SweepResult:
    store = PartStore(out)
    if not resume:
        store.clear()
    todo = [p for p in points if not (resume and store.valid(p))]
    for p in todo:  # an unusable part (another sweep's, or a damaged file) is redone, never merged
        store.path(p).unlink(missing_ok=True)
    result = SweepResult(points=len(points), resumed=len(points) - len(todo))
    finished = result.resumed
    if progress:
        progress(finished, len(points))

    def done(point: Point, rows, err) -> None:
        nonlocal finished
        if err is None:
            try:
                store.write(point, rows)
            except InputError as e:  # the disk is full (or gone read-only): no part folder is left behind
                store.clear()
                raise InputError(f"{store.out}: {e}") from None
            result.computed += 1
        else:
            result.failed.append((point, err))
            if on_failure:
                on_failure(point, err)
        finished += 1
        if progress:
            progress(finished, len(points))

    if todo:
        if executor == "ray":
            _run_ray(todo, address, workers, done)
        elif workers == 1 or len(todo) == 1:
            _run_inline(todo, done)
        else:
            try:
                _run_processes(todo, min(workers, len(todo)), done)
            except WorkerDied as e:
                result.lost = str(e)
                result.failed.extend((p, "not finished: a worker process died") for p in e.points)
    result.failed.sort(key=lambda pf: pf[0].index)
    if result.computed + result.resumed:  # the finished points, in point order
        try:
            result.rows = store.merge(points, spec.axes, spec.source)
        except InputError:  # the output could not be written (a full disk): neither it nor the parts stay
            store.clear()
            raise
        result.out = Path(out)
    if not result.failed:
        store.clear()
    return result


def sweep_inputs(spec: SweepSpec, points: list[Point]) -> list[str]:
    """Every file a sweep reads: the sweep file, its scenario, catalogs, traces and drop-in policy files."""
    from .scenario import SCENARIOS

    files = {spec.source, *(p.catalog_path for p in points if p.catalog_path != "table1")}
    if spec.scenario is not None and spec.scenario not in SCENARIOS:
        files.add(spec.scenario)
    for p in points:
        if p.trace.kind == "file":
            files.add(p.trace.path)
        files.update(x for x in p.policies if x.endswith(".py") or "/" in x)
    return sorted(files)


def sweep_axes(path: str | Path) -> list[str]:
    """The grid keys recorded in a sweep output (empty for a `replay --out` file)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        return list(json.loads(meta[SWEEP_METADATA_KEY]).get("axes", [])) if SWEEP_METADATA_KEY in meta else []
    except Exception:  # noqa: BLE001
        return []

