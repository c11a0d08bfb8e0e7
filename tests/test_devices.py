"""Devices (MODEL.md §9.4, the paper's §III-C-1): a request whose model fits the user's device may run there."""

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pfmbench import api
from pfmbench.catalog import Catalog, Model, Task
from pfmbench.engine import record as C
from pfmbench.engine.fast import FastEngine
from pfmbench.engine.record import new_log
from pfmbench.engine.reference import replay_reference
from pfmbench.engine.tables import build_tables
from pfmbench.policies import get_policy
from pfmbench.results import COST_TERMS
from pfmbench.scenario import Scenario, default_scenario
from pfmbench.trace.schema import TraceArrays

GOLDEN = Path(__file__).parent / "golden_default.json"


def test_default_scenario_with_an_8_gb_device(cli, tmp_path):
    """The issue's done-when: small vision models run on the device, GPT-3 requests never do."""
    log_path, out = tmp_path / "requests.parquet", tmp_path / "summary.parquet"
    r = cli("replay", "--policy", "lru,lc", "--set", "device.memory_gb=8", "--requests-out", log_path,
            "--out", out, "--json")
    assert r.code == 0, r.err
    rows = {row["policy"]: row for row in json.loads(r.out)}
    log = pl.read_parquet(log_path)
    for policy, row in rows.items():
        assert row["device_served"] > 0
        mine = log.filter(pl.col("policy") == policy)
        on_device = mine.filter(pl.col("outcome") == "device")
        assert on_device.height == row["device_served"]
        models = set(on_device["model"].cast(pl.String))
        assert models and not any(m.startswith("GPT3") for m in models)
        assert any(m.startswith(("UniFormer", "CLIP")) for m in models)
        gpt3 = mine.filter(pl.col("model").cast(pl.String).str.starts_with("GPT3"))
        assert gpt3.height > 0 and (gpt3["outcome"] != "device").all()
        # the device's terms per request add up to the summary's
        assert on_device["latency"].sum() == pytest.approx(row["device_latency_s"], rel=1e-9)
        assert on_device["device_energy_j"].sum() / 1000 == pytest.approx(row["device_energy_kj"], rel=1e-9)
        assert (mine.filter(pl.col("outcome") != "device")["device_energy_j"] == 0).all()
        assert mine["accuracy_cost"].sum() == pytest.approx(row["total_accuracy_cost"], rel=1e-9)
        assert (on_device["k_eff"] == 0).all() and (on_device["wait"] == 0).all()  # zero-shot, no queue
        n = row["n_requests"]
        assert row["edge_hits"] + row["loads"] + row["offloads"] + row["substituted"] + row["device_served"] == n
    summary = pl.read_parquet(out)
    assert summary["device_served"].to_list() == [rows["lru"]["device_served"], rows["lc"]["device_served"]]
    assert summary["setting_device_memory_gb"].to_list() == [8.0, 8.0]


def test_no_device_gives_todays_results():
    """Without a device (memory_gb = 0, the default), the other [device] values change nothing: the golden file's
    numbers, bit for bit, and no device column is anything but 0."""
    want = json.loads(GOLDEN.read_text())
    rows = api.replay_many(None, ["lru", "lc"], **{"device.tflops": 1000.0, "device.power_w": 0.0,
                                                   "w_device_energy": 50.0})
    for row in rows:
        for k, v in want[row["policy"]].items():
            assert row[k] == v, (row["policy"], k)
        assert row["device_served"] == 0 and row["device_latency_s"] == row["device_energy_kj"] == 0.0


def test_system_cost_terms_add_up_with_a_device():
    rows = api.replay_many(None, ["lru", "cloud"], **{"device.memory_gb": 8.0, "w_device_energy": 1000.0,
                                                      "weights.latency": 2.0, "trace.requests": 4000})
    sc = default_scenario()
    for row in rows:
        assert row["device_served"] > 0 and row["device_energy_kj"] > 0
        total = sum(row[f"setting_weights_{w}"] * row[col] for col, w in COST_TERMS)
        assert total == pytest.approx(row["system_cost"], rel=1e-12)
    assert sc.device.memory_gb == 0.0  # the default scenario has no device


def _tiny(device_gb=8.0, **device):
    small = Model("Small", "VFM", 10.0, 100.0, "fp16", 1.0, 0.0, (Task("t", 80.0),))
    big = Model("Big", "LFM", 10.0, 100.0, "fp16", 20.0, 4.0, (Task("t", 10.0, 30.0, 40.0, 4),))
    sc = Scenario()
    sc.device.memory_gb = device_gb
    for k, v in device.items():
        setattr(sc.device, k, v)
    tab = build_tables(sc.validate(), Catalog((small, big)))
    n = 40
    pair = np.array([0, 1] * (n // 2), np.int32)
    return tab, TraceArrays(np.arange(n, dtype=float), pair, np.ones(n), np.full(n, 0.01))


@pytest.mark.parametrize("policy", ["lru", "lc", "cloud"])
def test_device_decision_both_engines(policy):
    """A fast device takes every request of the model that fits it (the edge would load it, then pay the radio);
    the model larger than the device never goes there; both engines agree request by request."""
    tab, tr = _tiny(tflops=400.0, utilization=1.0)
    assert tab.device_fits.tolist() == [1, 0]
    eng = FastEngine(tab, get_policy(policy), 0)
    log = new_log(len(tr.ts))
    eng.run(tr, log)
    counts, sums, _, cols = replay_reference(tab, tr, get_policy(policy), 0, log=True)
    np.testing.assert_array_equal(eng.counts, counts)
    np.testing.assert_allclose(eng.sums, sums, rtol=1e-12)
    np.testing.assert_array_equal(log.outcome, cols["outcome"])
    assert np.all(log.outcome[tr.pair == 0] == C.DEVICE) and not np.any(log.outcome[tr.pair == 1] == C.DEVICE)
    assert counts[C.C_DEVICE_SERVED] == 20
    # the edge never heard of them: its cache, counts and queue are Big's alone
    assert eng.state.cached[0] == 0 and eng.state.seen[0] == 0


def test_a_slow_device_loses_to_a_warm_edge():
    """A slow device loses to the edge once the model is cached there (no load, a short queue): only the miss,
    when the edge would first load the model, may go to the device."""
    tab, tr = _tiny(tflops=1.0, utilization=1.0)  # 100 GFLOP at 1 TFLOPS: 0.1 s, below a 0.5 s load, above 5 ms
    eng = FastEngine(tab, get_policy("lru"), 0)
    log = new_log(len(tr.ts))
    eng.run(tr, log)
    small = log.outcome[tr.pair == 0]
    assert np.all(small == C.DEVICE)  # the edge never loads it: every request looks like a miss to it
    tab, tr = _tiny(tflops=0.01, utilization=1.0)  # 10 s on the device: the edge's load is cheaper
    eng = FastEngine(tab, get_policy("lru"), 0)
    log = new_log(len(tr.ts))
    eng.run(tr, log)
    assert not np.any(log.outcome == C.DEVICE)


def test_device_values_are_sweep_axes(cli, tmp_path):
    out = tmp_path / "sweep.parquet"
    r = cli("sweep", "--set-grid", "device.memory_gb=0,8", "--set", "trace.requests=2000", "-p", "lru", "-o", out,
            "--quiet")
    assert r.code == 0, r.err
    df = pl.read_parquet(out).sort("setting_device_memory_gb")
    assert df["device_served"].to_list()[0] == 0 and df["device_served"].to_list()[1] > 0


@pytest.mark.parametrize("setting, needle", [
    ("device.memory_gb=-1", "device.memory_gb"),
    ("device.tflops=0", "device.tflops"),
    ("device.utilization=1.5", "device.utilization"),
    ("device.power_w=nan", "device.power_w"),
    ("w_device_energy=-2", "weights.device_energy"),
    ("device.memory_gb=lots", "device.memory_gb"),
])
def test_bad_device_values_are_refused(cli, setting, needle):
    r = cli("replay", "--policy", "lru", "--set", setting)
    assert r.code == 2 and needle in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_device_in_a_scenario_file_and_opt_refused(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[device]\nmemory = 8\n")
    r = cli("replay", "--scenario", bad, "--policy", "lru")
    assert r.code == 2 and "[device] has unknown key 'memory'" in r.err
    good = tmp_path / "phone.toml"
    good.write_text("[device]\nmemory_gb = 8\n\n[trace]\nrequests = 500\n")
    r = cli("replay", "--scenario", good, "--policy", "lru", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)[0]["device_served"] > 0
    r = cli("replay", "--scenario", good, "--policy", "lru,opt")
    assert r.code == 2 and "opt: not defined with a [device]" in r.err and "Traceback" not in r.err


def test_power_w_stays_the_edges():
    """`power_w` meant the edge's before [device] had one: it still does; the device's is device.power_w."""
    sc = default_scenario().with_overrides(power_w="200", **{"device.power_w": "3"})
    assert sc.edge.power_w == 200.0 and sc.device.power_w == 3.0
