"""`active` without its preloads: the same forecast and evictions, nothing loaded in idle time.

A drop-in (reference engine) that shows what preloading alone changes (docs/model.md, "Preloading"):
    pfmbench replay TRACE --policy active,policies/active_passive.py
"""

from pfmbench.policies.active import Active


class ActivePassive(Active):
    name = "active-passive"
    preloads = False
