"""One timer paces every simulated caller's frames: each sender every 20 ms, in its own phase."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest

from voicecore.pacer import FRAME_SECONDS, SLOTS, FramePacer, pacer


def test_each_sender_is_called_every_frame_in_the_slot_it_joined() -> None:
    async def run() -> tuple[list[float], list[float], int]:
        paced = FramePacer()
        first: list[float] = []
        second: list[float] = []

        async def one(due: float) -> None:
            first.append(due)

        async def two(due: float) -> None:
            second.append(due)

        handle = paced.add(one)
        await asyncio.sleep(FRAME_SECONDS / SLOTS * 1.5)  # the next slot
        other = paced.add(two)
        while len(first) < 5:  # noqa: ASYNC110 (the pacer's task appends)
            await asyncio.sleep(0.005)
        paced.remove(handle)
        count = len(first)
        while len(second) < 8:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        paced.remove(other)
        assert paced.senders == 0
        return first, second, count - len(first)

    first, second, more = asyncio.run(run())
    assert [b - a for a, b in pairwise(first)] == pytest.approx([FRAME_SECONDS] * (len(first) - 1))
    assert [b - a for a, b in pairwise(second)] == pytest.approx([FRAME_SECONDS] * (len(second) - 1))
    phase = (second[0] - first[0]) % FRAME_SECONDS
    assert phase == pytest.approx(FRAME_SECONDS / SLOTS * (round(phase / (FRAME_SECONDS / SLOTS))))
    assert phase > 0  # a different slot: the two callers' frames do not go out together
    assert more == 0  # removed: never called again


def test_a_failing_sender_is_dropped_and_the_others_go_on() -> None:
    async def run() -> tuple[int, int, list[str]]:
        loop = asyncio.get_running_loop()
        reported: list[str] = []
        loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
        paced = pacer()
        assert pacer() is paced  # one per loop
        calls = {"bad": 0, "good": 0}

        async def bad(due: float) -> None:
            calls["bad"] += 1
            raise RuntimeError("broken socket")

        async def good(due: float) -> None:
            calls["good"] += 1

        paced.add(bad)
        handle = paced.add(good)
        while calls["good"] < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        paced.remove(handle)
        return calls["bad"], paced.senders, reported

    bad, left, reported = asyncio.run(run())
    assert bad == 1
    assert left == 0
    assert reported == ["a paced sender failed"]
