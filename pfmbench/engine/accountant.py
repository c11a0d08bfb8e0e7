"""Accounting on a second core (issue 18): while the fast loop decides one piece of a chunk, a thread of
the engine's own accounts the piece before it (account_block, compiled without the GIL).

Why the results stay the same, bit for bit:
- Nothing accounted feeds back into a decision (the loop already decides a block, then accounts it).
- One thread accounts the pieces in the order they were decided, so every sum adds its terms in request
  order, as the inline accounting does.
- The loop's own totals (evictions, context discarded, batches, declined and dispatched requests) go to a
  copy of the totals, so that no element is written by two threads; the elements the loop changed are
  copied back when the engine flushes. Engines whose loop also accounts (the loads a policy makes for no
  request: `active`'s preloads, random-placement's placements, in the same counters as loads) stay inline,
  and so do a warm-up, a per-request log and cooperation forward.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from numba import njit

from .costs import account_block  # (costs first: it re-exports account.py)
from .jit import CACHE_STAMPED, compiled
from .record import Totals
from .state import new_block

PIECE = 1 << 16  # requests per deferred call of the loop: two pieces' decisions (3 MB each) stay in the L3 cache
MIN_ROWS = 1 << 14  # a shorter chunk is accounted inline: handing it over would cost more than it saves

_account_block = compiled(account_block)


@njit(nogil=True, cache=CACHE_STAMPED, _nrt=False)
def account_piece(tab, rec, rq, block, n, log):
    """Account the n requests of a piece (Requests) as the loop decided them into `block`."""
    _account_block(tab, rec, rq, block, 0, 0, n, False, log)


def enabled() -> bool:
    """`PFMBENCH_ACCOUNT_THREAD=0` keeps every engine's accounting on its replaying thread."""
    return os.environ.get("PFMBENCH_ACCOUNT_THREAD", "1").strip() != "0"


def _copy(t: Totals) -> Totals:
    fbits = t.fbits.copy()
    return Totals(t.counts.copy(), t.sums.copy(), t.hist.copy(), fbits, fbits.view(np.int64))


class Accountant:
    """An engine's accounting thread: two decision buffers, taken in turn, each given back once the piece
    decided into it has been accounted."""

    def __init__(self, totals: Totals):
        self.totals = totals  # the engine's: written by the accounting thread only, until flush()
        self.piece = PIECE  # requests per piece: each buffer's size
        self.buffers = []  # allocated when first deferred (a short trace never is)
        self.pending: list[Future | None] = [None, None]
        self.turn = 0
        self.pool: ThreadPoolExecutor | None = None
        self.loop_totals: Totals | None = None  # what the loop writes meanwhile
        self.before: Totals | None = None

    def start(self) -> Totals:
        """The totals the loop writes while its accounting is deferred."""
        if not self.buffers:
            self.buffers = [new_block(self.piece), new_block(self.piece)]
        if self.pool is None:
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="pfmbench-accounting")
            self.before, self.loop_totals = _copy(self.totals), _copy(self.totals)
        return self.loop_totals

    def buffer(self):
        """The next free decision buffer (waits until the piece decided into it has been accounted)."""
        k = self.turn
        if self.pending[k] is not None:
            self.pending[k].result()
            self.pending[k] = None
        return self.buffers[k]

    def submit(self, tables, rq, n: int, log) -> None:
        """Account the n requests just decided into buffer() on the thread, after those handed over before."""
        k = self.turn
        self.pending[k] = self.pool.submit(account_piece, tables, self.totals, rq, self.buffers[k], n, log)
        self.turn = 1 - k

    def flush(self) -> None:
        """Wait for every piece handed over; then the totals are whole (the loop's own elements copied back)."""
        if self.pool is None:
            return
        try:
            for k in (self.turn, 1 - self.turn):  # oldest first
                if self.pending[k] is not None:
                    fut, self.pending[k] = self.pending[k], None
                    fut.result()
        finally:
            self.pool.shutdown(wait=True)
            self.pool = None
        for name in ("counts", "sums", "hist"):
            mine, was, out = getattr(self.loop_totals, name), getattr(self.before, name), getattr(self.totals, name)
            changed = mine.view(np.int64) != was.view(np.int64)  # bits: a NaN sum equals itself
            out[changed] = mine[changed]
        self.loop_totals = self.before = None
