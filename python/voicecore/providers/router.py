"""An ``LLM`` that answers the agent's intents itself and hands everything else on.

:class:`IntentRouterLLM` looks at the last message of each request:

* a **caller's text** that matches an intent (:class:`voicecore.intents.IntentRouter`) is
  answered at once: the reply template as a :class:`TextDelta`, or, for an intent with a
  tool, a :class:`~voicecore.tools.ToolCall` whose id starts ``intent-<name>-``; a missing
  slot is asked for with the slot's prompt, and the caller's answer is read together with
  the request that prompted it;
* the **result of such a tool call** is answered with the intent's reply template
  (``{result}`` is the tool's answer);
* anything else goes to ``fallback_llm``, or without one gets a polite
  "I can help with ..." listing the intents.

The router keeps no state between requests (everything it needs is in the messages), so
one instance serves every call. In front of a real LLM it is a response cache for frequent
questions; the Prometheus counter ``voicecore_intent_router_requests_total{outcome}``
(``exact``, ``fuzzy``, ``slot_prompt``, ``tool_result``, ``fallback``, ``unmatched``) gives
its hit rate, and :attr:`IntentRouterLLM.stats` the same per instance. A stream the router
answered has ``request_id`` ``intent-<name>`` (``intent-none`` for the list of intents), so
logs and transcripts can show which intent answered.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter as Tally
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from prometheus_client import Counter

from voicecore.intents import Intent, IntentRouter, Match, render
from voicecore.providers.base import LLM, LLMChunk, LLMStream, TextDelta
from voicecore.tools import ToolCall

__all__ = ["ROUTER_REQUESTS", "IntentRouterLLM"]

logger = logging.getLogger(__name__)

ROUTER_REQUESTS = Counter(
    "voicecore_intent_router_requests",
    "Requests to the intent router, by outcome (exact, fuzzy, slot_prompt, tool_result: answered "
    "without the LLM; fallback: passed to the LLM; unmatched: no LLM, the intents were listed).",
    ["outcome"],
)
INTENT_MATCHES = Counter("voicecore_intent_matches", "Caller texts matched to each intent.", ["intent"])

_Routed = tuple[list[LLMChunk] | None, str, str | None]
_ANSWERED = ("exact", "fuzzy", "slot_prompt", "tool_result")
_CALL_PREFIX = "intent-"


class IntentRouterLLM:
    """Answers intents without a language model; the rest goes to ``fallback_llm``."""

    name = "intent-router"

    def __init__(
        self,
        intents: Sequence[Intent] | IntentRouter,
        fallback_llm: LLM | None = None,
        *,
        threshold: float = 0.65,
    ) -> None:
        """Route to ``intents`` (or a ready router, whose threshold then applies).

        Raises:
            ConfigError: The intents are invalid (see :class:`IntentRouter`).
        """
        self.router = (
            intents if isinstance(intents, IntentRouter) else IntentRouter(intents, threshold=threshold)
        )
        self.fallback_llm = fallback_llm
        self.stats: Tally[str] = Tally()
        self._by_name = {intent.name: intent for intent in self.router.intents}
        self._calls = itertools.count(1)

    @property
    def hit_rate(self) -> float:
        """Share of requests answered without the fallback (0 before any request)."""
        total = sum(self.stats.values())
        return sum(self.stats[o] for o in _ANSWERED) / total if total else 0.0

    async def complete(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] = ()
    ) -> LLMStream:
        """Answer from the intents, or start the fallback's completion."""
        chunks, outcome, intent = self._route(messages)
        self.stats[outcome] += 1
        ROUTER_REQUESTS.labels(outcome).inc()
        if chunks is None:
            if self.fallback_llm is not None:
                return await self.fallback_llm.complete(
                    [dict(m) for m in messages], tools=[dict(t) for t in tools]
                )
            chunks = [TextDelta(self.router.capabilities())]
        return _Answer(chunks, f"{_CALL_PREFIX}{intent or 'none'}")

    def _route(self, messages: Sequence[Mapping[str, Any]]) -> _Routed:
        """The answer (None: not the router's to answer), its outcome label and intent."""
        if not messages:
            return None, "fallback" if self.fallback_llm else "unmatched", None
        last = messages[-1]
        if last.get("role") == "tool":
            return self._after_tool(messages)
        if last.get("role") != "user":
            return None, "fallback" if self.fallback_llm else "unmatched", None
        text = str(last.get("content") or "")
        match = self.router.match(text)
        if match is None:
            match = self._slot_answer(messages, text)
            if match is None:
                return None, "fallback" if self.fallback_llm else "unmatched", None
        INTENT_MATCHES.labels(match.intent.name).inc()
        logger.debug("intent %s matched (score %.2f)", match.intent.name, match.score)
        if match.missing:
            prompt = match.missing[0].prompt
            assert prompt is not None
            return [TextDelta(prompt)], "slot_prompt", match.intent.name
        intent, outcome = match.intent, "exact" if match.exact else "fuzzy"
        if intent.tool is not None:
            arguments = {**intent.arguments, **match.slots}
            call_id = f"{_CALL_PREFIX}{intent.name}-{next(self._calls)}"
            return [ToolCall(call_id, intent.tool, json.dumps(arguments))], outcome, intent.name
        assert intent.reply is not None
        return [TextDelta(render(intent.reply, match.slots))], outcome, intent.name

    def _slot_answer(self, messages: Sequence[Mapping[str, Any]], text: str) -> Match | None:
        """The caller answering a slot prompt: match the request that prompted it, plus ``text``."""
        if len(messages) < 3 or messages[-2].get("role") != "assistant":
            return None
        asked = str(messages[-2].get("content") or "").strip()
        request = messages[-3]
        if request.get("role") != "user":
            return None
        earlier = self.router.match(str(request.get("content") or ""))
        if earlier is None or not any(slot.prompt == asked for slot in earlier.missing):
            return None
        combined = self.router.match(f"{request.get('content')} {text}")
        if combined is None or combined.intent is not earlier.intent:
            return None
        return combined

    def _after_tool(self, messages: Sequence[Mapping[str, Any]]) -> _Routed:
        """The reply after our own tool call's results (the trailing tool messages)."""
        results: list[Mapping[str, Any]] = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.append(message)
        ours = [r for r in results if str(r.get("tool_call_id", "")).startswith(_CALL_PREFIX)]
        if not ours or len(ours) != len(results):
            return None, "fallback" if self.fallback_llm else "unmatched", None
        call_id = str(ours[0]["tool_call_id"])
        name = call_id[len(_CALL_PREFIX) :].rsplit("-", 1)[0]
        intent = self._by_name.get(name)
        if intent is None:
            return None, "fallback" if self.fallback_llm else "unmatched", None
        arguments = _call_arguments(messages, call_id)
        result = str(ours[0].get("content") or "")
        reply = render(intent.reply, {**arguments, "result": result}) if intent.reply else result
        return [TextDelta(reply)], "tool_result", intent.name


def _call_arguments(messages: Sequence[Mapping[str, Any]], call_id: str) -> dict[str, Any]:
    """The arguments of tool call ``call_id`` in the assistant message that made it."""
    for message in reversed(messages):
        for call in message.get("tool_calls") or ():
            if call.get("id") == call_id:
                try:
                    value = json.loads(call["function"].get("arguments") or "{}")
                except (ValueError, KeyError, AttributeError):
                    return {}
                return value if isinstance(value, dict) else {}
    return {}


class _Answer:
    """A completion already known: its chunks, at once; ``request_id`` names the intent."""

    def __init__(self, chunks: list[LLMChunk], request_id: str) -> None:
        self.request_id: str | None = request_id
        self._chunks = chunks
        self._closed = False

    def __aiter__(self) -> AsyncIterator[LLMChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LLMChunk]:
        for chunk in self._chunks:
            if self._closed:
                return
            yield chunk

    async def aclose(self) -> None:
        self._closed = True
