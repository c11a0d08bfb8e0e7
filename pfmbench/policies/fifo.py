from . import Policy, register


@register
class FIFO(Policy):
    """First in, first out: evict the model loaded earliest; hits do not change the order."""

    name, kernel = "fifo", 3

    def key(self, entry, now):
        return entry.loaded_at
