"""Shared fixtures for the test suite: the G.711 oracle and exhaustive inputs."""

from __future__ import annotations

import array
import os
import sys
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

# CI machines are shared and slow; a deadline would only make property tests flaky.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _load_audioop() -> ModuleType:
    # audioop is stdlib up to 3.12 (deprecated); 3.13+ needs the audioop-lts backport.
    if sys.version_info >= (3, 13):
        return pytest.importorskip("audioop", reason="install audioop-lts: it is the G.711 oracle on 3.13+")
    import audioop

    return audioop


@pytest.fixture(scope="session")
def audioop() -> ModuleType:
    """The reference G.711 implementation (CPython's ``audioop``)."""
    return _load_audioop()


@pytest.fixture(scope="session")
def all_int16_pcm() -> bytes:
    """Every int16 value once, ascending from -32768 to 32767, as PCM16 little-endian."""
    samples = array.array("h", range(-32768, 32768))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


@pytest.fixture(scope="session")
def all_codes() -> bytes:
    """Every G.711 code byte once, 0x00..0xFF."""
    return bytes(range(256))
