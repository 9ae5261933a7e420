"""Shared deterministic benchmark inputs (see ``_signals.py`` for how they are made).

Fixtures:
    speech_frame: ``speech_frame(rate)`` -> one 20 ms PCM16 frame of speech at ``rate``.
    speech_second: ``speech_second(rate)`` -> 1 s of PCM16 speech at ``rate``.
    speech_seconds: ``speech_seconds(rate, seconds)`` -> that many seconds of speech.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from voicecore import audio

from ._signals import RATES, frames, speech


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Records which SIMD kernels voicecore ran (``VOICECORE_SIMD`` lowers them) in the report."""
    machine_info["voicecore_simd"] = audio.simd_level()
    machine_info["voicecore_simd_detected"] = audio.simd_detected()


@pytest.fixture(scope="session")
def speech_frame() -> Callable[[int], bytes]:
    def get(rate: int) -> bytes:
        assert rate in RATES, rate
        # A frame from the middle of the first second: voiced, not a silent edge.
        return frames(speech(rate), rate)[20]

    return get


@pytest.fixture(scope="session")
def speech_second() -> Callable[[int], bytes]:
    def get(rate: int) -> bytes:
        assert rate in RATES, rate
        return speech(rate)

    return get


@pytest.fixture(scope="session")
def speech_seconds() -> Callable[[int, float], bytes]:
    return speech
