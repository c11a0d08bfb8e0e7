"""Every built-in policy on four workloads, with its gap to belady and to opt: README's policy table.

    python reports/policy_table.py                 # about 3 minutes on 2 cores; prints the Markdown table
    python reports/policy_table.py --workers 2 --keep results/   # also keep each workload's sweep Parquet

Each workload is a `pfmbench sweep` (pfmbench/sweep.py), every built-in policy plus `opt`:
  default   the default scenario on its own synthetic trace (Poisson, Zipf 0.8 over Table I's pairs)
  drifting  the default scenario on a bursty (on/off MMPP) trace whose popularity ranking shifts every
            two hours: idle gaps and drift, where prediction and preloading can matter
  alibaba   Alibaba's production Stable Diffusion trace (../shared/traces), imported with its own catalog
            and scenario (`pfmbench import alibaba-genai`) on a 24 GB GPU; skipped if absent
  small     the default scenario's first 60 requests on a 40 GB GPU: small enough for the exact opt
On the first three, `opt` is a lower bound (docs/opt.md), so "gap to opt" is a gap to that bound.
Gap to belady: (system cost − belady's) / belady's. Belady's MIN minimises misses for equal sizes,
not the system cost, so a gap can be negative.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import polars as pl

from pfmbench.policies import builtin_names
from pfmbench.sweep import load_sweep_file, run_sweep
from pfmbench.trace.importers import import_alibaba

ALIBABA = Path(__file__).resolve().parents[2] / "shared" / "traces" / "alibaba-genai-2026" / "lora_request_trace.csv"
POLICIES = [*builtin_names(), "opt"]

WORKLOADS = {  # name -> the sweep file's body (policies added below)
    "default": 'scenario = "default"\n',
    "drifting": 'scenario = "default"\ntraces = [{synth = {requests = 20000, rate = 0.05, alpha = 1.0, '
                'arrivals = "mmpp", drift_every = 7200, seed = 1}}]\n',
    "alibaba": 'scenario = "ali.toml"\ncatalog = "ali_models.csv"\ntraces = ["ali.parquet"]\n'
               '[set]\ngpu_memory_gb = 24\n',
    "small": 'scenario = "default"\n[set]\n"trace.requests" = 60\ngpu_memory_gb = 40\n',
}


def run(name: str, folder: Path, workers: int) -> pl.DataFrame:
    toml = folder / f"{name}.toml"
    toml.write_text(_with_policies(WORKLOADS[name]))
    out = folder / f"{name}.parquet"
    res = run_sweep(load_sweep_file(toml), out, workers=workers)
    if res.failed:
        sys.exit(f"policy_table: {name}: {res.failed} point(s) failed")
    return pl.read_parquet(out)


def _with_policies(body: str) -> str:
    """The policies key goes before any table ([set]) of the sweep file."""
    head, sep, tail = body.partition("[set]")
    return head + "policies = [" + ", ".join(f'"{p}"' for p in POLICIES) + "]\n" + sep + tail


def table(results: dict[str, pl.DataFrame]) -> str:
    names = list(results)
    lines = ["| policy | " + " | ".join(f"{n}: cost | vs belady | vs opt" for n in names) + " |",
             "|---|" + "---:|---:|---:|" * len(names)]
    bound = {n: df.filter(pl.col("policy") == "opt").row(0, named=True) for n, df in results.items()}
    for policy in POLICIES:
        cells = []
        for n, df in results.items():
            row = df.filter(pl.col("policy") == policy).row(0, named=True)
            belady = df.filter(pl.col("policy") == "belady")["system_cost"][0]
            cost = row["system_cost"]
            if policy == "opt":
                kind = "exact" if bound[n]["opt_kind"] == "exact" else "bound"
                cells += [f"{cost:,.1f} ({kind})", _pct(cost, belady), "–"]
            else:
                cells += [f"{cost:,.1f}", _pct(cost, belady), f"{row['gap_to_opt_pct']:+.0f}%"]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pct(cost: float, ref: float) -> str:
    return "–" if ref == 0 or not math.isfinite(ref) else f"{100.0 * (cost - ref) / ref:+.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="keep the sweep files and results in this folder")
    ap.add_argument("--only", help="comma-separated workloads (default: all of " + ", ".join(WORKLOADS) + ")")
    a = ap.parse_args()
    wanted = a.only.split(",") if a.only else list(WORKLOADS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if "alibaba" in wanted:
            if ALIBABA.is_file():
                import_alibaba(ALIBABA, folder / "ali.parquet", catalog_out=folder / "ali_models.csv",
                                     scenario_out=folder / "ali.toml")
            else:
                print(f"policy_table: {ALIBABA} not found, skipping the alibaba workload", file=sys.stderr)
                wanted.remove("alibaba")
        results = {}
        for name in wanted:
            print(f"policy_table: {name} ...", file=sys.stderr, flush=True)
            results[name] = run(name, folder, a.workers)
        print(table(results))


if __name__ == "__main__":
    main()
