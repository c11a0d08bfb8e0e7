"""`pfmbench sweep`: the same rows whatever runs them, resume after an interruption, clean errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pfmbench.api import DEFAULT_POLICIES

ROOT = Path(__file__).resolve().parent.parent
# A 4x2 grid x 3 seeds x all six policies over the default scenario's synthetic trace, 300 requests a point.
GRID = ["--set-grid", "gpu_memory_gb=16,24,40,80", "--set-grid", "half_life_s=60,600", "--seeds", "1,2,3",
        "--set", "trace.requests=300"]


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from pfmbench.sweep import worker_pythonpath

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": worker_pythonpath()}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sweep, in this process."""
    from pfmbench.cli import main

    out = tmp_path_factory.mktemp("ref") / "ref.parquet"
    with pytest.raises(SystemExit) as e:
        main(["sweep", *GRID, "-o", str(out), "--quiet"])
    assert e.value.code in (0, None)
    return out


def test_reference_sweep_rows(reference):
    df = pl.read_parquet(reference)
    assert df.height == 4 * 2 * 3 * len(DEFAULT_POLICIES)  # `all`
    n = len(DEFAULT_POLICIES)
    assert df["policy"].to_list()[:n] == list(DEFAULT_POLICIES)
    assert df["gpu_memory_gb"].to_list()[::6 * n] == [16, 24, 40, 80]
    assert set(df["seed"]) == {1, 2, 3} and set(df["setting_trace_seed"]) == {1, 2, 3}
    assert (df["setting_edge_gpu_memory_gb"] == df["gpu_memory_gb"].cast(pl.Float64)).all()
    assert df["run_id"].n_unique() == 24
    assert not list(reference.parent.glob(".*parts"))  # merged and cleaned up


def test_same_rows_with_workers_and_ray(cli, reference, tmp_path, ray_local):
    for args in (["--workers", "2"], ["--executor", "ray"]):
        out = tmp_path / f"{args[-1]}.parquet"
        r = cli("sweep", *GRID, "-o", out, *args)
        assert r.code == 0, r.err
        assert r.out == ""  # nothing on stdout but results
        assert pl.read_parquet(out).equals(pl.read_parquet(reference)), args
        assert out.read_bytes() == reference.read_bytes(), args


def _start(out: Path, workers: int, delay: float) -> subprocess.Popen:
    env = dict(os.environ, PFMBENCH_SWEEP_POINT_DELAY=str(delay),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-m", "pfmbench", "sweep", *GRID, "-o", str(out), "--workers",
                             str(workers)], env=env, cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_parts(p: subprocess.Popen, parts: Path, n: int) -> None:
    deadline = time.monotonic() + 60
    while not (parts.is_dir() and len(list(parts.glob("*.parquet"))) >= n):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.05)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_sweep_resumes_to_the_same_rows(cli, reference, tmp_path, sig, code):
    out = tmp_path / "s.parquet"
    parts = tmp_path / ".s.parquet.parts"
    p = _start(out, 1, 0.3)  # slowed down so that it is stopped part-way, at a known place
    _wait_for_parts(p, parts, 3)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == code, stderr
    assert stdout == "" and "--resume" in stderr and "Traceback" not in stderr
    assert not out.exists()
    kept = sorted(parts.glob("*.parquet"))
    assert 3 <= len(kept) < 24 and not list(parts.glob("*.tmp"))
    kept[0].write_bytes(kept[0].read_bytes()[:100])  # a damaged part is redone, never merged
    r = cli("sweep", *GRID, "-o", out, "--resume")
    assert r.code == 0, r.err
    assert f"({len(kept) - 1} resumed)" in r.err
    assert out.read_bytes() == reference.read_bytes()
    assert not parts.exists()


def _children(pid: int, needle: str) -> list[int]:
    """Child processes of `pid` whose command line contains `needle` (from /proc: no pgrep needed)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and needle in cmd:
            out.append(int(d.name))
    return sorted(out)


def test_killed_worker_then_resume(cli, reference, tmp_path):
    out = tmp_path / "k.parquet"
    parts = tmp_path / ".k.parquet.parts"
    p = _start(out, 2, 0.3)
    _wait_for_parts(p, parts, 2)
    workers = _children(p.pid, "spawn_main")
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 1, stderr
    assert "worker process died" in stderr and "--resume" in stderr and "Traceback" not in stderr
    done = len(list(parts.glob("*.parquet")))
    assert 2 <= done < 24
    r = cli("sweep", *GRID, "-o", out, "--resume")  # in this process: the same rows, sooner
    assert r.code == 0, r.err
    assert f"({done} resumed)" in r.err
    assert out.read_bytes() == reference.read_bytes()


def test_sweep_file_zip_synth_and_policies(cli, tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text("""
policies = ["lc", "lru"]
seeds = [4]
traces = [{synth = {requests = 200, rate = 0.5, alpha = 1.0}}, {synth = {requests = 200, rate = 0.5, seed = 9}}]

[set]
"trace.requests" = 100

[grid.context]
half_life_s = [60, 600]

[[zip]]
preset = ["l4", "a100-80"]
gpu_memory_gb = [20, 40]
""")
    out = tmp_path / "s.parquet"
    r = cli("sweep", sweep, "-o", out, "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    df = pl.read_parquet(out)
    assert len(rows) == df.height == 2 * 2 * 2 * 2
    assert df.columns[:4] == ["run_id", "context.half_life_s", "preset", "gpu_memory_gb"]
    first = df.row(0, named=True)
    assert first["trace"] == "synth:alpha=1,rate=0.5,requests=200,seed=4"  # the point's seed
    assert df["trace"].to_list()[-1] == "synth:rate=0.5,requests=200,seed=9"  # its own seed wins
    assert first["n_requests"] == 200 and first["seed"] == 4
    assert set(zip(df["preset"], df["setting_edge_gpu_memory_gb"], df["setting_edge_tflops"], strict=True)) == \
        {("l4", 20.0, 121.0), ("a100-80", 40.0, 312.0)}
    from pfmbench.sweep import sweep_axes

    assert sweep_axes(out) == ["context.half_life_s", "preset", "gpu_memory_gb"]


def test_failing_point_is_reported_and_others_kept(cli, tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not parquet")
    good = tmp_path / "good.parquet"
    pl.DataFrame({"ts": [0.0, 1.0, 2.0], "model": ["GPT3-13B", "CLIP-ViT-L/14", "GPT3-13B"]}).write_parquet(good)
    sweep = tmp_path / "s.toml"
    sweep.write_text('policies = "lru,lc"\ntraces = ["good.parquet", "bad.parquet"]\n[grid]\ngpu_memory_gb = [40, 80]\n')
    out = tmp_path / "o.parquet"
    r = cli("sweep", sweep, "-o", out)
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert any("gpu_memory_gb=40" in x and "bad.parquet" in x and "cannot read Parquet" in x for x in lines), r.err
    assert "2 of 4 points failed" in r.err and "Traceback" not in r.err
    df = pl.read_parquet(out)
    assert df.height == 4 and set(df["trace"].to_list()) == {os.path.relpath(good)}
    bad.unlink()
    pl.DataFrame({"ts": [0.0], "model": ["GPT3-13B"]}).write_parquet(bad)  # fixed: --resume redoes only these
    r = cli("sweep", sweep, "-o", out, "--resume")
    assert r.code == 0 and "(2 resumed)" in r.err
    assert pl.read_parquet(out).height == 8


@pytest.mark.parametrize("text,needle", [
    ("[grid]\ngpu_ram = [1, 2]\n", "unknown scenario key 'gpu_ram'"),
    ("[grid]\ngpu_memory_gb = ['lots']\n", "gpu_memory_gb=lots"),
    ("[grid]\nutility = ['exp', 'cubic']\n", "utility"),
    ("[grid]\ngpu_memory_gb = 40\n", "must be a non-empty list"),
    ("[[zip]]\npreset = ['l4', 'l40s']\ngpu_memory_gb = [24]\n", "same length"),
    ("policies = ['lc', 'nope']\n", "unknown policy 'nope'"),
    ("traces = ['no/such.parquet']\n", "trace file not found"),
    ("traces = [{synth = {requests = 10, rat = 2}}]\n", "synth has no key 'rat'"),
    ("traces = [{synth = {requests = 10, rate = -1}}]\n", "synth: rate must be"),
    ("traces = [{synth = {requests = [10, 20]}}]\n", "synth requests must be a single value"),
    ("traces = [{synth = {requests = 10, rate = 'fast'}}]\n", "synth: "),
    ("seeds = [-1]\n", "seeds must be"),
    ("colour = 'red'\n", "unknown key 'colour'"),
    ("[grid]\nseed = [1, 2]\n", "seeds = [...]"),
    ("[grid]\ngpu_memory_gb = [40, 40]\n", "repeats point 0"),
    ("[grid\n", "cannot read sweep file"),
    # one scenario key under two spellings: one axis silently overrode the other at every point
    ("[grid]\ngpu_memory_gb = [40, 80]\n\"edge.gpu_memory_gb\" = [24, 32]\n", "given twice"),
    ("[set]\n\"edge.gpu_memory_gb\" = 24\n[grid]\ngpu_memory_gb = [40, 80]\n", "given twice"),
    ("[grid]\nrtt_s = [0.1]\n[[zip]]\n\"cloud.rtt_s\" = [0.2, 0.3]\n", "given twice"),
    # a [grid.cloud] sub-table and a dotted key for the same key: one list was silently dropped
    ("[grid]\n\"cloud.rtt_s\" = [0.2]\n[grid.cloud]\nrtt_s = [0.1, 0.3]\n", "given twice"),
])
def test_unusable_sweep_file_is_one_line_exit_2(cli, tmp_path, text, needle):
    sweep = tmp_path / "bad.toml"
    sweep.write_text(text)
    out = tmp_path / "o.parquet"
    r = cli("sweep", sweep, "-o", out)
    assert r.code == 2, r.err
    assert needle in r.err and str(sweep) in r.err, r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert list(tmp_path.iterdir()) == [sweep]  # nothing run, nothing written


def test_quick_form_errors_and_missing_ray(cli, tmp_path, monkeypatch):
    out = tmp_path / "o.parquet"
    r = cli("sweep", "--set-grid", "gpu_memory_gb", "-o", out)
    assert r.code == 2 and "--set-grid expects KEY=V1,V2" in r.err
    # no values: the grid had no points, the sweep said "0 points, 0 rows -> o.parquet", exit 0, no file
    r = cli("sweep", "--set-grid", "gpu_memory_gb=,", "-o", out)
    assert r.code == 2 and r.err == "error: --set-grid gpu_memory_gb: no values, got 'gpu_memory_gb=,'\n", r.err
    r = cli("sweep", tmp_path / "none.parquet", "-o", out)
    assert r.code == 2 and "trace file not found" in r.err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if pfmbench[ray] were not installed
    r = cli("sweep", "--set", "trace.requests=50", "-o", out, "--executor", "ray")
    assert r.code == 2 and r.err.strip() == "error: --executor ray needs Ray: pip install 'pfmbench[ray]'"
    assert not out.exists()


def test_quick_form_refuses_a_key_given_twice_under_two_spellings(cli, tmp_path):
    out = tmp_path / "o.parquet"
    for extra in (["--set", "edge.gpu_memory_gb=30"], ["--set-grid", "edge.gpu_memory_gb=30,50"]):
        r = cli("sweep", "--set-grid", "gpu_memory_gb=40,80", *extra, "-o", out, "--dry-run")
        assert r.code == 2 and "given twice" in r.err and r.err.count("\n") == 1, r.err
    assert not out.exists()


def test_quick_form_with_a_trace_matches_replay(cli, tmp_path):
    trace = tmp_path / "t.parquet"
    pl.DataFrame({"ts": [0.0, 1.0, 2.0, 3.0], "model": ["GPT3-13B", "CLIP-ViT-L/14", "GPT3-13B", "UniFormer-S"],
                  "task": ["translation", None, "superglue", "pose_estimation"]}).write_parquet(trace)
    out = tmp_path / "s.parquet"
    assert cli("sweep", trace, "--set-grid", "gpu_memory_gb=40,80", "-p", "lc,lfu", "-o", out, "-q").code == 0
    rows = json.loads(cli("replay", trace, "--gpu-memory", "40", "-p", "lc,lfu", "--json").out)
    df = pl.read_parquet(out).filter(pl.col("gpu_memory_gb") == 40)
    assert df["trace"].to_list() == [str(trace)] * 2
    for row, swept in zip(rows, df.to_dicts(), strict=True):
        assert {k: v for k, v in swept.items() if k in row} == row


def test_dry_run_lists_points_and_runs_nothing(cli, tmp_path):
    r = cli("sweep", *GRID, "--dry-run")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert len(lines) == 24 and lines[0].split("\t")[2] == "gpu_memory_gb=16 half_life_s=60 trace=scenario seed=1"
    j = __import__("json").loads(cli("sweep", *GRID, "--dry-run", "--json").out)
    assert [p["run_id"] for p in j] == [x.split("\t")[1] for x in lines]
    assert cli("sweep", *GRID).code == 2  # no output file
    assert not list(tmp_path.iterdir())


def test_output_rules_refuse_an_input_stdout_twice_and_an_empty_name(cli, tmp_path):
    """The sweep's -o follows every command's output rules: its scenario or catalog (given, named by the
    scenario or by a grid key) was silently replaced by the Parquet output."""
    scen = tmp_path / "s.toml"
    scen.write_text(cli("scenario", "show", "--toml").out)
    cat = tmp_path / "c.csv"
    cat.write_text(cli("models", "--template").out)
    named = tmp_path / "named.toml"
    named.write_text(scen.read_text().replace('path = "table1"', 'path = "c.csv"'))
    before = {p: p.read_bytes() for p in (scen, cat, named)}
    quick = ["--set-grid", "gpu_memory_gb=40", "--set", "trace.requests=50", "-p", "lru"]
    for extra, out in ((["--scenario", scen], scen), (["--catalog", cat], cat), (["--scenario", named], cat),
                       (["--set-grid", f"catalog.path={cat},table1"], cat)):
        args = quick if "--set-grid" not in extra else quick[2:]
        r = cli("sweep", *args, *extra, "-o", out)
        assert r.code == 2 and "is also an input" in r.err and r.err.count("\n") == 1, r.err
    assert {p: p.read_bytes() for p in before} == before
    r = cli("sweep", *quick, "-o", "-", "--json")
    assert r.code == 2 and "both write to stdout" in r.err and r.out == ""
    r = cli("sweep", *quick, "-o", "")
    assert r.code == 2 and r.err.strip() == "error: -o: the output path is empty"
