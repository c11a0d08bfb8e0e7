"""`pfmbench calibrate`: recovers constants from a target pfmbench produced with them; targets, free keys
and options are validated; `table2 --calibrated` is the stored fit."""

import json
import math

import pytest

from pfmbench import api
from pfmbench.calibrate import MAX_LOG_RATIO, Cell, load_target, log_ratio, paper_cells, score

SETS = ["--set", "trace.requests=200", "--set", "gpu_memory_gb=40"]


def _target(tmp_path, **truth):
    rows = api.replay_many(None, ["lc", "lru", "cloud"], "default", **{"trace.requests": 200, "gpu_memory_gb": 40,
                                                                       **truth})
    p = tmp_path / "target.csv"
    lines = ["policy,metric,value"]
    for r in rows:
        for m in ("system_cost", "switching_cost", "cloud_cost", "edge_latency_mean_s"):
            if r[m] is not None:
                lines.append(f"{r['policy']},{m},{r[m]!r}")
    p.write_text("\n".join(lines) + "\n")
    return p


def test_recovers_known_constants(cli, tmp_path):
    target = _target(tmp_path, load_overhead_s=1.7, price_per_request=2.5)
    r = cli("calibrate", target, "--free", "load_overhead_s=0:4", "--free", "cloud.price_per_request=0.1:5",
            *SETS, "--generations", "15", "--json", "--scenario-out", tmp_path / "fit.toml")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert set(out) >= {"constants", "score", "cells"}
    c = out["constants"]
    assert c["load_overhead_s"] == pytest.approx(1.7, rel=0.02)
    assert c["cloud.price_per_request"] == pytest.approx(2.5, rel=0.02)
    assert out["score"] < 0.01
    assert {(x["policy"], x["metric"]) for x in out["cells"]} >= {("lc", "system_cost"), ("cloud", "cloud_cost")}
    for x in out["cells"]:
        assert x["ratio"] == (pytest.approx(x["value"] / x["target"]) if x["target"] else None)
    text = (tmp_path / "fit.toml").read_text()  # the fitted scenario replays as fitted
    assert "load_overhead_s = 1.6" in text or "load_overhead_s = 1.7" in text
    # deterministic: the same command gives the same fit
    again = cli("calibrate", target, "--free", "load_overhead_s=0:4", "--free", "cloud.price_per_request=0.1:5",
                *SETS, "--generations", "15", "--json")
    assert json.loads(again.out)["constants"] == c


def test_holdout_cells_are_predicted_not_fitted(cli, tmp_path):
    target = _target(tmp_path, load_overhead_s=1.2)
    r = cli("calibrate", target, "--free", "load_overhead_s=0:3", *SETS, "--holdout", "lru", "--generations", "8",
            "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["holdout_score"] is not None and out["holdout_score"] < 0.05  # lru's cells follow from lc's fit
    assert any(x["policy"] == "lru" for x in out["cells"])


def test_parallel_workers_give_the_same_fit(cli, tmp_path):
    target = _target(tmp_path, load_overhead_s=0.8)
    args = ("calibrate", target, "--free", "load_overhead_s=0:3", *SETS, "--generations", "4", "--popsize", "4",
            "--json")
    one = json.loads(cli(*args).out)
    two = json.loads(cli(*args, "--workers", "2").out)
    assert one == two


@pytest.mark.parametrize("args, needle", [
    (["--free", "no_such_key=0:1"], "no_such_key"),
    (["--free", "load_overhead_s=3:1"], "LO < HI"),
    (["--free", "load_overhead_s=0-1"], "KEY=LO:HI"),
    (["--free", "preset=0:1"], "numeric"),
    (["--free", "load_overhead_s=0:1", "--free", "edge.load_overhead_s=0:2"], "twice"),
    (["--free", "load_overhead_s=0:1", "--holdout", "lfu"], "--holdout"),
    (["--free", "gpu_memory_gb=-5:10"], "allowed range"),
    (["--free", "load_overhead_s=0:1", "--executor", "slurm"], "--executor"),
])
def test_bad_options_are_one_line(cli, tmp_path, args, needle):
    target = tmp_path / "t.csv"
    target.write_text("policy,metric,value\nlc,system_cost,10\nlru,system_cost,12\n")
    r = cli("calibrate", target, *args, *SETS)
    assert r.code == 2 and needle in r.err and r.err.count("\n") == 1 and r.out == "", r.err


@pytest.mark.parametrize("name, text, needle", [
    ("t.csv", "policy,metric\nlc,system_cost\n", "header"),
    ("t.csv", "policy,metric,value\nlc,no_metric,1\n", "line 2: unknown metric"),
    ("t.csv", "policy,metric,value\nlc,system_cost,abc\n", "line 2: value"),
    ("t.csv", "policy,metric,value\nlc,system_cost,0\n", "non-zero"),
    ("t.csv", "policy,metric,value\nlc,system_cost,1\nLC,system_cost,2\n", "twice"),
    ("t.toml", "[lc]\nsystem_cost = 'x'\n", "[lc] system_cost"),
    ("t.toml", "[[cell]]\npolicy = 'lc'\n", "[[cell]] 1"),
    ("t.json", "{}", ".csv or .toml"),
])
def test_bad_targets_are_one_line(cli, tmp_path, name, text, needle):
    p = tmp_path / name
    p.write_text(text)
    r = cli("calibrate", p, "--free", "load_overhead_s=0:1", *SETS)
    assert r.code == 2 and needle in r.err and r.err.count("\n") == 1, r.err


def test_toml_target_and_unknown_policy(cli, tmp_path):
    p = tmp_path / "t.toml"
    p.write_text("[lc]\nsystem_cost = 10.0\n[[cell]]\npolicy = 'lru'\nmetric = 'loads'\nvalue = 3\n")
    cells = load_target(str(p))
    assert Cell("lc", "system_cost", 10.0) in cells and Cell("lru", "loads", 3.0) in cells
    p.write_text("[nope]\nsystem_cost = 10.0\n")
    r = cli("calibrate", p, "--free", "load_overhead_s=0:1", *SETS)
    assert r.code == 2 and "nope" in r.err


def test_score_is_the_mean_log_ratio_over_non_zero_cells():
    cells = [Cell("a", "x", 2.0), Cell("a", "y", 0.0), Cell("b", "x", 4.0)]
    values = {"a": {"x": 4.0, "y": 5.0}, "b": {"x": 1.0}}
    assert score(cells, values) == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert log_ratio(0.0, 3.0) == MAX_LOG_RATIO == log_ratio(None, 3.0) == log_ratio(-1.0, 3.0)
    assert len(paper_cells()) == 40


def test_table2_calibrated_view(cli):
    """The stored fit: LC below cloud-only as in the paper, within a mean |ln ratio| of 0.5 over the four
    edge columns' non-zero cells."""
    from pfmbench.table2 import calibrated_constants, distance, restate, side_by_side

    assert calibrated_constants()
    r = cli("table2", "--calibrated", "--json")
    assert r.code == 0, r.err
    cells = json.loads(r.out)
    by = {(c["policy"], c["metric"]): c["pfmbench"] for c in cells}
    assert by["lc", "system_cost"] < by["cloud", "system_cost"]
    assert distance(cells) <= 0.5
    assert cells != side_by_side(restate(runs=40))  # the physical view differs


def test_start_and_polish(cli, tmp_path):
    """--start puts a point in the first generation; --polish refines the best point locally."""
    target = _target(tmp_path, load_overhead_s=1.3)
    base = ("calibrate", target, "--free", "load_overhead_s=0:3", *SETS, "--generations", "1", "--popsize", "2",
            "--json")
    rough = json.loads(cli(*base).out)
    fine = json.loads(cli(*base, "--start", "load_overhead_s=1.2", "--polish", "30").out)
    assert fine["score"] <= rough["score"] and fine["score"] < 0.01
    assert fine["constants"]["load_overhead_s"] == pytest.approx(1.3, rel=0.01)
    r = cli(*base, "--start", "half_life_s=5")
    assert r.code == 2 and "--start" in r.err
    r = cli(*base, "--start", "load_overhead_s=9")
    assert r.code == 2 and "outside its bounds" in r.err


def test_ray_executor_gives_the_same_fit(cli, tmp_path):
    pytest.importorskip("ray")
    target = _target(tmp_path, load_overhead_s=0.8)
    args = ("calibrate", target, "--free", "load_overhead_s=0:3", *SETS, "--generations", "2", "--popsize", "3",
            "--json")
    local = json.loads(cli(*args).out)
    r = cli(*args, "--executor", "ray")
    assert r.code == 0, r.err
    assert json.loads(r.out) == local
