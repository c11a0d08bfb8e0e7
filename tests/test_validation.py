"""Every input is validated at load, and the commands agree: the examples of issue 9, each a class of problem."""

import json
import math
import tomllib

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pfmbench.catalog import load_catalog
from pfmbench.scenario import load_scenario


def _clean_error(r, *needles):
    assert r.code == 2, (r.code, r.out, r.err)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    for n in needles:
        assert n in r.err, r.err


@pytest.fixture
def small_trace(tmp_path):
    p = tmp_path / "t.parquet"
    pl.DataFrame({"ts": [0.0, 1.0, 2.0, 3.0], "model": ["GPT3-13B", "CLIP-ViT-L/14", "GPT3-13B", "CLIP-ViT-H/14"],
                  "task": ["translation", None, "superglue", None]}).write_parquet(p)
    return p


# -- scenario values and --set --------------------------------------------------------------------------
def test_set_values_are_typed(cli):
    r = cli("scenario", "show", "--set", "seed=7", "--set", "executors=3", "--set", "copies_per_task=false",
            "--set", "cloud.rtt_s=0.25", "--json")
    assert r.code == 0, r.err
    j = json.loads(r.out)
    assert j["seed"] == 7 and isinstance(j["seed"], int)
    assert j["edge.executors"] == 3 and j["catalog.copies_per_task"] is False and j["cloud.rtt_s"] == 0.25
    r = cli("replay", "--policy", "random", "--set", "seed=7", "--set", "trace.requests=200", "--json")
    assert r.code == 0, r.err and json.loads(r.out)[0]["seed"] == 7


@pytest.mark.parametrize("key", ["tflops", "utilization"])
def test_ambiguous_bare_keys_are_refused_with_candidates(cli, key):
    _clean_error(cli("replay", "--set", f"{key}=7"), "ambiguous", f"edge.{key}", f"cloud.{key}")


@pytest.mark.parametrize("args,needle", [
    (["--gpu-memory", "1e300"], "gpu_memory_gb"),
    (["--gpu-memory", "-1"], "gpu_memory_gb"),
    (["--gpu-memory", "nan"], "gpu_memory_gb"),
    (["--half-life", "inf"], "half_life_s"),
    (["--set", "edge.tflops=1e-300"], "edge.tflops"),
    (["--set", "cloud.uplink_mbps=0"], "uplink_mbps"),
    (["--set", "executors=1e9"], "executors"),
    (["--set", "executors=2.5"], "whole number"),
    (["--set", "seed=-1"], "seed"),
    (["--set", "seed=x"], "seed"),
    (["--set", "trace.requests=1e12"], "trace.requests"),
    (["--set", "copies_per_task=maybe"], "true or false"),
    (["--set", "gpu_ram=3"], "unknown scenario key"),
    (["--set", "gpu_memory=3"], "did you mean"),
    (["--set", "nokey"], "KEY=VALUE"),
    (["--half-life", "300", "--utility", "linear"], "--half-life"),
    (["--set", "half_life_s=300", "--utility", "none"], "half_life_s applies to the exp utility"),
    (["--set", "context.linear_rate=0.1"], "linear_rate applies to the linear utility"),
    (["--seed", "-3"], "seed"),
])
def test_bad_scenario_values_are_one_line(cli, args, needle):
    _clean_error(cli("replay", *args), needle)


@pytest.mark.parametrize("text,needle", [
    ('[edge]\ngpu_memory_gb = "forty"\n', "gpu_memory_gb"),
    ("[edge]\nexecutors = 1.5\n", "executors"),
    ("[edge]\nexecutors = true\n", "executors"),
    ("[edge]\npreset = 5\n", "preset"),
    ("[edge]\ngpu_memory_gb = inf\n", "gpu_memory_gb"),
    ("[cloud]\nrtt_s = 1e300\n", "rtt_s"),
    ("seed = 1.5\n", "seed"),
    ("seed = -2\n", "seed"),
    ('name = ["a"]\n', "name"),
    ("[catalog]\npath = 5\n", "catalog"),
    ("[catalog]\ncopies_per_task = 1\n", "copies_per_task"),
    ("[[edge]]\ntflops = 1\n", "[edge] must be a table"),
    ("[edge]\ntflop = 1\n", "unknown key 'tflop'"),
    ("[gpu]\n", "unknown key or section"),
    ("[edge\n", "cannot read scenario"),
])
def test_bad_scenario_files_are_one_line(cli, tmp_path, text, needle):
    p = tmp_path / "s.toml"
    p.write_text(text)
    _clean_error(cli("replay", "--scenario", p), str(p), needle)


def test_scenario_show_toml_round_trips(cli, tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(cli("scenario", "show", "--toml", "--set", "seed=5", "--set", "gpu_memory_gb=40").out)
    sc = load_scenario(p)
    assert sc.seed == 5 and sc.edge.gpu_memory_gb == 40


# -- catalogs -------------------------------------------------------------------------------------------
TOML_HEAD = '[[model]]\nname = "X"\nfamily = "LFM"\nparams_m = 10\ngflops = 1\n'


@pytest.mark.parametrize("text,needle", [
    ("model = 5\n", "array of tables"),
    ('[[model]]\nname = 5\nfamily = "LFM"\n', "name must be a string"),
    ('[[model]]\nfamily = "LFM"\nparams_m = 1\ngflops = 1\nzero_shot = 1\n', "missing name"),
    (TOML_HEAD + 'task = ["a", "b"]\n', "[[model.task]]"),
    (TOML_HEAD + "task = 3\n", "[[model.task]]"),
    (TOML_HEAD + "[[model.task]]\nzero_shot = 3\n", "missing name"),
    (TOML_HEAD + '[[model.task]]\nname = "t"\nzero_shot = "high"\n', "zero_shot must be a number"),
    (TOML_HEAD + '[[model.task]]\nname = "t"\nzero_shot = 101\n', "zero_shot"),
    (TOML_HEAD + '[[model.task]]\nname = "t"\nzero_shot = 50\nfew_shot = -1\n', "few_shot"),
    (TOML_HEAD + '[[model.task]]\nname = "t"\nzero_shot = 50\nzero_shoot = 3\n', "unknown key"),
    ('[[model]]\nname = "X"\nfamily = "LFM"\nparams_m = 1e15\ngflops = 1\nzero_shot = 3\n', "params_m"),
    ('[[model]]\nname = "X"\nfamily = "LFM"\nparams_m = 1\nmemory_gb = 1e10\ngflops = 1\nzero_shot = 3\n',
     "memory_gb"),
    ('[[model]]\nname = "X"\nfamily = "LFM"\nparams_m = 1\ngflops = nan\nzero_shot = 3\n', "gflops"),
    ('[[model]]\nname = "X"\nfamily = 3\nparams_m = 1\ngflops = 1\nzero_shot = 3\n', "family must be a string"),
    ('[[model]]\nname = "X"\nfamily = "LFM"\nparams_m = true\ngflops = 1\nzero_shot = 3\n', "params_m"),
    ('[[models]]\nname = "X"\n', "unknown top-level key"),
    ("", "no models"),
])
def test_bad_toml_catalogs_are_one_line(cli, tmp_path, text, needle):
    p = tmp_path / "c.toml"
    p.write_text(text)
    for cmd in (["models"], ["replay", "--policy", "lru"], ["synth", "-o", tmp_path / "o.parquet", "--requests", "3"]):
        _clean_error(cli(*cmd, "--catalog", p), str(p), needle)
    assert "model is" not in cli("models", "--catalog", p).err  # TOML's key is `name`, not the CSV's `model`


@pytest.mark.parametrize("row,needle", [
    ("X,LFM,t,1e15,1,5", "params_m"),
    ("X,LFM,t,10,1,150", "zero_shot"),
    ("X,LFM,t,10,1e300,5", "gflops"),
    ("X,LFM,t,10,1,-5", "zero_shot"),
    ("X,LFM,t,0,1,5", "params_m"),
    ("X,XFM,t,10,1,5", "family"),
    ("X,LFM,t,10,1,5,9", "more fields"),
    (",LFM,t,10,1,5", "missing model"),
])
def test_bad_csv_catalogs_are_one_line(cli, tmp_path, row, needle):
    p = tmp_path / "c.csv"
    p.write_text(f"model,family,task,params_m,gflops,zero_shot\n{row}\n")
    _clean_error(cli("models", "--catalog", p), str(p), "line 2", needle)


def test_suspicious_catalogs_warn(cli, tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("model,family,task,params_m,gflops,k_few,zero_shot,one_shot,few_shot,notes\n"
                 "GPT3-13B,LFM,translation,12850,26.54,64,40,30,20,x\n"
                 "CLIP-ViT-L/14,MFM,classification,428,175.5,,75.2,80,,y\n")
    cat = load_catalog(p)
    text = " | ".join(cat.warnings)
    assert "falls below zero-shot" in text and "context window is 0" in text and "unknown column" in text
    r = cli("models", "--catalog", p)
    assert r.code == 0 and "falls below zero-shot" in r.out
    t = tmp_path / "t.parquet"
    pl.DataFrame({"ts": [0.0, 1.0], "model": ["GPT3-13B", "CLIP-ViT-L/14"]}).write_parquet(t)
    r = cli("replay", t, "--catalog", p, "--policy", "lru", "--json")
    assert r.code == 0, r.err
    assert "falls below zero-shot" in json.loads(r.out)[0]["notes"]
    frac = tmp_path / "f.csv"
    frac.write_text("model,family,task,params_m,gflops,zero_shot\nX,VFM,t,10,1,0.8\n")
    assert "fractions" in " ".join(load_catalog(frac).warnings)
    assert load_catalog().warnings == ()  # Table I is clean


@pytest.mark.parametrize("form", ["csv", "toml"])
def test_catalog_template_loads_as_printed(cli, tmp_path, form):
    r = cli("models", "--template", *(["--toml"] if form == "toml" else []))
    assert r.code == 0
    p = tmp_path / f"c.{form}"
    p.write_text(r.out)
    cat = load_catalog(p)
    assert len(cat.models) == 2 and cat.warnings == ()
    assert cli("models", "--catalog", p).code == 0
    # a listing option was silently ignored: --json printed the CSV template, --catalog not the catalog given
    for extra in (["--json"], ["--catalog", p], ["--gpu", "l4"], ["--set", "gpu_memory_gb=40"]):
        _clean_error(cli("models", "--template", *extra), f"{extra[0]} does not apply")


# -- trace numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("col,value", [("units", 1e300), ("units", 2e9), ("input_mb", 1e300), ("input_mb", 1e7)])
def test_trace_numbers_are_bounded(cli, tmp_path, col, value):
    p = tmp_path / "t.parquet"
    pl.DataFrame({"ts": [0.0, 1.0], "model": ["GPT3-13B"] * 2, col: [1.0, value]}).write_parquet(p)
    _clean_error(cli("replay", p, "--policy", "lru"), str(p), f"row 1: {col}")
    r = cli("trace", "validate", p)
    assert r.code == 2 and f"row 1: {col}" in r.out


@pytest.mark.parametrize("ts", [[-1.7e308, 1.7e308], [0.0, 1e300], [0.0, 2e15]])
def test_trace_times_are_bounded(cli, tmp_path, ts):
    p = tmp_path / "t.parquet"
    pl.DataFrame({"ts": ts, "model": ["GPT3-13B"] * 2}).write_parquet(p)
    for cmd in (["replay", p, "--policy", "lru"], ["trace", "inspect", p], ["export", "libcachesim", p, "-o",
                                                                             tmp_path / "o.csv"]):
        _clean_error(cli(*cmd), str(p), "ts is")
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("col,arr", [
    ("ts", pa.array([0, 2**62], pa.int64())), ("ts", pa.array([0, 2**64 - 1], pa.uint64())),
    ("units", pa.array([1, 2**62], pa.int64())), ("input_mb", pa.array([1, 2**63], pa.uint64())),
])
def test_huge_integer_columns_are_bounded_not_a_traceback(cli, tmp_path, col, arr):
    # Integers beyond 2**53 do not convert to float64 exactly; pyarrow's safe cast raised ArrowInvalid.
    p = tmp_path / "t.parquet"
    cols = {"ts": pa.array([0.0, 1.0]), "model": pa.array(["GPT3-13B"] * 2), col: arr}
    pq.write_table(pa.table(cols), p)
    for cmd in (["replay", p, "--policy", "lru"], ["export", "libcachesim", p, "-o", tmp_path / "o.csv"]):
        _clean_error(cli(*cmd), str(p), f"row 1: {col} is")
    r = cli("trace", "validate", p)
    assert r.code == 2 and f"row 1: {col}" in r.out and "Traceback" not in r.err, (r.out, r.err)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("dup", ["ts", "model", "units"])
def test_duplicate_trace_columns_are_one_line(cli, tmp_path, dup):
    p = tmp_path / "t.parquet"
    arrays = {"ts": pa.array([0.0, 1.0]), "model": pa.array(["GPT3-13B"] * 2), "units": pa.array([1.0, 2.0])}
    names = ["ts", "model", "units", dup]
    pq.write_table(pa.Table.from_arrays([arrays[n] for n in names], names=names), p)
    for cmd in (["replay", p, "--policy", "lru"], ["trace", "inspect", p],
                ["export", "libcachesim", p, "-o", tmp_path / "o.csv"]):
        _clean_error(cli(*cmd), str(p), f"column {dup!r}", "more than once")
    r = cli("trace", "validate", p)
    assert r.code == 2 and "more than once" in r.out + r.err and "Traceback" not in r.err, (r.out, r.err)


def test_large_but_allowed_numbers_give_finite_costs(cli, tmp_path):
    p = tmp_path / "t.parquet"
    pl.DataFrame({"ts": [-1e15, 0.0, 1e15], "model": ["GPT3-13B"] * 3, "units": [1e9] * 3,
                  "input_mb": [1e6] * 3}).write_parquet(p)
    r = cli("replay", p, "--policy", "lru,cloud", "--json", "--set", "edge.tflops=0.001", "--set",
            "edge.utilization=1e-6", "--set", "cloud.uplink_mbps=1e-6", "--set", "context.example_units=1e6")
    assert r.code == 0, r.err
    for row in json.loads(r.out):
        for k, v in row.items():
            if isinstance(v, float):
                assert math.isfinite(v) and abs(v) < 1e300, (k, v)


# -- synth and import arguments -------------------------------------------------------------------------
@pytest.mark.parametrize("args,needle", [
    (["--requests", "10", "--seed", "-1"], "seed"),
    (["--requests", "10", "--seed", str(2**64)], "seed"),
    (["--requests", "2000000000"], "--force"),
    (["--duration", "1e30"], "--force"),
    (["--requests", "10", "--rate", "0"], "rate"),
    (["--requests", "10", "--rate", "nan"], "rate"),
    (["--requests", "10", "--alpha", "1e300"], "alpha"),
    (["--requests", "10", "--arrivals", "gamma", "--cv", "inf"], "cv"),
    (["--requests", "10", "--drift-every", "inf"], "drift_every"),
    (["--requests", "10", "--diurnal", "nan"], "diurnal"),
    (["--duration", "inf"], "duration"),
])
def test_bad_synth_arguments_are_one_line(cli, tmp_path, args, needle):
    out = tmp_path / "o.parquet"
    _clean_error(cli("synth", "-o", out, *args), needle)
    assert list(tmp_path.iterdir()) == []


def test_synth_shows_its_estimate(cli, tmp_path):
    r = cli("synth", "-o", tmp_path / "o.parquet", "--duration", "1000", "--rate", "2000")
    assert r.code == 0 and "about 2,000,000 requests" in r.err and "GB" in r.err


def test_import_latency_file_must_exist(cli, tmp_path):
    src = tmp_path / "lora_request_trace.csv"
    src.write_text("gmt_create,predict_type,predict_status,num_images_per_prompt,num_inference_steps,"
                   "checkpoint_model_version_id\n2025-01-01 00:00:00,TXT_2_IMG,SUCCEED,1,20,m1\n"
                   "2025-01-01 00:00:05,IMG_2_IMG,SUCCEED,1,20,m2\n")
    out = tmp_path / "a.parquet"
    _clean_error(cli("import", "alibaba-genai", src, "-o", out, "--latency", tmp_path / "MISSING"), "MISSING")
    assert not out.exists()
    _clean_error(cli("import", "azure-llm", src, "-o", out, "--seed", "-1"), "seed")


def test_import_refuses_a_huge_source_unless_forced(cli, tmp_path):
    src = tmp_path / "huge.csv"
    with open(src, "wb") as f:
        f.truncate(5 * 10**9)  # sparse: no disk used
    _clean_error(cli("import", "csv", src, "-o", tmp_path / "o.parquet"), "--force", "5.0 GB")


def test_scenario_out_records_the_catalog(cli, tmp_path):
    src = tmp_path / "lora_request_trace.csv"
    src.write_text("gmt_create,predict_type,predict_status,num_images_per_prompt,num_inference_steps,"
                   "checkpoint_model_version_id\n2025-01-01 00:00:00,TXT_2_IMG,SUCCEED,1,20,m1\n"
                   "2025-01-01 00:00:05,IMG_2_IMG,SUCCEED,1,20,m2\n")
    (tmp_path / "base_model_update_latency_anon.csv").write_text("value\n1000\n2000\n3000\n9000\n")
    out, cat, sc = tmp_path / "a.parquet", tmp_path / "cats" / "a.csv", tmp_path / "a.toml"
    cat.parent.mkdir()
    r = cli("import", "alibaba-genai", src, "-o", out, "--catalog-out", cat, "--scenario-out", sc)
    assert r.code == 0, r.err
    assert tomllib.loads(sc.read_text())["catalog"]["path"] == "cats/a.csv"
    r = cli("replay", out, "--scenario", sc, "--policy", "lru", "--json")  # no --catalog needed
    assert r.code == 0, r.err
    assert json.loads(r.out)[0]["catalog"] == str(cat)


# -- drop-in policies -----------------------------------------------------------------------------------
POLICY = "from pfmbench.policies import Policy\n\nclass P(Policy):\n    name = {name!r}\n\n" \
         "    def key(self, entry, now):\n        return {key}\n"


@pytest.mark.parametrize("body,needle", [
    (POLICY.format(name="lru", key="entry.last_use"), "built-in"),
    (POLICY.format(name="nan-key", key="float('nan')"), "key() returned nan"),
    (POLICY.format(name="none-key", key="None"), "key() returned None"),
    (POLICY.format(name="dict-key", key="{}"), "key() returned {}"),
    ("import sys\nsys.exit(0)\n", "sys.exit(0)"),
    ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
    ("print('hello')\n" + POLICY.format(name="printer", key="entry.last_use"), "prints"),
    ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("x = (\n", "SyntaxError"),
    ("import os\n", "defines no subclass"),
    # the user's code raising or exiting in its constructor, bind() or key(), not at import
    (POLICY.format(name="init-raises", key="entry.last_use") + "\n    def __init__(self, seed):\n"
     "        raise ValueError('no init')\n", "ValueError: no init"),
    (POLICY.format(name="init-args", key="entry.last_use") + "\n    def __init__(self, a, b):\n        pass\n",
     "TypeError"),
    (POLICY.format(name="bind-raises", key="entry.last_use") + "\n    def bind(self, tables):\n"
     "        raise RuntimeError('no bind')\n", "RuntimeError: no bind"),
    (POLICY.format(name="exit-key", key="__import__('sys').exit(0)"), "sys.exit(0)"),
    # admit() must say yes or no: NaN and "no" are truthy, None falsy, and were taken silently
    (POLICY.format(name="nan-admit", key="entry.last_use") + "\n    def admit(self, model, now):\n"
     "        return float('nan')\n", "admit() returned nan"),
    (POLICY.format(name="none-admit", key="entry.last_use") + "\n    def admit(self, model, now):\n"
     "        return None\n", "admit() returned None"),
    (POLICY.format(name="str-admit", key="entry.last_use") + "\n    def admit(self, model, now):\n"
     "        return 'no'\n", "admit() returned 'no'"),
    (POLICY.format(name="exit-bind", key="entry.last_use") + "\n    def bind(self, tables):\n"
     "        raise SystemExit(4)\n", "sys.exit(4)"),
])
def test_bad_dropin_policies_are_one_line_naming_the_file(cli, tmp_path, small_trace, body, needle):
    p = tmp_path / "bad_policy.py"
    p.write_text(body)
    r = cli("replay", small_trace, "--policy", p, "--set", "gpu_memory_gb=31", "--json")
    _clean_error(r, str(p), needle)
    assert r.out == ""


def test_readme_policy_snippet_lists_and_runs(cli, tmp_path, small_trace):
    p = tmp_path / "readme_policy.py"
    p.write_text("from pfmbench.policies import Policy\n\nclass LeastContextPerGBReadme(Policy):\n"
                 "    name = \"lc-size-readme\"\n    def key(self, entry, now):\n"
                 "        return ((entry.context(now) + 1.0) / entry.memory_gb, entry.last_use)\n")
    r = cli("policies", p)
    assert r.code == 0 and "lc-size-readme" in r.out, r.err
    r = cli("replay", small_trace, "--policy", f"{p},lc", "--json")
    assert r.code == 0, r.err


def test_dropin_file_is_imported_once(cli, tmp_path, small_trace):
    count = tmp_path / "imports.txt"
    p = tmp_path / "counted.py"
    p.write_text(f"open({str(count)!r}, 'a').write('x')\n" + POLICY.format(name="counted", key="entry.last_use"))
    assert cli("replay", small_trace, "--policy", f"{p},lru", "--json").code == 0
    assert count.read_text() == "x"


# -- commands agree about models ------------------------------------------------------------------------
def test_models_inspect_and_replay_agree(cli, small_trace):
    models = json.loads(cli("models", "--json").out)
    names = {m["model"] for m in models}
    never = {m["model"] for m in models if not m["fits_gpu"]}
    assert len(names) == 18 and never == {"GPT3-175B/translation", "GPT3-175B/basic_arithmetic",
                                          "GPT3-175B/superglue"}
    s = json.loads(cli("trace", "inspect", small_trace, "--json").out)
    assert set(s["models"]) <= names and s["n_models"] == 4  # two GPT3-13B copies, two CLIP models
    row = json.loads(cli("replay", small_trace, "--policy", "lru", "--json").out)[0]
    assert set(row["never_fit_models"].split(",")) == never and "can never fit" in row["notes"]
    assert json.loads(cli("models", "--json", "--gpu", "l4").out)[0]["fits_gpu"] is False  # 30.8 GB > 24 GB


def test_note_when_nothing_is_evicted(cli, small_trace, tmp_path):
    out = tmp_path / "s.parquet"
    r = cli("replay", small_trace, "--policy", "lru,fifo", "--out", out)
    assert r.code == 0 and "no model was ever evicted" in r.out
    assert all("no model was ever evicted" in n for n in pl.read_parquet(out)["notes"])
    r = cli("replay", small_trace, "--policy", "lru", "--gpu-memory", "31", "--json")
    assert "no model was ever evicted" not in json.loads(r.out)[0]["notes"]


def test_header_shows_the_gpu_memory_in_force(cli, small_trace):
    r = cli("replay", small_trace, "--policy", "lru", "--gpu-memory", "24")
    assert r.code == 0 and "24 GB GPU memory" in r.out and "80 GB overridden" in r.out
    r = cli("replay", small_trace, "--policy", "lru", "--gpu", "l4")
    assert "24 GB GPU memory (l4 preset)" in r.out


def test_models_is_readable_at_80_columns(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("models")
    assert r.code == 0
    assert max(len(line) for line in r.out.splitlines()) <= 80
    assert "GPT3-13B/translation" in r.out and "NEVER" in r.out


def test_docs_list_the_scenario_bounds():
    import re
    from pathlib import Path

    from pfmbench.scenario import BOUNDS

    text = (Path(__file__).resolve().parent.parent / "docs" / "model.md").read_text()
    text = text.split("### Bounds of every value", 1)[1].split("\n## ", 1)[0]
    rows = {(m.group(1), m.group(2)): (m.group(3), m.group(4)) for m in
            re.finditer(r"^\| `(\w+)\.(\w+)` \| ([^|]+) \| ([^|]+) \|$", text, re.MULTILINE)}
    assert set(rows) == set(BOUNDS)
    for key, (lo, hi) in BOUNDS.items():
        assert float(rows[key][0]) == lo
        assert rows[key][1].strip() == "2**64-1" or float(rows[key][1]) == hi


def test_a_policy_given_twice_is_refused(cli, tmp_path, small_trace):
    _clean_error(cli("replay", small_trace, "--policy", "lru,LRU"), "given twice")
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    for p in (a, b):
        p.write_text(POLICY.format(name="twin", key="entry.last_use"))
    _clean_error(cli("replay", small_trace, "--policy", f"{a},{b}"), "given twice", str(a), str(b))
    assert cli("replay", small_trace, "--policy", f"{b},lru", "--json").code == 0  # alone, b may take the name
    # `all` and a name it holds in other case: lc twice, two rows nobody could tell apart
    r = cli("replay", small_trace, "--policy", "all,LC", "--json")
    assert r.code == 0 and sorted(x["policy"] for x in json.loads(r.out)) == sorted(
        ["random-placement", "cloud", "fifo", "lfu", "lc", "lru", "random"]), r.err
    # a sweep ran lc twice and wrote two identical rows (compare and check then match them by position)
    _clean_error(cli("sweep", small_trace, "--policy", "lc,lc", "--dry-run"), "given twice")
    from pfmbench.api import replay_many
    from pfmbench.errors import InputError

    with pytest.raises(InputError, match="given twice"):
        replay_many(str(small_trace), ["lru", "LRU"])


def test_a_static_key_works(cli, tmp_path, small_trace):
    p = tmp_path / "static.py"
    p.write_text("from pfmbench.policies import Policy\n\nclass S(Policy):\n    name = 'static-key'\n\n"
                 "    @staticmethod\n    def key(entry, now):\n        return entry.last_use\n")
    r = cli("replay", small_trace, "--policy", f"{p},lru", "--gpu-memory", "31", "--json")
    assert r.code == 0, r.err
    a, b = json.loads(r.out)
    assert (a["loads"], a["evictions"]) == (b["loads"], b["evictions"])


def test_replay_of_a_builtin_scenario_keeps_the_options(cli):
    r = cli("replay", "default", "--policy", "lru", "--gpu-memory", "24", "--set", "trace.requests=300", "--json")
    assert r.code == 0, r.err
    row = json.loads(r.out)[0]
    assert row["trace"] == "synthetic:default" and row["setting_edge_gpu_memory_gb"] == 24
    assert row["n_requests"] == 300
