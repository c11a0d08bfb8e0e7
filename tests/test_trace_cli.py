"""CLI tests for synth, import, export and trace inspect/validate: output, files, and clean errors."""

import json
import tomllib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import PUBLIC_TRACES

from pfmbench.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
ALIBABA = PUBLIC_TRACES / "alibaba-genai-2026/lora_request_trace.csv"
AZURE = PUBLIC_TRACES / "azure-llm-2023/AzureLLMInferenceTrace_conv.csv"
real = pytest.mark.skipif(not ALIBABA.is_file() or not AZURE.is_file(),
                          reason="the full public traces are not here (docs/traces.md says where to download them); "
                                 "the samples in tests/data are tested instead")
DATA = ROOT / "tests" / "data"  # the first 300 requests of each public trace, committed


@pytest.mark.parametrize("kind, sample", [("alibaba-genai", "alibaba-genai-2026/lora_request_trace.csv"),
                                          ("azure-llm", "azure-llm-2023/AzureLLMInferenceTrace_conv.csv")])
def test_import_the_public_trace_samples(cli, tmp_path, kind, sample):
    """The importers on the committed samples of the real traces: a clone anywhere runs them."""
    out = tmp_path / "t.parquet"
    extra = ["--catalog-out", tmp_path / "c.csv", "--scenario-out", tmp_path / "s.toml"] if kind == "alibaba-genai" else []
    r = cli("import", kind, DATA / sample, "-o", out, *extra)
    assert r.code == 0, r.err
    s = json.loads(cli("trace", "inspect", out, *(["--catalog", tmp_path / "c.csv"] if extra else []), "--json").out)
    assert s["n_requests"] == 300 and s["unknown_requests"] == 0


@pytest.fixture
def trace(cli, tmp_path):
    p = tmp_path / "t.parquet"
    r = cli("synth", "-o", p, "--requests", "5000", "--rate", "5", "--alpha", "1.0", "--seed", "2")
    assert r.code == 0, r.err
    return p


def assert_clean_error(r, *outputs):
    """Exit 2, one line `error: ...` on stderr, and no output (or temporary) file left behind."""
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err + r.out
    for p in outputs:
        assert not Path(p).exists()
        assert not list(Path(p).parent.glob(f".{Path(p).name}.*.tmp"))


@pytest.mark.parametrize("args", [["synth"], ["import"], ["export"], ["trace"], ["trace", "inspect"],
                                  ["trace", "validate"]])
def test_every_command_has_an_example(cli, args):
    r = cli(*args, "--help")
    assert r.code == 0 and "Example: pfmbench" in r.out


def test_synth_is_byte_identical_and_valid(cli, trace, tmp_path):
    again = tmp_path / "again.parquet"
    cli("synth", "-o", again, "--requests", "5000", "--rate", "5", "--alpha", "1.0", "--seed", "2")
    assert again.read_bytes() == trace.read_bytes()
    r = cli("trace", "validate", trace)
    assert r.code == 0 and r.out.strip() == "ok: 5000 requests"


def test_synth_duration_arrivals_and_drift(cli, tmp_path):
    p = tmp_path / "g.parquet"
    r = cli("synth", "-o", p, "--duration", "600", "--rate", "10", "--arrivals", "gamma", "--cv", "3",
            "--diurnal", "0.5", "--drift-every", "60", "--shuffle")
    assert r.code == 0, r.err
    ts = pl.read_parquet(p)["ts"]
    assert ts.max() < 600 and 4000 < len(ts) < 8000


def test_inspect_json_only_json(cli, trace):
    r = cli("trace", "inspect", trace, "--json")
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert s["n_requests"] == 5000 and s["n_pairs"] == 22 and s["n_model_names"] == 14
    assert s["n_models"] == 18  # as replay caches them: the default scenario runs one GPT-3 copy per task
    assert s["never_fit_models"] == ["GPT3-175B/translation", "GPT3-175B/basic_arithmetic", "GPT3-175B/superglue"]
    assert s["zipf_alpha"] == pytest.approx(1.0, abs=0.1)
    assert s["rate_mean"] == pytest.approx(5.0, rel=0.1)
    assert s["interarrival_cv"] == pytest.approx(1.0, abs=0.1)
    assert s["requests_per_minute_peak"] >= s["requests_per_minute_mean"]
    assert s["working_set_gb"] == pytest.approx(sum(m.memory_gb for m in load_catalog().with_task_copies().models))
    shared = json.loads(cli("trace", "inspect", trace, "--json", "--shared-tasks").out)
    assert shared["n_models"] == 14
    assert shared["working_set_gb"] == pytest.approx(sum(m.memory_gb for m in load_catalog().models))
    assert s["popularity"][0] == {"model": "GPT3-13B", "task": "translation", "requests": s["popularity"][0]["requests"],
                                  "share": s["popularity"][0]["share"]}


def test_inspect_table(cli, trace):
    r = cli("trace", "inspect", trace, "--top", "3")
    assert r.code == 0, r.err
    for word in ("requests", "Zipf α", "inter-arrival CV", "working set", "popularity (top 3 of 22)", "GPT3-13B"):
        assert word in r.out


def test_inspect_counts_unknown_models(cli, tmp_path):
    p = tmp_path / "u.parquet"
    pq.write_table(pa.table({"ts": [0.0, 30.0, 90.0, 91.0], "model": ["GPT3-13B", "mystery", "mystery", "GPT3-13B"]}), p)
    s = json.loads(cli("trace", "inspect", p, "--json").out)
    assert s["unknown_requests"] == 2 and s["n_model_names"] == 2 and s["requests_per_minute_peak"] == 2
    assert s["n_models"] == 1 and s["models"] == ["GPT3-13B/translation"]
    assert s["working_set_gb"] == pytest.approx(30.84)


def test_validate_lists_problems_with_rows(cli, tmp_path):
    p = tmp_path / "v.parquet"
    pq.write_table(pa.table({"ts": [0.0, 1.0, None, 3.0], "model": ["GPT3-13B", "nope", "GPT3-13B", "GPT3-13B"],
                             "units": [1.0, 2.0, 3.0, -1.0]}), p)
    r = cli("trace", "validate", p, "--limit", "2")
    assert r.code == 2
    assert r.out.splitlines() == ["row 1: unknown model 'nope' (not in catalog table1)", "row 2: ts is null"]
    assert r.err.strip() == f"error: {p}: 3 problem(s), first 2 shown"


@pytest.mark.parametrize("args,needle", [
    (["trace", "inspect", "{t}", "--top", "-1"], "--top must be at least 0, got -1"),
    (["trace", "validate", "{t}", "--limit", "-1"], "--limit must be at least 0, got -1"),
    (["synth", "-o", "{o}", "--requests", "0"], "requests must be at least 1, got 0"),
    (["synth", "-o", "{o}", "--requests", "10", "--seed", "-1"], "seed must be a whole number from 0"),
    # options of one importer given to another were ignored, a negative seed included
    (["import", "csv", "{c}", "-o", "{o}", "--seed", "-1"], "--seed applies to azure-llm only, not csv"),
    (["import", "csv", "{c}", "-o", "{o}", "--alpha", "0.5"], "--alpha applies to azure-llm only, not csv"),
    (["import", "azure-llm", "{c}", "-o", "{o}", "--sdxl-fraction", "0.5"],
     "--sdxl-fraction applies to alibaba-genai only, not azure-llm"),
    (["import", "azure-llm", "{c}", "-o", "{o}", "--time-format", "ms"], "--time-format applies to csv only"),
])
def test_negative_and_misplaced_integer_options_are_usage_errors(cli, trace, tmp_path, args, needle):
    src, out = tmp_path / "c.csv", tmp_path / "o.parquet"
    src.write_text("ts,model\n0,GPT3-13B\n")
    r = cli(*[a.format(t=trace, c=src, o=out) for a in args])
    assert_clean_error(r, out)
    assert needle in r.err and r.out == ""


def test_zero_top_and_limit_show_no_rows(cli, trace):
    r = cli("trace", "inspect", trace, "--top", "0")
    assert r.code == 0 and "popularity (top 0 of 22)" in r.out
    assert cli("trace", "validate", trace, "--limit", "0").out.strip() == "ok: 5000 requests"


@pytest.mark.parametrize("cmd", [["trace", "inspect"], ["trace", "validate"], ["export", "libcachesim"]])
@pytest.mark.parametrize("content", ["corrupt", "wrong_type", "empty", "missing"])
def test_bad_parquet_is_a_clean_error(cli, tmp_path, cmd, content):
    p = tmp_path / "bad.parquet"
    if content == "corrupt":
        p.write_bytes(b"PAR1 this is not parquet")
    elif content == "wrong_type":
        pq.write_table(pa.table({"ts": ["zero", "one"], "model": ["GPT3-13B", "GPT3-13B"]}), p)
    elif content == "empty":
        pq.write_table(pa.table({"ts": pa.array([], pa.float64()), "model": pa.array([], pa.string())}), p)
    before = p.read_bytes() if p.exists() else None
    out = tmp_path / "out.csv"
    extra = ["-o", out] if cmd[0] == "export" else []
    r = cli(*cmd, p, *extra)
    if cmd[-1] == "validate":  # validate lists file-level problems on stdout and sums up on stderr
        assert r.code == 2 and r.err.startswith("error: ") and len(r.err.strip().splitlines()) == 1
    else:
        assert_clean_error(r, out)
    assert (p.read_bytes() if p.exists() else None) == before  # input untouched


def test_export_libcachesim(cli, trace, tmp_path):
    out = tmp_path / "t.csv"
    r = cli("export", "libcachesim", trace, "-o", out)
    assert r.code == 0, r.err
    lines = out.read_text().splitlines()
    assert lines[0] == "time,obj_id,obj_size" and len(lines) == 5001
    assert_clean_error(cli("export", "belady", trace, "-o", tmp_path / "x.csv"), tmp_path / "x.csv")


@pytest.mark.parametrize("text,match", [
    ("ts,model\n1,GPT3-13B\n2\n", "line 3"),  # missing field
    ("ts,model\n1,GPT3-13B\n2,GPT3-13B,x\n", "cannot read CSV"),
    ("ts,model\n2024-01-01 10:00:00,GPT3-13B\n2024-13-45 10:00:00,GPT3-13B\n", "line 3: ts"),  # bad time
    ("ts,model\n1,GPT3-13B\n2,Llama\n", "line 3: unknown model/task 'Llama'"),
])
def test_import_csv_bad_input(cli, tmp_path, text, match):
    src = tmp_path / "in.csv"
    src.write_text(text)
    out = tmp_path / "o.parquet"
    r = cli("import", "csv", src, "-o", out)
    assert_clean_error(r, out)
    assert match in r.err and str(src) in r.err
    assert src.read_text() == text


@pytest.mark.parametrize("fmt,text,column", [
    ("csv", "ts,model,ts\n0,GPT3-13B,1\n1,GPT3-13B,2\n", "ts"),
    ("csv", "ts,model,units,units\n0,GPT3-13B,1,2\n", "units"),
    ("csv", "\ufeffts,\"model\",model\n0,GPT3-13B,x\n", "model"),
    ("azure-llm", "TIMESTAMP,ContextTokens,GeneratedTokens,ContextTokens\n2023-11-16 18:17:03.9,1,2,3\n",
     "ContextTokens"),
])
def test_import_duplicate_column_is_refused(cli, tmp_path, fmt, text, column):
    # polars would silently rename the second one `ts_duplicated_0` and import the first
    src = tmp_path / "dup.csv"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "o.parquet"
    r = cli("import", fmt, src, "-o", out)
    assert_clean_error(r, out)
    assert f"{src}: column {column!r} appears twice in the header" in r.err


def test_import_alibaba_latency_duplicate_column_is_refused(cli, tmp_path):
    src, lat = tmp_path / "lora_request_trace.csv", tmp_path / "lat.csv"
    src.write_text("gmt_create,predict_type,predict_status,num_images_per_prompt,num_inference_steps,"
                   "checkpoint_model_version_id\n2024-01-01 00:00:00,TXT_2_IMG,SUCCEED,1,20,m1\n")
    lat.write_text("value,value\n1000,2000\n3000,4000\n")
    out = tmp_path / "o.parquet"
    r = cli("import", "alibaba-genai", src, "-o", out, "--latency", lat)
    assert_clean_error(r, out)
    assert f"{lat}: column 'value' appears twice in the header" in r.err


def test_import_missing_source_and_bad_format(cli, tmp_path):
    out = tmp_path / "o.parquet"
    assert_clean_error(cli("import", "csv", tmp_path / "none.csv", "-o", out), out)
    assert_clean_error(cli("import", "parquet", tmp_path / "none.csv", "-o", out), out)
    assert_clean_error(cli("import", "azure-llm", tmp_path / "none.csv", "-o", out, "--catalog-out",
                           tmp_path / "c.csv"), out, tmp_path / "c.csv")


def test_import_csv_then_replayable(cli, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("t,m,tokens\n0.5,GPT3-13B,300\n0.25,GPT3-175B,20\n")
    out = tmp_path / "o.parquet"
    r = cli("import", "csv", src, "-o", out, "--ts", "t", "--model", "m", "--units", "tokens",
            "--time-format", "seconds")
    assert r.code == 0, r.err
    assert cli("trace", "validate", out).out.strip() == "ok: 2 requests"


@real
def test_import_alibaba_cli(cli, tmp_path):
    out, cat, sc = tmp_path / "a.parquet", tmp_path / "a.csv", tmp_path / "a.toml"
    r = cli("import", "alibaba-genai", ALIBABA, "-o", out, "--catalog-out", cat, "--scenario-out", sc,
            "--only-succeeded")
    assert r.code == 0, r.err
    assert "dropped" in r.err and "not SUCCEED" in r.err
    assert cli("trace", "validate", out, "--catalog", cat).out.strip() == "ok: 26392 requests"
    assert set(tomllib.loads(sc.read_text())["edge"]) == {"load_overhead_s", "load_gbps"}
    s = json.loads(cli("trace", "inspect", out, "--catalog", cat, "--json").out)
    n_models = len(load_catalog(cat).models)  # only models with a SUCCEED request
    assert s["n_models"] == n_models == 79 and s["unknown_requests"] == 0


@real
def test_import_azure_cli(cli, tmp_path):
    out = tmp_path / "z.parquet"
    r = cli("import", "azure-llm", AZURE, "-o", out, "--alpha", "1.2", "--seed", "5")
    assert r.code == 0, r.err
    s = json.loads(cli("trace", "inspect", out, "--json").out)
    assert s["n_requests"] == 19_366 and s["n_model_names"] == 2 and s["n_pairs"] == 6
    assert s["n_models"] == 6  # one copy per GPT-3 task, as replay caches them


def test_cli_default_sdxl_fraction_is_the_importers():
    from pfmbench.cli import traces
    from pfmbench.trace import importers

    assert traces.SDXL_FRACTION == importers.SDXL_FRACTION
