"""Two pfmbench source trees side by side, in one run on one machine: kernel speed per built-in policy,
`pfmbench replay --policy all` end to end, and the first-run compile time (issue 6's before/after).

    python benchmarks/before_after.py --old /tmp/oldmain                 # 10,000,000 requests
    python benchmarks/before_after.py --old /tmp/oldmain --requests 1000000 --only kernel
    python benchmarks/before_after.py --old /tmp/oldmain --new /path/to/tree --only compile,e2e
    python benchmarks/before_after.py --old /tmp/oldmain --only instructions   # ~20 min, needs valgrind

--new defaults to the tree this script is in. Each measurement runs benchmarks/tree_worker.py in a
subprocess with PYTHONPATH set to the tree under test (from a neutral working directory, so that no
other checkout shadows it); the two trees alternate, round after round, and the best run counts:
  kernel   M requests/s of the kernel alone (whole 10M-request trace in memory, one call), from the wall
           time and from the process's CPU time (all its threads: since issue 18 the accounting runs on a
           second one), best of --rounds x --repeat; the counts of both trees must be equal.
           Catalogs and traces as in run.py: 100 and 10,000 models, GPU = 0.25 of the catalog.
  e2e      `python -m pfmbench replay FILE --policy all --catalog C --gpu-memory G` (six policies, summary
           only) on the 100-model trace: wall time and CPU seconds (user + sys, all threads), startup
           included; and replay_many(FILE, all) inside a process that has already loaded the kernel.
  compile  each tree's pfmbench/ copied to a new folder with no numba cache files (*.nbi, *.nbc), then
           `pfmbench replay` of a 10,000-request Parquet trace under --policy all run twice: CPU seconds
           (user + sys, all threads) of the first (cold) run minus the second's (kernel from the cache).
  instructions  the same two runs under valgrind's callgrind: machine instructions executed, cold minus
           cached. CPU time on a shared machine swings ±30% from one round to the next; an instruction
           count does not (PYTHONHASHSEED=0), so it tells a 5% difference in the compile's work. The two
           trees run at once, one per core; about 50x slower than natively (~20 minutes). Not in the
           default --only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import machine, synth_trace, write_catalog

from pfmbench.catalog import load_catalog

WORKER = HERE / "tree_worker.py"


def in_turn(trees: dict, r: int) -> list:
    """The trees in round r's order: reversed every other round, so that neither always runs first."""
    items = list(trees.items())
    return items[::-1] if r % 2 else items


def worker(tree: Path, mode: str, args: dict, cwd: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    p = subprocess.run([sys.executable, str(WORKER), mode, json.dumps(args)], cwd=cwd, env=env,
                       capture_output=True, text=True, check=False)
    if p.returncode:
        raise RuntimeError(f"{tree}: {mode} failed:\n{p.stderr[-2000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["pfmbench"].startswith(str(tree)), f"imported {res['pfmbench']}, not {tree}"
    return res


def timed_child(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s of the child: user + sys, all threads)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def kernel(trees: dict, work: Path, n: int, rounds: int, repeat: int, fraction: float,
           models: tuple[int, ...] = (100, 10_000)) -> dict:
    out = {}
    for n_models in models:
        cpath = work / f"catalog{n_models}.csv"
        total = write_catalog(cpath, n_models)
        tpath = work / f"trace{n_models}.parquet"
        if not tpath.exists():
            synth_trace(tpath, load_catalog(cpath), n)
        args = {"catalog": str(cpath), "trace": str(tpath), "gpu_gb": fraction * total, "repeat": repeat}
        best: dict = {}
        for r in range(rounds):
            for label, tree in in_turn(trees, r):
                res = worker(tree, "kernel", args, work)
                print(f"   {n_models:,} models, round {r + 1}, {label}: " + ", ".join(
                    f"{p} {res['requests'] / v['wall_s'] / 1e6:.1f} ({res['requests'] / v['cpu_s'] / 1e6:.1f} CPU)"
                    for p, v in res["policies"].items()), flush=True)
                for p, v in res["policies"].items():
                    b = best.setdefault(label, {}).setdefault(p, dict(v))
                    b["cpu_s"], b["wall_s"] = min(b["cpu_s"], v["cpu_s"]), min(b["wall_s"], v["wall_s"])
                    assert b["counts"] == v["counts"]
        ref = best["new"]
        for label in trees:
            for p, v in best[label].items():
                if p in ref and v["counts"] != ref[p]["counts"]:
                    raise AssertionError(f"{n_models} models, {p}: {label} counts {v['counts']} != new {ref[p]['counts']}")
        out[n_models] = {"requests": n, "best": best}
    return out


def e2e(trees: dict, work: Path, n: int, rounds: int, fraction: float) -> dict:
    cpath = work / "catalog100.csv"
    total = write_catalog(cpath, 100)
    tpath = work / "trace100.parquet"
    if not tpath.exists():
        synth_trace(tpath, load_catalog(cpath), n)
    gpu = fraction * total
    warm = work / "warm100.parquet"
    if not warm.exists():
        synth_trace(warm, load_catalog(cpath), 10_000)
    out = {label: {"cli_wall": float("inf"), "cli_cpu": float("inf"), "lib_wall": float("inf"),
                   "lib_cpu": float("inf")} for label in trees}
    cli = ["-m", "pfmbench", "replay", str(tpath), "--policy", "all", "--catalog", str(cpath),
           "--gpu-memory", f"{gpu:.3f}"]
    for r in range(rounds):
        for label, tree in in_turn(trees, r):
            env = dict(os.environ, PYTHONPATH=str(tree))
            wall, cpu = timed_child([sys.executable, *cli], env, work)
            lib = worker(tree, "e2e", {"catalog": str(cpath), "trace": str(tpath), "gpu_gb": float(f"{gpu:.3f}"),
                                       "warm": str(warm), "policies": ["all"], "repeat": 1}, work)
            o = out[label]
            o["cli_wall"], o["cli_cpu"] = min(o["cli_wall"], wall), min(o["cli_cpu"], cpu)
            o["lib_wall"], o["lib_cpu"] = min(o["lib_wall"], lib["wall_s"]), min(o["lib_cpu"], lib["cpu_s"])
            o["summary"] = {s["policy"]: (s["edge_hits"], s["loads"], s["offloads"]) for s in lib["summary"]}
            print(f"   e2e round {r + 1}, {label}: CLI {wall:.2f} s wall, {cpu:.2f} s CPU; replay_many "
                  f"{lib['wall_s']:.2f} s wall, {lib['cpu_s']:.2f} s CPU", flush=True)
    return out


def tiny_replay_args(work: Path, fraction: float) -> list[str]:
    """`python ARGS`: `pfmbench replay` of a 10,000-request trace, `--policy all`, on the 100-model catalog
    (written to `work` once), the first-run compile's workload."""
    cpath = work / "catalog100.csv"
    total = write_catalog(cpath, 100)
    tiny = work / "warm100.parquet"
    if not tiny.exists():
        synth_trace(tiny, load_catalog(cpath), 10_000)
    return ["-m", "pfmbench", "replay", str(tiny), "--policy", "all", "--catalog", str(cpath),
            "--gpu-memory", f"{fraction * total:.3f}"]


def compile_(trees: dict, work: Path, rounds: int, fraction: float) -> dict:
    """First-run compile: CPU of `pfmbench replay tiny.parquet --policy all` with no numba cache, minus the
    same command's once the cache is there (a replay from Parquet, as users run it: the old tree compiles
    one kernel per array type, and Arrow's arrays are read-only)."""
    cli = tiny_replay_args(work, fraction)
    out = {label: {"cold_cpu": float("inf"), "cold_wall": float("inf"), "warm_cpu": float("inf"),
                   "warm_wall": float("inf")} for label in trees}
    for r in range(rounds):
        for label, tree in in_turn(trees, r):
            cold = work / f"cold-{label}"
            shutil.rmtree(cold, ignore_errors=True)
            shutil.copytree(tree / "pfmbench", cold / "pfmbench",
                            ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
            env = dict(os.environ, PYTHONPATH=str(cold))
            cw, cc = timed_child([sys.executable, *cli], env, work)
            nb = sorted(p.name for p in (cold / "pfmbench").rglob("*") if p.suffix in (".nbi", ".nbc"))
            ww, wc = timed_child([sys.executable, *cli], env, work)
            o = out[label]
            o["cold_cpu"], o["cold_wall"] = min(o["cold_cpu"], cc - wc), min(o["cold_wall"], cw - ww)
            o["warm_cpu"], o["warm_wall"] = min(o["warm_cpu"], wc), min(o["warm_wall"], ww)
            o["cache_files"] = nb
            print(f"   compile round {r + 1}, {label}: cold run {cc:.1f} s CPU ({cw:.1f} s wall), cached run "
                  f"{wc:.1f} s CPU ({ww:.1f} s wall): compile {cc - wc:.1f} s CPU; cache files {nb}", flush=True)
            shutil.rmtree(cold, ignore_errors=True)
    return out


def instructions(trees: dict, work: Path, fraction: float) -> dict:
    """Instructions (callgrind's Ir) of the first-run compile: a cold `pfmbench replay --policy all` of 10,000
    requests minus a cached one, each tree in its own copy, the two trees at once."""
    import re
    import threading

    if shutil.which("valgrind") is None:
        raise SystemExit("before_after.py: --only instructions needs valgrind (apt install valgrind)")
    cli = tiny_replay_args(work, fraction)
    out: dict = {}

    def count(label: str, tree: Path) -> None:
        cold = work / f"vg-{label}"
        shutil.rmtree(cold, ignore_errors=True)
        shutil.copytree(tree / "pfmbench", cold / "pfmbench",
                        ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc"))
        env = dict(os.environ, PYTHONPATH=str(cold), PYTHONHASHSEED="0")
        res = {}
        for run in ("cold", "cached"):
            p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                                *cli], env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, check=False)
            m = re.search(r"Collected : (\d+)", p.stderr)
            if p.returncode or not m:
                raise RuntimeError(f"{tree}: valgrind run failed:\n{p.stderr[-2000:]}")
            res[run] = int(m.group(1))
        res["compile"] = res["cold"] - res["cached"]
        out[label] = res
        print(f"   instructions, {label}: cold run {res['cold'] / 1e9:.2f} G, cached run {res['cached'] / 1e9:.2f} G: "
              f"compile {res['compile'] / 1e9:.2f} G", flush=True)
        shutil.rmtree(cold, ignore_errors=True)

    threads = [threading.Thread(target=count, args=item) for item in trees.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(out) != len(trees):
        raise RuntimeError("before_after.py: an instruction count failed (see above)")
    return out


def tables_md(res: dict) -> str:
    lines = []
    if "kernel" in res:
        k = res["kernel"]
        sizes = [nm for nm in k if isinstance(nm, int)]
        pols = list(k[sizes[0]]["best"]["new"])
        for key, what in (("wall_s", "wall"), ("cpu_s", "CPU (all threads)")):
            head = " | ".join(f"{nm:,} models: old | new | ×" for nm in sizes)
            lines += [f"M requests/s from {what}:", "",
                      f"| policy | {head} | hit ratio ({' / '.join(f'{nm:,}' for nm in sizes)}) |",
                      "|---|" + "---:|---:|---:|" * len(sizes) + "---|"]
            for p in pols:
                row = [p]
                for nm in sizes:
                    b, n = k[nm]["best"], k[nm]["requests"]
                    w = n / b["new"][p][key] / 1e6
                    if p in b["old"]:
                        o = n / b["old"][p][key] / 1e6
                        row += [f"{o:.1f}", f"**{w:.1f}**", f"{w / o:.2f}"]
                    else:  # a policy the old tree does not have
                        row += ["–", f"**{w:.1f}**", "–"]
                hr = [k[nm]["best"]["new"][p]["counts"][1] / k[nm]["requests"] for nm in sizes]
                row.append(" / ".join(f"{h:.2f}" for h in hr))
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    if "e2e" in res:
        e = res["e2e"]
        lines += [f"| `--policy all`, {res['requests']:,} requests, 100 models | old | new |", "|---|---:|---:|"]
        for key, label in (("cli_wall", "CLI wall s (startup included)"), ("cli_cpu", "CLI CPU s"),
                           ("lib_wall", "replay_many wall s (kernel loaded)"), ("lib_cpu", "replay_many CPU s")):
            lines.append(f"| {label} | {e['old'][key]:.2f} | **{e['new'][key]:.2f}** |")
        lines.append("")
    if "compile" in res:
        c = res["compile"]
        lines += ["| `pfmbench replay` (10,000 requests, `--policy all`) | old | new |", "|---|---:|---:|",
                  (f"| first-run compile (cold run − cached run), CPU s | {c['old']['cold_cpu']:.1f} | "
                   f"**{c['new']['cold_cpu']:.1f}** |"),
                  f"| first-run compile, wall s | {c['old']['cold_wall']:.1f} | {c['new']['cold_wall']:.1f} |",
                  f"| whole run with the cache, CPU s | {c['old']['warm_cpu']:.2f} | {c['new']['warm_cpu']:.2f} |",
                  f"| whole run with the cache, wall s | {c['old']['warm_wall']:.2f} | {c['new']['warm_wall']:.2f} |",
                  ""]
    if "instructions" in res:
        i = res["instructions"]
        lines += ["| `pfmbench replay` (10,000 requests, `--policy all`), instructions | old | new | new / old |",
                  "|---|---:|---:|---:|"]
        for key, label in (("compile", "first-run compile (cold − cached)"), ("cold", "cold run"),
                           ("cached", "run with the cache")):
            lines.append(f"| {label} | {i['old'][key] / 1e9:.2f} G | **{i['new'][key] / 1e9:.2f} G** | "
                         f"{i['new'][key] / i['old'][key]:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--old", type=Path, required=True, help="the tree before (e.g. a checkout of 7821d23)")
    ap.add_argument("--new", type=Path, default=HERE.parent, help="the tree after (default: this one)")
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the two trees (default 2)")
    ap.add_argument("--repeat", type=int, default=2, help="kernel replays per policy per round (default 2)")
    ap.add_argument("--only", default="kernel,e2e,compile")
    ap.add_argument("--gpu-fraction", type=float, default=0.25)
    ap.add_argument("--models", default="100,10000", help="catalog sizes of the kernel runs (default 100,10000)")
    ap.add_argument("--workdir", type=Path, help="catalogs and traces (default: a temp dir, removed)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args(argv)
    trees = {"old": a.old.resolve(), "new": a.new.resolve()}
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    work = a.workdir or Path(tempfile.mkdtemp(prefix="pfmbench-ba-"))
    work.mkdir(parents=True, exist_ok=True)
    rev = {k: subprocess.run(["git", "-C", str(t), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=False).stdout.strip() for k, t in trees.items()}
    print(f"{machine()}\nold {trees['old']} ({rev['old']}), new {trees['new']} ({rev['new']}); "
          f"{a.requests:,} requests; load average {os.getloadavg()[0]:.1f} at start", flush=True)
    res: dict = {"requests": a.requests, "trees": {k: str(v) for k, v in trees.items()}, "rev": rev}
    try:
        if "kernel" in only:
            res["kernel"] = kernel(trees, work, a.requests, a.rounds, a.repeat, a.gpu_fraction,
                                   tuple(int(m) for m in a.models.split(",")))
        if "e2e" in only:
            res["e2e"] = e2e(trees, work, a.requests, a.rounds, a.gpu_fraction)
        if "compile" in only:
            res["compile"] = compile_(trees, work, a.rounds, a.gpu_fraction)
        if "instructions" in only:
            res["instructions"] = instructions(trees, work, a.gpu_fraction)
    finally:
        res["load_end"] = os.getloadavg()
        if a.json:
            a.json.write_text(json.dumps(res, indent=1))
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end\n")
    print(tables_md(res))


if __name__ == "__main__":
    main()
