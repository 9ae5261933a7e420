"""Anthropic's Messages API over SSE: the request body and the streamed reply.

voicecore keeps its history and tools in the OpenAI chat shape; Claude wants another one, so
:func:`build_request` converts:

- ``system`` messages become the top-level ``system`` list of text blocks;
- tool schemas ``{"type": "function", "function": {name, description, parameters}}`` become
  ``{name, description, input_schema}``;
- an assistant message's ``tool_calls`` become ``tool_use`` blocks (arguments parsed to an
  object), and ``tool`` results become ``tool_result`` blocks in a user message;
- consecutive messages of one role are merged (the API wants user and assistant to
  alternate; several tool results in a row make one user message, results first), empty
  messages are dropped, and a conversation that opens with the agent (a greeting) gets a
  short user turn first, as the API wants a user turn to open it.

The reply is a sequence of named events: ``message_start`` (input usage, cache counts
included), ``content_block_start`` / ``_delta`` / ``_stop`` per block (text, or a
``tool_use`` whose input streams as ``partial_json`` fragments), ``message_delta`` (the
stop reason and output usage), ``message_stop``, ``ping`` keep-alives and ``error``.
HTTP errors carry ``{"type": "error", "error": {"type", "message"}}``, the shape the
OpenAI module already reads, so :func:`error_from_body` only adds Anthropic's advice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from voicecore.errors import ProtocolError, ProviderError
from voicecore.sansio import openai
from voicecore.sansio.chatstream import ChatEvent, ContentDelta, SSEChatStream, TokenUsage
from voicecore.sansio.sse import SSEParser
from voicecore.tools import ToolCall

__all__ = [
    "ANTHROPIC_VERSION",
    "CacheMode",
    "MessageStream",
    "build_request",
    "convert_messages",
    "convert_tools",
    "error_from_body",
    "messages_url",
    "request_headers",
]

logger = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
OPENING_TURN = "(The call has connected.)"
"""The user turn put before a conversation that opens with the agent's greeting."""

CacheMode = Literal["none", "prefix", "history"]
"""Where :func:`build_request` puts prompt-cache breakpoints; see :func:`build_request`."""

_EPHEMERAL = {"type": "ephemeral"}
_HINTS = {
    400: "the request was rejected; check max_tokens, the model's context length and the tools' schemas",
    401: "check ANTHROPIC_API_KEY",
    403: "the API key may not use this model or workspace",
    404: "check base_url (the API root, without /v1) and the model name",
    413: "the request is too large; shorten the history",
    429: "rate limited; retry later or fail over to another provider",
    529: "Anthropic is overloaded; retry or fail over to another provider",
}


def messages_url(base_url: str) -> str:
    """The endpoint for ``base_url`` as the official SDK builds it (``{base_url}/v1/messages``)."""
    return base_url.rstrip("/") + "/v1/messages"


def request_headers(api_key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers of a streamed request: the key in ``x-api-key`` and the API version."""
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream",
        "anthropic-version": ANTHROPIC_VERSION,
    }
    if api_key:
        headers["x-api-key"] = api_key
    headers.update(extra or {})
    return headers


def build_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    max_tokens: int = 1024,
    cache: CacheMode = "history",
    options: Mapping[str, Any] | None = None,
) -> bytes:
    """The JSON body of a streamed Messages request.

    Prompt caching: the API caches the request prefix (tools, then system, then messages) up
    to each ``cache_control`` breakpoint, for five minutes, and a later request starting
    with the same bytes reads it back at a tenth of the price and with less time to the
    first token. ``"prefix"`` marks the last tool and the last system block: they are the
    same on every turn of a call (and in every call of an agent). ``"history"`` (the
    default) also marks the last message: a voice call's history only grows between turns,
    and a turn with tools sends the same conversation again seconds later with the results,
    so the next request reads all of it from the cache and the model only reads the new
    words before speaking; writing the new part costs 25 % more once, cheap beside the time
    saved on every turn after. When the history is trimmed the message part misses and is
    written again, but the system and tools breakpoints still hit. Three breakpoints of the
    four the API allows; prefixes shorter than the model's minimum (1024 tokens or more)
    are simply not cached.

    Args:
        model: The model name (``claude-...``).
        messages: The conversation in the OpenAI chat shape.
        tools: Tool schemas in the OpenAI shape (or already in Anthropic's).
        max_tokens: The most tokens the reply may have (the API requires it).
        cache: ``"none"``, ``"prefix"`` or ``"history"``; see above.
        options: More fields as the API names them (``temperature``, ``tool_choice``,
            ``stop_sequences``, ...); they override the defaults.
    """
    system, converted = convert_messages(messages)
    schemas = convert_tools(tools)
    if cache != "none":
        for blocks in (schemas, system):
            if blocks:
                blocks[-1]["cache_control"] = dict(_EPHEMERAL)
        if cache == "history" and converted:
            converted[-1]["content"][-1]["cache_control"] = dict(_EPHEMERAL)
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "stream": True}
    if system:
        body["system"] = system
    if schemas:
        body["tools"] = schemas
    body["messages"] = converted
    body.update(options or {})
    return msgspec.json.encode(body)


def convert_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool definitions in Anthropic's shape; a schema with no name is logged and skipped."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        if "input_schema" in tool:  # already Anthropic's shape
            out.append(dict(tool))
            continue
        function = tool.get("function") or tool
        name = function.get("name")
        if not name:
            logger.warning("anthropic: skipping a tool schema with no name: %r", tool)
            continue
        schema: dict[str, Any] = {"name": name}
        if description := function.get("description"):
            schema["description"] = description
        schema["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        out.append(schema)
    return out


def convert_messages(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, messages)`` in Anthropic's shape, from a conversation in the OpenAI shape."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system += _text_blocks(message.get("content"))
            continue
        if role == "user":
            blocks = _text_blocks(message.get("content"))
        elif role == "assistant":
            blocks = _text_blocks(message.get("content")) + [
                _tool_use(call) for call in message.get("tool_calls") or ()
            ]
        elif role == "tool":
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id") or "",
                    "content": _text(message.get("content")),
                }
            ]
        else:
            logger.warning("anthropic: skipping a message with role %r", role)
            continue
        if not blocks:
            continue  # the API refuses empty messages
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    for message in out:  # tool results must open their user message
        message["content"].sort(key=lambda block: block["type"] != "tool_result")
    if out and out[0]["role"] == "assistant":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": OPENING_TURN}]})
    return system, out


def _text(content: object) -> str:
    """The text of OpenAI message content: a string, or a list of parts (text parts kept)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _text_blocks(content: object) -> list[dict[str, Any]]:
    text = _text(content)
    return [{"type": "text", "text": text}] if text.strip() else []


def _tool_use(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        value = msgspec.json.decode(arguments) if isinstance(arguments, str) else arguments
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        logger.warning("anthropic: tool call %s has arguments that are not a JSON object", call.get("id"))
        value = {}
    return {
        "type": "tool_use",
        "id": call.get("id") or "",
        "name": function.get("name") or "",
        "input": value,
    }


def error_from_body(
    body: bytes | str | Mapping[str, Any],
    *,
    provider: str,
    status: int | None,
    request_id: str | None = None,
) -> ProviderError:
    """The :class:`ProviderError` for an error response (``status``) or an ``error`` event (None).

    An event's type decides whether it is worth retrying: ``overloaded_error``,
    ``api_error`` and ``rate_limit_error`` are; ``invalid_request_error`` is not.
    """
    return openai.error_from_body(body, provider=provider, status=status, request_id=request_id, hints=_HINTS)


@dataclass
class _PendingToolUse:
    id: str
    name: str
    initial: str  # the input sent whole in content_block_start, if any (the API sends {})
    fragments: list[str]


class MessageStream(SSEChatStream):
    """The streamed reply of one request: SSE bytes in, :data:`~voicecore.sansio.chatstream.ChatEvent` out.

    Text deltas come out as they arrive, a tool use whole when its block stops, and usage at
    ``message_stop``. Usage is reported in voicecore's terms: ``prompt_tokens`` counts every
    input token (Anthropic's ``input_tokens`` leaves the cached ones out),
    ``cached_tokens`` those read from the cache and ``cache_write_tokens`` those written to it.

    Attributes:
        finish_reason: The ``stop_reason`` (``end_turn``, ``tool_use``, ``max_tokens``, ...), once known.
        done: ``message_stop`` arrived; nothing more will come out.
        pending_error: An error that arrived after events that were returned first; the
            next ``receive_*`` call raises it.
    """

    END_MARKERS = "no stop_reason, no message_stop"

    def __init__(self, *, provider: str, request_id: str | None = None) -> None:
        """``provider`` and ``request_id`` go into the errors this stream raises."""
        super().__init__(provider=provider, request_id=request_id, sse=SSEParser())
        self._tools: dict[int, _PendingToolUse] = {}
        self._usage: dict[str, int] = {}

    def _event(self, name: str, data: str) -> list[ChatEvent]:
        event = self._json(data)
        kind = event.get("type") or name
        if kind == "error" or name == "error":
            raise error_from_body(event, provider=self.provider, status=None, request_id=self.request_id)
        if kind == "message_start":
            self._add_usage((event.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            return self._block_start(event)
        elif kind == "content_block_delta":
            return self._block_delta(event)
        elif kind == "content_block_stop":
            return self._block_stop(event.get("index"))
        elif kind == "message_delta":
            if reason := (event.get("delta") or {}).get("stop_reason"):
                self.finish_reason = reason
            self._add_usage(event.get("usage"))
        elif kind == "message_stop":
            return self._finish()
        return []  # ping, and event types added after this was written

    def _block_start(self, event: Mapping[str, Any]) -> list[ChatEvent]:
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            if not block.get("name"):
                raise ProtocolError(
                    f"{self.provider}: a tool_use block has no name", kind="content_block_start"
                )
            initial = block.get("input")
            self._tools[event.get("index", len(self._tools))] = _PendingToolUse(
                block.get("id") or f"toolu_{len(self._tools)}",
                block["name"],
                msgspec.json.encode(initial).decode() if initial else "",
                [],
            )
        elif block.get("type") == "text" and block.get("text"):
            return [ContentDelta(block["text"])]
        return []

    def _block_delta(self, event: Mapping[str, Any]) -> list[ChatEvent]:
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [ContentDelta(delta["text"])]
        if delta.get("type") == "input_json_delta" and (tool := self._tools.get(event.get("index", -1))):
            tool.fragments.append(delta.get("partial_json") or "")
        return []  # thinking, signatures and citations are not spoken

    def _block_stop(self, index: object) -> list[ChatEvent]:
        tool = self._tools.pop(index, None) if isinstance(index, int) else None
        if tool is None:
            return []
        return [ToolCall(tool.id, tool.name, "".join(tool.fragments) or tool.initial or "{}")]

    def _add_usage(self, usage: object) -> None:
        """Keep the counts in ``usage`` (later events repeat or update earlier ones)."""
        if isinstance(usage, dict):
            for key, value in usage.items():
                if isinstance(value, int):
                    self._usage[key] = value

    def _finish(self) -> list[ChatEvent]:
        self.done = True
        out: list[ChatEvent] = [self._block_stop(index)[0] for index in sorted(self._tools)]
        if self._usage:
            read = self._usage.get("cache_read_input_tokens", 0)
            written = self._usage.get("cache_creation_input_tokens", 0)
            out.append(
                TokenUsage(
                    prompt_tokens=self._usage.get("input_tokens", 0) + read + written,
                    completion_tokens=self._usage.get("output_tokens", 0),
                    cached_tokens=read,
                    cache_write_tokens=written,
                )
            )
        return out
