"""DeepgramSTT against a fake /v1/listen server on a real WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.providers.streams import read_while_feeding
from voicecore.errors import ConfigError, ProviderConnectionError, ProviderStatusError, ProviderStreamError
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.providers.base import MULAW_8K, PCM16_16K, STT, AudioFormat, STTStream, TranscriptUpdate
from voicecore.providers.deepgram import DeepgramSTT

FRAME = b"\xff" * 160  # 20 ms of μ-law


async def transcribe(
    server: FakeDeepgram, feed: Callable[[STTStream], Awaitable[None]], *, expect: int = 0, **kwargs: object
) -> tuple[list[TranscriptUpdate], STTStream]:
    """Feed a stream, read updates until ``expect`` arrived, then close it."""
    stt = DeepgramSTT(api_key="dg-key", base_url=server.ws_url, **kwargs)  # type: ignore[arg-type]
    stream = await stt.open(MULAW_8K, language="en-US")
    return await read_while_feeding(stt, stream, feed, expect=expect), stream


def test_phone_audio_goes_through_as_mulaw_and_comes_back_as_turns() -> None:
    async def feed(stream: STTStream) -> None:
        for _ in range(10):
            await stream.push_audio(FRAME)
        await stream.push_audio(b"")  # skipped: an empty frame would end the stream
        for _ in range(10):
            await stream.push_audio(FRAME)

    async def main() -> tuple[list[TranscriptUpdate], STTStream, FakeDeepgram]:
        async with FakeDeepgram(["Hello there.", "Book a table."]) as server:
            updates, stream = await transcribe(server, feed, expect=6)
        return updates, stream, server

    updates, stream, server = asyncio.run(main())
    assert DeepgramSTT().input_formats()[0] == MULAW_8K
    assert isinstance(DeepgramSTT(), STT)
    conn = server.connections[0]
    assert conn.query["encoding"] == "mulaw"
    assert conn.query["sample_rate"] == "8000"
    assert conn.headers["Authorization"] == "Token dg-key"
    assert bytes(conn.audio) == FRAME * 20, "every byte pushed reaches the server, unchanged"
    assert conn.empty_frames == 0
    assert conn.controls[-1] == {"type": "CloseStream"}
    assert updates == [
        TranscriptUpdate("Hello", final=False, confidence=0.98),
        TranscriptUpdate("Hello there.", final=True, end_of_turn=True, confidence=0.98, audio_end=0.2),
        TranscriptUpdate("", final=True, end_of_turn=True),
        TranscriptUpdate("Book", final=False, confidence=0.98),
        TranscriptUpdate("Book a table.", final=True, end_of_turn=True, confidence=0.98, audio_end=0.4),
        TranscriptUpdate("", final=True, end_of_turn=True),
    ]
    assert stream.request_id == server.request_id  # type: ignore[attr-defined]
    assert stream.speech_started == pytest.approx(0.22)  # type: ignore[attr-defined]  # second utterance, frame 11


def test_finalize_flushes_the_utterance_in_progress() -> None:
    async def main() -> list[TranscriptUpdate]:
        async with FakeDeepgram([Utterance("Wait a second", audio_bytes=100_000)]) as server:

            async def feed(stream: STTStream) -> None:
                await stream.push_audio(FRAME)
                await stream.finalize()

            updates, _ = await transcribe(server, feed, expect=2)
            assert server.connections[0].controls[0] == {"type": "Finalize"}
            return updates

    updates = asyncio.run(main())
    assert updates == [
        TranscriptUpdate("Wait a second", final=True, end_of_turn=False, confidence=0.98, audio_end=0.02),
        TranscriptUpdate("", final=True, end_of_turn=True),
    ]


def test_keepalive_while_no_audio_flows() -> None:
    async def main() -> None:
        async with FakeDeepgram(idle_timeout=10.0) as server:

            async def feed(stream: STTStream) -> None:
                await asyncio.wait_for(server.control_received.wait(), 5)

            await transcribe(server, feed, keepalive_interval=0.05)
            assert server.connections[0].controls[0] == {"type": "KeepAlive"}

    asyncio.run(main())


def test_an_idle_socket_closed_by_the_server_is_a_connection_error() -> None:
    async def main() -> None:
        async with FakeDeepgram(idle_timeout=0.1) as server:
            stt = DeepgramSTT(
                api_key="dg-key", base_url=server.ws_url, keepalive_interval=9.0, max_reconnects=0
            )
            stream = await stt.open(MULAW_8K, language="en")
            with pytest.raises(ProviderConnectionError, match="NET-0001"):
                await anext(stream)
            await stream.aclose()
            await stt.aclose()

    asyncio.run(main())


def test_undecodable_audio_close_is_final() -> None:
    async def main() -> None:
        async with FakeDeepgram(close_after_bytes=1, close_with=(1008, "DATA-0000")) as server:
            stt = DeepgramSTT(api_key="dg-key", base_url=server.ws_url)
            stream = await stt.open(PCM16_16K, language="en")
            await stream.push_audio(b"\x00\x01")
            with pytest.raises(ProviderStreamError, match="DATA-0000") as caught:
                await anext(stream)
            assert not caught.value.retryable
            assert caught.value.status == 1008
            await stream.aclose()
            await stt.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("key", "params", "status", "text"),
    [("wrong", {}, 401, ""), ("dg-key", {"interim_results": "false"}, 400, "")],
)
def test_refused_handshakes(key: str, params: dict[str, str], status: int, text: str) -> None:
    async def main() -> None:
        async with FakeDeepgram() as server:
            stt = DeepgramSTT(api_key=key, base_url=server.ws_url, params=params)
            with pytest.raises(ProviderStatusError) as caught:
                await stt.open(MULAW_8K, language="en")
            await stt.aclose()
        assert caught.value.status == status
        assert caught.value.retryable is False

    asyncio.run(main())


def test_bad_configuration() -> None:
    with pytest.raises(ConfigError, match="keepalive_interval"):
        DeepgramSTT(keepalive_interval=12)

    async def main() -> None:
        with pytest.raises(ConfigError, match="does not take"):
            await DeepgramSTT().open(AudioFormat("pcm16", 44100), language="en")

    asyncio.run(main())


def test_a_close_before_close_stream_is_a_connection_error_even_when_normal() -> None:
    async def main() -> None:
        async with FakeDeepgram(close_after_bytes=1, close_with=(1000, "")) as server:
            stt = DeepgramSTT(api_key="dg-key", base_url=server.ws_url, max_reconnects=0)
            stream = await stt.open(MULAW_8K, language="en")
            await stream.push_audio(FRAME)
            with pytest.raises(ProviderConnectionError, match="before CloseStream") as caught:
                await anext(stream)
            assert caught.value.retryable
            await stream.aclose()
            await stt.aclose()

    asyncio.run(main())


def test_a_lost_socket_reconnects_and_replays_so_no_caller_audio_is_lost() -> None:
    pushed = bytes(i % 251 for i in range(160 * 40))  # 40 distinct-ish 20 ms frames

    async def main() -> tuple[list[TranscriptUpdate], STTStream, FakeDeepgram]:
        script = [Utterance("First part.", audio_bytes=1600), Utterance("Second part.", audio_bytes=3200)]
        # The first socket dies after 2400 bytes: 800 of them were after the last final result.
        async with FakeDeepgram(script, close_after_bytes=2400, close_with=(1011, "NET-0000")) as server:

            async def feed(stream: STTStream) -> None:
                for start in range(0, len(pushed), 160):
                    await stream.push_audio(pushed[start : start + 160])
                    await asyncio.sleep(0)  # let the reader see the close between frames

            updates, stream = await transcribe(server, feed, expect=6)
        return updates, stream, server

    updates, stream, server = asyncio.run(main())
    first, second = server.connections
    assert stream.reconnects == 1  # type: ignore[attr-defined]
    assert stream.gap_seconds == 0  # type: ignore[attr-defined]
    # Byte-exact: what the first socket settled, then everything the second one got, is all the audio.
    assert bytes(first.audio[:1600]) + bytes(second.audio) == pushed
    assert [u.text for u in updates if u.final and u.text] == ["First part.", "Second part."]
