"""Anthropic's Messages API, sans I/O: the conversion from the OpenAI shape, cache breakpoints, events."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from voicecore.errors import ProtocolError, ProviderConnectionError, ProviderStatusError, ProviderStreamError
from voicecore.sansio.anthropic import (
    OPENING_TURN,
    MessageStream,
    build_request,
    convert_messages,
    error_from_body,
)
from voicecore.sansio.openai import ContentDelta, TokenUsage
from voicecore.tools import ToolCall

EPHEMERAL = {"type": "ephemeral"}
TOOL = {
    "type": "function",
    "function": {
        "name": "book_table",
        "description": "Book a table.",
        "parameters": {"type": "object", "properties": {"people": {"type": "integer"}}},
    },
}


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def test_a_tool_turn_becomes_tool_use_and_one_user_message_of_results() -> None:
    system, messages = convert_messages(
        [
            {"role": "system", "content": "You book tables."},
            {"role": "user", "content": "A table for two, and the hours?"},
            {
                "role": "assistant",
                "content": "One moment.",
                "tool_calls": [call("c1", "book_table", '{"people": 2}'), call("c2", "hours", "")],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "booked"},
            {"role": "tool", "tool_call_id": "c2", "content": "9 to 5"},
            {"role": "assistant", "content": "Done; we open at nine."},
        ]
    )
    assert system == [text("You book tables.")]
    assert messages == [
        {"role": "user", "content": [text("A table for two, and the hours?")]},
        {
            "role": "assistant",
            "content": [
                text("One moment."),
                {"type": "tool_use", "id": "c1", "name": "book_table", "input": {"people": 2}},
                {"type": "tool_use", "id": "c2", "name": "hours", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "booked"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "9 to 5"},
            ],
        },
        {"role": "assistant", "content": [text("Done; we open at nine.")]},
    ]


def test_roles_alternate_and_a_greeting_gets_an_opening_user_turn() -> None:
    _, messages = convert_messages(
        [
            {"role": "system", "content": "S"},
            {"role": "assistant", "content": "Luigi's, how can I help?"},
            {"role": "user", "content": "Hi."},
            {"role": "user", "content": [{"type": "text", "text": "Are you open?"}]},
            {"role": "assistant", "content": None, "tool_calls": [call("c1", "hours", "not json")]},
            {"role": "tool", "tool_call_id": "c1", "content": "9 to 5"},
            {"role": "user", "content": "   "},  # empty: dropped
            {"role": "user", "content": "Thanks."},
        ]
    )
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == [text(OPENING_TURN)]
    assert messages[2]["content"] == [text("Hi."), text("Are you open?")]
    assert messages[3]["content"] == [{"type": "tool_use", "id": "c1", "name": "hours", "input": {}}]
    # The result opens its message even though the caller's words follow it.
    assert messages[4]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "9 to 5"},
        text("Thanks."),
    ]


@pytest.mark.parametrize(
    ("cache", "marked"),
    [("history", {"tool", "system", "message"}), ("prefix", {"tool", "system"}), ("none", set())],
)
def test_cache_breakpoints_by_mode(cache: Any, marked: set[str]) -> None:
    body = msgspec.json.decode(
        build_request(
            "claude",
            [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi."}],
            tools=[TOOL, {**TOOL, "function": {**TOOL["function"], "name": "hours"}}],
            max_tokens=300,
            cache=cache,
            options={"temperature": 0.2},
        )
    )
    assert (body["model"], body["max_tokens"], body["stream"], body["temperature"]) == (
        "claude",
        300,
        True,
        0.2,
    )
    assert "cache_control" not in body["tools"][0], "only the last tool carries the breakpoint"
    found = {
        "tool": body["tools"][-1].get("cache_control") == EPHEMERAL,
        "system": body["system"][-1].get("cache_control") == EPHEMERAL,
        "message": body["messages"][-1]["content"][-1].get("cache_control") == EPHEMERAL,
    }
    assert {name for name, on in found.items() if on} == marked
    assert body["tools"][0]["input_schema"] == TOOL["function"]["parameters"]
    assert body["tools"][0]["description"] == "Book a table."


# --- the reply stream --------------------------------------------------------------------------

MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude",
        "stop_reason": None,
        "usage": {
            "input_tokens": 20,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 300,
            "output_tokens": 1,
        },
    },
}
REPLY_EVENTS: list[dict[str, Any]] = [
    MESSAGE_START,
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check ☕."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "hours", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"day": '},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '"mon"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 17},
    },
    {"type": "message_stop"},
]


def sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


EXPECTED = [
    ContentDelta("Let me "),
    ContentDelta("check ☕."),
    ToolCall("toolu_1", "hours", '{"day": "mon"}'),
    TokenUsage(prompt_tokens=325, completion_tokens=17, cached_tokens=300, cache_write_tokens=5),
]


@pytest.mark.parametrize("piece", [1, 7, 10_000])
def test_a_reply_in_any_chunking_gives_text_then_the_tool_use_then_usage(piece: int) -> None:
    stream = MessageStream(provider="anthropic")
    body = sse(REPLY_EVENTS)
    out = []
    for start in range(0, len(body), piece):
        out += stream.receive_data(body[start : start + piece])
    out += stream.receive_eof()
    assert out == EXPECTED
    assert stream.done
    assert stream.finish_reason == "tool_use"


@pytest.mark.parametrize(
    ("kind", "retryable"), [("overloaded_error", True), ("invalid_request_error", False)]
)
def test_an_error_event_after_text_is_raised_on_the_next_read(kind: str, retryable: bool) -> None:
    stream = MessageStream(provider="anthropic", request_id="req_9")
    error = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    events = stream.receive_data(sse([*REPLY_EVENTS[:4], error]))
    assert events == [ContentDelta("Let me ")]
    with pytest.raises(ProviderStreamError) as caught:
        stream.receive_data(b"")
    assert caught.value.retryable is retryable
    assert caught.value.request_id == "req_9"
    assert "Overloaded" in str(caught.value)


def test_a_stream_cut_before_the_stop_is_a_connection_error() -> None:
    stream = MessageStream(provider="anthropic")
    assert stream.receive_data(sse(REPLY_EVENTS[:4])) == [ContentDelta("Let me ")]
    with pytest.raises(ProviderConnectionError, match="ended before the reply finished"):
        stream.receive_eof()


def test_unknown_events_and_thinking_are_skipped_and_garbage_is_a_protocol_error() -> None:
    stream = MessageStream(provider="anthropic")
    extra = [
        MESSAGE_START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "x"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "some_future_event"},
    ]
    assert stream.receive_data(sse(extra)) == []
    with pytest.raises(ProtocolError):
        stream.receive_data(b"event: content_block_delta\ndata: {not json\n\n")


@pytest.mark.parametrize(
    ("status", "retryable", "advice"),
    [
        (401, False, "ANTHROPIC_API_KEY"),
        (404, False, "without /v1"),
        (429, True, "rate limited"),
        (529, True, "overloaded"),
    ],
)
def test_http_errors_carry_anthropic_advice(status: int, retryable: bool, advice: str) -> None:
    body = json.dumps({"type": "error", "error": {"type": "some_error", "message": "scripted"}})
    error = error_from_body(body, provider="anthropic", status=status, request_id="req_1")
    assert isinstance(error, ProviderStatusError)
    assert (error.status, error.retryable) == (status, retryable)
    assert advice in str(error)
    assert "scripted (some_error)" in str(error)
