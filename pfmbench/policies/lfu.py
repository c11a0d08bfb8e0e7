from . import Policy, register


@register
class LFU(Policy):
    """Least frequently used: fewest requests since it was loaded (the count resets on eviction).

    Ties go to the model that reached its count first, which is the one whose last request is
    oldest: a model reaches its current count at its last request.
    """

    name, kernel = "lfu", 1

    def key(self, entry, now):
        return (entry.requests, entry.last_use)
