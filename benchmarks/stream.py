"""Traces larger than memory: replay a 100-million-request Parquet trace batch by batch and print the
peak memory, beside the same replay with the whole trace read into memory (results must be identical).

    python benchmarks/stream.py                       # 100,000,000 requests (~1 GB of Parquet, a few minutes)
    python benchmarks/stream.py --requests 2000000    # a quick run
    python benchmarks/stream.py --requests 20000000 --policy belady,belady-size   # offline: next uses on disk

Each replay is `pfmbench replay FILE --policy all --json` (or --policy) in its own process under GNU time; the whole-
trace run sets PFMBENCH_STREAM_MIN_ROWS above the trace length so that pfmbench reads it in one piece.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pfmbench.catalog import load_catalog
from pfmbench.trace.synth import write_synth


def run(path: Path, env_extra: dict, policy: str = "all") -> tuple[float, float, list]:
    env = dict(os.environ, **env_extra)
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", "pfmbench", "replay", str(path), "--policy", policy, "--json"],
                       capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return wall, rss_kb * 1024, json.loads(p.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000_000)
    ap.add_argument("--skip-whole", action="store_true", help="only the streamed replay")
    ap.add_argument("--policy", default="all", help="policies to replay (default: all, the paper's five and lru)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trace.parquet"
        t = time.perf_counter()
        write_synth(path, load_catalog(), requests=args.requests, rate=100.0, alpha=0.8, seed=1)
        print(f"synth: {args.requests:,} requests, {path.stat().st_size / 1e9:.2f} GB Parquet, "
              f"{time.perf_counter() - t:.1f} s")
        wall, rss, rows = run(path, {}, args.policy)
        print(f"streamed    : {wall:6.1f} s  peak {rss / 2**20:7.0f} MiB  {rss / args.requests:6.1f} B/request")
        if not args.skip_whole:
            wall2, rss2, rows2 = run(path, {"PFMBENCH_STREAM_MIN_ROWS": str(args.requests + 1)}, args.policy)
            print(f"whole trace : {wall2:6.1f} s  peak {rss2 / 2**20:7.0f} MiB  {rss2 / args.requests:6.1f} B/request")
            same = [{k: v for k, v in r.items() if k != "trace"} for r in rows] == \
                   [{k: v for k, v in r.items() if k != "trace"} for r in rows2]
            print(f"identical results: {same}")
            if not same:
                sys.exit(1)


if __name__ == "__main__":
    main()
