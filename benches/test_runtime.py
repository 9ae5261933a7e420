"""Smoke test of the runtime latency benchmark (figures: ``python -m benches.runtime_latency``)."""

from __future__ import annotations

import shutil

import pytest

from .runtime_latency import measure

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng for caller speech")


def test_added_latency_is_measured_for_every_turn_of_concurrent_calls() -> None:
    result = measure(calls=2, turns=1, loop="asyncio")
    assert result.turns == 2
    assert 0.0 <= result.p50_ms <= result.p95_ms <= result.max_ms
    assert result.cpu_s_per_call_minute > 0.0
