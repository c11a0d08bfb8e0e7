"""Library-level replay: streamed Parquet equals whole-trace replay; golden results of the default scenario."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import pfmbench
from pfmbench import api

GOLDEN = Path(__file__).parent / "golden_default.json"
PINNED = ("n_requests", "edge_hits", "loads", "evictions", "offloads")
COSTS = ("system_cost", "switching_cost", "total_accuracy_cost", "inference_latency_s", "offloading_latency_s",
         "cloud_cost", "context_discarded", "examples_in_context_mean_edge")


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("t") / "trace.parquet"
    pfmbench.synth(requests=5000, rate=2.0, alpha=0.9, seed=3).write_parquet(p, row_group_size=700)
    return p


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_streamed_parquet_equals_whole(trace_file, monkeypatch, engine):
    policies = ["lc", "lfu", "lru", "fifo", "random", "cloud"]
    whole = api.replay_many(str(trace_file), policies, engine=engine, gpu_memory_gb=50)
    monkeypatch.setattr(api, "STREAM_MIN_ROWS", 0)
    streamed = api.replay_many(str(trace_file), policies, engine=engine, gpu_memory_gb=50, chunk_rows=333)
    assert whole == streamed  # every value, bit for bit


def test_streamed_unsorted_falls_back_to_sorting(tmp_path, monkeypatch):
    df = pfmbench.synth(requests=2000, seed=4)
    p = tmp_path / "shuffled.parquet"
    df.sample(fraction=1.0, shuffle=True, seed=1).write_parquet(p)
    expected = api.replay_many(df, ["lru", "lc"])
    monkeypatch.setattr(api, "STREAM_MIN_ROWS", 0)
    got = api.replay_many(str(p), ["lru", "lc"], chunk_rows=100)
    for a, b in zip(expected, got, strict=True):
        assert {k: v for k, v in a.items() if k != "trace"} == {k: v for k, v in b.items() if k != "trace"}


def test_timestamp_column_types(tmp_path):
    base = pl.DataFrame({"ts": [0.0, 1.5, 3.0], "model": ["GPT3-13B", "CLIP-ViT-L/14", "GPT3-13B"]})
    dt = base.with_columns((pl.lit(1_700_000_000_000_000) + (pl.col("ts") * 1e6).cast(pl.Int64))
                           .cast(pl.Datetime("us")).alias("ts"))
    a = pfmbench.replay(base, "lru").summary
    b = pfmbench.replay(dt, "lru").summary
    for k in PINNED + COSTS:
        assert a[k] == pytest.approx(b[k], rel=1e-9), k


def test_request_log_matches_summary(trace_file):
    r = pfmbench.replay(str(trace_file), "lc", requests=True, gpu_memory_gb=50)
    log, s = r.requests, r.summary
    counts = log["outcome"].cast(pl.String).value_counts()
    counts = dict(zip(counts["outcome"], counts["count"], strict=True))
    assert counts.get("hit", 0) == s["edge_hits"] and counts.get("load", 0) == s["loads"]
    assert counts.get("cloud", 0) == s["offloads"]
    assert log["evictions"].sum() == s["evictions"]
    assert log["accuracy_cost"].sum() == pytest.approx(s["total_accuracy_cost"], rel=1e-9)
    edge = log.filter(pl.col("outcome") != "cloud")["latency"].to_numpy()
    assert edge.sum() == pytest.approx(s["edge_latency_s"], rel=1e-9)  # the user-facing latency: loads in it
    for q in (50, 95, 99):  # histogram percentiles within 0.1% of exact nearest-rank
        exact = np.sort(edge)[max(0, int(np.ceil(q / 100 * len(edge))) - 1)]
        assert s[f"edge_latency_p{q}_s"] == pytest.approx(exact, rel=1e-3)


def golden_rows():
    rows = api.replay_many(None, "all")
    return {r["policy"]: {k: r[k] for k in PINNED + COSTS} for r in rows}


def test_default_scenario_golden():
    """Pinned results of the built-in default scenario; regenerate with
    `python -c "import json,sys; sys.path.insert(0,'tests'); import test_api as t; print(json.dumps(t.golden_rows(), indent=1))" > tests/golden_default.json`
    only when a change to the model is intended (and say so in the commit)."""
    want = json.loads(GOLDEN.read_text())
    got = golden_rows()
    assert set(got) == set(want)
    for policy, values in want.items():
        for k in PINNED:
            assert got[policy][k] == values[k], (policy, k)
        for k in COSTS:
            assert got[policy][k] == pytest.approx(values[k], rel=1e-9), (policy, k)


def test_default_scenario_is_calibrated():
    """MODEL.md §7: the edge cannot hold everything, neither all-cloud nor all-edge wins trivially, the
    Table II policies differ."""
    rows = {r["policy"]: r for r in api.replay_many(None, "all")}
    assert all(r["evictions"] > 0 for p, r in rows.items() if p != "cloud")
    costs = [r["system_cost"] for r in rows.values()]
    assert len({round(c, 6) for c in costs}) == len(costs)  # every policy differs
    edge = [r["system_cost"] for p, r in rows.items() if p != "cloud"]
    assert min(edge) < rows["cloud"]["system_cost"] < max(edge)  # cloud is neither best nor worst


def test_streamed_trace_without_optional_columns(tmp_path, monkeypatch):
    p = tmp_path / "bare.parquet"
    df = pl.DataFrame({"ts": np.arange(3000, dtype=float), "model": ["GPT3-13B", "CLIP-ViT-L/14", "UniFormer-S/pose_estimation"] * 1000})
    df.write_parquet(p, row_group_size=500)
    whole = api.replay_many(str(p), ["lru", "lc"])
    monkeypatch.setattr(api, "STREAM_MIN_ROWS", 0)
    assert api.replay_many(str(p), ["lru", "lc"], chunk_rows=128) == whole


def test_default_scenario_fast_equals_reference():
    """Both engines on the whole default scenario (20,000 requests), every policy."""
    fast = api.replay_many(None, "all", engine="fast")
    ref = api.replay_many(None, "all", engine="reference")
    for f, r in zip(fast, ref, strict=True):
        for k, v in f.items():
            if k == "engine":
                continue
            if isinstance(v, float):
                assert v == pytest.approx(r[k], rel=1e-9, abs=1e-12), (f["policy"], k)
            else:
                assert v == r[k], (f["policy"], k)
