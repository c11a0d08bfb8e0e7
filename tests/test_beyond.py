"""Policies beyond the paper (issue 10) through the API: chunked = whole, the offline bound's rules."""

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_oracle import fast_replay, make_tables, make_trace

import pfmbench
from pfmbench import api
from pfmbench.engine import record as C
from pfmbench.policies import BUILTIN_GROUPS, builtin_names

# Every built-in beyond the paper's group, read from the registry (a new one is tested here by itself).
NEW = [n for n in builtin_names() if n not in builtin_names(BUILTIN_GROUPS[0])]


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


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_offline_policies_stream_in_bounded_memory(trace_file, monkeypatch, tmp_path, engine):
    """A streamed trace's next uses come from an index on disk (trace/nextuse.py): the same bits as the whole
    trace in memory, for every summary value and every request, and the index's files are gone afterwards."""
    import tempfile

    offline = ["belady", "belady-size", "lru"]
    whole = api.replay_many(str(trace_file), offline, engine=engine, gpu_memory_gb=50,
                            requests_out=tmp_path / "whole.parquet")
    monkeypatch.setattr(api, "STREAM_MIN_ROWS", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    streamed = api.replay_many(str(trace_file), offline, engine=engine, gpu_memory_gb=50, chunk_rows=77,
                               requests_out=tmp_path / "streamed.parquet")
    assert streamed == whole
    def rows(name):  # each chunk writes its rows policy by policy: compare in (policy, request) order
        t = pl.read_parquet(tmp_path / name)
        return t.with_columns(pl.col("policy").cast(pl.String)).sort("policy", "request", maintain_order=True)

    assert rows("streamed.parquet").equals(rows("whole.parquet"))
    assert list((tmp_path / "tmp").iterdir()) == []
    assert whole[0]["evictions"] > 0 and whole[1]["evictions"] > 0  # not vacuous


def test_streamed_next_uses_equal_the_whole_traces():
    from pfmbench.engine.fast import next_uses
    from pfmbench.trace.nextuse import StreamedNextUses
    from pfmbench.trace.schema import TraceArrays

    rng = np.random.default_rng(3)
    models = rng.integers(0, 7, 1000).astype(np.int32)
    chunks = [TraceArrays(np.zeros(len(c)), c, np.zeros(len(c)), np.zeros(len(c)))
              for c in np.split(models, [1, 2, 50, 51, 400, 999])]
    want = next_uses(models)
    for block in (1, 3, 64, 5000):
        index = StreamedNextUses(chunks, np.arange(7, dtype=np.int32), 7, block)
        try:
            got = np.concatenate([index.part(s, n) for s, n in [(0, 1), (1, 998), (999, 1)]])
        finally:
            index.close()
        np.testing.assert_array_equal(got, want)


def test_an_unsorted_streamed_trace_falls_back_for_offline_policies(tmp_path, monkeypatch):
    p = tmp_path / "unsorted.parquet"
    df = pfmbench.synth(requests=400, rate=2.0, seed=9)
    df[::-1].write_parquet(p, row_group_size=50)  # time runs backwards: read whole and sorted
    whole = api.replay_many(str(p), ["belady-size"], gpu_memory_gb=50)
    monkeypatch.setattr(api, "STREAM_MIN_ROWS", 0)
    assert api.replay_many(str(p), ["belady-size"], gpu_memory_gb=50, chunk_rows=30) == whole


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
