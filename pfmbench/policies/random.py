from . import Policy, register


@register
class Random(Policy):
    """Evict a cached model drawn uniformly with the seeded SplitMix64 stream (same seed, same victims)."""

    name, kernel = "random", 4

    def key(self, entry, now):
        return 0

    def victim(self, cache, now, rng):
        return cache[rng() % len(cache)]
