"""Each request's next use for a trace streamed in chunks, in bounded memory (offline policies: belady).

The same numbers as engine.fast.next_uses over the whole trace (the sequence number of the same model's
next request, inf if none), built without holding the trace: one pass over the chunks writes each
request's model to a temporary file (4 bytes a request), a pass backwards over that file, a block at a
time, carries each model's next sighting (O(models) memory) and writes the next uses to a second file
(8 bytes a request); the replay then reads its chunk's slice. The files live in a temporary folder that
close() deletes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable

import numpy as np

from ..engine.fast import next_uses
from .schema import TraceArrays


class StreamedNextUses:
    def __init__(self, chunks: Iterable[TraceArrays], pair_model: np.ndarray, n_models: int, block_rows: int):
        self._dir = tempfile.TemporaryDirectory(prefix="pfmbench-next-use-")
        self._file = None
        try:
            self.n = self._index(chunks, pair_model, n_models, max(1, block_rows))
        except BaseException:
            self._dir.cleanup()
            raise

    def _index(self, chunks, pair_model, n_models, block_rows) -> int:
        models_path = os.path.join(self._dir.name, "models.i32")
        n = 0
        with open(models_path, "wb") as f:
            for chunk in chunks:
                f.write(np.ascontiguousarray(pair_model[chunk.pair], dtype=np.int32).tobytes())
                n += len(chunk)
        path = os.path.join(self._dir.name, "next_use.f64")
        ahead = np.full(n_models, np.inf)  # each model's first request after the block being read
        with open(models_path, "rb") as fm, open(path, "wb") as fn:
            fn.truncate(n * 8)
            end = n
            while end > 0:
                start = max(0, end - block_rows)
                fm.seek(start * 4)
                block = np.fromfile(fm, np.int32, end - start)
                out = next_uses(block, start)
                last = np.isinf(out)  # each model's last request in the block: its next is further on
                out[last] = ahead[block[last]]
                models, first = np.unique(block, return_index=True)
                ahead[models] = first + start
                fn.seek(start * 8)
                fn.write(out.tobytes())
                end = start
        os.remove(models_path)
        self._file = open(path, "rb")  # noqa: SIM115  (closed by close())
        return n

    def part(self, start: int, count: int) -> np.ndarray:
        """The next uses of requests start .. start + count - 1."""
        self._file.seek(start * 8)
        return np.fromfile(self._file, np.float64, count)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._dir.cleanup()
