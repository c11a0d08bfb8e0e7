"""docs/results.md documents every summary column a real run writes, and nothing else; the table's labels
say their unit and scope."""

import json
import re
from pathlib import Path

import polars as pl

from pfmbench.results import RENAMED, TABLE_ROWS
from pfmbench.scenario import Scenario

DOC = Path(__file__).resolve().parent.parent / "docs" / "results.md"


def documented_columns() -> set[str]:
    text = DOC.read_text()
    section = text.split("## The summary row", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\| `([a-zA-Z0-9_]+)` \|", section, re.MULTILINE)}


def test_doc_lists_exactly_the_columns_of_a_real_run(cli, tmp_path):
    out = tmp_path / "s.parquet"
    r = cli("replay", "--policy", "lru,cloud", "--set", "trace.requests=300", "--out", out, "--json")
    assert r.code == 0, r.err
    columns = pl.read_parquet(out).columns
    assert columns == list(json.loads(r.out)[0])  # --out and --json carry the same keys
    settings = {c for c in columns if c.startswith("setting_")}
    expected_settings = {"setting_source"} | {f"setting_{k.replace('.', '_')}" for k in Scenario().as_dict()
                                              if k not in ("name", "seed", "source")}
    assert settings == expected_settings
    documented = documented_columns()
    assert "setting_SECTION_KEY" in documented
    assert set(columns) - settings == documented - {"setting_SECTION_KEY"}


def test_names_follow_the_unit_convention():
    names = documented_columns()
    for n in names:
        if "latency" in n or n.endswith(("_time", "_wait")):
            assert n.endswith("_s"), n
        if "energy" in n:
            assert n.endswith(("_j", "_kj")), n
    for old, new in RENAMED.items():
        assert old not in names and new in names


def test_table_labels_say_unit_and_scope():
    for key, label, _ in TABLE_ROWS:
        assert "(" in label or "per request" in label, label
        if key.endswith("_s"):
            assert "s)" in label, label
        if key.endswith("_j"):
            assert "J)" in label, label
        if "_edge" in key or key == "average_accuracy_cost":
            assert "per edge request" in label, label
        if key.endswith("_per_request"):
            assert "per request" in label, label


def test_doc_lists_exit_codes():
    text = DOC.read_text()
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 130 |", "| 143 |"):
        assert code in text
