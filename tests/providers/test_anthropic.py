"""AnthropicLLM against the fake Messages API: the request, the reply, the cache, errors and faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicecore.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderStatusError,
    ProviderStreamError,
    ProviderTimeoutError,
)
from voicecore.fakes.anthropic import FakeAnthropic, MessageReply
from voicecore.providers.anthropic import AnthropicLLM
from voicecore.providers.base import LLMChunk, TextDelta, ToolCall, Usage

SYSTEM = {"role": "system", "content": "You book tables at Luigi's. " * 40}
MESSAGES: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": "Are you open today?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "opening_hours",
            "description": "Today's opening hours.",
            "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
        },
    }
]


async def collect(llm: AnthropicLLM, messages: list[dict[str, Any]] = MESSAGES) -> list[LLMChunk]:
    stream = await llm.complete(messages, tools=TOOLS)
    return [chunk async for chunk in stream]


def test_text_tool_use_usage_and_the_request_as_the_api_wants_it() -> None:
    async def main() -> None:
        reply = MessageReply("Let me check.", tool_uses=[("opening_hours", {"day": "today"})])
        async with FakeAnthropic([reply], api_key="sk-ant") as server:
            llm = AnthropicLLM(model="claude-x", base_url=server.base_url, api_key="sk-ant", max_tokens=200)
            chunks = await collect(llm)
            await llm.aclose()
        assert chunks[:3] == [TextDelta("Let "), TextDelta("me "), TextDelta("check.")]
        call = chunks[3]
        assert isinstance(call, ToolCall)
        assert (call.name, call.arguments, call.id.startswith("toolu_")) == (
            "opening_hours",
            '{"day": "today"}',
            True,
        )
        usage = chunks[4]
        assert isinstance(usage, Usage)
        assert usage.completion_tokens == 13
        assert usage.cache_write_tokens > 0, "the first turn writes system and tools to the cache"
        assert usage.cached_tokens == 0
        headers = server.request_headers[0]
        assert (headers["x-api-key"], headers["anthropic-version"]) == ("sk-ant", "2023-06-01")
        body = server.requests[0]
        assert (body["model"], body["max_tokens"], body["stream"]) == ("claude-x", 200, True)
        assert body["system"][0]["text"] == SYSTEM["content"]
        assert body["tools"][0]["name"] == "opening_hours"

    asyncio.run(main())


def test_the_second_turn_reads_the_conversation_so_far_from_the_cache() -> None:
    async def main() -> None:
        async with FakeAnthropic(["We are open.", "Until nine."]) as server:
            llm = AnthropicLLM(base_url=server.base_url, api_key="k")
            first = await collect(llm)
            grown = [
                *MESSAGES,
                {"role": "assistant", "content": "We are open."},
                {"role": "user", "content": "Until when?"},
            ]
            second = await collect(llm, grown)
            await llm.aclose()
        usage1, usage2 = first[-1], second[-1]
        assert isinstance(usage1, Usage)
        assert isinstance(usage2, Usage)
        assert usage2.cached_tokens == usage1.cache_write_tokens, "turn one's whole prefix is read back"
        assert 0 < usage2.cache_write_tokens < usage1.cache_write_tokens, "only the new turn is written"
        assert usage2.prompt_tokens > usage1.prompt_tokens
        # The breakpoint moved to the newest message; the earlier one is no longer marked.
        messages = server.requests[1]["messages"]
        assert "cache_control" in messages[-1]["content"][-1]
        assert "cache_control" not in messages[0]["content"][-1]

    asyncio.run(main())


def test_turns_reuse_one_connection_after_warm_up_and_a_bad_key_is_reported() -> None:
    async def main() -> None:
        async with FakeAnthropic(["One.", "Two."], api_key="right") as server:
            llm = AnthropicLLM(base_url=server.base_url, api_key="right")
            await llm.warm()
            for _ in range(2):
                await collect(llm)
            await llm.aclose()
            wrong = AnthropicLLM(base_url=server.base_url, api_key="wrong")
            with pytest.raises(ProviderStatusError, match="check ANTHROPIC_API_KEY"):
                await wrong.warm()
            await wrong.aclose()
        assert len(set(server.peers[:3])) == 1, "every request after warm() reuses its connection"

    asyncio.run(main())


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (413, False),
        (429, True),
        (500, True),
        (529, True),
    ],
)
def test_http_errors(status: int, retryable: bool) -> None:
    async def main() -> None:
        async with FakeAnthropic([MessageReply(status=status, error_message="scripted")]) as server:
            llm = AnthropicLLM(base_url=server.base_url, api_key="k")
            with pytest.raises(ProviderStatusError) as caught:
                await llm.complete(MESSAGES)
            await llm.aclose()
        error = caught.value
        assert (error.status, error.retryable, error.provider) == (status, retryable, "anthropic")
        assert "scripted" in str(error)
        assert error.request_id is not None
        assert error.request_id.startswith("req_")

    asyncio.run(main())


def test_x_should_retry_overrides_the_status_rule() -> None:
    async def main() -> None:
        reply = MessageReply(status=529, headers={"x-should-retry": "false", "retry-after": "3"})
        async with FakeAnthropic([reply]) as server:
            llm = AnthropicLLM(base_url=server.base_url, api_key="k")
            with pytest.raises(ProviderStatusError) as caught:
                await llm.complete(MESSAGES)
            await llm.aclose()
        assert not caught.value.retryable

    asyncio.run(main())


@pytest.mark.parametrize(
    ("kind", "retryable"), [("overloaded_error", True), ("invalid_request_error", False)]
)
def test_an_error_event_inside_the_stream(kind: str, retryable: bool) -> None:
    async def main() -> None:
        async with FakeAnthropic([MessageReply("a b c", stream_error_after=2, error_type=kind)]) as server:
            llm = AnthropicLLM(base_url=server.base_url, api_key="k")
            stream = await llm.complete(MESSAGES)
            texts = [await anext(stream), await anext(stream)]
            with pytest.raises(ProviderStreamError) as caught:
                await anext(stream)
            await stream.aclose()
            await llm.aclose()
        assert texts == [TextDelta("a "), TextDelta("b ")]
        assert caught.value.retryable is retryable
        assert caught.value.request_id == stream.request_id

    asyncio.run(main())


def test_a_dropped_connection_and_a_stall() -> None:
    async def main() -> None:
        async with FakeAnthropic(
            [MessageReply("a b c", drop_after=1), MessageReply("a b c", stall_after=1)]
        ) as server:
            llm = AnthropicLLM(base_url=server.base_url, api_key="k", read_timeout=0.3)
            stream = await llm.complete(MESSAGES)
            assert await anext(stream) == TextDelta("a ")
            with pytest.raises(ProviderConnectionError):
                await anext(stream)
            await stream.aclose()
            stream = await llm.complete(MESSAGES)
            assert await anext(stream) == TextDelta("a ")
            with pytest.raises(ProviderTimeoutError):
                await anext(stream)
            await stream.aclose()
            await asyncio.wait_for(server.client_went_away.wait(), 5)
            await llm.aclose()

    asyncio.run(main())


def test_aclose_mid_stream_cancels_the_request_and_the_next_turn_works() -> None:
    async def main() -> None:
        async with FakeAnthropic([MessageReply("a b c", stall_after=2), "After."]) as server:
            llm = AnthropicLLM(base_url=server.base_url, api_key="k")
            stream = await llm.complete(MESSAGES)
            assert [await anext(stream), await anext(stream)] == [TextDelta("a "), TextDelta("b ")]
            await stream.aclose()
            await asyncio.wait_for(server.client_went_away.wait(), 5)
            assert llm.rewarming is not None
            await asyncio.wait_for(llm.rewarming, 5)
            chunks = await collect(llm)
            await llm.aclose()
        assert chunks[0] == TextDelta("After.")

    asyncio.run(main())


def test_the_fake_refuses_what_the_api_refuses() -> None:
    async def main() -> None:
        async with FakeAnthropic(["x"]) as server:
            llm = AnthropicLLM(
                base_url=server.base_url,
                api_key="k",
                options={"messages": [{"role": "assistant", "content": "hi"}]},
            )
            with pytest.raises(ProviderStatusError, match="first message must use the user role") as caught:
                await llm.complete(MESSAGES)
            await llm.aclose()
            malformed = AnthropicLLM(
                base_url=server.base_url, api_key="k", options={"messages": [{"text": "?"}]}
            )
            with pytest.raises(ProviderStatusError, match="malformed request"):
                await malformed.complete(MESSAGES)
            await malformed.aclose()
        assert caught.value.status == 400

    asyncio.run(main())


def test_an_unknown_cache_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cache must be"):
        AnthropicLLM(cache="always")  # type: ignore[arg-type]
