"""A whole sweep: expand, run the missing points on an executor, merge the parts in point order."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..fileio import check_outputs
from .executors import WorkerDied, _run_inline, _run_processes, _run_ray
from .grid import expand
from .point import PartStore
from .spec import SWEEP_METADATA_KEY, Point, SweepSpec

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
        from ..fileio import unlock_output

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
    from ..scenario import SCENARIOS

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
