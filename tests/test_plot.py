"""`pfmbench plot`: each figure kind from real replay and sweep outputs, and the plotted values are right."""

import sys

import polars as pl
import pytest

SMALL = ["--set", "trace.requests=400", "--policy", "lc,lfu,lru,cloud"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from pfmbench.cli import main

    d = tmp_path_factory.mktemp("plot")
    for args in (["replay", *SMALL, "--set", "weights.switch=2", "--gpu-memory", "40", "--out", str(d / "replay.parquet"),
                  "--requests-out", str(d / "requests.parquet"), "--json"],
                 ["sweep", *SMALL, "--set-grid", "gpu_memory_gb=24,40,80", "--set-grid", "half_life_s=60,600",
                  "--seeds", "1,2,3", "-o", str(d / "sweep.parquet"), "-q"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code in (0, None)
    return d


def test_cost_terms_add_up_to_system_cost(runs):
    from pfmbench.results import COST_TERMS

    for row in pl.read_parquet(runs / "sweep.parquet").to_dicts() + pl.read_parquet(runs / "replay.parquet").to_dicts():
        total = sum(row[f"setting_weights_{w}"] * row[c] for c, w in COST_TERMS)
        assert total == pytest.approx(row["system_cost"], rel=1e-9, abs=1e-9)


def test_cost_bars_are_the_weighted_terms(runs, tmp_path):
    from pfmbench.plot import label, plot
    from pfmbench.results import COST_TERMS

    out = tmp_path / "cost.png"
    fig = plot(runs / "replay.parquet", out, kind="auto")  # one run: auto picks the cost figure
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    rows = {r["policy"]: r for r in pl.read_parquet(runs / "replay.parquet").to_dicts()}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lc", "lfu", "lru", "cloud"]
    assert len(ax.containers) == len(COST_TERMS)
    for (col, weight), bars in zip(COST_TERMS, ax.containers, strict=True):
        for policy, bar in zip(["lc", "lfu", "lru", "cloud"], bars.patches, strict=True):
            assert bar.get_height() == pytest.approx(rows[policy][f"setting_weights_{weight}"] * rows[policy][col])
    tops = [b.get_y() + b.get_height() for b in ax.containers[-1].patches]
    assert tops == pytest.approx([rows[p]["system_cost"] for p in ("lc", "lfu", "lru", "cloud")])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"{label('switching_cost')} × w_switch" in legend  # its weight is 2


def test_sweep_lines_are_means_over_seeds(runs, tmp_path):
    from pfmbench.plot import label, plot

    out = tmp_path / "sweep.svg"
    fig = plot(runs / "sweep.parquet", out, x="gpu_memory_gb", metric="hit_ratio")
    text = out.read_text()
    assert text.startswith("<?xml") and "<path" in text  # vector
    assert len(fig.axes) == 2  # one panel per half-life
    df = pl.read_parquet(runs / "sweep.parquet").filter((pl.col("half_life_s") == 60) & (pl.col("policy") == "lfu"))
    expected = df.group_by("gpu_memory_gb").agg(pl.col("hit_ratio").mean()).sort("gpu_memory_gb")
    [line] = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "lfu"]
    assert list(line.get_xdata()) == expected["gpu_memory_gb"].to_list()
    assert list(line.get_ydata()) == pytest.approx(expected["hit_ratio"].to_list())
    assert fig.axes[0].get_xlabel() == "gpu memory (GB)" and fig.axes[0].get_ylabel() == label("hit_ratio")


def test_cli_kinds_and_formats(cli, runs, tmp_path):
    r = cli("plot", runs / "requests.parquet", "-o", tmp_path / "t.pdf", "--bins", "20")
    assert r.code == 0, r.err
    assert (tmp_path / "t.pdf").read_bytes()[:4] == b"%PDF" and r.out == ""
    r = cli("plot", runs / "sweep.parquet", "-o", tmp_path / "c.png", "--kind", "cost", "--where", "gpu_memory_gb=40",
            "--where", "half_life_s=600", "-q")
    assert r.code == 0 and r.err == "" and (tmp_path / "c.png").stat().st_size > 10_000
    r = cli("plot", runs / "sweep.parquet", "-o", tmp_path / "s.png", "--policy", "lc,lfu", "--metric",
            "system_cost_per_request")
    assert r.code == 0 and (tmp_path / "s.png").exists()


@pytest.mark.parametrize("args,needle", [
    (["{d}/replay.parquet", "-o", "{t}/x.gif"], "must end in .png, .svg or .pdf"),
    (["{t}/none.parquet", "-o", "{t}/x.png"], "results file not found"),
    (["{d}/replay.parquet", "-o", "{t}/x.png", "--kind", "timeline"], "needs a --requests-out log"),
    (["{d}/sweep.parquet", "-o", "{t}/x.png", "--metric", "nope"], "no numeric column 'nope'"),
    (["{d}/sweep.parquet", "-o", "{t}/x.png", "--where", "gpu_memory_gb=33"], "no row has gpu_memory_gb = 33"),
    (["{d}/sweep.parquet", "-o", "{t}/x.png", "--policy", "belady"], "no policy 'belady'"),
    (["{d}/replay.parquet", "-o", "{t}/x.png", "--kind", "pie"], "--kind must be one of"),
    # an option the figure does not use is refused, not ignored
    (["{d}/replay.parquet", "-o", "{t}/x.png", "--metric", "nope"], "--metric applies to sweep figures only"),
    (["{d}/replay.parquet", "-o", "{t}/x.png", "--metric", "hit_ratio"], "this is a cost figure"),
    (["{d}/replay.parquet", "-o", "{t}/x.png", "--x", "gpu_memory_gb"], "--x applies to sweep figures only"),
    (["{d}/requests.parquet", "-o", "{t}/x.png", "--metric", "hit_ratio"], "this is a timeline figure"),
    (["{d}/sweep.parquet", "-o", "{t}/x.png", "--bins", "10"], "--bins applies to timeline figures only"),
    (["{d}/sweep.parquet", "-o", "{t}/x.png", "--kind", "cost", "--bins", "10"], "this is a cost figure"),
])
def test_bad_plot_input_is_exit_2(cli, runs, tmp_path, args, needle):
    r = cli("plot", *[a.format(d=runs, t=tmp_path) for a in args])
    assert r.code == 2 and needle in r.err, r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert not list(tmp_path.iterdir())


def test_missing_matplotlib_names_the_extra(cli, runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = cli("plot", runs / "replay.parquet", "-o", tmp_path / "x.png")
    assert r.code == 2 and r.err.strip() == "error: pfmbench plot needs matplotlib: pip install 'pfmbench[plot]'"
