"""Smallest AI Pulse live STT protocol, sans I/O: URL, control messages, messages, closes."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from voicecore.errors import ProtocolError, ProviderConnectionError, ProviderStreamError
from voicecore.sansio.smallest_pulse import (
    PulseProtocol,
    SpeechEnded,
    SpeechStarted,
    Transcription,
    auth_headers,
    pulse_url,
)


def test_telephony_url_passes_mulaw_through() -> None:
    url = pulse_url(
        "wss://api.smallest.ai/",
        language="en",
        encoding="mulaw",
        sample_rate=8000,
        extra={"keywords": "Luigi:2"},
    )
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("api.smallest.ai", "/waves/v1/stt/live")
    assert {k: v[0] for k, v in parse_qs(parts.query).items()} == {
        "model": "pulse",
        "language": "en",
        "encoding": "mulaw",
        "sample_rate": "8000",
        "vad_events": "true",
        "word_timestamps": "true",
        "keywords": "Luigi:2",
    }
    assert auth_headers("k") == {"Authorization": "Bearer k"}
    assert auth_headers(None) == {}


def test_control_messages() -> None:
    protocol = PulseProtocol()
    assert protocol.send_audio(b"\xff", 0.0) == b"\xff"
    assert protocol.send_audio(b"", 0.0) is None
    assert json.loads(protocol.send_finalize(0.0)) == {"type": "finalize"}
    assert protocol.keepalive_at(0.0) is None
    assert json.loads(protocol.send_close_stream()) == {"type": "close_stream"}


def test_messages_become_events() -> None:
    protocol = PulseProtocol()
    final = {
        "type": "transcription",
        "status": "success",
        "transcription": "Hi, how are you",
        "transcript": "Hi, how are you",
        "is_final": True,
        "is_last": False,
        "from_finalize": True,
        "session_id": "s1",
        "words": [
            {"word": "Hi,", "start": 0.1, "end": 0.3, "confidence": 0.9},
            {"word": "you", "start": 1.0, "end": 1.4, "confidence": 0.7},
        ],
    }
    [event] = protocol.receive_text(json.dumps(final))
    assert isinstance(event, Transcription)
    assert (event.text, event.is_final, event.is_last, event.from_finalize, event.end) == (
        "Hi, how are you",
        True,
        False,
        True,
        1.4,
    )
    assert event.confidence == pytest.approx(0.8)
    assert protocol.request_id == "s1"
    legacy = protocol.receive_text('{"type":"transcription","transcription":"old field","is_last":true}')
    assert legacy == [Transcription("old field", is_final=True, is_last=True)], "is_last implies final"
    assert protocol.receive_text('{"type":"speech_started","timestamp":1.84}') == [SpeechStarted(1.84)]
    assert protocol.receive_text('{"type":"speech_ended","timestamp":4.52}') == [SpeechEnded(4.52)]
    assert protocol.receive_text('{"type":"something_new"}') == []


def test_errors_and_bad_json() -> None:
    protocol = PulseProtocol()
    with pytest.raises(ProviderStreamError, match="error: Invalid audio") as caught:
        protocol.receive_text('{"type":"error","status":"error","message":"Invalid audio"}')
    assert not caught.value.retryable
    with pytest.raises(ProtocolError):
        protocol.receive_text("{")
    with pytest.raises(ProtocolError):
        protocol.receive_text('"x"')


def test_close_codes() -> None:
    protocol = PulseProtocol()
    limit = protocol.receive_close(1008, "concurrency")
    assert isinstance(limit, ProviderStreamError)
    assert limit.retryable, "a limit that frees up as calls end: another provider or a retry can help"
    assert limit.status == 1008
    assert "concurrent streams" in str(limit)
    early = protocol.receive_close(1000, "")
    assert isinstance(early, ProviderConnectionError), "1000 before close_stream ends the call's text early"
    assert isinstance(protocol.receive_close(1006, ""), ProviderConnectionError)
    protocol.send_close_stream()
    assert protocol.receive_close(1000, "") is None
