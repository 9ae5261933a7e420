"""SmallestPulseSTT against the fake Pulse server on a real WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.providers.streams import read_while_feeding
from voicecore.errors import ConfigError, ProviderStatusError, ProviderStreamError
from voicecore.fakes.smallest_pulse import FakePulse, Utterance
from voicecore.providers.base import MULAW_8K, PCM16_16K, STT, AudioFormat, TranscriptUpdate
from voicecore.providers.smallest_pulse import PulseStream, SmallestPulseSTT

FRAME = b"\xff" * 160  # 20 ms of μ-law


async def transcribe(
    server: FakePulse,
    feed: Callable[[PulseStream], Awaitable[None]],
    *,
    expect: int = 0,
    finals: int = 0,
    audio: AudioFormat = MULAW_8K,
    **kwargs: object,
) -> tuple[list[TranscriptUpdate], PulseStream]:
    """Feed a stream, read until ``expect`` updates (or ``finals`` final ones) arrived, then close it."""
    stt = SmallestPulseSTT(api_key="sm-key", base_url=server.ws_url, **kwargs)  # type: ignore[arg-type]
    stream = await stt.open(audio, language="en-US")
    return await read_while_feeding(stt, stream, feed, expect=expect, finals=finals), stream


async def frames(stream: PulseStream, count: int, frame: bytes = FRAME) -> None:
    for _ in range(count):
        await stream.push_audio(frame)


def test_phone_audio_goes_through_as_mulaw_and_comes_back_as_transcripts() -> None:
    async def main() -> tuple[list[TranscriptUpdate], PulseStream, FakePulse]:
        async with FakePulse(["Hello there.", "Book a table."]) as server:
            updates, stream = await transcribe(server, lambda s: frames(s, 20), expect=4)
        return updates, stream, server

    updates, stream, server = asyncio.run(main())
    assert SmallestPulseSTT().input_formats()[0] == MULAW_8K
    assert isinstance(SmallestPulseSTT(), STT)
    conn = server.connections[0]
    assert (conn.query["encoding"], conn.query["sample_rate"], conn.query["language"]) == (
        "mulaw",
        "8000",
        "en",
    )
    assert conn.headers["Authorization"] == "Bearer sm-key"
    assert bytes(conn.audio) == FRAME * 20, "every byte pushed reaches the server, unchanged"
    assert conn.controls == [{"type": "close_stream"}]
    assert [(u.text, u.final, u.end_of_turn) for u in updates] == [
        ("Hello", False, False),
        ("Hello there.", True, False),  # Pulse has no end-of-turn signal: the VAD ends turns
        ("Book", False, False),
        ("Book a table.", True, False),
    ]
    assert updates[1].confidence == pytest.approx(0.95)
    assert stream.speech_started == pytest.approx(0.2)  # the second utterance, frame 11
    assert stream.speech_ended == pytest.approx(0.4)
    assert stream.request_id is not None


def test_finalize_flushes_the_utterance_in_progress_and_close_stream_the_last() -> None:
    async def feed(stream: PulseStream) -> None:
        await frames(stream, 4)  # 640 of the 1600 bytes "Hello there." takes
        await stream.finalize()
        await frames(stream, 2)

    async def main() -> tuple[list[TranscriptUpdate], FakePulse]:
        async with FakePulse(["Hello there.", Utterance("Goodbye.", 4000)]) as server:
            updates, _ = await transcribe(server, feed, expect=1)
            await asyncio.sleep(0.2)  # the close_stream answer comes before the close
        return updates, server

    updates, server = asyncio.run(main())
    assert [(u.text, u.final) for u in updates][:1] == [("Hello there.", True)]
    assert server.connections[0].controls == [{"type": "finalize"}, {"type": "close_stream"}]


def test_a_concurrency_limit_close_reconnects_and_replays_the_unsettled_audio() -> None:
    async def main() -> tuple[list[TranscriptUpdate], PulseStream, FakePulse]:
        script = [Utterance("Hello.", 800), Utterance("Book a table for two.", 3200)]
        async with FakePulse(
            script, close_after_bytes=1600, close_with=(1008, "concurrency limit")
        ) as server:
            updates, stream = await transcribe(server, lambda s: frames(s, 30), finals=2)
        return updates, stream, server

    updates, stream, server = asyncio.run(main())
    assert [u.text for u in updates if u.final] == ["Hello.", "Book a table for two."]
    assert stream.reconnects == 1
    first, second = server.connections
    assert bytes(second.audio[:800]) == bytes(first.audio[800:1600]), "only what no final covered"
    assert len(first.audio) + len(second.audio) - 800 == 30 * 160, "no caller audio lost"


def test_an_error_message_ends_the_stream_with_its_text() -> None:
    async def main() -> None:
        async with FakePulse(["Hello."], close_after_bytes=320, error_message="Unsupported audio") as server:
            with pytest.raises(ProviderStreamError, match="Unsupported audio") as caught:
                await transcribe(server, lambda s: frames(s, 4), expect=99, max_reconnects=0)
        assert caught.value.provider == "smallest"

    asyncio.run(main())


def test_pcm_and_handshake_refusals() -> None:
    async def main() -> tuple[list[TranscriptUpdate], FakePulse]:
        async with FakePulse([Utterance("Hi.", 3200)]) as server:
            updates, _ = await transcribe(
                server, lambda s: frames(s, 5, bytes(640)), expect=2, audio=PCM16_16K
            )
            for stt, status in (
                (SmallestPulseSTT(api_key="wrong", base_url=server.ws_url), 401),
                (SmallestPulseSTT(api_key="sm-key", base_url=server.ws_url, model="pulse-pro"), 400),
            ):
                with pytest.raises(ProviderStatusError) as caught:
                    await stt.open(MULAW_8K, language="en")
                assert caught.value.status == status
                await stt.aclose()
            with pytest.raises(ConfigError):
                await SmallestPulseSTT().open(AudioFormat("pcm16", 22050), language="en")
            multi = SmallestPulseSTT(api_key="sm-key", base_url=server.ws_url)
            await (await multi.open(MULAW_8K, language="multi-asian")).aclose()
            await multi.aclose()
        return updates, server

    updates, server = asyncio.run(main())
    assert server.connections[0].query["encoding"] == "linear16"
    assert server.connections[0].query["language"] == "en", "en-US as Pulse names it"
    assert server.connections[-1].query["language"] == "multi-asian"
    assert [u.final for u in updates] == [False, True]
