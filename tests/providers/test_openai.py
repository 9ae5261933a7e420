"""OpenAILLM against a fake chat completions server on a real socket, in each server's dialect."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from voicecore.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderStreamError,
    ProviderTimeoutError,
)
from voicecore.fakes.openai import FakeChatServer, Flavor, Reply
from voicecore.providers.base import LLM, LLMStream, TextDelta, ToolCall, Usage
from voicecore.providers.openai import OpenAILLM

FLAVORS: list[Flavor] = ["openai", "vllm", "llamacpp", "ollama"]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


async def collect(llm: OpenAILLM, **kwargs: Any) -> tuple[list[object], LLMStream]:
    stream = await llm.complete(MESSAGES, **kwargs)
    try:
        return [chunk async for chunk in stream], stream
    finally:
        await stream.aclose()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_text_tool_calls_and_usage_in_every_dialect(flavor: Flavor) -> None:
    reply = Reply(
        "Let me check.", tool_calls=[("get_weather", '{"city": "Paris", "unit": "C"}'), ("log", "{}")]
    )

    async def main() -> None:
        async with FakeChatServer([reply], flavor=flavor, api_key="sk-test") as server:
            llm = OpenAILLM(
                model="m1", base_url=server.base_url, api_key="sk-test", options={"temperature": 0.3}
            )
            assert isinstance(llm, LLM)
            chunks, stream = await collect(llm, tools=TOOLS)
            await llm.aclose()
        texts = [c.text for c in chunks if isinstance(c, TextDelta)]
        calls = [c for c in chunks if isinstance(c, ToolCall)]
        assert "".join(texts) == "Let me check."
        assert [(c.name, c.arguments) for c in calls] == list(reply.tool_calls)
        assert all(c.id.startswith("call_") for c in calls)
        assert chunks[-1] == Usage(prompt_tokens=9, completion_tokens=3, cached_tokens=4)
        assert (stream.request_id or "").startswith("req_") is (flavor == "openai")
        body = server.requests[0]
        assert body["model"] == "m1"
        assert body["messages"] == MESSAGES
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert body["tools"] == TOOLS
        assert body["temperature"] == 0.3
        assert server.request_headers[0]["Authorization"] == "Bearer sk-test"

    asyncio.run(main())


def test_turns_reuse_one_connection_after_warm_up() -> None:
    async def main() -> None:
        async with FakeChatServer(["One.", "Two.", "Three."]) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url)
            await llm.warm()
            for _ in range(3):
                await collect(llm)
            await llm.aclose()
        assert len(server.peers) == 4
        assert len(set(server.peers)) == 1, "every request after warm() must reuse its connection"

    asyncio.run(main())


def test_warm_up_reports_a_rejected_key() -> None:
    async def main() -> None:
        async with FakeChatServer(api_key="right") as server:
            llm = OpenAILLM(model="m", base_url=server.base_url, api_key="wrong")
            with pytest.raises(ProviderStatusError, match=r"Incorrect API key provided.*check the API key"):
                await llm.warm()
            await llm.aclose()

    asyncio.run(main())


def test_aclose_mid_stream_closes_the_connection_and_the_next_turn_works() -> None:
    async def main() -> None:
        async with FakeChatServer([Reply("la", endless=True), "After."]) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url)
            stream = await llm.complete(MESSAGES)
            got = [await anext(stream) for _ in range(3)]
            await stream.aclose()
            await stream.aclose()  # twice is fine
            assert [chunk async for chunk in stream] == []
            await asyncio.wait_for(server.client_went_away.wait(), 5)
            assert llm.rewarming is not None
            await asyncio.wait_for(llm.rewarming, 5)  # a fresh connection, opened in the background
            chunks, _ = await collect(llm)
            await llm.aclose()
        assert got == [TextDelta("la")] * 3
        assert chunks[0] == TextDelta("After.")
        first, rewarm, after = server.peers
        assert rewarm != first, "a cancelled stream's connection is not reused"
        assert after == rewarm, "the next turn used the connection re-warmed after the cancel"

    asyncio.run(main())


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (401, False), (404, False), (429, True), (500, True)]
)
def test_http_errors_in_every_dialect(flavor: Flavor, status: int, retryable: bool) -> None:
    async def main() -> None:
        async with FakeChatServer([Reply(status=status, error_message="scripted")], flavor=flavor) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url, name=flavor)
            with pytest.raises(ProviderStatusError) as caught:
                await llm.complete(MESSAGES)
            await llm.aclose()
        error = caught.value
        assert error.status == status
        assert error.retryable is retryable
        assert error.provider == flavor
        assert "scripted" in str(error)
        assert (error.request_id is not None) is (flavor == "openai")

    asyncio.run(main())


def test_x_should_retry_overrides_the_status_rule() -> None:
    async def main() -> None:
        reply = Reply(status=500, headers={"x-should-retry": "false"})
        async with FakeChatServer([reply]) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url)
            with pytest.raises(ProviderStatusError) as caught:
                await llm.complete(MESSAGES)
            await llm.aclose()
        assert not caught.value.retryable

    asyncio.run(main())


@pytest.mark.parametrize(
    ("flavor", "kind", "retryable"),
    [
        ("openai", ProviderStreamError, True),
        ("ollama", ProviderStreamError, True),
        ("vllm", ProviderStatusError, False),
        ("llamacpp", ProviderStatusError, True),
    ],
)
def test_errors_inside_the_stream(flavor: Flavor, kind: type[ProviderError], retryable: bool) -> None:
    async def main() -> None:
        async with FakeChatServer([Reply("a b c", stream_error_after=2)], flavor=flavor) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url)
            stream = await llm.complete(MESSAGES)
            texts = [await anext(stream), await anext(stream)]
            with pytest.raises(kind) as caught:
                await anext(stream)
            await stream.aclose()
            await llm.aclose()
        assert texts == [TextDelta("a "), TextDelta("b ")]
        assert caught.value.retryable is retryable
        assert "scripted failure" in str(caught.value)

    asyncio.run(main())


def test_a_dropped_connection_mid_stream_is_a_connection_error() -> None:
    async def main() -> None:
        async with FakeChatServer([Reply("a b c", drop_after=1)]) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url)
            stream = await llm.complete(MESSAGES)
            assert await anext(stream) == TextDelta("a ")
            with pytest.raises(ProviderConnectionError):
                await anext(stream)
            await stream.aclose()
            await llm.aclose()

    asyncio.run(main())


def test_a_stalled_stream_times_out() -> None:
    async def main() -> None:
        async with FakeChatServer([Reply("a b c", stall_after=1)]) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url, read_timeout=0.2)
            stream = await llm.complete(MESSAGES)
            assert await anext(stream) == TextDelta("a ")
            with pytest.raises(ProviderTimeoutError, match="stalled") as caught:
                await anext(stream)
            await stream.aclose()
            await asyncio.wait_for(server.client_went_away.wait(), 5)
            await llm.aclose()
        assert caught.value.retryable

    asyncio.run(main())


def test_an_unreachable_server_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        llm = OpenAILLM(model="m", base_url=f"http://127.0.0.1:{port}/v1")
        with pytest.raises(ProviderConnectionError, match="check the URL") as caught:
            await llm.complete(MESSAGES)
        await llm.aclose()
        assert caught.value.retryable

    asyncio.run(main())


def test_tiny_writes_and_keepalive_comments_change_nothing() -> None:
    async def main() -> None:
        reply = Reply("Héllo wörld ☕.", tool_calls=[("f", '{"x": "ü"}')], split=1, keepalive_comments=True)
        async with FakeChatServer([reply]) as server:
            llm = OpenAILLM(model="m", base_url=server.base_url)
            chunks, _ = await collect(llm)
            await llm.aclose()
        assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "Héllo wörld ☕."
        assert next(c for c in chunks if isinstance(c, ToolCall)).arguments == '{"x": "ü"}'

    asyncio.run(main())
