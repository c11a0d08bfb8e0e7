"""Synthetic request traces: arrivals (Poisson, gamma renewal, on/off MMPP, optional diurnal thinning),
Zipf popularity over the catalog's (model, task) pairs with optional drift, and per-family work units.

Output columns: ts (float64 s from 0), model, task (dictionary-encoded strings), units, input_mb (float64).
Generation runs in fixed blocks of BLOCK candidate arrivals, each with its own seeded random streams, so
  * memory is bounded (one block at a time), whatever the number of requests;
  * the same arguments and seed give the same rows, whatever `batch_rows` is;
  * a shorter trace (fewer requests, shorter duration) is a prefix of a longer one with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import Catalog

if TYPE_CHECKING:
    import polars as pl
from ..errors import InputError
from ..fileio import atomic_path
from .schema import DEFAULT_INPUT_MB, DEFAULT_UNITS

ARRIVALS = ("poisson", "gamma", "mmpp")
BLOCK = 1 << 20  # candidate arrivals per random block; fixed so results do not depend on batch_rows
DAY_S = 86400.0
# MMPP default: mean on-period 10 s, mean off-period 90 s, off-state rate 0 x on-state rate, so bursts
# run at 10x the mean rate (the mean rate stays `rate`).
MMPP_DEFAULT = (10.0, 90.0, 0.0)
# LFM tokens per request (prompt plus answer): lognormal with mean DEFAULT_UNITS["LFM"] (256) and
# log-space sigma 0.8 (median ~186, p99 ~1100), rounded to whole tokens >= 1.
LFM_TOKENS_SIGMA = 0.8

SCHEMA = pa.schema([
    ("ts", pa.float64()),
    ("model", pa.dictionary(pa.int32(), pa.string())),
    ("task", pa.dictionary(pa.int32(), pa.string())),
    ("units", pa.float64()),
    ("input_mb", pa.float64()),
])

# Independent random streams per block, so drawing fewer rows from one never shifts another.
_ARRIVE, _THIN, _POP, _UNITS, _ORDER, _START, _USER, _EDGE = range(8)
MAX_USERS = 10**6  # `users`: names user-0 .. user-(N-1); every batch carries their dictionary
MAX_EDGES = 1024  # `edges`: names edge-0 .. edge-(N-1), as `--set edges=N` names a scenario's edges


def synth_schema(users: int | None = None, edges: int | None = None) -> pa.Schema:
    """SCHEMA, plus a `user` and an `edge` column (dictionary-encoded strings) when asked for."""
    extra = [(c, pa.dictionary(pa.int32(), pa.string())) for c, n in (("user", users), ("edge", edges)) if n]
    return pa.schema([*SCHEMA, *extra]) if extra else SCHEMA


def _rng(seed: int, purpose: int, block: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, block])


def zipf_probabilities(n: int, alpha: float) -> np.ndarray:
    """P(rank r) proportional to r^-alpha, r = 1..n."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -float(alpha)
    return w / w.sum()


MAX_REQUESTS = 10**9  # beyond this synth refuses unless forced (about 9 GB of Parquet; minutes to write)
MAX_FORCED_REQUESTS = 10**12  # refused even with --force (about 9 TB of Parquet; days to write)
MAX_SEED = 2**64 - 1
BYTES_PER_REQUEST = 11  # Parquet bytes per synthetic request, measured (docs/traces.md)


def estimate_requests(requests: int | None, duration: float | None, rate: float) -> float:
    """The expected number of requests: `requests`, or rate x duration if that comes first."""
    est = math.inf if requests is None else float(min(requests, 10**300))  # float() of a huge int raises
    if duration is not None:
        est = min(est, rate * duration)
    return est


def _check(catalog, requests, duration, rate, arrivals, cv, mmpp, diurnal, alpha, drift_every, batch_rows,
           seed=0, force=False, users=None, edges=None):
    for name, n, top in (("users", users, MAX_USERS), ("edges", edges, MAX_EDGES)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= top):
            raise InputError(f"synth: {name} must be a whole number from 1 to {top:,}, got {n!r}")
    if requests is None and duration is None:
        raise InputError("synth: give the number of requests or a duration")
    if requests is not None and (isinstance(requests, bool) or not isinstance(requests, (int, np.integer))):
        raise InputError(f"synth: requests must be a whole number, got {requests!r}")
    if requests is not None and requests < 1:
        raise InputError(f"synth: requests must be at least 1, got {requests}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise InputError(f"synth: duration must be a finite number of seconds > 0, got {duration}")
    if not (1e-9 <= rate <= 1e9):
        raise InputError(f"synth: rate must be between 1e-9 and 1e9 requests/s, got {rate}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"synth: seed must be a whole number from 0 to 2**64-1, got {seed!r}")
    est = estimate_requests(requests, duration, rate)
    if est > MAX_FORCED_REQUESTS:
        raise InputError(f"synth: about {est:.3g} requests (~{est * BYTES_PER_REQUEST / 1e12:.3g} TB) is beyond "
                         f"what synth writes even with --force ({MAX_FORCED_REQUESTS:.0e} requests)")
    if est > MAX_REQUESTS and not force:
        raise InputError(f"synth: about {est:.3g} requests (~{est * BYTES_PER_REQUEST / 1e9:.3g} GB) is beyond "
                         f"the limit of {MAX_REQUESTS:.0e}; pass --force (force=True) to write it anyway")
    if arrivals not in ARRIVALS:
        raise InputError(f"synth: arrivals must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    if arrivals == "gamma" and not (0 < cv <= 100):
        raise InputError(f"synth: cv must be > 0 and <= 100, got {cv}")
    on, off, ratio = mmpp
    if arrivals == "mmpp" and not (0 < on <= 1e9 and 0 < off <= 1e9 and 0 <= ratio <= 1):
        raise InputError(f"synth: mmpp needs on_s > 0, off_s > 0 and 0 <= off_ratio <= 1, got {mmpp}")
    if diurnal is not None and not 0 <= diurnal <= 1:
        raise InputError(f"synth: diurnal amplitude must be in [0, 1], got {diurnal}")
    if not (0 <= alpha <= 100):
        raise InputError(f"synth: alpha must be between 0 and 100, got {alpha}")
    if drift_every is not None and not (drift_every > 0 and math.isfinite(drift_every)):
        raise InputError(f"synth: drift_every must be > 0 seconds, got {drift_every}")
    if batch_rows < 1:
        raise InputError(f"synth: batch_rows must be >= 1, got {batch_rows}")
    if not catalog.pairs:
        raise InputError(f"{catalog.source}: the catalog has no (model, task) pairs")


def check_args(catalog: Catalog, *, requests: int | None = None, duration: float | None = None, rate: float = 1.0,
               arrivals: str = "poisson", cv: float = 2.0, mmpp: tuple = MMPP_DEFAULT, diurnal: float | None = None,
               alpha: float = 0.8, drift_every: float | None = None, shuffle: bool = False, seed: int = 0,
               batch_rows: int = 1 << 20, force: bool = False, users: int | None = None,
               edges: int | None = None) -> None:
    """Raise InputError now for arguments synthesize() would refuse (it checks only when iterated)."""
    _check(catalog, requests, duration, rate, arrivals, cv, mmpp, diurnal, alpha, drift_every, batch_rows, seed,
           force, users, edges)


class _Arrivals:
    """Candidate arrival times at `rate`, BLOCK at a time; carries the process state between blocks."""

    def __init__(self, kind: str, rate: float, cv: float, mmpp: tuple, seed: int):
        self.kind, self.rate, self.cv, self.seed = kind, rate, cv, seed
        self.t = 0.0
        on, off, ratio = mmpp
        # Rates in the on and off states chosen so that the long-run mean is `rate`.
        lam_on = rate * (on + off) / (on + ratio * off)
        self.mean_s = np.array([off, on])  # index by state: 0 off, 1 on
        self.lam = np.array([ratio * lam_on, lam_on])
        # Start in the stationary state distribution.
        self.state = int(_rng(seed, _START).random() < on / (on + off))

    def block(self, b: int) -> np.ndarray:
        rng = _rng(self.seed, _ARRIVE, b)
        if self.kind == "poisson":
            gaps = rng.exponential(1.0 / self.rate, BLOCK)
        elif self.kind == "gamma":
            shape = 1.0 / self.cv**2  # gamma gaps with mean 1/rate and coefficient of variation cv
            gaps = rng.gamma(shape, 1.0 / (self.rate * shape), BLOCK)
        else:
            return self._mmpp(rng)
        ts = self.t + np.cumsum(gaps)
        self.t = float(ts[-1])
        return ts

    def _mmpp(self, rng: np.random.Generator) -> np.ndarray:
        # Time change: unit-rate Poisson points s_i mapped through the inverse of the integrated,
        # piecewise-constant rate. Sojourns are exponential, so the state's remaining time is redrawn
        # at each block start (memoryless), which keeps blocks independent yet exact.
        s = np.cumsum(rng.exponential(1.0, BLOCK))
        cycle = float(self.lam @ self.mean_s)  # expected integrated rate per on+off cycle
        n = 2 * int(s[-1] / cycle) + 16
        states = (self.state + np.arange(n)) % 2
        dur = rng.exponential(self.mean_s[states])
        lam = self.lam[states]
        cum_l = np.cumsum(lam * dur)
        while cum_l[-1] < s[-1]:  # rare: the drawn periods were too short; add more
            states2 = (states[-1] + 1 + np.arange(n)) % 2
            dur2 = rng.exponential(self.mean_s[states2])
            states, dur = np.concatenate([states, states2]), np.concatenate([dur, dur2])
            lam = self.lam[states]
            cum_l = np.cumsum(lam * dur)
        end_t = self.t + np.cumsum(dur)
        j = np.searchsorted(cum_l, s, side="right")  # the period holding each point (never a 0-rate one)
        start_l = np.where(j > 0, cum_l[j - 1], 0.0)
        start_t = np.where(j > 0, end_t[j - 1], self.t)
        ts = start_t + (s - start_l) / lam[j]
        self.t, self.state = float(ts[-1]), int(states[j[-1]])
        return ts


def synthesize(catalog: Catalog, *, requests: int | None = None, duration: float | None = None,
               rate: float = 1.0, arrivals: str = "poisson", cv: float = 2.0,
               mmpp: tuple[float, float, float] = MMPP_DEFAULT, diurnal: float | None = None,
               alpha: float = 0.8, drift_every: float | None = None, shuffle: bool = False,
               seed: int = 0, batch_rows: int = 1 << 20, force: bool = False, users: int | None = None,
               edges: int | None = None) -> Iterator[pa.RecordBatch]:
    """Yield a synthetic trace as Arrow record batches of at most `batch_rows` rows.

    requests / duration: stop after this many requests / at this time (s); the first reached wins.
    rate: mean requests/s. arrivals: "poisson"; "gamma" (renewal, inter-arrival coefficient of
    variation `cv`); "mmpp" (on/off Markov-modulated Poisson, mmpp = (mean on-period s, mean off-period
    s, off-state rate / on-state rate), normalized to mean `rate`).
    diurnal: amplitude A in [0, 1]; rate(t) = rate * (1 + A sin(2 pi t / 86400)) by thinning.
    alpha: Zipf exponent over the catalog's (model, task) pairs; rank 1 is pair 0 in catalog order
    (or after a seeded shuffle with `shuffle`). drift_every: every this many seconds the ranking
    rotates by one (rank r then names the pair that had rank r+1; the top pair drops to the bottom).
    seed: 0 to 2**64-1. More than MAX_REQUESTS expected requests are refused unless `force`.
    users: add a `user` column: each request's user drawn uniformly from user-0 .. user-(users-1),
    independently of its model and time. edges: add an `edge` column naming edge-0 .. edge-(edges-1): with
    `users`, each user's home edge by the replay's user hash (pfmbench/trace/home.py), so the column agrees
    with what the replay would assign from the users; without, drawn uniformly per request. Both draw from
    streams of their own: the other columns are the same with or without them.
    """
    _check(catalog, requests, duration, rate, arrivals, cv, mmpp, diurnal, alpha, drift_every, batch_rows, seed,
           force, users, edges)
    schema = synth_schema(users, edges)
    user_dict = pa.array([f"user-{i}" for i in range(users)], pa.string()) if users else None
    edge_dict = pa.array([f"edge-{i}" for i in range(edges)], pa.string()) if edges else None
    user_home = None
    if users and edges:
        from .home import user_edge

        user_home = np.array([user_edge(f"user-{i}", edges) for i in range(users)], dtype=np.int32)
    names = catalog.pair_names()
    n_pairs = len(names)
    model_names = [m.name for m in catalog.models]
    task_names = list(dict.fromkeys(t for _, t in names))
    pair_model = np.array([i for i, _ in catalog.pairs], dtype=np.int32)
    pair_task = np.array([task_names.index(t) for _, t in names], dtype=np.int32)
    model_dict, task_dict = pa.array(model_names, pa.string()), pa.array(task_names, pa.string())
    fam = [catalog.models[i].family for i, _ in catalog.pairs]
    pair_lfm = np.array([f == "LFM" for f in fam])
    pair_units = np.array([DEFAULT_UNITS[f] for f in fam])
    # Payload grows with the work: DEFAULT_INPUT_MB for a request of DEFAULT_UNITS, per family.
    pair_mb_per_unit = np.array([DEFAULT_INPUT_MB[f] / DEFAULT_UNITS[f] for f in fam])
    lfm_mu = math.log(DEFAULT_UNITS["LFM"]) - LFM_TOKENS_SIGMA**2 / 2  # so that the mean is 256

    order = np.arange(n_pairs)
    if shuffle:
        order = _rng(seed, _ORDER).permutation(n_pairs)
    cdf = np.cumsum(zipf_probabilities(n_pairs, alpha))
    cdf[-1] = 1.0
    peak = 1.0 + (diurnal or 0.0)
    source = _Arrivals(arrivals, rate * peak, cv, mmpp, seed)

    pending: list[pa.RecordBatch] = []
    n_pending = n_done = 0
    b = 0
    # The first arrival: the file's times start at 0, as every trace pfmbench writes (docs/traces.md);
    # duration, drift_every and diurnal keep the arrival process's clock (same requests as before the shift).
    origin = None
    while True:
        ts = source.block(b)
        if diurnal:
            keep = _rng(seed, _THIN, b).random(BLOCK) * peak < 1.0 + diurnal * np.sin(ts * (2 * np.pi / DAY_S))
            ts = ts[keep]
        last = False
        if duration is not None and ts.size and ts[-1] >= duration:
            ts, last = ts[: np.searchsorted(ts, duration)], True
        if requests is not None and n_done + ts.size >= requests:
            ts, last = ts[: requests - n_done], True
        n = ts.size
        if origin is None and n:
            origin = float(ts[0])
        rank = np.searchsorted(cdf, _rng(seed, _POP, b).random(n), side="right")
        if drift_every is not None:
            rank = rank + (ts // drift_every).astype(np.int64)
        pair = order[rank % n_pairs]
        units = pair_units[pair]
        lfm = pair_lfm[pair]
        n_lfm = int(lfm.sum())
        if n_lfm:
            units[lfm] = np.maximum(1.0, np.rint(_rng(seed, _UNITS, b).lognormal(lfm_mu, LFM_TOKENS_SIGMA, n_lfm)))
        columns = [
            pa.array(ts - origin if n else ts),
            pa.DictionaryArray.from_arrays(pa.array(pair_model[pair]), model_dict),
            pa.DictionaryArray.from_arrays(pa.array(pair_task[pair]), task_dict),
            pa.array(units),
            pa.array(units * pair_mb_per_unit[pair]),
        ]
        if users:
            user = _rng(seed, _USER, b).integers(0, users, n).astype(np.int32)
            columns.append(pa.DictionaryArray.from_arrays(pa.array(user), user_dict))
        if edges:
            edge = user_home[user] if user_home is not None else _rng(seed, _EDGE, b).integers(0, edges, n)
            columns.append(pa.DictionaryArray.from_arrays(pa.array(edge.astype(np.int32)), edge_dict))
        batch = pa.RecordBatch.from_arrays(columns, schema=schema)
        n_done += n
        pending.append(batch)
        n_pending += n
        # Re-chunk to batch_rows so that the output does not depend on BLOCK.
        while n_pending >= batch_rows or (last and n_pending):
            table = pa.Table.from_batches(pending, schema)
            head = table.slice(0, batch_rows)
            yield from head.combine_chunks().to_batches()
            rest = table.slice(head.num_rows)
            pending, n_pending = rest.to_batches(), rest.num_rows
        if last:
            break
        b += 1
    if n_done == 0:
        raise InputError(f"synth: no request arrived within the duration ({duration} s at {rate}/s)")


def synthesize_df(catalog: Catalog, **kwargs) -> pl.DataFrame:
    """The whole synthetic trace as a polars DataFrame (model, task as String). For small traces.

    Same keyword arguments as synthesize(), e.g. synthesize_df(cat, requests=10_000, rate=2, alpha=0.8, seed=1).
    """
    schema = synth_schema(kwargs.get("users"), kwargs.get("edges"))
    table = pa.Table.from_batches(list(synthesize(catalog, **kwargs)), schema)
    import polars as pl

    return pl.from_arrow(table).with_columns(pl.col(*(c for c in schema.names if pa.types.is_dictionary(
        schema.field(c).type))).cast(pl.String))


def synth_parquet_options(schema: pa.Schema) -> dict:
    """ParquetWriter encodings and codecs of a synthetic trace, chosen for reading speed (benchmarks/README.md,
    "Reading Parquet"): a 10M-request trace decodes in ~40% of the CPU time of plain zstd, in ~70% of its size.
    ts: BYTE_STREAM_SPLIT under zstd (the bytes of each float64 apart; the exponent bytes compress well).
    Every other column (strings, units, input_mb: a few thousand distinct values) dictionary-encoded, under
    LZ4 (LZ4_RAW), which decodes faster than zstd at a similar size for short dictionary indices. Any
    Parquet reader of the last years reads them (pyarrow, polars, DuckDB); older files read as before."""
    rest = [c for c in schema.names if c != "ts"]
    return {"use_dictionary": rest, "column_encoding": {"ts": "BYTE_STREAM_SPLIT"},
            "compression": {"ts": "zstd", **dict.fromkeys(rest, "lz4")}}


def write_synth(path: str | Path, catalog: Catalog, *, progress: Callable[[int], None] | None = None,
                **kwargs) -> int:
    """Write a synthetic trace to Parquet, one row group per batch, atomically. Returns the row count.

    progress(rows) is called after each row group. Same keyword arguments as synthesize().
    """
    rows = 0
    # Fixed settings so the same arguments give the same bytes. Statistics only for ts (min/max per row
    # group): those of the string columns cost a third of the write time.
    schema = synth_schema(kwargs.get("users"), kwargs.get("edges"))
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, write_statistics=["ts"],
                                                    **synth_parquet_options(schema)) as w:
        for batch in synthesize(catalog, **kwargs):
            w.write_batch(batch)
            rows += batch.num_rows
            if progress:
                progress(rows)
    return rows
