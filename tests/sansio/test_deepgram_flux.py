"""Deepgram Flux (/v2/listen) protocol, sans I/O: URL, Configure, turn events, errors, closes."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from voicecore.errors import ConfigError, ProtocolError, ProviderConnectionError, ProviderStreamError
from voicecore.sansio.deepgram_flux import (
    ConfigureResult,
    Connected,
    FluxProtocol,
    FluxWarning,
    TurnInfo,
    configure_message,
    flux_url,
)


def test_the_url_names_the_flux_parameters_and_repeats_keyterms() -> None:
    url = flux_url(
        "wss://api.deepgram.com/",
        model="flux-general-en",
        encoding="mulaw",
        sample_rate=8000,
        eot_threshold=0.8,
        eager_eot_threshold=0.5,
        eot_timeout_ms=3000,
        keyterms=("Luigi", "tiramisu"),
        extra={"tag": "demo"},
    )
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("api.deepgram.com", "/v2/listen")
    assert parse_qs(parts.query) == {
        "model": ["flux-general-en"],
        "encoding": ["mulaw"],
        "sample_rate": ["8000"],
        "eot_threshold": ["0.8"],
        "eager_eot_threshold": ["0.5"],
        "eot_timeout_ms": ["3000"],
        "keyterm": ["Luigi", "tiramisu"],
        "tag": ["demo"],
    }
    bare = parse_qs(urlsplit(flux_url("ws://h", model="m", encoding="linear16", sample_rate=16000)).query)
    assert set(bare) == {"model", "encoding", "sample_rate"}, "unset thresholds are Deepgram's defaults"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"eot_threshold": 0.95}, "eot_threshold must be 0.5 to 0.9"),
        ({"eager_eot_threshold": 0.2}, "eager_eot_threshold must be 0.3 to 0.9"),
        ({"eot_threshold": 0.6, "eager_eot_threshold": 0.7}, "must not exceed"),
        ({"eot_timeout_ms": 0}, "eot_timeout_ms must be positive"),
    ],
)
def test_thresholds_out_of_range_are_refused(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        flux_url("ws://h", model="m", encoding="mulaw", sample_rate=8000, **settings)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        configure_message(**settings)  # type: ignore[arg-type]


def test_configure_sends_only_what_changes() -> None:
    assert json.loads(configure_message(eager_eot_threshold=0.4)) == {
        "type": "Configure",
        "thresholds": {"eager_eot_threshold": 0.4},
    }
    assert json.loads(configure_message(keyterms=["Luigi"])) == {"type": "Configure", "keyterms": ["Luigi"]}


def test_client_messages_no_finalize_and_no_keepalive() -> None:
    protocol = FluxProtocol()
    assert protocol.send_audio(b"\xff" * 160, 0.0) == b"\xff" * 160
    assert protocol.send_audio(b"", 0.0) is None
    assert protocol.send_finalize(1.0) is None, "Flux ends turns itself"
    assert protocol.keepalive_at(0.0) is None
    assert protocol.send_keepalive(20.0) is None
    assert json.loads(protocol.send_close_stream()) == {"type": "CloseStream"}


def test_server_messages_become_events() -> None:
    protocol = FluxProtocol()
    assert protocol.receive_text('{"type":"Connected","request_id":"r1","sequence_id":0}') == [
        Connected("r1")
    ]
    assert protocol.request_id == "r1"
    turn = {
        "type": "TurnInfo",
        "request_id": "r1",
        "sequence_id": 3,
        "event": "EagerEndOfTurn",
        "turn_index": 2,
        "audio_window_start": 1.5,
        "audio_window_end": 2.75,
        "transcript": "Book a table",
        "words": [{"word": "Book", "confidence": 0.9}, {"word": "a", "confidence": 0.7}],
        "end_of_turn_confidence": 0.6,
    }
    [event] = protocol.receive_text(json.dumps(turn))
    assert isinstance(event, TurnInfo)
    assert event.confidence == pytest.approx(0.8), "the mean of the words' confidences"
    assert event == TurnInfo("EagerEndOfTurn", 2, "Book a table", 1.5, 2.75, 0.6, event.confidence)
    success = {
        "type": "ConfigureSuccess",
        "request_id": "r1",
        "sequence_id": 4,
        "thresholds": {"eot_threshold": 0.8},
        "keyterms": [],
    }
    assert protocol.receive_text(json.dumps(success)) == [ConfigureResult(True, {"eot_threshold": 0.8})]
    failure = {"type": "ConfigureFailure", "request_id": "r1", "sequence_id": 5, "description": "too high"}
    assert protocol.receive_text(json.dumps(failure)) == [ConfigureResult(False, {}, "too high")]
    warning = {"type": "Warning", "request_id": "r1", "sequence_id": 6, "code": "SLOW", "description": "d"}
    assert protocol.receive_text(json.dumps(warning)) == [FluxWarning("SLOW", "d")]
    assert protocol.receive_text('{"type":"SomethingNew"}') == []
    no_words = protocol.receive_text('{"type":"TurnInfo","event":"Update","transcript":""}')
    assert no_words == [TurnInfo("Update", 0, "", 0.0, 0.0, 0.0, None)]


def test_a_fatal_error_says_whether_a_new_connection_can_help() -> None:
    protocol = FluxProtocol()
    protocol.receive_text('{"type":"Connected","request_id":"r9","sequence_id":0}')
    with pytest.raises(ProviderStreamError) as caught:
        protocol.receive_text(
            '{"type":"Error","sequence_id":1,"code":"INTERNAL_SERVER_ERROR","description":"x"}'
        )
    assert caught.value.retryable
    assert caught.value.request_id == "r9"
    with pytest.raises(ProviderStreamError) as caught:
        protocol.receive_text('{"type":"Error","sequence_id":2,"code":"INVALID_MESSAGE","description":"bad"}')
    assert not caught.value.retryable
    assert "INVALID_MESSAGE: bad" in str(caught.value)
    with pytest.raises(ProtocolError):
        protocol.receive_text("not json")
    with pytest.raises(ProtocolError):
        protocol.receive_text("[1]")


def test_closes_without_a_status_code_end_a_closed_stream_normally() -> None:
    protocol = FluxProtocol()
    assert isinstance(protocol.receive_close(1005, ""), ProviderConnectionError), "before CloseStream: lost"
    decode = protocol.receive_close(1008, "DATA-0000")
    assert isinstance(decode, ProviderStreamError)
    assert not decode.retryable
    protocol.send_close_stream()
    assert protocol.receive_close(1005, "") is None
    assert protocol.receive_close(None, "") is None
