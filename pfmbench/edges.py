"""Several edge servers (MODEL.md §9.4, `[[edges]]` in a scenario): `cooperation = "none"` or "forward".

Each request goes to its home edge (pfmbench/trace/home.py). Without cooperation the edges are
independent: each edge replays its own requests (in time order) through each policy on its own one-edge
scenario (the edge's keys over the scenario's [edge]), exactly as `replay` would replay that sub-trace
alone. The edges run one after the other, or side by side on worker processes (`workers` > 1) or Ray
tasks (`executor = "ray"`): the same results either way, since each edge is a pure function of its
requests and settings.

With `cooperation = "forward"` a miss at the home edge may be served by a neighbour that holds the model
(at `edge_rtt_s` more latency) before the home edge loads it or sends it to the cloud, so the edges depend
on each other: they replay jointly, in the merged trace's time order (ties in file order), each with its own
engine and state, one policy at a time (the policies are independent: those run side by side, as the
edges do without cooperation). `forward_policy` walks the runs of consecutive requests with the same home
edge and replays each run on that edge's engine with a read-only mask "some other edge holds model m now";
the engine stops before the first request that misses at home for a model the mask marks (and touches
nothing for it). That request is then replayed alone on the neighbour that holds the model and can start it
soonest (the later of its first free executor and the model's load; ties: the first in [[edges]] order),
flagged as forwarded (Requests.edge_rtt_s): a hit there (its queue, its context, its policy's on_hit),
plus the round trip in its latency, counted in `forwarded` at the serving edge. The home edge then goes on
with the next request. Both engines stop and forward alike, so they agree request by request.

Rows: one per (edge, policy) with an `edge` column, then one per policy with edge = "total", whose
counts and sums add up the edges' (the latency histograms add, the largest latency is the largest
edge's), with ratios, means and percentiles recomputed from those totals.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .catalog import Catalog
from .engine import record as C
from .errors import InputError
from .results import summarize
from .scenario import TOTAL_EDGE, Scenario
from .trace.home import HOME_COLUMNS, home_edges
from .trace.schema import TRACE_COLUMNS, PairCoder, TraceArrays, as_table, convert, more_problems

# Columns every row of a multi-edge replay gets (docs/results.md, "Several edge servers").
EDGE_COLUMNS = ("edge", "edges", "cooperation", "home_edge_by", "edge_share", "edge_rtt_s", "forwarded")


@dataclass
class EdgeJob:
    """One edge's replay: what a worker process needs (all of it pickles)."""

    index: int
    scenario: Scenario  # the edge's own one-edge scenario
    catalog: Catalog
    trace: TraceArrays | None  # its requests in time order; None: it has none
    policies: tuple[str, ...]
    engine: str
    chunk_rows: int


def replay_edge(job: EdgeJob) -> list[tuple]:
    """Replay one edge's requests under each policy: [(policy, fast?, admission, counts, sums, hist)].

    The same runners as `api.replay_many` on an in-memory trace: the same chunks, so the same bits."""
    from .api import _Runner, run_side_by_side
    from .engine.fast import next_uses
    from .engine.tables import build_tables

    tables = build_tables(job.scenario, job.catalog)
    runners = [_Runner(n, tables, job.scenario, job.catalog, job.engine) for n in job.policies]
    tr = job.trace
    if tr is not None:
        nxt = (next_uses(tables.pair_model[tr.pair]) if any(getattr(r.policy, "needs_next_use", False)
                                                             for r in runners) else None)
        for start in range(0, len(tr), job.chunk_rows):
            chunk = tr.slice(start, start + job.chunk_rows)
            part = nxt[start:start + len(chunk)] if nxt is not None else None
            run_side_by_side(runners, chunk, False, part)  # a stop signal ends even a stuck drop-in
    return [(r.name, r.fast, r.admission, *(np.array(a, copy=True) for a in r.totals())) for r in runners]


def _read(table: pa.Table, sc: Scenario, catalog: Catalog, src: str):
    """The trace's columns, its time order (ties in file order) and each request's home edge; one line naming
    the file and row on a bad value."""
    ts, codes, units, input_mb, problems = convert(table, PairCoder(catalog), src)
    if problems:
        r, msg = problems[0]
        raise InputError(f"{src}: row {r}: {msg}{more_problems(problems, hint='see `pfmbench trace validate`')}")
    if len(ts) == 0:
        raise InputError(f"{src}: the trace has no requests")
    order = np.argsort(ts, kind="stable")
    home, how = home_edges(table, [s.name for s in sc.edges], order, src)
    return ts, codes, units, input_mb, order, home, how


def split_by_edge(table: pa.Table, sc: Scenario, catalog: Catalog, src: str) -> tuple[list[TraceArrays | None], str]:
    """Each edge's requests in time order (ties in file order), as replay_many would read them alone; and
    how the home edges were assigned. One line naming the file and row on a bad value."""
    ts, codes, units, input_mb, order, home, how = _read(table, sc, catalog, src)
    names = [s.name for s in sc.edges]
    home_sorted = home[order]
    parts: list[TraceArrays | None] = []
    for e in range(len(names)):
        idx = order[home_sorted == e]
        if idx.size == 0:
            parts.append(None)
            continue
        origin = float(ts[idx[0]])
        parts.append(TraceArrays(ts[idx] - origin, codes[idx].astype(np.int32), units[idx], input_mb[idx],
                                 origin, src))
    return parts, how


def merged_by_time(table: pa.Table, sc: Scenario, catalog: Catalog, src: str) -> tuple[TraceArrays, np.ndarray, str]:
    """The whole trace in time order (ties in file order), from its first request's time, with each request's
    home edge (as split_by_edge assigns them) and how they were assigned."""
    ts, codes, units, input_mb, order, home, how = _read(table, sc, catalog, src)
    origin = float(ts[order[0]])
    merged = TraceArrays(ts[order] - origin, codes[order].astype(np.int32), units[order], input_mb[order], origin, src)
    return merged, home[order].astype(np.int32), how


@dataclass
class ForwardJob:
    """One policy's replay of every edge under cooperation forward (all of it pickles)."""

    scenarios: list  # each edge's one-edge Scenario
    catalog: Catalog
    trace: TraceArrays  # the merged trace, in time order
    home: np.ndarray  # int32: each request's home edge
    policy: str
    engine: str
    edge_rtt_s: float


def _holds(engine, n_models: int) -> np.ndarray:
    """int8 per model: the engine's edge holds it now (cached, whole or in part)."""
    state = getattr(engine, "state", None)
    if state is not None:  # the fast engine
        return (state.cached != 0).astype(np.int8)
    out = np.zeros(n_models, np.int8)
    out[list(engine.entry)] = 1
    return out


def _start_estimate(engine, m: int, now: float) -> float:
    """When this edge could start a forwarded request for its cached model m: the later of its first free
    executor and the end of m's load (a batch it might join is not looked at)."""
    state = getattr(engine, "state", None)
    if state is not None:
        return max(now, float(state.free_at.min()), float(state.ready_at[m]))
    return max(now, min(engine.free_at), engine.entry[m].ready_at)


def forward_policy(job: ForwardJob) -> list[tuple]:
    """One policy over every edge with cooperation forward (the module's docstring): per edge, (policy, fast?,
    admission, counts, sums, hist), in [[edges]] order."""
    from .api import _Runner
    from .engine.tables import build_tables

    tables = [build_tables(esc, job.catalog) for esc in job.scenarios]
    runners = [_Runner(job.policy, t, esc, job.catalog, job.engine) for t, esc in zip(tables, job.scenarios,
                                                                                          strict=True)]
    if getattr(runners[0].policy, "needs_next_use", False):
        raise InputError(f"policy {runners[0].name!r} needs each request's next use at its edge, which forwarding "
                         "between edges decides only as it replays: use cooperation = 'none' or drop it")
    engines = [r.engine for r in runners]
    pair_model = np.asarray(tables[0].pair_model)
    n_models = int(tables[0].n_models)
    tr, home = job.trace, job.home
    n = len(tr)
    held = [_holds(eng, n_models) for eng in engines]
    holders = np.sum(held, axis=0, dtype=np.int64)
    ends = np.append(np.flatnonzero(np.diff(home)) + 1, n)  # the runs of requests with the same home edge
    i = 0
    for end in ends.tolist():
        e = int(home[i])
        while i < end:
            mask = (holders - held[e] > 0).astype(np.int8)  # another edge holds the model now
            with runners[e]._user_code():
                i += engines[e].run(tr.slice(i, end), None, None, mask)
            holders += (new := _holds(engines[e], n_models)) - held[e]
            held[e] = new
            if i == end:
                break
            # request i misses at home and a neighbour holds its model: the soonest to start it serves it
            m, now = int(pair_model[tr.pair[i]]), float(tr.ts[i])
            k = min((k for k in range(len(engines)) if k != e and held[k][m]),
                    key=lambda k: (_start_estimate(engines[k], m, now), k))
            with runners[k]._user_code():
                done = engines[k].run(tr.slice(i, i + 1), None, None, None, job.edge_rtt_s)
            assert done == 1
            holders += (new := _holds(engines[k], n_models)) - held[k]
            held[k] = new
            i += 1
    return [(r.name, r.fast, r.admission, *(np.array(a, copy=True) for a in r.totals())) for r in runners]


def replay_forward(table, src, sc, edge_scs, catalog, policies, engine, workers, executor, address):
    """(each edge's number of home requests, how homes were assigned, per edge the per-policy results) of a
    replay with cooperation forward: one job per policy, run as the edges' jobs are without cooperation."""
    merged, home, how = merged_by_time(table, sc, catalog, src)
    jobs = [ForwardJob(edge_scs, catalog, merged, home, p, engine, sc.edge_rtt_s) for p in policies]
    if executor == "ray":
        per_policy = run_on_ray(forward_policy, jobs, workers, address)
    elif workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            per_policy = list(pool.map(forward_policy, jobs))
    else:
        per_policy = [forward_policy(job) for job in jobs]
    sizes = np.bincount(home, minlength=len(edge_scs))
    results = [[res[e] for res in per_policy] for e in range(len(edge_scs))]
    return [int(c) for c in sizes], how, results


def merge_totals(parts: list[tuple]) -> tuple:
    """(counts, sums, hist) of several edges: counts, sums and histograms add; the largest latency is a max."""
    counts = np.sum([p[0] for p in parts], axis=0)
    sums = np.zeros_like(parts[0][1])
    for p in parts:  # in edge order, so the total is the same float whatever ran the edges
        sums += p[1]
    sums[C.S_EDGE_LAT_MAX] = max(float(p[1][C.S_EDGE_LAT_MAX]) for p in parts)
    hist = np.sum([p[2] for p in parts], axis=0)
    return counts, sums, hist


def _with_edge(row: dict, edge: str, extra: dict) -> dict:
    """The row with `edge` after `policy` and the other edge columns after it."""
    out = {}
    for k, v in row.items():
        out[k] = v
        if k == "policy":
            out["edge"] = edge
            out.update(extra)
    return out


def run_jobs(jobs: list[EdgeJob], workers: int = 1, progress: Callable[[int, int], None] | None = None,
             total: int = 0, executor: str = "local", address: str | None = None) -> list[list[tuple]]:
    """Every edge's replay, in edge order: one after the other (workers 1), on `workers` spawned processes, or
    as Ray tasks (executor "ray": a cluster at `address`, else a local Ray with `workers` CPUs)."""
    results: list[list[tuple] | None] = [None] * len(jobs)
    done = 0
    if executor == "ray":
        for job, res in zip(jobs, run_on_ray(replay_edge, jobs, workers, address), strict=True):
            results[job.index] = res
            done += len(job.trace) if job.trace is not None else 0
            if progress:
                progress(done, total)
    elif workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            for job, res in zip(jobs, pool.map(replay_edge, jobs), strict=True):
                results[job.index] = res
                done += len(job.trace) if job.trace is not None else 0
                if progress:
                    progress(done, total)
    else:
        for job in jobs:
            results[job.index] = replay_edge(job)
            done += len(job.trace) if job.trace is not None else 0
            if progress:
                progress(done, total)
    return results  # type: ignore[return-value]


def run_on_ray(fn, jobs: list, workers: int, address: str | None) -> list:
    """fn(job) for each job as a Ray task (sweep.start_ray: a cluster at `address`, else a local Ray), in job
    order; Ray is shut down afterwards if this started it."""
    from .sweep import start_ray

    started = start_ray(address, workers)
    import ray

    try:
        with contextlib.redirect_stdout(sys.stderr):  # Ray's own notes: stdout is for results only
            task = ray.remote(max_retries=3, num_cpus=1)(fn)
            return ray.get([task.remote(job) for job in jobs])
    finally:
        if started:
            ray.shutdown()


EXECUTORS = ("local", "ray")


def replay_edges(source, trace_name: str, policies: list[str], sc: Scenario, catalog: Catalog, catalog_name: str,
                 *, engine: str = "auto", workers: int = 1, chunk_rows: int = 1 << 18,
                 progress: Callable[[int, int], None] | None = None, executor: str = "local",
                 address: str | None = None) -> list[dict]:
    """Summary rows of a multi-edge replay: per (edge, policy), then per policy the total (edge "total").

    source: a Parquet path or an Arrow table (read whole: a multi-edge trace is not streamed). executor:
    "local" (`workers` processes) or "ray" (Ray tasks; `address` a cluster, else a local Ray)."""
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    if executor not in EXECUTORS:
        raise InputError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if address is not None and executor != "ray":
        raise InputError("--address applies with --executor ray only")
    if any(p in ("opt", "opt-exact") for p in policies):
        raise InputError("opt is not available with several edge servers yet ([[edges]]): drop it from --policy")
    if isinstance(source, str):
        from .trace.schema import open_parquet

        names = open_parquet(source).schema_arrow.names
        cols = [c for c in (*TRACE_COLUMNS, *HOME_COLUMNS) if c in names]
        table = as_table(source, source, cols)
        src = source
    else:
        table, src = source, "<dataframe>" if trace_name == "<dataframe>" else trace_name
    edge_scs = [sc.edge_scenario(site) for site in sc.edges]
    if progress:
        progress(0, table.num_rows)
    if sc.cooperation == "forward":
        sizes, how, results = replay_forward(table, src, sc, edge_scs, catalog, policies, engine, workers, executor,
                                             address)
        if progress:
            progress(table.num_rows, table.num_rows)
    else:
        parts, how = split_by_edge(table, sc, catalog, src)
        jobs = [EdgeJob(i, edge_scs[i], catalog, parts[i], tuple(policies), engine, chunk_rows)
                for i in range(len(parts))]
        results = run_jobs(jobs, workers, progress, table.num_rows, executor, address)
        sizes = [len(p) if p is not None else 0 for p in parts]
    n_all = table.num_rows
    rows: list[dict] = []
    per_policy: dict[int, list[tuple]] = {}
    edge_rows: dict[int, list[dict]] = {}
    for i, (site, esc, res) in enumerate(zip(sc.edges, edge_scs, results, strict=True)):
        n_edge = sizes[i]
        extra = {"edges": len(sc.edges), "cooperation": sc.cooperation, "home_edge_by": how,
                 "edge_share": n_edge / n_all, "edge_rtt_s": sc.edge_rtt_s}
        for j, (name, fast, admission, counts, sums, hist) in enumerate(res):
            row = summarize(counts, sums, hist, esc, name, trace_name, catalog_name,
                            "fast" if fast else "reference", catalog=catalog, admission=admission)
            extra["forwarded"] = int(counts[C.C_FORWARDED])
            if n_edge == 0:
                row["notes"] = "; ".join(filter(None, [f"no request has edge {site.name} as its home edge",
                                                       row["notes"]]))
            rows.append(_with_edge(row, site.name, extra))
            per_policy.setdefault(j, []).append((counts, sums, hist))
            edge_rows.setdefault(j, []).append(rows[-1])
    for j, parts_j in per_policy.items():
        first = edge_rows[j][0]
        counts, sums, hist = merge_totals(parts_j)
        row = summarize(counts, sums, hist, sc, first["policy"], trace_name, catalog_name, first["engine"],
                        catalog=catalog, admission=first["admission"])
        row["never_fit_models"] = ",".join(m for m in first["never_fit_models"].split(",")
                                           if m and all(m in r["never_fit_models"].split(",")
                                                        for r in edge_rows[j]))
        shared = [n for n in first["notes"].split("; ")
                  if n and all(n in r["notes"].split("; ") for r in edge_rows[j])]
        row["notes"] = "; ".join([(f"total of {len(sc.edges)} edge servers (cooperation {sc.cooperation}): counts "
                                   "and sums add the edges' rows, ratios, means and percentiles are recomputed from "
                                   "them"),
                                  *shared])
        for k in row:  # the edges' own value where they share it; none where they differ
            if k.startswith("setting_edge_"):
                values = [r[k] for r in edge_rows[j]]
                row[k] = values[0] if all(v == values[0] for v in values) else None
        rows.append(_with_edge(row, TOTAL_EDGE, {"edges": len(sc.edges), "cooperation": sc.cooperation,
                                                 "home_edge_by": how, "edge_share": 1.0,
                                                 "edge_rtt_s": sc.edge_rtt_s,
                                                 "forwarded": int(counts[C.C_FORWARDED])}))
    return rows


# -- drawing (pfmbench replay) ---------------------------------------------------------------------------

def edges_header(rows: list[dict]) -> str:
    """The title line of a multi-edge replay: trace, scenario, requests, the edges and how requests reach them."""
    total = next(r for r in rows if r["edge"] == TOTAL_EDGE)
    rtt = f", edge_rtt_s {total['edge_rtt_s']:g}" if total["cooperation"] == "forward" else ""
    return (f"{total['trace']} · scenario {total['scenario']} · {total['n_requests']:,} requests · "
            f"{total['edges']} edge servers (cooperation {total['cooperation']}{rtt}, home edge by "
            f"{total['home_edge_by']}) · catalog {total['catalog']}")


def edge_grid(rows: list[dict]):
    """Per edge (and in total), each policy's system cost and edge execution ratio: one column per policy."""
    from .formats import BEST_MARK, Grid
    from .report import _fmt

    policies = list(dict.fromkeys(r["policy"] for r in rows))
    edges = list(dict.fromkeys(r["edge"] for r in rows))
    by = {(r["edge"], r["policy"]): r for r in rows}
    forward = rows[0]["cooperation"] == "forward"
    g = Grid(["edge", "GPU", "requests", *policies],
             title="System cost per edge server (total; edge execution ratio in brackets"
                   + (", and the requests it served for a neighbour: forwarded)" if forward else ")"),
             caption=f"{BEST_MARK} lowest system cost of the edge"
                     + ("; requests: those it served (its own and forwarded ones)" if forward else ""))
    for i, e in enumerate(edges):
        first = by[e, policies[0]]
        mem, preset = first["setting_edge_gpu_memory_gb"], first["setting_edge_preset"]
        gpu = "-" if mem is None else f"{mem:g} GB" + (f" {preset}" if preset else "")
        costs = [by[e, p]["system_cost"] for p in policies]
        g.rows.append([e, gpu, f"{first['n_requests']:,}",
                       *(f"{_fmt('system_cost', by[e, p]['system_cost'])} "
                         f"({_fmt('edge_execution_ratio', by[e, p]['edge_execution_ratio'])}"
                         + (f", {by[e, p]['forwarded']:,} forwarded" if forward else "") + ")" for p in policies)])
        if len(policies) > 1 and len(set(costs)) > 1:
            g.best.update((i, 3 + j) for j, c in enumerate(costs) if c == min(costs))
    return g
