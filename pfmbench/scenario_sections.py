"""The sections of a scenario (MODEL.md §3, §9): the edge server and its presets, the cloud, the context model,
the cost weights, serving rules, the catalog, the trace, the run, the user's device, and one edge of several.
Each is a dataclass of typed fields with documented defaults; pfmbench.scenario assembles them (and re-exports
them) and owns their keys, bounds and files.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    # Fixed start cost of loading a LoRA adapter onto a resident base (MODEL.md §9.5; `variants = "adapter"`):
    # ServerlessLLM (Fu et al., OSDI '24) measures a LoRA adapter load at about 0.08 s.
    adapter_overhead_s: float = 0.08
    power_w: float = 300.0  # A100 PCIe board power (MODEL.md)
    executors: int = 1  # requests served at once
    # Radio access, device -> edge (MODEL.md §3): 5G NR, 3GPP TR 38.913's 4 ms user-plane target plus 1 ms of
    # scheduling, and a mid-band uplink; an LLM prompt then takes about 0.0053 s, as Table II implies (0.0055).
    radio_rtt_s: float = 0.005
    radio_uplink_mbps: float = 100.0
    # Batching (MODEL.md §9.2; docs/model.md, "Batching"): off by default (compute-only W / R_edge). On: an executor
    # serves up to max_batch queued requests of one model together, timed by the roofline over mem_gbps, and a
    # model's memory is its weights + max_batch x the per-request runtime memory (0: derived per model).
    batching: bool = False
    max_batch: int = 8
    mem_gbps: float = 1935.0  # GPU memory bandwidth, GB/s: NVIDIA A100 80GB PCIe datasheet
    runtime_mb_per_request: float = 0.0
    # Where the weights come from (MODEL.md §9.4; docs/model.md, "Weight tiers"): the tier a checkpoint sits in when
    # host DRAM does not hold it. dram (default): every load at load_gbps, which is the DRAM tier (results stand);
    # ssd or registry: a load reads at ssd_gbps / registry_gbps unless the model's checkpoint is in the host's
    # DRAM tier of dram_gb (LRU), filled by loads.
    checkpoints_in: str = "dram"
    dram_gb: float = 0.0
    ssd_gbps: float = 3.5  # a PCIe 3.0 x4 NVMe SSD's sequential read (Samsung 970 EVO Plus datasheet: 3,500 MB/s)
    registry_gbps: float = 1.25  # a remote model registry over a 10 Gb/s link (pfmbench choice; docs/model.md)


# Edge GPUs: memory, peak dense FP16 tensor TFLOPS and board power from NVIDIA's datasheets (dense = half
# the "with sparsity" figure); host-to-GPU load rate: MODEL.md's measured PCIe 4.0 x16 12.9 GB/s, and
# twice that for PCIe 5.0 (pfmbench assumption). Utilization, load overhead and executors are not set.
EDGE_PRESETS = {
    # mem_gbps: the datasheets' memory bandwidth (A100 80GB PCIe 1,935 GB/s; H100 PCIe 2,000; L40S 864; L4 300;
    # RTX 4090 1,008), for the batching roofline (MODEL.md §9.2).
    "a100-80": {"gpu_memory_gb": 80.0, "tflops": 312.0, "power_w": 300.0, "load_gbps": 12.9,
                "mem_gbps": 1935.0},  # A100 80GB PCIe
    "h100-80": {"gpu_memory_gb": 80.0, "tflops": 756.0, "power_w": 350.0, "load_gbps": 25.8,
                "mem_gbps": 2000.0},  # H100 PCIe
    "l40s": {"gpu_memory_gb": 48.0, "tflops": 362.0, "power_w": 350.0, "load_gbps": 12.9, "mem_gbps": 864.0},
    "l4": {"gpu_memory_gb": 24.0, "tflops": 121.0, "power_w": 72.0, "load_gbps": 12.9,
           "mem_gbps": 300.0},  # L4: an edge card
    "rtx4090": {"gpu_memory_gb": 24.0, "tflops": 165.2, "power_w": 450.0, "load_gbps": 12.9,
                "mem_gbps": 1008.0},  # FP32 accumulate
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
    price_per_request: float = 0.85  # $ per request; calibrated to break even with the edge, docs/model.md
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
    # per kJ of energy spent on users' devices ([device], MODEL.md §9.4): the device's battery, as the switching
    # cost charges the edge's load energy in kJ; `--set w_device_energy=...` says it too
    device_energy: float = 1.0


@dataclass
class Device:
    """The user's device (MODEL.md §9.4, the paper's §III-C-1 mobile caching and inference): a request whose model
    fits it may run there, zero-shot, with no radio latency, when that costs least now (docs/model.md, "Devices").
    memory_gb = 0 (the default): no device, every result as before. The rest is a flagship phone's (docs/model.md)."""

    memory_gb: float = 0.0  # GB a model may take on the device (0: no device); iPhone 15 Pro / A17 Pro: 8 GB
    tflops: float = 17.0  # FP16: A17 Pro Neural Engine, 35 TOPS as Apple counts (INT8), half that in FP16
    utilization: float = 0.2  # fraction of peak reached (pfmbench assumption: mobile runtimes reach less than a GPU)
    power_w: float = 5.0  # W while it computes: a phone's sustained SoC power (pfmbench assumption, docs/model.md)


VARIANTS = ("full", "adapter")  # fine-tuned variants: full copies, or adapters on a shared base (MODEL.md §9.5)
ADMISSIONS = ("default", "always", "outrank", "cost")  # default: each policy's own (MODEL.md §4)
DISPATCHES = ("edge", "cheapest")
SUBSTITUTES = ("never", "before-cloud", "before-load")  # equivalent models (MODEL.md §9.1)
PRECISION_MODES = ("fixed", "ladder")  # MODEL.md §9.2
CACHINGS = ("binary", "partial")  # MODEL.md §9.3
CHECKPOINT_TIERS = ("dram", "ssd", "registry")  # where a checkpoint sits when DRAM does not hold it (MODEL.md §9.4)


@dataclass
class Serving:
    """How the edge decides between loading, serving and offloading (MODEL.md §4)."""

    admission: str = "default"  # on a miss: load always, only if it outranks every model it displaces, or if it pays
    dispatch: str = "edge"  # edge: serve at the edge whatever its queue; cheapest: the cheaper of edge and cloud
    cost_horizon_s: float = 600.0  # `cost` admission: a load must pay back within this (the default half-life);
    #                                 also `active`'s forecast half-life (docs/model.md, "Preloading")
    # Equivalent models (MODEL.md §9.1): a request may be served by a cached model of its model's `equivalent`
    # group that has its task: never (default), before-cloud (instead of offloading, when that costs less now),
    # before-load (also instead of loading, when that costs less now).
    substitute: str = "never"
    # Precision (MODEL.md §9.2): fixed (default: every model at its catalog precision) or ladder (a miss that would
    # evict may load the model at a lower precision of catalog.ladder; upgraded when memory frees).
    precision_mode: str = "fixed"
    # Partial caching (MODEL.md §9.3): binary (default: whole models only) or partial (a model may be resident as a
    # prefix of s/partial_steps of its layers, served by early exit after them; docs/model.md, "Partial caching").
    caching: str = "binary"
    partial_steps: int = 4


@dataclass
class CatalogSpec:
    path: str = "table1"  # built-in Table I, or a .csv/.toml file
    precision: str = "fp16"  # default precision where a row gives none (MODEL.md)
    runtime_overhead: float = 0.2  # activations, workspace, KV cache (MODEL.md)
    copies_per_task: bool = False  # each LFM task runs its own fine-tuned copy (the paper's fine-tuning section)
    # Fine-tuned variants (per-task copies, catalog rows with a `base`; MODEL.md §9.5): "full" copies of their own
    # size, or "adapter"s on one shared base (LoRA of rank `adapter_rank` where a row gives no adapter_mb).
    variants: str = "full"
    adapter_rank: int = 16  # LoRA rank of the default adapter size (docs/catalogs.md, "Variants")
    # The lower precisions a model may load at under `serving.precision_mode = "ladder"` (those with fewer bytes
    # per parameter than its own), comma-separated (MODEL.md §9.2; docs/model.md, "Precision").
    ladder: str = "int8,int4"


@dataclass
class TraceSpec:
    """The synthetic trace of a scenario, used when `replay` is given no trace."""

    requests: int = 20000
    rate: float = 0.2  # requests per second (Poisson); see docs/model.md for the calibration
    alpha: float = 0.8  # Zipf popularity over the catalog's (model, task) pairs
    seed: int = 1


@dataclass
class Run:
    """What a replay measures (MODEL.md §4, "Warm-up"): the warm-up is replayed like every other request
    (caches fill, counts and contexts grow, queues form) but no metric counts it."""

    warmup_requests: int = 0  # the first N requests are warm-up
    warmup_s: float = 0.0  # and so are the requests before the first request's time + T seconds


COOPERATIONS = ("none", "forward")  # MODEL.md §9.4 (pfmbench/edges.py)
MAX_EDGES = 1024
TOTAL_EDGE = "total"  # the `edge` of the rows that add up every edge (pfmbench/edges.py): no edge's name


@dataclass(frozen=True)
class EdgeSite:
    """One edge server of a multi-edge scenario (`[[edges]]`, MODEL.md §9.4): its name and the [edge] keys
    it sets, applied over the scenario's [edge] (a preset first, then the other keys)."""

    name: str
    keys: tuple = ()  # ((key, value), ...), values already of the key's type


MAX_SEED = 2**64 - 1
# (section, key) -> (lowest, highest) allowed, inclusive: finite, physically sensible, and small enough that
# every cost of a replay stays finite (docs/model.md). Keys not listed are strings or booleans.
BOUNDS = {
    ("edge", "gpu_memory_gb"): (0.0, 1e6),
    ("edge", "tflops"): (1e-3, 1e6),
    ("edge", "utilization"): (1e-6, 1.0),
    ("edge", "load_gbps"): (1e-6, 1e6),
    ("edge", "load_overhead_s"): (0.0, 1e6),
    ("edge", "power_w"): (0.0, 1e6),
    ("edge", "executors"): (1, 4096),
    ("edge", "radio_rtt_s"): (0.0, 1e6),
    ("edge", "radio_uplink_mbps"): (1e-6, 1e9),
    ("cloud", "rtt_s"): (0.0, 1e6),
    ("cloud", "uplink_mbps"): (1e-6, 1e9),
    ("cloud", "tflops"): (1e-3, 1e9),
    ("cloud", "utilization"): (1e-6, 1.0),
    ("cloud", "price_per_request"): (0.0, 1e9),
    ("cloud", "price_per_tflop"): (0.0, 1e9),
    ("context", "half_life_s"): (1e-6, 1e12),
    ("context", "linear_rate"): (0.0, 1e9),
    ("context", "relevance"): (0.0, 1.0),
    ("context", "example_units"): (0.0, 1e6),
    ("weights", "switch"): (0.0, 1e9),
    ("weights", "accuracy"): (0.0, 1e9),
    ("weights", "latency"): (0.0, 1e9),
    ("weights", "cloud"): (0.0, 1e9),
    ("weights", "cloud_latency"): (0.0, 1e9),
    ("serving", "cost_horizon_s"): (1e-6, 1e12),
    ("weights", "wear_per_load"): (0.0, 1e9),
    ("catalog", "runtime_overhead"): (0.0, 100.0),
    ("catalog", "adapter_rank"): (1, 65536),
    ("edge", "adapter_overhead_s"): (0.0, 1e6),
    ("edge", "max_batch"): (1, 4096),
    ("serving", "partial_steps"): (1, 64),
    ("edge", "mem_gbps"): (1e-3, 1e6),
    ("edge", "runtime_mb_per_request"): (0.0, 1e9),
    ("edge", "dram_gb"): (0.0, 1e9),
    ("edge", "ssd_gbps"): (1e-6, 1e6),
    ("edge", "registry_gbps"): (1e-6, 1e6),
    ("trace", "requests"): (1, 10**8),
    ("trace", "rate"): (1e-9, 1e9),
    ("trace", "alpha"): (0.0, 100.0),
    ("trace", "seed"): (0, MAX_SEED),
    ("run", "warmup_requests"): (0, 2**62),
    ("run", "warmup_s"): (0.0, 1e15),
    ("device", "memory_gb"): (0.0, 1e6),
    ("device", "tflops"): (1e-3, 1e6),
    ("device", "utilization"): (1e-6, 1.0),
    ("device", "power_w"): (0.0, 1e6),
    ("weights", "device_energy"): (0.0, 1e9),
}
