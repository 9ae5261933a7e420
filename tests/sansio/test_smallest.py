"""Smallest AI Lightning TTS WebSocket protocol, sans I/O: one request per text, ended by complete."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.errors import ConfigError, ProtocolError, ProviderConnectionError, ProviderStreamError
from voicecore.sansio.smallest import LightningProtocol, auth_headers, output_format, tts_url
from voicecore.sansio.ttsevents import ReplyAudio, ReplyEvent, ReplyFailed

REQUEST = {"voice_id": "magnus", "model": "lightning_v3.1", "sample_rate": 8000, "output_format": "ulaw"}


def message(request_id: str | None, status: str, **data: Any) -> str:
    body: dict[str, Any] = {"session_id": "ws_1", "request_id": "task_1", "status": status, "data": data}
    if request_id is not None:
        body["external_request_id"] = request_id
    return json.dumps(body)


def chunk(request_id: str | None, audio: bytes) -> str:
    return message(request_id, "chunk", audio=base64.b64encode(audio).decode())


def word(request_id: str | None, text: str, end: float) -> str:
    return message(request_id, "word_timestamp", id=0, word=text, start=0.0, end=end)


def opened(*texts: str) -> tuple[LightningProtocol, list[str]]:
    """A protocol (8 bytes per ms) with reply r1 and the request ids of ``texts``."""
    protocol = LightningProtocol(request=REQUEST, bytes_per_ms=8)
    protocol.open_reply("r1")
    ids = []
    for text in texts:
        sent, _ = protocol.push_text("r1", text)
        assert sent is not None
        ids.append(json.loads(sent)["request_id"])
    return protocol, ids


def test_url_formats_and_auth() -> None:
    assert tts_url("wss://api.smallest.ai/") == "wss://api.smallest.ai/waves/v1/tts/live"
    assert tts_url("wss://h", timeout=120) == "wss://h/waves/v1/tts/live?timeout=120"
    assert output_format("mulaw", 8000) == "ulaw"
    assert output_format("pcm16", 24000) == "pcm"
    with pytest.raises(ConfigError, match="no raw output format"):
        output_format("pcm16", 22050)
    assert auth_headers("k") == {"Authorization": "Bearer k"}
    assert auth_headers(None) == {}


def test_each_text_is_one_request_with_its_own_id() -> None:
    protocol = LightningProtocol(request=REQUEST, bytes_per_ms=8)
    protocol.open_reply("r1")
    first, ended = protocol.push_text("r1", " Hello there. ")
    assert ended == 0
    assert first is not None
    assert json.loads(first) == {
        **REQUEST,
        "text": "Hello there.",
        "continue": False,
        "flush": True,
        "request_id": "r1.1",
    }
    second, _ = protocol.push_text("r1", "Bye.")
    assert second is not None
    assert json.loads(second)["request_id"] == "r1.2"
    assert protocol.in_flight == 2
    with pytest.raises(ProtocolError, match="not open"):
        protocol.push_text("r2", "Hi.")


def test_complete_ends_a_text_and_word_times_move_onto_the_reply_timeline() -> None:
    protocol, (one, two) = opened("One two.", "Three.")
    assert protocol.receive_text(chunk(one, b"\x01" * 80)) == [ReplyAudio("r1", b"\x01" * 80)]
    assert protocol.receive_text(word(one, "two.", 0.01)) == [ReplyAudio("r1", words=(("two.", 10.0),))]
    assert protocol.receive_text(message(one, "complete")) == [ReplyAudio("r1", texts_done=1)]
    assert protocol.receive_text(chunk(two, b"\x02" * 8)) == [ReplyAudio("r1", b"\x02" * 8)]
    # Request two's times count from its own audio, which starts 10 ms into the reply.
    assert protocol.receive_text(word(two, "Three.", 0.001)) == [ReplyAudio("r1", words=(("Three.", 11.0),))]
    assert protocol.receive_text(message(two, "complete")) == [ReplyAudio("r1", texts_done=1)]
    assert protocol.texts_pending("r1") == 0
    assert protocol.in_flight == 0


def test_a_later_requests_early_audio_waits_for_the_ones_before_it() -> None:
    protocol, (one, two) = opened("One.", "Two.")
    assert protocol.receive_text(chunk(two, b"\x02" * 8)) == []
    assert protocol.receive_text(word(two, "Two.", 0.001)) == []
    assert protocol.receive_text(message(two, "complete")) == []
    assert protocol.receive_text(chunk(one, b"\x01" * 16)) == [ReplyAudio("r1", b"\x01" * 16)]
    assert protocol.receive_text(message(one, "complete")) == [
        ReplyAudio("r1", b"\x02" * 8, texts_done=1),
        ReplyAudio("r1", words=(("Two.", 3.0),)),
        ReplyAudio("r1", texts_done=1),
    ]


def test_a_text_with_nothing_to_say_ends_with_the_one_before_it() -> None:
    protocol, (one,) = opened("One.")
    assert protocol.push_text("r1", " ") == (None, 0)
    assert protocol.texts_pending("r1") == 2
    assert protocol.receive_text(message(one, "complete")) == [ReplyAudio("r1", texts_done=2)]
    assert protocol.push_text("r1", "") == (None, 1)  # nothing before it: ended at once


def test_a_dropped_reply_loses_its_late_audio() -> None:
    protocol, (one, two) = opened("One.", "Two.")
    assert protocol.drop("r1") == 2
    assert protocol.receive_text(chunk(one, b"\x01")) == []
    assert protocol.receive_text(message(one, "complete")) == []
    assert protocol.in_flight == 1
    assert protocol.drop("r1") == 0
    assert protocol.keep_alive() == [], "no keep-alive while a request is in flight"
    protocol.receive_text(message(two, "complete"))
    [alive] = protocol.keep_alive()
    assert json.loads(alive) == {**REQUEST, "text": " ", "request_id": "keepalive"}
    assert protocol.receive_text(message("keepalive", "complete")) == []
    refused = {"status": "error", "external_request_id": "keepalive", "error": {"message": "empty text"}}
    assert protocol.receive_text(json.dumps(refused)) == [], "a refused keep-alive fails nothing"


def test_a_server_that_does_not_echo_request_ids_is_read_oldest_first() -> None:
    protocol, _ = opened("One.", "Two.")
    assert protocol.receive_text(chunk(None, b"\x01")) == [ReplyAudio("r1", b"\x01")]
    assert protocol.receive_text(message(None, "complete")) == [ReplyAudio("r1", texts_done=1)]
    assert protocol.receive_text(chunk(None, b"\x02")) == [ReplyAudio("r1", b"\x02")]


def test_errors_map_to_provider_errors() -> None:
    protocol, (one,) = opened("One.")
    error = json.dumps(
        {"status": "error", "external_request_id": one, "error": {"message": "Bad", "code": "401"}}
    )
    [failed] = protocol.receive_text(error)
    assert isinstance(failed, ReplyFailed)
    assert isinstance(failed.error, ProviderStreamError)
    assert (failed.error.retryable, failed.error.status) == (False, 401)
    assert protocol.texts_pending("r1") == 0, "the reply is dropped"
    with pytest.raises(ProviderConnectionError, match="inactivity"):
        protocol.receive_text(
            json.dumps({"status": "error", "message": "Connection timed out after 60 seconds of inactivity"})
        )
    with pytest.raises(ProviderStreamError) as caught:
        protocol.receive_text(json.dumps({"status": "error", "error": {"message": "Invalid voice_id"}}))
    assert not caught.value.retryable
    with pytest.raises(ProviderStreamError) as caught:
        protocol.receive_text(
            json.dumps({"status": "error", "error": {"message": "Model busy", "code": "503"}})
        )
    assert caught.value.retryable


def test_malformed_messages_and_closes() -> None:
    protocol, (one,) = opened("One.")
    with pytest.raises(ProtocolError):
        protocol.receive_text("not json")
    with pytest.raises(ProtocolError, match="base64"):
        protocol.receive_text(message(one, "chunk", audio="@@"))
    assert protocol.receive_text(message(one, "word_timestamp", word=3)) == [], "a malformed word is skipped"
    assert isinstance(protocol.receive_close(1006, ""), ProviderConnectionError)
    protocol.closing = True
    assert protocol.receive_close(1000, "") is None


@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4),
    order=st.randoms(use_true_random=False),
    cut=st.integers(1, 12),
)
def test_any_interleaving_gives_each_text_its_audio_and_word_times(
    sizes: list[int], order: Any, cut: int
) -> None:
    protocol, ids = opened(*(f"Text {i}." for i in range(len(sizes))))
    # Each request: chunks of its audio, a word ending with it, complete. Requests interleave
    # at random, but each one's own messages stay in order.
    queues = []
    for index, (request_id, size) in enumerate(zip(ids, sizes, strict=True)):
        audio = bytes([index + 1]) * (size * 8)
        pieces = [chunk(request_id, audio[i : i + cut]) for i in range(0, len(audio), cut)]
        queues.append([*pieces, word(request_id, f"w{index}", size / 1000), message(request_id, "complete")])
    events: list[ReplyEvent] = []
    while any(queues):
        queue = order.choice([q for q in queues if q])
        events += protocol.receive_text(queue.pop(0))
    spoken = [b""] * (len(sizes) + 1)
    words: list[tuple[str, float]] = []
    index = 0
    for event in events:
        assert isinstance(event, ReplyAudio)
        index += event.texts_done
        spoken[index] += event.audio
        words += event.words
    assert spoken[:-1] == [bytes([i + 1]) * (size * 8) for i, size in enumerate(sizes)]
    ends = [float(sum(sizes[: i + 1])) for i in range(len(sizes))]
    assert words == [(f"w{i}", end) for i, end in enumerate(ends)]
