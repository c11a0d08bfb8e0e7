"""The request-trace schema and its conversion to the engine's numpy arrays.

A trace is Parquet (or a polars DataFrame / Arrow table) with columns
  ts        float seconds, or a timestamp/date/duration type        required, within ±1e15 s
  model     string (plain or dictionary)                             required
  task      string; null means the model's first task                optional
  units     tokens (LFM) or inputs (VFM, MFM) of the request         optional, default per family, 0..1e9
  input_mb  request payload sent to the cloud on offload, MB         optional, default per family, 0..1e6
Rows are numbered from 0, as polars and pyarrow number them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..catalog import Catalog
from ..errors import InputError
from ..fileio import require_file

TRACE_COLUMNS = ("ts", "model", "task", "units", "input_mb")
REQUIRED = ("ts", "model")
# Defaults when a trace has no units / input_mb column: a 256-token LFM request (prompt plus answer),
# one image or clip for vision and multimodal models; payload ~4 kB of text or a 0.5 MB image.
DEFAULT_UNITS = {"LFM": 256.0, "VFM": 1.0, "MFM": 1.0}
DEFAULT_INPUT_MB = {"LFM": 0.004, "VFM": 0.5, "MFM": 0.5}
# Upper bounds per request that keep every cost finite whatever the catalog and scenario (docs/traces.md):
# a billion tokens or inputs, a terabyte of payload.
MAX_VALUE = {"units": 1e9, "input_mb": 1e6}
MAX_ABS_TS = 1e15  # seconds (30 million years): keeps every time difference finite and exact to the millisecond


@dataclass
class TraceArrays:
    """What the engines replay: one entry per request, sorted by time (ties in file order)."""

    ts: np.ndarray  # float64 seconds since `origin`
    pair: np.ndarray  # int32 index into catalog.pairs
    units: np.ndarray  # float64
    input_mb: np.ndarray  # float64
    origin: float = 0.0  # the first request's absolute time (seconds); ts are relative to it
    source: str = "<trace>"

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, start: int, stop: int) -> TraceArrays:
        return TraceArrays(self.ts[start:stop], self.pair[start:stop], self.units[start:stop],
                           self.input_mb[start:stop], self.origin, self.source)


def _is_str(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_num(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _is_time(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_duration(t)


def check_schema(schema: pa.Schema, src: str) -> None:
    """Raise InputError for a missing required column or a column of the wrong type."""
    names = set(schema.names)
    for c in TRACE_COLUMNS:  # which of two same-named columns would be read is undefined (pyarrow refuses)
        if schema.names.count(c) > 1:
            raise InputError(f"{src}: column {c!r} appears more than once")
    for c in REQUIRED:
        if c not in names:
            raise InputError(f"{src}: missing column {c!r} (a trace needs ts and model; task, units, input_mb are optional)")
    for c in TRACE_COLUMNS:
        if c not in names:
            continue
        t = schema.field(c).type
        ok = (_is_num(t) or _is_time(t)) if c == "ts" else _is_str(t) if c in ("model", "task") else _is_num(t)
        if not ok:
            want = "a number or timestamp" if c == "ts" else "a string" if c in ("model", "task") else "a number"
            raise InputError(f"{src}: column {c!r} has type {t}, expected {want}")


def _seconds(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit]
        return col.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64) / scale
    if pa.types.is_date(t):
        return col.cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.float64) * 86400.0
    return _float64(col)


def _float64(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    # Unsafe: an integer beyond 2**53 rounds (the bounds checks then name its row) instead of raising.
    return col.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)


PROBLEMS_KEPT = 1000  # problems kept per check (rows with an unknown name, a bad ts, ...); all are counted


class Problems(list):
    """[(row, message)]: the first PROBLEMS_KEPT problems of each check, and `total`, how many there are in all
    (a message says "and 4,999 more" from it, not from what was kept)."""

    def __init__(self, items=(), total: int = 0):
        super().__init__(items)
        self.total = total


def problem_count(problems) -> int:
    """How many problems there are in all (more than were kept, for a Problems list)."""
    return max(getattr(problems, "total", 0), len(problems))


def more_problems(problems, shown: int = 1, hint: str = "") -> str:
    """" (and N more[; hint])" after the `shown` first problems of a message, with N counted over them all."""
    rest = problem_count(problems) - shown
    return f" (and {rest:,} more{'; ' + hint if hint else ''})" if rest > 0 else ""


class PairCoder:
    """Maps (model, task) strings to catalog pair indices, case-insensitively, caching per distinct value."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.lookup = catalog.lookup()
        pairs = catalog.pairs
        fam = np.array([catalog.models[i].family for i, _ in pairs])
        self.default_units = np.array([DEFAULT_UNITS[f] for f in fam], dtype=np.float64)
        self.default_input_mb = np.array([DEFAULT_INPUT_MB[f] for f in fam], dtype=np.float64)
        # (model values, task values) -> flat grid: a streamed file repeats its dictionaries in every batch.
        self._grids: dict[tuple, np.ndarray] = {}

    def codes(self, table: pa.Table) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Pair codes per row (-1 where unknown) and problems [(row, message)] for unknown names.

        Names are looked up once per distinct value (dictionary codes), not once per row.
        """
        n = table.num_rows
        if n == 0:
            return np.zeros(0, np.int32), Problems()
        m_idx, m_vals = _dictionary_codes(table.column("model"))
        if "task" in table.column_names:
            t_idx, t_vals = _dictionary_codes(table.column("task"))
        else:
            t_idx, t_vals = np.full(n, -1, np.int32), []
        grid = self._grid(m_vals, t_vals)
        # Flat index (m + 1) * (T + 1) + (t + 1) into the grid, null (-1) -> row/column 0; int32 arithmetic in
        # place and one take: a 2-D fancy index costs four times as much.
        width = len(t_vals) + 1
        k = np.multiply(m_idx, width, dtype=np.int32 if grid.size < 2**31 else np.intp)
        k += t_idx
        k += width + 1
        codes = grid.take(k)
        bad = np.flatnonzero(codes < 0)
        problems = Problems(total=bad.size)
        for r in bad[:PROBLEMS_KEPT]:
            model = m_vals[m_idx[r]] if m_idx[r] >= 0 else None
            task = t_vals[t_idx[r]] if t_idx[r] >= 0 else None
            if model is None:
                problems.append((int(r), "model is null"))
            elif (model.lower(), None) not in self.lookup:
                problems.append((int(r), f"unknown model {model!r} (not in catalog {self.catalog.source})"))
            else:
                problems.append((int(r), f"model {model!r} has no task {task!r}"))
        return codes, problems

    def _grid(self, m_vals: list, t_vals: list) -> np.ndarray:
        """Flat grid[(i + 1) * (T + 1) + (j + 1)]: the pair of model value i and task value j; row/column 0
        stand for null."""
        key = (tuple(m_vals), tuple(t_vals))
        grid = self._grids.get(key)
        if grid is not None:
            return grid
        grid = np.full((len(m_vals) + 1, len(t_vals) + 1), -1, dtype=np.int32)
        for i, mv in enumerate(m_vals, 1):
            if mv is None:
                continue
            ml = mv.lower()
            grid[i, 0] = self.lookup.get((ml, None), -1)
            for j, tv in enumerate(t_vals, 1):
                grid[i, j] = self.lookup.get((ml, None if tv is None else tv.lower()), -1)
        if len(self._grids) >= 16:  # plain-string batches each have their own dictionary: keep a few
            self._grids.clear()
        self._grids[key] = grid = grid.ravel()
        return grid


def _dictionary_codes(col) -> tuple[np.ndarray, list]:
    """(int32 index per row, -1 for null; the distinct values) of a string or dictionary column."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col.cast(pa.string()))
    idx = col.indices
    if idx.null_count:  # else a zero-copy view of the indices
        idx = pc.fill_null(idx.cast(pa.int32()), -1)
    idx = idx.to_numpy(zero_copy_only=False)
    return idx.astype(np.int32, copy=False), col.dictionary.cast(pa.string()).to_pylist()


def _numeric(table: pa.Table, name: str, default: np.ndarray | None, codes: np.ndarray,
             problems: list) -> np.ndarray:
    if name not in table.column_names:
        return default[np.maximum(codes, 0)]
    col = table.column(name)
    vals = _seconds(col) if name == "ts" else _float64(col)
    if col.null_count:
        valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        vals = np.where(valid, vals, np.nan)
    else:
        valid = None
    # Two reductions and no temporary array when every value is in range (NaN fails both comparisons).
    lo, hi = (-MAX_ABS_TS, MAX_ABS_TS) if name == "ts" else (0.0, MAX_VALUE[name])
    if vals.size == 0 or (vals.min() >= lo and vals.max() <= hi):
        return vals
    if name == "ts":
        ok = np.abs(vals) <= MAX_ABS_TS  # NaN and infinities fail too
    else:
        ok = (vals >= 0) & (vals <= MAX_VALUE[name])
    if ok.all():
        return vals
    bad = np.flatnonzero(~ok)
    problems.total = problem_count(problems) + bad.size
    for r in bad[:PROBLEMS_KEPT]:
        rule = f"finite, within ±{MAX_ABS_TS:g} s" if name == "ts" else f"finite, >= 0 and <= {MAX_VALUE[name]:g}"
        what = "null" if valid is not None and not valid[r] else f"{float(vals[r])!r} (must be {rule})"
        problems.append((int(r), f"{name} is {what}"))
    return vals


def convert(table: pa.Table, coder: PairCoder, src: str, row_offset: int = 0):
    """Arrow table -> (ts seconds, pair codes, units, input_mb, problems). Rows are numbered from row_offset."""
    check_schema(table.schema, src)
    codes, problems = coder.codes(table)
    ts = _numeric(table, "ts", None, codes, problems)
    units = _numeric(table, "units", coder.default_units, codes, problems)
    input_mb = _numeric(table, "input_mb", coder.default_input_mb, codes, problems)
    # The first PROBLEMS_KEPT of the merged checks are exactly the first ones of the trace (each check kept
    # its own first PROBLEMS_KEPT); the count covers them all.
    problems = Problems(sorted((r + row_offset, msg) for r, msg in problems)[:PROBLEMS_KEPT], problem_count(problems))
    return ts, codes, units, input_mb, problems


def as_table(trace, src: str, columns=None) -> pa.Table:
    if isinstance(trace, pa.Table):
        return trace
    if hasattr(trace, "to_arrow"):  # polars DataFrame
        return trace.to_arrow()
    try:
        names = columns or pq.read_schema(trace).names
        return pq.read_table(trace, columns=columns, read_dictionary=[c for c in ("model", "task") if c in names])
    except FileNotFoundError:
        raise InputError(f"{src}: trace file not found") from None
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{src}: cannot read Parquet: {str(e).splitlines()[0]}") from None


def open_parquet(path: str | Path, *, dictionaries: bool = False) -> pq.ParquetFile:
    """Open a trace file and check its schema; dictionaries: read model and task as dictionary codes."""
    src = str(path)
    require_file(path, "trace", f"{src}: trace file not found")
    try:
        names = pq.read_schema(path).names
        kw = {"read_dictionary": [c for c in ("model", "task") if c in names]} if dictionaries else {}
        pf = pq.ParquetFile(path, **kw)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{src}: cannot read Parquet: {str(e).splitlines()[0]}") from None
    check_schema(pf.schema_arrow, src)
    return pf


def parquet_columns(path: str | Path) -> list[str]:
    """The trace columns a file has (after checking its schema)."""
    names = open_parquet(path).schema_arrow.names
    return [c for c in TRACE_COLUMNS if c in names]


def trace_problems(trace, catalog: Catalog, limit: int = 20) -> tuple[int, list[tuple[int, str]]]:
    """Every problem of a trace (schema first, then rows): (number of rows, [(row, message)]), row -1 for the file."""
    src = str(trace) if isinstance(trace, (str, Path)) else "<trace>"
    try:
        cols = parquet_columns(trace) if isinstance(trace, (str, Path)) else None
        table = as_table(trace, src, cols)
        *_, problems = convert(table, PairCoder(catalog), src)
    except InputError as e:
        return 0, Problems([(-1, str(e))], 1)
    if table.num_rows == 0:
        problems = Problems([(-1, f"{src}: the trace has no requests")], 1)
    return table.num_rows, Problems(problems[:limit], problem_count(problems)) if limit else problems


def read_trace(trace, catalog: Catalog) -> TraceArrays:
    """Read a whole trace (path, polars DataFrame or Arrow table) into sorted engine arrays.

    Raises InputError naming the file and the first bad row.
    """
    src = str(trace) if isinstance(trace, (str, Path)) else "<trace>"
    cols = parquet_columns(trace) if isinstance(trace, (str, Path)) else None
    table = as_table(trace, src, cols)
    ts, codes, units, input_mb, problems = convert(table, PairCoder(catalog), src)
    if problems:
        r, msg = problems[0]
        raise InputError(f"{src}: row {r}: {msg}{more_problems(problems, hint='see `pfmbench trace validate`')}")
    if len(ts) == 0:
        raise InputError(f"{src}: the trace has no requests")
    if np.any(np.diff(ts) < 0):
        order = np.argsort(ts, kind="stable")  # ties keep file order
        ts, codes, units, input_mb = ts[order], codes[order], units[order], input_mb[order]
    origin = float(ts[0])
    return TraceArrays(ts - origin, codes.astype(np.int32), units, input_mb, origin, src)
