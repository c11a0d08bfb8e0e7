"""Offloading as a decision (MODEL.md §4): the paper's accounting, admission rules and dispatch."""

import json

import numpy as np
import pytest

from pfmbench.api import replay_many


def test_cloud_only_has_no_offloading_latency_and_costs_its_cloud_cost(cli):
    r = cli("replay", "--policy", "cloud", "--json")
    assert r.code == 0, r.err
    [row] = json.loads(r.out)
    assert row["offloading_latency_s"] == 0.0  # device -> edge: nothing is served at the edge
    assert row["cloud_latency_s"] > 0  # reported always ...
    assert row["system_cost"] == pytest.approx(row["cloud_cost"], rel=1e-12)  # ... but not in the paper's sum
    assert row["admission"] == "always" and row["queueing_share"] == 0.0


def test_cloud_latency_counts_when_weighted():
    [row] = replay_many(None, ["cloud"], cloud_latency=1.0)
    assert row["system_cost"] == pytest.approx(row["cloud_cost"] + row["cloud_latency_s"], rel=1e-12)


def test_offloading_latency_is_per_edge_served_request():
    rows = {r["policy"]: r for r in replay_many(None, ["lru", "fifo"], radio_uplink_mbps=1e9)}
    for r in rows.values():  # with an infinitely fast uplink it is the radio round trip per edge request
        edge = r["edge_hits"] + r["loads"]
        assert r["offloading_latency_s"] == pytest.approx(edge * r["setting_edge_radio_rtt_s"], rel=1e-4)


def test_outrank_admission_makes_edge_policies_differ_on_the_default_scenario():
    rows = replay_many(None, ["fifo", "lfu", "lc", "lru"], admission="outrank")
    ratios = {r["policy"]: r["edge_execution_ratio"] for r in rows}
    assert all(r["admission"] == "outrank" for r in rows)
    # LFU and LC decline loads: against every model it would displace, a newcomer rarely outranks them all
    # (on this scenario both load only at the cold start), while FIFO and LRU admit as under `always`.
    assert ratios["lfu"] < ratios["fifo"] and ratios["lc"] < ratios["lru"], ratios
    # LRU and FIFO: a newcomer is never the first victim, so outrank admits as `always` does
    always = {r["policy"]: r for r in replay_many(None, ["fifo", "lru"])}
    assert ratios["fifo"] == always["fifo"]["edge_execution_ratio"]
    declined = {r["policy"]: r["declined_loads"] for r in rows}
    assert declined["lfu"] > 0 and declined["lc"] > 0 and declined["lru"] == 0


def test_always_admission_loads_whatever_fits():
    rows = replay_many(None, ["fifo", "lfu", "lc", "lru", "random"])
    assert len({r["edge_execution_ratio"] for r in rows}) == 1
    assert all(r["declined_loads"] == 0 and r["dispatched_to_cloud"] == 0 for r in rows)


def test_cost_admission_declines_loads_that_do_not_pay():
    # A cloud that costs nothing: no load is ever worth it, every request goes to the cloud.
    [row] = replay_many(None, ["lru"], admission="cost", price_per_request=0.0)
    assert row["loads"] == 0 and row["declined_loads"] > 0
    # A very dear cloud: every load that fits pays.
    [row] = replay_many(None, ["lru"], admission="cost", price_per_request=1e6)
    [always] = replay_many(None, ["lru"], price_per_request=1e6)
    assert row["loads"] == always["loads"]


def test_cheapest_dispatch_bounds_queueing(tmp_path):
    import polars as pl

    p = tmp_path / "burst.parquet"
    ts = [0.0] + [10.0] * 199  # the model is loaded first, then a burst the edge cannot keep up with
    pl.DataFrame({"ts": ts, "model": ["GPT3-13B"] * 200, "units": [2000.0] * 200}).write_parquet(p)
    [edge] = replay_many(str(p), ["lru"])
    [cheap] = replay_many(str(p), ["lru"], dispatch="cheapest")
    assert edge["queueing_share"] > 0.9
    assert cheap["dispatched_to_cloud"] > 0 and cheap["queueing_share"] < edge["queueing_share"]
    assert cheap["system_cost"] < edge["system_cost"]
    assert cheap["dispatch"] == "cheapest"


def test_queueing_share_is_in_every_summary_row(cli, tmp_path):
    out = tmp_path / "s.parquet"
    r = cli("replay", "--policy", "lru,cloud", "--out", out, "--json")
    assert r.code == 0
    import pyarrow.parquet as pq

    t = pq.read_table(out)
    for col in ("queueing_share", "cloud_latency_s", "offloading_latency_s", "declined_loads", "dispatched_to_cloud",
                "admission", "dispatch"):
        assert col in t.column_names
        assert all(col in row for row in json.loads(r.out))
    share = np.array(t.column("queueing_share").to_pylist())
    assert np.all((share >= 0) & (share <= 1))


@pytest.mark.parametrize("flag,value", [("--admission", "sometimes"), ("--dispatch", "nearest")])
def test_unknown_rules_are_usage_errors(cli, flag, value):
    r = cli("replay", "--policy", "lru", flag, value)
    assert r.code == 2 and value in r.err and "Traceback" not in r.err


def test_no_eviction_note_only_where_every_fitting_model_was_loaded():
    """"Every eviction policy gives these same numbers" holds only if nothing that fits was kept out."""
    from pfmbench.results import run_notes
    from pfmbench.scenario import default_scenario

    sc = default_scenario()
    row = {"loads": 3, "evictions": 0, "declined_loads": 0, "dispatched_to_cloud": 0, "preloads": 0}
    assert any(n.startswith("no model was ever evicted") for n in run_notes(row, sc))
    for key in ("declined_loads", "dispatched_to_cloud", "preloads"):
        assert not any(n.startswith("no model was ever evicted") for n in run_notes({**row, key: 1}, sc))
