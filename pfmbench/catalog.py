"""Models and tasks (MODEL.md §1), Table I, user catalogs, and the accuracy fit (MODEL.md §2).

A *model* is what the edge caches (it has a size); a *pair* is a (model, task) that a request
names and that carries its own accuracy curve and examples in context.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from .errors import InputError
from .fileio import read_toml, require_file

FAMILIES = ("LFM", "VFM", "MFM")
BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
DEFAULT_PRECISION = "fp16"
# Accuracy lost by post-training weight quantization, in percent points, per family (MODEL.md §9.2; sources and
# the figures taken in docs/model.md, "Precision"): a model served at int8 or int4 answers a(K) minus this.
# fp32, fp16 and bf16 lose nothing (Table I's accuracies are the full-precision models').
PRECISION_PENALTY = {
    "LFM": {"int8": 0.1, "int4": 1.0},  # LLM.int8() / SmoothQuant (int8); GPTQ, AWQ (4-bit weights)
    "VFM": {"int8": 0.3, "int4": 4.0},  # PTQ4ViT (W8A8); RepQ-ViT (W4A4) and PTQ4ViT (W6A6) bracket int4
    "MFM": {"int8": 0.3, "int4": 4.0},  # CLIP's image tower is a ViT: as VFM
}


# Partial caching (MODEL.md §9.3): a model served with a fraction f of its layers resident (early exit after
# them) answers a(K) x f^gamma (floor 0: Table I defines no chance level). Per family; sources and the figures
# taken in docs/model.md, "Partial caching".
PARTIAL_GAMMA = {"LFM": 0.5, "VFM": 0.3, "MFM": 0.3}


def accuracy_penalty(family: str, precision: str) -> float:
    """Percent points of accuracy lost at `precision` (PRECISION_PENALTY; 0 for fp32, fp16, bf16)."""
    return PRECISION_PENALTY.get(family, {}).get(precision, 0.0)
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
    # A fine-tuned variant served as an adapter on a shared base (MODEL.md §9.5; docs/catalogs.md): the base
    # model's name ("" for a full model) and the adapter's size in MB (10^6 bytes) of GPU memory.
    variant_of: str = ""
    adapter_mb: float = 0.0
    # Equivalent models (MODEL.md §9.1): a group name ("" for none); a cached model of the same group that has a
    # request's task may serve it in its place (`[serving] substitute`). Table I's groups are built in.
    equivalent: str = ""
    # The precisions it may load at under serving.precision_mode = "ladder" (MODEL.md §9.2): () for the scenario's
    # catalog.ladder; else its own list (the lower ones than `precision` are its rungs).
    precisions: tuple = ()

    @property
    def memory_bytes(self) -> int:
        # Memory is accounted in whole bytes so that fits/evict decisions are exact.
        return round(self.memory_gb * 1e9)

    @property
    def accuracy_penalty(self) -> float:
        """Percent points lost at its precision (MODEL.md §9.2)."""
        return accuracy_penalty(self.family, self.precision)

    @property
    def adapter_bytes(self) -> int:
        return round(self.adapter_mb * 1e6)


def runtime_memory_gb(params_m: float, precision: str, overhead: float = DEFAULT_RUNTIME_OVERHEAD) -> float:
    return params_m * 1e6 * BYTES_PER_PARAM[precision] * (1.0 + overhead) / 1e9


@dataclass(frozen=True)
class Catalog:
    models: tuple[Model, ...]
    source: str = "table1"
    warnings: tuple[str, ...] = ()  # suspicious but accepted values (replay reports them as notes)

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

    def with_task_copies(self, families=("LFM",), adapters: bool = False, rank: int = 16) -> Catalog:
        """Each multi-task model of these families becomes one fine-tuned copy per task (MODEL.md §7). With
        `adapters` (MODEL.md §9.5) each copy is a variant of the model, which stays in the catalog as their
        base with no task of its own, and carries a LoRA adapter of rank `rank` (default_adapter_mb)."""
        out = []
        for m in self.models:
            if m.family in families and len(m.tasks) > 1:
                if adapters:
                    size = default_adapter_mb(m, rank)
                    out.append(replace(m, tasks=()))  # the shared base: what the variants' requests load once
                    out += [replace(m, name=f"{m.name}/{t.name}", tasks=(t,), base=m.base or m.name,
                                    variant_of=m.name, adapter_mb=size) for t in m.tasks]
                else:
                    out += [replace(m, name=f"{m.name}/{t.name}", tasks=(t,), base=m.base or m.name)
                            for t in m.tasks]
            else:
                out.append(m)
        return Catalog(tuple(out), self.source, self.warnings)

    def as_full_copies(self) -> Catalog:
        """`variants = "full"`: every variant a full copy of its own size (its `base` and adapter unused)."""
        if not any(m.variant_of for m in self.models):
            return self
        return Catalog(tuple(replace(m, variant_of="", adapter_mb=0.0) for m in self.models), self.source,
                       self.warnings)

    def with_default_adapters(self, rank: int = 16) -> Catalog:
        """Variants whose catalog row gives no `adapter_mb` get the default LoRA adapter of their base."""
        if not any(m.variant_of and not m.adapter_mb for m in self.models):
            return self
        by = {m.name.lower(): m for m in self.models}
        return Catalog(tuple(replace(m, adapter_mb=default_adapter_mb(by[m.variant_of.lower()], rank))
                             if m.variant_of and not m.adapter_mb else m for m in self.models),
                       self.source, self.warnings)


# -- adapters (MODEL.md §9.5) ---------------------------------------------------------------------------
# Width-to-depth ratio d_model / n_layers per family, from published architectures: GPT-3 (Brown et al. 2020,
# Table 2.1: 13B d=5140, 40 layers; 175B d=12288, 96 layers: 128 both), and ViT-L (Dosovitskiy et al. 2021,
# Table 1: d=1024, 24 layers), which is also CLIP ViT-L/14's image tower (Radford et al. 2021).
ASPECT = {"LFM": 128.0, "VFM": 1024.0 / 24.0, "MFM": 1024.0 / 24.0}
DEFAULT_ADAPTER_RANK = 16  # LoRA rank (Hu et al. 2022 use 1-64; 16 is a common default, e.g. in S-LoRA's tests)


def transformer_shape(params_m: float, family: str) -> tuple[float, float]:
    """(d_model, layers) of a transformer of this size: params ≈ 12·L·d² (attention 4d², MLP 8d² per layer)
    with d = ASPECT[family]·L."""
    a = ASPECT.get(family, ASPECT["LFM"])
    layers = (params_m * 1e6 / (12.0 * a * a)) ** (1.0 / 3.0)
    return a * layers, layers


def default_adapter_mb(model: Model, rank: int = DEFAULT_ADAPTER_RANK) -> float:
    """A LoRA adapter of rank r on the four attention projections (q, k, v, o) of every layer: each d×d
    projection gets A (d×r) and B (r×d), 8·r·d·L parameters, stored at the base's precision. GPT3-13B
    (fp16, r=16): 53.5 MB (its published shape, d=5140 and 40 layers, gives 52.6 MB)."""
    d, layers = transformer_shape(model.params_m, model.family)
    return 8.0 * rank * d * layers * BYTES_PER_PARAM[model.precision] / 1e6


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
