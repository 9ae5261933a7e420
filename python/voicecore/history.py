"""Conversation history with a token budget, in the OpenAI chat message shape.

:class:`History` records a call's conversation (user transcripts, what the agent said, the
tool calls it made and their results) and :meth:`History.messages` returns the view to send
to the LLM, trimmed to a token budget:

- the system prompt is always kept;
- the newest user message is always kept, even when on its own it exceeds the budget;
- after it, the messages of the current turn are kept newest first while they fit;
- then whole older turns (a user message and everything that answered it) are kept, newest
  first, while they fit; the oldest turns are the first to go;
- an assistant message that made tool calls and the results of those calls are kept or
  dropped together, so the view never holds an orphan call or an orphan result. Calls whose
  result has not been added yet are left out of the view (the API rejects them).

The history forgets what no view can reach again, so a long call's memory stays bounded: once
the messages after a turn cost more than ``max_tokens`` (not counting the newest exchange,
which a barge-in may still shorten), that turn and every older one are dropped for good.

Everything is pure: no clock, no I/O. The budget is counted with a caller-supplied counter;
the default, :func:`approx_tokens`, is a cheap approximation that needs no tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicecore.errors import ConfigError, HistoryError

__all__ = ["MESSAGE_OVERHEAD_TOKENS", "History", "Message", "TokenCounter", "approx_tokens"]

Message = dict[str, Any]
"""One chat message: ``{"role": ..., "content": ...}`` plus ``tool_calls`` or ``tool_call_id``."""

TokenCounter = Callable[[Mapping[str, Any]], int]
"""Counts the tokens one message costs, its per-message overhead included."""

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens :func:`approx_tokens` adds per message for the role and the chat framing."""


def approx_tokens(message: Mapping[str, Any]) -> int:
    """Estimate a message's tokens as ``ceil(chars / 4) + 4``.

    About four characters make a token in English text with OpenAI's tokenizers; the four
    extra tokens stand for the role and framing. ``chars`` counts the content, the tool
    call names and arguments, and the tool call id of a tool result.

    Args:
        message: A chat message.

    Returns:
        The estimated token count (at least :data:`MESSAGE_OVERHEAD_TOKENS`).
    """
    chars = len(message.get("content") or "")
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    chars += len(message.get("tool_call_id") or "")
    return MESSAGE_OVERHEAD_TOKENS + -(-chars // 4)


@dataclass(slots=True)
class _Entry:
    """A stored message; an assistant message with tool calls also holds their results."""

    message: Message
    results: dict[str, Message] = field(default_factory=dict)
    # The messages this entry contributes to the view and their cost; None when stale.
    view: tuple[list[Message], int] | None = None


def _copy(message: Message) -> Message:
    out = dict(message)
    if "tool_calls" in out:
        out["tool_calls"] = [{**call, "function": dict(call["function"])} for call in message["tool_calls"]]
    return out


def _normalise_call(index: int, call: Mapping[str, Any]) -> dict[str, Any]:
    call_id = call.get("id")
    function = call.get("function")
    if not isinstance(call_id, str) or not call_id:
        raise HistoryError(f"tool call #{index} has no id")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise HistoryError(f"tool call {call_id!r} has no function name")
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        raise HistoryError(f"tool call {call_id!r}: arguments must be a JSON string")
    return {
        "id": call_id,
        "type": call.get("type", "function"),
        "function": {"name": function["name"], "arguments": arguments},
    }


class History:
    """A call's conversation, trimmed to a token budget when read.

    Args:
        system_prompt: The system message's content; always the first message of the view.
        max_tokens: Token budget of the view returned by :meth:`messages`.
        count_tokens: Counts one message's tokens; :func:`approx_tokens` by default. Pass
            a real tokenizer's count for exact budgets.

    Raises:
        ConfigError: ``max_tokens`` is not a positive integer.
    """

    def __init__(
        self, system_prompt: str, *, max_tokens: int, count_tokens: TokenCounter = approx_tokens
    ) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise ConfigError(f"max_tokens must be a positive integer, not {max_tokens!r}")
        self.system_prompt = system_prompt
        self.max_tokens = max_tokens
        self._count = count_tokens
        self._entries: list[_Entry] = []

    def __len__(self) -> int:
        """Number of stored messages, tool results included, the system prompt excluded."""
        return sum(1 + len(entry.results) for entry in self._entries)

    def add_user(self, text: str) -> None:
        """Append what the caller said.

        Args:
            text: The final transcript of the caller's turn.
        """
        self._entries.append(_Entry({"role": "user", "content": text}))
        self._forget_unreachable()

    def add_assistant(self, text: str, tool_calls: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Append an assistant message; a message with neither text nor tool calls is skipped.

        Args:
            text: What the assistant said (may be empty when it only calls tools).
            tool_calls: Tool calls in the OpenAI shape:
                ``{"id": ..., "type": "function", "function": {"name": ..., "arguments": ...}}``
                where ``arguments`` is a JSON string.

        Raises:
            HistoryError: A tool call lacks an id or a function name, or its arguments are
                not a string.
        """
        calls = [_normalise_call(i, call) for i, call in enumerate(tool_calls or ())]
        if not text and not calls:
            return
        message: Message = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        self._entries.append(_Entry(message))

    def add_tool_result(self, call_id: str, content: str) -> None:
        """Record the result of one tool call.

        Args:
            call_id: The id of the call, as given in the assistant message's ``tool_calls``.
            content: The result as the LLM should read it (an error message for a failure).

        Raises:
            HistoryError: No assistant message made a call with this id, or it already has
                a result.
        """
        for entry in reversed(self._entries):
            calls = entry.message.get("tool_calls") or ()
            if any(call["id"] == call_id for call in calls):
                if call_id in entry.results:
                    raise HistoryError(f"tool call {call_id!r} already has a result")
                entry.results[call_id] = {"role": "tool", "tool_call_id": call_id, "content": content}
                entry.view = None
                return
        raise HistoryError(f"no assistant message made a tool call with id {call_id!r}")

    def replace_last_assistant(self, text: str) -> None:
        """Replace the newest assistant message's text with the part the caller heard.

        Used on barge-in. An empty ``text`` removes the message, unless it carries tool
        calls: then only its text is cleared, and the calls and their results stay. (A
        second call without a new assistant message in between edits an older reply, which
        the history may already have forgotten.)

        Args:
            text: The assistant text that was actually played to the caller.

        Raises:
            HistoryError: There is no assistant message.
        """
        for index in range(len(self._entries) - 1, -1, -1):
            entry = self._entries[index]
            if entry.message["role"] != "assistant":
                continue
            if not text and "tool_calls" not in entry.message:
                del self._entries[index]
            else:
                entry.message["content"] = text or None
                entry.view = None
            return
        raise HistoryError("there is no assistant message to replace")

    def messages(self) -> list[Message]:
        """The conversation to send to the LLM, trimmed to ``max_tokens``.

        Returns:
            Fresh message dicts (changing them does not change the history): the system
            message first, then the kept messages in conversation order.
        """
        system: Message = {"role": "system", "content": self.system_prompt}
        budget = self.max_tokens - self._count(system)
        blocks = [block for block in map(self._view, self._entries) if block[0]]
        newest_user = next(
            (i for i in range(len(blocks) - 1, -1, -1) if blocks[i][0][0]["role"] == "user"), None
        )

        head: list[Message] = []  # the newest user message, kept whatever it costs
        current: list[list[Message]] = []  # blocks after it that fit, newest first
        older = blocks
        if newest_user is not None:
            head, cost = blocks[newest_user]
            budget -= cost
            older = blocks[:newest_user]
            for block, cost in reversed(blocks[newest_user + 1 :]):
                if cost > budget:
                    older = []
                    break
                current.append(block)
                budget -= cost

        kept_turns: list[list[Message]] = []
        for turn, cost in reversed(_turns(older)):
            if cost > budget:
                break
            kept_turns.append(turn)
            budget -= cost

        out = [system]
        for turn in reversed(kept_turns):
            out += turn
        out += head
        for block in reversed(current):
            out += block
        return [_copy(message) for message in out]

    def _forget_unreachable(self) -> None:
        """Drop the oldest turns that no later view can hold.

        A view keeps an older turn only if every newer message fits the budget with it, and
        the messages before the newest user and assistant messages only ever grow (tool
        results are added to them). So once those cost more than ``max_tokens`` after a
        turn, that turn and all before it are out of every future view. Turns with a tool
        call still awaiting its result are kept, so that its result can still be added.
        """
        newest = {entry.message["role"]: i for i, entry in enumerate(self._entries)}
        settled = min(newest.get("user", 0), newest.get("assistant", len(self._entries)))
        newer_cost = 0
        for index in range(settled - 1, 0, -1):
            entry = self._entries[index]
            newer_cost += self._view(entry)[1]
            if entry.message["role"] == "user" and newer_cost > self.max_tokens:
                if not any(map(_awaits_result, self._entries[:index])):
                    del self._entries[:index]
                return

    def _view(self, entry: _Entry) -> tuple[list[Message], int]:
        """The messages an entry adds to the view, and their token cost."""
        if entry.view is None:
            message = entry.message
            calls = message.get("tool_calls")
            if calls is None:
                block = [message]
            else:
                answered = [call for call in calls if call["id"] in entry.results]
                head = {key: value for key, value in message.items() if key != "tool_calls"}
                if answered:
                    head["tool_calls"] = answered
                block = [head] if answered or head["content"] else []
                block += [entry.results[call["id"]] for call in answered]
            entry.view = (block, sum(self._count(m) for m in block))
        return entry.view


def _awaits_result(entry: _Entry) -> bool:
    """Whether the entry made a tool call that has no result yet."""
    return any(call["id"] not in entry.results for call in entry.message.get("tool_calls") or ())


def _turns(blocks: list[tuple[list[Message], int]]) -> list[tuple[list[Message], int]]:
    """Group blocks into turns, each starting at a user message, with their total cost."""
    turns: list[tuple[list[Message], int]] = []
    for block, cost in blocks:
        if not turns or block[0]["role"] == "user":
            turns.append(([], 0))
        messages, total = turns[-1]
        turns[-1] = (messages + block, total + cost)
    return turns
