"""One point replayed (in any worker: a process, a Ray node), and the part files the driver keeps of it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from ..errors import InputError
from .spec import DELAY_ENV, SWEEP_METADATA_KEY, Point, _synthesize

# -- running one point (in any worker) ------------------------------------------------------------

def run_point(point: Point) -> tuple[list[dict] | None, str | None]:
    """Replay one point under all its policies: (rows, None), or (None, one-line message) on failure.

    Runs in a worker process or on a Ray node: it touches no output file; the driver writes the parts.
    """
    from ..environment import env_number

    delay = env_number(DELAY_ENV, 0.0, lo=0.0, hi=3600.0)
    if delay:
        time.sleep(delay)
    from ..api import replay_many, resolve
    from ..errors import PfmError

    if point.cwd and os.path.isdir(point.cwd) and os.getcwd() != point.cwd:
        os.chdir(point.cwd)  # a Ray worker starts in a folder of its own
    try:
        sc, cat, _ = resolve(point.scenario, point.catalog, **point.overrides)
        if point.trace.kind == "synth":
            import pyarrow as pa

            from ..trace.synth import SCHEMA

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


def _start_worker(cores_busy: bool) -> None:
    """Process-pool worker initializer. With a worker on every core, a second thread for each replay's
    accounting (engine/accountant.py) finds no free core and only adds work: keep it inline (same results)."""
    _ignore_sigint()
    if cores_busy:
        _account_inline()


def _account_inline() -> None:
    """Every replay in this process accounts on its own thread (unless the user set PFMBENCH_ACCOUNT_THREAD)."""
    os.environ.setdefault("PFMBENCH_ACCOUNT_THREAD", "0")


def run_point_cores_busy(point: Point) -> tuple[list[dict] | None, str | None]:
    """run_point for a Ray task among as many as the cluster has CPUs: its worker keeps the accounting inline,
    as _start_worker does for a process pool that fills every core."""
    _account_inline()
    return run_point(point)


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
        from ..fileio import atomic_path
        from ..results import summary_frame

        try:
            self.dir.mkdir(exist_ok=True)
        except OSError as e:
            from ..fileio import os_error_text

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

        from ..fileio import atomic_path

        frames = [pl.read_parquet(self.path(p)) for p in points if self.path(p).is_file()]
        df = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        table = df.to_arrow()
        meta = dict(table.schema.metadata or {})
        meta[SWEEP_METADATA_KEY] = json.dumps({"axes": axes, "source": source}).encode()
        table = table.replace_schema_metadata(meta)
        with atomic_path(self.out) as tmp:
            pq.write_table(table, tmp)
        return df.height
