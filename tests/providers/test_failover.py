"""FailoverLLM over two real OpenAILLM clients and fake servers: the turn survives the first one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from voicecore.errors import ConfigError, ProviderStatusError, ProviderStreamError, ProviderTimeoutError
from voicecore.fakes.openai import FakeChatServer, Reply
from voicecore.providers.base import LLM, TextDelta, ToolCall
from voicecore.providers.failover import FailoverLLM
from voicecore.providers.openai import OpenAILLM

MESSAGES = [{"role": "user", "content": "Hi"}]


async def turn(llm: FailoverLLM) -> tuple[str, str | None]:
    stream = await llm.complete(MESSAGES)
    try:
        text = "".join([c.text async for c in stream if isinstance(c, TextDelta)])
    finally:
        await stream.aclose()
    return text, stream.provider


def run_turns(
    primary: Sequence[Reply | str], backup: Sequence[Reply | str], turns: int = 1, **kwargs: object
) -> tuple[list[tuple[str, str | None]], FakeChatServer, FakeChatServer]:
    async def main() -> tuple[list[tuple[str, str | None]], FakeChatServer, FakeChatServer]:
        async with FakeChatServer(primary) as one, FakeChatServer(backup, flavor="vllm") as two:
            llms = [
                OpenAILLM(model="m", base_url=one.base_url, name="primary"),
                OpenAILLM(model="m", base_url=two.base_url, name="backup"),
            ]
            llm = FailoverLLM(llms, **kwargs)  # type: ignore[arg-type]
            assert isinstance(llm, LLM)
            results = [await turn(llm) for _ in range(turns)]
            for client in llms:
                await client.aclose()
        return results, one, two

    return asyncio.run(main())


def test_the_primary_answers_when_it_can() -> None:
    results, _one, two = run_turns(["From primary."], ["From backup."])
    assert results == [("From primary.", "primary")]
    assert len(two.requests) == 0


@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=503),
        Reply(status=429),
        Reply("never said", stream_error_after=0),
        Reply("never said", drop_after=0),
    ],
)
def test_a_retryable_failure_before_output_moves_the_same_turn_to_the_backup(failure: Reply) -> None:
    results, one, two = run_turns([failure], ["From backup."])
    assert results == [("From backup.", "backup")]
    assert one.requests == two.requests, "the backup gets the same request"


def test_a_stall_past_the_first_token_deadline_fails_over() -> None:
    results, _one, _ = run_turns([Reply("slow", stall_after=0)], ["From backup."], first_token_timeout=0.3)
    assert results == [("From backup.", "backup")]


def test_the_failed_provider_is_skipped_until_its_cooldown_ends() -> None:
    results, one, _ = run_turns([Reply(status=500), "Recovered."], ["B1.", "B2."], turns=2, cooldown=60)
    assert results == [("B1.", "backup"), ("B2.", "backup")]
    assert len(one.requests) == 1, "the second turn did not wait on the failed primary"
    results, one, _two = run_turns([Reply(status=500), "Recovered."], ["B1."], turns=2, cooldown=0)
    assert results == [("B1.", "backup"), ("Recovered.", "primary")]


def test_a_final_error_is_not_retried_elsewhere() -> None:
    async def main() -> None:
        async with FakeChatServer([Reply(status=400)]) as one, FakeChatServer(["B."]) as two:
            llms = [OpenAILLM(model="m", base_url=s.base_url) for s in (one, two)]
            with pytest.raises(ProviderStatusError) as caught:
                await FailoverLLM(llms).complete(MESSAGES)
            assert caught.value.status == 400
            assert len(two.requests) == 0
            for client in llms:
                await client.aclose()

    asyncio.run(main())


def test_when_every_provider_fails_the_last_error_is_raised() -> None:
    async def main() -> None:
        async with (
            FakeChatServer([Reply(status=503)]) as one,
            FakeChatServer([Reply("x", stall_after=0)]) as two,
        ):
            llms = [OpenAILLM(model="m", base_url=s.base_url, name=n) for s, n in ((one, "a"), (two, "b"))]
            with pytest.raises(ProviderTimeoutError, match="b: no first token"):
                await FailoverLLM(llms, first_token_timeout=0.2).complete(MESSAGES)
            for client in llms:
                await client.aclose()

    asyncio.run(main())


def test_an_error_after_output_propagates_and_benches_the_provider() -> None:
    async def main() -> None:
        async with (
            FakeChatServer([Reply("a b c", stream_error_after=1), "P."]) as one,
            FakeChatServer(["B."]) as two,
        ):
            llms = [OpenAILLM(model="m", base_url=s.base_url, name=n) for s, n in ((one, "a"), (two, "b"))]
            llm = FailoverLLM(llms, cooldown=60)
            stream = await llm.complete(MESSAGES)
            assert await anext(stream) == TextDelta("a ")
            with pytest.raises(ProviderStreamError):
                await anext(stream)
            await stream.aclose()
            assert await turn(llm) == ("B.", "b")
            for client in llms:
                await client.aclose()

    asyncio.run(main())


def test_tool_calls_and_an_empty_reply_come_through() -> None:
    results, _, _ = run_turns([Reply(tool_calls=[("f", "{}")])], [])
    assert results == [("", "primary")]

    async def main() -> list[object]:
        async with FakeChatServer([Reply(tool_calls=[("f", "{}")])]) as one:
            llm = OpenAILLM(model="m", base_url=one.base_url)
            stream = await FailoverLLM([llm]).complete(MESSAGES)
            chunks = [c async for c in stream]
            await stream.aclose()
            await llm.aclose()
        return chunks

    chunks = asyncio.run(main())
    assert [c.name for c in chunks if isinstance(c, ToolCall)] == ["f"]


def test_bad_settings() -> None:
    with pytest.raises(ConfigError, match="first_token_timeout"):
        FailoverLLM([OpenAILLM(model="m")], first_token_timeout=0)
    with pytest.raises(ConfigError, match="at least one"):
        FailoverLLM([])
