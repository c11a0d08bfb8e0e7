"""`pfmbench report`: one self-contained HTML page (inline SVG, nothing loaded from elsewhere), under the
output rules of every command, and rendered without errors in a real browser (headless Chromium)."""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

SMALL = ["--set", "trace.requests=200", "--policy", "lc,lfu,cloud"]
POLICIES = ["lc", "lfu", "cloud"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chromium-headless-shell")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A replay --out and a sweep over two GPU sizes and two seeds, made in this process."""
    from pfmbench.cli import main

    d = tmp_path_factory.mktemp("report")
    cwd = os.getcwd()
    os.chdir(d)  # relative names, as a user gives them (the page shows them; the README's picture too)
    try:
        for args in (["replay", *SMALL, "--gpu-memory", "40", "--out", "replay.parquet", "--json"],
                     ["sweep", *SMALL, "--set-grid", "gpu_memory_gb=40,80", "--seeds", "1,2", "-o", "sweep.parquet",
                      "-q"],
                     ["report", "replay.parquet", "sweep.parquet", "-o", "report.html", "-q"]):
            with pytest.raises(SystemExit) as e:
                main(args)
            assert e.value.code in (0, None), args
    finally:
        os.chdir(cwd)
    return d


class Outline(HTMLParser):
    """What the page holds: its tags, every attribute, the comparison tables' policy headers."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.policy_headers, self.svgs = [], [], [], 0
        self._in_policy = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        self.svgs += tag == "svg"
        self._in_policy = tag == "th" and ("class", "policy") in attrs

    def handle_data(self, data):
        if self._in_policy:
            self.policy_headers.append(data.strip())
            self._in_policy = False


def test_report_is_self_contained(files):
    page = (files / "report.html").read_text(encoding="utf-8")
    o = Outline()
    o.feed(page)
    assert page.startswith("<!DOCTYPE html>")
    # nothing from elsewhere: no script, stylesheet link, image, frame, remote URL or CSS import
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(o.tags)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|url\(|@import", page)
    assert not [a for a in o.attrs if a[0] in ("src", "href", "xlink:href")]
    # two sections, each with one column per policy; one cost figure each and the sweep's figure
    assert page.count('<section class="results"') == 2
    assert o.policy_headers == POLICIES + POLICIES
    assert page.count('<figure class="cost-terms">') == 2 and page.count('<figure class="sweep">') == 1
    assert o.svgs == 3
    assert "varies: 40, 80" in page and "95% confidence band" in page
    assert page.count('class="band"') >= 1 and page.count('class="term"') >= 4


def test_report_is_deterministic_and_follows_output_rules(cli, files, tmp_path, monkeypatch):
    monkeypatch.chdir(files)
    again = tmp_path / "again.html"
    r = cli("report", "replay.parquet", "sweep.parquet", "-o", again)
    assert r.code == 0 and r.err == f"report: {again}\n"
    assert again.read_bytes() == (files / "report.html").read_bytes()
    before = (files / "replay.parquet").read_bytes()
    cases = [
        (["-o", files / "replay.parquet"], "is also an input of this command"),
        (["-o", tmp_path / "report.txt"], "must end in .html"),
        (["-o", tmp_path], "is a directory"),
        (["-o", tmp_path / "no" / "r.html"], "does not exist"),
    ]
    for args, msg in cases:
        r = cli("report", files / "replay.parquet", *args)
        assert r.code == 2 and msg in r.err and r.err.count("\n") == 1, (args, r.err)
    assert (files / "replay.parquet").read_bytes() == before
    r = cli("report", tmp_path / "missing.parquet", "-o", tmp_path / "m.html")
    assert r.code == 2 and "not found" in r.err and not (tmp_path / "m.html").exists()
    r = cli("report", files / "sweep.parquet", "-o", tmp_path / "m.html", "--metric", "nope")
    assert r.code == 2 and "no metric 'nope'" in r.err and not (tmp_path / "m.html").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    r = cli("report", files / "replay.parquet", "-o", "-")
    assert r.code == 0 and r.out.startswith("<!DOCTYPE html>") and r.err == ""


# Appended to a copy of the page: what a reader's browser sees, written into the DOM for --dump-dom.
PROBE = """<script>
(function () {
  const errors = window.__errors || [];
  const svgs = [...document.querySelectorAll("figure svg")].map(s => {
    const b = s.getBoundingClientRect();
    return {w: b.width, h: b.height, shapes: s.querySelectorAll("rect,polyline,polygon,circle,line").length};
  });
  const tables = [...document.querySelectorAll("table.comparison")].map(t => ({
    policies: [...t.querySelectorAll("thead th.policy")].map(th => th.textContent),
    width: t.getBoundingClientRect().width}));
  const out = {errors, svgs, tables, resources: performance.getEntriesByType("resource").map(e => e.name)};
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""
CATCH = "<script>window.__errors=[];addEventListener('error',e=>__errors.push(String(e.message||e.target&&e.target.outerHTML)),true);</script>"


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run_browser(browser, *args, timeout=120):
    env = {**os.environ, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", "--hide-scrollbars", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def test_report_renders_in_headless_chromium(files, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium or Chrome on this machine (.ci/run installs the distribution's chromium "
                    "where it can); the report's structure is checked by test_report_is_self_contained")
    page = (files / "report.html").read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + CATCH, 1).replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")
    r = _run_browser(browser, "--window-size=1200,900", "--dump-dom", probed.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', r.stdout, re.DOTALL)
    assert m, f"the page did not render: {r.stdout[:500]} {r.stderr[-1000:]}"
    import html

    got = json.loads(html.unescape(m.group(1)))
    assert got["errors"] == [] and got["resources"] == [], got
    assert [t["policies"] for t in got["tables"]] == [POLICIES, POLICIES]
    assert all(t["width"] > 0 for t in got["tables"])
    assert len(got["svgs"]) == 3
    for s in got["svgs"]:
        assert s["w"] > 100 and s["h"] > 100 and s["shapes"] > 5, got["svgs"]
    assert "CONSOLE" not in r.stderr or "Uncaught" not in r.stderr
    # The README's picture: the unmodified page, when asked for (PFMBENCH_REPORT_SCREENSHOT=PATH.png).
    shot = os.environ.get("PFMBENCH_REPORT_SCREENSHOT")
    if shot:
        r = _run_browser(browser, "--window-size=1100,1900", f"--screenshot={shot}", (files / "report.html").as_uri())
        assert r.returncode == 0 and Path(shot).stat().st_size > 10_000, r.stderr[-1000:]
