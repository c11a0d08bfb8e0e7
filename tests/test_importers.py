"""Importers (alibaba-genai, azure-llm, generic CSV) and the libCacheSim export, as a library."""

import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import PUBLIC_TRACES

from pfmbench.catalog import load_catalog
from pfmbench.errors import InputError
from pfmbench.trace import importers
from pfmbench.trace.export import export_libcachesim
from pfmbench.trace.importers import import_alibaba, import_azure, import_csv, sd_class
from pfmbench.trace.schema import read_trace
from pfmbench.trace.synth import write_synth

ROOT = Path(__file__).resolve().parent.parent
TRACES = PUBLIC_TRACES
ALIBABA = TRACES / "alibaba-genai-2026/lora_request_trace.csv"
AZURE_CODE = TRACES / "azure-llm-2023/AzureLLMInferenceTrace_code.csv"
real = pytest.mark.skipif(not ALIBABA.is_file() or not AZURE_CODE.is_file(), reason="the full public traces are not here (docs/traces.md says where to download them; or set PFMBENCH_TRACES)")
CAT = load_catalog()


# -- alibaba-genai -------------------------------------------------------------------------
@real
def test_alibaba_trace_catalog_and_calibration(tmp_path):
    out, cat_out, sc_out = tmp_path / "a.parquet", tmp_path / "a.csv", tmp_path / "a.toml"
    rep = import_alibaba(ALIBABA, out, catalog_out=cat_out, scenario_out=sc_out)
    assert rep.rows == 26_798 and rep.dropped == {"no base model, steps or image count": 25}
    cat = load_catalog(cat_out)
    assert len(cat.models) == 86 and {m.family for m in cat.models} == {"MFM"}
    arrays = read_trace(out, cat)  # the trace validates against its catalog
    assert len(arrays) == 26_798 and arrays.ts[0] == 0.0
    df = pl.read_parquet(out)
    # First rows of the source: 30 steps x 1 image, then 40 x 1, then 40 x 8; gaps in whole seconds.
    assert df["units"].head(3).to_list() == [30.0, 40.0, 320.0]
    assert df["ts"][1] == (18 * 3600 + 16 * 60 + 14) - (16 * 3600 + 57 * 60 + 50)
    assert df["input_mb"][0] == pytest.approx((63 + 26) / 1e6)
    assert set(df["task"].unique()) == {"text_to_image", "image_to_image", "inpainting"}
    # Sizes follow the documented class of each id.
    m = cat.find("M0002")
    assert m.params_m == importers.SD_CLASSES[sd_class("M0002")]["params_m"]
    edge = tomllib.loads(sc_out.read_text())["edge"]
    assert edge["load_overhead_s"] == pytest.approx(2.287, abs=0.01)  # p5 of the measured latencies
    assert 0.05 < edge["load_gbps"] < 1.0


@real
def test_alibaba_only_succeeded(tmp_path):
    rep = import_alibaba(ALIBABA, tmp_path / "a.parquet", only_succeeded=True)
    assert rep.rows == 26_392 and rep.dropped["not SUCCEED"] == 26_798 - 26_392
    assert not (tmp_path / "a.csv").exists()


def test_sd_class_is_deterministic_and_follows_fraction():
    ids = [f"M{i:04d}" for i in range(2000)]
    share = np.mean([sd_class(i, 0.25) == "SDXL" for i in ids])
    assert share == pytest.approx(0.25, abs=0.04)
    assert all(sd_class(i, 0.0) == "SD1.5" for i in ids) and all(sd_class(i, 1.0) == "SDXL" for i in ids)
    assert [sd_class(i) for i in ids[:50]] == [sd_class(i) for i in ids[:50]]


def test_alibaba_bad_time_names_line(tmp_path):
    src = tmp_path / "lora.csv"
    src.write_text("gmt_create,predict_type,predict_status,num_images_per_prompt,num_inference_steps,"
                   "checkpoint_model_version_id\n"
                   "2024-11-15 16:57:50,TXT_2_IMG,SUCCEED,1,30,M1\n"
                   "yesterday,TXT_2_IMG,SUCCEED,1,30,M1\n")
    with pytest.raises(InputError, match=r"lora.csv: line 3: gmt_create is 'yesterday'"):
        import_alibaba(src, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


# -- azure-llm -----------------------------------------------------------------------------
@real
def test_azure_times_tokens_and_model_mix(tmp_path):
    out = tmp_path / "z.parquet"
    rep = import_azure(AZURE_CODE, out, alpha=1.0, seed=3)
    assert rep.rows == 8_819
    df = pl.read_parquet(out)
    src = pl.read_csv(AZURE_CODE)
    assert df["ts"][1] == pytest.approx(0.052, abs=1e-9)  # 18:17:04.0319600 - 18:17:03.9799600
    assert df["units"][0] == 4808 + 10
    assert (df["units"] == (src["ContextTokens"] + src["GeneratedTokens"]).cast(pl.Float64)).all()
    lfm = {(m.name, t.name) for m in CAT.models if m.family == "LFM" for t in m.tasks}
    pairs = df.group_by("model", "task").len().sort("len", descending=True)
    assert {(m, t) for m, t, _ in pairs.iter_rows()} == lfm
    assert tuple(pairs.row(0)[:2]) == CAT.pair_names()[0]  # rank 1 = first LFM pair in catalog order
    again = tmp_path / "z2.parquet"
    import_azure(AZURE_CODE, again, alpha=1.0, seed=3)
    assert again.read_bytes() == out.read_bytes()
    import_azure(AZURE_CODE, again, alpha=1.0, seed=4)
    assert not pl.read_parquet(again)["model"].equals(df["model"])


def test_azure_needs_lfm_models(tmp_path):
    cat = tmp_path / "c.csv"
    cat.write_text("model,family,task,params_m,gflops,zero_shot\nV,VFM,seg,10,1,50\n")
    src = tmp_path / "z.csv"
    src.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,1,2\n")
    with pytest.raises(InputError, match="no LFM"):
        import_azure(src, tmp_path / "o.parquet", catalog=cat)


# -- generic CSV ---------------------------------------------------------------------------
def test_csv_column_mapping_and_defaults(tmp_path):
    src = tmp_path / "my.csv"
    src.write_text("when_ms,name,job,work\n"
                   "2000,GPT3-13B,superglue,100\n"
                   "1500,clip-vit-l/14,,1\n"
                   "2500,UniFormer-S,pose_estimation,1\n")
    out = tmp_path / "t.parquet"
    rep = import_csv(src, out, ts="when_ms", model="name", task="job", units="work", time_format="ms")
    assert rep.rows == 3
    df = pl.read_parquet(out).with_columns(pl.col("model", "task").cast(pl.String))
    assert df["ts"].to_list() == [0.0, 0.5, 1.0]  # sorted and shifted to start at 0
    assert df["model"].to_list() == ["clip-vit-l/14", "GPT3-13B", "UniFormer-S"]
    assert df["task"].to_list() == ["classification", "superglue", "pose_estimation"]  # empty -> first task
    assert df["input_mb"].to_list() == [0.5, 0.004, 0.5]  # no column -> family defaults
    assert len(read_trace(out, CAT)) == 3


def test_csv_strftime_and_standard_names(tmp_path):
    src = tmp_path / "s.csv"
    src.write_text("ts,model,units,input_mb\n"
                   "15/11/2024 10:00:01,GPT3-175B,10,0.1\n"
                   "15/11/2024 10:00:00,GPT3-13B,20,0.2\n")
    out = tmp_path / "t.parquet"
    import_csv(src, out, time_format="%d/%m/%Y %H:%M:%S")
    df = pl.read_parquet(out)
    assert df["ts"].to_list() == [0.0, 1.0] and df["units"].to_list() == [20.0, 10.0]
    assert df["input_mb"].to_list() == [0.2, 0.1]


@pytest.mark.parametrize("text,kw,match", [
    ("ts,model\n1,GPT3-13B\nsoon,GPT3-13B\n", {"time_format": "seconds"}, r"line 3: ts is 'soon'"),
    ("ts,model\n2024-01-01 00:00:00,GPT3-13B\nnot a time,GPT3-13B\n", {}, r"line 3: ts is 'not a time'"),
    ("ts,model\n1,GPT3-13B\n2,\n", {}, r"line 3: model is empty"),
    ("ts,model\n1,GPT3-13B\n2,GPT-5\n", {}, r"line 3: unknown model/task 'GPT-5'"),
    ("ts,model,units\n1,GPT3-13B,-4\n", {}, r"line 2: units is '-4'"),
    ("ts,model,units\n1,GPT3-13B,\n", {}, r"line 2: units is missing"),
    ("time,model\n1,GPT3-13B\n", {}, r"missing column\(s\) 'ts'"),
    ("ts,model\n", {}, r"no rows"),
    ("ts,model\n1,GPT3-13B,extra,fields\n", {}, r"cannot read CSV"),
    ("ts,model\n1,GPT3-13B\n", {"units": "tokens"}, r"missing column\(s\) 'tokens'"),
])
def test_csv_bad_input_names_file_and_line(tmp_path, text, kw, match):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    out = tmp_path / "o.parquet"
    with pytest.raises(InputError, match=match) as e:
        import_csv(src, out, **kw)
    assert str(src) in str(e.value) and "\n" not in str(e.value)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_missing_source(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        import_csv(tmp_path / "nope.csv", tmp_path / "o.parquet")


# -- libCacheSim export --------------------------------------------------------------------
def _lcs_reader(path):
    import libcachesim as lcs

    p = lcs.ReaderInitParam(has_header=True, has_header_set=True, delimiter=",", obj_id_is_num=True,
                            obj_id_is_num_set=True)
    p.time_field, p.obj_id_field, p.obj_size_field = 1, 2, 3
    return lcs.TraceReader(str(path), lcs.TraceType.CSV_TRACE, p)


def test_export_reads_back_in_libcachesim(tmp_path):
    pytest.importorskip("libcachesim")
    t, out = tmp_path / "t.parquet", tmp_path / "t.csv"
    write_synth(t, CAT, requests=2000, rate=0.5, seed=1)
    assert export_libcachesim(t, out, batch_rows=300) == 2000
    reqs = [(r.clock_time, r.obj_id, r.obj_size) for r in _lcs_reader(out)]
    arrays = read_trace(t, CAT)
    model = np.array([i for i, _ in CAT.pairs])[arrays.pair]
    assert len(reqs) == 2000
    assert [o for _, o, _ in reqs] == list(model + 1)
    assert [s for _, _, s in reqs] == [CAT.models[i].memory_bytes for i in model]
    assert [c for c, _, _ in reqs] == list(np.floor(arrays.ts).astype(int))


def test_export_sorts_an_unsorted_trace(tmp_path):
    pytest.importorskip("libcachesim")
    t, out = tmp_path / "u.parquet", tmp_path / "u.csv"
    pq.write_table(pa.table({"ts": [5.0, 1.0, 3.5], "model": ["GPT3-175B", "GPT3-13B", "CLIP-ViT-H/14"]}), t)
    export_libcachesim(t, out)
    reqs = [(r.clock_time, r.obj_id) for r in _lcs_reader(out)]
    ids = {m.name: i + 1 for i, m in enumerate(CAT.models)}
    assert reqs == [(0, ids["GPT3-13B"]), (2, ids["CLIP-ViT-H/14"]), (4, ids["GPT3-175B"])]


def test_export_unknown_model_leaves_no_file(tmp_path):
    t, out = tmp_path / "u.parquet", tmp_path / "u.csv"
    pq.write_table(pa.table({"ts": [1.0, 2.0], "model": ["GPT3-13B", "nope"]}), t)
    with pytest.raises(InputError, match=r"row 1: unknown model 'nope'"):
        export_libcachesim(t, out)
    assert not out.exists()


def test_importers_keep_users_and_edges_where_the_trace_says_them(tmp_path):
    """Alibaba's groupId becomes `user` (multi-edge replays hash it to a home edge); a CSV's user/edge columns
    are kept; Azure's trace names neither (README, "Several edge servers"; docs/traces.md)."""
    root = Path(__file__).parent / "data"
    import_alibaba(root / "alibaba-genai-2026" / "lora_request_trace.csv", tmp_path / "a.parquet")
    ali = pl.read_parquet(tmp_path / "a.parquet")
    assert ali["user"].cast(pl.String).str.starts_with("G").all() and "edge" not in ali.columns
    import_azure(root / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv", tmp_path / "z.parquet")
    assert not {"user", "edge"} & set(pl.read_parquet(tmp_path / "z.parquet").columns)
    (tmp_path / "c.csv").write_text("ts,model,who,site\n1.5,CLIP-ViT-L/14,bob,e2\n0,GPT3-13B,alice,e1\n")
    import_csv(tmp_path / "c.csv", tmp_path / "c.parquet", user="who", edge="site")
    c = pl.read_parquet(tmp_path / "c.parquet")
    assert c["user"].cast(pl.String).to_list() == ["alice", "bob"] and c["edge"].cast(pl.String).to_list() == ["e1", "e2"]
    with pytest.raises(InputError, match="site is empty"):
        (tmp_path / "d.csv").write_text("ts,model,site\n0,GPT3-13B,\n")
        import_csv(tmp_path / "d.csv", tmp_path / "d.parquet", edge="site")
