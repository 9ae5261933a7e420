"""CartesiaTTS against a fake Cartesia TTS server on a real WebSocket."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.providers.streams import by_text, speak
from voicecore.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderStatusError,
    ProviderStreamError,
    ProviderTimeoutError,
)
from voicecore.fakes.cartesia import FakeCartesia, audio_for, error_message
from voicecore.providers.base import MULAW_8K, PCM16_16K, TTS, AudioChunk, AudioFormat
from voicecore.providers.cartesia import CartesiaTTS
from voicecore.sansio.cartesia import output_format

MULAW = output_format("mulaw", 8000)


def tts_for(server: FakeCartesia, **kwargs: object) -> CartesiaTTS:
    return CartesiaTTS(voice_id="voice-1", api_key="cartesia-key", base_url=server.ws_url, **kwargs)  # type: ignore[arg-type]


def test_one_reply_in_mulaw_with_text_ends_and_word_times() -> None:
    async def main() -> tuple[list[AudioChunk], FakeCartesia, str]:
        async with FakeCartesia() as server:
            tts = tts_for(server, generation_config={"speed": 1.0})
            assert isinstance(tts, TTS)
            assert tts.output_formats()[0] == MULAW_8K
            stream = await tts.open(MULAW_8K)
            chunks = await speak(stream, "Hello there.", "How are you?")
            await stream.aclose()
            await tts.aclose()
        return chunks, server, stream.context_id

    chunks, server, context_id = asyncio.run(main())
    conn = server.connections[0]
    assert conn.headers["Cartesia-Version"] == "2026-08-14"
    assert conn.headers["Authorization"] == "Bearer cartesia-key"
    fields = {
        "model_id": "sonic-3",
        "voice": {"mode": "id", "id": "voice-1"},
        "output_format": MULAW,
        "language": "en",
        "add_timestamps": True,
        "max_buffer_delay_ms": 0,
        "generation_config": {"speed": 1.0},
        "context_id": context_id,
    }
    assert conn.messages[:3] == [
        {**fields, "transcript": "Hello there. ", "continue": True, "flush": True},
        {**fields, "transcript": "How are you? ", "continue": True, "flush": True},
        {**fields, "transcript": "", "continue": False},
    ]
    assert by_text(chunks) == [audio_for("Hello there. ", MULAW), audio_for("How are you? ", MULAW)]
    words = [(w.text, w.end_ms) for c in chunks for w in c.words]
    assert words == [("Hello", 50.0), ("there.", 120.0), ("How", 160.0), ("are", 200.0), ("you?", 250.0)]


def test_each_reply_gets_a_fresh_context_on_one_warm_socket() -> None:
    async def main() -> FakeCartesia:
        async with FakeCartesia(chunk_chars=100) as server:
            tts = tts_for(server)
            await tts.warm(PCM16_16K)
            assert len(server.connections) == 1, "connect() opened the socket before any reply"
            for text in ("One.", "Two.", "Three."):
                stream = await tts.open(PCM16_16K, voice="voice-2")
                chunks = await speak(stream, text)
                await stream.aclose()
                assert by_text(chunks) == [audio_for(text + " ", output_format("pcm16", 16000))]
            await tts.aclose()
        return server

    server = asyncio.run(main())
    assert len(server.connections) == 1
    contexts = server.connections[0].contexts
    assert len(contexts) == 3
    assert {c["voice"]["id"] for c in contexts.values()} == {"voice-2"}


def test_barge_in_cancels_the_context_and_its_late_chunks_are_dropped() -> None:
    async def main() -> FakeCartesia:
        async with FakeCartesia(chunk_delay=0.01, late_chunks=3) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            await stream.push_text("A long sentence that the caller will interrupt right here.")
            first = await anext(stream)
            assert first.audio
            await stream.aclose()
            await stream.aclose()  # twice is fine
            assert [chunk async for chunk in stream] == []
            await asyncio.wait_for(server.cancelled.wait(), 5)
            async with asyncio.timeout(5):
                while server.sent_after_cancel < 3:  # noqa: ASYNC110 (the fake has no event for it)
                    await asyncio.sleep(0.01)
            # The same socket, which got those late chunks, speaks the next reply, and only
            # that reply's audio comes out.
            again = await tts.open(MULAW_8K)
            chunks = await speak(again, "Yes?")
            await again.aclose()
            await tts.aclose()
            assert by_text(chunks) == [audio_for("Yes? ", MULAW)]
        return server

    server = asyncio.run(main())
    conn = server.connections[0]
    assert len(server.connections) == 1
    assert conn.cancelled == [next(iter(conn.contexts))]
    assert {"context_id": conn.cancelled[0], "cancel": True} in conn.messages


def test_nothing_to_say_still_ends_the_text() -> None:
    async def main() -> list[AudioChunk]:
        async with FakeCartesia() as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            chunks = await speak(stream, "  ")
            await tts.aclose()
        return chunks

    assert asyncio.run(main()) == [AudioChunk(b"", end_of_text=True)]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (error_message(400, "voice not found", title="Invalid voice"), False),
        (error_message(500, "internal error", title="Server error"), True),
        (error_message(401, "bad key", old=True), False),
    ],
)
def test_an_error_message_fails_only_its_reply(error: dict[str, object], retryable: bool) -> None:
    async def main() -> None:
        async with FakeCartesia(error=error) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            with pytest.raises(ProviderStreamError) as caught:
                await speak(stream, "Hello.")
            assert caught.value.retryable is retryable
            assert caught.value.status == error["status_code"]
            await stream.aclose()
            # The socket is still good: the next reply speaks.
            again = await tts.open(MULAW_8K)
            assert by_text(await speak(again, "Hi.")) == [audio_for("Hi. ", MULAW)]
            await tts.aclose()
            assert len(server.connections) == 1

    asyncio.run(main())


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (400, False), (503, True), (429, True)])
def test_a_refused_handshake_is_a_status_error(status: int, retryable: bool) -> None:
    async def main() -> None:
        async with FakeCartesia(handshake_status=status) as server:
            tts = tts_for(server)
            with pytest.raises(ProviderStatusError) as caught:
                await tts.open(MULAW_8K)
            assert (caught.value.status, caught.value.retryable) == (status, retryable)
            await tts.aclose()

    asyncio.run(main())


def test_a_wrong_key_is_refused_before_the_upgrade() -> None:
    async def main() -> None:
        async with FakeCartesia(api_key="right") as server:
            tts = tts_for(server)
            with pytest.raises(ProviderStatusError, match="401") as caught:
                await tts.warm(MULAW_8K)
            assert not caught.value.retryable
            await tts.aclose()

    asyncio.run(main())


def test_an_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        tts = CartesiaTTS(base_url=f"ws://127.0.0.1:{port}")
        with pytest.raises(ProviderConnectionError) as caught:
            await tts.open(MULAW_8K)
        assert caught.value.retryable
        await tts.aclose()

    asyncio.run(main())


def test_a_dropped_socket_fails_the_reply_and_the_next_one_reconnects() -> None:
    async def main() -> FakeCartesia:
        async with FakeCartesia(disconnect_after=2) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            with pytest.raises(ProviderConnectionError) as caught:
                await speak(stream, "A sentence long enough for several chunks.")
            assert caught.value.retryable
            await stream.aclose()
            server.disconnect_after = None
            again = await tts.open(MULAW_8K)
            assert by_text(await speak(again, "Back.")) == [audio_for("Back. ", MULAW)]
            await tts.aclose()
        return server

    assert len(asyncio.run(main()).connections) == 2


def test_a_stalled_context_times_out_and_a_slow_first_chunk_is_waited_for() -> None:
    async def main() -> None:
        async with FakeCartesia(stall=True) as server:
            tts = tts_for(server, read_timeout=0.2)
            stream = await tts.open(MULAW_8K)
            await stream.push_text("Hello.")
            with pytest.raises(ProviderTimeoutError, match="stalled") as caught:
                await anext(stream)
            assert caught.value.retryable
            await tts.aclose()
        async with FakeCartesia(first_audio_delay=0.1) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            assert by_text(await speak(stream, "Hi.")) == [audio_for("Hi. ", MULAW)]
            await tts.aclose()

    asyncio.run(main())


def test_bad_settings_and_formats_are_refused() -> None:
    with pytest.raises(ConfigError, match="max_buffer_delay_ms"):
        CartesiaTTS(max_buffer_delay_ms=6000)

    async def main() -> None:
        with pytest.raises(ConfigError, match="does not produce"):
            await CartesiaTTS().open(AudioFormat("alaw", 8000))

    asyncio.run(main())


def test_pings_keep_an_idle_socket_for_the_next_reply() -> None:
    async def main() -> FakeCartesia:
        async with FakeCartesia() as server:
            tts = tts_for(server, ping_interval=0.05)
            await tts.warm(MULAW_8K)
            await asyncio.sleep(0.3)  # several pings, each answered by the server's pong
            stream = await tts.open(MULAW_8K)
            assert by_text(await speak(stream, "Still here.")) == [audio_for("Still here. ", MULAW)]
            await tts.aclose()
        return server

    assert len(asyncio.run(main()).connections) == 1
