"""What the fast engine carries from one request, and one chunk, to the next (EngineState), the block of
decisions the loop hands to the accounting (Block), and a chunk of a trace as the loop reads it (Requests)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import jit as _jit  # noqa: F401  (installs the kernel cache locator before anything compiles)
from .context import (
    Context,
    new_context,
)
from .record import (
    Totals,
    new_totals,
)
from .structures import DList, new_dlist
from .tables import Tables

# Requests decided between two accountings (account_block): the decisions of a block stay in the L2 cache.
BLOCK = 4096


class Block(NamedTuple):
    """How the loop decided each request of the current block, for account_block."""

    outcome: np.ndarray  # int8: HIT, LOAD or CLOUD
    k_eff: np.ndarray  # float64: examples in context it was served with (edge)
    wait: np.ndarray  # float64 s: in the queue (edge)
    evictions: np.ndarray  # int32: models evicted for it
    with_base: np.ndarray  # int8: its load loaded its model's base's weights too (MODEL.md §9.5)
    served: np.ndarray  # int32: the pair that served it (its own, or a substitute's: MODEL.md §9.1)
    level: np.ndarray  # int8: the precision level of the model that served it (MODEL.md §9.2)
    part: np.ndarray  # int8: the prefix of that model's layers that served it (MODEL.md §9.3; 0: whole)
    upgrade_s: np.ndarray  # float64 s: that model was first reloaded up (a precision upgrade, a prefix grown)
    compute: np.ndarray  # float64 s: its service time (service_time, in the batch it joined)
    tier: np.ndarray  # int8: the tier its load read the checkpoint from (MODEL.md §9.4; tables.TIER_*)


def new_block(size: int = BLOCK) -> Block:
    return Block(np.zeros(size, np.int8), np.zeros(size), np.zeros(size), np.zeros(size, np.int32),
                 np.zeros(size, np.int8), np.zeros(size, np.int32), np.zeros(size, np.int8),
                 np.zeros(size, np.int8), np.zeros(size), np.zeros(size), np.zeros(size, np.int8))


class EngineState(NamedTuple):
    """What the engine carries from one request, and one chunk, to the next (policies keep their own)."""

    used: np.ndarray  # int64 [1]: bytes of GPU memory in use
    n_cached: np.ndarray  # int64 [1]: models cached
    seq: np.ndarray  # int64 [1]: requests seen before the one being replayed (its sequence number, for hooks)
    cached: np.ndarray  # int8 per model
    last_use: np.ndarray  # int64 per model: sequence number of its last request
    requests: np.ndarray  # int64 per model: served since loaded
    ready_at: np.ndarray  # float64 per model: when its last load finished
    clist: np.ndarray  # int32: the cached models in insertion order, swap-remove on eviction
    clist_pos: np.ndarray  # int32 per model (-1: not cached)
    free_at: np.ndarray  # float64 per executor: when it is free
    seen: np.ndarray  # int64 per model: its requests over the whole trace so far, this one included
    next_use: np.ndarray  # float64 per model: sequence number of its next request after its last service
    #                       (inf: none), for policies that need it (Policy.needs_next_use); inf otherwise
    last_request: np.ndarray  # int64 [2]: sequence number and model of the last request (-1: none yet)
    last_ts: np.ndarray  # float64 [1]: its arrival time (-inf: none yet); no preload starts before it
    first_ts: np.ndarray  # float64 [1]: the first request's arrival time (the warm-up's `warmup_s` counts from it)
    measure_from: np.ndarray  # int64 [1]: sequence number of the first measured request (-1: still warming up)
    # Shared bases (MODEL.md §9.5): a base is a cache entry of its own (its weights, counted once in `used`),
    # inserted before its first variant and evicted with all its variants (a cascade); a bare base (no variant
    # cached) stays until a policy picks it. The pinned base is that of the adapter being loaded: held out of
    # the policy's choice while room is made for it.
    base_ref: np.ndarray  # int32 per base: its variants cached
    base_in: np.ndarray  # int8 per base: its weights are in GPU memory (= cached[b])
    base_ready: np.ndarray  # float64 per base: when the load of its weights finished
    pinned: np.ndarray  # int64 [1]: the pinned base (-1: none)
    level: np.ndarray  # int8 per model: its precision level while cached (MODEL.md §9.2; 0 otherwise)
    part: np.ndarray  # int8 per model: the prefix of its layers resident (MODEL.md §9.3; 0: whole, or not cached)
    # Each model's last batch (MODEL.md §9.2): its executor (-1: none yet), start, end, requests so far.
    batch_exec: np.ndarray  # int64 per model
    batch_start: np.ndarray  # float64 per model
    batch_end: np.ndarray  # float64 per model
    batch_n: np.ndarray  # int64 per model
    context: Context
    totals: Totals
    block: Block
    # The host's DRAM tier of checkpoints (MODEL.md §9.4; unused under checkpoints_in = dram): which it holds, its
    # bytes, and their order of last load or eviction from the GPU (least recent at the head: the next to go).
    dram_in: np.ndarray  # int8 per model
    dram_used: np.ndarray  # int64 [1]
    dram_lru: DList
    defer: np.ndarray  # int8 [1]: 1 while the loop leaves the accounting of its chunk to the caller (FastEngine)


def new_engine_state(tables: Tables) -> EngineState:
    n, k = tables.n_models, len(tables.pair_model)
    return EngineState(np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(n, np.int8),
                       np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n), np.zeros(n, np.int32),
                       np.full(n, -1, np.int32), np.zeros(tables.executors), np.zeros(n, np.int64),
                       np.full(n, np.inf), np.full(2, -1, np.int64), np.full(1, -np.inf), np.zeros(1),
                       np.array([0 if tables.warmup_requests == 0 and tables.warmup_s == 0.0 else -1], np.int64),
                       np.zeros(n, np.int32), np.zeros(n, np.int8), np.zeros(n), np.full(1, -1, np.int64),
                       np.zeros(n, np.int8), np.zeros(n, np.int8), np.full(n, -1, np.int64), np.zeros(n), np.zeros(n),
                       np.zeros(n, np.int64),
                       new_context(n, k), new_totals(), new_block(),
                       np.zeros(n, np.int8), np.zeros(1, np.int64), new_dlist(n), np.zeros(1, np.int8))


class Requests(NamedTuple):
    """A chunk of a trace, as the loop reads it."""

    ts: np.ndarray  # float64 s, sorted
    pair: np.ndarray  # int32 (model, task) pair
    units: np.ndarray  # float64
    input_mb: np.ndarray  # float64
    next_use: np.ndarray  # float64: sequence number of the same model's next request (inf: none); empty
    #                       unless the policy needs it (Policy.needs_next_use)
    # cooperation = forward (MODEL.md §9.4; pfmbench/edges.py): per model, a neighbour edge holds it now; the
    # loop stops before the first request that misses here for such a model (a forward candidate). Empty: off.
    neighbour: np.ndarray  # int8 per model, or empty
    edge_rtt_s: float  # >= 0: this chunk is one request forwarded from its home edge, served here at that extra
    #                    latency (no preload before it); < 0: not forwarded


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    # Arrays from Arrow are read-only and numba types them apart from writable ones: one kernel for both.
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


def requests(trace, next_use=None, neighbour=None, edge_rtt_s=-1.0) -> Requests:
    return Requests(_readonly(trace.ts, np.float64), _readonly(trace.pair, np.int32),
                    _readonly(trace.units, np.float64), _readonly(trace.input_mb, np.float64),
                    _readonly(next_use if next_use is not None else _NO_NEXT_USE, np.float64),
                    _readonly(neighbour if neighbour is not None else _NO_NEIGHBOUR, np.int8), float(edge_rtt_s))


_NO_NEXT_USE = np.zeros(0)
_NO_NEIGHBOUR = np.zeros(0, np.int8)


def next_uses(models: np.ndarray, start: int = 0) -> np.ndarray:
    """For each request (its model's index), the sequence number (start + position) of the same model's next
    request, inf if none: one reverse look over a whole trace, in memory."""
    models = np.asarray(models)
    out = np.full(len(models), np.inf)
    order = np.argsort(models, kind="stable")
    same = models[order[1:]] == models[order[:-1]]
    out[order[:-1][same]] = order[1:][same] + start
    return out
