"""ElevenLabs multi-context protocol, sans I/O: messages out, audio, text ends and word times in."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from voicecore.errors import ConfigError, ProtocolError, ProviderConnectionError, ProviderStreamError
from voicecore.sansio.elevenlabs import (
    MultiContextProtocol,
    auth_headers,
    multi_stream_url,
    output_format_name,
)
from voicecore.sansio.ttsevents import ReplyAudio, ReplyDone


def audio_message(context_id: str, text: str, *, ms: int = 10, key: str = "alignment", **extra: Any) -> str:
    alignment = {
        "chars": list(text),
        "charStartTimesMs": [i * ms for i in range(len(text))],
        "charDurationsMs": [ms] * len(text),
    }
    audio = base64.b64encode(bytes(8 * ms * len(text))).decode()
    return json.dumps({"audio": audio, key: alignment, "contextId": context_id, **extra})


def test_url_formats_and_auth() -> None:
    url = multi_stream_url(
        "wss://api.elevenlabs.io/", "voice 1", model_id="eleven_flash_v2_5", output_format="ulaw_8000"
    )
    assert url == (
        "wss://api.elevenlabs.io/v1/text-to-speech/voice%201/multi-stream-input"
        "?model_id=eleven_flash_v2_5&output_format=ulaw_8000"
    )
    assert output_format_name("mulaw", 8000) == "ulaw_8000"
    assert output_format_name("pcm16", 24000) == "pcm_24000"
    with pytest.raises(ConfigError, match="no raw output format"):
        output_format_name("pcm16", 48000)
    assert auth_headers("k") == {"xi-api-key": "k"}
    assert auth_headers(None) == {}


def test_client_messages() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    init = json.loads(
        protocol.open_context(
            "c1", voice_settings={"speed": 1.1}, generation_config={"chunk_length_schedule": [50]}
        )
    )
    assert init == {
        "text": " ",
        "context_id": "c1",
        "voice_settings": {"speed": 1.1},
        "generation_config": {"chunk_length_schedule": [50]},
    }
    assert json.loads(protocol.send_text("c1", "Hi there.") or "") == {
        "text": "Hi there. ",
        "context_id": "c1",
        "flush": True,
    }
    assert protocol.send_text("c1", "  ") is None
    assert json.loads(protocol.keep_alive("c1")) == {"text": "", "context_id": "c1"}
    assert json.loads(protocol.keep_alive()) == {"text": ""}
    assert [json.loads(m) for m in protocol.keep_alives()] == [{"text": "", "context_id": "c1"}]
    assert protocol.open_contexts == 1
    assert json.loads(protocol.close_context("c1") or "") == {"context_id": "c1", "close_context": True}
    assert protocol.close_context("c1") is None
    assert protocol.open_contexts == 0
    assert json.loads(protocol.close_socket()) == {"close_socket": True}


def test_contexts_cannot_be_reused_or_used_unopened() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    protocol.open_context("c1")
    with pytest.raises(ProtocolError, match="already used"):
        protocol.open_context("c1")
    with pytest.raises(ProtocolError, match="not open"):
        protocol.send_text("c2", "hello")


def test_alignment_ends_texts_and_gives_word_times_across_chunks() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    protocol.open_context("c")
    protocol.send_text("c", "Hello there.")
    protocol.send_text("c", "Bye.")
    assert protocol.texts_pending("c") == 2
    [first] = protocol.receive_text(audio_message("c", "Hello th"))
    assert first == ReplyAudio("c", bytes(640), (("Hello", 50.0),))
    second, ended = protocol.receive_text(audio_message("c", "ere. Bye."))
    # The first chunk is 80 ms of audio; "there." ends 40 ms into the second, "Bye." 90 ms.
    assert second == ReplyAudio("c", bytes(720), (("there.", 120.0), ("Bye.", 170.0)))
    assert ended == ReplyAudio("c", texts_done=2), "both texts end after that chunk's audio"
    assert protocol.texts_pending("c") == 0


def test_normalized_alignment_and_the_docs_spelling_are_accepted() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    protocol.open_context("c")
    protocol.send_text("c", "Ok")
    message = json.loads(audio_message("c", "Ok", key="normalizedAlignment"))
    alignment = message["normalizedAlignment"]
    alignment["charsDurationsMs"] = alignment.pop("charDurationsMs")
    assert protocol.receive_text(json.dumps(message)) == [
        ReplyAudio("c", bytes(160), (("Ok", 20.0),)),
        ReplyAudio("c", texts_done=1),
    ]


def test_finals_late_audio_and_unknown_contexts() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    protocol.open_context("a")
    protocol.open_context("b")
    assert protocol.receive_text('{"isFinal": true, "contextId": "a"}') == [ReplyDone("a")]
    assert protocol.receive_text('{"is_final": true, "contextId": "b"}') == [ReplyDone("b")]
    assert protocol.receive_text(audio_message("a", "late")) == []
    assert protocol.receive_text(audio_message("zzz", "who")) == []
    assert protocol.receive_text('{"isFinal": true}') == []


def test_audio_without_alignment_still_comes_out() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    protocol.open_context("c")
    [event] = protocol.receive_text(
        json.dumps({"audio": base64.b64encode(b"\x01\x02").decode(), "contextId": "c"})
    )
    assert event == ReplyAudio("c", b"\x01\x02")
    assert protocol.receive_text(json.dumps({"audio": None, "contextId": "c"})) == []


@pytest.mark.parametrize(
    ("message", "kind", "retryable", "text"),
    [
        (
            {
                "message": "Maximum simultaneous contexts per WebSocket connection exceeded (5)",
                "error": "max_active_conversations",
                "code": 1008,
            },
            ProviderStreamError,
            False,
            "close a context",
        ),
        (
            {"message": "Invalid API key", "error": "invalid_api_key", "code": 1008},
            ProviderStreamError,
            False,
            "check the API key",
        ),
        (
            {"message": "Input timeout exceeded", "error": "input_timeout_exceeded"},
            ProviderConnectionError,
            True,
            "reconnect",
        ),
    ],
)
def test_error_messages(message: dict[str, Any], kind: type, retryable: bool, text: str) -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    with pytest.raises(kind, match=text) as caught:
        protocol.receive_text(json.dumps(message))
    assert caught.value.retryable is retryable


def test_malformed_messages() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    protocol.open_context("c")
    with pytest.raises(ProtocolError, match="not JSON"):
        protocol.receive_text("{")
    with pytest.raises(ProtocolError, match="not a JSON object"):
        protocol.receive_text("1")
    with pytest.raises(ProtocolError, match="base64"):
        protocol.receive_text('{"audio": "!!", "contextId": "c"}')


def test_close_codes() -> None:
    protocol = MultiContextProtocol(bytes_per_ms=8)
    assert isinstance(protocol.receive_close(1000, ""), ProviderConnectionError)
    error = protocol.receive_close(1008, "Invalid API key")
    assert isinstance(error, ProviderStreamError)
    assert error.status == 1008
    assert not error.retryable
    protocol.close_socket()
    assert protocol.receive_close(1000, "") is None
