"""One measurement inside one source tree, for side-by-side runs of two pfmbench trees (before/after).

Run by benchmarks/before_after.py as `python benchmarks/tree_worker.py MODE JSON-ARGS` with PYTHONPATH set
to the tree under test; prints one JSON object on its last line. Speaks both engine APIs:
  new (Engine v2): FastEngine(tables, get_policy(name), seed).run(trace), counts in eng.counts;
  old (up to 7821d23): replay_chunk(tables, get_policy(name).kernel, EngineState.new(tables, seed), trace).

Modes:
  kernel   the kernel alone over a whole pre-read trace, per policy: best-of-N wall time and CPU time of the
           process (time.process_time: the replaying thread and, since issue 18, its accounting thread), and
           the counts (the two trees must agree on them).
  e2e      replay_many(path, policies) in this process, after a warm-up that loads the kernel: wall time
           and process CPU time (all threads), best of N.
"""

from __future__ import annotations

import json
import sys
import time


def _tables(catalog_path, gpu_gb):
    from pfmbench.catalog import load_catalog
    from pfmbench.engine.tables import build_tables
    from pfmbench.scenario import load_scenario

    cat = load_catalog(catalog_path)
    return cat, build_tables(load_scenario(gpu_memory_gb=gpu_gb), cat)


def _runner(tables, name):
    """A function replaying one whole trace from scratch; returns the counts array."""
    from pfmbench.policies import get_policy

    policy = get_policy(name)
    try:
        from pfmbench.engine.fast import FastEngine
    except ImportError:
        from pfmbench.engine.fast import EngineState, replay_chunk

        def run_old(trace):
            state = EngineState.new(tables, 0)
            replay_chunk(tables, policy.kernel, state, trace)
            return state.counts

        return run_old

    def run_new(trace):
        eng = FastEngine(tables, policy, 0)
        eng.run(trace)
        return eng.counts

    return run_new


def _policies():
    from pfmbench.policies import get_policy, policy_names

    names = []
    for n in policy_names():
        p = get_policy(n)
        if getattr(p, "fast", None) is not None or getattr(p, "kernel", None) is not None:
            names.append(n)
    return names


def kernel(a):
    from pfmbench.trace.schema import read_trace

    cat, tables = _tables(a["catalog"], a["gpu_gb"])
    trace = read_trace(a["trace"], cat)
    warm = trace.slice(0, 10_000)
    out = {}
    for name in a.get("policies") or _policies():
        run = _runner(tables, name)
        run(warm)  # compile, or load from numba's cache
        best_cpu = best_wall = float("inf")
        for _ in range(a["repeat"]):
            w0, c0 = time.perf_counter(), time.process_time()
            counts = run(trace)
            c1, w1 = time.process_time(), time.perf_counter()
            best_cpu, best_wall = min(best_cpu, c1 - c0), min(best_wall, w1 - w0)
        out[name] = {"cpu_s": best_cpu, "wall_s": best_wall, "counts": [int(x) for x in counts[:5]]}
    return {"requests": len(trace), "policies": out}


def e2e(a):
    from pfmbench.api import replay_many
    from pfmbench.catalog import load_catalog

    cat = load_catalog(a["catalog"])
    kw = {"catalog": cat, "gpu_memory_gb": a["gpu_gb"]}
    if a.get("warm"):
        replay_many(a["warm"], a["policies"], **kw)  # loads the kernel (and imports everything)
    best = {"wall_s": float("inf")}
    for _ in range(a["repeat"]):
        w0, c0 = time.perf_counter(), time.process_time()
        rows = replay_many(a["trace"], a["policies"], **kw)
        c1, w1 = time.process_time(), time.perf_counter()
        if w1 - w0 < best["wall_s"]:
            best = {"wall_s": w1 - w0, "cpu_s": c1 - c0}
    best["summary"] = [{k: r[k] for k in r if isinstance(r[k], (int, float, str))} for r in rows]
    return best


if __name__ == "__main__":
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    import pfmbench

    res = {"kernel": kernel, "e2e": e2e}[mode](args)
    res["pfmbench"] = pfmbench.__file__
    print(json.dumps(res))
