"""ElevenLabsTTS against a fake multi-stream-input server on a real WebSocket."""

from __future__ import annotations

import asyncio

import pytest

from tests.providers.streams import speak
from voicecore.errors import ConfigError, ProviderError, ProviderStreamError, ProviderTimeoutError
from voicecore.fakes.elevenlabs import FakeElevenLabs, audio_for
from voicecore.providers.base import MULAW_8K, PCM16_16K, TTS, AudioChunk, AudioFormat
from voicecore.providers.elevenlabs import ElevenLabsTTS


def tts_for(server: FakeElevenLabs, **kwargs: object) -> ElevenLabsTTS:
    return ElevenLabsTTS(voice_id="voice-1", api_key="xi-key", base_url=server.ws_url, **kwargs)  # type: ignore[arg-type]


def test_one_reply_in_mulaw_for_the_phone_with_text_ends_and_word_times() -> None:
    async def main() -> tuple[list[AudioChunk], FakeElevenLabs]:
        async with FakeElevenLabs() as server:
            tts = tts_for(
                server, voice_settings={"stability": 0.5}, generation_config={"chunk_length_schedule": [50]}
            )
            assert isinstance(tts, TTS)
            assert tts.output_formats()[0] == MULAW_8K
            stream = await tts.open(MULAW_8K)
            chunks = await speak(stream, "Hello there.", "How are you?")
            await stream.aclose()
            await asyncio.wait_for(server.context_closed.wait(), 5)
            await tts.aclose()
        return chunks, server

    chunks, server = asyncio.run(main())
    conn = server.connections[0]
    assert conn.query == {"model_id": "eleven_flash_v2_5", "output_format": "ulaw_8000"}
    assert conn.headers["xi-api-key"] == "xi-key"
    [(context_id, init)] = conn.contexts.items()
    assert init == {
        "text": " ",
        "context_id": context_id,
        "voice_settings": {"stability": 0.5},
        "generation_config": {"chunk_length_schedule": [50]},
    }
    assert conn.messages[1:] == [
        {"text": "Hello there. ", "context_id": context_id, "flush": True},
        {"text": "How are you? ", "context_id": context_id, "flush": True},
        {"context_id": context_id, "close_context": True},
        {"close_socket": True},
    ]
    # The fake's audio spells the text; a sentence's audio ends at the chunk marked end_of_text.
    ends = [i for i, chunk in enumerate(chunks) if chunk.end_of_text]
    assert len(ends) == 2
    first = b"".join(c.audio for c in chunks[: ends[0] + 1])
    assert first == audio_for("Hello there.", "ulaw_8000")
    words = [(w.text, w.end_ms) for c in chunks for w in c.words]
    assert words == [("Hello", 50.0), ("there.", 120.0), ("How", 160.0), ("are", 200.0), ("you?", 250.0)]


def test_each_reply_gets_its_own_context_on_one_warm_socket() -> None:
    async def main() -> FakeElevenLabs:
        async with FakeElevenLabs(chunk_chars=100) as server:  # one audio message per sentence
            tts = tts_for(server)
            await tts.warm(PCM16_16K)
            for text in ("One.", "Two.", "Three."):
                stream = await tts.open(PCM16_16K)
                chunks = await speak(stream, text)
                await stream.aclose()
                assert b"".join(c.audio for c in chunks) == audio_for(text + " ", "pcm_16000")
            await tts.aclose()
        return server

    server = asyncio.run(main())
    assert len(server.connections) == 1, "replies reuse the socket opened by connect()"
    conn = server.connections[0]
    assert len(conn.contexts) == 3
    assert conn.closed_contexts == list(conn.contexts)
    assert conn.messages[-1] == {"close_socket": True}


def test_barge_in_closes_the_context_and_drops_its_late_audio() -> None:
    async def main() -> FakeElevenLabs:
        async with FakeElevenLabs() as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            await stream.push_text("A long sentence that the caller will interrupt.")
            first = await anext(stream)
            assert first.audio
            await stream.aclose()
            await stream.aclose()  # twice is fine
            assert [chunk async for chunk in stream] == []
            await asyncio.wait_for(server.context_closed.wait(), 5)
            # The socket is still good for the next reply.
            again = await tts.open(MULAW_8K)
            chunks = await speak(again, "Yes?")
            await again.aclose()
            await tts.aclose()
            assert b"".join(c.audio for c in chunks) == audio_for("Yes?", "ulaw_8000")
        return server

    server = asyncio.run(main())
    assert len(server.connections) == 1
    assert len(server.connections[0].closed_contexts) == 2


def test_nothing_to_say_still_ends_the_text() -> None:
    async def main() -> list[AudioChunk]:
        async with FakeElevenLabs() as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            chunks = await speak(stream, "  ")
            await stream.aclose()
            await tts.aclose()
        return chunks

    assert asyncio.run(main()) == [AudioChunk(b"", end_of_text=True)]


def test_keepalive_while_idle() -> None:
    async def main() -> None:
        async with FakeElevenLabs() as server:
            tts = tts_for(server, keepalive_interval=0.05)
            stream = await tts.open(MULAW_8K)
            await asyncio.wait_for(server.keepalive_received.wait(), 5)
            context_id = stream.context_id  # type: ignore[attr-defined]
            assert {"text": "", "context_id": context_id} in server.connections[0].messages
            await stream.aclose()
            await tts.aclose()

    asyncio.run(main())


def test_a_sixth_context_fails_every_stream_on_the_socket() -> None:
    async def main() -> None:
        async with FakeElevenLabs() as server:
            tts = tts_for(server)
            streams = [await tts.open(MULAW_8K) for _ in range(6)]
            with pytest.raises(ProviderStreamError, match="close a context before opening another") as caught:
                await anext(streams[0])
            assert not caught.value.retryable
            for stream in streams:
                await stream.aclose()
            # The next open reconnects.
            stream = await tts.open(MULAW_8K)
            await stream.aclose()
            await tts.aclose()
        assert len(server.connections) == 2

    asyncio.run(main())


def test_a_bad_key_is_a_final_error() -> None:
    async def main() -> None:
        async with FakeElevenLabs(api_key="right") as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            with pytest.raises(ProviderStreamError, match="Invalid API key") as caught:
                await speak(stream, "Hello.")
            assert not caught.value.retryable
            await stream.aclose()
            await tts.aclose()

    asyncio.run(main())


def test_a_stalled_context_times_out() -> None:
    async def main() -> None:
        async with FakeElevenLabs(stall=True) as server:
            tts = tts_for(server, read_timeout=0.2)
            stream = await tts.open(MULAW_8K)
            await stream.push_text("Hello.")
            with pytest.raises(ProviderTimeoutError, match="stalled") as caught:
                await anext(stream)
            assert caught.value.retryable
            await stream.aclose()
            await tts.aclose()

    asyncio.run(main())


def test_the_server_closing_for_inactivity_is_retryable() -> None:
    async def main() -> None:
        async with FakeElevenLabs() as server:
            tts = tts_for(server, params={"inactivity_timeout": "0.1"}, keepalive_interval=30)
            stream = await tts.open(MULAW_8K)
            with pytest.raises(ProviderError, match="timeout") as caught:
                await anext(stream)
            assert caught.value.retryable
            await stream.aclose()
            await tts.aclose()

    asyncio.run(main())


def test_formats_it_cannot_make_are_refused() -> None:
    async def main() -> None:
        with pytest.raises(ConfigError, match="does not produce"):
            await ElevenLabsTTS(voice_id="v").open(AudioFormat("pcm16", 48000))

    asyncio.run(main())
