"""Several edge servers with cooperation none (MODEL.md §9.4, issue 22): [[edges]] parsing and validation,
home edges, per-edge and total rows, parallel = sequential, one edge = today's replay, bad inputs."""

import hashlib
import json
import re

import numpy as np
import polars as pl
import pytest

import pfmbench
from pfmbench import api
from pfmbench.edges import EDGE_COLUMNS, merge_totals
from pfmbench.engine import record as C
from pfmbench.errors import InputError
from pfmbench.scenario import EdgeSite, load_scenario
from pfmbench.trace.home import home_edges, user_edge

TWO = """
[edge]
gpu_memory_gb = 40
[[edges]]
name = "big"
gpu_memory_gb = 80
executors = 2
[[edges]]
name = "small"
preset = "l4"
"""
COUNTED = ("n_requests", "edge_hits", "loads", "evictions", "offloads", "declined_loads", "dispatched_to_cloud",
           "preloads")
SUMMED = ("system_cost", "switching_cost", "total_accuracy_cost", "inference_latency_s", "edge_latency_s",
          "offloading_latency_s", "cloud_latency_s", "cloud_cost", "load_energy_j", "compute_energy_j",
          "load_time_s", "queue_wait_s", "context_discarded", "edge_gflop", "cloud_gflop")


def scenario_file(tmp_path, text, name="edges.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def trace():
    return pfmbench.synth(requests=1500, rate=0.5, seed=5, users=40)


def without_edge_columns(row):
    return {k: v for k, v in row.items() if k not in EDGE_COLUMNS}


# -- the scenario ----------------------------------------------------------------------------------------

def test_edges_parse_and_apply_over_the_edge_section(tmp_path):
    sc = load_scenario(scenario_file(tmp_path, TWO))
    assert [s.name for s in sc.edges] == ["big", "small"]
    big, small = (sc.edge_scenario(s) for s in sc.edges)
    assert (big.edge.gpu_memory_gb, big.edge.executors, big.edge.preset) == (80.0, 2, "a100-80")
    assert (small.edge.gpu_memory_gb, small.edge.tflops, small.edge.executors) == (24.0, 121.0, 1)  # l4 preset
    assert big.edges == () and big.cloud == sc.cloud and big.weights == sc.weights
    # a key given to the whole scenario reaches every edge that does not set it (a sweep axis)
    sc60 = sc.with_overrides(gpu_memory_gb=60)
    assert [sc60.edge_scenario(s).edge.gpu_memory_gb for s in sc60.edges] == [80.0, 24.0]
    assert sc60.edge_scenario(EdgeSite("x")).edge.gpu_memory_gb == 60.0
    # written and read back (scenario show --toml)
    again = load_scenario(scenario_file(tmp_path, sc.to_toml(), "again.toml"))
    assert again.edges == sc.edges and again.cooperation == "none"


def test_edges_n_makes_identical_edges(tmp_path):
    sc = load_scenario("default", edges="3")
    assert [s.name for s in sc.edges] == ["edge-0", "edge-1", "edge-2"]
    assert load_scenario("default", edges=0).edges == ()
    assert len(load_scenario(scenario_file(tmp_path, "edges = 2\n")).edges) == 2
    with pytest.raises(InputError, match="lists its own"):
        load_scenario(scenario_file(tmp_path, TWO), edges=2)  # would drop the edges' own keys


@pytest.mark.parametrize("text, message", [
    ('[[edges]]\nname = "a"\nmemory = 3\n', r"\[\[edges\]\] a: unknown key 'memory'"),
    ('[[edges]]\nname = "a"\ngpu_memory_gb = -1\n', r"\[\[edges\]\] a: edge.gpu_memory_gb must be"),
    ('[[edges]]\nname = "a"\nexecutors = "two"\n', r"\[\[edges\]\] a: executors: expected a whole number"),
    ('[[edges]]\nname = "a"\npreset = "h200"\n', r"\[\[edges\]\] a: edge.preset: unknown edge preset"),
    ('[[edges]]\ngpu_memory_gb = 40\n', r"\[\[edges\]\] 1 needs a name"),
    ('[[edges]]\nname = "a"\n[[edges]]\nname = "a"\n', r"\[\[edges\]\] 2: name 'a' is given twice"),
    ('[[edges]]\nname = "Total"\n', "reserved"),
    ('edges = []\n', r"must list 1 to 1024"),
    ('edges = 2000\n', r"edges must be a whole number from 0 to 1024"),
    ('edge_rtt_s = -0.5\n[[edges]]\nname = "a"\n', "edge_rtt_s must be a number from 0"),
    ('cooperation = "share"\n', "cooperation must be one of none, forward"),
])
def test_bad_edges_are_one_line_naming_file_and_field(tmp_path, text, message):
    p = scenario_file(tmp_path, text)
    with pytest.raises(InputError, match=message) as e:
        load_scenario(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


# -- home edges ------------------------------------------------------------------------------------------

def test_user_hash_is_documented_blake2b_and_pinned():
    for user, n in (("user-0", 3), ("alice", 4), ("é", 7)):
        digest = hashlib.blake2b(user.encode(), digest_size=8).digest()
        assert user_edge(user, n) == int.from_bytes(digest, "big") % n
    # pinned: the same on every platform, run and PYTHONHASHSEED (hashlib, not hash())
    assert [user_edge(f"user-{i}", 3) for i in range(6)] == [2, 2, 2, 1, 0, 1]
    assert user_edge("alice", 4) == 1


def test_home_edge_sources():
    import pyarrow as pa

    names = ["x", "y", "z"]
    t = pa.table({"ts": [3.0, 1.0, 2.0, 0.0], "model": ["GPT3-13B"] * 4})
    order = np.argsort(t.column("ts").to_numpy(), kind="stable")
    home, how = home_edges(t, names, order, "t")
    assert how == "round-robin" and home.tolist() == [0, 1, 2, 0]  # i-th in time order -> edge i mod 3
    users = t.append_column("user", pa.array([7, 8, 7, 9]))
    home, how = home_edges(users, names, order, "t")  # an integer user hashes as its decimal text
    assert how == "user hash" and home.tolist() == [user_edge(u, 3) for u in ("7", "8", "7", "9")]
    edged = users.append_column("edge", pa.array(["z", "x", "z", "y"]))  # the edge column wins over users
    assert home_edges(edged, names, order, "t") == (pytest.approx([2, 0, 2, 1]), "edge column")
    bad = t.append_column("edge", pa.array(["x", "x", "w", None]))
    with pytest.raises(InputError, match=r"^t: row 2: edge is 'w', not an edge of the scenario .*\(and 1 more\)$"):
        home_edges(bad, names, order, "t")
    with pytest.raises(InputError, match=r"row 1: user is null"):
        home_edges(t.append_column("user", pa.array(["a", None, "b", "c"])), names, order, "t")
    with pytest.raises(InputError, match="column 'user' has type double"):
        home_edges(t.append_column("user", pa.array([1.0, 2.0, 3.0, 4.0])), names, order, "t")


def test_synth_users_and_edges():
    plain = pfmbench.synth(requests=800, seed=2)
    both = pfmbench.synth(requests=800, seed=2, users=25, edges=3)
    assert both.select(plain.columns).equals(plain)  # the other columns are the same with or without them
    assert both["user"].n_unique() <= 25 and set(both["edge"]) <= {"edge-0", "edge-1", "edge-2"}
    assert all(e == f"edge-{user_edge(u, 3)}" for u, e in both.select("user", "edge").iter_rows())
    alone = pfmbench.synth(requests=800, seed=2, edges=2)
    assert set(alone["edge"]) == {"edge-0", "edge-1"} and "user" not in alone.columns
    with pytest.raises(InputError, match="users must be a whole number from 1"):
        pfmbench.synth(requests=10, users=0)


# -- replays ---------------------------------------------------------------------------------------------

def test_rows_per_edge_and_total_add_up(tmp_path, trace):
    rows = api.replay_many(trace, "lru,lc,cloud", scenario_file(tmp_path, TWO))
    assert [(r["edge"], r["policy"]) for r in rows] == [
        (e, p) for e in ("big", "small", "total") for p in ("lru", "lc", "cloud")]
    assert all(r["edges"] == 2 and r["home_edge_by"] == "user hash" and r["cooperation"] == "none" for r in rows)
    for p in ("lru", "lc", "cloud"):
        per = [r for r in rows if r["policy"] == p and r["edge"] != "total"]
        total = next(r for r in rows if r["policy"] == p and r["edge"] == "total")
        for k in COUNTED:
            assert total[k] == sum(r[k] for r in per), (p, k)
        for k in SUMMED:
            assert total[k] == pytest.approx(sum(r[k] for r in per), rel=1e-12, abs=1e-12), (p, k)
        n, edge = total["n_requests"], total["edge_hits"] + total["loads"]
        assert total["edge_execution_ratio"] == edge / n and total["hit_ratio"] == total["edge_hits"] / n
        assert total["edge_latency_max_s"] == max((r["edge_latency_max_s"] or 0.0) for r in per) or edge == 0
        assert sum(r["edge_share"] for r in per) == pytest.approx(1.0)
    assert rows[0]["setting_edge_gpu_memory_gb"] == 80.0 and rows[3]["setting_edge_gpu_memory_gb"] == 24.0
    assert rows[-1]["setting_edge_gpu_memory_gb"] is None  # the edges differ: no single value
    assert rows[-1]["setting_edge_load_gbps"] == 12.9  # they share it


def test_merged_totals_add_and_take_the_largest_latency():
    a = (np.array([1, 2]), np.arange(C.N_SUMS, dtype=float), np.array([0, 3, 1]))
    b = (np.array([4, 1]), np.ones(C.N_SUMS), np.array([2, 0, 5]))
    counts, sums, hist = merge_totals([a, b])
    assert counts.tolist() == [5, 3] and hist.tolist() == [2, 3, 6]
    assert sums[C.S_EDGE_LAT_MAX] == max(C.S_EDGE_LAT_MAX, 1.0) and sums[0] == 1.0


def test_one_edge_equals_a_replay_of_its_own_requests(tmp_path):
    df = pfmbench.synth(requests=1200, rate=0.5, seed=8, users=30, edges=2)
    p = scenario_file(tmp_path, '[edge]\ngpu_memory_gb = 40\n[[edges]]\nname = "edge-0"\n'
                                '[[edges]]\nname = "edge-1"\npreset = "l40s"\nexecutors = 2\n')
    sc = load_scenario(p)
    rows = api.replay_many(df, "lru,fifo,random", p, engine="reference")
    for site in sc.edges:
        alone = api.replay_many(df.filter(pl.col("edge") == site.name), "lru,fifo,random", sc.edge_scenario(site),
                                engine="reference")
        mine = [without_edge_columns(r) for r in rows if r["edge"] == site.name]
        assert mine == alone  # every value, bit for bit


def test_a_single_edge_is_todays_replay(tmp_path, trace):
    rows = api.replay_many(trace, "lc,lfu", scenario_file(tmp_path, '[[edges]]\nname = "only"\n'))
    today = api.replay_many(trace, "lc,lfu", "default")
    edge_rows = [without_edge_columns(r) for r in rows if r["edge"] == "only"]
    total_rows = [without_edge_columns(r) for r in rows if r["edge"] == "total"]
    for e, t, d in zip(edge_rows, total_rows, today, strict=True):
        for k in d:
            if k not in ("scenario", "setting_source", "notes"):
                assert e[k] == d[k] and t[k] == d[k], k


def test_parallel_equals_sequential(tmp_path, trace):
    p = scenario_file(tmp_path, TWO)
    one = api.replay_many(trace, "lru,lc", p, workers=1)
    two = api.replay_many(trace, "lru,lc", p, workers=2)
    assert json.dumps(one) == json.dumps(two)


# -- the command line --------------------------------------------------------------------------------------

def test_cli_prints_total_and_per_edge_tables(cli, tmp_path, trace):
    t = tmp_path / "t.parquet"
    trace.write_parquet(t)
    r = cli("replay", t, "--scenario", scenario_file(tmp_path, TWO), "--policy", "lru,cloud")
    assert r.code == 0, r.err
    assert "2 edge servers (cooperation none, home edge by user hash)" in r.out
    assert "Total over 2 edge servers" in r.out and "System cost per edge server" in r.out
    r = cli("replay", t, "--set", "edges=2", "--policy", "lru", "--json")
    assert r.code == 0, r.err
    assert [x["edge"] for x in json.loads(r.out)] == ["edge-0", "edge-1", "total"]


@pytest.mark.parametrize("args, message", [
    (["--set", "edges=2", "--set", "edge_rtt_s=x"], "edge_rtt_s: expected a number"),
    (["--workers", "2"], "--workers 2: applies to several edge servers only"),
    (["--set", "edges=2", "--policy", "lru,opt"], "opt is not available with several edge servers"),
    (["--set", "edges=2", "--requests-out", "REQ"], "--requests-out is not available with several edge servers"),
    (["--scenario", "EDGES"],
     r"t.parquet: row 0: edge is 'edge-\d', not an edge of the scenario \(edges: north, south\) \(and 49 more\)"),
])
def test_cli_bad_inputs_exit_2_with_one_line(cli, tmp_path, args, message):
    t = tmp_path / "t.parquet"
    pfmbench.synth(requests=50, seed=1, edges=2).write_parquet(t)
    edges = scenario_file(tmp_path, '[[edges]]\nname = "north"\n[[edges]]\nname = "south"\n')
    args = [str(edges) if a == "EDGES" else str(tmp_path / "r.parquet") if a == "REQ" else a for a in args]
    r = cli("replay", t, "--policy", "lru", *args) if "--policy" not in args else cli("replay", t, *args)
    assert r.code == 2, (r.out, r.err)
    assert len(r.err.strip().splitlines()) == 1 and r.err.startswith("error: ")
    assert re.search(message, r.err), r.err


def test_cli_synth_users_and_edges(cli, tmp_path):
    out = tmp_path / "t.parquet"
    r = cli("synth", "-o", out, "--requests", "300", "--users", "20", "--edges", "3")
    assert r.code == 0, r.err
    assert {"user", "edge"} <= set(pl.read_parquet(out).columns)
    r = cli("synth", "-o", tmp_path / "u.parquet", "--requests", "3", "--edges", "0")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
