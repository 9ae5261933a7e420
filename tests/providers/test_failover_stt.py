"""FailoverSTT over real adapters and their wire fakes: open failures, mid-call deaths, stalls, gaps."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import REGISTRY

from voicecore.errors import ConfigError, ProviderStatusError
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.smallest_pulse import FakePulse
from voicecore.providers.base import MULAW_8K, PCM16_16K, STT, AudioFormat, TranscriptUpdate
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.failover import FailoverSTT, FailoverSTTStream
from voicecore.providers.smallest_pulse import SmallestPulseSTT
from voicecore.testing import FakeSTT

FRAME = 160  # 20 ms of μ-law


def speech(frames: int) -> list[bytes]:
    """Distinct μ-law frames, so that what each server received can be compared byte for byte."""
    return [bytes((i * 7 + j) % 251 for j in range(FRAME)) for i in range(frames)]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def run(
    stt: FailoverSTT, frames: list[bytes], *, finals: int, finalize_after: int | None = None
) -> tuple[list[TranscriptUpdate], FailoverSTTStream]:
    """Push ``frames`` (a ``finalize()`` after ``finalize_after`` of them); read ``finals`` final texts."""
    stream = await stt.open(MULAW_8K, language="en")
    updates: list[TranscriptUpdate] = []
    enough = asyncio.Event()

    async def read() -> None:
        async for update in stream:
            updates.append(update)
            if sum(u.final and bool(u.text) for u in updates) >= finals:
                enough.set()

    reader = asyncio.create_task(read())
    try:
        for i, frame in enumerate(frames):
            await stream.push_audio(frame)
            if i + 1 == finalize_after:
                await stream.finalize()
            await asyncio.sleep(0)
        await asyncio.wait_for(enough.wait(), 10)
    finally:
        await stream.aclose()
        reader.cancel()
        await stt.aclose()  # closes every member (an unclosed client session would fail the test)
    return updates, stream


def test_a_socket_that_dies_mid_utterance_moves_the_call_with_its_unsettled_audio() -> None:
    """Deepgram loses its socket halfway through the second utterance; Pulse hears all of it."""

    async def main() -> tuple[list[TranscriptUpdate], FailoverSTTStream, FakeDeepgram, FakePulse]:
        primary_script = [Utterance("Hello.", 800), Utterance("Book a table for two.", 3200)]
        async with (
            FakeDeepgram(primary_script, close_after_bytes=2400, close_with=(1011, "NET-0000")) as dg,
            FakePulse([Utterance("Book a table for two.", 3200)]) as pulse,
        ):
            stt = FailoverSTT(
                [
                    DeepgramSTT(api_key="dg-key", base_url=dg.ws_url, max_reconnects=0),
                    SmallestPulseSTT(api_key="sm-key", base_url=pulse.ws_url),
                ]
            )
            updates, stream = await run(stt, speech(40), finals=2)
        return updates, stream, dg, pulse

    before = metric("voicecore_stt_failovers_total", provider="deepgram", reason="error")
    updates, stream, dg, pulse = asyncio.run(main())
    assert [u.text for u in updates if u.final and u.text] == ["Hello.", "Book a table for two."]
    assert (stream.provider, stream.switches) == ("smallest", 1)
    sent = b"".join(speech(40))
    heard_by_deepgram = bytes(dg.connections[0].audio)
    assert heard_by_deepgram == sent[:2400]
    # "Hello." (the first 800 bytes) was final: Pulse gets everything after it, in order, once.
    assert bytes(pulse.connections[0].audio) == sent[800:]
    assert metric("voicecore_stt_failovers_total", provider="deepgram", reason="error") == before + 1
    assert stream._owner.breaker.is_down(0, time.monotonic()), "deepgram cools down (the loop's clock)"


def test_a_provider_that_cannot_open_is_skipped_and_cools_down() -> None:
    async def main() -> tuple[list[TranscriptUpdate], FailoverSTTStream, FailoverSTT]:
        async with FakeDeepgram(api_key="other") as refusing, FakePulse(["Hello."]) as pulse:
            stt = FailoverSTT(
                [
                    DeepgramSTT(api_key="dg-key", base_url=refusing.ws_url),
                    SmallestPulseSTT(api_key="sm-key", base_url=pulse.ws_url),
                ],
                cooldown=60,
            )
            updates, stream = await run(stt, speech(10), finals=1)
            assert len(refusing.connections) == 0
        return updates, stream, stt

    updates, stream, stt = asyncio.run(main())
    assert [u.text for u in updates if u.final] == ["Hello."]
    assert stream.provider == "smallest"
    assert stream.switches == 0
    assert stt.breaker.is_down(0, time.monotonic())
    assert not stt.breaker.is_down(1, time.monotonic())


def test_every_provider_failing_to_open_raises_the_last_error() -> None:
    async def main() -> None:
        async with FakeDeepgram(api_key="other") as dg, FakePulse(api_key="other") as pulse:
            stt = FailoverSTT(
                [
                    DeepgramSTT(api_key="dg-key", base_url=dg.ws_url),
                    SmallestPulseSTT(api_key="sm-key", base_url=pulse.ws_url),
                ]
            )
            with pytest.raises(ProviderStatusError) as caught:
                await stt.open(MULAW_8K, language="en")
            assert caught.value.provider == "smallest"
            await stt.aclose()

    asyncio.run(main())


def test_a_stalled_provider_is_replaced_after_finalize(caplog: pytest.LogCaptureFixture) -> None:
    """Deepgram goes quiet mid-utterance; no final comes within the stall timeout of finalize()."""

    async def main() -> tuple[list[TranscriptUpdate], FailoverSTTStream, FakePulse]:
        script = [Utterance("Book a table for two.", 3200)]
        async with (
            FakeDeepgram(script, stall_after_bytes=2000) as dg,
            FakePulse([Utterance("Book a table for two.", 3200)]) as pulse,
        ):
            stt = FailoverSTT(
                [
                    DeepgramSTT(api_key="dg-key", base_url=dg.ws_url),
                    SmallestPulseSTT(api_key="sm-key", base_url=pulse.ws_url),
                ],
                stall_timeout=0.3,
            )
            updates, stream = await run(stt, speech(20), finals=1, finalize_after=20)
        return updates, stream, pulse

    before = metric("voicecore_stt_failovers_total", provider="deepgram", reason="stall")
    with caplog.at_level(logging.WARNING):
        updates, stream, pulse = asyncio.run(main())
    assert [(u.text, u.final) for u in updates] == [("Book a", False), ("Book a table for two.", True)]
    assert stream.provider == "smallest"
    assert bytes(pulse.connections[0].audio) == b"".join(speech(20)), "the whole utterance, replayed"
    assert metric("voicecore_stt_failovers_total", provider="deepgram", reason="stall") == before + 1
    assert "no transcript within 0.3 s of the end of speech" in caplog.text


def test_audio_older_than_the_replay_buffer_is_a_counted_and_logged_gap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> tuple[list[TranscriptUpdate], FakePulse]:
        async with (
            FakeDeepgram([Utterance("A long story.", 100_000)], close_after_bytes=3200) as dg,
            FakePulse([Utterance("The end of it.", 800)]) as pulse,
        ):
            stt = FailoverSTT(
                [
                    DeepgramSTT(api_key="dg-key", base_url=dg.ws_url, max_reconnects=0, name="dg-gap"),
                    SmallestPulseSTT(api_key="sm-key", base_url=pulse.ws_url),
                ],
                replay_seconds=0.1,  # 800 bytes of μ-law
            )
            updates, _ = await run(stt, speech(20), finals=1)
        return updates, pulse

    before = metric("voicecore_stt_gap_seconds_total", provider="dg-gap")
    with caplog.at_level(logging.WARNING):
        updates, pulse = asyncio.run(main())
    assert [u.text for u in updates if u.final] == ["The end of it."]
    gap = metric("voicecore_stt_gap_seconds_total", provider="dg-gap") - before
    replayed = 800
    assert gap == pytest.approx((3200 - replayed) / 8000)
    assert bytes(pulse.connections[0].audio).startswith(b"".join(speech(20))[3200 - replayed : 3200])
    assert "s of caller audio was too old to replay after dg-gap" in caplog.text


def test_settings_and_formats() -> None:
    pcm_only = FakeSTT(formats=(PCM16_16K,))
    assert FailoverSTT([DeepgramSTT(), SmallestPulseSTT()]).input_formats()[0] == MULAW_8K
    assert FailoverSTT([DeepgramSTT(), pcm_only]).input_formats() == (PCM16_16K,)
    assert isinstance(FailoverSTT([pcm_only]), STT)
    with pytest.raises(ConfigError, match="share no input format"):
        FailoverSTT([pcm_only, FakeSTT(formats=(AudioFormat("pcm16", 8000),))])
    with pytest.raises(ConfigError, match="stall_timeout"):
        FailoverSTT([pcm_only], stall_timeout=0)
    assert FailoverSTT([DeepgramSTT(), SmallestPulseSTT()]).name == "failover(deepgram,smallest)"
