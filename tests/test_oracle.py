"""libCacheSim as an independent oracle for LRU, FIFO, LFU and the newer policies (MODEL.md §5, issue 10).

MODEL.md §5: LRU, FIFO and LFU must agree exactly, request by request, with the standard size-aware
definitions of established cache simulators (evict until the new object fits; an object larger than
the whole cache is never admitted). Here each model is one cache object of `tables.mem_bytes[m]`
bytes in a libCacheSim cache of `tables.capacity_bytes` bytes, and a request for pair p asks for
object `tables.pair_model[p]`. Request by request:
  pfmbench outcome hit   <=> libCacheSim hit
  pfmbench outcome load  <=> libCacheSim miss, and the object is cached afterwards
  pfmbench outcome cloud <=> libCacheSim miss, and the object is not cached afterwards
and the number of evictions must be the same (libCacheSim's is read from its object count).

What libCacheSim does, from its source (libCacheSim/cache/cache.c, cache/eviction/{LRU,FIFO,LFU}.c):
  * cache_get_base: find; on a miss, if `can_insert` (obj_size <= cache_size, checked before any
    eviction, so an oversized object evicts nothing), evict until occupied + obj_size <= cache_size,
    then insert.
  * LFU (LFU.c, not LFUFast): frequency 1 on insert, +1 per hit, forgotten on eviction; within one
    frequency, objects sit in a FIFO list in the order they reached it, and the head is evicted.
    An object reaches its current frequency at its last request, so that is "fewest requests since
    load, ties to the least recent last use": exactly pfmbench's key (requests, last_use).
  * Sieve (Sieve.c): insert at the queue's head with freq 0, a hit sets freq 1; the hand starts at the
    tail (the oldest), walks towards the head clearing freq, wrapping to the tail, evicts the first
    object with freq 0 and rests on the next newer one (NULL past the newest: the tail again).
"""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

lcs = pytest.importorskip("libcachesim")

from pfmbench.catalog import Catalog, Model, Task
from pfmbench.engine import record as C
from pfmbench.engine.fast import FastEngine, next_uses
from pfmbench.engine.record import new_log
from pfmbench.engine.reference import replay_reference
from pfmbench.engine.tables import build_tables
from pfmbench.policies import get_policy, s3fifo
from pfmbench.policies.belady_size import BeladySize
from pfmbench.policies.lfuda import LFUDA
from pfmbench.scenario import load_scenario
from pfmbench.trace.schema import TraceArrays

BELADY_SIZE_SAMPLES = 4096  # draws per eviction: with <= 64 cached objects, every one is drawn (checked below)
ORACLES = {"lru": lcs.LRU, "fifo": lcs.FIFO, "lfu": lcs.LFU, "sieve": lcs.Sieve, "s3fifo": lcs.S3FIFO,
           "gdsf-unit": lcs.GDSF, "belady": lcs.Belady, "lfuda": lcs.LFUDA,
           "belady-size": functools.partial(lcs.BeladySize, n_samples=BELADY_SIZE_SAMPLES)}
HITS_ONLY = ("belady", "belady-size")  # offline: compared on hits and misses (their modules say why)
GB = 10**9
INT64_MAX = 2**63 - 1  # libCacheSim's "no next access"


# -- building a catalog and a trace ---------------------------------------------------------------
def make_catalog(sizes, n_tasks=None) -> Catalog:
    """One model per size (integer bytes). Even models are LFMs with in-context learning and one or two
    tasks (so pairs and models differ), odd ones vision models: the full cost model runs, though only
    the sizes matter for hits."""
    models = []
    for i, size in enumerate(sizes):
        k = (n_tasks[i] if n_tasks is not None else 1 + i % 2) if i % 2 == 0 else 1
        if i % 2 == 0:
            tasks = tuple(Task(f"t{j}", 20.0 + j, 30.0 + j, 35.0 + j, 16) for j in range(k))
            models.append(Model(f"M{i}", "LFM", 1000.0, 26.0, "fp16", size / GB, 16.0, tasks))
        else:
            models.append(Model(f"M{i}", "VFM", 300.0, 80.0, "fp16", size / GB, 0.0, (Task("t0", 70.0),)))
    return Catalog(tuple(models), "oracle")


def make_tables(sizes, capacity, n_tasks=None):
    tables = build_tables(load_scenario(gpu_memory_gb=capacity / GB), make_catalog(sizes, n_tasks))
    # Exact integer bytes on both sides, or the comparison would test rounding instead of policies.
    assert tables.capacity_bytes == capacity
    assert tables.mem_bytes.tolist() == [int(s) for s in sizes]
    return tables


def make_trace(pairs) -> TraceArrays:
    n = len(pairs)
    return TraceArrays(np.arange(n, dtype=np.float64) * 0.5, np.asarray(pairs, dtype=np.int32),
                       np.full(n, 64.0), np.full(n, 0.1))


# -- the three replays ----------------------------------------------------------------------------
def fast_replay(tables, policy, trace):
    """(outcome per request, evictions per request, final state) from the numba kernel."""
    n = len(trace)
    engine = FastEngine(tables, get_policy(policy), 0)
    log = new_log(n)
    engine.run(trace, log, next_uses(tables.pair_model[trace.pair]) if get_policy(policy).needs_next_use else None)
    return log.outcome, log.evictions, engine.state


def reference_replay(tables, policy, trace):
    *_, cols = replay_reference(tables, trace, get_policy(policy), 0, log=True)
    return cols["outcome"], cols["evictions"]


def oracle_replay(policy, tables, trace, stop=None):
    """libCacheSim's outcome (pfmbench codes) and evictions per request, and the final cache. stop: feed only
    the first `stop` requests (next uses still from the whole trace)."""
    sizes = [int(s) for s in tables.mem_bytes]
    cache = ORACLES[policy](cache_size=int(tables.capacity_bytes), hashpower=10)
    n = len(trace)
    outcome, evictions = np.zeros(n, np.int8), np.zeros(n, np.int32)
    pair_model = tables.pair_model
    nxt = next_uses(pair_model[trace.pair])
    req = lcs.Request()
    for i, p in enumerate(trace.pair[:stop]):
        m = int(pair_model[p])
        req.obj_id, req.obj_size = m + 1, sizes[m]  # ids from 1: 0 is no one's
        # Belady's and BeladySize's; the others ignore it. libCacheSim counts requests from 1 (n_req is i + 1
        # here), so BeladySize's distance next_access_vtime - n_req is pfmbench's next_use - seq.
        req.next_access_vtime = int(nxt[i]) + 1 if np.isfinite(nxt[i]) else INT64_MAX
        if policy == "lfuda" and sizes[m] > tables.capacity_bytes:
            # libCacheSim's LFUDA evicts forever to make room for an object larger than the cache (every other
            # policy there refuses it): such a model is never loaded, as everywhere else.
            outcome[i] = C.CLOUD
            continue
        before = cache.get_n_obj()
        if cache.get(req):
            outcome[i] = C.HIT
            inserted = 0
        else:
            inserted = int(cache.find(req, False) is not None)
            outcome[i] = C.LOAD if inserted else C.CLOUD
        evictions[i] = before + inserted - cache.get_n_obj()
    cached = []
    for m in range(len(sizes)):
        req.obj_id, req.obj_size = m + 1, sizes[m]
        cached.append(cache.find(req, False) is not None)
    return outcome, evictions, np.array(cached), cache.get_occupied_byte()


def first_difference(a, b):
    bad = np.flatnonzero(np.asarray(a) != np.asarray(b))
    return int(bad[0]) if bad.size else None


def assert_agree(policy, tables, trace, engines=("fast", "reference")):
    """Compare request by request; for lfuda and belady-size only the first COMPARABLE_PREFIX requests,
    before libCacheSim's choice stops being a function of the trace. Returns libCacheSim's outcomes and
    evictions (of those requests)."""
    n = COMPARABLE_PREFIX[policy](tables, trace) if policy in COMPARABLE_PREFIX else len(trace)
    if policy == "lfuda":  # online: the requests after n change nothing before; libCacheSim would crash at n
        trace = trace.slice(0, n)
    # Past the comparable prefix libCacheSim's choice is no longer the trace's, and its BeladySize may then
    # spin forever inside C (seen in this test): feed it no further.
    want_out, want_ev, want_cached, want_used = oracle_replay(policy, tables, trace, n)
    if policy == "belady-size":
        # libCacheSim never caches a model that is not requested again (pfmbench loads it and evicts it
        # first): compare hits, and offloads (models larger than the GPU).
        fits = tables.mem_bytes[tables.pair_model[trace.pair]] <= tables.capacity_bytes
        want_out = np.where(want_out == C.HIT, C.HIT, np.where(fits, C.LOAD, C.CLOUD)).astype(np.int8)
    want_out, want_ev = want_out[:n], want_ev[:n]
    names = np.array(C.OUTCOMES)
    for engine in engines:
        if engine == "fast":
            out, ev, state = fast_replay(tables, policy, trace)
        else:
            out, ev = reference_replay(tables, policy, trace)
        out, ev = out[:n], ev[:n]
        i = first_difference(out, want_out)
        assert i is None, (f"{engine} {policy}: request {i} (model {tables.pair_model[trace.pair[i]]}) is "
                           f"{names[out[i]]}, libCacheSim says {names[want_out[i]]}; sizes "
                           f"{tables.mem_bytes.tolist()}, capacity {tables.capacity_bytes}, models requested "
                           f"{tables.pair_model[trace.pair[:i + 1]].tolist()}")
        if policy in HITS_ONLY:
            continue  # which of the models never requested again leave is a tie (belady's docstring)
        i = first_difference(ev, want_ev)
        assert i is None, f"{engine} {policy}: request {i} evicts {ev[i]} models, libCacheSim {want_ev[i]}"
        if engine == "fast" and n == len(trace):
            assert state.cached.astype(bool).tolist() == want_cached.tolist()
            assert int(state.used[0]) == want_used
    return want_out, want_ev


# -- random catalogs and sequences ----------------------------------------------------------------
@st.composite
def cases(draw):
    """(sizes in bytes, capacity in bytes, tasks per model, pair per request).

    Two scales: tiny sizes and capacities (many exact fits, equal sizes and ties) and GB-scale bytes as
    the catalogs have. The capacity ranges from below the smallest model to above their sum."""
    n = draw(st.integers(1, 30))
    if draw(st.booleans()):
        sizes = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
        capacity = draw(st.integers(1, max(1, sum(sizes) + 5)))
    else:
        sizes = draw(st.lists(st.integers(GB // 10, 40 * GB), min_size=n, max_size=n))
        capacity = draw(st.one_of(st.integers(GB, max(GB, sum(sizes))), st.sampled_from(sizes)))
    n_tasks = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
    n_pairs = sum(k if i % 2 == 0 else 1 for i, k in enumerate(n_tasks))
    # A skewed draw: a few hot pairs, the rest rare, as in a real trace.
    hot = draw(st.lists(st.integers(0, n_pairs - 1), min_size=1, max_size=4))
    pairs = draw(st.lists(st.one_of(st.sampled_from(hot), st.integers(0, n_pairs - 1)), min_size=1, max_size=300))
    return sizes, capacity, n_tasks, pairs


@pytest.mark.parametrize("policy", list(ORACLES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_random_sequences_agree_with_libcachesim(policy, case):
    sizes, capacity, n_tasks, pairs = case
    if policy == "s3fifo":
        sizes, capacity = s3fifo_case(sizes, capacity)
    tables = make_tables(sizes, capacity, n_tasks)
    assert_agree(policy, tables, make_trace(pairs))


# -- where libCacheSim's choice is not a function of the trace ----------------------------------------------
class _Spy:
    """Notes the first request (sequence number) at which `seen(cache)` holds at an eviction."""

    first = None

    def victim(self, cache, now, rng):
        if self.first is None and self.seen(cache, now):
            self.first = cache[0]._engine.seq - 1
        return super().victim(cache, now, rng)


class LFUDAEmptyAge(_Spy, LFUDA):
    """libCacheSim's LFUDA evicts the head of its queue at L; once no cached model has priority L (the
    cache emptied, pfmbench.policies.lfuda) that queue is empty and libCacheSim crashes."""

    def seen(self, cache, now):
        return not any(self.pri[e.model] == max(self.age, 1.0) for e in cache)


class BeladySizeTie(_Spy, BeladySize):
    """Two models share the largest finite score: libCacheSim evicts whichever it happens to draw first."""

    def seen(self, cache, now):
        scores = [-self.key(e, now)[0] for e in cache]
        best = max(scores)
        return best < np.inf and scores.count(best) > 1


def _prefix_before(spy_class, tables, trace):
    """How many requests come before the first one at which the spy's condition holds (all if never)."""
    spy = spy_class()
    replay_reference(tables, trace, spy)
    return len(trace) if spy.first is None else spy.first


COMPARABLE_PREFIX = {
    "lfuda": functools.partial(_prefix_before, LFUDAEmptyAge),
    # The request that evicts on a tie is itself compared (a miss either way); what follows is not.
    "belady-size": lambda tables, trace: min(len(trace), _prefix_before(BeladySizeTie, tables, trace) + 1),
}


def test_libcachesim_lfuda_crashes_where_its_age_queue_is_empty():
    """The condition COMPARABLE_PREFIX skips from, pinned: libCacheSim itself dies there (in a child process)."""
    tables = make_tables([1, 1, 1], 1, [1, 1, 1])
    seq = [0, 1, 1, 2]  # 1 evicts 0 (L = 1, the cache holds only 1, at priority 2), 1 is hit, 2 must evict
    assert _prefix_before(LFUDAEmptyAge, tables, make_trace(seq)) == 3
    code = ("import libcachesim as l; c = l.LFUDA(cache_size=1, hashpower=10); r = l.Request()\n"
            "for i, x in enumerate([1, 2, 2, 3]):\n"
            "    r.obj_id, r.obj_size = x, 1\n    print(i, c.get(r), flush=True)\n")
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and run.stdout.split() == ["0", "False", "1", "False", "2", "True"]
    out, _, _ = fast_replay(tables, "lfuda", make_trace(seq))  # pfmbench evicts the lowest priority
    assert out.tolist() == [C.LOAD, C.LOAD, C.HIT, C.LOAD]


def test_libcachesim_beladysize_draws_every_object():
    """With BELADY_SIZE_SAMPLES draws, every cached object is a candidate (so its choice is the maximum)."""
    cache = lcs.BeladySize(cache_size=10**6, hashpower=10, n_samples=1)
    req = lcs.Request()
    for i in range(64):
        req.obj_id, req.obj_size, req.next_access_vtime = i + 1, 1, 10**6 + i
        cache.get(req)
    drawn = {cache.to_evict(req).obj_id for _ in range(BELADY_SIZE_SAMPLES)}
    assert drawn == set(range(1, 65))


def s3fifo_case(sizes, capacity):
    """libCacheSim's S3FIFO aborts below 10 bytes (an empty small queue), and a model of exactly the small
    queue's size is where pfmbench differs on purpose (pfmbench.policies.s3fifo): move off both. S3-FIFO
    loads only models smaller than its small queue (a tenth of the GPU): every other model is made one,
    or the cache would rarely be contended."""
    capacity = max(capacity, 10)
    small = s3fifo.sizes(capacity)[0]
    sizes = [s % small if i % 2 == 0 else s for i, s in enumerate(sizes)]
    return [s + 1 if s == small else s for s in sizes], capacity


@pytest.fixture(scope="module")
def zipf_case():
    """30 models of 0.1–40 GB plus two larger than the GPU, 80 GB, 50,000 Zipf(0.8) requests over the
    (model, task) pairs in a shuffled order of popularity."""
    rng = np.random.default_rng(20240601)
    sizes = rng.integers(GB // 10, 40 * GB, 30).tolist() + [90 * GB, 120 * GB]
    n_tasks = rng.integers(1, 3, len(sizes)).tolist()
    tables = make_tables(sizes, 80 * GB, n_tasks)
    n_pairs = len(tables.pair_model)
    p = np.arange(1, n_pairs + 1, dtype=np.float64) ** -0.8
    order = rng.permutation(n_pairs)
    pairs = order[rng.choice(n_pairs, 50_000, p=p / p.sum())]
    return tables, make_trace(pairs)


@pytest.fixture(scope="module")
def small_zipf_case():
    """For S3-FIFO, which loads only models smaller than its small queue (10% of the GPU): 40 models of
    0.05-3 GB and two of 5 and 40 GB, 20 GB (a 2 GB small queue), 50,000 Zipf(0.8) requests."""
    rng = np.random.default_rng(20240602)
    sizes = rng.integers(GB // 20, 3 * GB, 40).tolist() + [5 * GB, 40 * GB]
    sizes, capacity = s3fifo_case(sizes, 20 * GB)
    tables = make_tables(sizes, capacity, [1] * len(sizes))
    n_pairs = len(tables.pair_model)
    p = np.arange(1, n_pairs + 1, dtype=np.float64) ** -0.8
    pairs = rng.permutation(n_pairs)[rng.choice(n_pairs, 50_000, p=p / p.sum())]
    return tables, make_trace(pairs)


# libCacheSim's LFUDA never returns from one request of this trace (it spins inside C, in cache_get, on a
# model that fits): its parity rests on the random sequences and the hand-made cases.
@pytest.mark.parametrize("policy", [p for p in ORACLES if p != "lfuda"])
def test_zipf_trace_agrees_with_libcachesim(policy, request):
    tables, trace = request.getfixturevalue("small_zipf_case" if policy == "s3fifo" else "zipf_case")
    out, ev = assert_agree(policy, tables, trace, engines=("fast",))
    # Not vacuous: the cache is contended and some models never fit.
    assert (out == C.HIT).sum() > 10_000 and (out == C.LOAD).sum() > 1_000 and ev.sum() > 1_000
    assert (out == C.CLOUD).sum() > 0


# -- hand-made cases ----------------------------------------------------------------------------------
# S3-FIFO loads only models smaller than its small queue; GDSF loads a model only if it outranks its victims.
# LFUDA: the model of exactly the GPU's size empties the cache, where libCacheSim's LFUDA breaks (see below).
ADMIT_ALL = [p for p in ORACLES if p not in ("s3fifo", "gdsf-unit", "belady", "belady-size", "lfuda")]


@pytest.mark.parametrize("policy", ADMIT_ALL)
def test_model_larger_than_gpu_is_never_admitted(policy):
    """Sizes: A just over the GPU, B exactly the GPU, C and D small. A is offloaded every time and evicts
    nothing (libCacheSim checks the size before evicting); B fits exactly and evicts all the rest."""
    cap = 24 * GB
    a, b, c, d = 0, 1, 2, 3
    tables = make_tables([cap + 1, cap, 5 * GB, 7 * GB], cap, [1, 1, 1, 1])
    seq = [c, d, a, c, d, a, b, a, c, d, a, d, c]
    out, ev = assert_agree(policy, tables, make_trace(seq))
    seq = np.array(seq)
    assert (out[seq == a] == C.CLOUD).all() and (ev[seq == a] == 0).all()
    assert out[seq == b].tolist() == [C.LOAD] and ev[seq == b].tolist() == [2]
    # After A's offloads C and D are still cached: the cloud request evicted nothing.
    assert out[:6].tolist() == [C.LOAD, C.LOAD, C.CLOUD, C.HIT, C.HIT, C.CLOUD]


@pytest.mark.parametrize("policy", list(ORACLES))
def test_every_model_larger_than_gpu(policy):
    tables = make_tables([3 * GB, 4 * GB], 2 * GB, [1, 1])
    out, ev = assert_agree(policy, tables, make_trace([0, 1, 0, 0, 1]))
    assert (out == C.CLOUD).all() and (ev == 0).all()


def test_lfu_ties_go_to_the_model_that_reached_its_count_first():
    """Capacity for two unit models. A, B both at count 2, B reached it first (request 3) -> B goes."""
    tables = make_tables([1, 1, 1], 2, [1, 1, 1])
    a, b, c = 0, 1, 2
    out, _ = assert_agree("lfu", tables, make_trace([a, b, b, a, c, a, b]))
    assert out.tolist() == [C.LOAD, C.LOAD, C.HIT, C.HIT, C.LOAD, C.HIT, C.LOAD]


def test_lfu_count_resets_on_eviction():
    """A reaches 3 and is evicted (B has 4); back in cache A counts from 1 again, so D evicts A, not B."""
    tables = make_tables([1, 1, 1, 1, 1], 2, [1, 1, 1, 1, 1])
    a, b, c, d = 0, 1, 2, 3
    seq = [a, a, a, b, b, b, b, c, a, d, a]
    out, _ = assert_agree("lfu", tables, make_trace(seq))
    assert out[-1] == C.LOAD  # with a remembered count A (4) would have tied B and B, reaching 4 first, gone


def test_fifo_ignores_hits_and_lru_does_not():
    tables = make_tables([1, 1, 1], 2, [1, 1, 1])
    a, b, c = 0, 1, 2
    seq = [a, b, a, c, a]
    fifo, _ = assert_agree("fifo", tables, make_trace(seq))
    lru, _ = assert_agree("lru", tables, make_trace(seq))
    assert fifo[-1] == C.LOAD and lru[-1] == C.HIT


def test_sieve_hand_keeps_visited_models():
    """Capacity 3 unit models. A, B, C loaded, A hit; D: the hand clears A and evicts B, resting on C;
    E: C is unvisited and goes. A stays through both."""
    tables = make_tables([1] * 5, 3, [1] * 5)
    a, b, c, d, e = range(5)
    out, _ = assert_agree("sieve", tables, make_trace([a, b, c, a, d, e, a, b]))
    assert out.tolist() == [C.LOAD, C.LOAD, C.LOAD, C.HIT, C.LOAD, C.LOAD, C.HIT, C.LOAD]


def test_s3fifo_queues():
    """100 bytes: a 10-byte small queue, 90 main, 90 ghost. Models of 4 bytes fill the small queue, then
    (nothing evicted yet) the main queue; a larger model than the small queue is offloaded. Evicted models
    requested again come back from the ghost into the main queue, and push out the main queue's oldest."""
    tables = make_tables([4] * 30 + [11, 50], 100, [1] * 32)
    seq = list(range(30)) + [30, 31, 0, 1, 29, 0, 3]
    out, _ = assert_agree("s3fifo", tables, make_trace(seq))
    assert out[30:].tolist() == [C.CLOUD, C.CLOUD, C.LOAD, C.LOAD, C.HIT, C.HIT, C.LOAD]


def test_s3fifo_model_of_the_small_queues_size_is_offloaded_without_evicting():
    """The one deliberate difference from libCacheSim, which evicts for it (here three models), then drops it."""
    tables = make_tables([4] * 30 + [10], 100, [1] * 31)
    out, ev, _ = fast_replay(tables, "s3fifo", make_trace(list(range(31))))
    assert out[-1] == C.CLOUD and ev[-1] == 0


def test_gdsf_newcomer_that_ranks_lowest_is_offloaded_after_evicting():
    """Capacity 10: A, B of 5 bytes (priority 2e5 each), A hit (4e5). C of 8 bytes ranks 1.25e5, lowest:
    offloaded, L = 1.25e5. C again ranks 2.5e5: B (2e5) goes, then C is lowest: offloaded after 1 eviction."""
    tables = make_tables([5, 5, 8], 10, [1, 1, 1])
    a, b, c = 0, 1, 2
    out, ev = assert_agree("gdsf-unit", tables, make_trace([a, b, a, c, c, b]))
    assert out.tolist() == [C.LOAD, C.LOAD, C.HIT, C.CLOUD, C.CLOUD, C.LOAD]
    assert ev.tolist() == [0, 0, 0, 0, 1, 0]


def test_s3fifo_loads_between_evictions():
    """Found by a random search: the reference engine's S3-FIFO learns of loads only at the next eviction,
    and once mixed up two of them (one back from the ghost) when several came between two evictions."""
    sizes = [2, 3, 3, 1, 2, 3, 3, 3, 3, 3, 1, 3, 1, 3, 3, 3, 3, 2, 2, 3, 1, 2, 3, 1, 3, 1, 3, 3, 2]
    seq = [16, 5, 12, 23, 7, 8, 21, 18, 11, 10, 23, 6, 9, 5, 8, 2, 8, 2, 16, 2, 0, 2, 4, 24, 19, 15, 10, 3, 15,
           15, 14, 15, 15, 14, 2, 5, 2, 12, 17, 25, 11, 11, 28, 14, 11, 26, 18, 6, 24, 21, 4, 14, 15, 22, 12, 10,
           17, 15, 16, 10, 5]
    assert_agree("s3fifo", make_tables(sizes, 40, [1] * len(sizes)), make_trace(seq))


def test_lfuda_hits_before_the_first_eviction_only_reorder():
    """Capacity 2 unit models. L is 0 until the first eviction, so a hit adds nothing and only moves a model
    behind the others at its priority: after A, B, A, A, B all are at 1, A first, and C evicts A (LFU would
    evict B, which has fewer requests)."""
    tables = make_tables([1, 1, 1], 2, [1, 1, 1])
    a, b, c = 0, 1, 2
    out, _ = assert_agree("lfuda", tables, make_trace([a, b, a, a, b, c, a]))
    assert out.tolist() == [C.LOAD, C.LOAD, C.HIT, C.HIT, C.HIT, C.LOAD, C.LOAD]


def test_belady_size_sizes_and_ties():
    """GPU 7 bytes. A (8) is larger than the GPU, B (7) exactly its size, C and G 0 bytes, D 2, E 3, F 4.
    Request 4 (F) must free 2 bytes: C (never requested again) goes first, freeing nothing, then D scores
    2 × 3 and E 3 × 2: a tie, to the least recently used, D. libCacheSim draws either, so it is compared up
    to that request; pfmbench's rule is pinned after it. A is offloaded and evicts nothing; B evicts every
    model but G, which frees nothing (it is evicted last: it is requested again, score 0) and stays."""
    tables = make_tables([8, 7, 0, 2, 3, 4, 0], 7, [1] * 7)
    A, B, Cz, D, E, F, G = range(7)
    seq = [G, Cz, D, E, F, F, E, D, A, B, G]
    assert COMPARABLE_PREFIX["belady-size"](tables, make_trace(seq)) == 5
    assert_agree("belady-size", tables, make_trace(seq))
    for engine in ("fast", "reference"):
        out, ev = (fast_replay(tables, "belady-size", make_trace(seq))[:2] if engine == "fast"
                   else reference_replay(tables, "belady-size", make_trace(seq)))
        assert out.tolist() == [C.LOAD] * 5 + [C.HIT, C.HIT, C.LOAD, C.CLOUD, C.LOAD, C.HIT], engine
        assert ev.tolist() == [0, 0, 0, 0, 2, 0, 0, 1, 0, 2, 0], engine
