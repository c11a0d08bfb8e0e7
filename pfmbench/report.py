"""Rich tables for the terminal."""

from __future__ import annotations

from rich.table import Table

from .results import OPT_TABLE_ROWS, TABLE_ROWS


def _fmt(key: str, v) -> str:
    if v is None:
        return "-"
    if key in ("edge_execution_ratio", "hit_ratio"):
        return f"{100 * v:.1f}%"
    if isinstance(v, int):
        return f"{v:,}"
    if key == "average_accuracy_cost":
        return f"{v:.4f}"
    if abs(v) >= 1e9:  # bounded inputs can still give large totals: keep the cell narrow
        return f"{v:.4g}"
    return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4g}" if abs(v) < 0.01 and v != 0 else f"{v:.3f}"


def comparison_table(rows: list[dict], title: str | None = None) -> Table:
    """Table II's shape: one row per metric, one column per policy, the best value of each row marked."""
    table = Table(title=title, title_justify="left", caption="★ best in row", caption_justify="left")
    table.add_column("metric", style="bold")
    for r in rows:  # opt says whether it is the exact minimum or a lower bound
        table.add_column(f"{r['policy']} ({r['opt_kind']})" if r["engine"] == "opt" else r["policy"], justify="right")
    shown = TABLE_ROWS + (OPT_TABLE_ROWS if any("gap_to_opt" in r for r in rows) else [])
    for key, label, better in shown:
        values = [r.get(key) for r in rows]
        present = [v for v in values if v is not None]
        best = (min(present) if better == "min" else max(present)) if present and better and len(rows) > 1 else None
        cells = []
        for v in values:
            text = _fmt(key, v)
            if best is not None and v is not None and v == best and len(set(present)) > 1:
                text = f"[bold green]{text} ★[/]"
            cells.append(text)
        table.add_row(label, *cells)
    return table
