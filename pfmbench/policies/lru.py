from . import Policy, register


@register
class LRU(Policy):
    """Least recently used: evict the model whose last request is oldest."""

    name, kernel = "lru", 2

    def key(self, entry, now):
        return entry.last_use
