"""Chat completions over SSE, sans I/O: request bodies, every server's deltas, every error shape."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.errors import (
    ProtocolError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderStreamError,
)
from voicecore.sansio.openai import (
    ChatCompletionStream,
    ChatEvent,
    ContentDelta,
    TokenUsage,
    build_request,
    chat_completions_url,
    error_from_body,
    request_headers,
)
from voicecore.tools import ToolCall


def sse(*objects: Any, done: bool = True) -> bytes:
    body = "".join(f"data: {json.dumps(o) if not isinstance(o, str) else o}\n\n" for o in objects)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": choices, **extra}


def run(*pieces: bytes) -> list[ChatEvent]:
    stream = ChatCompletionStream(provider="llm")
    out: list[ChatEvent] = []
    for piece in pieces:
        out += stream.receive_data(piece)
    return out + stream.receive_eof()


# --- requests -----------------------------------------------------------------------------------


def test_the_request_streams_with_usage_and_tools() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = msgspec.json.decode(build_request("gpt-4o-mini", [{"role": "user", "content": "hi"}], tools=tools))
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": tools,
    }


def test_no_tools_leaves_the_field_out_and_options_override() -> None:
    body = msgspec.json.decode(build_request("m", [], options={"temperature": 0.2, "stream_options": {}}))
    assert "tools" not in body
    assert body["temperature"] == 0.2
    assert body["stream_options"] == {}


def test_url_and_headers() -> None:
    assert chat_completions_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert request_headers("sk-1")["Authorization"] == "Bearer sk-1"
    assert "Authorization" not in request_headers(None, {"OpenAI-Project": "p"})
    assert request_headers(None, {"OpenAI-Project": "p"})["OpenAI-Project"] == "p"


# --- replies ------------------------------------------------------------------------------------

OPENAI_TEXT = sse(
    chunk({"role": "assistant", "content": "", "refusal": None}, usage=None, obfuscation="zz"),
    chunk({"content": "Hello"}, usage=None),
    chunk({"content": " there."}, usage=None),
    chunk({}, "stop", usage=None),
    chunk(
        None,
        usage={"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 3}},
    ),
)


def test_openai_text_then_usage_last() -> None:
    assert run(OPENAI_TEXT) == [ContentDelta("Hello"), ContentDelta(" there."), TokenUsage(9, 2, 3)]


def test_llamacpp_null_first_content_and_timings() -> None:
    body = sse(
        chunk({"role": "assistant", "content": None}),
        chunk({"content": "Hi"}),
        chunk({}, "length", timings={"predicted_n": 1}),
        chunk(None, usage={"prompt_tokens": 1, "completion_tokens": 1}),
    )
    stream = ChatCompletionStream(provider="llama")
    assert stream.receive_data(body) == [ContentDelta("Hi"), TokenUsage(1, 1)]
    assert stream.finish_reason == "length"


def test_refusals_are_spoken_and_reasoning_is_not() -> None:
    body = sse(
        chunk({"reasoning_content": "hmm"}), chunk({"refusal": "I can't help with that."}), chunk({}, "stop")
    )
    assert run(body) == [ContentDelta("I can't help with that.")]


def test_tool_call_fragments_join_by_index_even_interleaved() -> None:
    body = sse(
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "g", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
        chunk({}, "tool_calls"),
    )
    assert run(body) == [ToolCall("call_a", "f", '{"city": "Oslo"}'), ToolCall("call_b", "g", "{}")]


def test_ollama_whole_tool_calls_with_role_in_every_delta() -> None:
    call = {
        "id": "call_x",
        "index": 0,
        "type": "function",
        "function": {"name": "f", "arguments": '{"a": 1}'},
    }
    body = sse(
        chunk({"role": "assistant", "content": "One moment."}),
        chunk({"role": "assistant", "content": "", "tool_calls": [call]}),
        chunk({"role": "assistant", "content": ""}, "tool_calls"),
    )
    assert run(body) == [ContentDelta("One moment."), ToolCall("call_x", "f", '{"a": 1}')]


def test_calls_without_index_are_told_apart_by_id_and_object_arguments_are_encoded() -> None:
    body = sse(
        chunk({"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}}]}),
        chunk({"tool_calls": [{"function": {"arguments": ""}}]}),
        chunk({"tool_calls": [{"id": "c2", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
    )
    assert run(body) == [ToolCall("c1", "f", '{"a":1}'), ToolCall("c2", "g", "{}")]


def test_tool_calls_without_finish_reason_come_out_at_done() -> None:
    body = sse(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}))
    assert run(body) == [ToolCall("c", "f", "{}")]


def test_a_call_without_a_name_is_a_protocol_error() -> None:
    body = sse(
        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
    )
    with pytest.raises(ProtocolError, match="no function name"):
        run(body)


def test_continuous_usage_reports_the_last_count_once() -> None:
    body = sse(
        chunk({"content": "a"}, usage={"prompt_tokens": 5, "completion_tokens": 1}),
        chunk({"content": "b"}, usage={"prompt_tokens": 5, "completion_tokens": 2}),
        chunk({}, "stop", usage={"prompt_tokens": 5, "completion_tokens": 2}),
    )
    assert run(body) == [ContentDelta("a"), ContentDelta("b"), TokenUsage(5, 2)]


def test_other_choices_are_ignored() -> None:
    body = sse(
        {"choices": [{"index": 1, "delta": {"content": "no"}}, {"index": 0, "delta": {"content": "yes"}}]}
    )
    assert run(body) == [ContentDelta("yes")]


def test_nothing_after_done_is_read() -> None:
    assert run(sse(chunk({"content": "a"})) + b"data: not json\n\n") == [ContentDelta("a")]


def test_a_stream_cut_before_the_reply_finished_is_a_connection_error() -> None:
    with pytest.raises(ProviderConnectionError, match="ended before the reply finished") as caught:
        run(sse(chunk({"content": "a"}), done=False))
    assert caught.value.retryable


def test_a_finished_reply_without_done_is_accepted() -> None:
    call = {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}
    assert run(sse(chunk({"tool_calls": [call]}), chunk({}, "tool_calls"), done=False)) == [
        ToolCall("c", "f", "{}")
    ]


def test_a_non_json_event_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        run(b"data: {oops\n\n")
    with pytest.raises(ProtocolError, match="not a JSON object"):
        run(b"data: [1]\n\n")


@given(st.data())
def test_any_chunking_gives_the_same_events(data: st.DataObject) -> None:
    body = OPENAI_TEXT + b""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=12)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    assert run(*pieces) == run(body)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "kind", "retryable", "text"),
    [
        # OpenAI
        (
            {
                "error": {
                    "message": "Too long",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
            400,
            ProviderStatusError,
            False,
            "Too long (invalid_request_error, context_length_exceeded)",
        ),
        (
            {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}},
            401,
            ProviderStatusError,
            False,
            "check the API key",
        ),
        (
            {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
            429,
            ProviderStatusError,
            True,
            "rate limited",
        ),
        (
            {"error": {"message": "oops", "type": "server_error", "code": None}},
            500,
            ProviderStatusError,
            True,
            "retry or fail over",
        ),
        # vLLM, new and old
        (
            {"error": {"message": "auto tool choice", "type": "BadRequestError", "param": None, "code": 400}},
            400,
            ProviderStatusError,
            False,
            "BadRequestError",
        ),
        (
            {"object": "error", "message": "model gone", "type": "NotFoundError", "code": 404},
            404,
            ProviderStatusError,
            False,
            "check base_url",
        ),
        # llama.cpp
        (
            {"error": {"code": 400, "message": "context", "type": "exceed_context_size_error"}},
            400,
            ProviderStatusError,
            False,
            "exceed_context_size_error",
        ),
        # Ollama
        (
            {
                "error": {
                    "message": 'model "x" not found',
                    "type": "not_found_error",
                    "param": None,
                    "code": None,
                }
            },
            404,
            ProviderStatusError,
            False,
            "not_found_error",
        ),
        ({"error": "plain string error"}, 503, ProviderStatusError, True, "plain string error"),
    ],
)
def test_http_error_shapes(
    body: dict[str, Any], status: int, kind: type[ProviderError], retryable: bool, text: str
) -> None:
    error = error_from_body(json.dumps(body).encode(), provider="llm", status=status, request_id="req_1")
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.status == status
    assert error.request_id == "req_1"
    assert text in str(error)
    assert "req_1" in str(error)


def test_a_non_json_error_body_keeps_its_text() -> None:
    error = error_from_body(b"<html>Bad Gateway</html>", provider="llm", status=502)
    assert error.retryable
    assert "Bad Gateway" in str(error)


def test_mid_stream_error_types_decide_retryable() -> None:
    server = {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}}
    with pytest.raises(ProviderStreamError, match="overloaded") as caught:
        run(sse(chunk({"content": "a"}), server))
    assert caught.value.retryable
    assert caught.value.status is None
    invalid = {"error": {"message": "bad", "type": "invalid_request_error"}}
    with pytest.raises(ProviderStreamError) as caught:
        run(sse(invalid))
    assert not caught.value.retryable


def test_vllm_mid_stream_error_with_numeric_code() -> None:
    error = {"error": {"message": "bad", "type": "BadRequestError", "param": None, "code": 400}}
    with pytest.raises(ProviderStatusError) as caught:
        run(sse(chunk({"content": "a"}), error))
    assert caught.value.status == 400
    assert not caught.value.retryable


def test_llamacpp_error_field_mid_stream() -> None:
    stream = ChatCompletionStream(provider="llama", request_id=None)
    assert stream.receive_data(sse(chunk({"content": "a"}), done=False)) == [ContentDelta("a")]
    with pytest.raises(ProviderStatusError, match="HTTP 500: boom") as caught:
        stream.receive_data(b'error: {"code": 500, "message": "boom", "type": "server_error"}\n\n')
    assert caught.value.retryable


def test_events_before_an_error_come_out_first_then_the_error() -> None:
    stream = ChatCompletionStream(provider="llm")
    error = {"error": {"message": "overloaded", "type": "server_error"}}
    assert stream.receive_data(sse(chunk({"content": "a"}), error)) == [ContentDelta("a")]
    assert isinstance(stream.pending_error, ProviderStreamError)
    with pytest.raises(ProviderStreamError, match="overloaded"):
        stream.receive_data(b"")
    with pytest.raises(ProviderStreamError, match="overloaded"):
        stream.receive_eof()
