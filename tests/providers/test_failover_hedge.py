"""Hedged requests in FailoverLLM: a slow first provider gets company, the first to speak serves.

The latencies are far apart (a "slow" provider would take 30 s), so which side wins never
depends on the machine's speed, and no test waits for a slow side: it is cancelled.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from voicecore.errors import ConfigError, ProviderStatusError
from voicecore.fakes.anthropic import FakeAnthropic
from voicecore.fakes.openai import FakeChatServer, Reply
from voicecore.providers.anthropic import AnthropicLLM
from voicecore.providers.base import TextDelta
from voicecore.providers.failover import FailoverLLM
from voicecore.providers.openai import OpenAILLM
from voicecore.testing import FakeLLM, FakeReply

MESSAGES = [{"role": "user", "content": "Hi"}]
SLOW = 30.0


def fast(text: str) -> FakeReply:
    return FakeReply(text, first_token=0.0)


def slow(text: str) -> FakeReply:
    return FakeReply(text, first_token=SLOW)


def failing(status: int) -> FakeReply:
    return FakeReply("x", first_token=0.0, error=ProviderStatusError("scripted", provider="p", status=status))


async def turn(llm: FailoverLLM) -> tuple[str, str | None]:
    stream = await llm.complete(MESSAGES)
    text = "".join([c.text async for c in stream if isinstance(c, TextDelta)])
    await stream.aclose()
    return text, stream.provider


def race(
    primary: FakeReply, backup: FakeReply, *, hedge_after: float | None
) -> tuple[tuple[str, str | None], FakeLLM, FakeLLM, FailoverLLM]:
    one, two = FakeLLM([primary], name="primary"), FakeLLM([backup], name="backup")
    llm = FailoverLLM([one, two], hedge_after=hedge_after, first_token_timeout=None)

    async def main() -> tuple[str, str | None]:
        async with asyncio.timeout(10):
            return await turn(llm)

    return asyncio.run(main()), one, two, llm


def test_a_slow_primary_gets_a_hedge_and_the_first_to_speak_serves() -> None:
    result, one, two, llm = race(slow("Late."), fast("Backup here."), hedge_after=0.05)
    assert result == ("Backup here.", "backup")
    assert one.requests == two.requests, "the hedge is the same request"
    assert one.streams[0].closed, "the loser's stream is closed, cancelling its request"
    assert not llm.breaker.is_down(0, time.monotonic()), "a slow primary is not a failed one"


def test_a_primary_that_answers_in_time_is_not_hedged() -> None:
    result, _one, two, _ = race(fast("Primary."), fast("Backup."), hedge_after=SLOW)
    assert result == ("Primary.", "primary")
    assert two.requests == []


@pytest.mark.parametrize(
    ("primary", "backup", "winner"),
    [(slow("Late."), fast("Backup."), "backup"), (fast("Primary."), slow("Late."), "primary")],
)
def test_hedge_after_zero_asks_both_at_once_and_closes_the_loser(
    primary: FakeReply, backup: FakeReply, winner: str
) -> None:
    result, one, two, _ = race(primary, backup, hedge_after=0)
    assert result[1] == winner
    assert len(one.requests) == len(two.requests) == 1
    loser = two if winner == "primary" else one
    assert loser.streams[0].closed


@pytest.mark.parametrize(
    ("primary", "backup", "winner", "benched"),
    [
        (failing(503), FakeReply("Backup.", first_token=0.2), "backup", True),  # fails while the hedge runs
        (FakeReply("Primary.", first_token=0.2), failing(503), "primary", True),  # the hedge fails first
        (failing(400), FakeReply("Backup.", first_token=0.2), "backup", False),  # even a final error
    ],
)
def test_an_error_on_one_side_leaves_the_turn_to_the_other(
    primary: FakeReply, backup: FakeReply, winner: str, benched: bool
) -> None:
    result, _one, _two, llm = race(primary, backup, hedge_after=0)
    assert result[1] == winner
    failed = 1 if winner == "primary" else 0
    assert llm.breaker.is_down(failed, time.monotonic()) is benched, "only a retryable failure cools down"


def test_when_both_sides_fail_the_error_is_raised_and_nothing_is_left_open() -> None:
    one, two = FakeLLM([failing(503)], name="primary"), FakeLLM([failing(500)], name="backup")
    llm = FailoverLLM([one, two], hedge_after=0)

    async def main() -> None:
        with pytest.raises(ProviderStatusError, match="scripted"):
            await llm.complete(MESSAGES)

    asyncio.run(main())
    assert one.streams[0].closed
    assert two.streams[0].closed


def test_cancelling_the_turn_while_hedging_closes_both_streams() -> None:
    one, two = FakeLLM([slow("a")], name="primary"), FakeLLM([slow("b")], name="backup")
    llm = FailoverLLM([one, two], hedge_after=0, first_token_timeout=None)

    async def main() -> None:
        task = asyncio.ensure_future(llm.complete(MESSAGES))
        while len(two.streams) < 1:  # noqa: ASYNC110 (FakeLLM has no event for requests)
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert one.streams[0].closed
    assert two.streams[0].closed


def test_over_the_wire_the_losing_request_is_cancelled_on_its_server() -> None:
    async def main() -> None:
        async with (
            FakeChatServer([Reply("never", stall_after=0)]) as stalled,
            FakeAnthropic(["Claude here."]) as claude,
        ):
            primary = OpenAILLM(model="m", base_url=stalled.base_url, name="primary")
            backup = AnthropicLLM(base_url=claude.base_url, api_key="k")
            llm = FailoverLLM([primary, backup], hedge_after=0.05)
            assert await turn(llm) == ("Claude here.", "anthropic")
            await asyncio.wait_for(stalled.client_went_away.wait(), 5)
            await llm.aclose()  # closes both clients' pools

    asyncio.run(main())


def test_a_negative_hedge_is_refused() -> None:
    with pytest.raises(ConfigError, match="hedge_after"):
        FailoverLLM([FakeLLM()], hedge_after=-1)


def test_warm_opens_every_providers_connection_and_logs_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        async with FakeAnthropic(["Claude here."]) as claude:
            primary = OpenAILLM(model="m", base_url=f"http://127.0.0.1:{port}/v1", name="primary")
            backup = AnthropicLLM(base_url=claude.base_url, api_key="k")
            llm = FailoverLLM([primary, backup, FakeLLM(name="no-pool")])
            await llm.warm()
            assert await turn(llm) == ("Claude here.", "anthropic")
            await llm.aclose()
        assert len(claude.peers) == 2
        assert len(set(claude.peers)) == 1, "the turn reused the connection warm() opened"

    asyncio.run(main())
    assert "warming primary failed" in caplog.text
