from . import Policy, register


@register
class Cloud(Policy):
    """Cloud only: never loads a model; every request is offloaded."""

    name, kernel = "cloud", 5

    def admit(self, model, now):
        return False

    def key(self, entry, now):
        return entry.last_use
