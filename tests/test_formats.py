"""--format markdown|latex|csv (pfmbench.formats): the same rows, units and ★ marks as the terminal tables,
LaTeX that is well formed with every special character escaped, and CSV that reads back as --json's numbers."""

import json
import re
from pathlib import Path

import polars as pl
import pytest

from pfmbench.formats import Grid, comparison_grid, render, tex_escape, to_csv, to_latex, to_markdown
from pfmbench.results import TABLE_ROWS

SMALL = ["--set", "trace.requests=300", "--policy", "lc,lfu,cloud", "--gpu-memory", "40"]
POLICIES = ["lc", "lfu", "cloud"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A small replay's results file (replay --out), in this process."""
    from pfmbench.cli import main

    d = tmp_path_factory.mktemp("formats")
    with pytest.raises(SystemExit) as e:
        main(["replay", *SMALL, "--out", str(d / "replay.parquet"), "--json"])
    assert e.value.code in (0, None)
    return d


@pytest.fixture(scope="module")
def rows(runs):
    return pl.read_parquet(runs / "replay.parquet").to_dicts()


# -- the library ---------------------------------------------------------------------------------------

def test_tex_escape_every_special_character():
    assert tex_escape(r"a&b%c$d#e_f{g}h~i^j\k") == (r"a\&b\%c\$d\#e\_f\{g\}h\textasciitilde{}i"
                                                    r"\textasciicircum{}j\textbackslash{}k")
    assert tex_escape("Zipf α ×2") == r"Zipf $\alpha$ $\times$2"


def _plain(cell: str) -> str:
    """A LaTeX cell with its escapes, commands and math removed: what is left must be plain text."""
    cell = re.sub(r"^\\textbf\{(.*)\}$", r"\1", cell)
    cell = re.sub(r"\\text[a-z]+\{\}", "", cell)
    cell = re.sub(r"\$\\[a-z]+\$", "", cell)
    return re.sub(r"\\[&%$#_{}]", "", cell)


def test_latex_structure_with_hostile_policy_names(rows):
    """The comparison table as a booktabs tabular: one column per policy, every row of TABLE_ROWS, the best
    value of each row in bold, and names full of LaTeX's special characters escaped."""
    names = ["lc&co_1", "50%{lfu}", "c$#~^\\oud"]
    hostile = [{**r, "policy": n} for r, n in zip(rows, names, strict=True)]
    grid = comparison_grid(hostile, "a title with & and %")
    tex = to_latex(grid)
    lines = tex.splitlines()
    body = [x for x in lines if not x.startswith("%")]
    assert body[0] == r"\begin{tabular}{lrrr}" and body[1] == r"\toprule"
    assert body[3] == r"\midrule" and body[-2] == r"\bottomrule" and body[-1] == r"\end{tabular}"
    header = body[2]
    assert header == r"metric & lc\&co\_1 & 50\%\{lfu\} & c\$\#\textasciitilde{}\textasciicircum{}" \
                     r"\textbackslash{}oud \\"
    table_rows = body[4:-2]
    assert len(table_rows) == len(TABLE_ROWS)
    n_bold = 0
    for line, (_, label, _) in zip(table_rows, TABLE_ROWS, strict=True):
        assert line.endswith(r" \\")
        cells = re.split(r"(?<!\\) & ", line[:-3])
        assert len(cells) == 1 + len(names), line
        assert cells[0] == tex_escape(label)
        for c in cells:
            assert not set(_plain(c)) & set("&%$#_{}~^\\"), (c, line)
        n_bold += sum(c.startswith(r"\textbf{") for c in cells)
    assert n_bold == len(grid.best) > 0
    assert "★" not in "\n".join(body)


def test_markdown_escapes_pipes_and_marks_best():
    g = Grid(["metric", "a|b", "c"], [["x", "1", "2"]], best={(0, 2)}, caption="★ best in row")
    md = to_markdown(g)
    assert md.splitlines()[0] == r"| metric | a\|b | c |"
    assert md.splitlines()[1] == "|:---|---:|---:|"
    assert md.splitlines()[2] == "| x | 1 | **2** ★ |"


def test_csv_values():
    text = to_csv([{"a": 1, "b": 0.1 + 0.2, "c": None, "d": float("inf"), "e": True, "f": ["x", "y"], "g": "q,r"}])
    assert text == 'a,b,c,d,e,f,g\n1,0.30000000000000004,,,true,x;y,"q,r"\n'


def test_render_lines_become_notes():
    g = Grid(["k", "v"], [["a", "1"]])
    assert render([g, "note: x_y _z_ *w*"], "markdown").endswith("\n\nnote: x_y \\_z\\_ \\*w\\*\n")
    assert render([g, "note: 5%"], "latex").endswith("\\end{tabular}\n% note: 5%\n")


# -- the commands -------------------------------------------------------------------------------------

def test_replay_markdown_has_every_policy_and_the_same_marks(cli):
    md = cli("replay", *SMALL, "--format", "markdown")
    assert md.code == 0, md.err
    lines = md.out.splitlines()
    header = next(x for x in lines if x.startswith("| metric"))
    assert header == "| metric | " + " | ".join(POLICIES) + " |"
    table = [x for x in lines if x.startswith("| ")]
    assert len(table) == 1 + len(TABLE_ROWS)
    rich = cli("replay", *SMALL)
    assert rich.code == 0
    rich_rows = [x for x in rich.out.splitlines() if "│" in x]
    # the same ★ marks, row by row
    for key_label, md_row in zip([lbl for _, lbl, _ in TABLE_ROWS], table[1:], strict=True):
        assert md_row.startswith(f"| {key_label} |")
        rich_row = next(x for x in rich_rows if x.split("│")[1].strip().startswith(key_label[:30]))
        assert md_row.count("★") == rich_row.count("★"), (md_row, rich_row)


def test_replay_latex(cli):
    r = cli("replay", *SMALL, "--format", "latex")
    assert r.code == 0, r.err
    assert r"\begin{tabular}{lrrr}" in r.out and r"\toprule" in r.out and r"\bottomrule" in r.out
    assert r"metric & lc & lfu & cloud \\" in r.out


def test_replay_csv_round_trips_to_the_json_numbers(cli):
    j = cli("replay", *SMALL, "--json")
    c = cli("replay", *SMALL, "--format", "csv")
    assert j.code == 0 and c.code == 0, c.err
    want = json.loads(j.out)
    from io import StringIO

    df = pl.read_csv(StringIO(c.out), infer_schema_length=None)
    got = df.to_dicts()
    assert df.columns == list(want[0]) and len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for k, v in w.items():
            if isinstance(v, bool) or v is None:
                assert g[k] == v or (v is None and g[k] in (None, "")), k
            elif isinstance(v, (int, float)):
                assert g[k] == v, (k, g[k], v)  # exactly: floats are written in full
            elif isinstance(v, str) and v:
                assert str(g[k]) == v, k


@pytest.mark.parametrize("args, msg", [
    (["--format", "markdown", "--json"], "--format markdown and --json both choose the output format"),
    (["--format", "html"], "--format must be one of table, markdown, latex, csv, got 'html'"),
    (["--format", "csv", "--out", "-"], "--format csv and --out - both write to stdout"),
])
def test_format_refusals(cli, args, msg):
    r = cli("replay", *SMALL, *args)
    assert r.code == 2 and msg in r.err and r.err.count("\n") == 1 and r.out == "", (r.err, r.out)
    assert "Traceback" not in r.err


def test_compare_and_check_formats(cli, runs):
    f = runs / "replay.parquet"
    j = json.loads(cli("compare", f, f, "--json").out)
    c = cli("compare", f, f, "--format", "csv")
    assert c.code == 0, c.err
    from io import StringIO

    df = pl.read_csv(StringIO(c.out))
    assert df.height == len(j["rows"]) and df["a"].to_list() == [None if r["a"] is None else float(r["a"]) for r in j["rows"]]
    md = cli("compare", f, f, "--format", "markdown", "--metric", "system_cost")
    assert md.code == 0 and "| policy | metric | A | B | B - A | rel |" in md.out
    assert "3 rows matched; 0 of 3 values differ" in md.out
    ok = cli("check", f, "--baseline", f, "--format", "markdown")
    assert ok.code == 0 and "ok: 3 rows" in ok.out
    tex = cli("check", f, "--baseline", f, "--format", "latex")
    assert tex.code == 0 and tex.out.startswith("% ok: 3 rows")
    csv = cli("check", f, "--baseline", f, "--format", "csv")
    assert csv.code == 0 and csv.out == "policy,metric,baseline,result,abs_diff,rel_diff,status\n"
    assert cli("check", f, "--baseline", f, "--format", "markdown", "--json").code == 2


def test_check_failure_in_markdown(cli, runs, tmp_path):
    df = pl.read_parquet(runs / "replay.parquet")
    moved = tmp_path / "moved.parquet"
    df.with_columns(pl.when(pl.col("policy") == "lc").then(pl.col("switching_cost") * 1.05)
                    .otherwise(pl.col("switching_cost")).alias("switching_cost")).write_parquet(moved)
    r = cli("check", moved, "--baseline", runs / "replay.parquet", "--format", "markdown")
    assert r.code == 1
    assert re.search(r"\| lc \| switching_cost \| [\d,.]+ \| [\d,.]+ \| \+5\.00% \| regressed \|", r.out), r.out
    assert "FAILED: 1 regressed" in r.out


def test_table2_formats(cli):
    r = cli("table2", "--runs", "1", "--requests", "20", "--format", "latex")
    assert r.code == 0, r.err
    from pfmbench.table2 import POLICIES as TABLE2_POLICIES

    assert r"\begin{tabular}{l" + "r" * len(TABLE2_POLICIES) + "}" in r.out
    assert "metric & " + " & ".join(tex_escape(p) for p in TABLE2_POLICIES) + r" \\" in r.out
    assert r"\toprule" in r.out and r"\times" in r.out and r"\textbf{" in r.out
    c = cli("table2", "--runs", "1", "--requests", "20", "--format", "csv")
    j = cli("table2", "--runs", "1", "--requests", "20", "--json")
    from io import StringIO

    got = pl.read_csv(StringIO(c.out)).to_dicts()
    want = json.loads(j.out)
    assert [g["pfmbench"] for g in got] == [w["pfmbench"] for w in want]


def test_trace_inspect_formats(cli):
    trace = Path(__file__).resolve().parent.parent / "traces" / "poisson-5k.parquet"
    j = json.loads(cli("trace", "inspect", trace, "--json").out)
    c = cli("trace", "inspect", trace, "--format", "csv")
    assert c.code == 0, c.err
    from io import StringIO

    row = pl.read_csv(StringIO(c.out)).to_dicts()[0]
    assert row["n_requests"] == j["n_requests"] and row["zipf_alpha"] == j["zipf_alpha"]
    assert row["models"].split(";") == j["models"]
    md = cli("trace", "inspect", trace, "--format", "markdown", "--top", "3")
    assert md.code == 0 and "| rank | model | task | requests | share |" in md.out
    assert "Zipf α (fit over pairs)" in md.out
