"""Results as text for where users put them: GitHub-flavoured Markdown (a CI job summary, a pull-request
comment), LaTeX with booktabs rules (a paper's table), CSV (a spreadsheet, polars, pandas), and rich
tables for the terminal, all drawn from one description of a table (`Grid`).

A command builds its grids once (the builders below: `comparison_grid`, `compare_blocks`,
`check_blocks`, `table2_grid`, `inspect_blocks`) and `render()` writes them in the format asked for, so
the rows, units and ★ marks are the same in every format. CSV is data, not a drawing: it carries the
records `--json` prints (`to_csv`), so that it reads back into polars as the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field

from .errors import InputError

FORMATS = ("table", "markdown", "latex", "csv")
BEST_MARK = "★"


@dataclass
class Grid:
    """A table before it is drawn. `columns` name the columns (the first holds the row labels); `rows`
    hold the cell texts, already formatted with their units; `best` holds the (row, column) cells that
    are the best of their row (★ in rich and Markdown, bold in LaTeX). `align` is 'l' or 'r' per column
    (default: the first left, the others right); `styles` are rich styles per cell (terminal only)."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str | None = None
    best: set[tuple[int, int]] = field(default_factory=set)
    align: str = ""
    caption: str | None = None  # one line under the table, e.g. what ★ means
    styles: dict[tuple[int, int], str] = field(default_factory=dict)
    show_header: bool = True

    def alignment(self) -> str:
        return self.align or "l" + "r" * (len(self.columns) - 1)


Block = Grid | str  # a table, or a line of text (a note, a summary line)


def choose_format(fmt: str | None, json_out: bool, outputs: dict | None = None) -> str:
    """The format in force: `table` unless --format says otherwise. --format with --json is refused (two
    answers to one question), and so is a text format when one of `outputs` ({option: path}) streams to
    stdout (`-`): stdout then carries that file."""
    from .fileio import is_stdout

    if fmt is None:
        return "table"
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if json_out:
        raise InputError(f"--format {name} and --json both choose the output format; give one of them")
    streamed = [label for label, path in (outputs or {}).items() if is_stdout(path)]
    if streamed and name != "table":
        raise InputError(f"--format {name} and {streamed[0]} - both write to stdout; give one of them a file")
    return name


# -- values as text ------------------------------------------------------------------------------------

def value_text(v, metric: str | None = None, diff: bool = False) -> str:
    """A value in a compare/check table: integers with separators, floats to 6 significant digits; a fraction
    the replay table shows in % (report.PERCENT_KEYS: hit ratio, ...) in % here too, a difference of two in
    percentage points (`diff`)."""
    if v is None:
        return "-"
    from .report import PERCENT_KEYS

    if metric in PERCENT_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return f"{100 * v:+.4g} pp" if diff else f"{100 * v:.4g}%"
    if isinstance(v, (bool, str)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.6g}"
    return str(v)


def change_text(v) -> str:
    """A relative change as a signed percentage ('new' where the old value was 0)."""
    if v is None:
        return "-"
    if not math.isfinite(v):
        return "new" if v > 0 else str(v)
    return f"{100 * v:+.2f}%"


# -- builders: one per command -----------------------------------------------------------------------

def comparison_grid(rows: list[dict], title: str | None = None) -> Grid:
    """The replay table (Table II's shape, report.comparison_cells): one column per policy."""
    from .report import comparison_cells

    headers, body = comparison_cells(rows)
    g = Grid(headers, title=title, caption=f"{BEST_MARK} best in row")
    for i, (label, cells) in enumerate(body):
        g.rows.append([label, *(text for text, _ in cells)])
        g.best.update((i, j + 1) for j, (_, best) in enumerate(cells) if best)
    return g


def _rows_grid(title: str, keys: list[str], rows: list[dict]) -> Grid:
    return Grid(list(keys), [[value_text(r.get(k)) for k in keys] for r in rows], title=title, align="l" * len(keys))


def compare_blocks(res: dict, rows: list[dict]) -> list[Block]:
    """`pfmbench compare`: the matched values (`rows`: res['rows'], maybe only the changed ones), the rows
    found in one file only, and a summary line."""
    from .compare import same

    keys = res["keys"]
    g = Grid([*keys, "metric", "A", "B", "B - A", "rel"], title=f"A = {res['a']}   B = {res['b']}",
             align="l" * (len(keys) + 1) + "rrrr")
    for r in rows:
        m = r["metric"]
        g.rows.append([*(value_text(r.get(k)) for k in keys), m, value_text(r["a"], m), value_text(r["b"], m),
                       value_text(r["abs_diff"], m, diff=True), change_text(r["rel_diff"])])
    out: list[Block] = [g]
    for side, only in (("A", res["only_a"]), ("B", res["only_b"])):
        if only:
            out.append(_rows_grid(f"only in {side} ({len(only)} rows)", keys, only))
    differ = sum(1 for r in res["rows"] if not same(r["a"], r["b"]))
    out.append(f"{len(res['rows']) // max(1, len(res['metrics']))} rows matched; {differ} of "
               f"{len(res['rows'])} values differ; {len(res['only_a'])} rows only in A, "
               f"{len(res['only_b'])} only in B")
    return out


CHECK_STYLES = {"regressed": "bold red", "improved": "green", "changed": "yellow"}


def check_blocks(res: dict) -> list[Block]:
    """`pfmbench check`: the values that moved beyond the tolerance, the baseline rows missing from the
    results, and the verdict line (ok / FAILED)."""
    tol = f"{100 * res['tolerance']:g}%"
    keys = res["keys"]
    out: list[Block] = []
    if res["changes"]:
        g = Grid([*keys, "metric", "baseline", "result", "change", "status"],
                 title=f"{res['results']} against {res['baseline']} (tolerance {tol})",
                 align="l" * (len(keys) + 1) + "rrrl")
        for i, c in enumerate(res["changes"]):
            m = c["metric"]
            g.rows.append([*(value_text(c.get(k)) for k in keys), m, value_text(c["baseline"], m),
                           value_text(c["result"], m), change_text(c["rel_diff"]), c["status"]])
            g.styles[(i, len(g.columns) - 1)] = CHECK_STYLES[c["status"]]
        out.append(g)
    if res["missing_rows"]:
        out.append(_rows_grid(f"in the baseline, missing from the results ({len(res['missing_rows'])} rows)",
                              keys, res["missing_rows"]))
    if res["new_rows"]:
        out.append(f"note: {len(res['new_rows'])} rows of the results are not in the baseline (not checked)")
    n_reg = sum(c["status"] == "regressed" for c in res["changes"])
    n_imp = sum(c["status"] == "improved" for c in res["changes"])
    n_chg = len(res["changes"]) - n_reg - n_imp
    if res["ok"]:
        out.append(f"ok: {res['matched']} rows x {len(res['metrics'])} metrics within {tol} of {res['baseline']}")
    else:
        out.append(f"FAILED: {n_reg} regressed, {n_imp} improved, {n_chg} changed, "
                   f"{len(res['missing_rows'])} rows missing ({res['matched']} rows matched, tolerance {tol}). "
                   f"If the change is intended, update the baseline: pfmbench check {res['results']} "
                   f"--baseline {res['baseline']} --update")
    return out


def table2_grid(cells: list[dict], runs: int, requests: int) -> Grid:
    """`pfmbench table2`: each cell 'pfmbench / paper ×ratio', the best pfmbench value of each row marked
    (as the paper marks its best), by the row's direction in results.TABLE_ROWS."""
    from .results import TABLE_ROWS

    better = {k: b for k, _, b in TABLE_ROWS}
    policies = list(dict.fromkeys(c["policy"] for c in cells))
    g = Grid(["metric", *policies], title=f"Table II restated: mean of {runs} runs of {requests} requests "
                                          "(pfmbench / paper, ratio)", caption=f"{BEST_MARK} best pfmbench value in row")
    by = {(c["metric"], c["policy"]): c for c in cells}
    for i, (key, label) in enumerate(dict.fromkeys((c["metric"], c["label"]) for c in cells)):
        pct = key == "edge_execution_ratio"

        def f(v, pct=pct):
            return f"{100 * v:.1f}%" if pct else f"{v:.4f}" if abs(v) < 0.1 else f"{v:.2f}"

        row = [label]
        for p in policies:
            c = by[key, p]
            ratio = f"×{c['ratio']:.2f}" if c["ratio"] is not None else ("=" if c["pfmbench"] == 0 else "(paper 0)")
            row.append(f"{f(c['pfmbench'])} / {f(c['paper'])} {ratio}")
        g.rows.append(row)
        values = [by[key, p]["pfmbench"] for p in policies]
        if better.get(key) and len(set(values)) > 1:
            best = min(values) if better[key] == "min" else max(values)
            g.best.update((i, j + 1) for j, v in enumerate(values) if v == best)
    return g


# `trace inspect`: the summary's rows (stats key -> label); the working set's label names the catalog.
INSPECT_LABELS = {"n_requests": "requests", "span_s": "time span (s)", "rate_mean": "mean rate (req/s)",
                  "requests_per_minute_mean": "mean requests/minute",
                  "requests_per_minute_peak": "peak requests/minute",
                  "n_models": "models (as replay caches them)", "n_model_names": "model names in the trace",
                  "n_tasks": "tasks", "n_pairs": "(model, task) pairs",
                  "zipf_alpha": "Zipf α (fit over pairs)", "interarrival_cv": "inter-arrival CV",
                  "units_mean": "mean units per request", "working_set_gb": "working set (GB, {catalog})",
                  "unknown_requests": "requests not in catalog"}


def stat_text(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def inspect_blocks(stats: dict, trace: str, top: int) -> list[Block]:
    """`pfmbench trace inspect`: the summary (one row per statistic) and the popularity table."""
    summary = Grid(["statistic", "value"], title=str(trace), align="ll", show_header=False)
    for key, label in INSPECT_LABELS.items():
        summary.rows.append([label.format(catalog=stats["catalog"]), stat_text(stats[key])])
    big = stats["never_fit_models"]
    summary.rows.append([f"never fit the {stats['gpu_memory_gb']:g} GB GPU", ", ".join(big) if big else "none"])
    pop = Grid(["rank", "model", "task", "requests", "share"], align="rllrr",
               title=f"popularity (top {min(top, len(stats['popularity']))} of {stats['n_pairs']})")
    for i, p in enumerate(stats["popularity"][:top], start=1):
        # A model split per task (UniFormer-S/pose_estimation) is named by its base: the task column says the
        # rest, and the name then fits an 80-column terminal whole.
        model = p["model"]
        if p["task"] and model.endswith("/" + p["task"]):
            model = model[: -len(p["task"]) - 1]
        pop.rows.append([str(i), model, p["task"] or "-", f"{p['requests']:,}", f"{p['share']:.2%}"])
    return [summary, pop]


def inspect_record(stats: dict) -> dict:
    """The scalar statistics of `trace inspect --json` as one flat record (lists joined by ';'; the
    popularity list, one entry per pair, is left to --json and the table)."""
    return {k: v for k, v in stats.items() if k != "popularity"}


# -- renderers ---------------------------------------------------------------------------------------

_MD_SPECIAL = set("\\|*`[]<>")


def md_escape(text: str) -> str:
    """Text for a GitHub-flavoured Markdown table cell: Markdown's specials and the cell separator escaped.
    An underscore inside a word (switching_cost, a_b.parquet) is left alone: GFM never reads it as emphasis."""
    t = " ".join(str(text).split())
    out = []
    for i, ch in enumerate(t):
        inner = ch == "_" and 0 < i < len(t) - 1 and t[i - 1].isalnum() and t[i + 1].isalnum()
        out.append("\\" + ch if ch in _MD_SPECIAL or (ch == "_" and not inner) else ch)
    return "".join(out)


def to_markdown(grid: Grid) -> str:
    lines = []
    if grid.title:
        lines += [f"**{md_escape(grid.title)}**", ""]
    align = grid.alignment()
    header = grid.columns if grid.show_header else [""] * len(grid.columns)
    lines.append("| " + " | ".join(md_escape(c) for c in header) + " |")
    lines.append("|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|")
    for i, row in enumerate(grid.rows):
        cells = []
        for j, text in enumerate(row):
            t = md_escape(text)
            cells.append(f"**{t}** {BEST_MARK}" if (i, j) in grid.best else t)
        lines.append("| " + " | ".join(cells) + " |")
    if grid.caption:
        lines += ["", md_escape(grid.caption)]
    return "\n".join(lines)


# Every LaTeX special character, and the non-ASCII characters pfmbench's own labels use, for pdflatex.
_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
        "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
        "α": r"$\alpha$", "×": r"$\times$", "·": r"$\cdot$", "★": r"$\star$", "→": r"$\rightarrow$",
        "≥": r"$\geq$", "≤": r"$\leq$", "±": r"$\pm$", "–": "--", "—": "---", "…": r"\ldots{}"}


def tex_escape(text: str) -> str:
    """Text safe in a LaTeX tabular: every special character escaped, one character at a time (so that
    the backslash of one escape is never escaped again)."""
    return "".join(_TEX.get(ch, ch) for ch in " ".join(str(text).split()))


def to_latex(grid: Grid) -> str:
    """A booktabs `tabular` (\\toprule, \\midrule, \\bottomrule; needs \\usepackage{booktabs}); the
    title and caption become comments, so the file can be \\input into a table float of the paper's own."""
    lines = []
    if grid.title:
        lines.append(f"% {' '.join(grid.title.split())}")
    if grid.caption:
        lines.append(f"% {' '.join(grid.caption.replace(BEST_MARK, 'bold:').split())}")
    lines.append(r"% needs \usepackage{booktabs}")
    lines.append(r"\begin{tabular}{" + grid.alignment() + "}")
    lines.append(r"\toprule")
    if grid.show_header:
        lines.append(" & ".join(tex_escape(c) for c in grid.columns) + r" \\")
        lines.append(r"\midrule")
    for i, row in enumerate(grid.rows):
        cells = [r"\textbf{" + tex_escape(t) + "}" if (i, j) in grid.best else tex_escape(t)
                 for j, t in enumerate(row)]
        lines.append(" & ".join(cells) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    return "\n".join(lines)


def to_rich(grid: Grid):
    """The grid as a rich Table (cell text taken literally, never as rich markup)."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=grid.title, title_justify="left", show_header=grid.show_header, caption=grid.caption,
              caption_justify="left")
    for j, (col, a) in enumerate(zip(grid.columns, grid.alignment(), strict=True)):
        t.add_column(col, justify="right" if a == "r" else "left")
    for i, row in enumerate(grid.rows):
        cells = []
        for j, text in enumerate(row):
            if (i, j) in grid.best:
                cells.append(Text(f"{text} {BEST_MARK}", style="bold green"))
            else:
                cells.append(Text(text, style=grid.styles.get((i, j), "")))
        t.add_row(*cells)
    return t


def render(blocks: list[Block], fmt: str) -> str:
    """Blocks (grids and lines of text) as Markdown or LaTeX; lines of text become paragraphs in Markdown
    and comments in LaTeX."""
    parts = []
    for b in blocks:
        if isinstance(b, Grid):
            parts.append(to_markdown(b) if fmt == "markdown" else to_latex(b))
        elif fmt == "markdown":
            parts.append(md_escape(b))
        else:
            parts.append(f"% {' '.join(b.split())}")
    return ("\n\n" if fmt == "markdown" else "\n").join(parts) + "\n"


def print_blocks(blocks: list[Block], console) -> None:
    """Blocks on a rich console: grids as tables, lines as plain text."""
    for b in blocks:
        if isinstance(b, Grid):
            console.print(to_rich(b))
        else:
            console.print(b, markup=False, highlight=False, soft_wrap=True)


def _csv_value(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""  # --json prints null for these
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)  # the shortest text that reads back as the same float
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return str(v)


def to_csv(records: list[dict], columns: list[str] | None = None) -> str:
    """Records (the dicts --json prints) as CSV with a header: every key once, in order of first appearance;
    null and non-finite numbers empty (JSON's null), floats exact, booleans true/false, lists joined by ';'."""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in records for k in r))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in records:
        w.writerow([_csv_value(r.get(c)) for c in cols])
    return buf.getvalue()


def replay_text(rows: list[dict], fmt: str, title: str | None = None, notes=()) -> str:
    """`pfmbench replay --format`: the comparison table and its notes, or (csv) the summary rows."""
    if fmt == "csv":
        return to_csv(rows)
    return render([comparison_grid(rows, title), *(f"note: {n}" for n in notes)], fmt)
