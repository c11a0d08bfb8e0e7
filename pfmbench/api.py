"""The library entry points: replay one or several policies over a trace under a scenario."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import errors
from .catalog import Catalog, load_catalog
from .engine.fast import FastEngine, next_uses
from .engine.record import LOG_COLUMNS, OUTCOMES, new_log
from .engine.reference import ReferenceEngine
from .engine.tables import ADMISSION_NAMES, build_tables
from .environment import env_number
from .errors import InputError, cut
from .fileio import atomic_path
from .opt import OptCollector
from .policies import (
    PAPER_POLICIES,
    get_policy,
    policy_failed,
    policy_names,
    prints_to_stderr,
    stdout_fd_to_stderr,
)
from .results import summarize, with_opt
from .scenario import SCENARIOS, Scenario, load_scenario
from .trace.nextuse import StreamedNextUses
from .trace.reader import prefetch, sorted_chunks, stream_chunks
from .trace.schema import PairCoder, TraceArrays, as_table, convert, open_parquet

if TYPE_CHECKING:
    import polars as pl

DEFAULT_POLICIES = (*PAPER_POLICIES, "lru", "random")  # the paper's five, lru and random eviction
# Pseudo-policies: the minimum system cost over every decision sequence (pfmbench/opt/), exact within its
# instance limit and a lower bound beyond (`opt`), or exact or refused (`opt-exact`).
OPT_NAMES = ("opt", "opt-exact")
MAX_POLICY_TIMEOUT_S = 1e9  # --policy-timeout's ceiling (about 32 years)
CHUNK_ROWS = 1 << 18  # requests per engine call and per Parquet batch: small enough to keep memory low
# Parquet traces this large are read batch by batch instead of whole (the environment variable is for benchmarks).
STREAM_MIN_ROWS = env_number("PFMBENCH_STREAM_MIN_ROWS", 4 << 20, kind=int, lo=1, hi=2**62)  # a bad value: the default


@dataclass
class ReplayResult:
    summary: dict  # MODEL.md §6, keys as in `pfmbench replay --json`
    requests: pl.DataFrame | None = None  # one row per request, when asked for


def parse_policies(spec: str | list[str] | tuple) -> list[str]:
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if "all" in names:  # the paper's five, lru and random, where `all` stands (`all,opt` adds opt)
        i = names.index("all")
        given = {n.lower() for n in names}  # names match case-insensitively: `all,LC` has lc once
        names = names[:i] + [n for n in DEFAULT_POLICIES if n not in given] + [n for n in names[i + 1:] if n != "all"]
    if not names:
        raise InputError("no policy given (e.g. --policy lc,lfu or --policy all)")
    if sum(n in OPT_NAMES for n in names) > 1:
        raise InputError("--policy: give opt or opt-exact, not both")
    seen: dict[str, str] = {}
    for n in names:
        name = n if n in OPT_NAMES else get_policy(n).name.lower()  # fails early on an unknown name
        if name in seen:  # two result rows of one name could not be told apart (nor matched by compare)
            same = "" if seen[name] == n else f" ({seen[name]} and {n})"
            raise InputError(f"--policy: policy {name!r} is given twice{same}")
        seen[name] = n
    return names


def resolve(scenario=None, catalog=None, **overrides) -> tuple[Scenario, Catalog, str]:
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if overrides:
        sc = sc.with_overrides(**overrides)
    if isinstance(catalog, Catalog):
        return sc, catalog, catalog.source
    if catalog is not None:
        sc = sc.with_overrides(**{"catalog.path": str(catalog)})
    cat = sc.load_catalog()
    return sc, cat, cat.source


def scenario_trace(sc: Scenario, catalog: Catalog) -> pa.Table:
    """The synthetic trace a scenario replays when no trace is given (as Arrow: no polars needed)."""
    from .trace.synth import SCHEMA, synthesize

    ts = sc.trace
    return pa.Table.from_batches(synthesize(catalog, requests=ts.requests, rate=ts.rate, alpha=ts.alpha,
                                            seed=ts.seed), SCHEMA)


def scenario_chunks(sc: Scenario, catalog: Catalog, chunk_rows: int):
    """The scenario's synthetic trace as engine chunks of `chunk_rows`, generated batch by batch (bounded memory
    whatever trace.requests is), the chunks a whole read would cut."""
    from .trace.synth import synthesize

    ts_, coder, src, origin = sc.trace, PairCoder(catalog), f"synthetic:{sc.name}", None
    for batch in synthesize(catalog, requests=ts_.requests, rate=ts_.rate, alpha=ts_.alpha, seed=ts_.seed,
                            batch_rows=chunk_rows):
        ts, codes, units, input_mb, problems = convert(pa.Table.from_batches([batch]), coder, src)
        if problems:  # the catalog's own names: cannot happen
            raise InputError(f"{src}: {problems[0][1]}")
        origin = float(ts[0]) if origin is None else origin
        yield TraceArrays(ts - origin, codes.astype(np.int32), units, input_mb, origin, src)


class _Runner:
    """One policy's replay on the fast or the reference engine, fed chunk by chunk."""

    def __init__(self, name: str, tables, sc: Scenario, catalog: Catalog, engine: str,
                 account_thread: bool | None = None):
        self.policy = get_policy(name, sc.seed)
        self.name = self.policy.name or name  # a drop-in file reports its registered name
        if engine == "fast" and self.policy.fast is None:
            raise InputError(f"policy {name!r} has no fast-engine implementation; use --engine reference")
        self.fast = engine != "reference" and self.policy.fast is not None
        self.elapsed, self.started = 0.0, None  # seconds spent replaying so far; when the running chunk began
        self.abandoned = False  # left running on its thread (a stop signal or --policy-timeout; run_side_by_side)
        self.admission = ADMISSION_NAMES[tables.for_policy(self.policy).admission]  # the rule both engines use
        if self.fast:
            self.engine = FastEngine(tables, self.policy, sc.seed, account_thread)
        else:
            with self._user_code():  # the engine calls a drop-in's bind()
                self.engine = ReferenceEngine(tables, self.policy, sc.seed, [m.name for m in catalog.models],
                                              [m.family for m in catalog.models])

    @property
    def drop_in(self) -> bool:
        return not self.fast and not type(self.policy).__module__.startswith("pfmbench.policies")

    def spent(self) -> float:
        started = self.started
        return self.elapsed + (time.monotonic() - started if started is not None else 0.0)

    @contextlib.contextmanager
    def _user_code(self):
        """Report a drop-in policy's failure (an exception, sys.exit or os._exit) in one line naming its file;
        what it prints goes to stderr."""
        if not self.drop_in:
            yield
            return
        try:
            with prints_to_stderr():
                yield
        except BaseException as e:  # the user's code: any BaseException it raises is its error
            if errors.is_stop(e):  # a real Ctrl-C, SIGTERM or SIGHUP
                raise
            raise policy_failed(type(self.policy), e) from None

    def run(self, chunk: TraceArrays, log: bool, next_use=None) -> dict | None:
        buf = new_log(len(chunk)) if log else None
        next_use = next_use if getattr(self.policy, "needs_next_use", False) else None
        self.started = time.monotonic()
        try:
            with self._user_code():
                self.engine.run(chunk, buf, next_use)
        finally:
            self.elapsed, self.started = self.spent(), None
        return buf._asdict() if log else None

    def totals(self):
        t = self.engine.totals
        return t.counts, t.sums, t.hist


POLL_S = 0.2  # how often the main thread looks up from waiting on the policies (signals, time limits)


def run_side_by_side(runners: list[_Runner], chunk: TraceArrays, log: bool, part, timeout: float | None = None) -> list:
    """Each runner's run(chunk, log, part), side by side (the kernel releases the GIL), in runner order.

    The policies run on daemon threads while the main thread waits in short steps: a stop signal (SIGINT,
    SIGTERM, SIGHUP) runs its handler there within POLL_S and unwinds even if a drop-in policy never returns,
    and `timeout` (seconds of replay per policy) ends a policy that exceeds it with one line naming it. A
    policy left running is abandoned (Python cannot stop a thread): a daemon thread does not hold up the
    process's exit. One runner with no time limit runs on this thread (a signal interrupts it directly)."""
    if len(runners) == 1 and timeout is None:
        return [runners[0].run(chunk, log, part)]
    slots = threading.BoundedSemaphore(min(len(runners), os.cpu_count() or 1))

    def start(runner: _Runner) -> Future:
        fut: Future = Future()

        def work():
            with slots:
                if not fut.set_running_or_notify_cancel():
                    return
                try:
                    fut.set_result(runner.run(chunk, log, part))
                except BaseException as e:  # noqa: BLE001  (handed to the main thread)
                    fut.set_exception(e)

        threading.Thread(target=work, name=f"pfmbench-{runner.name}", daemon=True).start()
        return fut

    futures = [start(r) for r in runners]
    pending = set(futures)
    try:
        while pending:
            _, pending = wait(pending, timeout=POLL_S, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f.done() and f.exception() is not None), None)
            if failed is not None:  # the first failure in runner order; the others need not finish
                failed.result()
            over = next((r for r in runners if timeout is not None and r.spent() > timeout), None)
            if over is not None:
                where = getattr(type(over.policy), "source_file", None)
                raise InputError(f"{where + ': ' if where else ''}policy {over.name!r} exceeded --policy-timeout "
                                 f"{timeout:g} s (seconds of replay per policy); it is stopped, nothing is written")
    finally:
        for r, f in zip(runners, futures):
            f.cancel()  # those not started yet never will be
            r.abandoned = r.abandoned or not f.done()  # still running: left to its daemon thread
    return [f.result() for f in futures]


def _log_frame(policy: str, chunk: TraceArrays, start: int, cols: dict, pair_names, measure_from: int = 0) -> pa.Table:
    """One chunk's per-request log; `measure_from`: the first measured request (-1: none yet), the ones
    before it are the warm-up (replayed, in no metric)."""
    n = len(chunk)
    request = np.arange(start, start + n, dtype=np.int64)
    pm, pt, pb = pair_names
    outcome = pa.DictionaryArray.from_arrays(pa.array(cols["outcome"].astype(np.int32)), pa.array(OUTCOMES))
    data = {
        "policy": pa.array([policy] * n, pa.string()).dictionary_encode(),
        "request": pa.array(request),
        "ts": pa.array(chunk.ts + chunk.origin),
        "model": pa.DictionaryArray.from_arrays(pa.array(chunk.pair), pm),
        "task": pa.DictionaryArray.from_arrays(pa.array(chunk.pair), pt),
        "base": pb.take(pa.array(chunk.pair)),  # the variant's shared base (null: a full model)
        "outcome": outcome,
    }
    for name, _ in LOG_COLUMNS[1:]:
        if name == "served_pair":  # the model that served it: the request's own, or an equivalent (MODEL.md §9.1)
            data["served_by"] = pa.DictionaryArray.from_arrays(pa.array(cols[name]), pm)
        else:
            data[name] = pa.array(cols[name])
    data["warmup"] = pa.array(request < measure_from if measure_from >= 0 else np.ones(n, bool))
    return pa.table(data)


def replay_many(trace=None, policies=DEFAULT_POLICIES, scenario=None, catalog=None, *, engine: str = "auto",
                requests_out: str | Path | None = None, chunk_rows: int = CHUNK_ROWS,
                progress: Callable[[int, int], None] | None = None, workers: int = 1,
                policy_timeout: float | None = None, executor: str = "local", address: str | None = None,
                **overrides) -> list[dict]:
    """Replay a trace under each policy; one summary row per policy (MODEL.md §6).

    trace: a Parquet path, a polars DataFrame / Arrow table, a built-in scenario name, or None for the
    scenario's own synthetic trace. Large Parquet files are read batch by batch (bounded memory) when in
    time order. requests_out: write one row per request and policy to this Parquet file.
    progress(done, total) is called after each chunk. With `[[edges]]` in the scenario: rows per edge and in
    total (pfmbench/edges.py), the edges replayed on `workers` processes, or as Ray tasks with executor "ray"
    (a cluster at `address`, else a local Ray); under cooperation forward, the policies. policy_timeout: seconds of replay
    any one policy may take (a drop-in that never returns is one error naming its file; run_side_by_side).
    """
    if engine not in ("auto", "fast", "reference"):
        raise InputError(f"engine must be auto, fast or reference, got {engine!r}")
    if policy_timeout is not None and not 0 < policy_timeout <= MAX_POLICY_TIMEOUT_S:
        raise InputError(f"--policy-timeout must be more than 0 and at most {MAX_POLICY_TIMEOUT_S:g} s, got "
                         f"{cut(policy_timeout)}")
    if isinstance(trace, str) and trace in SCENARIOS and not Path(trace).exists():
        scenario, trace = trace, None
    sc, cat, cat_name = resolve(scenario, catalog, **overrides)
    names = parse_policies(policies)
    synthetic = trace is None and not sc.edges and sc.trace.requests >= STREAM_MIN_ROWS  # generated as replayed
    if trace is None:
        trace_name, source = f"synthetic:{sc.name}", None if synthetic else scenario_trace(sc, cat)
    elif isinstance(trace, (str, Path)):
        trace_name, source = str(trace), str(trace)
    else:
        trace_name, source = "<dataframe>", as_table(trace, "<dataframe>")
    if sc.edges:  # several edge servers (MODEL.md §9.4)
        if requests_out is not None:
            raise InputError("--requests-out is not available with several edge servers ([[edges]]) yet (issue 22)")
        if policy_timeout is not None:
            raise InputError("--policy-timeout is not available with several edge servers ([[edges]]) yet")
        from .edges import replay_edges

        return replay_edges(source, trace_name, names, sc, cat, cat_name, engine=engine, workers=workers,
                            chunk_rows=chunk_rows, progress=progress, executor=executor, address=address)
    total = sc.trace.requests if synthetic else None
    stream = False
    if isinstance(source, str):
        total = open_parquet(source).metadata.num_rows  # schema errors first, with the file's name
        stream = total >= STREAM_MIN_ROWS
    opt_name = next((n for n in names if n in OPT_NAMES), None)
    if opt_name and (sc.run.warmup_requests or sc.run.warmup_s):
        raise InputError(f"{opt_name}: not with a warm-up (run.warmup_requests, run.warmup_s): opt searches "
                         "decisions from an empty cache; drop the warm-up or the opt policy")
    if opt_name and sc.device.memory_gb > 0:
        raise InputError(f"{opt_name}: not defined with a [device] (its search decides edge loads and offloads "
                         "only); set device.memory_gb = 0 or drop the opt policy")

    rp = Replay(sc, cat, names, opt_name, source, synthetic, stream, total, engine, chunk_rows, progress,
                policy_timeout)
    if requests_out is not None:
        with atomic_path(requests_out) as tmp:
            runners = rp.run(tmp)
    else:
        runners = rp.run()
    rows = [summarize(*r.totals(), sc, r.name, trace_name, cat_name, "fast" if r.fast else "reference",
                      catalog=cat, admission=r.admission) for r in runners]
    if rp.optc is not None:
        rows = with_opt(rows, rp.optc.result, names.index(opt_name), sc, trace_name, cat_name, cat)
    return rows


class Replay:
    """One replay of a trace (one edge) under a list of policies: their runners over the trace's chunks, the
    request log, and opt's collector. `run` reads the trace streamed when large and in time order, else
    sorted in memory (sorted_chunks may then call `attempt` a second time, with the whole sorted read)."""

    def __init__(self, sc: Scenario, cat: Catalog, names: list[str], opt_name: str | None, source, synthetic: bool,
                 stream: bool, total: int | None, engine: str, chunk_rows: int, progress, policy_timeout):
        self.sc, self.cat, self.names, self.opt_name = sc, cat, names, opt_name
        self.source, self.synthetic, self.stream, self.total = source, synthetic, stream, total
        self.engine, self.chunk_rows, self.progress, self.policy_timeout = engine, chunk_rows, progress, policy_timeout
        self.tables = build_tables(sc, cat)
        names_ = tuple(pa.array(list(x), pa.string()) for x in zip(*cat.pair_names(), strict=True))
        # Each pair's shared base (MODEL.md §9.5: the log names the variant and its base), null for a full model.
        self.pair_names = names_ + (pa.array([cat.models[i].variant_of or None for i, _ in cat.pairs], pa.string()),)
        self.optc = None

    def run(self, writer_path=None) -> list[_Runner]:
        if self.synthetic:  # in time order by construction
            return self.attempt(prefetch(scenario_chunks(self.sc, self.cat, self.chunk_rows)), writer_path, True)
        streamed = iter([self.stream])
        return sorted_chunks(self.source, self.cat, self.chunk_rows, self.stream,
                             lambda chunks: self.attempt(chunks, writer_path, next(streamed, False)))

    def _next_uses(self, chunks, streamed: bool):
        """(chunks, next uses of a whole in-memory trace, or an on-disk index of a streamed one): offline
        policies (belady) see each request's next use. A streamed trace is read twice: once to index its next
        uses (bounded memory), once to replay it."""
        sc, cat, rows = self.sc, self.cat, self.chunk_rows
        if streamed:
            index = StreamedNextUses(chunks, self.tables.pair_model, self.tables.n_models, rows)
            return prefetch(scenario_chunks(sc, cat, rows) if self.synthetic
                            else stream_chunks(self.source, cat, rows)), None, index
        chunks = list(chunks)
        nxt = next_uses(np.concatenate([self.tables.pair_model[c.pair] for c in chunks])) if chunks else None
        return chunks, nxt, None

    def attempt(self, chunks, writer_path, streamed: bool) -> list[_Runner]:
        tables, progress = self.tables, self.progress
        names = [n for n in self.names if n not in OPT_NAMES]
        # Policies side by side on every core: an accounting thread each would find no free core (accountant.py).
        thread = None if len(names) < (os.cpu_count() or 1) else False
        runners = [_Runner(n, tables, self.sc, self.cat, self.engine, thread) for n in names]
        self.optc = optc = (OptCollector(tables, exact=True if self.opt_name == "opt-exact" else None)
                            if self.opt_name else None)
        writer = index = nxt = None
        guard = contextlib.ExitStack()
        if any(r.drop_in for r in runners):  # what a drop-in writes to fd 1 goes to stderr (nothing else
            guard.enter_context(stdout_fd_to_stderr())  # writes stdout until the replay is over)
        try:
            done = 0
            if progress:
                progress(0, self.total)
            if any(getattr(r.policy, "needs_next_use", False) for r in runners):
                chunks, nxt, index = self._next_uses(chunks, streamed)
            for chunk in chunks:
                log = writer_path is not None
                part = (nxt[done:done + len(chunk)] if nxt is not None
                        else index.part(done, len(chunk)) if index is not None else None)
                # Policies are independent and the kernel releases the GIL: replay them side by side.
                results = run_side_by_side(runners, chunk, log, part, self.policy_timeout)
                if optc is not None:
                    optc.add(chunk)
                for r, cols in zip(runners, results, strict=True):
                    if cols is not None:
                        writer = _write_log(writer, writer_path, _log_frame(r.name, chunk, done, cols, self.pair_names,
                                                                            r.engine.measure_from_seq))
                done += len(chunk)
                if progress:
                    progress(done, self.total or done)
            if optc is not None:
                optc.result = optc.solve()
                if writer_path is not None:  # opt's decisions, replayed request by request (none for a bound)
                    trace, cols = optc.request_log()
                    writer = _write_log(writer, writer_path, _log_frame("opt", trace, 0, cols, self.pair_names))
        finally:
            if not any(r.abandoned for r in runners):  # else fd 1 stays on stderr: the policy may still write
                guard.close()
            if writer is not None:
                writer.close()
            if index is not None:
                index.close()
        return runners


def _write_log(writer, path, t: pa.Table):
    """Append t to the request log at `path` (opened with t's schema on the first table)."""
    if writer is None:
        writer = pq.ParquetWriter(path, t.schema)
    writer.write_table(t)
    return writer


def replay(trace=None, policy: str = "lc", scenario=None, catalog=None, *, engine: str = "auto",
           requests: bool = False, **overrides) -> ReplayResult:
    """Replay one policy. `overrides` use scenario key names, e.g. gpu_memory_gb=40, half_life_s=300.

    >>> r = replay("default", "lc")          # doctest: +SKIP
    >>> r.summary["system_cost"]             # doctest: +SKIP
    """
    if requests:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "requests.parquet"
            [row] = replay_many(trace, [policy], scenario, catalog, engine=engine, requests_out=path, **overrides)
            import polars as pl  # only here: a replay from Parquet needs no polars

            return ReplayResult(row, pl.read_parquet(path))
    [row] = replay_many(trace, [policy], scenario, catalog, engine=engine, **overrides)
    return ReplayResult(row)


__all__ = ["ReplayResult", "load_catalog", "parse_policies", "policy_names", "replay", "replay_many"]
