"""`pfmbench compare` and `pfmbench check`: matching rows, regressions named in a table, clean exit codes."""

import json
from pathlib import Path

import polars as pl
import pytest

from pfmbench.results import REPORT_METRICS

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--set", "trace.requests=300", "--policy", "lc,lfu,cloud"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A sweep over two GPU sizes and a replay --out of one of them, in this process."""
    from pfmbench.cli import main

    d = tmp_path_factory.mktemp("cmp")
    for args in (["sweep", *SMALL, "--set-grid", "gpu_memory_gb=40,80", "-o", str(d / "sweep.parquet"), "-q"],
                 ["replay", *SMALL, "--gpu-memory", "40", "--out", str(d / "replay.parquet"), "--json"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code in (0, None)
    return d


def _edit(src: Path, dst: Path, policy: str, column: str, factor: float) -> Path:
    df = pl.read_parquet(src)
    df.with_columns(pl.when(pl.col("policy") == policy).then(pl.col(column) * factor).otherwise(pl.col(column))
                    .alias(column)).write_parquet(dst)
    return dst


def test_compare_sweep_with_replay_out(cli, files):
    r = cli("compare", files / "replay.parquet", files / "sweep.parquet", "--json", "--metric", "system_cost")
    assert r.code == 0, r.err
    res = json.loads(r.out)
    assert len(res["rows"]) == 3 and {x["policy"] for x in res["rows"]} == {"lc", "lfu", "cloud"}
    assert all(x["abs_diff"] == 0 and x["a"] == x["b"] for x in res["rows"])  # same run, same numbers
    assert res["only_a"] == [] and len(res["only_b"]) == 3  # the 80 GB rows
    assert {x["setting_edge_gpu_memory_gb"] for x in res["only_b"]} == {80.0}


def test_compare_table_shows_differences(cli, files, tmp_path):
    b = _edit(files / "sweep.parquet", tmp_path / "b.parquet", "lfu", "hit_ratio", 0.5)
    r = cli("compare", files / "sweep.parquet", b, "--changed")
    assert r.code == 0, r.err
    lines = [x for x in r.out.splitlines() if "hit_ratio" in x]
    assert len(lines) == 2 and all("lfu" in x and "-50.00%" in x for x in lines)
    assert f"2 of {6 * len(REPORT_METRICS)} values differ" in r.out  # 6 rows x the report's metrics
    r = cli("compare", files / "sweep.parquet", b, "--metric", "no_such_metric")
    assert r.code == 2 and "no metric 'no_such_metric'" in r.err


def test_check_same_is_ok(cli, files):
    r = cli("check", files / "sweep.parquet", "--baseline", files / "sweep.parquet")
    assert r.code == 0 and r.out.startswith(f"ok: 6 rows x {len(REPORT_METRICS)} metrics within 1%")
    assert cli("check", files / "replay.parquet", "--baseline", files / "sweep.parquet", "-q").code == 1  # rows missing
    assert cli("check", files / "sweep.parquet", "--baseline", files / "replay.parquet", "-q").code == 0  # new rows only


def test_nan_equals_nan_in_a_file_and_itself(cli, files, tmp_path):
    """A NaN metric (a hand-edited or foreign file) made `check F --baseline F` fail with 'changed' and
    `compare F F --changed` list it, although nothing differs."""
    f = _edit(files / "sweep.parquet", tmp_path / "nan.parquet", "lc", "system_cost", float("nan"))
    r = cli("check", f, "--baseline", f)
    assert r.code == 0 and r.out.startswith("ok: 6 rows"), r.out
    r = cli("compare", f, f, "--changed", "--json")
    assert r.code == 0 and json.loads(r.out)["rows"] == []
    r = cli("check", f, "--baseline", files / "sweep.parquet", "-q")  # NaN against a number still moved
    assert r.code == 1


def test_check_names_a_changed_cost(cli, files, tmp_path):
    res = _edit(files / "sweep.parquet", tmp_path / "res.parquet", "lc", "switching_cost", 1.05)
    r = cli("check", res, "--baseline", files / "sweep.parquet")
    assert r.code == 1
    rows = [x for x in r.out.splitlines() if "switching_cost" in x]
    assert len(rows) == 2 and all("lc" in x and "+5.00%" in x and "regressed" in x for x in rows), r.out
    assert "FAILED: 2 regressed" in r.out and "--update" in r.out
    assert cli("check", res, "--baseline", files / "sweep.parquet", "--tolerance", "0.06").code == 0
    better = _edit(files / "sweep.parquet", tmp_path / "better.parquet", "lfu", "hit_ratio", 1.5)
    j = json.loads(cli("check", better, "--baseline", files / "sweep.parquet", "--json").out)
    assert not j["ok"] and {c["status"] for c in j["changes"]} == {"improved"}


def test_check_fails_when_a_policy_costs_more(cli, files, tmp_path, monkeypatch):
    """A deliberate change in one policy's switching cost, through a real sweep, fails the check."""
    from pfmbench import api

    real = api.summarize

    def costlier_lc(counts, sums, hist, scenario, policy, *args, **kw):
        row = real(counts, sums, hist, scenario, policy, *args, **kw)
        if policy == "lc":
            row["switching_cost"] *= 1.1
            row["system_cost"] += 0.1 * row["switching_cost"] / 1.1
        return row

    monkeypatch.setattr(api, "summarize", costlier_lc)
    out = tmp_path / "new.parquet"
    assert cli("sweep", *SMALL, "--set-grid", "gpu_memory_gb=40,80", "-o", out, "-q").code == 0
    r = cli("check", out, "--baseline", files / "sweep.parquet")
    assert r.code == 1
    table = [line for line in r.out.splitlines() if "│" in line and "regressed" in line]
    assert any("switching_cost" in line for line in table) and any("system_cost" in line for line in table), r.out
    j = json.loads(cli("check", out, "--baseline", files / "sweep.parquet", "--json").out)
    assert {(c["policy"], c["metric"], c["status"]) for c in j["changes"]} == {
        ("lc", m, "regressed") for m in ("switching_cost", "system_cost")}


@pytest.mark.parametrize("make,needle", [
    (lambda d, t: (t / "none.parquet", d / "sweep.parquet"), "results file not found"),
    (lambda d, t: (d / "sweep.parquet", t / "none.parquet"), "baseline not found"),
    (lambda d, t: (_bytes(t / "x.parquet"), d / "sweep.parquet"), "cannot read Parquet"),
    (lambda d, t: (_frame(t / "np.parquet", pl.DataFrame({"a": [1]})), d / "sweep.parquet"), "no 'policy' column"),
    (lambda d, t: (_edit(d / "sweep.parquet", t / "s.parquet", "lc", "setting_cloud_rtt_s", 2).with_name("s.parquet"),
                   _only(d / "sweep.parquet", t / "b.parquet", "lc")), "no row matches the baseline"),
    (lambda d, t: (d / "sweep.parquet", _frame(t / "nometric.parquet", pl.read_parquet(d / "sweep.parquet")
                                               .drop("hit_ratio"))), "no metric 'hit_ratio'"),
])
def test_check_unusable_input_is_exit_2(cli, files, tmp_path, make, needle):
    res, base = make(files, tmp_path)
    r = cli("check", res, "--baseline", base)
    assert r.code == 2 and needle in r.err, r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    r = cli("check", files / "sweep.parquet", "--baseline", files / "sweep.parquet", "--metric", "nope")
    assert r.code == 2 and "no metric 'nope'" in r.err


def test_a_per_request_log_is_not_compared_as_summary_rows(cli, files, tmp_path):
    # A --requests-out log has a policy column and numeric columns named like summary metrics
    # (switching_cost, cloud_cost, evictions): its first request was compared with a run's totals, exit 0.
    log = tmp_path / "requests.parquet"
    r = cli("replay", *SMALL, "--gpu-memory", "40", "--requests-out", log, "--json")
    assert r.code == 0, r.err
    for args in (["compare", files / "replay.parquet", log], ["compare", log, log],
                 ["check", log, "--baseline", files / "replay.parquet"],
                 ["check", files / "replay.parquet", "--baseline", log]):
        r = cli(*args)
        assert r.code == 2 and "per-request log" in r.err and str(log) in r.err, (args, r.out, r.err)
        assert r.err.count("\n") == 1 and r.out == ""


def _bytes(p: Path) -> Path:
    p.write_bytes(b"PAR1 garbage")
    return p


def _frame(p: Path, df) -> Path:
    df.write_parquet(p)
    return p


def _only(src: Path, dst: Path, policy: str) -> Path:
    pl.read_parquet(src).filter(pl.col("policy") == policy).write_parquet(dst)
    return dst


def test_check_update_rewrites_baseline_atomically(cli, files, tmp_path):
    base = tmp_path / "baseline.parquet"
    r = cli("check", files / "sweep.parquet", "--baseline", base)
    assert r.code == 2 and "--update" in r.err
    assert cli("check", files / "sweep.parquet", "--baseline", base, "--update").code == 0
    assert base.read_bytes() == (files / "sweep.parquet").read_bytes()
    changed = _edit(files / "sweep.parquet", tmp_path / "c.parquet", "lc", "cloud_cost", 3)
    assert cli("check", changed, "--baseline", base, "-q").code == 1
    assert cli("check", changed, "--baseline", base, "--update", "-q").code == 0
    assert cli("check", changed, "--baseline", base, "-q").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.parquet", "c.parquet"]  # no temporary files


def test_check_update_answers_json_and_refuses_a_bad_tolerance(cli, files, tmp_path):
    base = tmp_path / "baseline.parquet"
    r = cli("check", files / "sweep.parquet", "--baseline", base, "--update", "--tolerance", "-1")
    assert r.code == 2 and "--tolerance" in r.err and not base.exists()
    r = cli("check", files / "sweep.parquet", "--baseline", base, "--update", "--json")
    assert r.code == 0, r.err
    res = json.loads(r.out)
    assert res["updated"] is True and res["rows"] == pl.read_parquet(files / "sweep.parquet").height
    assert base.read_bytes() == (files / "sweep.parquet").read_bytes()


def test_ci_sweep_file_and_baseline_agree_in_shape():
    """reports/ci.toml expands to the committed baseline's rows (the values are .ci/run's business)."""
    from pfmbench.sweep import expand, load_sweep_file

    points = expand(load_sweep_file(ROOT / "reports" / "ci.toml"))
    base = pl.read_parquet(ROOT / "reports" / "baseline-ci.parquet")
    assert base.height == sum(len(p.policies) for p in points)
    assert cli_ok_on_itself(base)


def cli_ok_on_itself(base) -> bool:
    from pfmbench.compare import check

    return check(ROOT / "reports" / "baseline-ci.parquet", ROOT / "reports" / "baseline-ci.parquet")["ok"]
