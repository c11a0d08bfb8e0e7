"""One chunked trace reader for everything that walks a trace in time order (replay, export).

A Parquet trace in time order is streamed one row group at a time in bounded memory; one that turns out
not to be sorted raises `Unsorted` part-way, and `sorted_chunks` starts again from a whole, stably sorted
read. A background thread reads the next chunk while the caller works on this one (pyarrow and the numba
kernel both release the GIL).
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..catalog import Catalog
from ..errors import InputError
from .schema import TRACE_COLUMNS, PairCoder, TraceArrays, convert, open_parquet, read_trace

T = TypeVar("T")


class Unsorted(Exception):
    """A streamed trace turned out not to be in time order."""


def stream_chunks(path: str | Path, catalog: Catalog, chunk_rows: int,
                  columns: tuple[str, ...] = TRACE_COLUMNS) -> Iterator[TraceArrays]:
    """A Parquet trace as TraceArrays in file order, one row group at a time; raises Unsorted as soon as
    a request goes back in time, and InputError naming the file and row of the first bad value."""
    src = str(path)
    coder = PairCoder(catalog)
    origin, last, offset = None, -np.inf, 0
    pf = open_parquet(path, dictionaries=True)
    cols = [c for c in columns if c in pf.schema_arrow.names]
    try:
        for table in _tables(pf, cols, chunk_rows):
            ts, codes, units, input_mb, problems = convert(table, coder, src, offset)
            if problems:
                r, msg = problems[0]
                raise InputError(f"{src}: row {r}: {msg}")
            if len(ts) == 0:
                continue
            # ts[1:] < ts[:-1] is np.diff(ts) < 0 for finite times, without the float array.
            if ts[0] < last or (ts[1:] < ts[:-1]).any():
                raise Unsorted
            if origin is None:
                origin = float(ts[0])
            last = ts[-1]
            offset += len(ts)
            yield TraceArrays(_relative(ts, origin), codes, units, input_mb, origin, src)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{src}: cannot read Parquet: {str(e).splitlines()[0]}") from None
    if offset == 0:
        raise InputError(f"{src}: the trace has no requests")


# A row group of at most this many chunks is read whole (read_row_group, then zero-copy slices), a larger one
# batch by batch. Whole 4-chunk row groups (write_synth's) save 0.01-0.03 CPU-s per 10M requests but hold up
# to two decoded row groups alive (a chunk's arrays are views of its group): +35 MiB peak in a 10M replay,
# 33 -> 37 B/request against the target of 40. So only a group that is one chunk anyway is read whole.
WHOLE_ROW_GROUP_CHUNKS = 1


def _tables(pf: pq.ParquetFile, cols: list[str], chunk_rows: int) -> Iterator[pa.Table]:
    """The file's rows as tables of chunk_rows, cut within each row group (the last one of a group shorter),
    one row group at a time. use_threads=False: the reader is one background thread beside the kernel."""
    for g in range(pf.metadata.num_row_groups):
        rows = pf.metadata.row_group(g).num_rows
        if rows <= WHOLE_ROW_GROUP_CHUNKS * chunk_rows:
            group = pf.read_row_group(g, columns=cols, use_threads=False)
            for start in range(0, rows, chunk_rows):
                yield group.slice(start, chunk_rows)
        else:
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=cols, row_groups=[g], use_threads=False):
                yield pa.Table.from_batches([batch])


def _relative(ts: np.ndarray, origin: float) -> np.ndarray:
    """ts - origin, the same bits; no copy when the trace starts at 0 (every trace pfmbench writes), else
    computed by Arrow, whose memory pool reuses its buffers (a fresh numpy array costs ~10x: page faults)."""
    if origin == 0.0 and math.copysign(1.0, origin) > 0:  # x - (+0.0) is x, -0.0 included
        return ts
    return pc.subtract(pa.array(ts, pa.float64()), origin).to_numpy()


def whole_chunks(trace, catalog: Catalog, chunk_rows: int) -> Iterator[TraceArrays]:
    """A whole trace (path, Arrow table or polars DataFrame) read, stably sorted, then cut in chunks."""
    arrays = read_trace(trace, catalog)
    for start in range(0, len(arrays), chunk_rows):
        yield arrays.slice(start, start + chunk_rows)


def sorted_chunks(trace, catalog: Catalog, chunk_rows: int, stream: bool, consume: Callable[[Iterator], T]) -> T:
    """consume(chunks in time order): streamed if `stream`, else (or if the stream is not sorted) from a
    whole read. consume may be called twice, so it must start from scratch (its outputs too)."""
    if stream:
        try:
            return consume(prefetch(stream_chunks(trace, catalog, chunk_rows)))
        except Unsorted:
            pass
    return consume(prefetch(whole_chunks(trace, catalog, chunk_rows)))


_DONE = object()


def prefetch(chunks: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate `chunks` on a background thread, up to `depth` items ahead; its exceptions surface here."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def work():
        try:
            for item in chunks:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as e:  # noqa: BLE001  (handed to the consumer)
            q.put((_DONE, e))

    t = threading.Thread(target=work, name="pfmbench-trace-reader", daemon=True)
    t.start()
    try:
        while True:
            item, err = q.get()
            if item is _DONE:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a reader waiting to put, then let it finish
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
