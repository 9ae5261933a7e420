"""The circuit breaker: failed providers are skipped for a cool-down, in order of preference."""

from __future__ import annotations

import pytest

from voicecore.errors import ConfigError
from voicecore.sansio.failover import CircuitBreaker


def test_preference_order_and_cooldown() -> None:
    breaker = CircuitBreaker(3, cooldown=10.0)
    assert breaker.order(0.0) == [0, 1, 2]
    breaker.failed(0, now=1.0)
    assert breaker.is_down(0, 5.0)
    assert breaker.order(5.0) == [1, 2]
    assert breaker.order(11.0) == [0, 1, 2]  # cooled down: first choice again
    breaker.failed(1, now=12.0)
    breaker.succeeded(1)
    assert breaker.order(12.0) == [0, 1, 2]


def test_when_all_are_down_all_are_tried() -> None:
    breaker = CircuitBreaker(2, cooldown=10.0)
    breaker.failed(0, now=0.0)
    breaker.failed(1, now=0.0)
    assert breaker.order(1.0) == [0, 1]


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        CircuitBreaker(0)
    with pytest.raises(ConfigError, match="cooldown"):
        CircuitBreaker(1, cooldown=-1)
