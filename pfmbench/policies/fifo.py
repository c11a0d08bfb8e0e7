"""FIFO: evict the model loaded earliest. LRU's linked list in load order, without LRU's move on a hit."""

from . import Policy, register
from .lru import State, new_state, on_evict, on_insert, victim  # noqa: F401  (the fast hooks; no on_hit)


@register
class FIFO(Policy):
    """First in, first out: evict the model loaded earliest; hits do not change the order."""

    name = "fifo"

    def key(self, entry, now):
        return entry.load_order  # loaded_at; a base before the variant loaded with it (MODEL.md §9.5)
