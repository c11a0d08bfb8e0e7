"""pfmbench speed and memory figures: printed beside their targets, never asserted.

    python benchmarks/run.py                      # 10,000,000 requests (a few minutes on 2 cores)
    python benchmarks/run.py --quick              # 200,000 requests: a smoke run
    python benchmarks/run.py --only kernel        # kernel, e2e, memory, lcs (comma-separated)
    python benchmarks/run.py --only lcs           # LRU beside libCacheSim's (benchmarks/vs_libcachesim.py)

Three measurements, one at a time (the machine may have only two cores):
  kernel  the numba kernel alone, per built-in policy, single thread, after compilation: requests/s (from the
          thread's CPU time) on a
          synthetic trace over a 100-model and a 10,000-model catalog (random sizes 0.1-40 GB, LFMs with
          in-context learning and vision models, Zipf(0.8) popularity over (model, task) pairs in a
          shuffled order, GPU memory a fraction of the catalog's total so that models contend).
  e2e     wall time of `pfmbench replay FILE --policy all` (six policies) in a subprocess on a Parquet
          trace written by `pfmbench synth`: Table I in the default scenario, and the 100-model catalog.
  memory  peak resident memory (max RSS, from GNU time) of those summary-only subprocesses, per request; of a
          1,000-request run, the fixed cost of starting Python, numba, polars and pyarrow.
  lcs     (only when asked for) pfmbench LRU from Parquet beside libCacheSim's LRU from its binary format,
          one trace, one run: see benchmarks/vs_libcachesim.py.
Files go to --workdir (default: a temporary directory, removed at the end unless --keep).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pfmbench.catalog import load_catalog
from pfmbench.engine.fast import FastEngine, next_uses
from pfmbench.engine.tables import build_tables
from pfmbench.policies import get_policy, policy_names
from pfmbench.scenario import load_scenario
from pfmbench.trace.schema import read_trace
from pfmbench.trace.synth import write_synth

POLICIES = tuple(n for n in policy_names() if get_policy(n).fast is not None)  # every built-in
TARGET_KERNEL = 30e6  # requests/s for lru, fifo and random at 100 models (issue 6)
KERNEL_TARGET_POLICIES = ("lru", "fifo", "random")
TARGET_E2E_S = 2.0  # 10M-request Parquet trace, `--policy all`, end to end on 2 cores (issue 6; was 10 s)
TARGET_BYTES_PER_REQUEST = 40.0  # peak memory of a summary-only run
GB = 1e9


# -- synthetic catalogs ---------------------------------------------------------------------------
def write_catalog(path: Path, n_models: int, seed: int = 7) -> float:
    """A catalog CSV of n_models with random sizes 0.1-40 GB; returns their total memory, GB.

    40% LFMs with in-context learning (1-3 tasks, k_few 16/32/64; GFLOP per token = 2 x params in
    billions), 60% vision models (one task, 5-300 GFLOP per input). params_m follows from the size at
    fp16 with the default 20% runtime overhead, though memory_gb is given explicitly."""
    rng = np.random.default_rng(seed)
    sizes = rng.uniform(0.1, 40.0, n_models)
    rows = []
    for i, mem in enumerate(sizes):
        params_m = mem * 1e3 / 2.4
        if rng.random() < 0.4:
            k_few = int(rng.choice([16, 32, 64]))
            for t in range(int(rng.integers(1, 4))):
                zero = rng.uniform(5, 60)
                one = zero + rng.uniform(1, 10)
                rows.append({"model": f"lfm{i}", "family": "LFM", "task": f"task{t}", "params_m": f"{params_m:.3f}",
                             "gflops": f"{2 * params_m / 1e3:.4f}", "k_few": k_few, "zero_shot": f"{zero:.2f}",
                             "one_shot": f"{one:.2f}", "few_shot": f"{one + rng.uniform(0, 8):.2f}",
                             "memory_gb": f"{mem:.6f}"})
        else:
            rows.append({"model": f"vfm{i}", "family": "VFM", "task": "classification", "params_m": f"{params_m:.3f}",
                         "gflops": f"{rng.uniform(5, 300):.2f}", "k_few": "", "zero_shot": f"{rng.uniform(40, 90):.2f}",
                         "one_shot": "", "few_shot": "", "memory_gb": f"{mem:.6f}"})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return float(sizes.sum())


def synth_trace(path: Path, catalog, requests: int) -> None:
    write_synth(path, catalog, requests=requests, rate=1.0, alpha=0.8, shuffle=True, seed=1)


# -- measurements ---------------------------------------------------------------------------------
def kernel_rates(catalog, gpu_gb: float, trace, repeat: int, policies=POLICIES) -> list[dict]:
    """Requests/s of the kernel alone for each policy: the best of `repeat` whole-trace replays, from the CPU
    time of the replaying thread (time.thread_time), so that other processes on a shared machine count less.
    The accounting stays on that thread (account_thread=False), so its CPU time is the whole kernel's."""
    tables = build_tables(load_scenario(gpu_memory_gb=gpu_gb), catalog)
    warm = trace.slice(0, min(len(trace), 10_000))
    out = []
    for name in policies:
        policy = get_policy(name)
        # An offline policy (belady) gets each request's next use, computed outside the timed replay.
        nxt = next_uses(tables.pair_model[trace.pair]) if policy.needs_next_use else None
        FastEngine(tables, policy, 0).run(warm, None, nxt[:len(warm)] if nxt is not None else None)  # compile
        best = float("inf")
        for _ in range(repeat):
            eng = FastEngine(tables, policy, 0, account_thread=False)
            t0 = time.thread_time()
            eng.run(trace, None, nxt)
            best = min(best, time.thread_time() - t0)
        state = eng.state
        c = state.totals.counts
        n = int(c[0])
        out.append({"policy": name, "seconds": best, "rate": len(trace) / best, "hit_ratio": c[1] / n,
                    "evictions_per_request": c[3] / n, "cached": int(state.cached.sum())})
    return out


def run_child(args: list[str]) -> tuple[float, int, int]:
    """Run a command; return (wall seconds, peak RSS bytes, exit code).

    The peak comes from GNU time (/usr/bin/time), which forks the command from its own small process.
    Asking the kernel directly (wait4 or RUSAGE_CHILDREN on our own child) would not do: Linux counts a
    child's resident memory before exec, so a child forked from this (large) process would report at
    least our own peak."""
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        cmd = [gnu_time, "-f", "%M", "-o", out.name, *args] if gnu_time else args
        t0 = time.perf_counter()
        p = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - t0
        rss = int(out.read().split()[-1]) * 1024 if gnu_time else -1  # %M is in KiB
    if p.returncode:
        print(f"  ! {' '.join(args)} exited {p.returncode}: {p.stderr.decode(errors='replace').strip()[-500:]}")
    return wall, rss, p.returncode


def pfmbench_cmd(*args) -> list[str]:
    exe = shutil.which("pfmbench")
    return [exe, *args] if exe else [sys.executable, "-m", "pfmbench", *args]


# -- printing --------------------------------------------------------------------------------------
def mark(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}, {platform.system()}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000_000, help="requests per trace (default 10,000,000)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 200,000 requests, one repeat")
    ap.add_argument("--repeat", type=int, default=3, help="kernel replays per policy; the best counts (default 3)")
    ap.add_argument("--only", default="kernel,e2e,memory",
                    help="comma-separated: kernel, e2e, memory, lcs (default: the first three)")
    ap.add_argument("--gpu-fraction", default="0.25",
                    help="GPU memory as a fraction of the synthetic catalog's total memory; comma-separated for\n"
                         "several (default 0.25: about half the requests miss under lru)")
    ap.add_argument("--policies", default=",".join(POLICIES),
                    help="comma-separated built-ins for the kernel measurement (default: every one)")
    ap.add_argument("--workdir", type=Path, help="where to write catalogs and traces (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the workdir")
    a = ap.parse_args(argv)
    if a.quick:
        a.requests, a.repeat = min(a.requests, 200_000), 1
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    fractions = [float(f) for f in a.gpu_fraction.split(",") if f.strip()]
    work = a.workdir or Path(tempfile.mkdtemp(prefix="pfmbench-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n = a.requests
    import pfmbench

    print(f"pfmbench {pfmbench.__version__} · {machine()}")
    print(f"command: python benchmarks/run.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    print(f"requests per trace: {n:,} · workdir {work}\n")

    cats = {}
    for n_models in (100, 10_000):
        path = work / f"catalog{n_models}.csv"
        total = write_catalog(path, n_models)
        cats[n_models] = (path, load_catalog(path), total)

    try:
        if "kernel" in only:
            print(f"== kernel: requests/s, single thread, after compilation (target >= {TARGET_KERNEL / 1e6:.0f} M/s "
                  "for lru, fifo, random; CPU time of the replaying thread)")
            for n_models, (cpath, cat, total) in cats.items():
                trace_path = work / f"trace{n_models}.parquet"
                t0 = time.perf_counter()
                synth_trace(trace_path, cat, n)
                t_synth = time.perf_counter() - t0
                t0 = time.perf_counter()
                trace = read_trace(trace_path, cat)
                t_read = time.perf_counter() - t0
                print(f"-- {n_models:,} models, {len(cat.pairs):,} (model, task) pairs, {total:,.0f} GB in all · "
                      f"synth {t_synth:.1f} s, read_trace {t_read:.2f} s ({n / t_read / 1e6:.1f} M rows/s)")
                for frac in fractions:
                    gpu = frac * total
                    print(f"   GPU {gpu:,.0f} GB ({frac:g} of the catalog)")
                    print(f"   {'policy':<9} {'M req/s':>8} {'s':>7} {'hit ratio':>9} {'evict/req':>9} {'cached':>7}")
                    for r in kernel_rates(cat, gpu, trace, a.repeat, [p.strip() for p in a.policies.split(",") if p.strip()]):
                        tgt = ""
                        if r["policy"] in KERNEL_TARGET_POLICIES:
                            tgt = f"  {mark(r['rate'] >= TARGET_KERNEL)} >= {TARGET_KERNEL / 1e6:.0f} M/s"
                        print(f"   {r['policy']:<9} {r['rate'] / 1e6:8.1f} {r['seconds']:7.3f} {r['hit_ratio']:9.3f} "
                              f"{r['evictions_per_request']:9.3f} {r['cached']:7,d}{tgt}")
                del trace
            print()

        if only & {"e2e", "memory"}:
            print(f"== end to end: `pfmbench replay FILE --policy all` (six policies), summary only, a subprocess "
                  f"(target < {TARGET_E2E_S:g} s; peak memory < {TARGET_BYTES_PER_REQUEST:g} B/request)")
            tiny = work / "tiny.parquet"
            run_child(pfmbench_cmd("synth", "-o", str(tiny), "--requests", "1000", "--seed", "1"))
            runs = [("startup: Table I, 1,000 requests", tiny, [], 1000)]
            t1 = work / "table1.parquet"
            t0 = time.perf_counter()
            run_child(pfmbench_cmd("synth", "-o", str(t1), "--requests", str(n), "--rate", "1", "--seed", "1"))
            print(f"   pfmbench synth {n:,} requests (Table I): {time.perf_counter() - t0:.1f} s, "
                  f"{t1.stat().st_size / 2**20:.0f} MiB")
            runs.append((f"Table I, default scenario, {n:,} requests", t1, [], n))
            cpath, cat, total = cats[100]
            t100 = work / "trace100.parquet"
            if not t100.exists():
                synth_trace(t100, cat, n)
            gpu = fractions[0] * total
            runs.append((f"100 models, GPU {gpu:,.0f} GB, {n:,} requests", t100,
                         ["--catalog", str(cpath), "--set", "catalog.copies_per_task=false",
                          "--gpu-memory", f"{gpu:.3f}"], n))
            base_rss = None
            for label, path, extra, rows in runs:
                wall, rss, code = run_child(pfmbench_cmd("replay", str(path), "--policy", "all", *extra))
                line = f"   {label:<48} {wall:6.2f} s"
                first, base_rss = base_rss is None, rss if base_rss is None else base_rss
                if code:
                    print(line + "   FAILED (see above)")
                    continue
                if rss >= 0:
                    line += f"   peak {rss / 2**20:7.1f} MiB"
                if first:
                    print(line + "   (fixed cost)")
                    continue
                per = rss / rows
                if rss >= 0:
                    line += f"   {per:6.1f} B/request ({(rss - base_rss) / rows:5.1f} above the fixed cost)"
                if "e2e" in only:
                    line += f"   time {mark(wall < TARGET_E2E_S)} < {TARGET_E2E_S:g} s"
                if "memory" in only and rss >= 0:
                    line += f", memory {mark(per < TARGET_BYTES_PER_REQUEST)} < {TARGET_BYTES_PER_REQUEST:g} B/req"
                print(line)
            if base_rss is not None and base_rss < 0:
                print("   (no GNU time at /usr/bin/time: peak memory not measured)")
        if "lcs" in only:
            print("== LRU beside libCacheSim's LRU, one trace (Parquet / oracleGeneral), best of "
                  f"{max(a.repeat, 1)}")
            import vs_libcachesim

            vs_libcachesim.report(vs_libcachesim.measure(work, n, max(a.repeat, 1), fractions[0]))
    finally:
        if not a.keep and a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
