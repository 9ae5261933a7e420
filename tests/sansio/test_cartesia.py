"""Cartesia TTS WebSocket protocol, sans I/O: requests out, audio, text ends and word times in."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.errors import ConfigError, ProtocolError, ProviderConnectionError, ProviderStreamError
from voicecore.sansio.cartesia import CartesiaProtocol, auth_headers, output_format, websocket_url
from voicecore.sansio.ttsevents import ReplyAudio, ReplyDone, ReplyEvent, ReplyFailed

REQUEST = {
    "model_id": "sonic-3",
    "voice": {"mode": "id", "id": "v"},
    "output_format": {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000},
}


def chunk(context_id: str, audio: bytes, flush_id: int | None = None) -> str:
    message: dict[str, Any] = {
        "type": "chunk",
        "context_id": context_id,
        "data": base64.b64encode(audio).decode(),
        "done": False,
        "status_code": 206,
        "step_time": 1.0,
    }
    if flush_id is not None:
        message["flush_id"] = flush_id
    return json.dumps(message)


def flush_done(context_id: str, flush_id: int) -> str:
    return json.dumps(
        {
            "type": "flush_done",
            "context_id": context_id,
            "done": False,
            "flush_done": True,
            "flush_id": flush_id,
        }
    )


def done(context_id: str) -> str:
    return json.dumps({"type": "done", "context_id": context_id, "done": True, "status_code": 200})


def opened(*texts: str) -> CartesiaProtocol:
    protocol = CartesiaProtocol()
    protocol.open_context("c1", REQUEST)
    for text in texts:
        protocol.push_text("c1", text)
    return protocol


def test_url_formats_and_auth() -> None:
    assert websocket_url("wss://api.cartesia.ai/") == "wss://api.cartesia.ai/tts/websocket"
    assert output_format("mulaw", 8000) == {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
    assert output_format("pcm16", 24000)["encoding"] == "pcm_s16le"
    with pytest.raises(ConfigError, match="no raw output format"):
        output_format("pcm16", 11025)
    assert auth_headers("k", "2026-03-01") == {"Cartesia-Version": "2026-03-01", "Authorization": "Bearer k"}
    assert "Authorization" not in auth_headers(None)


def test_client_messages() -> None:
    protocol = CartesiaProtocol()
    protocol.open_context("c1", REQUEST)
    message, ended = protocol.push_text("c1", "Hello there.")
    assert ended == 0
    assert message is not None
    assert json.loads(message) == {
        **REQUEST,
        "context_id": "c1",
        "transcript": "Hello there. ",  # joined verbatim with the next one, so the space is ours
        "continue": True,
        "flush": True,
    }
    last = protocol.end_input("c1")
    assert last is not None
    assert json.loads(last) == {**REQUEST, "context_id": "c1", "transcript": "", "continue": False}
    cancel = protocol.cancel("c1")
    assert cancel is not None
    assert json.loads(cancel) == {"context_id": "c1", "cancel": True}
    assert protocol.cancel("c1") is None
    with pytest.raises(ProtocolError, match="already used"):
        protocol.open_context("c1", REQUEST)  # a context id is never reused
    with pytest.raises(ProtocolError, match="not open"):
        protocol.push_text("c1", "Hi.")


def test_flush_ids_mark_where_each_text_ends() -> None:
    protocol = opened("One.", "Two.")
    assert protocol.texts_pending("c1") == 2
    assert protocol.receive_text(chunk("c1", b"\x01" * 4, 1)) == [ReplyAudio("c1", b"\x01" * 4)]
    assert protocol.receive_text(flush_done("c1", 1)) == [ReplyAudio("c1", texts_done=1)]
    assert protocol.texts_pending("c1") == 1
    # A chunk of the next flush would have ended it too; here flush_done 2 is skipped.
    protocol.push_text("c1", "Three.")
    assert protocol.receive_text(chunk("c1", b"\x02", 2)) == [ReplyAudio("c1", b"\x02")]
    assert protocol.receive_text(chunk("c1", b"\x03", 3)) == [ReplyAudio("c1", b"\x03", texts_done=1)]
    assert protocol.receive_text(done("c1")) == [ReplyAudio("c1", texts_done=1), ReplyDone("c1")]
    assert protocol.texts_pending("c1") == 0
    assert protocol.receive_text(chunk("c1", b"\x04", 3)) == [], "nothing after done"


def test_a_text_with_nothing_to_say_ends_with_the_one_before_it() -> None:
    protocol = opened()
    assert protocol.push_text("c1", "  ") == (None, 1)  # nothing before it: ended at once
    protocol.push_text("c1", "One.")
    assert protocol.push_text("c1", " ") == (None, 0)
    assert protocol.receive_text(flush_done("c1", 1)) == [ReplyAudio("c1", texts_done=2)]


def test_word_timestamps_become_word_end_times_in_ms() -> None:
    protocol = opened("Hello there.")
    message = {
        "type": "timestamps",
        "context_id": "c1",
        "done": False,
        "status_code": 206,
        "flush_id": 1,
        "word_timestamps": {
            "words": ["Hello", "there.", 3],
            "start": [0.0, 0.42, 1],
            "end": [0.38, 0.8, 1.0],
        },
    }
    assert protocol.receive_text(json.dumps(message)) == [
        ReplyAudio("c1", words=(("Hello", 380.0), ("there.", 800.0)))
    ]


def test_a_cancelled_context_drops_late_chunks_and_its_errors() -> None:
    protocol = opened("A long sentence.")
    protocol.cancel("c1")
    assert protocol.receive_text(chunk("c1", b"\x01", 1)) == []
    assert protocol.receive_text(json.dumps({"type": "error", "context_id": "c1", "status_code": 400})) == []
    assert protocol.receive_text(chunk("other", b"\x01")) == [], "unknown contexts are ignored"


def test_errors_in_both_shapes_map_to_provider_errors() -> None:
    protocol = opened("Hi.")
    new = {
        "type": "error",
        "context_id": "c1",
        "done": True,
        "status_code": 400,
        "title": "Invalid request",
        "message": "voice not found",
        "error_code": "voice_not_found",
        "request_id": "req-1",
    }
    [failed] = protocol.receive_text(json.dumps(new))
    assert isinstance(failed, ReplyFailed)
    assert failed.key == "c1"
    error = failed.error
    assert isinstance(error, ProviderStreamError)
    assert not error.retryable
    assert (error.status, error.request_id) == (400, "req-1")
    assert "Invalid request: voice not found (voice_not_found)" in str(error)
    assert protocol.texts_pending("c1") == 0, "the context is over"
    # The older shape, a server error, without a context: it concerns the socket.
    with pytest.raises(ProviderStreamError, match="overloaded") as caught:
        protocol.receive_text(
            json.dumps({"type": "error", "done": True, "status_code": 503, "error": "overloaded"})
        )
    assert caught.value.retryable
    assert caught.value.status == 503


def test_malformed_messages_and_closes() -> None:
    protocol = opened("Hi.")
    with pytest.raises(ProtocolError):
        protocol.receive_text("not json")
    with pytest.raises(ProtocolError):
        protocol.receive_text("[1]")
    with pytest.raises(ProtocolError, match="base64"):
        protocol.receive_text(json.dumps({"type": "chunk", "context_id": "c1", "data": "@@@"}))
    assert protocol.receive_text(json.dumps({"type": "phoneme_timestamps", "context_id": "c1"})) == []
    assert isinstance(protocol.receive_close(1006, ""), ProviderConnectionError)
    refused = protocol.receive_close(1008, "policy")
    assert refused is not None
    assert not refused.retryable
    protocol.closing = True
    assert protocol.receive_close(1000, "") is None


def segments(events: list[ReplyEvent], count: int) -> list[bytes]:
    """Each text's audio, cut where the events say a text ended."""
    spoken = [b""] * (count + 1)
    index = 0
    for event in events:
        if isinstance(event, ReplyAudio):
            index += event.texts_done
            spoken[index] += event.audio
    assert index == count, "every text ended"
    return spoken[:count]


@given(
    texts=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=5),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    skip_flush_done=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_any_chunking_gives_each_text_exactly_its_audio(
    texts: list[bytes], cuts: list[int], skip_flush_done: list[bool]
) -> None:
    protocol = opened(*(f"Text {i}." for i in range(len(texts))))
    events: list[ReplyEvent] = []
    for flush_id, audio in enumerate(texts, start=1):
        position, turn = 0, 0
        while position < len(audio):
            size = cuts[turn % len(cuts)]
            events += protocol.receive_text(chunk("c1", audio[position : position + size], flush_id))
            position, turn = position + size, turn + 1
        if not skip_flush_done[flush_id - 1]:
            events += protocol.receive_text(flush_done("c1", flush_id))
    events += protocol.receive_text(done("c1"))
    assert segments(events, len(texts)) == texts
    assert events[-1] == ReplyDone("c1")
