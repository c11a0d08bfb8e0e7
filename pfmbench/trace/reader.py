"""One chunked trace reader for everything that walks a trace in time order (replay, export).

A Parquet trace in time order is streamed one row group at a time in bounded memory; one that turns out
not to be sorted raises `Unsorted` part-way, and `sorted_chunks` starts again from a whole, stably sorted
read. A background thread reads the next chunk while the caller works on this one (pyarrow and the numba
kernel both release the GIL).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

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
        # One row group at a time: iter_batches over the whole file holds far more memory.
        for g in range(pf.metadata.num_row_groups):
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=cols, row_groups=[g]):
                ts, codes, units, input_mb, problems = convert(pa.Table.from_batches([batch]), coder, src, offset)
                if problems:
                    r, msg = problems[0]
                    raise InputError(f"{src}: row {r}: {msg}")
                if len(ts) == 0:
                    continue
                if ts[0] < last or np.any(np.diff(ts) < 0):
                    raise Unsorted
                if origin is None:
                    origin = float(ts[0])
                last = ts[-1]
                offset += len(ts)
                yield TraceArrays(ts - origin, codes, units, input_mb, origin, src)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{src}: cannot read Parquet: {str(e).splitlines()[0]}") from None
    if offset == 0:
        raise InputError(f"{src}: the trace has no requests")


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
