"""Expanding a sweep into points, after checking its size (refused past MAX_POINTS, confirmed past CONFIRM_*)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

from ..errors import InputError, cut
from ..fileio import not_a_file
from .spec import RESERVED_COLUMNS, Point, SweepSpec, TraceRef, _canonical, _synthesize

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
    from ..scenario import load_scenario

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
    from ..api import parse_policies

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
    from ..scenario import load_scenario

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
