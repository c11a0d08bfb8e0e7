"""Reading a Parquet trace (issue 18): the CPU and wall time of `stream_chunks` over one synthetic trace.

One trace of the 100-model catalog of run.py, written twice with the same rows:
  new  by this tree's `write_synth` (synth_parquet_options: ts BYTE_STREAM_SPLIT under zstd, every other
       column dictionary-encoded under LZ4);
  old  the previous writer's settings (everything zstd, dictionary for model and task only, units and
       input_mb PLAIN float64): how every synth trace written before looks.
Each measurement runs in a fresh subprocess with PYTHONPATH set to a pfmbench tree (this one, and the tree of
--old if given): `stream_chunks(file, catalog, chunk_rows)` iterated to the end, as the replay's reader thread
does, best of --repeat for process CPU time (time.process_time, all threads) and for wall time; "decode" is
pyarrow's read_row_group alone (use_threads=False) on the same file; "Arrow peak" is the most memory
Arrow's pool held during one stream_chunks pass (what the reader keeps decoded at once).
The two trees' chunks must agree value for value (checked on a digest of every chunk).

    python benchmarks/read.py                                   # 10M requests, about a minute
    python benchmarks/read.py --requests 1000000 --repeat 5 --workdir /tmp/pfread --keep
    python benchmarks/read.py --old /tmp/oldtree                 # /tmp/oldtree: `git archive` of the tree before
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def worker(path: str, catalog: str, chunk_rows: int, repeat: int) -> dict:
    """Runs inside the tree under test (PYTHONPATH): timings, peak RSS and a digest of the chunks."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pfmbench.catalog import load_catalog
    from pfmbench.trace.reader import stream_chunks

    cat = load_catalog(catalog)
    h = hashlib.sha256()
    for c in stream_chunks(path, cat, chunk_rows):  # once for the digest (and to warm the page cache)
        for a in (c.ts, c.pair, c.units, c.input_mb):
            h.update(a.dtype.str.encode())
            h.update(a.tobytes())
        h.update(repr((len(c), c.origin)).encode())
    arrow_peak = pa.default_memory_pool().max_memory() or 0  # what the reader decodes at once, at most
    best_cpu = best_wall = best_decode = float("inf")
    for _ in range(repeat):
        w, t = time.perf_counter(), time.process_time()
        for _c in stream_chunks(path, cat, chunk_rows):
            pass
        best_cpu, best_wall = min(best_cpu, time.process_time() - t), min(best_wall, time.perf_counter() - w)
    pf = pq.ParquetFile(path, read_dictionary=["model", "task"])
    for _ in range(repeat):
        t = time.process_time()
        for g in range(pf.metadata.num_row_groups):
            pf.read_row_group(g, use_threads=False)
        best_decode = min(best_decode, time.process_time() - t)
    return {"cpu": best_cpu, "wall": best_wall, "decode": best_decode, "arrow_mb": arrow_peak / 2**20,
            "digest": h.hexdigest()}


def run_worker(tree: Path, path: Path, catalog: Path, chunk_rows: int, repeat: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = json.dumps([str(path), str(catalog), chunk_rows, repeat])
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", args], env=env, check=True,
                         capture_output=True, text=True, cwd=tree).stdout
    return json.loads(out.strip().splitlines()[-1])


def write_old_format(src: Path, dst: Path) -> None:
    """The same rows and row groups with the settings write_synth used before issue 18."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src, read_dictionary=["model", "task"])
    with pq.ParquetWriter(dst, pf.schema_arrow, compression="zstd", write_statistics=["ts"],
                          use_dictionary=["model", "task"]) as w:
        for g in range(pf.metadata.num_row_groups):
            w.write_table(pf.read_row_group(g))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--chunk-rows", type=int, default=1 << 18, help="rows per chunk (default: api.CHUNK_ROWS)")
    ap.add_argument("--workdir", type=Path, help="where the traces go (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the traces (with --workdir)")
    ap.add_argument("--old", type=Path, help="a pfmbench tree to measure beside this one (e.g. a git archive)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(*json.loads(a.worker))))
        return

    sys.path[:0] = [str(ROOT), str(HERE)]  # this tree's pfmbench, whatever is installed
    from run import machine, synth_trace, write_catalog

    from pfmbench.catalog import load_catalog

    work = a.workdir or Path(tempfile.mkdtemp(prefix="pfmbench-read-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        catalog = work / "catalog100.csv"
        write_catalog(catalog, 100)
        files = {"new": work / "read-new.parquet", "old": work / "read-old.parquet"}
        t0 = time.perf_counter()
        synth_trace(files["new"], load_catalog(catalog), a.requests)
        t_synth = time.perf_counter() - t0
        write_old_format(files["new"], files["old"])
        print(f"{machine()}; {a.requests:,} requests, chunk_rows {a.chunk_rows:,}, best of {a.repeat}; "
              f"write_synth {t_synth:.1f} s")
        trees = [("this tree", ROOT)] + ([("old tree", a.old.resolve())] if a.old else [])
        print("| reader | file | size MB | decode CPU s | stream_chunks CPU s | wall s | Arrow peak MiB |")
        print("|---|---|---:|---:|---:|---:|---:|")
        digests = set()
        for fmt in ("old", "new"):
            for label, tree in reversed(trees):
                r = run_worker(tree, files[fmt], catalog, a.chunk_rows, a.repeat)
                digests.add(r["digest"])
                print(f"| {label} | {fmt} writer | {files[fmt].stat().st_size / 1e6:.1f} | {r['decode']:.3f} | "
                      f"{r['cpu']:.3f} | {r['wall']:.3f} | {r['arrow_mb']:.0f} |", flush=True)
        print(f"chunks identical across readers and files: {'yes' if len(digests) == 1 else 'NO'}")
        if len(digests) != 1:
            sys.exit(1)
    finally:
        if not (a.keep and a.workdir):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
