"""SmallestTTS against a fake Smallest AI Lightning TTS server on a real WebSocket."""

from __future__ import annotations

import asyncio

import pytest

from tests.providers.streams import by_text, speak
from voicecore.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderStatusError,
    ProviderStreamError,
    ProviderTimeoutError,
)
from voicecore.fakes.smallest import FakeSmallestTTS, audio_for, error_payload
from voicecore.providers.base import MULAW_8K, PCM16_16K, TTS, AudioChunk, AudioFormat
from voicecore.providers.smallest import SmallestTTS


def tts_for(server: FakeSmallestTTS, **kwargs: object) -> SmallestTTS:
    return SmallestTTS(voice_id="magnus", api_key="smallest-key", base_url=server.ws_url, **kwargs)  # type: ignore[arg-type]


def test_one_reply_in_mulaw_with_text_ends_and_word_times_on_the_reply_timeline() -> None:
    async def main() -> tuple[list[AudioChunk], FakeSmallestTTS]:
        async with FakeSmallestTTS() as server:
            tts = tts_for(server, speed=1.2, idle_timeout=120)
            assert isinstance(tts, TTS)
            assert tts.output_formats()[0] == MULAW_8K
            stream = await tts.open(MULAW_8K)
            chunks = await speak(stream, "Hello there.", "How are you?")
            await stream.aclose()
            await tts.aclose()
        return chunks, server

    chunks, server = asyncio.run(main())
    conn = server.connections[0]
    assert conn.headers["Authorization"] == "Bearer smallest-key"
    assert conn.query == {"timeout": "120"}
    fields = {
        "voice_id": "magnus",
        "model": "lightning_v3.1",
        "language": "en",
        "word_timestamps": True,
        "complete_backoff_ms": 0,
        "speed": 1.2,
        "sample_rate": 8000,
        "output_format": "ulaw",
        "continue": False,
        "flush": True,
    }
    texts = [(m.pop("text"), m.pop("request_id")) for m in conn.messages]
    assert conn.messages == [fields, fields]
    assert [text for text, _ in texts] == ["Hello there.", "How are you?"]
    assert len({request_id for _, request_id in texts}) == 2
    assert by_text(chunks) == [
        audio_for("Hello there.", "ulaw", 8000),
        audio_for("How are you?", "ulaw", 8000),
    ]
    # The second request's word times count from its own audio; the stream's, from the reply's.
    words = [(w.text, w.end_ms) for c in chunks for w in c.words]
    assert words == [("Hello", 50.0), ("there.", 120.0), ("How", 150.0), ("are", 190.0), ("you?", 240.0)]


def test_replies_share_one_warm_socket_in_linear_pcm() -> None:
    async def main() -> FakeSmallestTTS:
        async with FakeSmallestTTS(chunk_chars=100) as server:
            tts = tts_for(server)
            await tts.warm(PCM16_16K)
            assert len(server.connections) == 1, "connect() opened the socket before any reply"
            for text in ("One.", "Two.", "Three."):
                stream = await tts.open(PCM16_16K)
                assert by_text(await speak(stream, text)) == [audio_for(text, "pcm", 16000)]
                await stream.aclose()
            await tts.aclose()
        return server

    server = asyncio.run(main())
    assert len(server.connections) == 1
    assert {(m["output_format"], m["sample_rate"]) for m in server.connections[0].messages} == {
        ("pcm", 16000)
    }


def test_barge_in_drops_the_reply_and_swaps_the_socket_to_stop_the_servers_work() -> None:
    async def main() -> FakeSmallestTTS:
        async with FakeSmallestTTS(chunk_delay=0.05) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            await stream.push_text("A long sentence that the caller will interrupt right here.")
            await stream.push_text("And a second one that is never heard.")
            first = await anext(stream)
            assert first.audio
            await stream.aclose()
            await stream.aclose()  # twice is fine
            assert [chunk async for chunk in stream] == []
            await asyncio.wait_for(server.connections[0].closed.wait(), 5)
            again = await tts.open(MULAW_8K)
            assert by_text(await speak(again, "Yes?")) == [audio_for("Yes?", "ulaw", 8000)]
            await tts.aclose()
        return server

    server = asyncio.run(main())
    old, new = server.connections
    assert old.abandoned == 2, "closing the socket stopped both unfinished requests"
    assert old.completed == []
    assert [m["text"] for m in new.messages] == ["Yes?"]


def test_barge_in_after_the_audio_is_all_in_keeps_the_socket() -> None:
    async def main() -> FakeSmallestTTS:
        async with FakeSmallestTTS() as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            await speak(stream, "Short.")
            await stream.aclose()  # the caller cut in while it played: nothing is generating
            again = await tts.open(MULAW_8K)
            await speak(again, "Next.")
            await tts.aclose()
        return server

    assert len(asyncio.run(main()).connections) == 1


def test_a_server_that_does_not_echo_request_ids_still_works() -> None:
    async def main() -> list[AudioChunk]:
        async with FakeSmallestTTS(echo_request_id=False) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            chunks = await speak(stream, "One.", "Two.")
            await tts.aclose()
        return chunks

    assert by_text(asyncio.run(main())) == [audio_for("One.", "ulaw", 8000), audio_for("Two.", "ulaw", 8000)]


def test_keep_alives_hold_the_socket_open_past_the_idle_timeout() -> None:
    async def main() -> FakeSmallestTTS:
        async with FakeSmallestTTS() as server:
            tts = tts_for(server, idle_timeout=1, keepalive_interval=0.2)
            await tts.warm(MULAW_8K)
            await asyncio.sleep(1.5)
            stream = await tts.open(MULAW_8K)
            assert by_text(await speak(stream, "Still here.")) == [audio_for("Still here.", "ulaw", 8000)]
            await tts.aclose()
        return server

    server = asyncio.run(main())
    assert len(server.connections) == 1
    keepalives = [m for m in server.connections[0].messages if m.get("request_id") == "keepalive"]
    assert keepalives
    assert keepalives[0]["text"] == " "


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (error_payload("Invalid voice_id", "400"), False),
        (error_payload("Model overloaded", "503"), True),
        (error_payload("Unauthorized", nested=False), False),
    ],
)
def test_an_error_payload_fails_only_its_reply(error: dict[str, object], retryable: bool) -> None:
    async def main() -> None:
        async with FakeSmallestTTS(error=error) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            with pytest.raises(ProviderStreamError) as caught:
                await speak(stream, "Hello.")
            assert caught.value.retryable is retryable
            await stream.aclose()
            again = await tts.open(MULAW_8K)
            assert by_text(await speak(again, "Hi.")) == [audio_for("Hi.", "ulaw", 8000)]
            await tts.aclose()
            assert len(server.connections) == 1

    asyncio.run(main())


@pytest.mark.parametrize(("status", "retryable"), [(401, False), (503, True)])
def test_a_refused_handshake_is_a_status_error(status: int, retryable: bool) -> None:
    async def main() -> None:
        async with FakeSmallestTTS(handshake_status=status) as server:
            tts = tts_for(server)
            with pytest.raises(ProviderStatusError) as caught:
                await tts.open(MULAW_8K)
            assert (caught.value.status, caught.value.retryable) == (status, retryable)
            await tts.aclose()
        async with FakeSmallestTTS(api_key="other") as server:
            tts = tts_for(server)
            with pytest.raises(ProviderStatusError, match="401"):
                await tts.warm(MULAW_8K)
            await tts.aclose()

    asyncio.run(main())


def test_a_dropped_socket_fails_the_reply_and_the_next_one_reconnects() -> None:
    async def main() -> FakeSmallestTTS:
        async with FakeSmallestTTS(disconnect_after=2) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            with pytest.raises(ProviderConnectionError) as caught:
                await speak(stream, "A sentence long enough for several chunks.")
            assert caught.value.retryable
            await stream.aclose()
            server.disconnect_after = None
            again = await tts.open(MULAW_8K)
            assert by_text(await speak(again, "Back.")) == [audio_for("Back.", "ulaw", 8000)]
            await tts.aclose()
        return server

    assert len(asyncio.run(main()).connections) == 2


def test_a_stalled_request_times_out_and_a_slow_first_chunk_is_waited_for() -> None:
    async def main() -> None:
        async with FakeSmallestTTS(stall=True) as server:
            tts = tts_for(server, read_timeout=0.2)
            stream = await tts.open(MULAW_8K)
            await stream.push_text("Hello.")
            with pytest.raises(ProviderTimeoutError, match="stalled") as caught:
                await anext(stream)
            assert caught.value.retryable
            await tts.aclose()
        async with FakeSmallestTTS(first_audio_delay=0.1) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            assert by_text(await speak(stream, "Hi.")) == [audio_for("Hi.", "ulaw", 8000)]
            await tts.aclose()

    asyncio.run(main())


def test_bad_settings_and_formats_are_refused() -> None:
    with pytest.raises(ConfigError, match="keepalive_interval"):
        SmallestTTS(keepalive_interval=60)
    with pytest.raises(ConfigError, match="complete_backoff_ms"):
        SmallestTTS(complete_backoff_ms=20000)

    async def main() -> None:
        with pytest.raises(ConfigError, match="does not produce"):
            await SmallestTTS().open(AudioFormat("pcm16", 22050))

    asyncio.run(main())


def test_a_failed_background_redial_is_retried_by_the_next_reply() -> None:
    async def main() -> FakeSmallestTTS:
        async with FakeSmallestTTS(chunk_delay=0.05) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            await stream.push_text("A long sentence that the caller will interrupt right here.")
            await anext(stream)
            server.handshake_status = 503  # the successor's handshake fails
            await stream.aclose()
            with pytest.raises(ProviderStatusError) as caught:
                await tts.open(MULAW_8K)  # dials again, and is refused again
            assert caught.value.retryable
            server.handshake_status = None
            again = await tts.open(MULAW_8K)
            assert by_text(await speak(again, "Yes?")) == [audio_for("Yes?", "ulaw", 8000)]
            await tts.aclose()
        return server

    assert len(asyncio.run(main()).connections) == 2


def test_a_short_sentence_finished_first_is_still_spoken_second() -> None:
    async def main() -> list[AudioChunk]:
        async with FakeSmallestTTS(concurrent=True, chunk_delay=0.01) as server:
            tts = tts_for(server)
            stream = await tts.open(MULAW_8K)
            chunks = await speak(stream, "A much longer first sentence.", "Hi.")
            await tts.aclose()
            assert server.connections[0].completed[0].endswith(".2"), "the second request finished first"
        return chunks

    chunks = asyncio.run(main())
    first, second = audio_for("A much longer first sentence.", "ulaw", 8000), audio_for("Hi.", "ulaw", 8000)
    assert by_text(chunks) == [first, second]
    words = [(w.text, w.end_ms) for c in chunks for w in c.words]
    assert words[-1] == ("Hi.", 290.0 + 30.0), "the held request's word times start after the first"
