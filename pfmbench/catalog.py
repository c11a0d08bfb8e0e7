"""Models and tasks (MODEL.md §1), Table I, user catalogs, and the accuracy fit (MODEL.md §2).

A *model* is what the edge caches (it has a size); a *pair* is a (model, task) that a request
names and that carries its own accuracy curve and examples in context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .errors import InputError

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


# Reading catalog files lives in catalog_files.py (it builds the classes above).
from .catalog_files import (  # noqa: F401  (re-exported)
    CSV_COLUMNS,
    LIMITS,
    MODEL_KEYS,
    TASK_KEYS,
    UNITS,
    VARIANT_KEYS,
    catalog_template,
    load_catalog,
)

