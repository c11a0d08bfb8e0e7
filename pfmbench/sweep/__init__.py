"""Sweeps: replay every point of a grid (scenario settings x traces x seeds) under a list of policies.

A sweep is described by a TOML file (or by `pfmbench sweep --set-grid ...`)::

    scenario = "default"              # built-in name or scenario TOML (relative to this file)
    catalog = "my_models.csv"         # optional (relative to this file)
    policies = "all"                  # or ["lc", "lfu", "policies/lc_size.py"]
    seeds = [1, 2, 3]                 # optional
    traces = ["t.parquet", {synth = {requests = 500, rate = 1.0, alpha = 0.8}}]   # optional

    [set]                             # the same value at every point (any --set key)
    "trace.requests" = 2000

    [grid]                            # the cartesian product of these axes
    gpu_memory_gb = [16, 24, 40, 80]
    half_life_s = [60, 600]

    [[zip]]                           # keys varied together (equal-length lists): one more axis
    preset = ["l4", "a100-80"]
    tflops = [121, 312]

A point is one (trace, grid values, seed); it is replayed under every policy by `api.replay_many`, in
one process, so the trace is read once per point. Its rows get one column per grid key and a `run_id`
derived from the point's resolved values. Finished points are written as they complete, one small
Parquet part file each in a hidden folder beside the output (`.NAME.parts/`), and merged in point
order at the end, so the output does not depend on the executor or on which points were resumed.

A seed sets the scenario `seed` (the random policy) and the seed of a synthetic trace (an inline
`synth` spec without its own seed, or the scenario's own trace unless `trace.seed` is set explicitly).

The package by concern: spec.py reads a sweep, grid.py checks its size and expands it into points,
point.py replays one point and keeps its part file, executors.py runs points (inline, worker processes,
Ray), runner.py runs a whole sweep.
"""

from .executors import WorkerDied, start_ray, worker_pythonpath
from .grid import CONFIRM_POINTS, CONFIRM_REPLAYED, MAX_POINTS, check_size, expand, grid_size, size_estimate
from .point import PartStore, run_point
from .runner import SweepResult, run_sweep, sweep_axes, sweep_inputs
from .spec import (
    DELAY_ENV,
    RESERVED_COLUMNS,
    SWEEP_KEYS,
    SWEEP_METADATA_KEY,
    Point,
    SweepSpec,
    TraceRef,
    load_sweep_file,
    parse_grid_option,
    parse_value,
)

__all__ = ["CONFIRM_POINTS", "CONFIRM_REPLAYED", "DELAY_ENV", "MAX_POINTS", "RESERVED_COLUMNS", "SWEEP_KEYS",
           "SWEEP_METADATA_KEY", "PartStore", "Point", "SweepResult", "SweepSpec", "TraceRef", "WorkerDied",
           "check_size", "expand", "grid_size", "load_sweep_file", "parse_grid_option", "parse_value", "run_point",
           "run_sweep", "size_estimate", "start_ray", "sweep_axes", "sweep_inputs", "worker_pythonpath"]
