"""Deepgram live STT protocol, sans I/O: URL, control messages, keep-alive timing, messages, closes."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from voicecore.errors import ProtocolError, ProviderConnectionError, ProviderStreamError
from voicecore.sansio.deepgram import (
    CLOSE_STREAM,
    FINALIZE,
    KEEP_ALIVE,
    ListenProtocol,
    Metadata,
    ReplayBuffer,
    Results,
    SpeechStarted,
    UtteranceEnd,
    auth_headers,
    listen_url,
)


def test_telephony_url_passes_mulaw_through() -> None:
    url = listen_url(
        "wss://api.deepgram.com/",
        model="nova-3",
        encoding="mulaw",
        sample_rate=8000,
        language="en-US",
        extra={"keyterm": "voicecore"},
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("wss", "api.deepgram.com", "/v1/listen")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "model": "nova-3",
        "encoding": "mulaw",
        "sample_rate": "8000",
        "channels": "1",
        "language": "en-US",
        "interim_results": "true",
        "endpointing": "300",
        "vad_events": "true",
        "smart_format": "true",
        "utterance_end_ms": "1000",
        "keyterm": "voicecore",
    }


def test_utterance_end_needs_interim_results() -> None:
    with pytest.raises(ProtocolError, match="needs interim_results"):
        listen_url(
            "wss://x", model="m", encoding="linear16", sample_rate=16000, language="en", interim_results=False
        )
    url = listen_url(
        "wss://x",
        model="m",
        encoding="linear16",
        sample_rate=16000,
        language="en",
        interim_results=False,
        utterance_end_ms=None,
        endpointing_ms=None,
    )
    assert "utterance_end_ms" not in url
    assert "endpointing=false" in url


def test_auth_header_and_control_messages() -> None:
    assert auth_headers("k") == {"Authorization": "Token k"}
    assert auth_headers(None) == {}
    assert [json.loads(m) for m in (KEEP_ALIVE, FINALIZE, CLOSE_STREAM)] == [
        {"type": "KeepAlive"},
        {"type": "Finalize"},
        {"type": "CloseStream"},
    ]


def test_keepalive_is_due_only_after_the_interval_without_audio() -> None:
    protocol = ListenProtocol(keepalive_interval=4.0)
    assert protocol.send_audio(b"\xff" * 160, now=10.0) == b"\xff" * 160
    assert protocol.send_audio(b"", now=11.0) is None  # an empty frame would end the stream
    assert protocol.keepalive_at(11.0) == 14.0
    assert protocol.send_keepalive(13.9) is None
    assert protocol.send_keepalive(14.0) == KEEP_ALIVE
    assert protocol.keepalive_at(14.0) == 18.0
    protocol.send_finalize(15.0)
    assert protocol.keepalive_at(15.0) == 19.0
    protocol.send_close_stream()
    assert protocol.send_keepalive(100.0) is None


def results(**fields: object) -> str:
    message = {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": 1.0,
        "start": 2.0,
        "is_final": False,
        "speech_final": False,
        "channel": {"alternatives": [{"transcript": "hi there", "confidence": 0.9, "words": []}]},
        "metadata": {"request_id": "req-1", "model_info": {"name": "general-nova-3"}},
    }
    return json.dumps(message | fields)


def test_messages_become_events() -> None:
    protocol = ListenProtocol()
    assert protocol.receive_text(results()) == [Results("hi there", False, False, False, 0.9, 2.0, 1.0)]
    assert protocol.request_id == "req-1"
    assert protocol.receive_text(results(is_final=True, speech_final=True, from_finalize=True)) == [
        Results("hi there", True, True, True, 0.9, 2.0, 1.0)
    ]
    assert protocol.receive_text('{"type":"SpeechStarted","channel":[0,1],"timestamp":9.54}') == [
        SpeechStarted(9.54)
    ]
    assert protocol.receive_text('{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.395}') == [
        UtteranceEnd(2.395)
    ]
    assert protocol.receive_text('{"type":"Metadata","request_id":"req-2","duration":3.5}') == [
        Metadata("req-2", 3.5)
    ]
    assert protocol.receive_text('{"type":"SomethingNew"}') == []


def test_speech_final_implies_final_and_missing_alternatives_are_empty() -> None:
    protocol = ListenProtocol()
    [event] = protocol.receive_text('{"type":"Results","speech_final":true,"channel":{"alternatives":[]}}')
    assert event == Results("", True, True)


def test_error_messages_and_bad_json() -> None:
    protocol = ListenProtocol()
    with pytest.raises(ProviderStreamError, match="SchemaError: could not parse"):
        protocol.receive_text('{"type":"Error","variant":"SchemaError","description":"could not parse"}')
    with pytest.raises(ProtocolError, match="not JSON"):
        protocol.receive_text("nope")
    with pytest.raises(ProtocolError, match="not a JSON object"):
        protocol.receive_text("[]")


@pytest.mark.parametrize(
    ("code", "reason", "closing", "kind", "retryable", "text"),
    [
        (1000, "", True, None, None, ""),
        (1000, "", False, ProviderConnectionError, True, "before CloseStream"),
        (1008, "DATA-0000", False, ProviderStreamError, False, "encoding and sample rate"),
        (1002, "DATA-0000", False, ProviderStreamError, False, "could not be decoded"),
        (1011, "NET-0001", False, ProviderConnectionError, True, "no audio or KeepAlive"),
        (1011, "NET-0000", False, ProviderConnectionError, True, "timed out"),
        (1006, "", False, ProviderConnectionError, True, "dropped"),
    ],
)
def test_close_codes(
    code: int, reason: str, closing: bool, kind: type | None, retryable: bool | None, text: str
) -> None:
    protocol = ListenProtocol()
    if closing:
        protocol.send_close_stream()
    error = protocol.receive_close(code, reason)
    if kind is None:
        assert error is None
    else:
        assert type(error) is kind
        assert error is not None
        assert error.retryable is retryable
        assert text in str(error)


def test_replay_keeps_what_no_final_result_covers() -> None:
    buffer = ReplayBuffer(bytes_per_second=8000)
    audio = bytes(range(256)) * 40  # 10240 bytes, 1.28 s
    buffer.push(audio[:4000])
    buffer.push(audio[4000:8000])
    buffer.settle(0.25)  # a final result ended 0.25 s in: 2000 bytes settled
    assert buffer.pending == 6000
    buffer.push(audio[8000:])
    replay = buffer.replay()
    assert replay == audio[2000:]
    # On the new connection, time 0 is the first replayed byte.
    buffer.settle(0.5)
    assert buffer.replay() == audio[6000:]
    assert buffer.dropped == 0


def test_replay_never_splits_a_sample_and_counts_overflow_as_a_gap() -> None:
    buffer = ReplayBuffer(bytes_per_second=32000, sample_width=2, capacity_seconds=0.01)  # 320 bytes
    buffer.push(bytes(301))
    buffer.settle(0.00003)  # 0.96 bytes -> nothing settled (no half samples)
    assert buffer.pending == 301
    buffer.push(bytes(100))
    assert buffer.pending == 319
    assert buffer.dropped == 82
    assert buffer.gap_seconds == pytest.approx(82 / 32000)
    buffer.settle(100.0)  # beyond what was kept
    assert buffer.pending == 0
