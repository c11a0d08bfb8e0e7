import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pfmbench.catalog import CURVE_LOG, CURVE_PIECEWISE, Task, load_catalog
from pfmbench.errors import InputError


def test_accuracy_fit_matches_model_md_checks():
    cat = load_catalog()
    gpt = cat.find("gpt3-13b")  # case-insensitive
    tr, ar, _ = gpt.tasks
    assert tr.c == pytest.approx(10.67) and tr.alpha == pytest.approx(0.12983, abs=1e-5)
    assert tr.accuracy(4) == pytest.approx(27.567, abs=1e-3)
    assert tr.accuracy(64) == pytest.approx(30.83, abs=1e-9)
    assert tr.accuracy(1) == pytest.approx(26.12, abs=1e-9) and tr.accuracy(0) == 15.45
    assert ar.c == pytest.approx(12.19) and ar.alpha == pytest.approx(-0.05013, abs=1e-5)
    assert ar.accuracy(16) == pytest.approx(14.80, abs=1e-2)
    assert tr.accuracy(0.5) == pytest.approx(15.45 + 0.5 * 10.67)  # linear below one example


def test_fallback_when_no_log_fit():
    t = Task("x", 50.0, 40.0, 60.0, 8)  # c <= 0
    assert t.kind == CURVE_PIECEWISE
    assert t.accuracy(0) == 50 and t.accuracy(1) == pytest.approx(40) and t.accuracy(8) == pytest.approx(60)
    assert t.accuracy(1000) == pytest.approx(60)
    assert Task("y", 10.0, 20.0, 30.0, 64).kind == CURVE_LOG


def test_table1_models_and_memory():
    cat = load_catalog()
    names = [m.name for m in cat.models]
    assert "UniFormer-S/pose_estimation" in names and "CLIP-ViT-L/14" in names
    assert len(cat.pairs) == 22
    assert cat.find("GPT3-13B").memory_gb == pytest.approx(30.84)
    assert cat.find("GPT3-175B").memory_gb == pytest.approx(419.04)
    assert cat.find("GPT3-13B").context_window == 64
    assert cat.find("CLIP-ViT-L/14").context_window == 0
    lookup = cat.lookup()
    assert ("uniformer-s", "pose_estimation") in lookup  # found by base name and task
    copies = cat.with_task_copies()
    assert copies.find("GPT3-13B/translation").memory_gb == pytest.approx(30.84)
    assert len(copies.models) == len(cat.models) + 4


def test_precision_and_overhead():
    cat = load_catalog(precision="int8", runtime_overhead=0.0)
    assert cat.find("GPT3-13B").memory_gb == pytest.approx(12.85)


def test_user_csv_and_toml(tmp_path):
    csv = tmp_path / "cat.csv"
    csv.write_text("model,family,task,params_m,gflops,k_few,zero_shot,one_shot,few_shot,precision,memory_gb\n"
                   "Llama-7B,LFM,chat,7000,14,16,40,50,60,int4,\n"
                   "Llama-7B,LFM,code,7000,14,16,20,30,35,int4,\n"
                   "SD15,MFM,txt2img,1066,700,,80,,,fp16,2.5\n")
    cat = load_catalog(csv)
    m = cat.find("llama-7b")
    assert len(m.tasks) == 2 and m.context_window == 16 and m.memory_gb == pytest.approx(7000e6 * 0.5 * 1.2 / 1e9)
    assert cat.find("SD15").memory_gb == 2.5
    toml = tmp_path / "cat.toml"
    toml.write_text('[[model]]\nname = "A"\nfamily = "VFM"\nparams_m = 10\ngflops = 1\n'
                    '[[model.task]]\nname = "cls"\nzero_shot = 70\n')
    assert load_catalog(toml).find("A").tasks[0].zero_shot == 70


@pytest.mark.parametrize("body,needle", [
    ("model,family,task,params_m,gflops\nA,LFM,t,1,1\n", "zero_shot"),
    ("model,family,task,params_m,gflops,zero_shot\nA,XFM,t,1,1,5\n", "line 2: family"),
    ("model,family,task,params_m,gflops,zero_shot\nA,LFM,t,abc,1,5\n", "line 2: params_m is not a number"),
    ("model,family,task,params_m,gflops,zero_shot\nA,LFM,t,1,-1,5\n", "line 2: gflops"),
    ("model,family,task,params_m,gflops,zero_shot,precision\nA,LFM,t,1,1,5,fp8\n", "precision"),
    ("model,family,task,params_m,gflops,zero_shot\nA,LFM,t,1,1,5\nA,LFM,t,1,1,6\n", "given twice"),
    ("model,family,task,params_m,gflops,zero_shot, gflops\nA,LFM,t,1,1,5,2\n",
     "column 'gflops' appears twice in the header"),
])
def test_bad_catalog_errors_name_file_and_row(tmp_path, body, needle):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(InputError) as e:
        load_catalog(p)
    assert str(p) in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_missing_catalog_file():
    with pytest.raises(InputError, match="not found"):
        load_catalog("/nonexistent/cat.csv")


def test_accuracy_is_monotone_in_k_for_table1_where_few_beats_one():
    for m in load_catalog().models:
        for t in m.tasks:
            if t.kind == CURVE_LOG and t.alpha > 0:
                vals = [t.accuracy(k) for k in (0, 0.5, 1, 2, 4, 8, 16, 32, 64)]
                assert all(b >= a - 1e-12 for a, b in itertools.pairwise(vals))
                assert math.isclose(t.accuracy(t.k_few), t.few_shot, abs_tol=1e-9)


@given(zero=st.floats(0, 90), gain1=st.floats(0.01, 30), few=st.floats(0, 100),
       k_few=st.sampled_from([2, 4, 8, 16, 32, 50, 64]))
def test_accuracy_curve_passes_through_table_points(zero, gain1, few, k_few):
    """Whatever the fit (log or fallback), a(0), a(1) and a(k_few) are Table I's three values."""
    t = Task("x", zero, zero + gain1, few, k_few)
    assert t.accuracy(0) == zero
    assert t.accuracy(1) == pytest.approx(zero + gain1, abs=1e-9)
    assert t.accuracy(k_few) == pytest.approx(few, abs=1e-7)
    if t.kind == CURVE_LOG and t.alpha > 0:
        ks = sorted([0, 0.25, 0.5, 1, 2, k_few / 2, k_few, 2 * k_few])
        vals = [t.accuracy(k) for k in ks]
        assert all(b >= a - 1e-9 for a, b in itertools.pairwise(vals))
