"""A call over the wire, as the provider call tests run it."""

from __future__ import annotations

import asyncio

from voicecore.runtime.session import Session
from voicecore.testing import LoopbackTransport


async def run_until_marks(session: Session, transport: LoopbackTransport, marks: int = 2) -> None:
    """Run the call; the caller hangs up once ``marks`` playback marks came back (10 s at most)."""

    async def caller() -> None:
        async with asyncio.timeout(10):
            while len(transport.marks_played) < marks:  # noqa: ASYNC110 (the loopback has no event for marks)
                await asyncio.sleep(0.02)
        transport.hang_up_caller()

    async with asyncio.timeout(15):
        await asyncio.gather(session.run(), caller())
