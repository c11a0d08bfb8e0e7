"""`opt`: the exact minimum system cost of a replay (MODEL.md §4) on small instances, a lower bound beyond.

The system cost is a sum of non-negative per-request terms, and every term follows from the state the
requests before it left: which models are cached, their examples in context, when each executor frees up
and when each cached model finished loading. `opt` searches every decision sequence over that state by
depth-first branch and bound, costing each step with the functions both engines use (engine/costs.py,
engine/context.py), so that replaying its decisions (`replay_decisions`) gives its cost exactly.

Modules: replay.py (the state, one request's step, `replay_decisions`), bound.py (the lower bound),
search.py (the exact search, `solve`), collector.py (`OptCollector`: opt fed chunk by chunk).

**Decisions.** One per request, for model m: a `Decision(victims, edge)`: evict `victims` (cached models,
in that order), then serve at the edge (a hit if m is cached, else a load, which must then fit) or offload
(`edge=False`). `replay_decisions` replays any such sequence; the search explores only these:

* m cached: serve the hit at the edge; offload; or *reload* (evict m and load it again, with an empty
  context: examples in context can cost more compute than they earn in accuracy).
* m not cached, no larger than the GPU: offload; or load it after evicting a victim set V that makes it fit
  and is *minimal*: no proper subset of V makes it fit (V is empty when m fits as it is).
* m larger than the GPU: offload.

Why nothing cheaper is lost (the general space: at any request, evict any set of cached models, then
serve at the edge, if m fits, or offload). Take any sequence that evicts model v at request i although
v's memory is not needed there (v is not among a minimal victim set of a load at i, and v != m or m is
not reloaded). Keep v cached instead until the first later request j that either loads a model that needs
v's memory (evict v there) or is for v itself (then evict v there if the original loads v at j, and keep
deferring otherwise). Between i and j nothing changes but v's presence: evicting touches neither the
executors' queues nor the other models' contexts, and no cost term depends on a model that is cached
and not requested. So the deferred sequence costs the same, and it is in the searched space: every
eviction is then either of a minimal victim set of a load or of m itself right before it is reloaded. A
non-minimal victim set V of a load is V' plus models not needed for space (V' ⊂ V minimal), which the same
argument defers. Evictions at the end of the trace change nothing. Hence the searched space reaches the
minimum of the general space, which holds everything a policy can do (GDSF evicts and then offloads, the
`cheapest` dispatch rule offloads hits): opt <= every policy under every admission and dispatch rule
that loads a model only when a request asks for it. tests/test_opt.py checks this against a search of the
general space with no pruning.

**Preloading is outside that space.** `active` may load a model in idle time before any request asks for
it (docs/model.md, "Preloading"): it pays the switching cost but no request waits for that load, so it can
cost less than opt. opt is the minimum of MODEL.md §4's per-request decisions; the lower bound below, as
reported, holds for preloading policies too.

**Pruning.** A node (request i, state) is cut when its cost so far plus the lower bound (below) of
requests i.. is no less than the best complete sequence found. That bound starts from the node's state:
its cached models need no first load, and a request at t before the earliest time F an executor frees up
in that state waits at least F - t at the edge (free times never decrease). States that
agree on request, cached set and every number of the cached models' contexts are compared by the
executors' free times (sorted: executors are interchangeable), the cached models' ready times and the
cost so far: one no better in all of them than a state already searched is cut (waits, and so latencies,
only grow with those times; all else is equal).

**The lower bound** (`lower_bound`; the suffix bound at request 0 with an empty cache). For request r
(pair p of model m) let cloud_r be its offloading cost (w_cloud * cloud cost + w_cloud_latency * cloud
latency) and edge_r = w_latency * (compute at K = 0 + radio latency) + w_accuracy * (a_ref - max a(K) over
0 <= K <= Kmax_r) / 100, where Kmax_r is the K_eff request r would have if every earlier request of m had
been served at the edge and m had never been evicted. Then for each model m with requests R_m,

    bound_m = sum of cloud_r over R_m                     if m is larger than the GPU, else
    bound_m = min(sum of cloud_r, w_switch * switching_m + sum of min(cloud_r, edge_r))

and the bound is the sum of bound_m. Valid: each request of m costs at least min(cloud_r, edge_r) (an edge
service adds a wait >= 0 to latency; compute is W / R_edge, smallest at K = 0; the accuracy cost is smallest
where a(K) is largest; K_eff cannot exceed Kmax_r because decay, +1 and the window cap are monotone in K and
serving fewer requests or evicting only lowers it). If m serves no request at the edge its requests cost
sum of cloud_r; if it serves any, m is loaded at least once, which pays the switching cost on top (a load
is charged there only, MODEL.md §4: the latency term leaves the request's own load out, so the bound holds
for a preload in idle time, `active`'s, too). a(K) is monotone on [0, 1], on [1, k_few] and beyond (catalog.
accuracy_at), so its maximum over [0, Kmax] is at 0, 1, k_few or Kmax. The bound is lowered by a relative
1e-9 so that rounding in Kmax cannot lift it above the optimum. Inside the search, edge_r is tightened by
minimising compute and accuracy cost together over parts of [0, Kmax] (`_edge_floor`, SEARCH_PIECES): on
each part, the compute at its lower end plus the accuracy cost at its better end.

**The instance limit**: MAX_REQUESTS requests for MAX_MODELS distinct models, and MAX_NODES search nodes.
`solve(exact=None)` (`--policy opt`) gives the lower bound beyond it; `solve(exact=True)` (`opt-exact`)
raises InputError. benchmarks/README.md ("opt: search time") shows how the search grows.
"""

from .bound import (
    BOUND_SLACK,
    SEARCH_PIECES,
    BoundSums,
    _Bound,
    _edge_floor,
    _first_load,
    _model_bound,
    lower_bound,
)
from .collector import OptCollector
from .replay import Decision, _as_lists, _State, _step, _Trace, replay_decisions
from .search import (
    BOUND,
    EXACT,
    MAX_MODELS,
    MAX_NODES,
    MAX_REQUESTS,
    OptResult,
    instance_size,
    minimal_victim_sets,
    options,
    solve,
)

__all__ = [
    "BOUND",
    "BOUND_SLACK",
    "EXACT",
    "MAX_MODELS",
    "MAX_NODES",
    "MAX_REQUESTS",
    "SEARCH_PIECES",
    "BoundSums",
    "Decision",
    "OptCollector",
    "OptResult",
    "_Bound",
    "_State",
    "_Trace",
    "_as_lists",
    "_edge_floor",
    "_first_load",
    "_model_bound",
    "_step",
    "instance_size",
    "lower_bound",
    "minimal_victim_sets",
    "options",
    "replay_decisions",
    "solve",
]
