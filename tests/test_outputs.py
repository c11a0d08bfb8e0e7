"""The output-path policy (docs/results.md, "Output paths"): one test per rule, through every command that
writes; OS errors and signals end in one line, the documented exit code, and no file left behind."""

import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from test_cli import printing_policies

from pfmbench.errors import InputError
from pfmbench.fileio import atomic_path, check_outputs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def trace(tmp_path):
    p = tmp_path / "t.parquet"
    pl.DataFrame({"ts": [0.0, 1.0, 2.0, 3.0], "model": ["GPT3-13B", "CLIP-ViT-L/14", "GPT3-13B", "UniFormer-S"],
                  "task": ["translation", None, "superglue", "pose_estimation"]}).write_parquet(p)
    return p


@pytest.fixture
def csv_src(tmp_path):
    p = tmp_path / "src.csv"
    p.write_text("ts,model\n0,GPT3-13B\n1.5,CLIP-ViT-L/14\n")
    return p


def _pfm(args, **kw):
    """Run `python -m pfmbench ARGS` in a subprocess with this tree's package."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pfmbench", *map(str, args)], check=False, env=env, cwd=ROOT, **kw)


def _one_clean_line(r, needle):
    assert r.code == 2, (r.code, r.err)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
    assert needle in r.err, r.err
    assert "Traceback" not in r.err


def _no_temp_files(folder: Path):
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def _writers(trace, csv_src, out):
    """Every command that writes, with `out` as its (first) output."""
    return {
        "replay --out": ["replay", trace, "--policy", "lru", "--out", out],
        "replay --requests-out": ["replay", trace, "--policy", "lru", "--requests-out", out],
        "synth": ["synth", "-o", out, "--requests", "10"],
        "import csv": ["import", "csv", csv_src, "-o", out],
        "export": ["export", "libcachesim", trace, "-o", out],
    }


WRITERS = ["replay --out", "replay --requests-out", "synth", "import csv", "export"]


@pytest.mark.parametrize("cmd", WRITERS)
def test_empty_path_is_refused(cli, trace, csv_src, cmd):
    _one_clean_line(cli(*_writers(trace, csv_src, "")[cmd]), "empty")


@pytest.mark.parametrize("cmd", WRITERS)
def test_directory_is_refused(cli, trace, csv_src, tmp_path, cmd):
    (tmp_path / "d").mkdir()
    for out in (tmp_path / "d", f"{tmp_path}/new/"):
        _one_clean_line(cli(*_writers(trace, csv_src, out)[cmd]), "directory")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("cmd", WRITERS)
def test_device_and_fifo_are_never_replaced(cli, trace, csv_src, tmp_path, cmd):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for out in ("/dev/null", fifo):
        _one_clean_line(cli(*_writers(trace, csv_src, out)[cmd]), "not a regular file")
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()
    _no_temp_files(tmp_path)


def test_socket_is_never_replaced(cli, trace, tmp_path):
    import socket

    path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(path))
        _one_clean_line(cli("replay", trace, "--policy", "lru", "--out", path), "not a regular file")
        assert path.is_socket()
    finally:
        s.close()


@pytest.mark.parametrize("cmd", WRITERS)
def test_missing_folder_is_refused(cli, trace, csv_src, cmd):
    _one_clean_line(cli(*_writers(trace, csv_src, "/no/such/dir/x.out")[cmd]), "does not exist")


@pytest.mark.parametrize("args,flag", [
    (["replay", "{trace}", "--out", "{trace}"], "--out"),
    (["replay", "{trace}", "--requests-out", "{trace}"], "--requests-out"),
    (["replay", "{trace}", "--catalog", "{cat}", "--out", "{cat}"], "--out"),
    (["replay", "{trace}", "--scenario", "{scen}", "--out", "{scen}"], "--out"),
    (["replay", "{trace}", "--scenario", "{scen}", "--out", "{cat}"], "--out"),  # the catalog the scenario names
    (["replay", "{trace}", "--policy", "{pol}", "--out", "{pol}"], "--out"),
    (["import", "csv", "{src}", "-o", "{src}"], "--output"),
    (["import", "csv", "{src}", "--catalog", "{cat}", "-o", "{cat}"], "--output"),
    (["export", "libcachesim", "{trace}", "-o", "{trace}"], "--output"),
    (["synth", "--catalog", "{cat}", "-o", "{cat}", "--requests", "5"], "--output"),
])
def test_an_input_is_never_an_output(cli, trace, csv_src, tmp_path, args, flag):
    cat = tmp_path / "cat.csv"
    cat.write_text((ROOT / "pfmbench/data/table1.csv").read_text())
    scen = tmp_path / "s.toml"
    scen.write_text('[catalog]\npath = "cat.csv"\n')
    pol = tmp_path / "p.py"
    pol.write_text((ROOT / "policies/lc_size.py").read_text())
    paths = {"trace": trace, "src": csv_src, "cat": cat, "scen": scen, "pol": pol}
    before = {p: p.read_bytes() for p in paths.values()}
    r = cli(*[a.format(**paths) for a in args])
    _one_clean_line(r, f"{flag} ")
    assert "is also an input" in r.err
    assert {p: p.read_bytes() for p in paths.values()} == before
    _no_temp_files(tmp_path)


def test_links_to_an_input_are_caught(cli, trace, tmp_path):
    (tmp_path / "soft.parquet").symlink_to(trace)
    os.link(trace, tmp_path / "hard.parquet")
    for out in ("soft.parquet", "hard.parquet"):
        r = cli("replay", trace, "--out", tmp_path / out)
        _one_clean_line(r, "is also an input")
    rel = os.path.relpath(trace)  # the same file spelt differently
    _one_clean_line(cli("replay", rel, "--out", trace), "is also an input")


def test_two_outputs_on_one_path(cli, trace, tmp_path):
    a = tmp_path / "a.parquet"
    _one_clean_line(cli("replay", trace, "--out", a, "--requests-out", a), "both write to")
    _one_clean_line(cli("replay", trace, "--out", a, "--requests-out", f"{tmp_path}/./a.parquet"), "both write to")
    _one_clean_line(cli("replay", trace, "--out", "-", "--requests-out", "-"), "both write to stdout")
    _one_clean_line(cli("replay", trace, "--out", "-", "--json"), "both write to stdout")
    assert not a.exists()


def test_two_import_outputs_on_one_path(cli, tmp_path):
    src = tmp_path / "lora_request_trace.csv"
    src.write_text("gmt_create,predict_type,predict_status,num_images_per_prompt,num_inference_steps,"
                   "checkpoint_model_version_id\n2025-01-01 00:00:00,TXT_2_IMG,SUCCEED,1,20,m1\n")
    out = tmp_path / "a.parquet"
    r = cli("import", "alibaba-genai", src, "-o", out, "--catalog-out", out)
    _one_clean_line(r, "both write to")
    r = cli("import", "alibaba-genai", src, "-o", out, "--catalog-out", tmp_path / "c.csv",
            "--scenario-out", tmp_path / "c.csv")
    _one_clean_line(r, "both write to")
    assert not out.exists()


def test_symlink_output_replaces_its_target_not_the_link(cli, trace, tmp_path):
    target = tmp_path / "real.parquet"
    target.write_bytes(b"old")
    link = tmp_path / "link.parquet"
    link.symlink_to(target)
    r = cli("replay", trace, "--policy", "lru", "--out", link)
    assert r.code == 0, r.err
    assert link.is_symlink() and pl.read_parquet(target).height == 1


def test_stream_to_stdout(cli, trace, tmp_path):
    r = cli("export", "libcachesim", trace, "-o", "-")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == "time,obj_id,obj_size" and len(r.out.splitlines()) == 5
    _no_temp_files(tmp_path)


def test_stream_parquet_and_csv_to_a_pipe(trace):
    p = _pfm(["synth", "-o", "-", "--requests", "50"], capture_output=True)
    assert p.returncode == 0 and pl.read_parquet(io.BytesIO(p.stdout)).height == 50
    p = _pfm(["export", "libcachesim", str(trace), "-o", "-"], capture_output=True)
    assert p.returncode == 0 and p.stdout.decode().splitlines()[0] == "time,obj_id,obj_size"
    p = _pfm(["replay", str(trace), "--policy", "lru,lc", "--out", "-"], capture_output=True)
    assert p.returncode == 0 and pl.read_parquet(io.BytesIO(p.stdout))["policy"].to_list() == ["lru", "lc"]
    assert "System cost" in p.stderr.decode()  # the table moved to stderr


def test_a_printing_dropin_policy_keeps_parquet_on_stdout_valid(trace, tmp_path):
    a, b = printing_policies(tmp_path)
    p = _pfm(["replay", str(trace), "--policy", f"{a},{b}", "--gpu-memory", "40", "--out", "-"],
             capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    assert pl.read_parquet(io.BytesIO(p.stdout))["policy"].to_list() == ["chatty0", "chatty1"]
    assert "hi" in p.stderr.decode()


@pytest.mark.parametrize("args", [
    ["synth", "-o", "-", "--requests", "2000"],
    ["replay", "{trace}", "--policy", "lru", "--json"],
    ["replay", "{trace}", "--policy", "lru", "--out", "-"],
    ["models"],
])
def test_disk_full_on_stdout_is_one_line(trace, args):
    if not Path("/dev/full").is_char_device():
        pytest.skip("no /dev/full")
    with open("/dev/full", "wb") as full:
        p = _pfm([a.format(trace=trace) for a in args], stdout=full, stderr=subprocess.PIPE)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last
    assert "Traceback" not in err and err.count("error:") == 1


@pytest.mark.parametrize("code,word", [(errno.ENOSPC, "No space left"), (errno.EACCES, "Permission denied"),
                                       (errno.EROFS, "Read-only file system"), (errno.EDQUOT, "quota")])
def test_os_errors_while_writing_are_one_line(cli, trace, tmp_path, monkeypatch, code, word):
    import polars

    def failing(self, path, *a, **k):
        Path(path).write_bytes(b"partial")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(polars.DataFrame, "write_parquet", failing)
    out = tmp_path / "o.parquet"
    r = cli("replay", trace, "--policy", "lru", "--out", out)
    _one_clean_line(r, word)
    assert str(out) in r.err and not out.exists()
    _no_temp_files(tmp_path)


def test_os_error_creating_the_temporary_file(cli, trace, tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    r = cli("synth", "-o", tmp_path / "s.parquet", "--requests", "5")
    _one_clean_line(r, "Permission denied")


def test_rename_only_over_a_regular_file(tmp_path):
    out = tmp_path / "o.txt"
    with pytest.raises(InputError, match="not a regular file"), atomic_path(out) as tmp:
        tmp.write_text("x")
        os.mkfifo(out)  # something else appeared while we wrote
    assert out.is_fifo()
    _no_temp_files(tmp_path)


def test_check_outputs_library_api(tmp_path):
    a = tmp_path / "a"
    a.write_text("in")
    check_outputs({"--out": tmp_path / "b", "--log": None, "--x": "-"}, [a, None, 3])
    with pytest.raises(InputError, match="is also an input"):
        check_outputs({"--out": a}, [a])
    with pytest.raises(InputError, match="both write"):
        check_outputs({"--out": tmp_path / "b", "--log": tmp_path / "b"})


def _wait_for_temp(folder: Path, proc, timeout=60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if any(p.name.endswith(".tmp") for p in folder.iterdir()):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("args,name", [
    (["synth", "--requests", "40000000", "-o", "{d}/big.parquet"], "big.parquet"),
    (["replay", "--policy", "lru,lc", "--set", "trace.requests=4000000", "--requests-out", "{d}/r.parquet"],
     "r.parquet"),
])
@pytest.mark.parametrize("sig,code,line", [
    (signal.SIGTERM, 143, "error: terminated (SIGTERM); no output written"),
    (signal.SIGINT, 130, "error: interrupted (SIGINT); no output written"),
])
def test_signals_remove_temporary_files_and_exit_cleanly(tmp_path, args, name, sig, code, line):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pfmbench", *[a.format(d=tmp_path) for a in args]],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert _wait_for_temp(tmp_path, proc), "no temporary file appeared"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == line
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
