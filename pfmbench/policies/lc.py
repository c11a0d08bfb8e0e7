from . import Policy, register


@register
class LC(Policy):
    """Least context (the paper's LC): evict the model with the fewest examples in context, C_m(now).

    Models without in-context learning have C_m = 0 and go first, whatever their size, as published.
    Ties go to the least recently used.
    """

    name, kernel = "lc", 0

    def key(self, entry, now):
        # context_rank orders models as C_m(now) does (see CacheEntry.context_rank).
        return (entry.context_rank(now), entry.last_use)
