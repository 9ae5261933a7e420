"""The intent router behind the LLM protocol: answers, tool calls, slot prompts, fallback, counters."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prometheus_client import REGISTRY

from voicecore.intents import Intent, Slot
from voicecore.providers.base import LLM, TextDelta
from voicecore.providers.router import IntentRouterLLM
from voicecore.testing import FakeLLM
from voicecore.tools import ToolCall

HOURS = Intent(name="opening_hours", examples=("when do you open",), reply="We open at noon.")
BOOK = Intent(
    name="book_table",
    examples=("i would like to book a table", "a table for two at seven please"),
    tool="book_table",
    reply="Done: {result}",
    slots=(
        Slot("people", "people", prompt="For how many people?"),
        Slot("time", "time", prompt="At what time?"),
    ),
    description="booking a table",
)
HUMAN = Intent(
    name="human",
    examples=("put me through to a human",),
    tool="transfer_call",
    arguments={"to": "+15550100"},
    reply="Putting you through.",
)


def answer(llm: IntentRouterLLM, messages: list[dict[str, Any]]) -> list[object]:
    return answered(llm, messages)[0]


def answered(llm: IntentRouterLLM, messages: list[dict[str, Any]]) -> tuple[list[object], str | None]:
    async def collect() -> tuple[list[object], str | None]:
        stream = await llm.complete(messages)
        chunks = [chunk async for chunk in stream]
        await stream.aclose()
        return chunks, stream.request_id

    return asyncio.run(collect())


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("voicecore_intent_router_requests_total", {"outcome": outcome}) or 0.0


def test_it_is_an_llm() -> None:
    assert isinstance(IntentRouterLLM([HOURS]), LLM)


def test_a_match_is_answered_without_the_llm() -> None:
    fallback = FakeLLM(["from the llm"])
    llm = IntentRouterLLM([HOURS, BOOK], fallback)
    before = counted("exact")
    assert answer(llm, [{"role": "system", "content": "x"}, user("When do you open?")]) == [
        TextDelta("We open at noon.")
    ]
    assert fallback.requests == []
    assert answered(llm, [user("when do you open")])[1] == "intent-opening_hours"
    assert counted("exact") == before + 2
    assert llm.stats == {"exact": 2}
    assert llm.hit_rate == 1.0


def test_a_tool_intent_calls_the_tool_then_replies_with_its_result() -> None:
    llm = IntentRouterLLM([HOURS, BOOK])
    [call] = answer(llm, [user("A table for four at 8 please")])
    assert isinstance(call, ToolCall)
    assert call.name == "book_table"
    assert call.id.startswith("intent-book_table-")
    assert json.loads(call.arguments) == {"people": 4, "time": "8:00"}
    messages = [
        user("A table for four at 8 please"),
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        ]},
        {"role": "tool", "tool_call_id": call.id, "content": "booked for 4 at 8:00"},
    ]  # fmt: skip
    assert answer(llm, messages) == [TextDelta("Done: booked for 4 at 8:00")]
    assert llm.stats == {"exact": 1, "tool_result": 1}


def test_fixed_arguments_go_with_the_call() -> None:
    [call] = answer(IntentRouterLLM([HUMAN]), [user("put me through to a human")])
    assert isinstance(call, ToolCall)
    assert (call.name, json.loads(call.arguments)) == ("transfer_call", {"to": "+15550100"})


def test_a_missing_slot_is_asked_for_and_the_answer_completes_the_request() -> None:
    llm = IntentRouterLLM([HOURS, BOOK])
    assert answer(llm, [user("I would like to book a table")]) == [TextDelta("For how many people?")]
    messages = [
        user("I would like to book a table"),
        {"role": "assistant", "content": "For how many people?"},
        user("six people at seven thirty"),
    ]
    [call] = answer(llm, messages)
    assert isinstance(call, ToolCall)
    assert json.loads(call.arguments) == {"people": 6, "time": "7:30"}
    assert llm.stats["slot_prompt"] == 1


def test_a_miss_goes_to_the_fallback_llm_with_the_whole_conversation() -> None:
    fallback = FakeLLM(["We don't deliver, sorry."])
    llm = IntentRouterLLM([HOURS, BOOK], fallback)
    messages = [{"role": "system", "content": "You are a front desk."}, user("Do you deliver?")]
    chunks = answer(llm, messages)
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "We don't deliver, sorry."
    assert fallback.requests[0][0] == messages
    assert llm.stats == {"fallback": 1}
    assert llm.hit_rate == 0.0


def test_tool_results_of_the_llms_own_calls_go_back_to_it() -> None:
    fallback = FakeLLM(["It is sunny."])
    llm = IntentRouterLLM([HOURS], fallback)
    messages = [
        user("weather?"),
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
    ]  # fmt: skip
    answer(llm, messages)
    assert len(fallback.requests) == 1


def test_without_a_fallback_a_miss_lists_what_it_can_do() -> None:
    before = counted("unmatched")
    llm = IntentRouterLLM([HOURS, BOOK])
    [reply], request_id = answered(llm, [user("Do you deliver?")])
    assert request_id == "intent-none"
    assert reply == TextDelta("Sorry, I didn't catch that. I can help with opening hours or booking a table.")
    assert counted("unmatched") == before + 1


@pytest.mark.parametrize("messages", [[], [{"role": "assistant", "content": "hi"}]])
def test_requests_that_are_not_a_callers_turn_are_not_matched(messages: list[dict[str, Any]]) -> None:
    llm = IntentRouterLLM([HOURS])
    [reply] = answer(llm, messages)
    assert isinstance(reply, TextDelta)
    assert reply.text.startswith("Sorry")


def test_the_registry_router_hands_misses_to_openai_base_url_when_set() -> None:
    from voicecore.providers import registry
    from voicecore.providers.openai import OpenAILLM
    from voicecore.providers.router import IntentRouterLLM

    alone = registry.create("llm", "intents", {}, {"intents": ()})
    assert isinstance(alone, IntentRouterLLM)
    assert alone.fallback_llm is None
    keys = {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}
    routed = registry.create("llm", "intents", keys, {"intents": (), "model": "llama3"})
    assert isinstance(routed, IntentRouterLLM)
    assert isinstance(routed.fallback_llm, OpenAILLM)
    assert routed.fallback_llm.base_url == "http://127.0.0.1:11434/v1"
