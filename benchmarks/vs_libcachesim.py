"""pfmbench LRU from Parquet beside libCacheSim's LRU from its own binary format, in one run (issue 6).

    python benchmarks/vs_libcachesim.py                      # 10,000,000 requests, best of 3
    python benchmarks/vs_libcachesim.py --requests 1000000 --repeat 1
    python benchmarks/run.py --only lcs                      # the same, from run.py

One trace, written twice: as Parquet by `write_synth` (the 100-model catalog of run.py's write_catalog,
Zipf 0.8 over (model, task) pairs, 1 request/s) and as libCacheSim's oracleGeneral binary (24 bytes a
request: uint32 clock_time, uint64 obj_id, uint32 obj_size, int64 next_access_vtime). Object = model
(id = catalog index + 1). obj_size is a uint32 and models are up to 40 GB, so both the sizes and the
cache size are divided by their greatest common divisor (1,000 bytes for this catalog): an exact
scaling, so that every fits/evict decision is the same as pfmbench's in bytes. GPU = 0.25 of the
catalog's memory, as in run.py.

Timed, each the best of --repeat (wall clock and CPU; the machine may be shared):
  libcachesim   open a TraceReader on the binary file and run LRU(cache).process_trace(reader): the C
                loop reading the file (mmap) and simulating; CPU = the thread's (time.thread_time).
  pfmbench e2e  pfmbench.api.replay_many(parquet, ["lru"]), summary only, in this process once the
                compiled kernel is loaded (by the kernel runs): streamed Parquet reading on a background thread, the
                kernel with the full cost model on this one, then the summary. CPU = the process's.
  kernel        FastEngine(..., account_thread=False).run(whole trace, already in memory): deciding and
                accounting on one thread; CPU of that thread.
  kernel, 2 threads  the same with the accounting on a second thread (issue 18, engine/accountant.py, the
                default): wall; CPU of the process (both threads). The deciding thread's own CPU is printed
                as the `decide` stage, the rest as `account`.
  read          the Parquet trace to engine arrays, chunk by chunk as replay_many reads it (stream_chunks,
                no prefetch thread): what reading alone costs. CPU = the process's (pyarrow's threads too).
  control       two kernel replays at once in two threads (the kernel releases the GIL): as fast as one if
                two cores are free, twice as slow if only one is; says how much overlap the machine allows.
The miss counts must be equal: libCacheSim's miss ratio x requests = pfmbench's loads + offloads.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from functools import reduce
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine, synth_trace, write_catalog

from pfmbench.api import CHUNK_ROWS, replay_many
from pfmbench.catalog import load_catalog
from pfmbench.engine.fast import FastEngine
from pfmbench.engine.record import C_HITS, C_LOADS, C_OFFLOADS, C_REQUESTS
from pfmbench.engine.tables import build_tables
from pfmbench.policies import get_policy
from pfmbench.scenario import load_scenario
from pfmbench.trace.reader import stream_chunks
from pfmbench.trace.schema import read_trace

ORACLE_GENERAL = np.dtype([("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"),
                           ("next_access_vtime", "<i8")])  # packed: 24 bytes, as libCacheSim reads it
assert ORACLE_GENERAL.itemsize == 24


def write_oracle_general(path: Path, trace, tables) -> int:
    """The trace as oracleGeneral records; returns the size unit (bytes) that obj_size counts in."""
    unit = reduce(math.gcd, [int(b) for b in tables.mem_bytes], int(tables.capacity_bytes))
    obj_size = tables.mem_bytes // unit
    assert obj_size.max() < 2**32, f"sizes do not fit a uint32 even in units of {unit} bytes"
    obj = tables.pair_model[trace.pair].astype(np.int64)
    n = len(obj)
    order = np.argsort(obj, kind="stable")  # each object's requests in time order
    same = obj[order[1:]] == obj[order[:-1]]
    nxt = np.full(n, -1, np.int64)  # -1: never requested again
    nxt[order[:-1][same]] = order[1:][same]
    rec = np.empty(n, ORACLE_GENERAL)
    rec["clock_time"] = np.floor(trace.ts).astype(np.uint32)
    rec["obj_id"] = obj + 1  # ids from 1: 0 is no one's
    rec["obj_size"] = obj_size[obj]
    rec["next_access_vtime"] = nxt
    rec.tofile(path)
    return unit


class Clock:
    """Wall and CPU time (cpu: a clock function, e.g. time.thread_time) from start() to stop()."""

    def __init__(self, cpu):
        self.cpu = cpu

    def start(self):
        self.w0, self.c0 = time.perf_counter(), self.cpu()

    def stop(self):
        self.wall, self.cpu_s = time.perf_counter() - self.w0, self.cpu() - self.c0


def best_of(repeat: int, fn):
    """(best wall s, best CPU s, last result) of `repeat` calls of fn(clock) -> result; fn starts and stops
    the clock around what counts (setting up a cache or an engine does not)."""
    wall = cpu = float("inf")
    res = None
    for _ in range(repeat):
        clock = Clock(time.thread_time)
        res = fn(clock)
        wall, cpu = min(wall, clock.wall), min(cpu, clock.cpu_s)
    return wall, cpu, res


def measure(work: Path, n: int, repeat: int, gpu_fraction: float = 0.25) -> dict:
    import libcachesim as lcs

    cpath = work / "catalog100.csv"
    total = write_catalog(cpath, 100)
    cat = load_catalog(cpath)
    gpu = round(gpu_fraction * total, 6)  # whole kB, so that the gcd with the model sizes stays 1,000
    tables = build_tables(load_scenario(gpu_memory_gb=gpu), cat)
    pq_path, bin_path = work / "lcs100.parquet", work / "lcs100.oracleGeneral.bin"
    t0 = time.perf_counter()
    synth_trace(pq_path, cat, n)
    t_synth = time.perf_counter() - t0
    trace = read_trace(pq_path, cat)
    unit = write_oracle_general(bin_path, trace, tables)
    print(f"trace: {n:,} requests, 100 models ({total:,.0f} GB), GPU {gpu:,.3f} GB · Parquet "
          f"{pq_path.stat().st_size / 2**20:.0f} MiB (synth {t_synth:.1f} s), oracleGeneral "
          f"{bin_path.stat().st_size / 2**20:.0f} MiB, sizes in units of {unit:,} bytes")

    # libCacheSim: its C loop over its binary reader.
    cache_size = int(tables.capacity_bytes) // unit

    def lcs_run(clock):
        cache = lcs.LRU(cache_size=cache_size)  # built outside the timer: its hash table is allocated here
        clock.start()
        reader = lcs.TraceReader(str(bin_path), lcs.TraceType.ORACLE_GENERAL_TRACE)
        miss_ratio, _ = cache.process_trace(reader)
        clock.stop()
        return miss_ratio

    lcs_wall, lcs_cpu, miss_ratio = best_of(repeat, lcs_run)
    lcs_misses = round(miss_ratio * n)

    # pfmbench: the kernel alone, reading alone, and end to end.
    policy = get_policy("lru")
    FastEngine(tables, policy, 0).run(trace.slice(0, 10_000))  # load the compiled kernel

    def kernel_run(clock):
        eng = FastEngine(tables, policy, 0, account_thread=False)
        clock.start()
        eng.run(trace)
        clock.stop()
        return eng.counts.copy()

    k_wall, k_cpu, counts = best_of(repeat, kernel_run)

    def threaded_run(clock):
        eng = FastEngine(tables, policy, 0, account_thread=True)
        clock.cpu = time.process_time
        t0 = time.thread_time()
        clock.start()
        eng.run(trace)
        decide = time.thread_time() - t0
        eng.flush()
        clock.stop()
        assert (eng.counts == counts).all(), "the accounting thread changed the results"
        return decide

    t_wall, t_cpu, decide_cpu = best_of(repeat, threaded_run)

    def two_kernels(clock):  # a control: does this machine have two free cores right now?
        import threading

        threads = [threading.Thread(target=FastEngine(tables, policy, 0, account_thread=False).run, args=(trace,))
                   for _ in range(2)]
        clock.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        clock.stop()

    two_wall, _, _ = best_of(repeat, two_kernels)

    def read_run(clock):
        clock.cpu = time.process_time  # pyarrow decodes on its own threads too
        clock.start()
        rows = sum(len(c) for c in stream_chunks(pq_path, cat, CHUNK_ROWS))
        clock.stop()
        return rows

    r_wall, r_cpu, rows = best_of(repeat, read_run)
    assert rows == n

    kw = {"catalog": cat, "gpu_memory_gb": gpu}

    def e2e_run(clock):
        clock.cpu = time.process_time
        clock.start()
        [row] = replay_many(pq_path, ["lru"], **kw)
        clock.stop()
        return row

    e_wall, e_cpu, row = best_of(repeat, e2e_run)
    pfm_misses = int(counts[C_LOADS] + counts[C_OFFLOADS])
    assert int(counts[C_REQUESTS]) == n
    same = lcs_misses == pfm_misses == row["loads"] + row["offloads"]
    return {"n": n, "lcs": (lcs_wall, lcs_cpu), "e2e": (e_wall, e_cpu), "kernel": (k_wall, k_cpu),
            "threaded": (t_wall, t_cpu), "decide_cpu": decide_cpu,
            "read": (r_wall, r_cpu), "two_kernels": two_wall, "lcs_misses": lcs_misses, "pfm_misses": pfm_misses,
            "e2e_misses": row["loads"] + row["offloads"], "hits": int(counts[C_HITS]), "same": same}


def report(r: dict) -> None:
    n = r["n"]
    lw, _ = r["lcs"]
    print(f"{'':<44} {'wall s':>7} {'M req/s':>8} {'CPU s':>7} {'M req/CPU-s':>11} {'vs lcs (wall)':>13}")
    for label, key in (("libCacheSim LRU, oracleGeneral (C loop)", "lcs"),
                       ("pfmbench LRU from Parquet (replay_many)", "e2e"),
                       ("pfmbench kernel alone (trace in memory)", "kernel"),
                       ("pfmbench kernel, accounting on 2nd thread", "threaded"),
                       ("pfmbench Parquet read alone (stream_chunks)", "read")):
        w, c = r[key]
        print(f"{label:<44} {w:7.3f} {n / w / 1e6:8.1f} {c:7.3f} {n / c / 1e6:11.1f} {lw / w:12.2f}x")
    print(f"misses: libCacheSim {r['lcs_misses']:,}, pfmbench {r['pfm_misses']:,} (kernel) / {r['e2e_misses']:,} "
          f"(replay_many): {'equal' if r['same'] else 'DIFFERENT'}; hit ratio {r['hits'] / n:.3f}")
    ew = r["e2e"][0]
    decide, account = r["decide_cpu"], r["threaded"][1] - r["decide_cpu"]
    print(f"stages, CPU s: read {r['read'][1]:.3f} + decide {decide:.3f} + account {account:.3f} = "
          f"{r['read'][1] + decide + account:.3f}; replay_many took {r['e2e'][1]:.3f} s CPU in {ew:.3f} s wall "
          f"({r['e2e'][1] / ew:.2f} cores busy)")
    serial = r["read"][0] + r["kernel"][0]
    print(f"target: pfmbench from Parquet >= 1x libCacheSim (aim 2x): {lw / ew:.2f}x "
          f"({'meets' if lw / ew >= 1 else 'MISSES'}). Overlap: replay_many {ew:.3f} s vs read + kernel "
          f"{serial:.3f} s one after the other, {max(r['read'][0], r['kernel'][0]):.3f} s at best; control: two "
          f"kernels in two threads {r['two_kernels']:.3f} s wall vs one {r['kernel'][0]:.3f} s (equal if two cores "
          "are free)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts (default 3)")
    ap.add_argument("--workdir", type=Path, help="where to write the traces (default: a temp dir, removed)")
    a = ap.parse_args(argv)
    import os

    print(f"{machine()} · load average {os.getloadavg()[0]:.1f} at start")
    work = a.workdir or Path(tempfile.mkdtemp(prefix="pfmbench-lcs-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        r = measure(work, a.requests, a.repeat)
        report(r)
        print(f"load average {os.getloadavg()[0]:.1f} at end")
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
