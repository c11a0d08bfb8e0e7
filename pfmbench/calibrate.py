"""`pfmbench calibrate`: fit unpublished constants to a target table (MODEL.md §8, docs/model.md).

A target is a set of cells (policy, metric, value): the paper's Table II (`paper-table2`, built in), or a
user's CSV or TOML from a testbed. The search varies the free keys (scenario keys, the warm-up, trace keys
of a synthetic trace), each between its bounds and shared by every policy (never a value per policy), to
minimise the mean |ln(pfmbench / target)| over the target's non-zero cells. The optimiser is scipy's
differential evolution: global, derivative-free (a replay's cost is piecewise constant in memory and
integer keys), seeded, and it evaluates a generation at once, so the evaluations run in parallel on the
sweep's executors (worker processes, or Ray). Every evaluation is deterministic (fixed seeds), so the same
command gives the same fit.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .fileio import read_toml, require_file

PAPER_TARGET = "paper-table2"
# A cell whose value is 0 (or of the other sign) where the target is not cannot be scored by a log ratio:
# it counts as this far off (a factor of 1000), and every ratio is clipped there, so that one cell cannot
# outweigh the rest.
MAX_LOG_RATIO = math.log(1000.0)


@dataclass(frozen=True)
class Cell:
    policy: str
    metric: str
    target: float


@dataclass
class FreeKey:
    key: str  # as the user gave it (reported back as given)
    lo: float
    hi: float
    integer: bool = False


def summary_metrics() -> set[str]:
    """The numeric columns of a summary row (MODEL.md §6): what a target cell may name."""
    from .engine.record import new_totals
    from .results import summarize
    from .scenario import Scenario

    t = new_totals()
    row = summarize(t.counts, t.sums, t.hist, Scenario(), "x", "t", "c")
    return {k for k, v in row.items() if (isinstance(v, (int, float)) and not isinstance(v, bool)) or v is None}


def log_ratio(value: float | None, target: float) -> float:
    """|ln(value / target)|, clipped at MAX_LOG_RATIO (a value of 0, None or the other sign: the clip)."""
    if value is None or not math.isfinite(value) or value / target <= 0:
        return MAX_LOG_RATIO
    return min(abs(math.log(value / target)), MAX_LOG_RATIO)


def score(cells: list[Cell], values: dict) -> float:
    """Mean |ln(pfmbench / target)| over the cells with a non-zero target; values: {policy: {metric: v}}."""
    scored = [log_ratio(values[c.policy].get(c.metric), c.target) for c in cells if c.target != 0]
    return sum(scored) / len(scored) if scored else 0.0


# -- the target ------------------------------------------------------------------------------------------
def paper_cells() -> list[Cell]:
    from .table2 import PAPER, POLICIES, ROWS

    return [Cell(p, k, float(PAPER[p][k])) for p in POLICIES for k, _ in ROWS]


def load_target(spec: str) -> list[Cell]:
    """The cells of a target: `paper-table2`, a CSV with columns policy, metric, value, or a TOML with
    [[cell]] tables (policy, metric, value) or one table per policy ({metric = value})."""
    if spec == PAPER_TARGET:
        return paper_cells()
    p = Path(spec)
    require_file(p, "target", f"{p}: target file not found (or give {PAPER_TARGET})")
    metrics = summary_metrics()
    raw: list[tuple[str, object, object, str]] = []  # (policy, metric, value, where)
    if p.suffix.lower() == ".toml":
        doc = read_toml(p, "target")
        for key, value in doc.items():
            if key == "cell" and isinstance(value, list):
                for i, c in enumerate(value, 1):
                    if not isinstance(c, dict) or set(c) != {"policy", "metric", "value"}:
                        raise InputError(f"{p}: [[cell]] {i}: needs exactly policy, metric and value")
                    raw.append((c["policy"], c["metric"], c["value"], f"[[cell]] {i}"))
            elif isinstance(value, dict):
                for metric, v in value.items():
                    raw.append((key, metric, v, f"[{key}] {metric}"))
            else:
                raise InputError(f"{p}: {key!r}: expected [[cell]] tables or a table of metric = value per policy")
    elif p.suffix.lower() == ".csv":
        try:
            with open(p, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                header = [h.strip() for h in next(reader, [])]
                if sorted(header) != ["metric", "policy", "value"]:
                    raise InputError(f"{p}: line 1: the header must be policy,metric,value, got {','.join(header)!r}")
                for row in reader:
                    if not any(x.strip() for x in row):
                        continue
                    if len(row) != 3:
                        raise InputError(f"{p}: line {reader.line_num}: expected 3 fields, got {len(row)}")
                    d = dict(zip(header, (x.strip() for x in row), strict=True))
                    raw.append((d["policy"], d["metric"], d["value"], f"line {reader.line_num}"))
        except UnicodeDecodeError:
            raise InputError(f"{p}: not UTF-8 text") from None
    else:
        raise InputError(f"{p}: a target is a .csv or .toml file (or {PAPER_TARGET})")
    cells, seen = [], set()
    for policy, metric, value, where in raw:
        if not isinstance(policy, str) or not policy.strip():
            raise InputError(f"{p}: {where}: policy must be a policy name")
        if metric not in metrics:
            raise InputError(f"{p}: {where}: unknown metric {metric!r} (any numeric summary column, "
                             "docs/results.md)")
        try:
            v = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise InputError(f"{p}: {where}: value must be a finite number, got {value!r}")
        if (policy.strip().lower(), metric) in seen:
            raise InputError(f"{p}: {where}: {policy}/{metric} is given twice")
        seen.add((policy.strip().lower(), metric))
        cells.append(Cell(policy.strip().lower(), metric, v))
    if not any(c.target != 0 for c in cells):
        raise InputError(f"{p}: no cell with a non-zero value to fit")
    return cells


def parse_free(items: list[str], *, trace_keys: bool) -> list[FreeKey]:
    """`KEY=LO:HI` -> FreeKey. KEY: a scenario key (`gpu_memory_gb`, `edge.load_gbps`), `warmup` /
    `warmup_requests` / `warmup_s`, or a trace key (`trace.alpha`, `trace.rate`) where the runs'
    trace is synthetic (trace_keys)."""
    from .scenario import BOUNDS, _field_type, resolve_key

    out = []
    for item in items:
        key, eq, rng = item.partition("=")
        key = key.strip()
        lo_s, colon, hi_s = rng.partition(":")
        if not eq or not key or not colon:
            raise InputError(f"--free expects KEY=LO:HI, got {item!r}")
        section, name = resolve_key(key)
        if section == "":
            raise InputError(f"--free {key}: not a constant to fit (a top-level key)")
        kind = _field_type(section, name)
        if kind not in (int, float):
            raise InputError(f"--free {key}: only numeric keys can be fitted, not a {kind.__name__}")
        if section == "trace" and (not trace_keys or name in ("requests", "seed")):
            raise InputError(f"--free {key}: this run's trace does not use it (trace.rate and trace.alpha apply "
                             "to a synthetic trace: no trace file)")
        try:
            lo, hi = float(lo_s), float(hi_s)
        except ValueError:
            raise InputError(f"--free {key}: bounds must be numbers, got {rng!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InputError(f"--free {key}: need finite bounds LO < HI, got {rng!r}")
        if (section, name) in BOUNDS:
            blo, bhi = BOUNDS[section, name]
            if lo < blo or hi > bhi:
                raise InputError(f"--free {key}: {lo:g}:{hi:g} leaves the key's allowed range {blo:g}..{bhi:g}")
        if any(resolve_key(f.key) == (section, name) for f in out):
            raise InputError(f"--free {key}: given twice")
        out.append(FreeKey(key, lo, hi, kind is int))
    if not out:
        raise InputError("calibrate: give at least one --free KEY=LO:HI")
    return out


# -- evaluating one point --------------------------------------------------------------------------------
@dataclass
class Objective:
    """What one point of the search costs: picklable, so that worker processes and Ray can evaluate it.

    kind: "table2" (the paper's experiment, table2.restate) or "replay" (a trace or the scenario's own
    synthetic trace through replay_many)."""

    kind: str
    free: list[FreeKey]
    cells: list[Cell]  # the cells fitted
    policies: list[str]
    base: dict = field(default_factory=dict)  # fixed overrides (--set and the replay options)
    trace: str | None = None
    scenario: str | None = None
    catalog: str | None = None
    engine: str = "auto"
    runs: int = 40
    requests: int = 88

    def constants(self, x) -> dict:
        return {f.key: (round(v) if f.integer else float(v)) for f, v in zip(self.free, x, strict=True)}

    def values(self, x) -> dict:
        """{policy: {metric: value}} at point x."""
        over = {**self.base, **self.constants(x)}
        if self.kind == "table2":
            from .table2 import restate

            return restate(self.runs, self.requests, **over)
        from .api import replay_many

        rows = replay_many(self.trace, self.policies, self.scenario, self.catalog, engine=self.engine, **over)
        return {r["policy"].lower(): r for r in rows}

    def __call__(self, x) -> float:
        return score(self.cells, self.values(x))


def _pool_map(workers: int):
    """A map over `workers` processes (spawned: no thread of this one is copied mid-way)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return pool, pool.map


def _evaluate(objective, x) -> float:
    return objective(x)


def _ray_map(address: str | None, workers: int):
    from .sweep import start_ray

    started = start_ray(address, workers)
    import ray

    task = ray.remote(num_cpus=1)(_evaluate)

    def ray_map(f, xs):
        return ray.get([task.remote(f, x) for x in xs])

    class _Closer:
        def shutdown(self):
            if started:
                ray.shutdown()

    return _Closer(), ray_map


@dataclass
class Fit:
    constants: dict
    score: float
    cells: list[dict]  # policy, metric, target, value, ratio (every target cell)
    holdout_score: float | None = None
    evaluations: int = 0
    generations: int = 0


def calibrate(objective: Objective, all_cells: list[Cell], holdout: list[str] | None = None, *,
              workers: int = 1, executor: str = "local", address: str | None = None, generations: int = 12,
              popsize: int = 6, seed: int = 0, start: dict | None = None, polish: int = 0, progress=None) -> Fit:
    """Fit objective.free to objective.cells with differential evolution; report every cell of all_cells at
    the fitted point, and the score of the held-out policies' cells (not fitted) when `holdout`.

    start: {free key: value}, a point the first generation includes (a previous fit, to go on from).
    polish: at most this many more evaluations of a Nelder-Mead search from the best point found, over the
    continuous keys (integer keys stay): a local refinement, run in this process."""
    import numpy as np
    from scipy.optimize import differential_evolution, minimize

    if executor not in ("local", "ray"):
        raise InputError(f"--executor must be local or ray, got {executor!r}")
    if not 1 <= workers <= 1024:
        raise InputError(f"--workers must be 1..1024, got {workers}")
    if not 1 <= generations <= 10_000 or not 1 <= popsize <= 1000 or not 0 <= polish <= 100_000:
        raise InputError("--generations must be 1..10000, --popsize 1..1000 and --polish 0..100000")
    bounds = [(f.lo, f.hi) for f in objective.free]
    x0 = None
    if start:
        names = [f.key for f in objective.free]
        unknown = sorted(set(start) - set(names))
        missing = [k for k in names if k not in start]
        if unknown or missing:
            raise InputError(f"--start must give each free key once: {', '.join(unknown)} not free"
                             if unknown else f"--start must give each free key: {', '.join(missing)} missing")
        x0 = np.array([float(start[k]) for k in names])
        for f, v in zip(objective.free, x0, strict=True):
            if not f.lo <= v <= f.hi:
                raise InputError(f"--start {f.key}={v:g} is outside its bounds {f.lo:g}:{f.hi:g}")
    integrality = np.array([f.integer for f in objective.free])
    closer, mapper = (None, map)
    if executor == "ray":
        closer, mapper = _ray_map(address, workers)
    elif workers > 1:
        closer, mapper = _pool_map(workers)
    state = {"gen": 0}

    def tick(*_):
        state["gen"] += 1
        if progress:
            progress(state["gen"], generations)

    try:
        if progress:
            progress(0, generations)
        res = differential_evolution(objective, bounds, maxiter=generations, popsize=popsize, seed=seed,
                                     polish=False, init="sobol", updating="deferred", workers=mapper,
                                     integrality=integrality if integrality.any() else None, callback=tick,
                                     tol=1e-4, x0=x0)
    finally:
        if closer is not None:
            closer.shutdown()
    x, best, nfev = np.array(res.x, dtype=float), float(res.fun), int(res.nfev)
    free = [i for i, f in enumerate(objective.free) if not f.integer]
    if polish and free:
        def local(y):
            z = x.copy()
            z[free] = np.clip(y, [bounds[i][0] for i in free], [bounds[i][1] for i in free])
            return objective(z)

        loc = minimize(local, x[free], method="Nelder-Mead", bounds=[bounds[i] for i in free],
                       options={"maxfev": polish, "xatol": 1e-4, "fatol": 1e-5})
        nfev += int(loc.nfev)
        if loc.fun < best:
            x[free] = np.clip(loc.x, [bounds[i][0] for i in free], [bounds[i][1] for i in free])
    values = objective.values(x)
    cells = []
    for c in all_cells:
        v = values.get(c.policy, {}).get(c.metric) if c.policy in values else None
        cells.append({"policy": c.policy, "metric": c.metric, "target": c.target, "value": v,
                      "ratio": (v / c.target if c.target and v is not None else None)})
    fit = Fit(objective.constants(x), best, cells, evaluations=nfev, generations=int(res.nit))
    # The reported score is recomputed at the reported point (the optimiser's best is the same number).
    fit.score = score(objective.cells, values)
    if holdout:
        held = [c for c in all_cells if c.policy in holdout]
        fit.holdout_score = score(held, values)
    return fit
