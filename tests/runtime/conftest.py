"""Runtime tests run on both event loops voicecore supports."""

from __future__ import annotations

import pytest

from voicecore.runtime.loop import LoopName


@pytest.fixture(params=["asyncio", pytest.param("uvloop", marks=pytest.mark.uvloop)])
def loop(request: pytest.FixtureRequest) -> LoopName:
    """The event loop kind a test runs on."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed")
    name: LoopName = request.param
    return name
