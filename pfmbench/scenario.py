"""Scenarios: the edge server, the cloud, the context model, cost weights and the catalog (MODEL.md §2–4).

Every value is a typed field with a documented default and its source. A scenario comes from the
built-in default, a TOML file (sections [edge], [cloud], [context], [weights], [serving], [catalog], [trace]),
and overrides by key name (`gpu_memory_gb=40`, `half_life_s=300`, or `cloud.tflops=...`).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from .catalog import BYTES_PER_PARAM, Catalog, load_catalog
from .errors import InputError

UTILITIES = ("exp", "linear", "none")


@dataclass
class Edge:
    preset: str = "a100-80"  # the GPU the values below start from (EDGE_PRESETS); later keys override it
    gpu_memory_gb: float = 80.0  # GB; MODEL.md default (one 80 GB data-centre GPU)
    tflops: float = 312.0  # peak dense FP16, NVIDIA A100 datasheet
    utilization: float = 0.4  # fraction of peak reached in serving (MODEL.md)
    load_gbps: float = 12.9  # host-to-GPU copy, measured PCIe 4.0 x16 (MODEL.md)
    load_overhead_s: float = 0.5  # fixed start cost of a load (MODEL.md)
    power_w: float = 300.0  # A100 PCIe board power (MODEL.md)
    executors: int = 1  # requests served at once
    # Radio access, device -> edge (MODEL.md §3): 5G NR, 3GPP TR 38.913's 4 ms user-plane target plus 1 ms of
    # scheduling, and a mid-band uplink; an LLM prompt then takes about 0.0053 s, as Table II implies (0.0055).
    radio_rtt_s: float = 0.005
    radio_uplink_mbps: float = 100.0


# Edge GPUs: memory, peak dense FP16 tensor TFLOPS and board power from NVIDIA's datasheets (dense = half
# the "with sparsity" figure); host-to-GPU load rate: MODEL.md's measured PCIe 4.0 x16 12.9 GB/s, and
# twice that for PCIe 5.0 (pfmbench assumption). Utilization, load overhead and executors are not set.
EDGE_PRESETS = {
    "a100-80": {"gpu_memory_gb": 80.0, "tflops": 312.0, "power_w": 300.0, "load_gbps": 12.9},  # A100 80GB PCIe
    "h100-80": {"gpu_memory_gb": 80.0, "tflops": 756.0, "power_w": 350.0, "load_gbps": 25.8},  # H100 PCIe
    "l40s": {"gpu_memory_gb": 48.0, "tflops": 362.0, "power_w": 350.0, "load_gbps": 12.9},  # L40S
    "l4": {"gpu_memory_gb": 24.0, "tflops": 121.0, "power_w": 72.0, "load_gbps": 12.9},  # L4: an edge card
    "rtx4090": {"gpu_memory_gb": 24.0, "tflops": 165.2, "power_w": 450.0, "load_gbps": 12.9},  # FP32 accumulate
}


def apply_preset(edge: Edge, name: str, where: str) -> None:
    key = str(name).lower()
    if key not in EDGE_PRESETS:
        raise InputError(f"{where}: unknown edge preset {name!r} (one of {', '.join(EDGE_PRESETS)})")
    edge.preset = key
    for k, v in EDGE_PRESETS[key].items():
        setattr(edge, k, v)


@dataclass
class Cloud:
    rtt_s: float = 0.1  # MODEL.md
    uplink_mbps: float = 100.0  # MODEL.md
    tflops: float = 2496.0  # an 8x A100 node: 8 * 312 TF dense FP16 (pfmbench choice)
    utilization: float = 0.4  # as the edge
    price_per_request: float = 1.4  # $ per request; calibrated to break even with the edge, docs/model.md
    price_per_tflop: float = 0.0  # $ per TFLOP processed in the cloud


@dataclass
class Context:
    utility: str = "exp"  # exp | linear | none (MODEL.md §2)
    half_life_s: float = 600.0  # exp utility half-life (MODEL.md)
    linear_rate: float = 0.002  # examples lost per second under `linear` (one example fades in 500 s)
    relevance: float = 0.0  # cross-task relevance rho in [0, 1] (MODEL.md)
    example_units: float = 32.0  # tokens per demonstration (MODEL.md)


@dataclass
class Weights:
    switch: float = 1.0
    accuracy: float = 1.0
    latency: float = 1.0
    cloud: float = 1.0
    cloud_latency: float = 0.0  # 0: the paper's sum, where the cloud's latency is reported but not costed
    wear_per_load: float = 0.0  # per-load wear constant added to switching cost (MODEL.md)


ADMISSIONS = ("default", "always", "outrank", "cost")  # default: each policy's own (MODEL.md §4)
DISPATCHES = ("edge", "cheapest")


@dataclass
class Serving:
    """How the edge decides between loading, serving and offloading (MODEL.md §4)."""

    admission: str = "default"  # on a miss: load always, only if it outranks the first victim, or if it pays
    dispatch: str = "edge"  # edge: serve at the edge whatever its queue; cheapest: the cheaper of edge and cloud
    cost_horizon_s: float = 600.0  # `cost` admission: a load must pay back within this (the default half-life)


@dataclass
class CatalogSpec:
    path: str = "table1"  # built-in Table I, or a .csv/.toml file
    precision: str = "fp16"  # default precision where a row gives none (MODEL.md)
    runtime_overhead: float = 0.2  # activations, workspace, KV cache (MODEL.md)
    copies_per_task: bool = False  # each LFM task runs its own fine-tuned copy (the paper's fine-tuning section)


@dataclass
class TraceSpec:
    """The synthetic trace of a scenario, used when `replay` is given no trace."""

    requests: int = 20000
    rate: float = 0.2  # requests per second (Poisson); see docs/model.md for the calibration
    alpha: float = 0.8  # Zipf popularity over the catalog's (model, task) pairs
    seed: int = 1


@dataclass
class Scenario:
    name: str = "default"
    edge: Edge = field(default_factory=Edge)
    cloud: Cloud = field(default_factory=Cloud)
    context: Context = field(default_factory=Context)
    weights: Weights = field(default_factory=Weights)
    serving: Serving = field(default_factory=Serving)
    catalog: CatalogSpec = field(default_factory=CatalogSpec)
    trace: TraceSpec = field(default_factory=TraceSpec)
    seed: int = 0  # seeds the `random` policy
    source: str = "built-in"

    SECTIONS = ("edge", "cloud", "context", "weights", "serving", "catalog", "trace")

    def validate(self) -> Scenario:
        e, c, x, w = self.edge, self.cloud, self.context, self.weights
        where = self.source

        def need(ok, key, what):
            if not ok:
                raise InputError(f"{where}: {key} must be {what}")

        for sect in (e, c, x, w):
            for f in fields(sect):
                v = getattr(sect, f.name)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    need(math.isfinite(v) and v >= 0, f.name, "a finite number >= 0")
        need(e.gpu_memory_gb >= 0, "gpu_memory_gb", ">= 0")
        need(e.tflops > 0 and e.utilization > 0 and c.tflops > 0 and c.utilization > 0, "tflops/utilization", "> 0")
        need(e.load_gbps > 0, "load_gbps", "> 0")
        need(c.uplink_mbps > 0, "uplink_mbps", "> 0")
        need(isinstance(e.executors, int) and e.executors >= 1, "executors", "an integer >= 1")
        need(x.utility in UTILITIES, "utility", f"one of {', '.join(UTILITIES)}")
        need(x.half_life_s > 0, "half_life_s", "> 0")
        need(e.radio_uplink_mbps > 0, "radio_uplink_mbps", "> 0")
        need(self.serving.admission in ADMISSIONS, "admission",
             f"one of {', '.join(ADMISSIONS)}, not {self.serving.admission!r}")
        need(self.serving.dispatch in DISPATCHES, "dispatch", f"one of {', '.join(DISPATCHES)}, not {self.serving.dispatch!r}")
        need(math.isfinite(self.serving.cost_horizon_s) and self.serving.cost_horizon_s > 0, "cost_horizon_s", "> 0")
        need(0 <= x.relevance <= 1, "relevance", "between 0 and 1")
        need(self.catalog.precision in BYTES_PER_PARAM, "precision", f"one of {', '.join(BYTES_PER_PARAM)}")
        need(self.trace.requests >= 1 and self.trace.rate > 0, "trace.requests/rate", "positive")
        return self

    # -- derived -------------------------------------------------------------------------------
    @property
    def edge_rate(self) -> float:
        """R_edge, GFLOP/s."""
        return self.edge.tflops * 1000.0 * self.edge.utilization

    @property
    def cloud_rate(self) -> float:
        """R_cloud, GFLOP/s."""
        return self.cloud.tflops * 1000.0 * self.cloud.utilization

    def load_catalog(self) -> Catalog:
        cat = load_catalog(self.catalog.path, runtime_overhead=self.catalog.runtime_overhead,
                           precision=self.catalog.precision)
        return cat.with_task_copies() if self.catalog.copies_per_task else cat

    def as_dict(self) -> dict:
        """Flat {section.key: value} of every setting, for results and `scenario show`."""
        out = {"name": self.name, "source": self.source, "seed": self.seed}
        for s in self.SECTIONS:
            for k, v in dataclasses.asdict(getattr(self, s)).items():
                out[f"{s}.{k}"] = v
        return out

    def to_toml(self) -> str:
        lines = [f'name = "{self.name}"', f"seed = {self.seed}"]
        for s in self.SECTIONS:
            lines.append(f"\n[{s}]")
            for k, v in dataclasses.asdict(getattr(self, s)).items():
                lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    # -- changing values ------------------------------------------------------------------------
    def with_overrides(self, **overrides) -> Scenario:
        """A copy with values set by key: `gpu_memory_gb`, `cloud.tflops` or `cloud_tflops`, `seed`."""
        sc = dataclasses.replace(self, **{s: dataclasses.replace(getattr(self, s)) for s in self.SECTIONS})
        index = _key_index()
        # A preset sets several edge values: apply it before any single value, whatever the order given.
        items = sorted(overrides.items(), key=lambda kv: index.get(kv[0], ("", ""))[1] != "preset")
        for key, value in items:
            if value is None:
                continue
            if key in ("seed", "name"):
                setattr(sc, key, value)
                continue
            if key not in index:
                raise InputError(f"unknown scenario key {key!r} (see `pfmbench scenario show`)")
            sect, name = index[key]
            _set(sc, sect, name, value, f"{key}")
        return sc.validate()


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def _key_index() -> dict[str, tuple[str, str]]:
    """Every key by `section.key` and `section_key`; bare `key` where it is unique across sections."""
    index, counts = {}, {}
    proto = Scenario()
    for s in Scenario.SECTIONS:
        for f in fields(getattr(proto, s)):
            index[f"{s}.{f.name}"] = index[f"{s}_{f.name}"] = (s, f.name)
            counts.setdefault(f.name, []).append(s)
    for name, sects in counts.items():
        if len(sects) == 1:
            index[name] = (sects[0], name)
    # MODEL.md's words for the edge where a bare name is shared with the cloud.
    index.setdefault("tflops", ("edge", "tflops"))
    index.setdefault("utilization", ("edge", "utilization"))
    return index


def _set(sc: Scenario, sect: str, name: str, value, where: str) -> None:
    obj = getattr(sc, sect)
    if (sect, name) == ("edge", "preset"):
        apply_preset(obj, value, sc.source if where.startswith("[") else where)
        return
    current = getattr(obj, name)
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = value.lower() in ("true", "1", "yes")
            value = bool(value)
        elif isinstance(current, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        elif isinstance(current, float):
            if isinstance(value, bool):
                raise TypeError
            value = float(value)
        else:
            value = str(value)
    except (TypeError, ValueError):
        raise InputError(f"{sc.source}: {where}: expected {type(current).__name__}, got {value!r}") from None
    setattr(obj, name, value)


def default_scenario() -> Scenario:
    """The built-in default scenario, calibrated as docs/model.md explains (MODEL.md §7).

    Table I at fp16 with one fine-tuned GPT-3 copy per task, on one 80 GB GPU: it holds two of the
    three GPT3-13B copies (30.8 GB each) beside the vision models, so the policies differ.
    """
    sc = Scenario(name="default")
    sc.catalog.copies_per_task = True
    return sc.validate()


SCENARIOS = {"default": default_scenario}


def load_scenario(path: str | Path | None = None, **overrides) -> Scenario:
    """A built-in scenario by name (None = 'default') or a TOML file, then overrides by key."""
    if path is None or str(path) in SCENARIOS:
        sc = SCENARIOS[str(path or "default")]()
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: scenario file not found (built-in scenarios: {', '.join(SCENARIOS)})")
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise InputError(f"{p}: cannot read scenario: {e}") from None
        sc = default_scenario()
        sc.source, sc.name = str(p), p.stem
        for key, value in doc.items():
            if key in Scenario.SECTIONS:
                if not isinstance(value, dict):
                    raise InputError(f"{p}: [{key}] must be a table")
                for k, v in sorted(value.items(), key=lambda kv: kv[0] != "preset"):  # a preset first
                    if k not in {f.name for f in fields(getattr(sc, key))}:
                        raise InputError(f"{p}: [{key}] has unknown key {k!r}")
                    _set(sc, key, k, v, f"[{key}] {k}")
            elif key in ("name", "seed"):
                _set_top(sc, key, value, p)
            else:
                raise InputError(f"{p}: unknown key or section {key!r}")
        if sc.catalog.path != "table1" and not Path(sc.catalog.path).is_absolute():
            # A catalog path in a scenario file is relative to that file.
            sc.catalog.path = str(p.parent / sc.catalog.path)
        sc.validate()
    return sc.with_overrides(**overrides) if overrides else sc


def _set_top(sc, key, value, p):
    if key == "seed" and not isinstance(value, int):
        raise InputError(f"{p}: seed must be an integer")
    setattr(sc, key, value if key == "seed" else str(value))
