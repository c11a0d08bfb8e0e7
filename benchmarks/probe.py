"""Where the kernel's time and compile time go: experiments on scratch copies of the engine (never on the tree).

    python benchmarks/probe.py costs      # kernel M req/s with parts of the cost model switched off
    python benchmarks/probe.py compile    # first-compile CPU seconds of the kernel for subsets of the built-ins
    python benchmarks/probe.py inline     # the shared cost functions LLVM-inlined instead of inline="always"
    python benchmarks/probe.py floor      # a bare LRU loop on the same trace beside the kernel's lru

costs    copies pfmbench/ twice to a temp dir: as it is, and patched so that the accuracy curve returns its
         zero-shot value and the latency histogram is not counted (catalog.accuracy_at, record.count_latency;
         the results change, the cache decisions do not). On the 100-model 10M-request trace of run.py (GPU 0.25
         of the catalog) it replays lru, fifo, random and cloud on each copy, under the `exp` utility (default)
         and `none` (no decay): thread CPU time, best of 3. The gaps are what each part costs per request.
compile  one copy with no numba cache; for each subset of policy modules the kernel generated for just those
         is compiled once (pfmbench.engine.kernel.load_kernel): CPU seconds. Subsets: each built-in alone, lru +
         fifo + random, all six.
inline   a copy whose shared functions (jit.compiled) are plain njit functions, inlined (or not) by LLVM
         instead of numba's IR inliner: compile CPU of all six built-ins, and the lru and cloud kernel rates.
floor    what a simulator of the same cache could cost at least, on this machine: a bare numba loop (LRU
         list, GPU memory in bytes, evict until it fits, and the `exp` decay of the pair's examples on each
         hit, as the kernel does) beside the kernel's lru with the full model, on the same trace (thread CPU,
         best of 3). Their misses must be equal. The gap is what the model's bookkeeping costs per request
         (queue, admission and dispatch checks, context per pair and per model, the decisions recorded
         for the accounting pass) plus the accounting pass itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = HERE.parent

INLINE_PATCH = {"engine/jit.py": ('twin = njit(inline="always")(f)', "twin = njit(f)  # probe: LLVM inlining")}
PATCHES = {  # file -> (text, replacement): the "no accuracy curve, no histogram" copy
    "catalog.py": ("    if kind == CURVE_FLAT or k <= 0.0:\n        return zero_shot",
                   "    if True:  # probe: no accuracy curve\n        return zero_shot"),
    "engine/record.py": ("    rec.fbits[0] = latency\n    rec.hist[hist_index_bits(rec.ibits[0])] += 1",
                         "    pass  # probe: no histogram"),
}


def copy_tree(dst: Path, patched: bool | dict) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(TREE / "pfmbench", dst / "pfmbench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
    if patched:
        for rel, (old, new) in (patched if isinstance(patched, dict) else PATCHES).items():
            f = dst / "pfmbench" / rel
            text = f.read_text()
            assert old in text, f"{rel}: the code to patch has changed; update PATCHES"
            f.write_text(text.replace(old, new, 1))
    return dst


def child(tree: Path, mode: str, args: dict, cwd: Path) -> dict:
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_" + mode, json.dumps(args)], cwd=cwd,
                       env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True, check=False)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


# -- in the child (PYTHONPATH = a scratch copy) --------------------------------------------------------------
def _costs(a: dict) -> dict:
    import time

    from pfmbench.catalog import load_catalog
    from pfmbench.engine.fast import FastEngine
    from pfmbench.engine.tables import build_tables
    from pfmbench.policies import get_policy
    from pfmbench.scenario import load_scenario
    from pfmbench.trace.schema import read_trace

    cat = load_catalog(a["catalog"])
    trace = read_trace(a["trace"], cat)
    out = {}
    for util in ("exp", "none"):
        tables = build_tables(load_scenario(gpu_memory_gb=a["gpu_gb"], utility=util), cat)
        for name in a["policies"]:
            policy = get_policy(name)
            FastEngine(tables, policy, 0).run(trace.slice(0, 10_000))
            best = float("inf")
            for _ in range(3):
                eng = FastEngine(tables, policy, 0, account_thread=False)
                c0 = time.thread_time()
                eng.run(trace)
                best = min(best, time.thread_time() - c0)
            out[f"{name}/{util}"] = len(trace) / best / 1e6
    return out


def _compile(a: dict) -> dict:
    import importlib
    import time

    import numpy as np

    from pfmbench.catalog import load_catalog
    from pfmbench.engine import fast
    from pfmbench.engine.jit import compiling
    from pfmbench.engine.kernel import load_kernel
    from pfmbench.engine.tables import build_tables
    from pfmbench.scenario import load_scenario

    mods = a["modules"]
    tables = build_tables(load_scenario(gpu_memory_gb=a["gpu_gb"]), load_catalog(a["catalog"]))
    pss = tuple(importlib.import_module(m).new_state(tables, 0) for m in mods)
    kernel = load_kernel(mods)
    empty = fast.requests(fast.Requests(np.zeros(0), np.zeros(0, np.int32), np.zeros(0), np.zeros(0), np.zeros(0)))
    c0 = time.process_time()
    with compiling():
        kernel.replay(0, tables, fast.new_engine_state(tables), pss, empty, False, fast._NO_LOG)
    return {"cpu_s": time.process_time() - c0}


def _bare_lru():
    import numpy as np
    from numba import njit

    @njit(nogil=True)
    def bare_lru(pair, pair_model, mem_bytes, capacity, ts, half_life_s, n_pairs):
        """Misses of LRU over GPU memory in bytes; each hit decays its pair's examples (2^(-dt/h)) and adds one."""
        n = mem_bytes.shape[0]
        prev = np.full(n, -1, np.int64)
        nxt = np.full(n, -1, np.int64)
        cached = np.zeros(n, np.int8)
        examples = np.zeros(n_pairs)
        examples_time = np.zeros(n_pairs)
        head = tail = -1
        used = 0
        misses = 0
        for i in range(pair.shape[0]):
            p = pair[i]
            m = pair_model[p]
            now = ts[i]
            if cached[m]:
                examples[p] = examples[p] * 2.0 ** (-(now - examples_time[p]) / half_life_s) + 1.0
                examples_time[p] = now
                if tail != m:  # to the tail: most recently used
                    a, b = prev[m], nxt[m]
                    if a >= 0:
                        nxt[a] = b
                    else:
                        head = b
                    prev[b] = a
                    prev[m] = tail
                    nxt[m] = -1
                    nxt[tail] = m
                    tail = m
                continue
            misses += 1
            if mem_bytes[m] > capacity:
                continue  # offloaded
            while used + mem_bytes[m] > capacity:  # evict from the head
                v = head
                head = nxt[v]
                if head >= 0:
                    prev[head] = -1
                else:
                    tail = -1
                cached[v] = 0
                used -= mem_bytes[v]
            cached[m] = 1
            used += mem_bytes[m]
            prev[m] = tail
            nxt[m] = -1
            if tail >= 0:
                nxt[tail] = m
            else:
                head = m
            tail = m
            examples[p] = 1.0
            examples_time[p] = now
        return misses

    return bare_lru


def _floor(a: dict) -> dict:
    import time

    import numpy as np

    from pfmbench.catalog import load_catalog
    from pfmbench.engine.fast import FastEngine
    from pfmbench.engine.record import C_LOADS, C_OFFLOADS
    from pfmbench.engine.tables import build_tables
    from pfmbench.policies import get_policy
    from pfmbench.scenario import load_scenario
    from pfmbench.trace.schema import read_trace

    cat = load_catalog(a["catalog"])
    trace = read_trace(a["trace"], cat)
    tables = build_tables(load_scenario(gpu_memory_gb=a["gpu_gb"]), cat)
    bare = _bare_lru()
    args = (np.ascontiguousarray(trace.pair, np.int32), tables.pair_model, tables.mem_bytes,
            tables.capacity_bytes, np.ascontiguousarray(trace.ts, np.float64), tables.half_life_s,
            len(tables.pair_model))
    bare(*(x[:1000] if isinstance(x, np.ndarray) and x.shape[0] == len(trace) else x for x in args))  # compile
    out = {"bare": float("inf"), "kernel": float("inf")}
    policy = get_policy("lru")
    FastEngine(tables, policy, 0).run(trace.slice(0, 10_000))  # load the kernel
    for _ in range(3):
        c0 = time.thread_time()
        misses = bare(*args)
        out["bare"] = min(out["bare"], time.thread_time() - c0)
        eng = FastEngine(tables, policy, 0)
        c0 = time.thread_time()
        eng.run(trace)
        out["kernel"] = min(out["kernel"], time.thread_time() - c0)
    out["bare_misses"] = int(misses)
    out["kernel_misses"] = int(eng.counts[C_LOADS] + eng.counts[C_OFFLOADS])
    out["n"] = len(trace)
    return out


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        print(json.dumps({"_costs": _costs, "_compile": _compile, "_floor": _floor}[argv[0]](json.loads(argv[1]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["costs", "compile", "inline", "floor"])
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--workdir", type=Path)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from run import synth_trace, write_catalog

    from pfmbench.catalog import load_catalog

    work = a.workdir or Path(tempfile.mkdtemp(prefix="pfmbench-probe-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cpath = work / "catalog100.csv"
        total = write_catalog(cpath, 100)
        gpu = 0.25 * total
        if a.what == "costs":
            tpath = work / "trace100.parquet"
            if not tpath.exists():
                synth_trace(tpath, load_catalog(cpath), a.requests)
            args = {"catalog": str(cpath), "trace": str(tpath), "gpu_gb": gpu,
                    "policies": ["lru", "fifo", "random", "cloud"]}
            rows = {}
            for label, patched in (("as is", False), ("no accuracy curve, no histogram", True)):
                rows[label] = child(copy_tree(work / ("patched" if patched else "plain"), patched), "costs", args, work)
            keys = list(rows["as is"])
            print(f"{'M req/s (thread CPU), 100 models':<34}" + "".join(f"{k:>13}" for k in keys))
            for label, r in rows.items():
                print(f"{label:<34}" + "".join(f"{r[k]:13.1f}" for k in keys))
        elif a.what == "floor":
            tpath = work / "trace100.parquet"
            if not tpath.exists():
                synth_trace(tpath, load_catalog(cpath), a.requests)
            r = child(TREE, "floor", {"catalog": str(cpath), "trace": str(tpath), "gpu_gb": gpu}, work)
            n = r["n"]
            for label, key in (("bare LRU loop (cache + AoC decay)", "bare"), ("pfmbench kernel, lru", "kernel")):
                print(f"{label:<36} {r[key]:7.3f} s CPU {n / r[key] / 1e6:7.1f} M req/s {r[key] / n * 1e9:6.1f} ns/req")
            same = r["bare_misses"] == r["kernel_misses"]
            print(f"misses: bare {r['bare_misses']:,}, kernel {r['kernel_misses']:,}: {'equal' if same else 'DIFFERENT'}")
        elif a.what == "inline":
            tpath = work / "trace100.parquet"
            if not tpath.exists():
                synth_trace(tpath, load_catalog(cpath), a.requests)
            pol = [f"pfmbench.policies.{p}" for p in ("lc", "lfu", "lru", "fifo", "random", "cloud")]
            for label, patch in (("inline='always' (as is)", False), ("LLVM inlining", INLINE_PATCH)):
                tree = copy_tree(work / "inline", patch)
                c = child(tree, "compile", {"catalog": str(cpath), "gpu_gb": gpu, "modules": pol}, work)
                r = child(tree, "costs", {"catalog": str(cpath), "trace": str(tpath), "gpu_gb": gpu,
                                          "policies": ["lru", "cloud"]}, work)
                print(f"{label:<26} compile (six) {c['cpu_s']:5.1f} s CPU · lru {r['lru/exp']:.1f} M/s, "
                      f"cloud {r['cloud/exp']:.1f} M/s", flush=True)
        else:
            tree = copy_tree(work / "compile", False)
            pol = [f"pfmbench.policies.{p}" for p in ("lc", "lfu", "lru", "fifo", "random", "cloud")]
            subsets = [[p] for p in pol] + [pol[2:5], pol]
            for mods in subsets:
                r = child(tree, "compile", {"catalog": str(cpath), "gpu_gb": gpu, "modules": mods}, work)
                print(f"{' + '.join(m.rsplit('.', 1)[1] for m in mods):<32} {r['cpu_s']:6.1f} s CPU", flush=True)
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
