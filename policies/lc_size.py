"""A drop-in policy: least context per GB ("lc-size").

The paper's LC evicts every model without in-context learning first, whatever its size, so freeing
30 GB for an LLM may evict many small vision models one by one (MODEL.md §7). This variant ranks
cached models by (examples in context + 1) per GB of GPU memory: big models with little context go
first, and a small model is kept unless it is also cold.

Use it by path:  pfmbench replay --policy policies/lc_size.py,lc
"""

from pfmbench.policies import Policy


class LeastContextPerGB(Policy):
    name = "lc-size"
    description = "evict the least (examples in context + 1) per GB; ties to least recently used"

    def key(self, entry, now):
        return ((entry.context(now) + 1.0) / max(entry.memory_gb, 1e-9), entry.last_use)
