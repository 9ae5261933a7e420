"""The fake Messages API is faithful: the official ``anthropic`` SDK parses everything it sends.

If the SDK (code we did not write) gets the same text, tool input and usage from the fake as
AnthropicLLM does, and raises its own error classes for the fake's errors, the fake (and so
our adapter's tests) speaks the real protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from voicecore.fakes.anthropic import FakeAnthropic, MessageReply
from voicecore.providers.anthropic import AnthropicLLM
from voicecore.providers.base import TextDelta, ToolCall, Usage

anthropic = pytest.importorskip(
    "anthropic", reason="the official SDK is a test-only dependency (the test extra)"
)

SYSTEM: list[Any] = [
    {"type": "text", "text": "You book tables. " * 50, "cache_control": {"type": "ephemeral"}}
]
MESSAGES: list[Any] = [{"role": "user", "content": "A table for two?"}]
REPLY = MessageReply("Booking it now.", tool_uses=[("book_table", {"people": 2, "time": "20:00"})])


def client(server: FakeAnthropic) -> Any:
    return anthropic.AsyncAnthropic(base_url=server.base_url, api_key="sk-ant", max_retries=0)


def test_the_sdk_streams_the_same_reply_as_the_adapter() -> None:
    async def main() -> None:
        async with FakeAnthropic([REPLY], api_key="sk-ant") as server:
            sdk = client(server)
            async with sdk.messages.stream(
                model="m", max_tokens=100, system=SYSTEM, messages=MESSAGES
            ) as stream:
                text = "".join([piece async for piece in stream.text_stream])
                message = await stream.get_final_message()
            await sdk.close()
            llm = AnthropicLLM(base_url=server.base_url, api_key="sk-ant", cache="prefix")
            ours = [
                chunk
                async for chunk in await llm.complete(
                    [{"role": "system", "content": SYSTEM[0]["text"]}, *MESSAGES]
                )
            ]
            await llm.aclose()
        tool = message.content[1]
        assert text == "Booking it now."
        assert (tool.type, tool.name, tool.input) == (
            "tool_use",
            "book_table",
            {"people": 2, "time": "20:00"},
        )
        assert message.stop_reason == "tool_use"
        assert message.usage.cache_creation_input_tokens > 0
        assert message.usage.output_tokens == 13
        assert "".join(c.text for c in ours if isinstance(c, TextDelta)) == text
        call = next(c for c in ours if isinstance(c, ToolCall))
        assert (call.name, call.arguments) == ("book_table", '{"people": 2, "time": "20:00"}')
        usage = ours[-1]
        assert isinstance(usage, Usage)
        # The SDK's request wrote the system prompt to the cache; ours read it back.
        assert usage.cached_tokens == message.usage.cache_creation_input_tokens
        assert usage.completion_tokens == message.usage.output_tokens

    asyncio.run(main())


def test_the_sdk_reads_the_cache_on_the_second_request() -> None:
    async def main() -> None:
        async with FakeAnthropic(["One.", "Two."]) as server:
            sdk = client(server)
            usages = []
            for _ in range(2):
                stream = await sdk.messages.create(
                    model="m", max_tokens=100, system=SYSTEM, messages=MESSAGES, stream=True
                )
                async for event in stream:
                    if event.type == "message_start":
                        usages.append(event.message.usage)
            await sdk.close()
        assert usages[0].cache_read_input_tokens == 0
        assert usages[1].cache_read_input_tokens == usages[0].cache_creation_input_tokens > 0
        assert usages[1].cache_creation_input_tokens == 0

    asyncio.run(main())


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (403, "PermissionDeniedError"),
        (404, "NotFoundError"),
        (429, "RateLimitError"),
        (500, "InternalServerError"),
        (529, "OverloadedError"),  # an InternalServerError, so an APIStatusError too
    ],
)
def test_the_sdk_raises_its_error_class_for_each_error_status(status: int, error_class: str) -> None:
    async def main() -> None:
        async with FakeAnthropic([MessageReply(status=status, error_message="scripted")]) as server:
            sdk = client(server)
            with pytest.raises(getattr(anthropic, error_class)) as caught:
                async with sdk.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
                    await stream.get_final_message()
            await sdk.close()
        error = caught.value
        assert error.status_code == status
        assert error.body["error"]["message"] == "scripted"
        assert error.request_id is not None
        assert error.request_id.startswith("req_")

    asyncio.run(main())


def test_the_sdk_raises_for_an_error_event_inside_the_stream() -> None:
    async def main() -> None:
        async with FakeAnthropic(
            [MessageReply("a b c", stream_error_after=2, error_message="Overloaded")]
        ) as server:
            sdk = client(server)
            texts: list[str] = []

            async def read() -> None:
                async with sdk.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
                    async for piece in stream.text_stream:  # one by one: the error cuts the loop
                        texts.append(piece)

            with pytest.raises(anthropic.APIStatusError) as caught:
                await read()
            await sdk.close()
        assert texts == ["a ", "b "]
        assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}

    asyncio.run(main())
