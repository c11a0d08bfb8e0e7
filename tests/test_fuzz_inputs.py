"""Fuzzed catalogs (CSV and TOML), scenarios (TOML) and `--set` values through the CLI, as
test_cli.py fuzzes traces: every input gives results (exit 0, JSON on stdout) or one clean line on
stderr with exit code 2, never a traceback, an overflow or a partial file."""

import csv
import io
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfmbench.scenario import Scenario, load_scenario

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

NUMBERS = [0, 1, -1, 2, 7, 32, 64, 100, 101, 1000, 12850, 1e6, 1e9, 1e15, 1e300, -1e300, 2**64, 0.5, 1e-9, 1e-300,
           math.nan, math.inf, -math.inf]
STRINGS = ["", " ", "x", "LFM", "VFM", "MFM", "lfm", "fp16", "int4", "fp8", "exp", "linear", "none", "a100-80", "l4",
           "1e3", "nan", "-1", "true", "table1", "translation", "héllo", "a,b", 'q"uote']
SCALARS = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(STRINGS), st.booleans(),
                    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70))


def toml_value(v, depth=0) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(max(min(v, 2**63 - 1), -(2**63)))  # TOML integers are 64-bit
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x, depth + 1) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(x, depth + 1)}" for k, x in v.items()) + "}"


VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.sampled_from(["name", "a"]), SCALARS,
                                                                         max_size=2))


def _check(r, *files):
    assert r.code in (0, 2), (r.code, r.err)
    assert "Traceback" not in r.err
    if r.code == 0:
        json.loads(r.out)
    else:
        assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
        assert r.out == ""
        if files:
            assert any(str(f) in r.err for f in files) or "scenario" in r.err or "catalog" in r.err, r.err


# -- catalogs -------------------------------------------------------------------------------------------
MODEL_KEYS = ["name", "family", "params_m", "gflops", "precision", "memory_gb", "context_window", "zero_shot",
              "one_shot", "few_shot", "k_few", "colour"]
TASK_KEYS = ["name", "zero_shot", "one_shot", "few_shot", "k_few", "params_m", "gflops", "colour"]
GOOD = {"name": st.sampled_from(["M1", "M2", "GPT3-13B"]), "family": st.sampled_from(["LFM", "VFM", "MFM"]),
        "params_m": st.sampled_from([1, 100, 12850, 1e5]), "gflops": st.sampled_from([0, 1, 26.5, 1e4]),
        "zero_shot": st.sampled_from([0, 15.5, 80, 100]), "one_shot": st.sampled_from([10, 30, 99]),
        "few_shot": st.sampled_from([5, 40, 100]), "k_few": st.sampled_from([1, 8, 64]),
        "precision": st.sampled_from(["fp16", "int8"]), "memory_gb": st.sampled_from([0, 1, 30, 500]),
        "context_window": st.sampled_from([0, 4, 64])}


def _rare(draw, one_in: int = 6) -> bool:
    """True about once in `one_in` draws (and False when hypothesis shrinks)."""
    return draw(st.sampled_from([False] * (one_in - 1) + [True]))


EXTREMES = [1e300, 1e15, 2**64, -1, math.nan, math.inf, 0, 1e-300]


def _odd(draw):
    """A value a careless or hostile user might write: a finite extreme, NaN, infinity, a string, a list..."""
    return draw(st.sampled_from(EXTREMES) if draw(st.booleans()) else VALUES)


def _field(draw, key):
    """Mostly valid values, often one odd one: the fuzz reaches replay as well as the validator."""
    return _odd(draw) if _rare(draw, 5) else draw(GOOD.get(key, SCALARS))


def _keys(draw, required, optional):
    if _rare(draw, 8):
        return draw(st.lists(st.sampled_from(required + optional), unique=True, max_size=6))
    return required + draw(st.lists(st.sampled_from(optional), unique=True, max_size=4))


@st.composite
def toml_catalogs(draw) -> str:
    if _rare(draw, 15):
        return f"model = {toml_value(draw(VALUES))}\n"
    lines = []
    for i in range(draw(st.integers(1, 3))):
        lines.append("[[model]]")
        for k in _keys(draw, ["name", "family", "params_m", "gflops"], MODEL_KEYS[4:]):
            lines.append(f"{k} = {toml_value(f'M{i}' if k == 'name' and not _rare(draw) else _field(draw, k))}")
        n_tasks = draw(st.integers(0, 3))
        if n_tasks and _rare(draw, 10):
            lines.append(f"task = {toml_value(draw(VALUES))}")
            continue
        if n_tasks == 0:
            lines.append(f"zero_shot = {toml_value(_field(draw, 'zero_shot'))}")
        for j in range(n_tasks):
            lines.append("[[model.task]]")
            for k in _keys(draw, ["name", "zero_shot"], TASK_KEYS[2:]):
                lines.append(f"{k} = {toml_value(f't{j}' if k == 'name' and not _rare(draw) else _field(draw, k))}")
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ["model", "family", "task", "params_m", "gflops", "k_few", "zero_shot", "one_shot", "few_shot",
               "precision", "memory_gb", "context_window", "colour"]


def _cell(v) -> str:
    return str(v) if not isinstance(v, (list, dict)) else json.dumps(v)


@st.composite
def csv_catalogs(draw) -> str:
    required = ["model", "family", "task", "params_m", "gflops", "zero_shot"]
    cols = _keys(draw, required, [c for c in CSV_COLUMNS if c not in required])
    if _rare(draw, 12):
        cols = draw(st.lists(st.sampled_from(CSV_COLUMNS), max_size=8))  # anything, even a column twice
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for i in range(draw(st.integers(1, 4))):
        names = {"model": f"M{i // 2}", "task": f"t{i}"}
        row = [_cell(names[c] if c in names and not _rare(draw) else _field(draw, c)) for c in cols]
        if _rare(draw, 12):
            row = row[:-1] if draw(st.booleans()) else row + ["extra"]
        w.writerow(row)
    return buf.getvalue()


@FUZZ
@given(data=st.data())
def test_any_catalog_gives_results_or_one_clean_error(cli, tmp_path_factory, data):
    d = tmp_path_factory.mktemp("cat")
    form = data.draw(st.sampled_from(["toml", "csv"]))
    p = d / f"c.{form}"
    p.write_text(data.draw(toml_catalogs() if form == "toml" else csv_catalogs()), encoding="utf-8")
    _check(cli("models", "--catalog", p, "--json"), p)
    out = d / "o.parquet"
    r = cli("replay", "--catalog", p, "--policy", "lru,lc", "--set", "trace.requests=60", "--json", "--out", out)
    _check(r, p)
    assert out.exists() == (r.code == 0)
    if r.code == 0:
        for row in json.loads(r.out):
            for k, v in row.items():
                assert not isinstance(v, float) or math.isfinite(v), (k, v)


# -- scenarios ------------------------------------------------------------------------------------------
PROTO = Scenario()
SECTION_KEYS = {s: [f.name for f in __import__("dataclasses").fields(getattr(PROTO, s))] for s in Scenario.SECTIONS}


def _sensible(section, key) -> list:
    """Values near the default (independent of the validator's bounds, so that it is tested, not copied)."""
    default = getattr(getattr(PROTO, section, None), key, "x")
    if isinstance(default, bool):
        return [True, False]
    if isinstance(default, int):
        return [default, 1, 2, 3]
    if isinstance(default, float):
        return [default, default * 2, default / 2, 0.0, 1.0]
    return {"preset": ["l4", "a100-80", "rtx4090"], "utility": ["exp", "linear", "none"],
            "precision": ["fp16", "int4"], "path": ["table1"]}.get(key, [default])


def _scenario_value(draw, section, key):
    return _odd(draw) if _rare(draw, 4) else draw(st.sampled_from(_sensible(section, key)))


@st.composite
def scenario_files(draw) -> str:
    lines = []
    for k in draw(st.lists(st.sampled_from(["seed", "name", "colour"] if _rare(draw) else ["seed", "name"]),
                           unique=True, max_size=2)):
        lines.append(f"{k} = {toml_value(draw(VALUES) if _rare(draw) else 3 if k == 'seed' else 'fuzz')}")
    sections = [*Scenario.SECTIONS, "gpu"] if _rare(draw) else list(Scenario.SECTIONS)
    for s in draw(st.lists(st.sampled_from(sections), unique=True, max_size=4)):
        if _rare(draw, 12):
            lines.append(f"{s} = {toml_value(draw(VALUES))}")
            continue
        lines.append(f"[{s}]")
        keys = SECTION_KEYS.get(s, ["x"]) + (["bogus"] if _rare(draw) else [])
        for k in draw(st.lists(st.sampled_from(keys), unique=True, max_size=4)):
            if (s, k) in (("trace", "requests"), ("catalog", "path")):
                continue  # keep the fuzz fast and the catalog findable; both are fuzzed elsewhere
            lines.append(f"{k} = {toml_value(_scenario_value(draw, s, k))}")
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_any_scenario_gives_results_or_one_clean_error(cli, tmp_path_factory, data):
    d = tmp_path_factory.mktemp("scen")
    p = d / "s.toml"
    p.write_text(data.draw(scenario_files()), encoding="utf-8")
    r = cli("replay", "--scenario", p, "--policy", "lru,lc,random", "--set", "trace.requests=60", "--json")
    _check(r, p)
    if r.code == 0:
        for row in json.loads(r.out):
            for k, v in row.items():
                assert not isinstance(v, float) or math.isfinite(v), (k, v)


# -- --set values ---------------------------------------------------------------------------------------
ALL_KEYS = ([f"{s}.{k}" for s, ks in SECTION_KEYS.items() for k in ks] + [f"{s}_{k}" for s, ks in SECTION_KEYS.items()
                                                                           for k in ks]
            + [k for ks in SECTION_KEYS.values() for k in ks] + ["seed", "name", "gpu_ram", "edge.", ".x", "", " "])
TEXT = st.one_of(st.sampled_from([str(v) for v in NUMBERS] + STRINGS + ["2.5", "1e-3", "0x10", "True", "no"]),
                 st.text(max_size=6))


@FUZZ
@given(data=st.data())
def test_any_set_value_gives_results_or_one_clean_error(cli, tmp_path_factory, data):
    sets = []
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(ALL_KEYS))
        if key.endswith(("requests", "catalog.path", "catalog_path")) or key == "path":
            continue
        sect, _, name = key.rpartition(".")
        if _rare(data.draw, 3) or sect not in SECTION_KEYS or name not in SECTION_KEYS[sect]:
            value = data.draw(TEXT)
        else:
            value = str(data.draw(st.sampled_from(_sensible(sect, name))))
        sets += ["--set", key if _rare(data.draw, 12) else f"{key}={value}"]
    r = cli("replay", "--policy", "lru,lc", *sets, "--set", "trace.requests=60", "--json")
    _check(r)
    r2 = cli("scenario", "show", *sets, "--json")
    assert r2.code == r.code or (r.code == 2 and r2.code in (0, 2)), (r.err, r2.err)
    _check(r2)
    if r2.code == 0:  # what `scenario show --toml` prints loads back as the same scenario
        p = tmp_path_factory.mktemp("show") / "s.toml"
        p.write_text(cli("scenario", "show", *sets, "--toml").out, encoding="utf-8")
        again = load_scenario(p).as_dict()
        shown = json.loads(r2.out)
        assert {k: v for k, v in again.items() if k != "source"} == {k: v for k, v in shown.items() if k != "source"}
