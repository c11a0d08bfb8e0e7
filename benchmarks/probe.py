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
floor    what a simulator of the same cache and model could cost at least, on this machine, on the same trace
         (CPU time, best of 3): a bare numba loop (LRU list, GPU memory in bytes, evict until it fits, and the
         `exp` decay of the pair's examples on each hit); a fused loop doing all the kernel's lru does (context,
         queue, costs, accuracy curve, histogram) in one pass through the engine's own arithmetic, with nothing
         else, whose totals must equal the kernel's bit for bit; the kernel's lru (accounting inline); and
         pfmbench's Parquet reader. read + fused, halved, is the least wall time any split over two cores
         could take; with libCacheSim installed it is set beside libCacheSim's LRU on the same trace. The gap
         between fused and kernel is what the engine's generality costs (policy hooks, options, admission and
         dispatch checks, decisions buffered for the accounting pass).
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


def _lru_ops():
    """The LRU list of both floor loops, on prev/nxt arrays with the head and tail in locals (registers)."""
    from numba import njit

    @njit(inline="always")
    def to_tail(prev, nxt, head, tail, m):
        """m, cached, becomes the most recently used; returns (head, tail)."""
        if tail != m:
            a, b = prev[m], nxt[m]
            if a >= 0:
                nxt[a] = b
            else:
                head = b
            prev[b] = a
            prev[m], nxt[m], nxt[tail] = tail, -1, m
            tail = m
        return head, tail

    @njit(inline="always")
    def pop_head(prev, nxt, head, tail):
        """The least recently used leaves; returns (it, head, tail)."""
        v = head
        head = nxt[v]
        if head >= 0:
            prev[head] = -1
        else:
            tail = -1
        return v, head, tail

    @njit(inline="always")
    def push_tail(prev, nxt, head, tail, m):
        """m enters as the most recently used; returns (head, tail)."""
        prev[m], nxt[m] = tail, -1
        if tail >= 0:
            nxt[tail] = m
        else:
            head = m
        return head, m

    return to_tail, pop_head, push_tail


def _bare_lru():
    import numpy as np
    from numba import njit

    to_tail, pop_head, push_tail = _lru_ops()

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
                head, tail = to_tail(prev, nxt, head, tail, m)
                continue
            misses += 1
            if mem_bytes[m] > capacity:
                continue  # offloaded
            while used + mem_bytes[m] > capacity:  # evict from the head
                v, head, tail = pop_head(prev, nxt, head, tail)
                cached[v] = 0
                used -= mem_bytes[v]
            cached[m] = 1
            used += mem_bytes[m]
            head, tail = push_tail(prev, nxt, head, tail, m)
            examples[p] = 1.0
            examples_time[p] = now
        return misses

    return bare_lru


def _fused_lru():
    """The kernel's whole model for LRU (context, queue, costs, accuracy, histogram) in one pass with nothing else:
    no policy hooks, no options, no admission or dispatch checks, no decisions buffered for an accounting pass.
    It calls the engine's own arithmetic (its compiled twins), so its totals must equal the kernel's bit for bit."""
    from numba import njit

    from pfmbench.engine import account, context, costs
    from pfmbench.engine.jit import compiled
    from pfmbench.engine.record import C_BATCHES, C_EVICTIONS, C_REQUESTS, S_CONTEXT_DISCARDED

    at_service, add_demo = compiled(context.examples_at_service), compiled(context.add_demonstration)
    discard, start = compiled(context.discard_context), compiled(context.start_context)
    service_time, first_free = compiled(costs.service_time), compiled(costs.first_free_executor)
    edge_work = compiled(costs.edge_work)
    serve_edge, serve_cloud = compiled(account.serve_edge), compiled(account.serve_cloud)
    to_tail, pop_head, push_tail = _lru_ops()

    @njit(nogil=True, _nrt=False)  # no reference counts: `tab` holds ~40 arrays (see kernel.py)
    def fused_lru(tab, rec, cx, log, ts, pair, units, input_mb, prev, nxt, cached, ready, free_at):
        head = tail = -1
        used = 0
        rec.counts[C_REQUESTS] += ts.shape[0]
        for i in range(ts.shape[0]):
            now, p = ts[i], pair[i]
            m = tab.pair_model[p]
            evictions = 0
            if cached[m]:
                k_own, k_eff, f = at_service(tab, cx, p, m, now)
                loaded = False
                head, tail = to_tail(prev, nxt, head, tail, m)
            else:
                if tab.mem_bytes[m] > tab.capacity_bytes:
                    serve_cloud(tab, rec, False, log, i, p, units[i], input_mb[i], 0)
                    continue
                while used + tab.mem_bytes[m] > tab.capacity_bytes:  # evict from the head
                    v, head, tail = pop_head(prev, nxt, head, tail)
                    cached[v] = 0
                    used -= tab.mem_bytes[v]
                    rec.sums[S_CONTEXT_DISCARDED] += discard(tab, cx, v, now)
                    rec.counts[C_EVICTIONS] += 1
                    evictions += 1
                cached[m] = 1
                used += tab.mem_bytes[m]
                ready[m] = now
                start(cx, m, now)
                head, tail = push_tail(prev, nxt, head, tail, m)
                k_own, k_eff, f = 0.0, 0.0, 1.0
                loaded = True
            load = tab.load_time[m] if loaded else 0.0
            j = first_free(free_at)  # the queue: the first free executor, once the model is in memory
            begin = max(now, free_at[j], ready[m])
            compute = service_time(tab, p, units[i], k_eff, 1)
            free_at[j] = begin + load + compute
            rec.counts[C_BATCHES] += 1
            if loaded:
                ready[m] = begin + load
            work, _ = edge_work(tab, p, units[i], k_eff)
            serve_edge(tab, rec, False, log, i, p, m, input_mb[i], k_eff, work, compute, begin - now, loaded,
                       evictions, False, p, 0, 0, 0.0, 0)
            add_demo(tab, cx, p, m, now, k_own, f)

    return fused_lru


def _floor(a: dict) -> dict:
    import time

    import numpy as np

    from pfmbench.api import CHUNK_ROWS
    from pfmbench.catalog import load_catalog
    from pfmbench.engine.context import new_context
    from pfmbench.engine.fast import _NO_LOG, FastEngine
    from pfmbench.engine.record import C_LOADS, C_OFFLOADS, new_totals
    from pfmbench.engine.tables import build_tables
    from pfmbench.policies import get_policy
    from pfmbench.scenario import load_scenario
    from pfmbench.trace.reader import stream_chunks
    from pfmbench.trace.schema import read_trace

    cat = load_catalog(a["catalog"])
    trace = read_trace(a["trace"], cat)
    tables = build_tables(load_scenario(gpu_memory_gb=a["gpu_gb"]), cat)
    assert tables.batching == 0 and not tables.all_options, "the fused loop models the default scenario"
    bare, fused = _bare_lru(), _fused_lru()
    ts, pair = np.ascontiguousarray(trace.ts, np.float64), np.ascontiguousarray(trace.pair, np.int32)
    units, input_mb = np.ascontiguousarray(trace.units, np.float64), np.ascontiguousarray(trace.input_mb, np.float64)
    n_models = tables.n_models
    n_exec = FastEngine(tables, get_policy("lru"), 0).state.free_at.shape[0]

    def run_bare(k):
        return bare(pair[:k], tables.pair_model, tables.mem_bytes, tables.capacity_bytes, ts[:k], tables.half_life_s,
                    len(tables.pair_model))

    def run_fused(k):
        rec = new_totals()
        fused(tables, rec, new_context(n_models, len(tables.pair_model)), _NO_LOG, ts[:k], pair[:k], units[:k],
              input_mb[:k], np.full(n_models, -1, np.int64), np.full(n_models, -1, np.int64),
              np.zeros(n_models, np.int8), np.zeros(n_models), np.zeros(n_exec))
        return rec

    def run_kernel(k):
        eng = FastEngine(tables, policy, 0, account_thread=False)
        eng.run(trace.slice(0, k))
        return eng.totals

    def decode():  # pfmbench's reader: the chunks the engine receives (pyarrow's decoding, on one thread)
        return sum(len(c) for c in stream_chunks(a["trace"], cat, CHUNK_ROWS))

    policy = get_policy("lru")
    run_bare(1000), run_fused(1000), run_kernel(10_000)  # compile, or load the kernel
    n = len(trace)
    out = {"bare": float("inf"), "fused": float("inf"), "kernel": float("inf"), "decode": float("inf"), "n": n}
    for _ in range(3):
        for key, fn in (("bare", lambda: run_bare(n)), ("fused", lambda: run_fused(n)),
                        ("kernel", lambda: run_kernel(n)), ("decode", decode)):
            c0 = time.process_time() if key == "decode" else time.thread_time()
            out[key + "_result"] = fn()
            c1 = time.process_time() if key == "decode" else time.thread_time()
            out[key] = min(out[key], c1 - c0)
    fused_tot, kernel_tot = out.pop("fused_result"), out.pop("kernel_result")
    out.pop("decode_result")
    out["fused_equal"] = bool((fused_tot.counts == kernel_tot.counts).all() and (fused_tot.sums == kernel_tot.sums).all()
                              and (fused_tot.hist == kernel_tot.hist).all())
    out["bare_misses"] = int(out.pop("bare_result"))
    out["kernel_misses"] = int(kernel_tot.counts[C_LOADS] + kernel_tot.counts[C_OFFLOADS])
    return out


def _lcs_lru(tpath: Path, cpath: Path, gpu: float, work: Path):
    """Best of 5 wall seconds of libCacheSim's LRU over the trace (as vs_libcachesim.py runs it); None without it."""
    try:
        import libcachesim as lcs
    except ImportError:
        return None
    import time

    from vs_libcachesim import write_oracle_general

    from pfmbench.catalog import load_catalog
    from pfmbench.engine.tables import build_tables
    from pfmbench.scenario import load_scenario
    from pfmbench.trace.schema import read_trace

    cat = load_catalog(cpath)
    tables = build_tables(load_scenario(gpu_memory_gb=gpu), cat)
    bin_path = work / "floor.oracleGeneral.bin"
    unit = write_oracle_general(bin_path, read_trace(tpath, cat), tables)
    os.sync()  # the file's dirty pages written back before the timing, not during it
    best = float("inf")
    for _ in range(5):
        cache = lcs.LRU(cache_size=int(tables.capacity_bytes) // unit)
        t0 = time.perf_counter()
        cache.process_trace(lcs.TraceReader(str(bin_path), lcs.TraceType.ORACLE_GENERAL_TRACE))
        best = min(best, time.perf_counter() - t0)
    return best


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
        gpu = round(0.25 * total, 6)  # whole kB, as vs_libcachesim.py: libCacheSim's size unit stays 1,000
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
            for label, key in (("bare LRU loop (cache + AoC decay)", "bare"),
                               ("fused LRU, the whole model in one pass", "fused"),
                               ("pfmbench kernel, lru, accounting inline", "kernel"),
                               ("pfmbench reading the Parquet trace", "decode")):
                print(f"{label:<40} {r[key]:7.3f} s CPU {n / r[key] / 1e6:7.1f} M req/s {r[key] / n * 1e9:6.1f} ns/req")
            same = r["bare_misses"] == r["kernel_misses"]
            print(f"misses: bare {r['bare_misses']:,}, kernel {r['kernel_misses']:,}: {'equal' if same else 'DIFFERENT'}; "
                  f"fused totals {'equal to' if r['fused_equal'] else 'DIFFERENT from'} the kernel's, bit for bit")
            need = r["decode"] + r["fused"]
            print(f"floor from Parquet: read + fused = {need:.3f} CPU s; on 2 cores at best {need / 2:.3f} s wall "
                  f"({need / 2 / n * 1e9:.1f} ns/req), if the work split evenly and handing it over cost nothing")
            lcs = _lcs_lru(tpath, cpath, gpu, work)
            if lcs is not None:
                print(f"libCacheSim LRU (its C loop over its binary file), same trace: {lcs:.3f} s wall "
                      f"({lcs / n * 1e9:.1f} ns/req): the floor reaches {lcs / (need / 2):.2f}x of it at best")
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
