"""Which provider to try next: an ordered list with a circuit breaker, sans I/O.

A provider that failed (an error worth retrying elsewhere, or a stall past its deadline) is
skipped for a cool-down, so later turns do not wait on it again; when its cool-down ends it
is tried first again (its place in the list is the operator's preference). If every provider
is cooling down, all are tried in order anyway: a call is better served by a provider that
may have recovered than by none. Time is passed in as ``now``.
"""

from __future__ import annotations

from voicecore.errors import ConfigError

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Keeps the cool-downs of ``count`` providers, in order of preference.

    Args:
        count: How many providers there are.
        cooldown: Seconds a failed provider is skipped.
    """

    def __init__(self, count: int, *, cooldown: float = 30.0) -> None:
        if count < 1:
            raise ConfigError("a failover list needs at least one provider")
        if cooldown < 0:
            raise ConfigError("cooldown must be zero or more seconds")
        self.count = count
        self.cooldown = cooldown
        self._down_until = [float("-inf")] * count

    def order(self, now: float) -> list[int]:
        """Indexes to try, in order: the available ones, or all if none is."""
        available = [i for i in range(self.count) if self._down_until[i] <= now]
        return available or list(range(self.count))

    def failed(self, index: int, now: float) -> None:
        """Provider ``index`` failed at ``now``: skip it until its cool-down ends."""
        self._down_until[index] = now + self.cooldown

    def succeeded(self, index: int) -> None:
        """Provider ``index`` answered: it is available again at once."""
        self._down_until[index] = float("-inf")

    def is_down(self, index: int, now: float) -> bool:
        """Whether provider ``index`` is cooling down at ``now``."""
        return self._down_until[index] > now
