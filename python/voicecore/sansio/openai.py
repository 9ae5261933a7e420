"""OpenAI-compatible chat completions over SSE: the request body and the streamed reply.

One module serves OpenAI, vLLM, llama.cpp's ``llama-server``, Ollama's ``/v1`` layer and other
compatible servers; each one's quirks are handled here:

- The first delta may carry ``content: ""`` (OpenAI, vLLM) or ``content: null`` (llama.cpp),
  and Ollama repeats ``role`` in every delta.
- Tool calls stream as fragments joined by ``index`` (OpenAI, vLLM, llama.cpp), or whole in
  one delta (Ollama); a fragment without an ``index`` but with a new ``id`` starts a new call.
- Usage arrives in a last chunk with no choices (``stream_options.include_usage``), or on every
  chunk (vLLM's ``continuous_usage_stats``): the last one seen is reported once, at the end.
- Errors: an HTTP error body ``{"error": {...}}`` (OpenAI, Ollama, llama.cpp with a numeric
  ``code``), vLLM's older flat ``{"object": "error", ...}``, a ``data:`` event holding an
  ``error`` object mid-stream, and llama.cpp's non-standard ``error:`` SSE field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from voicecore.errors import (
    ProtocolError,
    ProviderError,
    ProviderStatusError,
    ProviderStreamError,
)
from voicecore.sansio.chatstream import ChatEvent, ContentDelta, SSEChatStream, TokenUsage
from voicecore.sansio.sse import SSEParser
from voicecore.tools import ToolCall

__all__ = [
    "ChatCompletionStream",
    "ChatEvent",
    "ContentDelta",
    "TokenUsage",
    "build_request",
    "chat_completions_url",
    "error_from_body",
    "request_headers",
]

_DONE = "[DONE]"

# What to do about an HTTP error, by status: the message of every error says it.
_HINTS = {
    400: "the request was rejected; check the model's limits (context length) and the tools' schemas",
    401: "check the API key",
    403: "the API key may not use this model or project",
    404: "check base_url (it usually ends in /v1) and the model name",
    408: "the server timed out; retry",
    409: "conflicting request; retry",
    413: "the request is too large; shorten the history",
    422: "the server could not process the request; check the model's parameters",
    429: "rate limited or out of quota; retry later or fail over to another provider",
}
# Error types sent mid-stream (no HTTP status to go by) that a retry can fix.
_RETRYABLE_TYPES = frozenset(
    {"server_error", "api_error", "internal_error", "rate_limit_error", "overloaded_error"}
)


def chat_completions_url(base_url: str) -> str:
    """The endpoint for ``base_url`` as the official SDK builds it (``.../v1/chat/completions``)."""
    return base_url.rstrip("/") + "/chat/completions"


def request_headers(api_key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers of a streamed request: JSON in, SSE out, bearer auth when there is a key."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers


def build_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    options: Mapping[str, Any] | None = None,
) -> bytes:
    """The JSON body of a streamed chat completion.

    Args:
        model: The model name (for a local server, the name it serves).
        messages: The conversation in the OpenAI chat shape.
        tools: Tool schemas (``{"type": "function", "function": {...}}``); none leaves
            ``tools`` out, as some servers reject an empty list.
        options: More fields as the API names them (``temperature``,
            ``max_completion_tokens``, ``tool_choice``, ...); they override the defaults.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = list(tools)
    body.update(options or {})
    return msgspec.json.encode(body)


def error_from_body(
    body: bytes | str | Mapping[str, Any],
    *,
    provider: str,
    status: int | None,
    request_id: str | None = None,
    hints: Mapping[int, str] | None = None,
) -> ProviderError:
    """The :class:`ProviderError` for an error response or an error event.

    Args:
        body: The HTTP error body, or the decoded JSON of an error event.
        provider: The provider's name, for the message.
        status: The HTTP status (None for an error inside a 200 stream: a numeric ``code``
            in the body then stands in for it, as vLLM and llama.cpp send one).
        request_id: The provider's request id, kept on the error.
        hints: What to do about a status, over the OpenAI-flavoured defaults (a provider
            with the same error shape but other advice, such as Anthropic, passes its own).
    """
    message, kind, code = _error_fields(body)
    numeric = code if isinstance(code, int) and 400 <= code < 600 else None
    label = ", ".join(str(x) for x in (kind, code) if x not in (None, "", numeric))
    text = f"{message} ({label})" if label else message
    effective = status if status is not None else numeric
    if effective is not None:
        hint = {**_HINTS, **(hints or {})}.get(
            effective, "the server failed; retry or fail over" if effective >= 500 else ""
        )
        return ProviderStatusError(
            f"HTTP {effective}: {text}" + (f"; {hint}" if hint else ""),
            provider=provider,
            status=effective,
            request_id=request_id,
        )
    retryable = kind in _RETRYABLE_TYPES or code in _RETRYABLE_TYPES
    return ProviderStreamError(
        f"error in the stream: {text}; "
        + ("retry or fail over" if retryable else "the request needs changing"),
        provider=provider,
        retryable=retryable,
        request_id=request_id,
    )


def _error_fields(body: bytes | str | Mapping[str, Any]) -> tuple[str, str | None, object]:
    """(message, type, code) from the error shapes of OpenAI, vLLM, llama.cpp and Ollama."""
    data: object = body
    if isinstance(body, bytes | str):
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return (text.strip()[:200] or "no error message", None, None)
    if isinstance(data, Mapping):
        error = data.get("error", data)
        if isinstance(error, str):  # {"error": "message"} (Ollama's native API, some proxies)
            return (error, None, None)
        if isinstance(error, Mapping):
            message = error.get("message") or error.get("detail") or "no error message"
            kind = error.get("type")
            return (str(message), kind if isinstance(kind, str) else None, error.get("code"))
    return ("unexpected error body", None, None)


@dataclass
class _PendingCall:
    id: str
    name: str
    arguments: list[str]


class ChatCompletionStream(SSEChatStream):
    """The streamed reply of one request: SSE bytes in, :data:`ChatEvent` values out.

    Text deltas come out as they arrive; tool calls come out whole, once their choice finishes
    (or the stream ends); usage comes last, at ``[DONE]``. An error event raises the
    :class:`~voicecore.errors.ProviderError` it describes.

    Attributes:
        finish_reason: Why the model stopped (``stop``, ``length``, ``tool_calls``, ...), once known.
        done: ``[DONE]`` arrived; nothing more will come out.
        pending_error: An error that arrived after events that were returned first; the
            next ``receive_*`` call raises it (a pump should raise it before reading more).
    """

    END_MARKERS = "no finish_reason, no [DONE]"

    def __init__(self, *, provider: str, request_id: str | None = None) -> None:
        """``provider`` and ``request_id`` go into the errors this stream raises."""
        super().__init__(
            provider=provider, request_id=request_id, sse=SSEParser(extra_data_fields=("error",))
        )
        self._calls: dict[int, _PendingCall] = {}
        self._usage: TokenUsage | None = None

    def _event(self, kind: str, data: str) -> list[ChatEvent]:
        if data.strip() == _DONE:
            return self._finish()
        chunk = self._json(data)
        if kind == "error" or "error" in chunk or chunk.get("object") == "error":
            raise error_from_body(chunk, provider=self.provider, status=None, request_id=self.request_id)
        out: list[ChatEvent] = []
        if isinstance(usage := chunk.get("usage"), dict):
            self._usage = _usage(usage)
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # n > 1: only the first choice is spoken
            delta = choice.get("delta") or {}
            for key in ("content", "refusal"):
                if isinstance(text := delta.get(key), str) and text:
                    out.append(ContentDelta(text))
            for position, fragment in enumerate(delta.get("tool_calls") or ()):
                self._tool_fragment(fragment, position)
            if reason := choice.get("finish_reason"):
                self.finish_reason = reason
                out += self._flush_calls()
        return out

    def _tool_fragment(self, fragment: Mapping[str, Any], position: int) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):  # no index (some compatible servers): a new id is a new call
            last = max(self._calls, default=-1)
            fresh = fragment.get("id") and (last < 0 or self._calls[last].id != fragment.get("id"))
            index = last + 1 if fresh or last < 0 else last
        function = fragment.get("function") or {}
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _PendingCall(fragment.get("id") or f"call_{index}", "", [])
        elif fragment.get("id"):
            call.id = fragment["id"]
        if function.get("name"):
            call.name = function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments.append(arguments)
        elif arguments is not None:  # a server that sends the arguments as an object
            call.arguments.append(msgspec.json.encode(arguments).decode())

    def _flush_calls(self) -> list[ChatEvent]:
        calls = [self._calls[i] for i in sorted(self._calls)]
        self._calls.clear()
        for call in calls:
            if not call.name:
                raise ProtocolError(
                    f"{self.provider}: tool call {call.id} has no function name", kind="tool_calls"
                )
        return [ToolCall(call.id, call.name, "".join(call.arguments)) for call in calls]

    def _finish(self) -> list[ChatEvent]:
        self.done = True
        out = self._flush_calls()
        if self._usage is not None:
            out.append(self._usage)
        return out


def _usage(usage: Mapping[str, Any]) -> TokenUsage:
    details = usage.get("prompt_tokens_details") or {}
    return TokenUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )
