"""Sweep throughput: points/s and requests/s with --workers 1, --workers 2 (processes), two threads, and Ray.

Prints figures; asserts nothing. Each configuration runs the same sweep (the default scenario's own
synthetic trace, all six policies, a grid over GPU memory x half-life x seeds) into a fresh output file,
as a user would (`run_sweep` is what `pfmbench sweep` calls), after one warm-up run that compiles or
loads the kernel. The "threads" row runs the same points on a ThreadPoolExecutor (not a user option: it
is here to show why --workers uses processes).

    python benchmarks/sweep.py                      # small points (2,000 requests) and large (200,000)
    python benchmarks/sweep.py --requests 20000 --points 16 --only workers1,workers2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pfmbench.sweep import PartStore, SweepSpec, expand, run_point, run_sweep

MEMORY = [16, 24, 32, 40, 48, 56, 64, 80]
HALF_LIFE = [60, 600]


def spec(requests: int, points: int) -> SweepSpec:
    seeds = list(range(1, max(1, points // (len(MEMORY) * len(HALF_LIFE))) + 1))
    n_mem = min(len(MEMORY), max(1, points // len(HALF_LIFE)))
    return SweepSpec(source="benchmark", fixed={"trace.requests": requests}, seeds=seeds,
                     groups=[(("gpu_memory_gb",), [(m,) for m in MEMORY[:n_mem]]),
                             (("half_life_s",), [(h,) for h in HALF_LIFE])])


def run_threads(s: SweepSpec, out: Path, workers: int) -> None:
    points = expand(s)
    store = PartStore(out)
    with ThreadPoolExecutor(workers) as pool:
        for p, (rows, err) in zip(points, pool.map(run_point, points), strict=True):
            assert err is None, err
            store.write(p, rows)
    store.merge(points, s.axes, s.source)
    store.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, nargs="*", default=[2000, 200_000], help="requests per point")
    ap.add_argument("--points", type=int, default=32, help="points per sweep (rounded to the grid)")
    ap.add_argument("--only", default="workers1,workers2,threads2,ray2", help="comma-separated configurations")
    args = ap.parse_args()
    only = args.only.split(",")
    ray_up = False
    if "ray2" in only:
        import ray

        from pfmbench.sweep import worker_pythonpath

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": worker_pythonpath()}})
        print(f"ray.init (local, 2 CPUs): {time.perf_counter() - t:.1f} s (not counted below)")
        ray_up = True
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "sweep.parquet"
        run_sweep(spec(1000, 2), out)  # warm-up: compiled kernel loaded in this process
        print(f"{'requests/point':>14} {'points':>6} {'config':>9} {'wall s':>8} {'points/s':>9} {'M req/s':>8}  (x6 policies)")
        for requests in args.requests:
            s = spec(requests, args.points)
            n = len(expand(s))
            for config in only:
                t = time.perf_counter()
                if config == "workers1":
                    run_sweep(s, out, workers=1)
                elif config == "workers2":
                    run_sweep(s, out, workers=2)
                elif config == "threads2":
                    run_threads(s, out, 2)
                elif config == "ray2":
                    run_sweep(s, out, executor="ray", workers=2)
                else:
                    raise SystemExit(f"unknown configuration {config!r}")
                wall = time.perf_counter() - t
                print(f"{requests:>14,} {n:>6} {config:>9} {wall:>8.2f} {n / wall:>9.2f} {n * requests * 6 / wall / 1e6:>8.2f}")
    if ray_up:
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()
