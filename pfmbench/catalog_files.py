"""Reading catalogs (docs/catalogs.md): CSV or TOML rows into a Catalog, validated one problem per line, and
the templates `pfmbench models --template` prints. pfmbench.catalog re-exports load_catalog and catalog_template.
"""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path

from .catalog import (
    BYTES_PER_PARAM,
    DEFAULT_PRECISION,
    DEFAULT_RUNTIME_OVERHEAD,
    FAMILIES,
    Catalog,
    Model,
    Task,
    runtime_memory_gb,
)
from .errors import InputError
from .fileio import read_toml, require_file

# -- reading catalogs ----------------------------------------------------------------------
# The catalog schema (docs/catalogs.md): CSV columns, or TOML keys of [[model]] and [[model.task]].
_REQUIRED = ("model", "family", "task", "params_m", "gflops", "zero_shot")
MODEL_KEYS = ("family", "params_m", "gflops", "precision", "memory_gb", "context_window")
TASK_KEYS = ("zero_shot", "one_shot", "few_shot", "k_few")
VARIANT_KEYS = ("base", "adapter_mb")  # a fine-tuned variant of another model, served as an adapter (MODEL.md §9.5)
CSV_COLUMNS = ("model", "family", "task", *MODEL_KEYS[1:3], "k_few", "zero_shot", "one_shot", "few_shot",
               "precision", "memory_gb", "context_window", *VARIANT_KEYS, "equivalent", "precisions")
# (lowest, highest) of every number, inclusive; params_m must also be > 0. Physically sensible bounds that keep
# every cost of a replay finite (memory is counted in int64 bytes, work in float64 GFLOP).
LIMITS = {
    "params_m": (0.0, 1e8),  # millions of parameters: up to 100 trillion
    "gflops": (0.0, 1e9),  # GFLOP per unit of work
    "zero_shot": (0.0, 100.0), "one_shot": (0.0, 100.0), "few_shot": (0.0, 100.0),  # percent points
    "k_few": (0.0, 1e6),  # examples
    "memory_gb": (0.0, 1e6),  # GB (10^9 bytes): up to a petabyte
    "context_window": (0.0, 1e6),  # examples
    "adapter_mb": (0.0, 1e9),  # MB (10^6 bytes); must also be > 0 and below its base's memory
}
UNITS = {"params_m": "millions of parameters", "gflops": "GFLOP per unit", "zero_shot": "percent",
         "one_shot": "percent", "few_shot": "percent", "k_few": "examples", "memory_gb": "GB",
         "context_window": "examples", "adapter_mb": "MB"}


def _num(src, where, key, value, *, required=False, positive=False):
    if value is None or (isinstance(value, str) and value.strip() in ("", "-")):
        if required:
            raise InputError(f"{src}: {where}: missing {key}")
        return None
    if isinstance(value, bool):
        raise InputError(f"{src}: {where}: {key} is not a number: {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{src}: {where}: {key} is not a number: {value!r}") from None
    lo, hi = LIMITS.get(key, (0.0, math.inf))
    if not math.isfinite(v) or v < lo or v > hi or (positive and v == 0):
        low = f"> {lo:g}" if positive else f">= {lo:g}"
        raise InputError(f"{src}: {where}: {key} must be a number {low} and <= {hi:g} ({UNITS.get(key, '')}), "
                         f"got {value!r}")
    return v


def _shape_warnings(src: str, models: list[Model]) -> list[str]:
    """Suspicious but possible catalogs: reported, not refused."""
    out = []
    accs = [v for m in models for t in m.tasks for v in (t.zero_shot, t.one_shot, t.few_shot) if v is not None]
    if accs and max(accs) <= 1.0 and any(accs):
        out.append(f"{src}: every accuracy is at most 1: pfmbench reads them as percent points (0-100), "
                   "not fractions")
    for m in models:
        for t in m.tasks:
            name = f"{m.name}/{t.name}" if len(m.tasks) > 1 or m.base else m.name
            drops = [k for k, v in (("one_shot", t.one_shot), ("few_shot", t.few_shot))
                     if v is not None and v < t.zero_shot]
            if drops:
                out.append(f"{src}: {name}: accuracy falls below zero-shot with more examples in context "
                           f"({' and '.join(drops)} < zero_shot)")
            if t.one_shot is not None and m.context_window == 0:
                out.append(f"{src}: {name}: one-/few-shot accuracies are unused: its context window is 0 "
                           "(no in-context learning)")
            elif t.k_few is not None and m.context_window and t.k_few > m.context_window:
                out.append(f"{src}: {name}: k_few {t.k_few:g} is above its context window "
                           f"{m.context_window:g}: few-shot accuracy is never reached")
            if (t.few_shot is None) != (t.k_few is None) and t.one_shot is not None:
                out.append(f"{src}: {name}: few_shot and k_few go together; with only one of them the curve "
                           "stays at one-shot")
    return out


def _build(rows: list[dict], src: str, overhead: float, precision: str,
           extra_warnings: list[str] | None = None) -> Catalog:
    """rows: one dict per (model, task) with the table1.csv columns; `where` names the row for errors."""
    extra_warnings = list(extra_warnings or [])
    groups: dict[str, list[dict]] = {}
    for r in rows:
        where = r["_where"]
        for k in ("model", "family", "task"):
            if not isinstance(r.get(k), str) or not r[k].strip():
                raise InputError(f"{src}: {where}: missing {k}" if r.get(k) in (None, "") else
                                 f"{src}: {where}: {k} must be a string, got {r[k]!r}")
        if not isinstance(r.get("base") or "", str):
            raise InputError(f"{src}: {where}: base must be a string (the base model's name), got {r['base']!r}")
        r["base"] = str(r.get("base") or "").strip()
        if not isinstance(r.get("equivalent") or "", str):
            raise InputError(f"{src}: {where}: equivalent must be a string (a group name), got {r['equivalent']!r}")
        r["equivalent"] = str(r.get("equivalent") or "").strip()
        if not isinstance(r.get("precisions") or "", str):
            raise InputError(f"{src}: {where}: precisions must be a string (e.g. \"fp16,int8,int4\"), got "
                             f"{r['precisions']!r}")
        precs = tuple(dict.fromkeys(x.strip().lower() for x in str(r.get("precisions") or "").split(",") if x.strip()))
        bad = [x for x in precs if x not in BYTES_PER_PARAM]
        if bad:
            raise InputError(f"{src}: {where}: precisions must be from {', '.join(BYTES_PER_PARAM)}, got {bad[0]!r}")
        r["precisions"] = precs
        if not isinstance(r.get("precision") or "", str):
            raise InputError(f"{src}: {where}: precision must be a string, got {r['precision']!r}")
        fam = str(r["family"]).strip().upper()
        if fam not in FAMILIES:
            raise InputError(f"{src}: {where}: family must be one of {', '.join(FAMILIES)}, got {r['family']!r}")
        r["family"] = fam
        prec = str(r.get("precision") or precision).strip().lower()
        if prec not in BYTES_PER_PARAM:
            raise InputError(f"{src}: {where}: precision must be one of {', '.join(BYTES_PER_PARAM)}, got {prec!r}")
        r["precision"] = prec
        for key in ("params_m", "gflops", "zero_shot"):
            r[key] = _num(src, where, key, r.get(key), required=True, positive=key == "params_m")
        for key in ("one_shot", "few_shot", "k_few", "memory_gb", "context_window"):
            r[key] = _num(src, where, key, r.get(key))
        r["adapter_mb"] = _num(src, where, "adapter_mb", r.get("adapter_mb"), positive=True)
        if r["adapter_mb"] is not None and not r["base"]:
            raise InputError(f"{src}: {where}: adapter_mb is given but base is not (an adapter needs a base model)")
        groups.setdefault(str(r["model"]).strip(), []).append(r)

    models = []
    for name, rs in groups.items():
        shared = {(r["family"], r["params_m"], r["gflops"], r["precision"], r["memory_gb"]) for r in rs}
        variant = {(r["base"], r["adapter_mb"]) for r in rs}
        if len(variant) > 1:
            raise InputError(f"{src}: {rs[1]['_where']}: model {name!r}: every row of a model gives the same base "
                             "and adapter_mb")
        variant_of, adapter_mb = variant.pop()
        if len({r["equivalent"].lower() for r in rs}) > 1:
            raise InputError(f"{src}: {rs[1]['_where']}: model {name!r}: every row of a model gives the same "
                             "equivalent group")
        equivalent = rs[0]["equivalent"]
        if len({r["precisions"] for r in rs}) > 1:
            raise InputError(f"{src}: {rs[1]['_where']}: model {name!r}: every row of a model gives the same "
                             "precisions")
        precisions = rs[0]["precisions"]
        # Rows of one model with different sizes or GFLOPs (Table I's UniFormer) are separate models.
        units = [(name, rs, "")] if len(shared) == 1 else [(f"{name}/{r['task'].strip()}", [r], name) for r in rs]
        for mname, mrows, base in units:
            r0 = mrows[0]
            tasks, seen = [], set()
            for r in mrows:
                t = str(r["task"]).strip()
                if t.lower() in seen:
                    raise InputError(f"{src}: {r['_where']}: task {t!r} of model {name!r} is given twice")
                seen.add(t.lower())
                tasks.append(Task(t, r["zero_shot"], r["one_shot"], r["few_shot"], r["k_few"]))
            windows = [r["context_window"] for r in mrows if r["context_window"] is not None]
            if windows:
                window = max(windows)
            elif r0["family"] == "LFM":
                window = max((t.k_few or 0.0) for t in tasks if t.one_shot is not None) if any(
                    t.one_shot is not None for t in tasks) else 0.0
            else:
                window = 0.0
            mem = r0["memory_gb"] if r0["memory_gb"] is not None else runtime_memory_gb(
                r0["params_m"], r0["precision"], overhead)
            models.append(Model(mname, r0["family"], r0["params_m"], r0["gflops"], r0["precision"], mem,
                                float(window), tuple(tasks), base, variant_of, adapter_mb or 0.0, equivalent,
                                precisions))
    for m in models:
        if m.memory_gb > LIMITS["memory_gb"][1]:
            raise InputError(f"{src}: model {m.name!r}: its memory ({m.memory_gb:.3g} GB from params_m and "
                             f"precision) is above {LIMITS['memory_gb'][1]:g} GB")
    if not models:
        raise InputError(f"{src}: the catalog has no models")
    _check_variants(src, models)
    return Catalog(tuple(models), src, tuple(dict.fromkeys(extra_warnings + _shape_warnings(src, models))))


def _check_variants(src: str, models: list[Model]) -> None:
    """A variant's base must be a model of the catalog, not a variant itself, and larger than its adapter."""
    by = {m.name.lower(): m for m in models}
    for m in models:
        if not m.variant_of:
            continue
        b = by.get(m.variant_of.lower())
        if b is None:
            raise InputError(f"{src}: model {m.name!r}: its base {m.variant_of!r} is not a model of the catalog")
        if b is m:
            raise InputError(f"{src}: model {m.name!r}: a model cannot be its own base")
        if b.variant_of:
            raise InputError(f"{src}: model {m.name!r}: its base {b.name!r} is itself a variant (of {b.variant_of!r}); "
                             "a base must be a full model")
        if m.adapter_mb and m.adapter_bytes >= b.memory_bytes:
            raise InputError(f"{src}: model {m.name!r}: its adapter ({m.adapter_mb:g} MB) is not smaller than its "
                             f"base {b.name!r} ({b.memory_gb:g} GB)")


class _Lines:
    """A text file's lines for csv, numbering them: `first` is the first non-blank line handed out since it was
    last set to None, the physical line where a row starts (a quoted field may span lines; blank lines are
    skipped), as an editor numbers it."""

    def __init__(self, f):
        self.f, self.n, self.first = f, 0, None

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.f)
        self.n += 1
        if self.first is None and line.strip("\r\n"):
            self.first = self.n
        return line


def _read_csv(path: Path, src: str) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = _Lines(f)
            reader = csv.DictReader(lines)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                raise InputError(f"{src}: missing column(s) {', '.join(missing)} (a catalog CSV has columns "
                                 f"{','.join(CSV_COLUMNS)}; see `pfmbench models --template`)")
            unknown = [c for c in header if c and c not in CSV_COLUMNS]
            twice = next((c for i, c in enumerate(header) if c in header[:i]), None)
            if twice is not None:  # DictReader would keep the last one's values
                raise InputError(f"{src}: column {twice!r} appears twice in the header")
            rows = []
            lines.first = None
            for r in reader:
                line = lines.first  # where the row starts (reader.line_num is where it ends)
                lines.first = None
                if None in r:  # more fields than the header has
                    raise InputError(f"{src}: line {line}: more fields than the header's {len(header)}")
                r = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in r.items() if k}
                r["_where"] = f"line {line}"
                rows.append(r)
            if unknown:
                rows.append({"_unknown": unknown})
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{src}: cannot read catalog: {e}") from None


def _read_toml(path: Path, src: str) -> list[dict]:
    """[[model]] tables (name, family, params_m, gflops, ...) each with [[model.task]] tables (name, zero_shot,
    ...) -> one row per (model, task), as the CSV gives them. Types are checked here, with TOML's key names."""
    doc = read_toml(path, "catalog", src)
    extra = [k for k in doc if k != "model"]
    if extra:
        raise InputError(f"{src}: unknown top-level key(s) {', '.join(map(repr, extra))}: a catalog TOML has only "
                         "[[model]] tables (see `pfmbench models --template --toml`)")
    models = doc.get("model", [])
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise InputError(f"{src}: `model` must be an array of tables, written [[model]], got {models!r:.60}")
    model_keys = {"name", "task", *MODEL_KEYS, *TASK_KEYS, *VARIANT_KEYS, "equivalent", "precisions"}
    task_keys = {"name", *MODEL_KEYS, *TASK_KEYS}
    rows = []
    for n, m in enumerate(models, start=1):
        name = m.get("name")
        where = f"[[model]] #{n}" + (f" ({name!r})" if isinstance(name, str) else "")
        if name is None or (isinstance(name, str) and not name.strip()):
            raise InputError(f"{src}: {where}: missing name")
        if not isinstance(name, str):
            raise InputError(f"{src}: {where}: name must be a string, got {name!r}")
        _check_toml_keys(src, where, m, model_keys)
        tasks = m.get("task", [{"name": "default"}])
        if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
            raise InputError(f"{src}: {where}: `task` must be a non-empty array of tables, written [[model.task]] "
                             f"with name = ..., got {tasks!r:.60}")
        for j, t in enumerate(tasks, start=1):
            tname = t.get("name")
            twhere = f"{where} task #{j}" + (f" ({tname!r})" if isinstance(tname, str) else "")
            if tname is None or (isinstance(tname, str) and not tname.strip()):
                raise InputError(f"{src}: {twhere}: missing name")
            if not isinstance(tname, str):
                raise InputError(f"{src}: {twhere}: name must be a string, got {tname!r}")
            _check_toml_keys(src, twhere, t, task_keys)
            rwhere = twhere if "task" in m else where
            r = {k: v for k, v in m.items() if k not in ("task", "name")}
            r.update({k: v for k, v in t.items() if k != "name"})
            for k in ("family", "precision", "base", "equivalent", "precisions"):
                if k in r and not isinstance(r[k], str):
                    raise InputError(f"{src}: {rwhere}: {k} must be a string, got {r[k]!r}")
            for k in (*MODEL_KEYS[1:3], *MODEL_KEYS[4:], *TASK_KEYS, "adapter_mb"):
                if k in r and (isinstance(r[k], bool) or not isinstance(r[k], (int, float))):
                    raise InputError(f"{src}: {rwhere}: {k} must be a number, got {r[k]!r}")
            r["model"], r["task"] = name, tname
            r["_where"] = rwhere
            rows.append(r)
    return rows


def _check_toml_keys(src: str, where: str, table: dict, allowed: set) -> None:
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise InputError(f"{src}: {where}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: "
                         f"{', '.join(sorted(allowed))})")


_TEMPLATE_CSV = """\
model,family,task,params_m,gflops,k_few,zero_shot,one_shot,few_shot,precision,memory_gb,context_window
My-LLM-7B,LFM,translation,7000,14,32,20.5,27.0,31.2,fp16,,
My-LLM-7B,LFM,summarization,7000,14,32,30.1,35.4,38.0,fp16,,
My-ViT-B,VFM,image_classification,86,17.6,,81.2,,,fp16,,
"""

_TEMPLATE_TOML = """\
# A pfmbench catalog (docs/catalogs.md). One [[model]] table per cacheable model, one [[model.task]] per task.
# Units: params_m millions of parameters; gflops GFLOP per unit of work (per token for LFMs, per input
# otherwise); accuracies in percent points (0-100); memory_gb GB (10^9 bytes); k_few and context_window examples.

[[model]]
name = "My-LLM-7B"          # what a trace's `model` column names (matched case-insensitively)
family = "LFM"              # LFM | VFM | MFM
params_m = 7000             # > 0, at most 1e8
gflops = 14
precision = "fp16"          # optional: fp32 | fp16 | bf16 | int8 | int4 (default: the scenario's)
# memory_gb = 16.8          # optional: runtime GPU memory; default params x bytes/param x (1 + runtime_overhead)
# context_window = 32       # optional: most examples in context; default for LFMs: the largest k_few

[[model.task]]
name = "translation"
zero_shot = 20.5            # required
one_shot = 27.0             # optional, with few_shot and k_few: the in-context learning curve a(K)
few_shot = 31.2
k_few = 32

[[model.task]]
name = "summarization"
zero_shot = 30.1
one_shot = 35.4
few_shot = 38.0
k_few = 32

[[model]]
name = "My-ViT-B"
family = "VFM"
params_m = 86
gflops = 17.6

[[model.task]]
name = "image_classification"
zero_shot = 81.2            # no in-context learning: a flat curve
"""


def catalog_template(form: str = "csv") -> str:
    """A small catalog in CSV or TOML form, with every field: a starting point (it loads as it is)."""
    if form not in ("csv", "toml"):
        raise InputError(f"template form must be csv or toml, got {form!r}")
    return _TEMPLATE_TOML if form == "toml" else _TEMPLATE_CSV


def load_catalog(path: str | Path | None = None, *, runtime_overhead: float = DEFAULT_RUNTIME_OVERHEAD,
                 precision: str = DEFAULT_PRECISION) -> Catalog:
    """Table I (path None or 'table1') or a user catalog (.csv or .toml)."""
    if precision not in BYTES_PER_PARAM:
        raise InputError(f"precision must be one of {', '.join(BYTES_PER_PARAM)}, got {precision!r}")
    if path is None or str(path) == "table1":
        text = resources.files("pfmbench").joinpath("data/table1.csv").read_text(encoding="utf-8")
        rows = [dict(r, _where=f"line {n}") for n, r in enumerate(csv.DictReader(text.splitlines()), start=2)]
        return _build(rows, "table1", runtime_overhead, precision)
    p = Path(path)
    require_file(p, "catalog")
    rows = _read_toml(p, str(p)) if p.suffix.lower() == ".toml" else _read_csv(p, str(p))
    warnings = []
    if rows and "_unknown" in rows[-1]:
        warnings.append(f"{p}: ignored unknown column(s) {', '.join(rows.pop()['_unknown'])}")
    return _build(rows, str(p), runtime_overhead, precision, warnings)
