"""How opt's exact search grows with requests and models (docs/opt.md); prints one table.

Each cell: the default scenario (Table I, one copy of each GPT-3 model per task), its catalog cut to M
models drawn at random (per seed), a GPU of --gpu-memory GB (default 40) or, with --gpu-memory 0, one
holding --gpu-fraction of their memory (GPT3-175B, which never fits, left out of the sum), a synthetic trace of N requests (Poisson at the scenario's
rate, Zipf alpha 0.8) for seeds 1..S. Printed: how many seeds the search solved within the node budget,
its nodes and CPU seconds (median over seeds, and the largest; an unsolved seed counts the whole budget),
and opt's gap below the best of the paper's policies and lru, and above the lower bound (medians).

    python benchmarks/opt.py                         # N = 20..100, M = 4, 8, 16, 22, 3 seeds
    python benchmarks/opt.py --requests 40,80 --models 8 --seeds 5 --max-nodes 1000000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from pfmbench import opt
from pfmbench.api import resolve
from pfmbench.catalog import Catalog
from pfmbench.engine.reference import replay_reference
from pfmbench.engine.tables import build_tables
from pfmbench.policies import PAPER_POLICIES, get_policy
from pfmbench.results import summarize
from pfmbench.trace.reader import whole_chunks
from pfmbench.trace.synth import SCHEMA, synthesize

POLICIES = (*PAPER_POLICIES, "lru")


def cell(n: int, m: int, seed: int, gpu: float, max_nodes: int):
    import pyarrow as pa

    sc, cat, _ = resolve("default", None, seed=seed)
    pick = sorted(np.random.default_rng(seed).choice(len(cat.models), size=min(m, len(cat.models)), replace=False))
    sub = Catalog(tuple(cat.models[i] for i in pick), cat.source)
    if gpu < 0:  # a fraction of what fits an 80 GB GPU at all
        gpu = -gpu * sum(x.memory_gb for x in sub.models if x.memory_gb <= 80)
    sc = sc.with_overrides(gpu_memory_gb=gpu)
    table = pa.Table.from_batches(synthesize(sub, requests=n, rate=sc.trace.rate, alpha=sc.trace.alpha, seed=seed),
                                  SCHEMA)
    [trace] = list(whole_chunks(table, sub, 1 << 20))
    tables = build_tables(sc, sub)
    t0 = time.process_time()
    r = opt.solve(tables, trace, max_requests=n, max_models=m, max_nodes=max_nodes)
    seconds = time.process_time() - t0
    best = min(summarize(*replay_reference(tables, trace, get_policy(p, seed), seed)[:3], sc, p, "t", "c")["system_cost"]
               for p in POLICIES)
    return r, seconds, best, opt.lower_bound(tables, trace)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", default="20,40,60,80,100")
    ap.add_argument("--models", default="4,8,16,22")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--gpu-fraction", type=float, default=0.3)
    ap.add_argument("--gpu-memory", type=float, default=40.0, help="GB; 0: use --gpu-fraction")
    ap.add_argument("--max-nodes", type=int, default=opt.MAX_NODES)
    a = ap.parse_args(argv)
    print("| models | requests | solved | nodes (median, max) | CPU s (median, max) | best policy above opt | "
          "opt above bound |\n|---:|---:|---:|---:|---:|---:|---:|")
    for m in map(int, a.models.split(",")):
        for n in map(int, a.requests.split(",")):
            gpu = a.gpu_memory if a.gpu_memory > 0 else -a.gpu_fraction
            runs = [cell(n, m, s, gpu, a.max_nodes) for s in range(1, a.seeds + 1)]
            solved = [x for x in runs if x[0].exact]
            nodes = [x[0].nodes if x[0].exact else a.max_nodes for x in runs]
            secs = [x[1] for x in runs]
            above = [100 * (b - r.system_cost) / r.system_cost for r, _, b, _ in solved if r.system_cost > 0]
            gap = [100 * (r.system_cost - lb) / r.system_cost for r, _, _, lb in solved if r.system_cost > 0]
            pct = (lambda v: f"{statistics.median(v):.1f}%" if v else "-")
            print(f"| {m} | {n} | {len(solved)}/{len(runs)} | {statistics.median(nodes):,.0f}, {max(nodes):,} | "
                  f"{statistics.median(secs):.2f}, {max(secs):.2f} | {pct(above)} | {pct(gap)} |", flush=True)


if __name__ == "__main__":
    main()
