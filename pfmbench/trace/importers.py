"""Importers from real traces and generic CSV into the pfmbench trace schema, and export to libCacheSim.

Every importer reads the whole source into memory (a few tens of bytes per request), checks it against a
catalog with trace_problems(), sorts it by time (ties in file order), shifts time so that the first request
is at ts = 0, and writes Parquet atomically: a failure leaves no output file. Errors name the source file
and its line (line 1 is the header).
See docs/traces.md for the choices made for each source.
"""

from __future__ import annotations

import csv
import json
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import Catalog, Model, Task, load_catalog, runtime_memory_gb
from ..errors import InputError
from ..fileio import atomic_path, require_file
from .home import HOME_COLUMNS
from .schema import DEFAULT_INPUT_MB, DEFAULT_UNITS, PairCoder, more_problems, trace_problems
from .synth import zipf_probabilities

Progress = Callable[[int], None] | None
STEPS = 4  # read, convert, validate, write: the importers call progress(step) after each
# The dates a 64-bit nanosecond clock holds, in microseconds since 1970 (whole seconds inside the range).
NS_MIN_US = -(2**63 // 1000 // 1_000_000) * 1_000_000
NS_MAX_US = (2**63 - 1) // 1000 // 1_000_000 * 1_000_000


@dataclass
class ImportReport:
    """What an importer did: rows written and rows dropped, by reason."""

    rows: int
    output: Path
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _catalog(catalog: Catalog | str | Path | None) -> Catalog:
    return catalog if isinstance(catalog, Catalog) else load_catalog(catalog)


def _step(progress: Progress, i: int) -> None:
    if progress:
        progress(i)


# -- reading CSV ---------------------------------------------------------------------------
def _read_csv(src: str | Path, required: list[str]) -> pl.DataFrame:
    """The whole CSV as strings (we parse each column ourselves, to report the line of a bad value)."""
    p = Path(src)
    require_file(p, "CSV", f"{src}: file not found")
    try:
        # polars would rename a second `ts` to `ts_duplicated_0` and import the first: read the header as
        # a row to refuse it (unnamed columns, e.g. from trailing commas, cannot be mapped and are let be)
        header = pl.read_csv(p, has_header=False, n_rows=1, infer_schema=False, truncate_ragged_lines=True).row(0)
        twice = next((c for i, c in enumerate(header) if c is not None and c in header[:i]), None)
        if twice is not None:
            raise InputError(f"{src}: column {twice!r} appears twice in the header")
        df = pl.read_csv(p, infer_schema=False, raise_if_empty=True)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        raise InputError(f"{src}: cannot read CSV: {str(e).strip().splitlines()[0]}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{src}: missing column(s) {', '.join(map(repr, missing))} (has {', '.join(df.columns)})")
    if df.height == 0:
        raise InputError(f"{src}: the CSV has no rows")
    return df


def physical_line(src, record: int) -> int:
    """The line of the source file where data record `record` starts (2 for the first under the header), as
    an editor numbers lines: a quoted field spanning lines, blank lines (polars reads one as a row of nulls)
    and blank lines before the header all count. The file is read again only for an error message."""
    try:
        with open(src, newline="", encoding="utf-8-sig", errors="replace") as f:
            reader = csv.reader(f)
            seen_header, n, end = False, 1, 0
            for row in reader:
                start, end = end + 1, reader.line_num
                if not seen_header:
                    seen_header = row != []  # polars skips blank lines before the header
                    continue
                n += 1
                if n == record:
                    return start
    except (OSError, csv.Error):  # unreadable now, or a field beyond csv's size limit: the record's number
        pass
    return record


def _bad_line(src, df: pl.DataFrame, bad: pl.Series, msg: str) -> None:
    """Raise for the first row where `bad` is true; the message names its line in the source file."""
    idx = np.flatnonzero(bad.fill_null(True).to_numpy())
    if idx.size:
        line = physical_line(src, int(df["_line"][int(idx[0])]))
        more = f" (and {idx.size - 1:,} more)" if idx.size > 1 else ""
        raise InputError(f"{src}: line {line}: {msg(int(idx[0])) if callable(msg) else msg}{more}")


def _number(df: pl.DataFrame, col: str, src, *, nonneg: bool = True) -> pl.Series:
    raw = df[col]
    vals = raw.str.strip_chars().cast(pl.Float64, strict=False)
    bad = vals.is_null() | ~vals.is_finite()
    if nonneg:
        bad = bad | (vals < 0)
    want = "a finite number >= 0" if nonneg else "a finite number"
    _bad_line(src, df, bad, lambda i: f"{col} is missing" if raw[i] is None else f"{col} is {raw[i]!r}, expected {want}")
    return vals


def _seconds(df: pl.DataFrame, col: str, fmt: str, src) -> tuple[np.ndarray, float]:
    """Parse a time column: `seconds`, `ms`, `auto`, or a strftime/chrono format.

    Returns (seconds since `epoch`, epoch). Date-times are made relative to the earliest one in integer
    nanoseconds first: float seconds since 1970 would lose the sub-microsecond digits.
    """
    raw = df[col].str.strip_chars()
    # auto: numbers are seconds when every value given is one (a blank line's null is reported by line below)
    if fmt in ("seconds", "ms") or (fmt == "auto" and raw.cast(pl.Float64, strict=False).null_count() == raw.null_count()):
        vals = _number(df, col, src, nonneg=False)
        return vals.to_numpy() / (1000.0 if fmt == "ms" else 1.0), 0.0

    def parse(unit):
        if fmt == "auto":
            return raw.str.to_datetime(strict=False, time_unit=unit)
        return raw.str.strptime(pl.Datetime(unit), fmt, strict=False)

    try:
        # Parsed in microseconds first (±292,000 years): in nanoseconds a date after 2262 or before 1677
        # wraps around silently (polars) and would reorder the trace.
        t_us = parse("us")
    except pl.exceptions.PolarsError as e:
        raise InputError(f"{src}: column {col!r}: cannot parse times: {str(e).strip().splitlines()[0]}") from None
    how = "a recognisable date-time" if fmt == "auto" else f"a time in format {fmt!r}"
    _bad_line(src, df, t_us.is_null(), lambda i: f"{col} is {raw[i]!r}, expected {how}")
    us = t_us.dt.epoch("us")
    _bad_line(src, df, (us < NS_MIN_US) | (us > NS_MAX_US),
              lambda i: f"{col} is {raw[i]!r}: outside the dates a 64-bit nanosecond clock holds "
                        f"(1677-09-21 00:12:44 to 2262-04-11 23:47:16)")
    ns = parse("ns").dt.epoch("ns").to_numpy()  # every value now in range: exact to the nanosecond
    first = int(ns.min())
    # Whole seconds and nanoseconds apart: ns - first itself overflows int64 for dates over 292 years apart.
    sec, frac = np.divmod(ns, 1_000_000_000)
    sec0, frac0 = divmod(first, 1_000_000_000)
    return (sec - sec0).astype(np.float64) + (frac - frac0).astype(np.float64) / 1e9, first / 1e9


def _text(df: pl.DataFrame, col: str, src) -> pl.Series:
    vals = df[col].str.strip_chars()
    _bad_line(src, df, vals.is_null() | (vals == ""), f"{col} is empty")
    return vals


# -- writing -------------------------------------------------------------------------------
def _write_trace(df: pl.DataFrame, out, catalog: Catalog, src, progress: Progress, meta: dict,
                 epoch: float = 0.0) -> int:
    """Validate (naming source lines), sort, shift to ts = 0 and write `df` (ts, model, task, units,
    input_mb, _line, and `user` / `edge` where the source says them: README, "Several edge servers")
    atomically. Returns the number of rows."""
    if df.height == 0:
        raise InputError(f"{src}: no requests left to import")
    _, problems = trace_problems(df.drop("_line"), catalog, limit=0)
    if problems:
        r, msg = problems[0]
        where = f"line {physical_line(src, int(df['_line'][r]))}" if r >= 0 else "trace"
        raise InputError(f"{src}: {where}: {msg}{more_problems(problems)}")
    _step(progress, 3)
    df = df.sort("ts", maintain_order=True)
    origin = float(df["ts"][0])
    table = df.drop("_line").with_columns(pl.col("ts") - origin).to_arrow()
    dict_str = pa.dictionary(pa.int32(), pa.string())
    home = {c: table[c].cast(pa.string()).dictionary_encode().cast(dict_str) for c in HOME_COLUMNS
            if c in table.column_names}
    table = pa.table({
        "ts": table["ts"].cast(pa.float64()),
        "model": table["model"].cast(pa.string()).dictionary_encode().cast(dict_str),
        "task": table["task"].cast(pa.string()).dictionary_encode().cast(dict_str),
        "units": table["units"].cast(pa.float64()),
        "input_mb": table["input_mb"].cast(pa.float64()),
        **home,
    }).replace_schema_metadata({"pfmbench": json.dumps({**meta, "origin_s": epoch + origin})})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    _step(progress, 4)
    return table.num_rows


# -- alibaba-genai -------------------------------------------------------------------------
ALIBABA_TASKS = {"TXT_2_IMG": "text_to_image", "IMG_2_IMG": "image_to_image", "INPAINTING": "inpainting"}
# Stable Diffusion classes a base model is assigned to (docs/traces.md gives the sources).
#   params_m: UNet + text encoder(s) + VAE. gflops: per denoising step per image, UNet forward twice
#   (classifier-free guidance), 2 FLOP per multiply-accumulate. zero_shot: share of user preference in
#   the SDXL paper's study (Fig. 1): a quality score only; the curve is flat, so it adds no accuracy cost.
SD_CLASSES = {
    "SD1.5": {"params_m": 860 + 123 + 84, "gflops": 2 * 2 * 339.0, "zero_shot": 7.91},
    "SDXL": {"params_m": 2567 + 123 + 695 + 84, "gflops": 2 * 2 * 3200.0, "zero_shot": 36.93},
}
SDXL_FRACTION = 0.25
IMAGE_UPLOAD_MB = DEFAULT_INPUT_MB["MFM"]  # IMG_2_IMG and INPAINTING send an image


def sd_class(model_id: str, sdxl_fraction: float = SDXL_FRACTION) -> str:
    """Deterministic class of an anonymized base model: SDXL when crc32(id) / 2^32 < sdxl_fraction."""
    return "SDXL" if zlib.crc32(model_id.encode()) / 2**32 < sdxl_fraction else "SD1.5"


def alibaba_catalog(model_tasks: dict[str, list[str]], sdxl_fraction: float = SDXL_FRACTION,
                    source: str = "alibaba-genai") -> Catalog:
    """One MFM model per base-model id, with the tasks (request types) it was used for."""
    models = []
    for mid, tasks in model_tasks.items():
        c = SD_CLASSES[sd_class(mid, sdxl_fraction)]
        models.append(Model(mid, "MFM", c["params_m"], c["gflops"], "fp16",
                            runtime_memory_gb(c["params_m"], "fp16"), 0.0,
                            tuple(Task(t, c["zero_shot"]) for t in tasks)))
    return Catalog(tuple(models), source)


def write_catalog_csv(catalog: Catalog, path) -> None:
    """A catalog as CSV in the table1.csv format (plus precision and context_window), atomically."""
    cols = ["model", "family", "task", "params_m", "gflops", "k_few", "zero_shot", "one_shot", "few_shot",
            "precision", "context_window"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for m in catalog.models:
            for t in m.tasks:
                w.writerow([m.name, m.family, t.name, f"{m.params_m:g}", f"{m.gflops:g}", t.k_few or "",
                            f"{t.zero_shot:g}", "" if t.one_shot is None else f"{t.one_shot:g}",
                            "" if t.few_shot is None else f"{t.few_shot:g}", m.precision, f"{m.context_window:g}"])


def calibrate_load(latency_csv, memory_gb: np.ndarray) -> dict:
    """load_overhead_s = p5 of the measured load latencies; load_gbps = median model memory (over the
    requests, in GB) / (median latency - overhead). The latency file names no model, so no per-size fit."""
    df = _read_csv(latency_csv, ["value"]).with_row_index("_line", offset=2)
    lat = _number(df, "value", latency_csv).to_numpy() / 1000.0  # ms -> s
    p5, p50, p95 = np.percentile(lat, [5, 50, 95])
    mem = float(np.median(memory_gb))
    if not p50 > p5:
        raise InputError(f"{latency_csv}: cannot calibrate loads: the median latency ({p50:g} s) is not above "
                         f"the 5th percentile ({p5:g} s)")
    return {"load_overhead_s": round(float(p5), 3), "load_gbps": round(mem / (p50 - p5), 4), "samples": lat.size,
            "p5_s": float(p5), "p50_s": float(p50), "p95_s": float(p95), "median_memory_gb": mem}


def _write_scenario(path, cal: dict, latency_csv, catalog_out=None) -> None:
    """The calibration as a scenario TOML; [catalog] path names the catalog written beside it (relative to
    the scenario file, as load_scenario() reads it), so that `--scenario` alone replays the trace."""
    text = (f"# From `pfmbench import alibaba-genai`: {cal['samples']} base-model loads in {Path(latency_csv).name}\n"
            f"# (p5 {cal['p5_s']:.2f} s, median {cal['p50_s']:.2f} s, p95 {cal['p95_s']:.2f} s).\n"
            f"# load_overhead_s = p5; load_gbps = median model memory over the requests ({cal['median_memory_gb']:.2f}"
            f" GB) / (median - p5). See docs/traces.md.\n"
            f"[edge]\nload_overhead_s = {cal['load_overhead_s']}\nload_gbps = {cal['load_gbps']}\n")
    if catalog_out is not None and str(catalog_out) != "-" and str(path) != "-":
        rel = os.path.relpath(os.path.abspath(catalog_out), os.path.dirname(os.path.abspath(path)))
        text += f"\n[catalog]\npath = {json.dumps(Path(rel).as_posix())}  # written by --catalog-out\n" \
                "copies_per_task = false\n"
    else:
        text += ("\n# [catalog] path: the trace's models were not written to a file (give --catalog-out "
                 "to record it here)\n")
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def import_alibaba(src, out, *, catalog_out=None, scenario_out=None, latency_csv=None,
                   only_succeeded: bool = False, sdxl_fraction: float = SDXL_FRACTION,
                   progress: Progress = None) -> ImportReport:
    """Alibaba GenAI 2026 `lora_request_trace.csv` -> trace; optionally its catalog and a load calibration.

    Each base model (checkpoint_model_version_id) is a model; its tasks are the request types.
    units = num_inference_steps x num_images_per_prompt. Rows without a base model, steps or image count
    are dropped; FAILED/PENDING/PROCESSING requests are kept unless only_succeeded.
    latency_csv: default base_model_update_latency_anon.csv beside src (needed for scenario_out).
    """
    if not 0 <= sdxl_fraction <= 1:
        raise InputError(f"sdxl_fraction must be in [0, 1], got {sdxl_fraction}")
    if latency_csv is not None:
        require_file(latency_csv, "latency")
    need = ["gmt_create", "predict_type", "predict_status", "num_images_per_prompt", "num_inference_steps",
            "checkpoint_model_version_id"]
    df = _read_csv(src, need).with_row_index("_line", offset=2)
    _step(progress, 1)
    dropped = {}
    keep = (pl.col("checkpoint_model_version_id").str.strip_chars().fill_null("") != "") & \
        pl.col("num_inference_steps").is_not_null() & pl.col("num_images_per_prompt").is_not_null()
    n = df.height
    df = df.filter(keep)
    dropped["no base model, steps or image count"] = n - df.height
    if only_succeeded:
        n = df.height
        df = df.filter(pl.col("predict_status").str.strip_chars() == "SUCCEED")
        dropped["not SUCCEED"] = n - df.height
    if df.height == 0:
        raise InputError(f"{src}: no requests left to import")
    ts, epoch = _seconds(df, "gmt_create", "%Y-%m-%d %H:%M:%S", src)
    ptype = _text(df, "predict_type", src)
    _bad_line(src, df, ~ptype.is_in(list(ALIBABA_TASKS)),
              lambda i: f"predict_type is {ptype[i]!r}, expected one of {', '.join(ALIBABA_TASKS)}")
    units = _number(df, "num_inference_steps", src) * _number(df, "num_images_per_prompt", src)
    chars = sum((df[c].cast(pl.Float64, strict=False).fill_null(0.0) for c in
                 ("prompt_length", "negative_prompt_length") if c in df.columns), pl.Series([0.0] * df.height))
    upload = ptype.is_in(["IMG_2_IMG", "INPAINTING"]).cast(pl.Float64) * IMAGE_UPLOAD_MB
    model = df["checkpoint_model_version_id"].str.strip_chars()
    task = ptype.replace_strict(ALIBABA_TASKS)
    trace = pl.DataFrame({"ts": ts, "model": model, "task": task, "units": units,
                          "input_mb": chars / 1e6 + upload, "_line": df["_line"]})
    group = df["groupId"].str.strip_chars() if "groupId" in df.columns else None
    if group is not None and not (group.is_null() | (group == "")).any():
        trace = trace.with_columns(user=group)  # its only requester field, an anonymised group: kept as the user
    # Tasks per model in a fixed order, models in order of first request.
    order = list(ALIBABA_TASKS.values())
    pairs = trace.select("model", "task").unique(maintain_order=True)
    model_tasks: dict[str, list[str]] = {}
    for m, t in pairs.iter_rows():
        model_tasks.setdefault(m, []).append(t)
    model_tasks = {m: sorted(ts_, key=order.index) for m, ts_ in model_tasks.items()}
    cat = alibaba_catalog(model_tasks, sdxl_fraction, str(catalog_out or "alibaba-genai"))
    _step(progress, 2)
    if scenario_out is not None or latency_csv is not None:  # a latency file given is always read and checked
        latency_csv = latency_csv or Path(src).with_name("base_model_update_latency_anon.csv")
        mem_of = {m.name: m.memory_gb for m in cat.models}
        cal = calibrate_load(latency_csv, trace["model"].replace_strict(mem_of, return_dtype=pl.Float64).to_numpy())
    rows = _write_trace(trace, out, cat, src, progress, {"source": str(src), "importer": "alibaba-genai"}, epoch)
    notes = [(f"{len(cat.models)} base models, "
             f"{sum(sd_class(m.name, sdxl_fraction) == 'SDXL' for m in cat.models)} assigned SDXL")]
    if catalog_out is not None:
        write_catalog_csv(cat, catalog_out)
        notes.append(f"catalog: {catalog_out}")
    if scenario_out is not None:
        _write_scenario(scenario_out, cal, latency_csv, catalog_out)
        notes.append(f"scenario: {scenario_out} (load_overhead_s {cal['load_overhead_s']}, "
                     f"load_gbps {cal['load_gbps']})")
    elif latency_csv is not None:
        notes.append(f"load calibration from {latency_csv} (not written; give --scenario-out): "
                     f"load_overhead_s {cal['load_overhead_s']}, load_gbps {cal['load_gbps']}")
    return ImportReport(rows, Path(out), {k: v for k, v in dropped.items() if v}, notes)


# -- azure-llm -----------------------------------------------------------------------------
AZURE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"  # e.g. 2023-11-16 18:17:03.9799600 (seven fractional digits)


def import_azure(src, out, *, catalog: Catalog | str | Path | None = None, alpha: float = 0.8, seed: int = 0,
                 progress: Progress = None) -> ImportReport:
    """Azure LLM inference trace (Splitwise, 2023) -> trace: real arrival times and token counts.

    units = ContextTokens + GeneratedTokens; input_mb = ContextTokens x DEFAULT_INPUT_MB/DEFAULT_UNITS
    of an LFM. The model and task of each request are a seeded Zipf(alpha) draw over the catalog's LFM
    (model, task) pairs, rank 1 = the first LFM pair in catalog order.
    """
    cat = _catalog(catalog)
    lfm = [(cat.models[i].name, cat.models[i].tasks[j].name) for i, j in cat.pairs
           if cat.models[i].family == "LFM"]
    if not lfm:
        raise InputError(f"{cat.source}: the catalog has no LFM models to lay on an LLM trace")
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise InputError(f"alpha must be >= 0, got {alpha}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise InputError(f"seed must be a whole number from 0 to 2**64-1, got {seed!r}")
    df = _read_csv(src, ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]).with_row_index("_line", offset=2)
    _step(progress, 1)
    ts, epoch = _seconds(df, "TIMESTAMP", AZURE_TIME_FORMAT, src)
    ctx = _number(df, "ContextTokens", src)
    gen = _number(df, "GeneratedTokens", src)
    cdf = np.cumsum(zipf_probabilities(len(lfm), alpha))
    cdf[-1] = 1.0
    rank = np.searchsorted(cdf, np.random.default_rng(seed).random(df.height), side="right")
    trace = pl.DataFrame({"ts": ts, "model": np.array([m for m, _ in lfm])[rank],
                          "task": np.array([t for _, t in lfm])[rank], "units": ctx + gen,
                          "input_mb": ctx * (DEFAULT_INPUT_MB["LFM"] / DEFAULT_UNITS["LFM"]), "_line": df["_line"]})
    _step(progress, 2)
    rows = _write_trace(trace, out, cat, src, progress,
                        {"source": str(src), "importer": "azure-llm", "alpha": alpha, "seed": seed}, epoch)
    return ImportReport(rows, Path(out), notes=[(f"model mix: Zipf alpha {alpha} over {len(lfm)} LFM pairs of "
                                                 f"{cat.source}, seed {seed}")])


# -- generic CSV ---------------------------------------------------------------------------
def import_csv(src, out, *, catalog: Catalog | str | Path | None = None, ts: str = "ts", model: str = "model",
               task: str | None = None, units: str | None = None, input_mb: str | None = None,
               time_format: str = "auto", user: str | None = None, edge: str | None = None,
               progress: Progress = None) -> ImportReport:
    """Any CSV -> trace, mapping its columns. task/units/input_mb: None means the column of that name if
    present (else the model's first task / the family default). time_format: `seconds`, `ms`, `auto`
    (numbers are seconds, else date-times are recognised) or a strftime format such as %Y-%m-%d %H:%M:%S.
    user/edge: the columns naming each request's user / home edge server (None: the column of that name if
    present), kept as `user` / `edge` (README, "Several edge servers").
    """
    cat = _catalog(catalog)
    optional = {"task": task, "units": units, "input_mb": input_mb, "user": user, "edge": edge}
    head = _read_csv(src, [ts, model] + [c for c in optional.values() if c])
    df = head.with_row_index("_line", offset=2)
    _step(progress, 1)
    coder = PairCoder(cat)
    seconds, epoch = _seconds(df, ts, time_format, src)
    cols = {"ts": seconds, "model": _text(df, model, src)}
    for name, col in optional.items():
        col = col or (name if name in df.columns else None)
        if col is None:
            continue
        if name == "task":  # an empty task means the model's first task, as in the trace schema
            cols[name] = df[col].str.strip_chars().replace("", None)
        elif name in HOME_COLUMNS:  # text, every row (a multi-edge replay needs each request's home)
            cols[name] = _text(df.with_columns(pl.col(col).cast(pl.String)), col, src)
        else:
            cols[name] = _number(df, col, src)
    trace = pl.DataFrame({**cols, "_line": df["_line"]})
    if "task" not in trace.columns:
        trace = trace.with_columns(task=pl.lit(None, pl.String))
    # Fill what the CSV does not give with the model's first task and the family defaults.
    # Look up each distinct (model, task) once, then join back (a CSV may have millions of rows).
    key = trace.select(m=pl.col("model").str.to_lowercase(), t=pl.col("task").str.to_lowercase().fill_null("\x00"))
    uniq = key.unique()
    codes = [coder.lookup.get((m, None if t == "\x00" else t), -1) for m, t in uniq.iter_rows()]
    pair = key.join(uniq.with_columns(p=pl.Series(codes, dtype=pl.Int64)), on=["m", "t"], how="left",
                    maintain_order="left")["p"].to_numpy()
    _bad_line(src, trace, pl.Series(pair < 0),
              lambda i: f"unknown model/task {trace['model'][i]!r}/{trace['task'][i]!r} (not in catalog {cat.source})")
    trace = trace.with_columns(task=pl.Series(np.array([t for _, t in cat.pair_names()])[pair]))
    for name, default in (("units", coder.default_units), ("input_mb", coder.default_input_mb)):
        if name not in trace.columns:
            trace = trace.with_columns(pl.Series(name, default[pair]))
    _step(progress, 2)
    rows = _write_trace(trace.select("ts", "model", "task", "units", "input_mb", "_line",
                                     *(c for c in HOME_COLUMNS if c in trace.columns)), out, cat, src, progress,
                        {"source": str(src), "importer": "csv"}, epoch)
    return ImportReport(rows, Path(out))
