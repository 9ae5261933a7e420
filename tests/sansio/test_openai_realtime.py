"""The OpenAI Realtime protocol, sans I/O: the client events we send and the server events we read."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.errors import ConfigError, ProtocolError
from voicecore.sansio import openai_realtime as rt
from voicecore.sansio.chatstream import TokenUsage


def server(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": "event_1", **fields})


def test_the_url_names_the_model() -> None:
    assert rt.realtime_url("wss://api.openai.com/v1/", "gpt-realtime") == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )


def test_g711_goes_through_and_everything_else_is_24_khz_pcm() -> None:
    assert rt.model_audio("mulaw", 8000) == "mulaw"
    assert rt.model_audio("alaw", 8000) == "alaw"
    assert rt.model_audio("pcm16", 16000) == "pcm16"
    assert rt.model_audio("pcm16", 8000) == "pcm16"
    assert rt.AUDIO_RATES["pcm16"] == 24000


def test_session_update_configures_audio_turns_transcription_and_tools() -> None:
    schema = {"type": "function", "function": {"name": "weather", "description": "d", "parameters": {}}}
    settings = rt.RealtimeSettings(
        instructions="Be brief.", voice="cedar", audio="mulaw", tools=[schema], language="it", silence_ms=400
    )
    session = rt.session_update(settings)["session"]
    assert session["type"] == "realtime"
    assert session["instructions"] == "Be brief."
    assert session["output_modalities"] == ["audio"]
    audio_in, audio_out = session["audio"]["input"], session["audio"]["output"]
    assert audio_in["format"] == audio_out["format"] == {"type": "audio/pcmu"}
    assert audio_out["voice"] == "cedar"
    assert audio_in["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 400,
        "create_response": True,
        "interrupt_response": True,
    }
    assert audio_in["transcription"] == {"model": "gpt-4o-transcribe", "language": "it"}
    assert audio_in["noise_reduction"] == {"type": "near_field"}
    assert session["tools"] == [{"type": "function", "name": "weather", "description": "d", "parameters": {}}]
    assert session["tool_choice"] == "auto"
    assert session["max_output_tokens"] == "inf"


def test_semantic_vad_pcm_and_no_transcription() -> None:
    settings = rt.RealtimeSettings(
        audio="pcm16",
        turn_detection="semantic_vad",
        eagerness="low",
        transcription_model=None,
        noise_reduction=None,
    )
    session = rt.session_update(settings)["session"]
    audio_in = session["audio"]["input"]
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_in["turn_detection"]["type"] == "semantic_vad"
    assert audio_in["turn_detection"]["eagerness"] == "low"
    assert "transcription" not in audio_in
    assert audio_in["noise_reduction"] is None
    assert session["tool_choice"] == "none"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("audio", "opus", "audio must be"),
        ("vad_threshold", 1.5, "vad_threshold"),
        ("silence_ms", -1, "silence_ms"),
        ("speed", 2.0, "speed"),
        ("max_output_tokens", 0, "max_output_tokens"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        rt.RealtimeSettings(**{field: value})  # type: ignore[arg-type]


@given(st.binary(max_size=2000))
def test_append_audio_is_the_json_event_with_base64_audio(audio: bytes) -> None:
    event = msgspec.json.decode(rt.append_audio(audio))
    assert event == {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}


def test_client_events() -> None:
    assert rt.truncate("item_1", 1450.7) == {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 1450,
    }
    assert rt.truncate("item_1", -3)["audio_end_ms"] == 0
    assert rt.function_output("call_1", '{"ok":true}') == {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"ok":true}'},
    }
    assert rt.message_item("assistant", "Hi.")["item"]["content"] == [{"type": "output_text", "text": "Hi."}]
    assert rt.message_item("user", "Hello.")["item"]["content"] == [{"type": "input_text", "text": "Hello."}]
    assert rt.create_response() == {"type": "response.create"}
    assert rt.create_response("Say hi.", purpose="greeting", event_id="e1") == {
        "type": "response.create",
        "event_id": "e1",
        "response": {"instructions": "Say hi.", "metadata": {"voicecore": "greeting"}},
    }
    assert rt.cancel_response() == {"type": "response.cancel"}
    assert json.loads(rt.encode(rt.cancel_response())) == {"type": "response.cancel"}


def test_audio_deltas_decode_under_the_ga_and_the_beta_name() -> None:
    delta = base64.b64encode(b"\x01\x02\x03").decode()
    for kind in ("response.output_audio.delta", "response.audio.delta"):
        event = rt.parse_event(server(kind, response_id="resp_1", item_id="item_1", delta=delta))
        assert event == rt.AgentAudio("resp_1", "item_1", b"\x01\x02\x03")


def test_transcripts_of_both_sides() -> None:
    for kind in ("response.output_audio_transcript.delta", "response.audio_transcript.delta"):
        event = rt.parse_event(server(kind, response_id="r", item_id="i", delta="Hel"))
        assert event == rt.AgentTranscript("r", "i", "Hel", False)
    done = rt.parse_event(
        server("response.output_audio_transcript.done", response_id="r", item_id="i", transcript="Hello.")
    )
    assert done == rt.AgentTranscript("r", "i", "Hello.", True)
    caller = rt.parse_event(
        server(
            "conversation.item.input_audio_transcription.completed",
            item_id="u",
            content_index=0,
            transcript=" Hi. ",
        )
    )
    assert caller == rt.CallerTranscript("u", "Hi.", True)


def test_turn_events() -> None:
    started = rt.parse_event(server("input_audio_buffer.speech_started", audio_start_ms=1000, item_id="u1"))
    assert started == rt.SpeechStarted("u1", 1000)
    stopped = rt.parse_event(server("input_audio_buffer.speech_stopped", audio_end_ms=2000, item_id="u1"))
    assert stopped == rt.SpeechStopped("u1", 2000)
    created = rt.parse_event(
        server("response.created", response={"id": "resp_1", "metadata": {"voicecore": "greeting"}})
    )
    assert created == rt.ResponseStarted("resp_1", "greeting")
    plain = rt.parse_event(server("response.created", response={"id": "resp_2", "metadata": None}))
    assert plain == rt.ResponseStarted("resp_2", None)
    call = rt.parse_event(
        server(
            "response.function_call_arguments.done",
            response_id="resp_1",
            item_id="item_2",
            output_index=0,
            call_id="call_1",
            name="weather",
            arguments='{"city":"Rome"}',
        )
    )
    assert call == rt.FunctionCall("resp_1", "item_2", "call_1", "weather", '{"city":"Rome"}')
    assert rt.parse_event(
        server("conversation.item.truncated", item_id="i", content_index=0, audio_end_ms=5)
    ) == (rt.Truncated("i", 5))


def test_response_done_carries_status_usage_and_tool_calls() -> None:
    usage = {
        "total_tokens": 30,
        "input_tokens": 20,
        "output_tokens": 10,
        "input_token_details": {"cached_tokens": 5, "text_tokens": 10, "audio_tokens": 10},
        "output_token_details": {"text_tokens": 2, "audio_tokens": 8},
    }
    output = [{"type": "function_call", "call_id": "c"}, {"type": "message"}]
    done = rt.parse_event(
        server(
            "response.done",
            response={
                "id": "r",
                "status": "completed",
                "status_details": None,
                "output": output,
                "usage": usage,
            },
        )
    )
    assert done == rt.ResponseDone("r", "completed", usage=TokenUsage(20, 10, 5), tool_calls=1)
    cancelled = rt.parse_event(
        server(
            "response.done",
            response={
                "id": "r",
                "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": "turn_detected"},
            },
        )
    )
    assert cancelled == rt.ResponseDone("r", "cancelled", reason="turn_detected")
    failed = rt.parse_event(
        server(
            "response.done",
            response={
                "id": "r",
                "status": "failed",
                "status_details": {"type": "failed", "error": {"type": "server_error", "message": "boom"}},
            },
        )
    )
    assert isinstance(failed, rt.ResponseDone)
    assert failed.error == "boom"


def test_errors_name_the_refused_event() -> None:
    error = rt.parse_event(
        server(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "bad",
                "param": "x",
                "event_id": "e7",
            },
        )
    )
    assert isinstance(error, rt.RealtimeError)
    assert (error.code, error.message, error.event_id, error.param) == ("invalid_value", "bad", "e7", "x")
    assert error.about_request
    assert not rt.RealtimeError("server_error", None, "down").about_request


def test_session_events_and_events_a_call_ignores() -> None:
    assert rt.parse_event(server("session.created", session={"id": "s"})) == rt.SessionReady(
        {"id": "s"}, True
    )
    assert rt.parse_event(server("session.updated", session={"id": "s"})) == rt.SessionReady(
        {"id": "s"}, False
    )
    assert rt.parse_event(server("rate_limits.updated", rate_limits=[])) is None
    assert rt.parse_event(server("some.future.event")) is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        server("response.output_audio.delta", response_id="r", item_id="i", delta="***"),
        server("response.output_audio.delta", delta="AAAA"),
        server("response.done", response={"status": "completed"}),
        server("input_audio_buffer.speech_started"),
    ],
)
def test_malformed_events_raise_protocol_errors(text: str) -> None:
    with pytest.raises(ProtocolError):
        rt.parse_event(text)


def test_chat_tool_schemas_become_flat_realtime_tools() -> None:
    chat = [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}]
    assert rt.realtime_tools(chat) == [{"type": "function", "name": "a", "parameters": {"type": "object"}}]
    flat = [{"type": "function", "name": "b", "description": "x"}]
    assert rt.realtime_tools(flat) == [{"type": "function", "name": "b", "description": "x"}]
