"""Figures from result files (optional extra `pfmbench[plot]`: matplotlib, imported only here).

Three kinds:

* ``cost``: Table II's system cost as a stacked bar per policy, one segment per weighted term
  (results.COST_TERMS with the run's `setting_weights_*`), averaged over the file's rows.
* ``sweep``: a metric against a swept axis, one line per policy; seeds (and any repeated point) are
  averaged, with a 95% confidence band (Student t) where there are several.
* ``timeline``: from a `replay --requests-out` log, per policy: models in GPU memory, the shares of
  hit/load/cloud outcomes and the mean examples in context over time.

Figures use matplotlib's object API (no pyplot, no global state, the Agg renderer for PNG), the
Okabe-Ito colour-blind-safe palette, labelled axes with units, and vector output for .svg and .pdf.
"""

from __future__ import annotations

import math
from pathlib import Path

from .errors import InputError
from .fileio import require_file

OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#000000", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
OUTCOME_COLOURS = {"hit": "#009E73", "load": "#E69F00", "cloud": "#56B4E9", "substitute": "#CC79A7"}
FORMATS = ("png", "svg", "pdf")
KINDS = ("auto", "cost", "sweep", "timeline")
# Two-sided 95% Student t quantiles for 1..30 degrees of freedom (then the normal 1.96).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)
UNITS = (("_gbps", "GB/s"), ("_mbps", "Mbit/s"), ("_gb", "GB"), ("_s", "s"), ("_w", "W"), ("_j", "J"))
MAX_PANELS = 12
MAX_BINS = 10_000  # a timeline's --bins: more than any figure can show, and a bounded amount of memory


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise InputError("pfmbench plot needs matplotlib: pip install 'pfmbench[plot]'") from None
    return matplotlib


def label(name: str) -> str:
    """A column's axis label with its unit: the replay table's label, else one made from the name."""
    from .results import TABLE_ROWS

    for key, text, _ in TABLE_ROWS:
        if key == name:
            return text
    base = name
    for prefix in ("setting_edge_", "setting_cloud_", "setting_context_", "setting_weights_", "setting_catalog_",
                   "setting_trace_", "setting_"):
        if base.startswith(prefix):
            base = base[len(prefix):]
            break
    base = base.split(".")[-1]
    for suffix, unit in UNITS:
        if base.endswith(suffix):
            return f"{base[: -len(suffix)].replace('_', ' ')} ({unit})"
    return base.replace("_", " ")


def policy_colours(policies: list[str]) -> dict[str, str]:
    """A fixed colour per built-in policy (registry order), so that one policy looks the same everywhere."""
    from .policies import policy_names

    known = policy_names()
    out, extra = {}, len(known)
    for p in policies:
        if p in known:
            out[p] = OKABE_ITO[known.index(p) % len(OKABE_ITO)]
        else:
            out[p] = OKABE_ITO[extra % len(OKABE_ITO)]
            extra += 1
    return out


def t975(n: int) -> float:
    return T975[n - 2] if 2 <= n <= len(T975) + 1 else 1.96


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (0 for a single value)."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, 0.0
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    return m, t975(n) * sd / math.sqrt(n)


def _read(path):
    p = Path(path)
    require_file(p, "results")
    try:
        import polars as pl

        return pl.read_parquet(p)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{p}: cannot read Parquet: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _filter(df, where: dict, src: str):
    import polars as pl

    for key, value in where.items():
        if key not in df.columns:
            raise InputError(f"{src}: --where: no column {key!r}")
        col = df[key]
        if col.dtype.is_numeric():
            try:
                target = float(value)
            except ValueError:
                raise InputError(f"{src}: --where {key}: expected a number, got {value!r}") from None
            df = df.filter(pl.col(key).cast(pl.Float64) == target)
        else:
            df = df.filter(pl.col(key).cast(pl.String) == str(value))
        if df.height == 0:
            raise InputError(f"{src}: no row has {key} = {value}")
    return df


def _policies(df, chosen: list[str] | None, src: str) -> list[str]:
    present = list(dict.fromkeys(df["policy"].to_list()))
    if not chosen:
        return present
    for p in chosen:
        if p not in present:
            raise InputError(f"{src}: no policy {p!r} (policies: {', '.join(present)})")
    return list(chosen)


def cost_terms(rows: list[dict]) -> list[tuple[str, str, float]]:
    """(column, weight name, mean weighted value) of each summand of system_cost over `rows`."""
    from .results import COST_TERMS

    out = []
    for col, weight in COST_TERMS:
        vals = [(r.get(f"setting_weights_{weight}", 1.0) if r.get(f"setting_weights_{weight}") is not None else 1.0)
                * (r.get(col) or 0.0) for r in rows]
        out.append((col, weight, sum(vals) / len(vals)))
    return out


def plot_cost(fig, df, policies: list[str]) -> None:
    """Table II as a figure: one stacked bar of weighted cost terms per policy (means over the rows)."""
    from .results import COST_TERMS

    ax = fig.add_subplot(1, 1, 1)
    bottoms = [0.0] * len(policies)
    per_policy = {p: cost_terms(df.filter(df["policy"] == p).to_dicts()) for p in policies}
    n_rows = {p: df.filter(df["policy"] == p).height for p in policies}
    colours = (OKABE_ITO[4], OKABE_ITO[2], OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[3], OKABE_ITO[5])
    hatches = ("", "//", "", "..", "xx", "\\\\")
    for i, (col, weight) in enumerate(COST_TERMS):
        heights = [per_policy[p][i][2] for p in policies]
        weights = {r.get(f"setting_weights_{weight}") for r in df.to_dicts()}
        w = f" × w_{weight}" if weights - {1.0, None} else ""
        ax.bar(policies, heights, bottom=bottoms, label=label(col) + w, color=colours[i % len(colours)],
               hatch=hatches[i % len(hatches)], edgecolor="white", linewidth=0.5)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_ylabel("system cost (sum of weighted terms)")
    ax.set_xlabel("policy")
    many = max(n_rows.values()) > 1
    ax.set_title("System cost by term" + (f" (mean over {max(n_rows.values())} runs per policy)" if many else ""))
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _distinct(df, col) -> list:
    return list(dict.fromkeys(df[col].to_list()))


def plot_sweep(fig, df, policies: list[str], x: str, metric: str, panel_keys: list[str]) -> None:
    """A metric against axis `x`, one line per policy, one panel per combination of the other axes."""
    combos = list(dict.fromkeys(tuple(r[k] for k in panel_keys) for r in df.select(panel_keys).to_dicts())) \
        if panel_keys else [()]
    if len(combos) > MAX_PANELS:
        raise InputError(f"{len(combos)} panels ({', '.join(panel_keys)} vary besides {x}): "
                         "choose with --where KEY=VALUE")
    ncols = min(3, len(combos))
    nrows = math.ceil(len(combos) / ncols)
    fig.set_size_inches(4.2 * ncols + 1.6, 3.3 * nrows + 0.4)
    colours = policy_colours(policies)
    xs_all = _distinct(df, x)
    numeric_x = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs_all)
    xs_all = sorted(xs_all) if numeric_x else xs_all
    first = None
    for i, combo in enumerate(combos):
        ax = fig.add_subplot(nrows, ncols, i + 1, sharey=first)
        first = first or ax
        sub = df
        for k, v in zip(panel_keys, combo, strict=True):
            sub = sub.filter(sub[k] == v) if v is not None else sub.filter(sub[k].is_null())
        for j, p in enumerate(policies):
            rows = sub.filter(sub["policy"] == p)
            xs, means, lo, hi = [], [], [], []
            for xv in xs_all:
                vals = [v for v in rows.filter(rows[x] == xv)[metric].to_list() if v is not None]
                if not vals:
                    continue
                m, h = mean_ci([float(v) for v in vals])
                xs.append(xv if numeric_x else xs_all.index(xv))
                means.append(m)
                lo.append(m - h)
                hi.append(m + h)
            if not xs:
                continue
            ax.plot(xs, means, marker=MARKERS[j % len(MARKERS)], color=colours[p], label=p, linewidth=1.5,
                    markersize=4)
            if any(h > lo_ for h, lo_ in zip(hi, lo, strict=True)):
                ax.fill_between(xs, lo, hi, color=colours[p], alpha=0.18, linewidth=0)
        if not numeric_x:
            ax.set_xticks(range(len(xs_all)), [str(v) for v in xs_all])
        ax.set_xlabel(label(x))
        if i % ncols == 0:
            ax.set_ylabel(label(metric))
        if panel_keys:
            ax.set_title(", ".join(f"{label(k)} = {v}" for k, v in zip(panel_keys, combo, strict=True)), fontsize=9)
        ax.grid(alpha=0.3)
    seeds = df["seed"].n_unique() if "seed" in df.columns else 1
    handles, labels = first.get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, loc="upper right", bbox_to_anchor=(1.0, 0.95), title="policy")
    note = f"mean of {seeds} seeds, 95% confidence band" if seeds > 1 else "one seed"
    fig.suptitle(f"{label(metric)} against {label(x)}\n{note}", fontsize=10)
    fig.subplots_adjust(right=1 - 1.4 / fig.get_size_inches()[0], top=1 - 0.95 / fig.get_size_inches()[1],
                        wspace=0.25, hspace=0.5)


def plot_timeline(fig, df, policies: list[str], bins: int = 60) -> None:
    """From a per-request log: models in memory, outcome shares and examples in context over time."""
    import numpy as np
    import polars as pl

    df = df.with_columns(pl.col("outcome").cast(pl.String), pl.col("policy").cast(pl.String))
    t0, t1 = float(df["ts"].min()), float(df["ts"].max())
    span = max(t1 - t0, 1e-9)
    scale, unit = (3600.0, "h") if span > 3 * 3600 else (60.0, "min") if span > 180 else (1.0, "s")
    edges = np.linspace(t0, t1 + span * 1e-9, bins + 1)
    mids = (edges[:-1] + edges[1:]) / 2
    n = len(policies)
    fig.set_size_inches(2.9 * n + 1.4, 6.6)
    colours = policy_colours(policies)
    axes = [[None] * n for _ in range(3)]
    for j, p in enumerate(policies):
        d = df.filter(pl.col("policy") == p).sort("request")
        ts = d["ts"].to_numpy()
        outcome = d["outcome"].to_numpy()
        for i in range(3):
            axes[i][j] = fig.add_subplot(3, n, i * n + j + 1, sharex=axes[0][0] if (i or j) else None,
                                         sharey=axes[i][0] if j else None)
        # Each load inserts one model and each eviction removes one: their running difference is the
        # number of models in GPU memory after each request.
        resident = np.cumsum(outcome == "load") - np.cumsum(d["evictions"].to_numpy())
        which = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, bins - 1)
        # Per bin: the mean after each request (line) and the range (band), readable at any trace length.
        count = np.bincount(which, minlength=bins)
        mean_r = np.divide(np.bincount(which, weights=resident, minlength=bins), count,
                           out=np.full(bins, np.nan), where=count > 0)
        lo_r, hi_r = np.full(bins, np.nan), np.full(bins, np.nan)
        np.fmin.at(lo_r, which, resident.astype(float))
        np.fmax.at(hi_r, which, resident.astype(float))
        axes[0][j].fill_between((mids - t0) / scale, lo_r, hi_r, color=colours[p], alpha=0.2, linewidth=0,
                                step="mid")
        axes[0][j].plot((mids - t0) / scale, mean_r, color=colours[p], linewidth=1.2, drawstyle="steps-mid")
        axes[0][j].set_title(p, fontsize=10)
        total = np.bincount(which, minlength=bins).astype(float)
        shares = []
        for o in OUTCOME_COLOURS:  # substitute: served by an equivalent model (MODEL.md §9.1)
            c = np.bincount(which[outcome == o], minlength=bins)
            shares.append(np.divide(c, total, out=np.full(bins, np.nan), where=total > 0))
        axes[1][j].stackplot((mids - t0) / scale, *shares, colors=list(OUTCOME_COLOURS.values()),
                             labels=list(OUTCOME_COLOURS), linewidth=0)
        axes[1][j].set_ylim(0, 1)
        edge = outcome != "cloud"
        k = np.bincount(which[edge], weights=d["k_eff"].to_numpy()[edge], minlength=bins)
        c = np.bincount(which[edge], minlength=bins)
        mean_k = np.divide(k, c, out=np.full(bins, np.nan), where=c > 0)
        axes[2][j].plot((mids - t0) / scale, mean_k, color=colours[p], linewidth=1.2)
        axes[2][j].set_xlabel(f"time ({unit})")
        for i in range(3):
            axes[i][j].grid(alpha=0.3)
    axes[0][0].set_ylabel("models in GPU memory\n(mean, range per bin)")
    axes[1][0].set_ylabel("share of requests")
    axes[2][0].set_ylabel("examples in context\n(mean K_eff, edge)")
    handles, labels = axes[1][0].get_legend_handles_labels()
    fig.legend(handles, labels, frameon=False, loc="upper right", title="outcome", bbox_to_anchor=(1.0, 0.66))
    fig.suptitle(f"Per-request log over time ({bins} bins)", fontsize=10)
    fig.subplots_adjust(right=1 - 1.2 / fig.get_size_inches()[0], wspace=0.15, hspace=0.3)


def detect_kind(df, axes: list[str]) -> str:
    if {"request", "outcome", "ts"} <= set(df.columns):
        return "timeline"
    if any(df[a].n_unique() > 1 for a in axes if a in df.columns):
        return "sweep"
    return "cost"


def plot(path, out, *, kind: str = "auto", x: str | None = None, metric: str | None = None,
         where: dict | None = None, policies: list[str] | None = None, bins: int | None = None):
    """Draw a figure from a results file (or request log) and write it to `out` (.png, .svg or .pdf).
    x and metric are for a sweep figure, bins (default 60) for a timeline: given to another kind, refused.

    Returns the matplotlib Figure (tests read the plotted values from its artists).
    """
    if kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"{out}: the figure's file name must end in .png, .svg or .pdf")
    if bins is not None and not 1 <= bins <= MAX_BINS:
        raise InputError(f"--bins must be between 1 and {MAX_BINS:,}, got {bins}")
    from .fileio import check_outputs, unlock_output

    require_file(path, "results")
    # The output rules of every command (fileio): never over its input (also through a link), a device
    # or a folder, and one writer at a time; checked before anything is read or drawn.
    locks = check_outputs({"-o": out}, [path])
    try:
        return _plot(path, out, fmt, kind, x, metric, where, policies, bins)
    finally:
        for key in locks:
            unlock_output(key)


def _plot(path, out, fmt, kind, x, metric, where, policies, bins):
    mpl = _matplotlib()
    src = str(path)
    df = _read(path)
    if df.height == 0:
        raise InputError(f"{src}: has no rows")
    if "policy" not in df.columns:
        raise InputError(f"{src}: not a pfmbench results file or request log (no 'policy' column)")
    df = _filter(df, where or {}, src)
    from .compare import _is_scenario_key
    from .sweep import sweep_axes

    axes = [a for a in sweep_axes(path) if a in df.columns]
    axes += [c for c in df.columns if c not in axes and _is_scenario_key(c)]
    auto = kind == "auto"
    if auto:
        kind = detect_kind(df, axes)
    # An option the figure does not draw would be ignored in silence (--metric on a cost figure).
    for opt, value, wants in (("--x", x, "sweep"), ("--metric", metric, "sweep"), ("--bins", bins, "timeline")):
        if value is not None and kind != wants:
            why = " (no grid key varies: give --kind sweep and --x COLUMN)" if auto and kind == "cost" and \
                wants == "sweep" else ""
            raise InputError(f"{src}: {opt} applies to {wants} figures only; this is a {kind} figure{why}")
    import polars as pl

    df = df.with_columns(pl.col("policy").cast(pl.String))  # a request log has it dictionary-encoded
    chosen = _policies(df, policies, src)
    from matplotlib.figure import Figure

    with mpl.rc_context({"svg.fonttype": "none", "pdf.fonttype": 42, "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False}):
        fig = Figure(figsize=(7.5, 4.2), layout=None)
        if kind == "timeline":
            need = {"request", "ts", "outcome", "evictions", "k_eff"}
            if not need <= set(df.columns):
                raise InputError(f"{src}: a timeline needs a --requests-out log (columns {', '.join(sorted(need))})")
            plot_timeline(fig, df, chosen, 60 if bins is None else bins)
        elif kind == "cost":
            from .results import COST_TERMS

            missing = [c for c, _ in COST_TERMS if c not in df.columns]
            if missing:
                raise InputError(f"{src}: no column {missing[0]!r}: a cost figure needs summary rows (replay --out or sweep)")
            plot_cost(fig, df, chosen)
            fig.subplots_adjust(left=0.1, right=0.68, bottom=0.13)
        else:
            varying = [a for a in axes if df[a].n_unique() > 1]
            if x is None:
                if not varying:
                    raise InputError(f"{src}: no swept axis varies here; give --x COLUMN (e.g. a setting_* column)")
                x = varying[0]
            if x not in df.columns:
                raise InputError(f"{src}: no column {x!r} (axes: {', '.join(axes) or 'none'})")
            metric = metric or "system_cost"
            if metric not in df.columns or not df[metric].dtype.is_numeric():
                raise InputError(f"{src}: no numeric column {metric!r}")
            # A key that varies with x (zipped with it, or the setting behind it) is not a panel of its own.
            panel = [a for a in varying if a != x and df.group_by(x).agg(pl.col(a).n_unique())[a].max() > 1]
            if "trace" in df.columns and df["trace"].n_unique() > 1:
                panel.append("trace")
            plot_sweep(fig, df, chosen, x, metric, panel)
        from .fileio import atomic_path

        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120 if fmt == "png" else None, metadata=_metadata(fmt),
                        bbox_inches="tight")
    return fig


def _metadata(fmt: str) -> dict:
    # No creation date: the same data gives the same file.
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}
