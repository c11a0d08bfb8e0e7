"""pfmbench: trace-replay benchmark for caching and serving pretrained foundation models at the edge.

    import pfmbench
    r = pfmbench.replay("default", policy="lc", gpu_memory_gb=40)
    r.summary["system_cost"]
"""

from . import environment  # noqa: F401  (first: numba's cache folder is settled before numba is loaded)
from .api import ReplayResult, replay, replay_many
from .catalog import load_catalog
from .scenario import load_scenario
from .version import __version__


def synth(catalog=None, **kwargs):
    """A synthetic trace as a polars DataFrame; see pfmbench.trace.synth.synthesize for the arguments."""
    from .trace.synth import synthesize_df

    return synthesize_df(catalog if catalog is not None else load_catalog(), **kwargs)


__all__ = ["ReplayResult", "__version__", "load_catalog", "load_scenario", "replay", "replay_many", "synth"]
