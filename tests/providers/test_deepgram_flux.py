"""DeepgramFluxSTT against the fake /v2/listen server on a real WebSocket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from tests.providers.streams import read_while_feeding
from voicecore.errors import ConfigError, ProviderStatusError, ProviderStreamError
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.providers.base import MULAW_8K, STT, TranscriptUpdate
from voicecore.providers.deepgram_flux import DeepgramFluxStream, DeepgramFluxSTT

FRAME = b"\xff" * 160  # 20 ms of μ-law


async def transcribe(
    server: FakeDeepgram,
    feed: Callable[[DeepgramFluxStream], Awaitable[None]],
    *,
    expect: int = 0,
    finals: int = 0,
    **kwargs: object,
) -> tuple[list[TranscriptUpdate], DeepgramFluxStream]:
    """Feed a stream, read until ``expect`` updates (or ``finals`` final ones) arrived, then close it."""
    stt = DeepgramFluxSTT(api_key="dg-key", base_url=server.ws_url, **kwargs)  # type: ignore[arg-type]
    stream = await stt.open(MULAW_8K, language="en")
    return await read_while_feeding(stt, stream, feed, expect=expect, finals=finals), stream


async def frames(stream: DeepgramFluxStream, count: int) -> None:
    for _ in range(count):
        await stream.push_audio(FRAME)


def test_turn_events_become_interim_eager_and_final_updates() -> None:
    async def main() -> tuple[list[TranscriptUpdate], DeepgramFluxStream, FakeDeepgram]:
        script = [Utterance("Book a table for two.", 4000), Utterance("At eight.", 1600, eager=False)]
        async with FakeDeepgram(script) as server:
            updates, stream = await transcribe(
                server, lambda s: frames(s, 40), expect=6, eager_eot_threshold=0.5, keyterms=("Luigi",)
            )
        return updates, stream, server

    updates, stream, server = asyncio.run(main())
    assert DeepgramFluxSTT().input_formats()[0] == MULAW_8K
    assert isinstance(DeepgramFluxSTT(), STT)
    conn = server.connections[0]
    assert conn.query["model"] == "flux-general-en"
    assert (conn.query["encoding"], conn.query["sample_rate"]) == ("mulaw", "8000")
    assert conn.query["eager_eot_threshold"] == "0.5"
    assert conn.keyterms == ["Luigi"]
    assert conn.headers["Authorization"] == "Token dg-key"
    assert bytes(conn.audio) == FRAME * 40, "every byte pushed reaches the server, unchanged"
    assert conn.controls == [{"type": "CloseStream"}]
    words = [(u.text, u.final, u.end_of_turn, u.eager) for u in updates]
    assert words == [
        ("Book", False, False, False),  # StartOfTurn: the first word (barge-in material)
        ("Book a", False, False, False),  # Update
        ("Book a table for two.", False, False, True),  # EagerEndOfTurn
        ("Book a table for two.", True, True, False),  # EndOfTurn: the same words
        ("At", False, False, False),
        ("At eight.", True, True, False),  # no eager event for this one
    ]
    assert updates[3].confidence == pytest.approx(0.97)
    assert stream.turn_index == 1
    assert stream.request_id == server.request_id


def test_a_resumed_turn_comes_out_as_an_interim_after_the_eager_one() -> None:
    async def main() -> list[TranscriptUpdate]:
        async with FakeDeepgram([Utterance("Book a table for two please.", 4000, resumes=True)]) as server:
            updates, _ = await transcribe(server, lambda s: frames(s, 25), expect=5, eager_eot_threshold=0.4)
        return updates

    updates = asyncio.run(main())
    assert [(u.text, u.final, u.eager) for u in updates] == [
        ("Book", False, False),
        ("Book a table", False, True),  # EagerEndOfTurn halfway
        ("Book a table", False, False),  # TurnResumed (the next Update, unchanged, is not repeated)
        ("Book a table for two please.", False, True),
        ("Book a table for two please.", True, False),
    ]


def test_unchanged_updates_and_silence_are_not_repeated() -> None:
    async def main() -> list[TranscriptUpdate]:
        async with FakeDeepgram([Utterance("Hi.", 160)]) as server:
            updates, _ = await transcribe(server, lambda s: frames(s, 100), expect=2)
        return updates

    updates = asyncio.run(main())
    assert [(u.text, u.final) for u in updates] == [("Hi.", False), ("Hi.", True)]


def test_a_retryable_error_reconnects_and_replays_the_turn_in_progress() -> None:
    async def main() -> tuple[list[TranscriptUpdate], DeepgramFluxStream, FakeDeepgram]:
        script = [Utterance("Hello.", 800), Utterance("Book a table for two.", 3200)]
        async with FakeDeepgram(
            script, close_after_bytes=1600, error_code="INTERNAL_SERVER_ERROR", close_with=(1011, "")
        ) as server:
            updates, stream = await transcribe(server, lambda s: frames(s, 30), finals=2)
        return updates, stream, server

    updates, stream, server = asyncio.run(main())
    finals = [u.text for u in updates if u.final]
    assert finals == ["Hello.", "Book a table for two."]
    ends = [u.audio_end for u in updates if u.final]
    assert ends[0] == pytest.approx(0.1), "seconds since the stream's first byte"
    assert ends[1] is not None
    assert ends[1] > 0.1 + 3200 / 8000 - 0.01, "not reset by the reconnect"
    assert stream.reconnects == 1
    first, second = server.connections
    # The first socket heard "Hello." (800 bytes, settled by its EndOfTurn) and 800 more bytes
    # of the next turn: only those are replayed.
    assert bytes(second.audio[:800]) == bytes(first.audio[800:1600])
    assert len(first.audio) + len(second.audio) - 800 == 30 * 160, "no caller audio lost"
    assert stream.gap_seconds == 0


def test_a_final_error_ends_the_stream_with_a_message() -> None:
    async def main() -> None:
        async with FakeDeepgram(
            ["Hello there."], close_after_bytes=320, error_code="INVALID_AUDIO"
        ) as server:
            with pytest.raises(ProviderStreamError, match="INVALID_AUDIO") as caught:
                await transcribe(server, lambda s: frames(s, 10), expect=99)
        assert not caught.value.retryable
        assert caught.value.provider == "deepgram-flux"

    asyncio.run(main())


def test_configure_changes_the_thresholds_mid_call(caplog: pytest.LogCaptureFixture) -> None:
    async def feed(stream: DeepgramFluxStream) -> None:
        await stream.configure(eot_threshold=0.85, eager_eot_threshold=0.4, keyterms=["Luigi"])
        with pytest.raises(ConfigError):
            await stream.configure(eot_threshold=0.95)  # refused before it is sent
        await stream.configure(eot_timeout_ms=1000)
        await frames(stream, 20)

    async def main() -> tuple[list[TranscriptUpdate], DeepgramFluxStream, FakeDeepgram]:
        async with FakeDeepgram([Utterance("Hello.", 1600)]) as server:
            updates, stream = await transcribe(server, feed, expect=3)
        return updates, stream, server

    with caplog.at_level(logging.WARNING):
        updates, stream, server = asyncio.run(main())
    assert stream.thresholds == {"eot_threshold": 0.85, "eager_eot_threshold": 0.4, "eot_timeout_ms": 1000}
    assert server.connections[0].controls[0] == {
        "type": "Configure",
        "thresholds": {"eot_threshold": 0.85, "eager_eot_threshold": 0.4},
        "keyterms": ["Luigi"],
    }
    assert [u.eager for u in updates] == [False, True, False], "eager events start once configured"


def test_a_refused_configure_is_logged_and_the_stream_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async def feed(stream: DeepgramFluxStream) -> None:
        # Past the client's check (it is sent raw), as a newer server might refuse a value.
        await stream._ws.send_str('{"type":"Configure","thresholds":{"eot_threshold":2}}')
        await frames(stream, 20)

    async def main() -> list[TranscriptUpdate]:
        async with FakeDeepgram([Utterance("Hello.", 1600)]) as server:
            updates, _ = await transcribe(server, feed, expect=2)
        return updates

    with caplog.at_level(logging.WARNING):
        updates = asyncio.run(main())
    assert (updates[-1].text, updates[-1].final, updates[-1].end_of_turn) == ("Hello.", True, True)
    assert "refused a Configure: eot_threshold must be between 0.5 and 0.9" in caplog.text


def test_handshake_refusals_and_bad_settings() -> None:
    async def main() -> None:
        async with FakeDeepgram() as server:
            stt = DeepgramFluxSTT(api_key="wrong", base_url=server.ws_url)
            with pytest.raises(ProviderStatusError) as caught:
                await stt.open(MULAW_8K, language="en")
            assert caught.value.status == 401
            await stt.aclose()
            stt = DeepgramFluxSTT(api_key="dg-key", base_url=server.ws_url, model="nova-3")
            with pytest.raises(ProviderStatusError) as caught:
                await stt.open(MULAW_8K, language="en")
            assert caught.value.status == 400
            await stt.aclose()

    asyncio.run(main())
    multi = DeepgramFluxSTT(model="flux-general-multi")
    assert "language_hint=es" in multi.url(MULAW_8K, "es-ES")
    assert "language_hint" not in multi.url(MULAW_8K, "multi")
    assert "language_hint" not in DeepgramFluxSTT().url(MULAW_8K, "es-ES"), "English-only: no hint"
    with pytest.raises(ConfigError, match="eager_eot_threshold must not exceed"):
        DeepgramFluxSTT(eot_threshold=0.6, eager_eot_threshold=0.8)
