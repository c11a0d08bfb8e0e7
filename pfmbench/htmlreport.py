"""One self-contained HTML report from result files (`replay --out`, `sweep -o`): `pfmbench report`.

Per results file: the run's settings (those that vary across rows are the sweep's axes), the comparison
table of the replay (pfmbench.formats.comparison_grid: the same rows, units and ★ marks; a policy's
rows averaged when the file holds several), the notes, the system cost by term (results.COST_TERMS,
weighted as in the run, as `pfmbench plot --kind cost` draws it) and, for a sweep, each metric against
each swept axis with its 95% confidence band over seeds (as `pfmbench plot --kind sweep`).

The page needs nothing but itself: no script, no stylesheet, font or image from elsewhere; figures are
SVG written here by hand (no matplotlib), inline in the page. The same files give the same bytes.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from .errors import InputError
from .formats import BEST_MARK, Grid, comparison_grid

DEFAULT_METRICS = ("system_cost_per_request",)
PERCENT_METRICS = ("hit_ratio", "edge_execution_ratio")  # fractions in the files, percentages in the table
MAX_FIGURES = 24  # per results file: beyond, panels of the other axes are averaged together
# Columns shown in the settings table besides every setting_* column.
RUN_COLUMNS = ("trace", "scenario", "catalog", "seed", "n_requests", "admission", "dispatch", "engine",
               "pfmbench_version")
# Cost terms in the colours `pfmbench plot` gives them (Okabe-Ito).
TERM_COLOURS = ("#D55E00", "#009E73", "#E69F00", "#56B4E9", "#0072B2", "#CC79A7")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2em auto;max-width:1100px;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em;
font-size:1.3em;word-break:break-all}h3{font-size:1.05em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0}
th,td{padding:.25em .7em;border-bottom:1px solid #e4e4e4;vertical-align:top}
thead th{border-bottom:2px solid #888;text-align:right}thead th:first-child{text-align:left}
tbody th{text-align:left;font-weight:normal}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{background:#e8f5e9;font-weight:600}
table.settings td:first-child{font-family:ui-monospace,Menlo,Consolas,monospace;color:#555}
.caption,.meta{color:#666;font-size:.85em}ul.notes{color:#8a5a00;font-size:.9em}
details summary{cursor:pointer;color:#555;font-size:.9em}
figure{margin:1em 0}figcaption{color:#555;font-size:.85em}svg{display:block;max-width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
""".strip()


# -- reading ------------------------------------------------------------------------------------------

def _mean(values: list):
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None]
    if not vals:
        return None
    m = sum(vals) / len(vals)
    return int(m) if all(isinstance(v, int) for v in vals) and m == int(m) else m


def policy_rows(rows: list[dict]) -> list[dict]:
    """One row per policy (in order of appearance): the row itself, or the mean of every numeric column of
    its rows (a sweep: over its points and seeds)."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["policy"], []).append(r)
    out = []
    for group in by.values():
        if len(group) == 1:
            out.append(dict(group[0]))
            continue
        merged = dict(group[0])
        for k, v in group[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) or v is None:
                merged[k] = _mean([g.get(k) for g in group])
        out.append(merged)
    return out


def _varying(rows: list[dict], col: str) -> bool:
    return len({_key(r.get(col)) for r in rows}) > 1


def _key(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _text(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


# -- SVG ----------------------------------------------------------------------------------------------

def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t < hi + step * 0.999:
        ticks.append(round(t, 12))
        t += step
    return ticks


def tick_text(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}">' + "".join(body) + "</svg>")


def _axis_y(body, ticks, y, left, right, title, top, bottom):
    for t in ticks:
        yy = y(t)
        body.append(f'<line x1="{left}" x2="{right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e5e5e5"/>')
        body.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end">{tick_text(t)}</text>')
    mid = (top + bottom) / 2
    body.append(f'<text x="14" y="{mid:.1f}" font-size="12" text-anchor="middle" '
                f'transform="rotate(-90 14 {mid:.1f})">{escape(title)}</text>')
    body.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#444"/>')
    body.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#444"/>')


def _legend_width(entries) -> int:
    """Room for a legend right of the plot: about 6.5 px a character at 11 px."""
    return 18 + 17 + int(6.5 * max((len(t) for t, _ in entries), default=6)) + 10


def _legend(body, entries, x, y, title=None):
    if title:
        body.append(f'<text x="{x}" y="{y}" font-size="11" font-weight="bold">{escape(title)}</text>')
        y += 16
    for text, colour in entries:
        body.append(f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{colour}"/>')
        body.append(f'<text x="{x + 17}" y="{y}" font-size="11">{escape(text)}</text>')
        y += 17


def cost_terms_svg(rows: list[dict]) -> str:
    """System cost as one stacked bar per policy, one segment per weighted term (plot.cost_terms)."""
    from .plot import cost_terms, label
    from .results import COST_TERMS

    policies = [r["policy"] for r in rows]
    terms = {r["policy"]: cost_terms([r]) for r in rows}
    totals = [sum(v for _, _, v in terms[p]) for p in policies]
    weights = {w: {r.get(f"setting_weights_{w}") for r in rows} for _, w in COST_TERMS}
    entries = [(label(col) + (f" × w_{w}" if weights[w] - {1.0, None} else ""), TERM_COLOURS[k % len(TERM_COLOURS)])
               for k, (col, w) in enumerate(COST_TERMS)]
    right, height, left, top = max(300, 96 * len(policies) + 78), 380, 78, 24
    width = right + _legend_width(entries)
    rotate = len(policies) > 6
    bottom = height - (86 if rotate else 48)
    ticks = nice_ticks(0.0, max(totals + [0.0]) or 1.0)
    y = lambda v: bottom - (v - ticks[0]) / (ticks[-1] - ticks[0]) * (bottom - top)
    body: list[str] = []
    _axis_y(body, ticks, y, left, right, "system cost (sum of weighted terms)", top, bottom)
    band = (right - left) / max(1, len(policies))
    for i, p in enumerate(policies):
        x0 = left + band * i + band * 0.2
        base = 0.0
        for k, (col, _, v) in enumerate(terms[p]):
            if v <= 0:
                continue
            y1, y0 = y(base + v), y(base)
            body.append(f'<rect class="term" x="{x0:.1f}" y="{y1:.1f}" width="{band * 0.6:.1f}" '
                        f'height="{max(y0 - y1, 0.5):.1f}" fill="{TERM_COLOURS[k % len(TERM_COLOURS)]}">'
                        f'<title>{escape(p)}: {escape(label(col))} {_text(v)}</title></rect>')
            base += v
        cx = left + band * (i + 0.5)
        anchor = f' text-anchor="end" transform="rotate(-35 {cx:.1f} {bottom + 16})"' if rotate else \
            ' text-anchor="middle"'
        body.append(f'<text x="{cx:.1f}" y="{bottom + 16}" font-size="11"{anchor}>{escape(p)}</text>')
    body.append(f'<text x="{(left + right) / 2:.1f}" y="{height - 8}" font-size="12" '
                'text-anchor="middle">policy</text>')
    _legend(body, entries, right + 18, top + 10)
    return _svg(width, height, "System cost by term per policy", body)


def sweep_svg(rows: list[dict], policies: list[str], x: str, metric: str, colours: dict[str, str]) -> str:
    """`metric` against `x`, one line per policy: the mean over the rows at each x (seeds, repeated
    points) and its 95% confidence band (plot.mean_ci)."""
    from .plot import MARKERS, label, mean_ci

    xs_all = list(dict.fromkeys(_key(r.get(x)) for r in rows))
    numeric = all(isinstance(v, float) for v in xs_all)
    xs_all = sorted(xs_all) if numeric else xs_all
    scale = 100.0 if metric in PERCENT_METRICS else 1.0  # shown in % as in the table (its label says so)
    series = {}
    for p in policies:
        pts = []
        for xv in xs_all:
            vals = [scale * float(r[metric]) for r in rows if r["policy"] == p and _key(r.get(x)) == xv
                    and isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
            if vals:
                m, h = mean_ci(vals)
                pts.append((xv if numeric else float(xs_all.index(xv)), m, m - h, m + h))
        if pts:
            series[p] = pts
    height, left, right, top, bottom = 360, 78, 560, 24, 312
    width = right + _legend_width([(p, "") for p in series] + [("policy", "")])
    los = [lo for pts in series.values() for _, _, lo, _ in pts]
    his = [hi for pts in series.values() for _, _, _, hi in pts]
    ticks = nice_ticks(min(los, default=0.0), max(his, default=1.0))
    span = ticks[-1] - ticks[0] or 1.0
    y = lambda v: bottom - (v - ticks[0]) / span * (bottom - top)
    x_lo, x_hi = (min(xs_all), max(xs_all)) if numeric and xs_all else (0.0, float(max(len(xs_all) - 1, 0)))
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (right - left) * 0.04
    sx = lambda v: left + pad + (v - x_lo) / (x_hi - x_lo) * (right - left - 2 * pad)
    body: list[str] = []
    _axis_y(body, ticks, y, left, right, label(metric), top, bottom)
    xticks = nice_ticks(x_lo, x_hi) if numeric else [float(i) for i in range(len(xs_all))]
    for t in xticks:
        if x_lo - 1e-9 <= t <= x_hi + 1e-9:
            text = tick_text(t) if numeric else str(xs_all[int(t)])
            body.append(f'<text x="{sx(t):.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle">'
                        f'{escape(text)}</text>')
    body.append(f'<text x="{(left + right) / 2:.1f}" y="{height - 10}" font-size="12" text-anchor="middle">'
                f'{escape(label(x))}</text>')
    for j, (p, pts) in enumerate(series.items()):
        c = colours[p]
        if any(hi > lo for _, _, lo, hi in pts):
            poly = [(sx(a), y(hi)) for a, _, _, hi in pts] + [(sx(a), y(lo)) for a, _, lo, _ in reversed(pts)]
            body.append(f'<polygon class="band" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in poly)}" '
                        f'fill="{c}" fill-opacity="0.18" stroke="none"/>')
        line = " ".join(f"{sx(a):.1f},{y(m):.1f}" for a, m, _, _ in pts)
        body.append(f'<polyline class="line" points="{line}" fill="none" stroke="{c}" stroke-width="1.8"/>')
        for a, m, lo, hi in pts:
            body.append(_marker(MARKERS[j % len(MARKERS)], sx(a), y(m), c,
                                f"{p}: {_text(m)} (95% CI {_text(lo)} to {_text(hi)})"))
    _legend(body, [(p, colours[p]) for p in series], right + 18, top + 10, "policy")
    return _svg(width, height, f"{label(metric)} against {label(x)}", body)


def _marker(kind: str, x: float, y: float, colour: str, tip: str) -> str:
    t = f"<title>{escape(tip)}</title>"
    if kind == "s":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}">{t}</rect>'
    if kind in ("^", "v"):
        d = -1 if kind == "^" else 1
        pts = f"{x:.1f},{y + 4.5 * d:.1f} {x - 4.5:.1f},{y - 3.5 * d:.1f} {x + 4.5:.1f},{y - 3.5 * d:.1f}"
        return f'<polygon points="{pts}" fill="{colour}">{t}</polygon>'
    if kind == "D":
        pts = f"{x:.1f},{y - 4.5:.1f} {x + 4.5:.1f},{y:.1f} {x:.1f},{y + 4.5:.1f} {x - 4.5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}">{t}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">{t}</circle>'


# -- HTML ---------------------------------------------------------------------------------------------

def grid_html(grid: Grid, cls: str, policy_header: bool = False) -> str:
    """A Grid as an HTML table; the best cells of a row marked as in the terminal (★, bold)."""
    out = [f'<table class="{cls}">']
    if grid.title:
        out.append(f"<caption>{escape(grid.title)}</caption>")
    if grid.show_header:
        ths = [f'<th scope="col">{escape(grid.columns[0])}</th>']
        cls_attr = ' class="policy"' if policy_header else ""
        ths += [f'<th scope="col"{cls_attr}>{escape(c)}</th>' for c in grid.columns[1:]]
        out.append("<thead><tr>" + "".join(ths) + "</tr></thead>")
    out.append("<tbody>")
    align = grid.alignment()
    for i, row in enumerate(grid.rows):
        cells = []
        for j, text in enumerate(row):
            classes = (["num"] if align[j] == "r" else []) + (["best"] if (i, j) in grid.best else [])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cell = f"{escape(text)} {BEST_MARK}" if (i, j) in grid.best else escape(text)
            cells.append(f'<th scope="row">{cell}</th>' if j == 0 else f"<td{attr}>{cell}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if grid.caption:
        out.append(f'<p class="caption">{escape(grid.caption)}</p>')
    return "".join(out)


def _notes(rows: list[dict]) -> list[str]:
    by: dict[str, list[str]] = {}
    for r in rows:
        for n in filter(None, (r.get("notes") or "").split("; ")):
            by.setdefault(n, []).append(r["policy"])
    n_pol = len({r["policy"] for r in rows})
    return [n if len(set(p)) == n_pol else f"{n} [{', '.join(dict.fromkeys(p))}]" for n, p in by.items()]


def settings_html(rows: list[dict], columns: list[str], axes: list[str]) -> str:
    """The run's columns and every column that varies (a sweep's axes) in view; every setting_* column
    (the whole resolved scenario) below them, folded."""
    settings = [c for c in columns if c.startswith("setting_")]
    main = [c for c in RUN_COLUMNS if c in columns] + [c for c in [*axes, *settings] if _varying(rows, c)]
    main = list(dict.fromkeys(main))

    def table(cols):
        out = ['<table class="settings"><tbody>']
        for c in cols:
            values = list(dict.fromkeys(_key(r.get(c)) for r in rows))
            if len(values) == 1:
                text = _text(rows[0].get(c))
            else:
                more = f", … ({len(values)} values)" if len(values) > 8 else ""
                text = "varies: " + ", ".join(_text(v) for v in values[:8]) + more
            out.append(f"<tr><td>{escape(c)}</td><td>{escape(text)}</td></tr>")
        return "".join(out) + "</tbody></table>"

    folded = f"<details><summary>every setting ({len(settings)})</summary>{table(settings)}</details>" \
        if settings else ""
    return table(main) + folded


def section_html(path: str, metrics: list[str]) -> str:
    """One results file: settings, comparison table, notes, cost terms and, for a sweep, the sweep figures."""
    from .compare import read_results
    from .plot import label, policy_colours

    res = read_results(path)
    rows = res.rows
    axes = [a for a in res.axes if _varying(rows, a)]
    seeds = len({r.get("seed") for r in rows})
    per_policy = policy_rows(rows)
    policies = [r["policy"] for r in per_policy]
    n_points = len(rows) // max(1, len(policies))
    sweep = bool(res.axes) or n_points > 1
    parts = [f"<section class=\"results\" data-policies=\"{len(policies)}\"><h2>{escape(str(path))}</h2>"]
    kind = (f"a sweep: {n_points} points" + (f" over {', '.join(axes)}" if axes else "")
            + (f", {seeds} seeds" if seeds > 1 else "")) if sweep else f"a replay of {len(policies)} policies"
    parts.append(f'<p class="meta">{escape(kind)}; {len(rows)} result rows</p>')
    parts.append("<h3>Settings</h3>")
    parts.append(settings_html(rows, res.columns, res.axes))
    parts.append("<h3>Comparison</h3>")
    title = f"mean over {n_points} points per policy" if sweep else None
    parts.append(grid_html(comparison_grid(per_policy, title), "comparison", policy_header=True))
    notes = _notes(rows)
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>note: {escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h3>System cost by term</h3>")
    cap = "each policy's system cost as the sum of its weighted terms" + (" (means over the points)" if sweep else "")
    parts.append(f'<figure class="cost-terms">{cost_terms_svg(per_policy)}<figcaption>{escape(cap)}</figcaption>'
                 "</figure>")
    if sweep and axes:
        for m in metrics:
            if m not in res.columns:
                raise InputError(f"{path}: no metric {m!r} (metrics: {', '.join(res.metrics)})")
        parts.append("<h3>Against the swept axes</h3>")
        colours = policy_colours(policies)
        figures = 0
        for x in axes:
            others = [a for a in axes if a != x and not _zipped(rows, x, a)]
            combos = list(dict.fromkeys(tuple(_key(r.get(a)) for a in others) for r in rows)) if others else [()]
            if len(combos) * len(metrics) + figures > MAX_FIGURES:
                others, combos = [], [()]  # too many panels: average over the other axes, and say so
            for metric in metrics:
                for combo in combos:
                    sub = [r for r in rows if tuple(_key(r.get(a)) for a in others) == combo]
                    where = ", ".join(f"{label(a)} = {_text(v)}" for a, v in zip(others, combo, strict=True))
                    avg = [a for a in axes if a != x and a not in others]
                    note = (f"mean of {seeds} seeds with its 95% confidence band" if seeds > 1 else "one seed") + \
                        (f"; averaged over {', '.join(avg)}" if avg else "")
                    cap = f"{label(metric)} against {label(x)}" + (f" ({where})" if where else "") + f": {note}"
                    parts.append(f'<figure class="sweep">{sweep_svg(sub, policies, x, metric, colours)}'
                                 f"<figcaption>{escape(cap)}</figcaption></figure>")
                    figures += 1
    parts.append("</section>")
    return "".join(parts)


def _zipped(rows: list[dict], x: str, a: str) -> bool:
    """Axis `a` takes one value at each value of `x` (zipped with it): not a panel of its own."""
    seen: dict = {}
    for r in rows:
        seen.setdefault(_key(r.get(x)), set()).add(_key(r.get(a)))
    return all(len(v) == 1 for v in seen.values())


def report_html(paths: list, metrics: list[str] | None = None, title: str = "pfmbench report") -> str:
    """The whole page for result files `paths` (each its own section)."""
    from .version import __version__

    if not paths:
        raise InputError("report: give at least one results file")
    sections = [section_html(str(p), list(metrics or DEFAULT_METRICS)) for p in paths]
    files = ", ".join(str(p) for p in paths)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class=\"meta\">pfmbench {escape(__version__)} · {escape(files)} · "
            f"{BEST_MARK} best in row</p>" + "".join(sections) + "</body></html>\n")


def write_report(paths: list, out, metrics: list[str] | None = None, title: str = "pfmbench report") -> Path:
    """Write the report to `out` (atomically; `-`: stdout) under the output rules (pfmbench.fileio)."""
    from . import fileio

    locks = fileio.check_outputs({"-o": out}, [str(p) for p in paths]) or []  # before anything is read
    try:
        if not fileio.is_stdout(out) and Path(str(out)).suffix.lower() not in (".html", ".htm"):
            raise InputError(f"-o {out}: the report's file name must end in .html (or `-` for stdout)")
        page = report_html(paths, metrics, title)
        with fileio.atomic_path(out) as tmp:
            Path(tmp).write_text(page, encoding="utf-8")
    finally:
        for key in locks:  # output locks (fileio), where this version of fileio takes them
            fileio.unlock_output(key)
    return Path(str(out))
