"""Export a trace to libCacheSim's CSV reader (for comparing with its simulator)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..catalog import Catalog, load_catalog
from ..errors import InputError
from ..fileio import atomic_path
from .reader import sorted_chunks
from .schema import open_parquet

_CSV_OPTIONS = pacsv.WriteOptions(quoting_header="none")


def export_libcachesim(trace, out, *, catalog: Catalog | str | Path | None = None,
                       progress: Callable[[int], None] | None = None, batch_rows: int = 1 << 20) -> int:
    """Trace -> CSV `time,obj_id,obj_size` for libCacheSim's csv reader (header, comma, numeric ids).

    time: whole seconds since the first request; obj_id: 1 + index of the request's model in the catalog;
    obj_size: the model's memory in bytes. Streams a sorted trace batch by batch; an unsorted one is read
    whole and sorted first. progress(rows) after each batch. Returns the number of rows.
    """
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    open_parquet(trace)  # a missing or unreadable file: one line before anything is written
    pair_model = np.array([i for i, _ in cat.pairs], dtype=np.int64)
    size = np.array([m.memory_bytes for m in cat.models], dtype=np.int64)
    schema = pa.schema([("time", pa.int64()), ("obj_id", pa.int64()), ("obj_size", pa.int64())])

    def write(chunks) -> int:
        n = 0
        with atomic_path(out) as tmp, pacsv.CSVWriter(tmp, schema, write_options=_CSV_OPTIONS) as w:
            for part in chunks:
                model = pair_model[part.pair]
                w.write_batch(pa.record_batch([pa.array(np.floor(part.ts).astype(np.int64)), pa.array(model + 1),
                                               pa.array(size[model])], schema=schema))
                n += len(part)
                if progress:
                    progress(n)
        return n

    try:
        return sorted_chunks(trace, cat, batch_rows, True, write)
    except pa.ArrowException as e:
        raise InputError(f"{trace}: cannot read Parquet: {str(e).splitlines()[0]}") from None
