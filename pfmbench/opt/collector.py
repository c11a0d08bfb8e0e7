"""opt fed chunk by chunk (api.replay_many): the requests while they are within the exact limit, the lower
bound's sums always."""

from __future__ import annotations

import numpy as np

from ..engine.record import new_log
from ..errors import InputError
from .bound import BoundSums, check_defined
from .replay import replay_decisions
from .search import BOUND, MAX_MODELS, MAX_NODES, MAX_REQUESTS, OptResult, solve


class OptCollector:
    """opt fed chunk by chunk (api.replay_many): keeps the requests while they are within the exact limit,
    and the lower bound's sums per model always (so a streamed trace of any length gets its bound)."""

    def __init__(self, tables, exact: bool | None = None, max_requests: int = MAX_REQUESTS,
                 max_models: int = MAX_MODELS, max_nodes: int = MAX_NODES):
        check_defined(tables)
        self.tab, self.exact = tables, exact
        self.limits = (max_requests, max_models, max_nodes)
        self.chunks: list | None = [] if exact is not False else None
        self.n = 0
        self.sums = BoundSums(tables)
        self.trace = None  # the whole trace, when within the exact limit
        self.result: OptResult | None = None  # solve()'s, kept by the caller

    @property
    def models(self) -> set:
        return self.sums.models

    def add(self, chunk) -> None:
        self.n += len(chunk)
        self.sums.add(chunk)
        if self.chunks is not None:
            if self.n <= self.limits[0] and len(self.models) <= self.limits[1]:
                self.chunks.append(chunk)
            else:
                self.chunks = None
                if self.exact:
                    raise InputError(f"opt: {self._beyond()}; use --policy opt for a lower bound instead")

    def _beyond(self) -> str:
        return (f"{self.n:,} requests for {len(self.models)} models is beyond opt's exact limit ({self.limits[0]} "
                f"requests, {self.limits[1]} models)")

    def bound(self) -> float:
        return self.sums.bound()

    def request_log(self):
        """(TraceArrays, log columns) of the solved result's decisions replayed: empty for a bound."""
        from ..trace.schema import TraceArrays

        r = self.result
        if r is None or not r.exact:
            empty = TraceArrays(np.zeros(0), np.zeros(0, np.int32), np.zeros(0), np.zeros(0))
            return empty, new_log(0)._asdict()
        log = new_log(len(self.trace.ts))
        replay_decisions(self.tab, self.trace, r.decisions, log)
        return self.trace, log._asdict()

    def solve(self) -> OptResult:
        if self.chunks is not None:
            from ..trace.schema import TraceArrays

            cs = self.chunks or [TraceArrays(np.zeros(0), np.zeros(0, np.int32), np.zeros(0), np.zeros(0))]
            trace = TraceArrays(*(np.concatenate([getattr(c, f) for c in cs]) for f in ("ts", "pair", "units", "input_mb")),
                                cs[0].origin)
            self.trace = trace
            return solve(self.tab, trace, exact=self.exact, max_requests=self.limits[0], max_models=self.limits[1],
                         max_nodes=self.limits[2])
        return OptResult(self.bound(), BOUND, n_requests=self.n, reason=self._beyond())
