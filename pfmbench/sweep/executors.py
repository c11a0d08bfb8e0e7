"""Where points run: inline, on spawned worker processes, or as Ray tasks. Results come back to the driver."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from .point import Point, _start_worker, run_point, run_point_cores_busy

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

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_start_worker,
                               initargs=(workers >= (os.cpu_count() or 1),))
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
    # A task takes one CPU: with a task on every CPU, no core is free for each replay's accounting thread.
    busy = len(points) >= ray.cluster_resources().get("CPU", 1)
    task = ray.remote(max_retries=3, num_cpus=1)(run_point_cores_busy if busy else run_point)
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
    here = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
