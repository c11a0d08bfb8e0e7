"""CLI tests for replay, models and scenario: output, files, and clean errors on bad input."""

import importlib.util
import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SUMMARY_KEYS = {"policy", "n_requests", "edge_hits", "loads", "evictions", "offloads", "system_cost",
                "switching_cost", "edge_execution_ratio", "total_accuracy_cost", "average_accuracy_cost",
                "inference_latency_s", "offloading_latency_s", "cloud_cost", "hit_ratio", "accuracy_per_request_pct",
                "edge_latency_s", "edge_latency_mean_s", "edge_latency_p50_s", "edge_latency_p95_s",
                "edge_latency_p99_s", "inference_latency_mean_edge_s",
                "examples_in_context_mean_edge", "context_discarded", "load_energy_j", "compute_energy_j",
                "seed", "catalog", "pfmbench_version"}


@pytest.fixture
def small_trace(tmp_path):
    p = tmp_path / "t.parquet"
    pl.DataFrame({
        "ts": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        "model": ["GPT3-13B", "gpt3-13b", "CLIP-ViT-L/14", "UniFormer-S", "GPT3-175B", "GPT3-13B", "CLIP-ViT-H/14",
                  "GPT3-13B"],
        "task": ["translation", "superglue", None, "pose_estimation", "superglue", "translation", "classification",
                 "basic_arithmetic"],
        "units": [100.0, 50, 1, 1, 10, 20, 1, 30],
    }).write_parquet(p)
    return p


def test_default_replay_prints_table(cli):
    r = cli("replay")
    assert r.code == 0, r.err
    for word in ("System cost", "Switching cost", "Edge execution ratio", "lc", "lfu", "fifo", "random", "cloud",
                 "lru", "★"):
        assert word in r.out


def test_json_and_out_files(cli, small_trace, tmp_path):
    out, log = tmp_path / "res.parquet", tmp_path / "log.parquet"
    r = cli("replay", small_trace, "--policy", "lc,lru,cloud", "--gpu-memory", "40", "--json", "--out", out,
            "--requests-out", log)
    assert r.code == 0, r.err
    rows = json.loads(r.out)  # stdout is only JSON
    assert [x["policy"] for x in rows] == ["lc", "lru", "cloud"]
    assert SUMMARY_KEYS <= set(rows[0])
    assert rows[2]["offloads"] == 8 and rows[2]["edge_execution_ratio"] == 0
    assert rows[0]["setting_edge_gpu_memory_gb"] == 40
    df = pl.read_parquet(out)
    assert df.height == 3 and SUMMARY_KEYS <= set(df.columns)
    req = pl.read_parquet(log)
    assert req.height == 24
    assert set(req["outcome"].cast(pl.String)) <= {"hit", "load", "cloud"}
    lc = req.filter(pl.col("policy") == "lc")
    assert lc["model"].cast(pl.String).to_list()[4] == "GPT3-175B/superglue"  # per-task copies by default
    assert lc["outcome"].cast(pl.String).to_list()[4] == "cloud"  # 419 GB never fits in 40 GB
    assert not list(tmp_path.glob(".*.tmp"))


def test_results_are_deterministic(cli, small_trace, tmp_path):
    a = cli("replay", small_trace, "--policy", "random,lc", "--seed", "7", "--json").out
    b = cli("replay", small_trace, "--policy", "random,lc", "--seed", "7", "--json").out
    assert a == b


def test_reference_engine_and_dropin_policy(cli, small_trace):
    r = cli("replay", small_trace, "--policy", "policies/lc_size.py,lc", "--engine", "reference", "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert rows[0]["policy"] == "lc-size" and rows[0]["engine"] == "reference"
    fast = json.loads(cli("replay", small_trace, "--policy", "lc", "--json").out)[0]
    assert fast["engine"] == "fast"
    for k in ("loads", "evictions", "edge_hits"):
        assert fast[k] == rows[1][k]
    assert fast["system_cost"] == pytest.approx(rows[1]["system_cost"], rel=1e-9)


def _bad(tmp_path, df_or_bytes, name="bad.parquet"):
    p = tmp_path / name
    if isinstance(df_or_bytes, bytes):
        p.write_bytes(df_or_bytes)
    else:
        df_or_bytes.write_parquet(p)
    return p


@pytest.mark.parametrize("make,needle", [
    (lambda: pl.DataFrame({"model": ["GPT3-13B"]}), "missing column 'ts'"),
    (lambda: pl.DataFrame({"ts": ["x"], "model": ["GPT3-13B"]}), "column 'ts' has type"),
    (lambda: pl.DataFrame({"ts": [0.0, 1.0], "model": [1, 2]}), "column 'model' has type"),
    (lambda: pl.DataFrame({"ts": [0.0, None], "model": ["GPT3-13B"] * 2}), "row 1: ts is null"),
    (lambda: pl.DataFrame({"ts": [0.0, float("inf")], "model": ["GPT3-13B"] * 2}), "row 1: ts is inf"),
    (lambda: pl.DataFrame({"ts": [0.0, 1.0], "model": ["GPT3-13B", "GPT-5"]}), "row 1: unknown model 'GPT-5'"),
    (lambda: pl.DataFrame({"ts": [0.0], "model": ["GPT3-13B"], "task": ["poetry"]}), "row 0: model 'GPT3-13B' has no task"),
    (lambda: pl.DataFrame({"ts": [0.0], "model": ["GPT3-13B"], "units": [-3.0]}), "row 0: units"),
    (lambda: pl.DataFrame({"ts": pl.Series([], dtype=pl.Float64), "model": pl.Series([], dtype=pl.String)}), "no requests"),
    (lambda: b"PAR1 this is not parquet", "cannot read Parquet"),
])
def test_bad_trace_is_one_line_exit_2_no_output(cli, tmp_path, make, needle):
    p = _bad(tmp_path, make())
    out = tmp_path / "out.parquet"
    log = tmp_path / "log.parquet"
    r = cli("replay", p, "--out", out, "--requests-out", log)
    assert r.code == 2
    assert needle in r.err and str(p) in r.err
    assert r.err.strip().count("\n") == 0 and "Traceback" not in r.err
    assert not out.exists() and not log.exists() and not list(tmp_path.glob(".*.tmp"))


def test_unsorted_trace_is_sorted_stably(cli, tmp_path):
    p = tmp_path / "u.parquet"
    pl.DataFrame({"ts": [5.0, 1.0, 1.0], "model": ["GPT3-13B", "CLIP-ViT-L/14", "CLIP-ViT-H/14"]}).write_parquet(p)
    log = tmp_path / "log.parquet"
    assert cli("replay", p, "--policy", "lru", "--requests-out", log).code == 0
    assert pl.read_parquet(log)["model"].cast(pl.String).to_list() == ["CLIP-ViT-L/14", "CLIP-ViT-H/14", "GPT3-13B/translation"]


@pytest.mark.parametrize("args,needle", [
    (["replay", "--policy", "nope"], "unknown policy 'nope'"),
    (["replay", "/no/such/trace.parquet"], "trace file not found"),
    (["replay", "--catalog", "/no/cat.csv"], "catalog file not found"),
    (["replay", "--utility", "cubic"], "utility"),
    (["replay", "--set", "gpu_ram=3"], "unknown scenario key"),
    (["replay", "--scenario", "/no/s.toml"], "scenario file not found"),
    (["replay", "--policy", "/no/p.py"], "policy file not found"),
])
def test_bad_options(cli, args, needle):
    r = cli(*args)
    assert r.code == 2 and needle in r.err and "Traceback" not in r.err


HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.mark.parametrize("args", [
    ["replay", "{d}.parquet"],
    ["replay", "{t}", "--scenario", "{d}"],
    ["replay", "{t}", "--catalog", "{d}.csv"],
    ["replay", "{t}", "--policy", "{d}.py"],
    ["trace", "inspect", "{d}.parquet"],
    ["trace", "validate", "{d}.parquet"],
    ["trace", "inspect", "{t}", "--scenario", "{d}"],
    ["export", "libcachesim", "{d}.parquet", "-o", "{o}.csv"],
    ["import", "csv", "{d}.csv", "-o", "{o}.parquet"],
    ["import", "alibaba-genai", "{d}.csv", "-o", "{o}.parquet", "--latency", "{d}"],
    ["synth", "-o", "{o}.parquet", "--requests", "5", "--catalog", "{d}.csv"],
    ["models", "--catalog", "{d}.csv"],
    ["scenario", "show", "--scenario", "{d}"],
    ["sweep", "{d}.toml", "-o", "{o}.parquet"],
    ["sweep", "{d}.parquet", "--set-grid", "gpu_memory_gb=40,80", "-o", "{o}.parquet"],
    ["compare", "{d}.parquet", "{r}"],
    ["compare", "{r}", "{d}.parquet"],
    ["check", "{d}.parquet", "--baseline", "{r}"],
    ["check", "{r}", "--baseline", "{d}.parquet"],
    pytest.param(["plot", "{d}.parquet", "-o", "{o}.png"],
                 marks=pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib not installed")),
])
def test_a_directory_given_as_an_input_file_says_so(cli, tmp_path, small_trace, args):
    """Not "not found": the path is there, it is a folder."""
    d = tmp_path / "dir"
    for suffix in ("", ".parquet", ".csv", ".py", ".toml"):
        d.with_name(d.name + suffix).mkdir()
    res = tmp_path / "res.parquet"
    assert cli("replay", small_trace, "--policy", "lru", "--out", res).code == 0
    r = cli(*[a.format(d=d, t=small_trace, r=res, o=tmp_path / "out") for a in args])
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.err, r.err
    assert "is a directory, not a" in r.out + r.err and "not found" not in r.out + r.err
    if args[:2] != ["trace", "validate"]:  # validate lists the problem on stdout
        assert r.out == ""
    assert not list(tmp_path.glob("out*"))


def test_bad_catalog_via_cli(cli, tmp_path, small_trace):
    c = tmp_path / "c.csv"
    c.write_text("model,family,task,params_m,gflops,zero_shot\nGPT3-13B,LFM,t,1,oops,5\n")
    r = cli("replay", small_trace, "--catalog", c)
    assert r.code == 2 and str(c) in r.err and "line 2" in r.err


def test_out_folder_missing(cli, small_trace):
    r = cli("replay", small_trace, "--out", "/no/such/dir/res.parquet")
    assert r.code == 2 and "does not exist" in r.err


def test_models_and_scenario_show(cli):
    r = cli("models")
    assert r.code == 0 and "GPT3-13B" in r.out and "UniFormer-S/pose_estimation" in r.out
    assert "GPT3-175B" in r.out and "NEVER" in r.out and "can never fit" in r.out
    r = cli("models", "--wide")
    assert r.code == 0 and "α=" in r.out
    j = json.loads(cli("models", "--json").out)
    assert any(x["curve"].startswith("log") for x in j)
    r = cli("scenario", "show", "--set", "gpu_memory_gb=33")
    assert r.code == 0 and "33" in r.out and "edge.load_gbps" in r.out
    j = json.loads(cli("scenario", "show", "--json").out)
    assert j["edge.gpu_memory_gb"] == 80


def _commands(group, prefix=()):
    import typer.main

    cmd = typer.main.get_command(group)
    out = []

    def walk(c, path):
        subs = getattr(c, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        else:
            out.append(path)

    walk(cmd, prefix)
    return out


def test_every_command_has_help_with_example(cli):
    from pfmbench.cli import _register, app

    _register()
    paths = _commands(app)
    assert ("replay",) in paths and ("models",) in paths
    for path in paths:
        r = cli(*path, "--help")
        assert r.code == 0, path
        assert "Example" in r.out, f"pfmbench {' '.join(path)} --help has no example"


def test_python_api(small_trace):
    import pfmbench

    r = pfmbench.replay(str(small_trace), policy="lc", gpu_memory_gb=40, half_life_s=300)
    assert r.summary["policy"] == "lc" and r.summary["n_requests"] == 8
    assert r.summary["setting_context_half_life_s"] == 300
    df = pl.read_parquet(small_trace)
    r2 = pfmbench.replay(df, policy="lc", gpu_memory_gb=40, half_life_s=300, requests=True)
    assert r2.summary["system_cost"] == r.summary["system_cost"]
    assert r2.requests.height == 8
    r3 = pfmbench.replay("default", policy="cloud")
    assert r3.summary["offloads"] == r3.summary["n_requests"] > 0


def test_usage_errors_exit_2_without_traceback(cli):
    r = cli("replay", "--no-such-option")
    assert r.code == 2 and "Traceback" not in r.err and "No such option" in r.err


def test_version_and_policies(cli):
    import pfmbench

    assert cli("--version").out.strip() == f"pfmbench {pfmbench.__version__}"
    r = cli("policies", "policies/lc_size.py")
    assert r.code == 0 and "lc-size" in r.out and "lfu" in r.out


_NAMES = ["GPT3-13B", "gpt3-175b", "CLIP-ViT-L/14", "UniFormer-S", "UniFormer-B/pose_estimation", "GPT-9", "", None]
_TASKS = ["translation", "superglue", "pose_estimation", "classification", "dance", None]
_FLOATS = [0.0, 1.0, 2.5, 1e9, -1.0, float("nan"), float("inf"), None]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_trace_gives_results_or_one_clean_error(cli, tmp_path_factory, data):
    """Fuzzed traces: exit 0 with a results file, or exit 2 with one line naming the file and no file."""
    n = data.draw(st.integers(0, 6))
    cols = {"ts": data.draw(st.one_of(st.lists(st.sampled_from(_FLOATS), min_size=n, max_size=n),
                                      st.lists(st.sampled_from(["1", "x"]), min_size=n, max_size=n))),
            "model": data.draw(st.lists(st.sampled_from(_NAMES), min_size=n, max_size=n))}
    if data.draw(st.booleans()):
        cols["task"] = data.draw(st.lists(st.sampled_from(_TASKS), min_size=n, max_size=n))
    if data.draw(st.booleans()):
        cols["units"] = data.draw(st.lists(st.sampled_from(_FLOATS), min_size=n, max_size=n))
    if data.draw(st.booleans()):
        del cols["model"]
    d = tmp_path_factory.mktemp("fuzz")
    trace, out = d / "t.parquet", d / "out.parquet"
    pl.DataFrame(cols, strict=False).write_parquet(trace)
    r = cli("replay", trace, "--policy", "lru,lc", "--out", out, "--json")
    assert r.code in (0, 2), r.err
    if r.code == 0:
        assert out.exists() and len(json.loads(r.out)) == 2
    else:
        assert r.err.startswith("error: ") and r.err.count("\n") == 1 and str(trace) in r.err
        assert not out.exists()


def test_interrupted_replay_leaves_nothing(cli, small_trace, tmp_path, monkeypatch):
    from pfmbench.engine import fast

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fast.FastEngine, "run", interrupted)
    out, log = tmp_path / "o.parquet", tmp_path / "r.parquet"
    r = cli("replay", small_trace, "--policy", "lru", "--out", out, "--requests-out", log)
    assert r.code == 130 and "interrupted" in r.err and "Traceback" not in r.err
    assert list(tmp_path.iterdir()) == [small_trace]  # no output, no temporary file


def test_note_when_the_edge_cannot_keep_up(cli, tmp_path):
    p = tmp_path / "burst.parquet"
    ts = [0.0] + [10.0] * 199  # the model is loaded first, then a burst
    pl.DataFrame({"ts": ts, "model": ["GPT3-13B"] * 200, "units": [2000.0] * 200}).write_parquet(p)
    r = cli("replay", p, "--policy", "lru")
    assert r.code == 0 and "cannot keep up" in r.out
    r = cli("replay", p, "--policy", "lru", "--set", "executors=200")
    assert "cannot keep up" not in r.out
    assert json.loads(cli("replay", p, "--policy", "lru", "--json").out)  # JSON stays JSON only


def test_a_failing_dropin_policy_is_one_clean_error(cli, tmp_path):
    p = tmp_path / "bad_policy.py"
    p.write_text("from pfmbench.policies import Policy\n\nclass Bad(Policy):\n    name = 'bad'\n\n"
                 "    def key(self, entry, now):\n        return entry.no_such_attribute\n")
    r = cli("replay", "--policy", p)
    assert r.code == 2 and str(p) in r.err and "AttributeError" in r.err and "Traceback" not in r.err


PRINTING_POLICY = """from pfmbench.policies import Policy

class Chatty(Policy):
    name = "chatty{n}"

    def __init__(self, seed=0):
        super().__init__(seed)
        print("init")

    def bind(self, tables):
        print("bind")

    def key(self, entry, now):
        print("hi", end=" ")
        return entry.last_use

    def admit(self, model, now):
        print("admit")
        return True
"""


def printing_policies(folder, n=2):
    paths = []
    for i in range(n):
        paths.append(folder / f"chatty{i}.py")
        paths[-1].write_text(PRINTING_POLICY.format(n=i))
    return paths


def test_what_a_dropin_policy_prints_goes_to_stderr(cli, small_trace, tmp_path):
    """A policy that prints while replaying (two of them side by side, on worker threads) must not corrupt
    --json; its lines go to stderr."""
    a, b = printing_policies(tmp_path)
    r = cli("replay", small_trace, "--policy", f"{a},{b},lru", "--gpu-memory", "40", "--json")
    assert r.code == 0, r.err
    assert [x["policy"] for x in json.loads(r.out)] == ["chatty0", "chatty1", "lru"]
    assert "hi" in r.err and "init" in r.err and "bind" in r.err and "admit" in r.err
    assert json.loads(cli("replay", small_trace, "--policy", "lru", "--json").out)  # stdout is stdout again


def test_notes_and_names_print_as_text_not_markup(cli, tmp_path):
    """A note for some policies ends with their names in brackets, and a file name may hold brackets:
    rich would read either as a style and drop it."""
    p = tmp_path / "run[1].parquet"
    pl.DataFrame({"ts": [0.0, 1.0, 2.0], "model": ["GPT3-13B"] * 3, "units": [10.0] * 3}).write_parquet(p)
    r = cli("replay", p, "--policy", "lru,cloud")
    assert r.code == 0 and "run[1].parquet" in r.out
    assert "no model was ever evicted" in r.out and "[lru]" in r.out
