"""Models and tasks (MODEL.md §1), Table I, user catalogs, and the accuracy fit (MODEL.md §2).

A *model* is what the edge caches (it has a size); a *pair* is a (model, task) that a request
names and that carries its own accuracy curve and examples in context.
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from .errors import InputError

FAMILIES = ("LFM", "VFM", "MFM")
BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
DEFAULT_PRECISION = "fp16"
DEFAULT_RUNTIME_OVERHEAD = 0.2  # activations, workspace, KV cache (MODEL.md §1)

# Curve kinds, shared with the engines as small integers.
CURVE_FLAT, CURVE_LOG, CURVE_PIECEWISE = 0, 1, 2
CURVE_NAMES = {CURVE_FLAT: "flat", CURVE_LOG: "log", CURVE_PIECEWISE: "piecewise"}

TABLE1_SOURCE = (
    "Table I of Xu et al., 'Sparks of GPTs in Edge Intelligence for Metaverse: Caching and "
    "Inference for Mobile AIGC Services' (2023)"
)


def accuracy_at(k, zero_shot, one_shot, few_shot, k_few, c, alpha, kind):
    """Accuracy (percent) with k examples in context. Pure and scalar: both engines call it.

    kind CURVE_LOG: a(K) = zero + c*log2(1 + K^alpha) for K >= 1, linear in K below 1.
    kind CURVE_PIECEWISE: piecewise linear in log2(1+K) through K = 0, 1, k_few; flat after.
    kind CURVE_FLAT: no in-context learning.
    """
    if kind == CURVE_FLAT or k <= 0.0:
        return zero_shot
    if kind == CURVE_LOG:
        if k < 1.0:
            return zero_shot + k * c
        return zero_shot + c * math.log2(1.0 + k**alpha)
    x = math.log2(1.0 + k)
    if x <= 1.0:
        return zero_shot + (one_shot - zero_shot) * x
    x_few = math.log2(1.0 + k_few)
    if k_few <= 1.0 or x >= x_few:
        return few_shot
    return one_shot + (few_shot - one_shot) * (x - 1.0) / (x_few - 1.0)


@dataclass(frozen=True)
class Task:
    """One task of a model, with Table I's accuracies and the fitted curve a(K)."""

    name: str
    zero_shot: float
    one_shot: float | None = None
    few_shot: float | None = None
    k_few: float | None = None
    kind: int = field(init=False, default=CURVE_FLAT)
    c: float = field(init=False, default=0.0)
    alpha: float = field(init=False, default=0.0)

    def __post_init__(self):
        kind, c, alpha = CURVE_FLAT, 0.0, 0.0
        if self.one_shot is not None:
            c = self.one_shot - self.zero_shot
            kind = CURVE_PIECEWISE
            # A gain above 60*c from one example to k_few is not the paper's curve shape (and 2^x would
            # overflow): use the piecewise fallback there too.
            if (self.few_shot is not None and self.k_few is not None and self.k_few > 1 and c > 0
                    and self.few_shot - self.zero_shot <= 60.0 * c):
                arg = 2.0 ** ((self.few_shot - self.zero_shot) / c) - 1.0
                if arg > 0:
                    kind, alpha = CURVE_LOG, math.log(arg) / math.log(self.k_few)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "alpha", alpha)

    @property
    def curve_params(self) -> tuple:
        """Arguments after k for accuracy_at()."""
        one = self.one_shot if self.one_shot is not None else self.zero_shot
        few = self.few_shot if self.few_shot is not None else one
        k_few = self.k_few if self.k_few is not None else 1.0
        return (self.zero_shot, one, few, float(k_few), self.c, self.alpha, self.kind)

    def accuracy(self, k: float) -> float:
        return accuracy_at(float(k), *self.curve_params)

    @property
    def a_ref(self) -> float:
        """Best accuracy on this curve: what the cloud serves at."""
        return max(v for v in (self.zero_shot, self.one_shot, self.few_shot) if v is not None)

    @property
    def curve_label(self) -> str:
        if self.kind == CURVE_LOG:
            return f"log c={self.c:.2f} α={self.alpha:.4f}"
        if self.kind == CURVE_PIECEWISE:
            return "piecewise (no log fit)"
        return "flat"


def best_accuracy(task: Task, window: float) -> float:
    """a_ref: the best accuracy on the task's curve over 0..window examples, what the cloud (full context)
    serves at. On the log curve a(K) is monotone for K >= 1, so the best is at 0, 1, k_few or the window
    (above few-shot where the window exceeds k_few and the curve still rises)."""
    return max(task.a_ref, task.accuracy(window)) if window >= 1.0 else task.a_ref


@dataclass(frozen=True)
class Model:
    """A cacheable model. memory_gb is runtime GPU memory (weights plus runtime overhead)."""

    name: str
    family: str
    params_m: float
    gflops: float
    precision: str
    memory_gb: float
    context_window: float
    tasks: tuple[Task, ...]
    base: str = ""  # the model's name in the source table when this is one row of it (UniFormer) or a copy

    @property
    def memory_bytes(self) -> int:
        # Memory is accounted in whole bytes so that fits/evict decisions are exact.
        return round(self.memory_gb * 1e9)


def runtime_memory_gb(params_m: float, precision: str, overhead: float = DEFAULT_RUNTIME_OVERHEAD) -> float:
    return params_m * 1e6 * BYTES_PER_PARAM[precision] * (1.0 + overhead) / 1e9


@dataclass(frozen=True)
class Catalog:
    models: tuple[Model, ...]
    source: str = "table1"

    def __post_init__(self):
        seen = set()
        for m in self.models:
            if m.name.lower() in seen:
                raise InputError(f"{self.source}: model {m.name!r} is defined twice")
            seen.add(m.name.lower())

    # -- pairs: the (model, task) units that requests name ---------------------------------
    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [(i, j) for i, m in enumerate(self.models) for j in range(len(m.tasks))]

    def pair_names(self) -> list[tuple[str, str]]:
        return [(self.models[i].name, self.models[i].tasks[j].name) for i, j in self.pairs]

    def lookup(self) -> dict[tuple[str, str | None], int]:
        """Keys (model lower, task lower or None) -> pair index. None means the model's first task.

        A model split per task (UniFormer rows, per-task copies) is also found by its base name and task.
        """
        out: dict[tuple[str, str | None], int] = {}
        for p, (i, j) in enumerate(self.pairs):
            m = self.models[i]
            t = m.tasks[j].name.lower()
            out.setdefault((m.name.lower(), t), p)
            if j == 0:
                out.setdefault((m.name.lower(), None), p)
            if m.base:
                out.setdefault((m.base.lower(), t), p)
                out.setdefault((m.base.lower(), None), p)
        return out

    def find(self, name: str) -> Model:
        for m in self.models:
            if m.name.lower() == name.lower():
                return m
        raise InputError(f"{self.source}: unknown model {name!r}")

    def with_task_copies(self, families=("LFM",)) -> Catalog:
        """Each multi-task model of these families becomes one fine-tuned copy per task (MODEL.md §7)."""
        out = []
        for m in self.models:
            if m.family in families and len(m.tasks) > 1:
                out += [replace(m, name=f"{m.name}/{t.name}", tasks=(t,), base=m.base or m.name) for t in m.tasks]
            else:
                out.append(m)
        return Catalog(tuple(out), self.source)


# -- reading catalogs ----------------------------------------------------------------------
_REQUIRED = ("model", "family", "task", "params_m", "gflops", "zero_shot")


def _num(src, where, key, value, *, required=False, positive=False):
    if value is None or (isinstance(value, str) and value.strip() in ("", "-")):
        if required:
            raise InputError(f"{src}: {where}: missing {key}")
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{src}: {where}: {key} is not a number: {value!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise InputError(f"{src}: {where}: {key} must be a finite {'positive' if positive else 'non-negative'} number, got {value!r}")
    return v


def _build(rows: list[dict], src: str, overhead: float, precision: str) -> Catalog:
    """rows: one dict per (model, task) with the table1.csv columns; `where` names the row for errors."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        where = r["_where"]
        for k in ("model", "family", "task"):
            if not str(r.get(k) or "").strip():
                raise InputError(f"{src}: {where}: missing {k}")
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
        groups.setdefault(str(r["model"]).strip(), []).append(r)

    models = []
    for name, rs in groups.items():
        shared = {(r["family"], r["params_m"], r["gflops"], r["precision"], r["memory_gb"]) for r in rs}
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
                                float(window), tuple(tasks), base))
    for m in models:
        if m.context_window > 1e6:
            raise InputError(f"{src}: model {m.name!r}: context_window above 1e6 examples is not supported")
    if not models:
        raise InputError(f"{src}: the catalog has no models")
    return Catalog(tuple(models), src)


def _read_csv(path: Path, src: str) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                raise InputError(f"{src}: missing column(s) {', '.join(missing)}")
            rows = []
            for n, r in enumerate(reader, start=2):
                r = {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in r.items() if k}
                r["_where"] = f"line {n}"
                rows.append(r)
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{src}: cannot read catalog: {e}") from None


def _read_toml(path: Path, src: str) -> list[dict]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"{src}: cannot read catalog: {e}") from None
    rows = []
    for n, m in enumerate(doc.get("model", []), start=1):
        if not isinstance(m, dict):
            raise InputError(f"{src}: [[model]] #{n} is not a table")
        tasks = m.get("task") or [{"name": "default"}]
        for t in tasks:
            r = {k: v for k, v in m.items() if k not in ("task", "name")}
            r.update({k: v for k, v in t.items() if k != "name"})
            r["model"], r["task"] = m.get("name"), t.get("name")
            r["_where"] = f"[[model]] #{n} ({m.get('name')!r})"
            rows.append(r)
    return rows


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
    if not p.is_file():
        raise InputError(f"{p}: catalog file not found")
    rows = _read_toml(p, str(p)) if p.suffix.lower() == ".toml" else _read_csv(p, str(p))
    return _build(rows, str(p), runtime_overhead, precision)
