"""The fake chat server is faithful: the official ``openai`` SDK parses everything it sends.

The SDK is code we did not write; if it streams the same text, tool calls and usage from the
fake as OpenAILLM does, and raises its own error classes for the fake's error shapes, the
fake (and so our adapter's tests) speaks the real protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicecore.fakes.openai import FakeChatServer, Flavor, Reply

openai = pytest.importorskip("openai", reason="the official SDK is a test-only dependency (the test extra)")

FLAVORS: list[Flavor] = ["openai", "vllm", "llamacpp", "ollama"]
MESSAGES: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]


async def sdk_stream(server: FakeChatServer) -> tuple[str, dict[int, list[str]], Any, str | None]:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text, calls, usage, finish = "", {}, None, None
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
                for call in choice.delta.tool_calls or ():
                    parts = calls.setdefault(call.index, ["", "", ""])
                    parts[0] = call.id or parts[0]
                    parts[1] = (call.function and call.function.name) or parts[1]
                    parts[2] += (call.function and call.function.arguments) or ""
        return text, calls, usage, finish
    finally:
        await client.close()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_sdk_streams_the_same_reply(flavor: Flavor) -> None:
    reply = Reply("Checking now.", tool_calls=[("get_weather", '{"city": "Paris"}'), ("log", "{}")])

    async def main() -> None:
        async with FakeChatServer([reply], flavor=flavor) as server:
            text, calls, usage, finish = await sdk_stream(server)
        assert text == "Checking now."
        assert [(name, args) for _, name, args in (calls[i] for i in sorted(calls))] == list(reply.tool_calls)
        assert all(call_id.startswith("call_") for call_id, _, _ in calls.values())
        assert finish == "tool_calls"
        assert (usage.prompt_tokens, usage.completion_tokens) == (9, 2)
        assert usage.prompt_tokens_details.cached_tokens == 4

    asyncio.run(main())


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (404, "NotFoundError"),
        (429, "RateLimitError"),
        (500, "InternalServerError"),
    ],
)
def test_the_sdk_raises_its_error_class_for_each_error_status(
    flavor: Flavor, status: int, error_class: str
) -> None:
    async def main() -> None:
        async with FakeChatServer([Reply(status=status, error_message="scripted")], flavor=flavor) as server:
            with pytest.raises(getattr(openai, error_class)) as caught:
                await sdk_stream(server)
        assert caught.value.status_code == status
        assert "scripted" in str(caught.value)
        if flavor == "openai":
            assert (caught.value.request_id or "").startswith("req_")

    asyncio.run(main())


@pytest.mark.parametrize("flavor", ["openai", "vllm", "ollama"])
def test_the_sdk_raises_on_a_data_error_mid_stream(flavor: Flavor) -> None:
    async def main() -> None:
        async with FakeChatServer([Reply("a b", stream_error_after=1)], flavor=flavor) as server:
            with pytest.raises(openai.APIError, match="scripted failure"):
                await sdk_stream(server)

    asyncio.run(main())


def test_the_sdk_skips_llamacpp_error_fields_that_voicecore_reads() -> None:
    # llama.cpp's non-standard `error:` SSE field is not `data:`, so the SDK never sees it and
    # the stream just ends early; OpenAILLM reads it (see test_openai.py). This pins the difference.
    async def main() -> None:
        async with FakeChatServer([Reply("a b", stream_error_after=1)], flavor="llamacpp") as server:
            text, calls, usage, finish = await sdk_stream(server)
        assert (text, calls, usage, finish) == ("a ", {}, None, None)

    asyncio.run(main())
