"""Hardening, second pass (issue 17): concurrency, overflow, full disks, unbounded sizes, hostile environments.

Each class is closed at every entry point, so most tests here are parametrized over the entry points.
"""

import fcntl
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--set", "trace.requests=60", "--policy", "lru,lc"]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    from pfmbench.cli import main

    p = tmp_path_factory.mktemp("h2") / "t.parquet"
    with pytest.raises(SystemExit) as e:
        main(["synth", "-o", str(p), "--requests", "80"])
    assert e.value.code in (0, None)
    return p


@pytest.fixture(scope="module")
def results(tmp_path_factory, trace):
    from pfmbench.cli import main

    d = tmp_path_factory.mktemp("h2r")
    with pytest.raises(SystemExit) as e:
        main(["replay", str(trace), "-p", "lru,lc", "--out", str(d / "r.parquet"), "--requests-out",
              str(d / "log.parquet"), "--json"])
    assert e.value.code in (0, None)
    return d


# -- 1. one writer per output -------------------------------------------------------------------------------

def _writers(trace, results, out):
    """Every command that writes a file, writing `out`."""
    return {
        "replay --out": ["replay", trace, "-p", "lru", "--out", out],
        "replay --requests-out": ["replay", trace, "-p", "lru", "--requests-out", out],
        "sweep -o": ["sweep", *SMALL, "--set-grid", "gpu_memory_gb=16,40", "-o", out, "-q"],
        "synth -o": ["synth", "-o", out, "--requests", "50"],
        "export -o": ["export", "libcachesim", trace, "-o", out],
        "plot -o": ["plot", results / "r.parquet", "-o", out],
    }


WRITERS = ["replay --out", "replay --requests-out", "sweep -o", "synth -o", "export -o", "plot -o"]


@pytest.mark.parametrize("which", WRITERS)
def test_a_second_writer_of_one_output_is_refused_before_any_work(cli, trace, results, tmp_path, which):
    name = "out.png" if which.startswith("plot") else "out.csv" if which.startswith("export") else "out.parquet"
    out = tmp_path / name
    out.write_bytes(b"the first writer's file")
    # Another run holds the output's lock (flock locks belong to the open file: a second descriptor conflicts).
    fd = os.open(tmp_path / f".{name}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = cli(*_writers(trace, results, out)[which])
    finally:
        os.close(fd)
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1 and "another pfmbench run is writing this output" in r.err
    assert out.read_bytes() == b"the first writer's file"
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / f".{name}.parts").exists()
    # Free again: the same command runs, and leaves no lock file behind.
    (tmp_path / f".{name}.lock").unlink()
    r = cli(*_writers(trace, results, out)[which])
    assert r.code == 0, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_two_sweeps_into_one_output_never_lose_rows(cli, tmp_path):
    """A real second process: the first sweep's parts are neither cleared nor merged by the second."""
    out = tmp_path / "s.parquet"
    parts = tmp_path / ".s.parquet.parts"
    grid = ["--set-grid", "gpu_memory_gb=16,24,40,80", *SMALL]
    env = dict(os.environ, PFMBENCH_SWEEP_POINT_DELAY="0.5",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, "-m", "pfmbench", "sweep", *grid, "-o", str(out), "-q"], env=env,
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (parts.is_dir() and list(parts.glob("*.parquet"))):  # the first has written a part: it runs
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, "the first sweep made no progress"
        time.sleep(0.05)
    r = cli("sweep", "--set-grid", "gpu_memory_gb=8,12", *SMALL, "-o", out, "-q")
    r2 = cli("sweep", *grid, "-o", out, "--resume", "-q")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    for x in (r, r2):
        assert x.code == 2 and "another pfmbench run is writing this output" in x.err, x.err
    df = pl.read_parquet(out)
    assert df.height == 8 and sorted(set(df["gpu_memory_gb"].to_list())) == [16, 24, 40, 80]
    assert not parts.exists() and sorted(x.name for x in tmp_path.iterdir()) == ["s.parquet"]


def test_library_writers_lock_too(tmp_path):
    from pfmbench.errors import InputError
    from pfmbench.fileio import atomic_path

    out = tmp_path / "x.bin"
    fd = os.open(tmp_path / ".x.bin.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(InputError, match="another pfmbench run"), atomic_path(out) as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.close(fd)
    assert not out.exists()
    with atomic_path(out) as tmp:  # and re-entrant in one process
        with atomic_path(out) as tmp2:
            tmp2.write_bytes(b"inner")
        tmp.write_bytes(b"outer")
    assert out.read_bytes() == b"outer" and sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


# -- 1. dates a 64-bit nanosecond clock cannot hold -----------------------------------------------------------

@pytest.mark.parametrize("fmt,when,ok", [
    ("csv", "2300-01-01 00:00:00", False), ("csv", "1600-06-01 12:00:00", False),
    ("csv", "2262-04-11 23:47:16", True), ("csv", "1677-09-21 00:12:44", True),
    ("csv", "2262-04-11 23:47:17", False), ("csv", "1677-09-21 00:12:43", False),
    ("azure", "2300-01-01 00:00:00.1234567", False), ("azure", "1500-01-01 00:00:00.0", False),
    ("alibaba", "2262-05-01 00:00:00", False), ("alibaba", "1066-10-14 09:00:00", False),
])
def test_dates_outside_the_nanosecond_range_name_their_line(cli, tmp_path, fmt, when, ok):
    src = tmp_path / "src.csv"
    if fmt == "csv":
        src.write_text(f"ts,model\n2023-01-01 00:00:00,GPT3-13B\n{when},GPT3-13B\n2023-01-01 00:00:01,GPT3-13B\n")
        args = ["import", "csv", src]
    elif fmt == "azure":
        src.write_text(f"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,10,20\n{when},5,5\n"
                       "2023-11-16 18:17:04.0000000,1,1\n")
        args = ["import", "azure-llm", src]
    else:
        head = "gmt_create,predict_type,predict_status,num_images_per_prompt,num_inference_steps," \
               "checkpoint_model_version_id\n"
        src.write_text(head + "2025-01-01 00:00:00,TXT_2_IMG,SUCCEED,1,20,m1\n"
                       f"{when},TXT_2_IMG,SUCCEED,1,20,m1\n2025-01-01 00:00:05,TXT_2_IMG,SUCCEED,1,20,m1\n")
        args = ["import", "alibaba-genai", src]
    out = tmp_path / "o.parquet"
    r = cli(*args, "-o", out)
    if ok:
        assert r.code == 0, r.err
        ts = pl.read_parquet(out)["ts"].to_list()
        assert ts == sorted(ts) and ts[0] == 0.0
        return
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert "line 3: " in r.err and "64-bit nanosecond" in r.err and when in r.err
    assert not out.exists()


def test_dates_centuries_apart_keep_their_order_and_distance(cli, tmp_path):
    src = tmp_path / "src.csv"
    src.write_text("ts,model\n2260-01-01 00:00:00,GPT3-13B\n1680-01-01 00:00:00.5,GPT3-13B\n")
    r = cli("import", "csv", src, "-o", tmp_path / "o.parquet")
    assert r.code == 0, r.err
    ts = pl.read_parquet(tmp_path / "o.parquet")["ts"].to_list()
    # 580 Gregorian years less half a second: more than int64 nanoseconds can hold as one difference.
    days = sum(366 if (y % 4 == 0 and (y % 100 or y % 400 == 0)) else 365 for y in range(1680, 2260))
    assert ts == [0.0, days * 86400 - 0.5]


# -- 1. latency percentiles beyond the histogram ----------------------------------------------------------------

def _hist(values):
    from pfmbench.engine import record as C

    h = np.zeros(C.HIST_SIZE, np.int64)
    for v in values:
        h[C.hist_index(v)] += 1
    return h


@given(st.lists(st.one_of(st.floats(1e-6, 1e6), st.floats(1e6, 1e300), st.floats(2.0**30, 2.0**33)),
                min_size=1, max_size=200),
       st.sampled_from([50, 95, 99, 100]))
def test_a_percentile_is_right_or_empty_never_saturated(values, q):
    from pfmbench.results import HIST_TOP_S, percentile

    got = percentile(_hist(values), q, max(values))
    exact = sorted(values)[max(1, math.ceil(q / 100 * len(values))) - 1]
    if got is None:  # only where the histogram cannot tell
        assert exact >= HIST_TOP_S * (1 - 1 / 2048)
    else:
        assert got == pytest.approx(exact, rel=1e-3), (got, exact)


def test_a_run_with_latencies_beyond_the_histogram_says_so():
    from pfmbench.results import HIST_TOP_S, run_notes
    from pfmbench.scenario import load_scenario

    base = {"loads": 1, "evictions": 1, "declined_loads": 0, "dispatched_to_cloud": 0, "preloads": 0}
    notes = run_notes({**base, "edge_latency_max_s": 3e12, "inference_latency_max_edge_s": 3e12}, load_scenario(None))
    assert any("beyond the latency histogram" in n for n in notes)
    assert not any("histogram" in n for n in run_notes({**base, "edge_latency_max_s": HIST_TOP_S / 2},
                                                       load_scenario(None)))


# -- 2. plot follows the output rules -----------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "directory", "missing-folder", "device"])
def test_plot_never_overwrites_its_input(cli, results, tmp_path, how):
    src = tmp_path / "r.png"  # a results file whose name ends like a figure
    src.write_bytes((results / "r.parquet").read_bytes())
    before = src.read_bytes()
    out = {"same": src, "symlink": tmp_path / "l.png", "hardlink": tmp_path / "h.png",
           "directory": tmp_path / "d.png", "missing-folder": tmp_path / "no" / "x.png", "device": "/dev/null.png"}[how]
    if how == "symlink":
        out.symlink_to(src)
    elif how == "hardlink":
        os.link(src, out)
    elif how == "directory":
        out.mkdir()
    if how == "device":
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full")
        out = tmp_path / "dev.png"
        out.symlink_to("/dev/full")
    r = cli("plot", src, "-o", out)
    assert r.code == 2 and r.err.count("\n") == 1, r.err
    assert src.read_bytes() == before


@pytest.mark.parametrize("bins", ["0", "-3", "10001", "1" + "0" * 400])
def test_plot_bins_are_bounded(cli, results, tmp_path, bins):
    r = cli("plot", results / "log.parquet", "-o", tmp_path / "t.png", "--bins", bins)
    assert r.code == 2 and r.err.count("\n") == 1 and "--bins" in r.err and "Traceback" not in r.err, r.err
    assert not (tmp_path / "t.png").exists()


# -- 3. integers too large for any type: one line, exit 2 -------------------------------------------------------

HUGE = "9" * 400


def _integer_keys():
    """Every integer key of a scenario, as `section.key` (generated: a key added later is covered too)."""
    from dataclasses import fields

    from pfmbench.scenario import Scenario

    sc = Scenario()
    keys = []
    for sect in Scenario.SECTIONS:
        for f in fields(getattr(sc, sect)):
            v = getattr(getattr(sc, sect), f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(f"{sect}.{f.name}")
    return keys


@pytest.mark.parametrize("key", _integer_keys())
@pytest.mark.parametrize("how", ["--set", "toml", "grid"])
@pytest.mark.parametrize("sign", ["", "-"])
def test_a_400_digit_number_for_any_numeric_key_is_one_line(cli, tmp_path, key, how, sign):
    value = sign + HUGE
    if how == "--set":
        r = cli("replay", "--set", f"{key}={value}", "-p", "lru")
    elif how == "toml":
        sect, name = key.split(".")
        (tmp_path / "s.toml").write_text(f"[{sect}]\n{name} = {value}\n")
        r = cli("replay", "--scenario", tmp_path / "s.toml", "-p", "lru")
    else:
        r = cli("sweep", "--set-grid", f"{key}={value}", "-p", "lru", "-o", tmp_path / "o.parquet")
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err and len(r.err) < 600, r.err
    assert key.split(".")[1] in r.err
    assert not list(tmp_path.glob("*.parquet"))


@pytest.mark.parametrize("args", [
    ["replay", "--seed", HUGE], ["replay", "--set", f"seed={HUGE}"], ["synth", "-o", "{out}", "--requests", HUGE],
    ["synth", "-o", "{out}", "--requests", "10", "--seed", HUGE], ["sweep", "--seeds", f"1,{HUGE}", "-o", "{out}"],
    ["sweep", "--set", f"trace.requests={HUGE}", "-o", "{out}"], ["table2", "--runs", HUGE],
    ["plot", "{out}", "-o", "{out}.png", "--bins", HUGE], ["trace", "validate", "{out}", "--limit", HUGE],
])
def test_a_400_digit_option_is_one_line(cli, tmp_path, args):
    out = tmp_path / "o.parquet"
    r = cli(*[a.replace("{out}", str(out)) for a in args])
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err and len(r.err) < 600, r.err


def test_a_400_digit_seed_in_a_sweep_file_is_one_short_line(cli, tmp_path):
    (tmp_path / "s.toml").write_text(f"seeds = [{HUGE}]\n[grid]\ngpu_memory_gb = [16]\n")
    r = cli("sweep", tmp_path / "s.toml", "-o", tmp_path / "o.parquet")
    assert r.code == 2 and r.err.count("\n") == 1 and len(r.err) < 600 and "400 digits" in r.err, r.err


# -- 3. a full disk while writing: one line, nothing left behind ------------------------------------------------

def _run_with_file_limit(args, cwd, limit=3000):
    """pfmbench in a process whose files cannot grow beyond `limit` bytes (as on a full disk: EFBIG)."""
    import resource
    import signal

    def cap():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "pfmbench", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, preexec_fn=cap, timeout=600, check=False)


@pytest.mark.parametrize("which", ["replay --out", "replay --requests-out", "sweep -o", "synth -o", "export -o",
                                   "plot -o"])
def test_a_full_disk_is_one_line_and_leaves_nothing(trace, results, tmp_path, which):
    name = "out.png" if which.startswith("plot") else "out.csv" if which.startswith("export") else "out.parquet"
    args = _writers(trace, results, name)[which]
    if which.startswith("synth"):
        args = ["synth", "-o", name, "--requests", "20000"]
    r = _run_with_file_limit(args, tmp_path, limit={"plot": 1000, "export": 300}.get(which.split()[0], 3000))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "cannot write" in r.stderr and "File too large" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []  # no output, temporary file, part folder or lock file


# -- 3. sizes with a ceiling --------------------------------------------------------------------------------------

def test_a_huge_grid_is_refused_before_it_is_expanded(cli, tmp_path, monkeypatch):
    import itertools

    def boom(*a, **k):
        raise AssertionError("the grid was expanded")

    monkeypatch.setattr(itertools, "product", boom)
    values = ",".join(map(str, range(1, 1001)))
    r = cli("sweep", "--set-grid", f"gpu_memory_gb={values}", "--set-grid", f"half_life_s={values}",
            "--seeds", values, "-o", tmp_path / "o.parquet")
    assert r.code == 2 and "1,000,000,000 points, beyond the limit" in r.err and r.err.count("\n") == 1, r.err


@pytest.mark.parametrize("grid,requests", [(["gpu_memory_gb=" + ",".join(map(str, range(1, 41))),
                                             "half_life_s=" + ",".join(map(str, range(1, 26)))], "100"),
                                           (["gpu_memory_gb=16,40"], "100000000")])
def test_a_large_sweep_needs_yes_and_says_how_large(cli, tmp_path, grid, requests, monkeypatch):
    import pfmbench.sweep as S
    import pfmbench.sweep.runner as R

    ran = []
    monkeypatch.setattr(R, "_run_locked", lambda *a, **k: ran.append(len(a[1])) or S.SweepResult(points=len(a[1])))
    args = ["sweep", *[x for g in grid for x in ("--set-grid", g)], "--set", f"trace.requests={requests}", "-p",
            "lru,lc,lfu,fifo,cloud", "-o", tmp_path / "o.parquet", "-q"]
    r = cli(*args)
    assert r.code == 2 and "a large sweep" in r.err and "--yes" in r.err and "requests replayed" in r.err, r.err
    assert ran == []
    r = cli(*args, "--yes")
    assert r.code == 0, r.err
    assert ran and ran[0] >= 2


# -- 4. hostile environments -------------------------------------------------------------------------------------

def _pfmbench(args, cwd, env=None, pythonpath=ROOT, **kw):
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pfmbench", *map(str, args)], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=900, check=False, **kw)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    """A copy of this pfmbench, with no compiled cache of its own (so that tests can break its cache)."""
    import shutil

    d = tmp_path_factory.mktemp("pkg")
    shutil.copytree(ROOT / "pfmbench", d / "pfmbench", ignore=shutil.ignore_patterns("__pycache__"))
    return d


def test_no_writable_cache_folder_compiles_in_memory_with_one_warning(package_copy, trace, tmp_path):
    import shutil

    ro = tmp_path / "ro"
    shutil.copytree(package_copy / "pfmbench", ro / "pfmbench")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    for d in [p for p in (ro / "pfmbench").rglob("*") if p.is_dir()] + [ro / "pfmbench"]:
        (d / "__pycache__").write_text("")  # a file where every cache folder would go: none can be made
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(HOME=str(blocker), XDG_CACHE_HOME=str(blocker / "cache"), PYTHONDONTWRITEBYTECODE="1",
               TMPDIR=str(tmp_path))
    r = _pfmbench(["replay", trace, "-p", "lru,lc", "--json"], tmp_path, env, pythonpath=ro)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("warning: cannot write numba's compiled cache"), r.stderr
    assert [row["policy"] for row in __import__("json").loads(r.stdout)] == ["lru", "lc"]
    assert not list(tmp_path.glob("pfmbench-numba-*"))  # its temporary folder is gone


def test_a_damaged_compiled_cache_is_compiled_again(package_copy, trace, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    first = _pfmbench(["replay", trace, "-p", "lru,lc", "--json"], tmp_path, env, pythonpath=package_copy)
    assert first.returncode == 0, first.stderr[-2000:]
    cached = [p for p in (package_copy / "pfmbench").rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert cached
    for p in cached:
        p.write_bytes(p.read_bytes()[:7])  # truncated, as by a full disk or a copy cut short
    again = _pfmbench(["replay", trace, "-p", "lru,lc", "--json"], tmp_path, env, pythonpath=package_copy)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout == first.stdout
    assert again.stderr.count("\n") == 1 and "compiled cache is damaged" in again.stderr, again.stderr
    third = _pfmbench(["replay", trace, "-p", "lru,lc", "--json"], tmp_path, env, pythonpath=package_copy)
    assert third.returncode == 0 and third.stderr == "" and third.stdout == first.stdout  # replaced


@pytest.mark.parametrize("args", [["replay", "{trace}", "-p", "lru"], ["replay", "{trace}", "-p", "lru", "--json"],
                                  ["models"], ["trace", "inspect", "{trace}"], ["scenario", "show"]])
def test_stdout_closed_is_not_a_traceback(trace, tmp_path, args):
    p = subprocess.run([sys.executable, "-c", ("import os, subprocess, sys; os.close(1); "
                        "sys.exit(subprocess.run(sys.argv[1:], close_fds=False).returncode)"),
                        sys.executable, "-m", "pfmbench", *[a.replace("{trace}", str(trace)) for a in args]],
                       cwd=tmp_path, stderr=subprocess.PIPE, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), check=False)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.splitlines()[0] == \
        "warning: stdout is closed: what pfmbench prints there is discarded", p.stderr


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("args", [["replay", "{trace}", "-p", "lru"], ["models"], ["models", "--wide"],
                                  ["trace", "inspect", "{trace}"], ["replay", "{trace}", "-p", "lru", "--json"]])
def test_a_non_utf8_output_encoding_is_not_a_traceback(trace, tmp_path, encoding, args):
    env = dict(os.environ, PYTHONIOENCODING=encoding)
    r = _pfmbench([a.replace("{trace}", str(trace)) for a in args], tmp_path, env, errors="replace")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-1500:]
    assert r.stdout.strip()


@pytest.mark.parametrize("name,value", [("PFMBENCH_STREAM_MIN_ROWS", "abc"), ("PFMBENCH_STREAM_MIN_ROWS", "-5"),
                                        ("PFMBENCH_STREAM_MIN_ROWS", "9" * 400),
                                        ("PFMBENCH_SWEEP_POINT_DELAY", "soon"),
                                        ("PFMBENCH_SWEEP_POINT_DELAY", "nan")])
def test_a_bad_pfmbench_variable_is_one_warning_and_the_default(tmp_path, name, value):
    env = dict(os.environ, **{name: value})
    r = _pfmbench(["sweep", "--set-grid", "gpu_memory_gb=16,40", *SMALL, "-o", tmp_path / "s.parquet", "-q"],
                  tmp_path, env)
    assert r.returncode == 0, r.stderr[-1500:]
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"warning: {name}=") and "default" in r.stderr, r.stderr
    assert pl.read_parquet(tmp_path / "s.parquet").height == 4


# -- 5. drop-in policies raising any BaseException, and SIGHUP ------------------------------------------------------

DROP_INS = {
    "key raises BaseException": "class Boom(BaseException):\n    pass\n\nclass P(Policy):\n    name = 'boom'\n"
                                "    def key(self, entry, now):\n        raise Boom('no key')\n",
    "key raises KeyboardInterrupt": "class P(Policy):\n    name = 'kbd'\n    def key(self, entry, now):\n"
                                    "        raise KeyboardInterrupt('from the policy')\n",
    "key raises GeneratorExit": "class P(Policy):\n    name = 'gen'\n    def key(self, entry, now):\n"
                                "        raise GeneratorExit()\n",
    "import raises KeyboardInterrupt": "raise KeyboardInterrupt\n",
    "import raises BaseException": "class B(BaseException):\n    pass\n\nraise B('at import')\n",
}


@pytest.mark.parametrize("what", list(DROP_INS))
def test_a_drop_in_raising_any_base_exception_is_its_error(cli, trace, tmp_path, what):
    f = tmp_path / "mine.py"
    f.write_text("from pfmbench.policies import Policy\n\n" + DROP_INS[what])
    out = tmp_path / "r.parquet"
    r = cli("replay", trace, "-p", f"lru,{f}", "--gpu-memory", "35", "--out", out)
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1 and str(f) in r.err and "interrupted" not in r.err, r.err
    assert not out.exists()


def test_sighup_removes_temporary_files(tmp_path):
    import signal

    p = subprocess.Popen([sys.executable, "-m", "pfmbench", "synth", "-o", "big.parquet", "--requests", "300000000",
                          "--force"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".big.parquet.*.tmp")):
        assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    p.send_signal(signal.SIGHUP)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 129, err
    assert err.strip().splitlines()[-1] == "error: hung up (SIGHUP); no output written", err
    assert list(tmp_path.iterdir()) == []


# -- 6. messages: exactly one line, however odd the names ------------------------------------------------------------

NAMES = ["a\nb", "tab\there", "esc\x1b[31mred", "cr\rreturn", "x" * 1_000_000, "é" * 5000 + "\n"]


@pytest.mark.parametrize("name", NAMES, ids=["newline", "tab", "escape", "cr", "megabyte", "long-unicode"])
@pytest.mark.parametrize("where", ["trace path", "model name", "--set value", "policy name"])
def test_every_error_is_one_short_line(cli, tmp_path, name, where):
    if where == "trace path":
        r = cli("replay", tmp_path / (name[:200] if len(name) > 255 else name).replace("/", "_"))
    elif where == "model name":
        t = tmp_path / "t.parquet"
        pl.DataFrame({"ts": [0.0, 1.0], "model": ["GPT3-13B", name]}).write_parquet(t)
        r = cli("replay", t, "-p", "lru", "--engine", "reference")
    elif where == "--set value":
        r = cli("replay", "--set", f"edge.preset={name}", "-p", "lru", "--engine", "reference")
    else:
        r = cli("replay", "-p", name, "--engine", "reference")
    assert r.code == 2, r.err
    assert r.err.count("\n") == 1 and r.err.startswith("error: ") and len(r.err) <= 1600, r.err[:3000]
    assert not any(c in r.err[:-1] for c in "\r\x1b\t"), r.err[:300]


# -- 7. one unit per quantity, and no ★ without a value ----------------------------------------------------------------

def test_queueing_share_is_a_percent_and_cloud_only_gets_no_star_on_edge_rows():
    from pfmbench.report import comparison_cells

    base = {"engine": "fast"}
    rows = [{**base, "policy": "lru", "edge_hits": 5, "loads": 5, "queueing_share": 0.182, "hit_ratio": 0.5,
             "examples_in_context_mean_edge": 1.5, "average_accuracy_cost": 0.03},
            {**base, "policy": "cloud", "edge_hits": 0, "loads": 0, "queueing_share": 0.0, "hit_ratio": 0.0,
             "examples_in_context_mean_edge": 0.0, "average_accuracy_cost": 0.0}]
    _, body = comparison_cells(rows)
    cells = dict(body)
    q = next(v for k, v in cells.items() if k.startswith("Queueing share"))
    assert q[0][0] == "18.2%" and q[1] == ("-", False)
    for label, values in body:
        if "per edge request" in label or label.startswith("Queueing"):
            assert values[1] == ("-", False), label


@pytest.mark.parametrize("dispatch", ["edge", "cheapest"])
def test_the_queueing_hint_never_suggests_the_rule_in_force(dispatch):
    from pfmbench.cli.replay import table_notes

    notes = table_notes([{"policy": "lru", "notes": "", "queueing_share": 0.9, "dispatch": dispatch}])
    (note,) = [n for n in notes if n.startswith("queueing")]
    assert ("--dispatch cheapest" in note) == (dispatch == "edge"), note
