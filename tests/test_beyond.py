"""Policies beyond the paper (issue 10) through the API: chunked = whole, the offline bound's rules."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_oracle import fast_replay, make_tables, make_trace

import pfmbench
from pfmbench import api
from pfmbench.engine import record as C
from pfmbench.errors import InputError

NEW = ["sieve", "s3fifo", "gdsf", "gdsf-unit", "belady"]


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("t") / "trace.parquet"
    pfmbench.synth(requests=3000, rate=2.0, alpha=0.9, seed=5).write_parquet(p, row_group_size=500)
    return p


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_chunked_equals_whole(trace_file, engine):
    whole = api.replay_many(str(trace_file), NEW, engine=engine, gpu_memory_gb=50)
    chunked = api.replay_many(str(trace_file), NEW, engine=engine, gpu_memory_gb=50, chunk_rows=97)
    assert whole == chunked  # every value, bit for bit


def test_fast_equals_reference_through_the_api(trace_file):
    fast = api.replay_many(str(trace_file), NEW, engine="fast", gpu_memory_gb=50)
    ref = api.replay_many(str(trace_file), NEW, engine="reference", gpu_memory_gb=50)
    for a, b in zip(fast, ref, strict=True):
        assert a["edge_hits"] == b["edge_hits"] and a["evictions"] == b["evictions"]
        assert a["system_cost"] == pytest.approx(b["system_cost"], rel=1e-9)


def test_belady_refuses_a_streamed_trace(trace_file, monkeypatch):
    monkeypatch.setattr(api, "STREAM_MIN_ROWS", 0)
    with pytest.raises(InputError, match="belady needs the whole trace in memory"):
        api.replay_many(str(trace_file), ["lru", "belady"], chunk_rows=100)
    api.replay_many(str(trace_file), ["lru", "sieve"], chunk_rows=100)  # the online ones stream


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 12), capacity=st.integers(1, 8),
       pairs=st.lists(st.integers(0, 11), min_size=1, max_size=200))
def test_belady_misses_least_with_equal_sizes(n, capacity, pairs):
    """With every model the same size, MIN is optimal among policies that load on every miss: none has more
    hits. (GDSF and S3-FIFO may decline a load, which MIN, loading on every miss, does not: they can win.)"""
    tables = make_tables([1] * n, capacity, [1] * n)
    trace = make_trace([p % n for p in pairs])
    hits = {p: int((fast_replay(tables, p, trace)[0] == C.HIT).sum()) for p in ["lru", "fifo", "lfu", "sieve", "belady"]}
    assert hits["belady"] == max(hits.values()), hits
