"""Rich tables for the terminal."""

from __future__ import annotations

from rich.table import Table

from .results import OPT_TABLE_ROWS, TABLE_ROWS, TIER_TABLE_ROWS

PERCENT_KEYS = ("edge_execution_ratio", "hit_ratio", "queueing_share")


def _edge_only(key: str) -> bool:
    """A statistic over the requests served at the edge: a policy with none has no value to compare."""
    return key.endswith("_edge") or "_edge_" in key or key.startswith("edge_latency") or \
        key in ("queueing_share", "average_accuracy_cost")


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
    if key in PERCENT_KEYS:  # fractions 0-1 in the data, shown in % as their labels say
        return f"{100 * v:.1f}%"
    if isinstance(v, int):
        return f"{v:,}"
    if key == "average_accuracy_cost":
        return f"{v:.4f}"
    if abs(v) >= 1e9:  # bounded inputs can still give large totals: keep the cell narrow
        return f"{v:.4g}"
    return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4g}" if abs(v) < 0.01 and v != 0 else f"{v:.3f}"


def comparison_cells(rows: list[dict]) -> tuple[list[str], list[tuple[str, list[tuple[str, bool]]]]]:
    """Table II's shape, before it is drawn: the headers (metric, then one per policy) and, per row of
    TABLE_ROWS (and OPT_TABLE_ROWS when opt ran), its label and each policy's (text, best in row?).
    pfmbench.formats draws the same cells as Markdown, LaTeX and the HTML report."""
    headers = ["metric"]
    for r in rows:  # opt says whether it is the exact minimum or a lower bound
        headers.append(f"{r['policy']} ({r['opt_kind']})" if r["engine"] == "opt" else r["policy"])
    shown = TABLE_ROWS + (OPT_TABLE_ROWS if any("gap_to_opt" in r for r in rows) else [])
    if any(r.get("setting_edge_checkpoints_in", "dram") != "dram" for r in rows):  # weight tiers (MODEL.md §9.4)
        shown = shown + TIER_TABLE_ROWS
    body = []
    no_edge = [r.get("edge_hits") == 0 and r.get("loads") == 0 and not r.get("substituted") for r in rows]
    for key, label, better in shown:
        values = [r.get(key) for r in rows]
        if _edge_only(key):  # cloud-only's 0 queueing share is no edge that keeps up: no value, no ★
            values = [None if ne else v for v, ne in zip(values, no_edge, strict=True)]
        present = [v for v in values if v is not None]
        best = (min(present) if better == "min" else max(present)) if present and better and len(rows) > 1 else None
        marked = best is not None and len(set(present)) > 1
        body.append((label, [(_fmt(key, v), marked and v is not None and v == best) for v in values]))
    return headers, body


def comparison_table(rows: list[dict], title: str | None = None) -> Table:
    """Table II's shape: one row per metric, one column per policy, the best value of each row marked."""
    table = Table(title=title, title_justify="left", caption="★ best in row", caption_justify="left")
    headers, body = comparison_cells(rows)
    table.add_column(headers[0], style="bold")
    for h in headers[1:]:
        table.add_column(h, justify="right")
    for label, cells in body:
        table.add_row(label, *[f"[bold green]{text} ★[/]" if best else text for text, best in cells])
    return table
