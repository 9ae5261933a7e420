"""A fake Anthropic Messages API, speaking its SSE events over a real socket.

``POST /v1/messages`` (``stream: true``) answers with the scripted replies in order:
``message_start``, a ``ping``, a text block streamed as ``text_delta`` events, ``tool_use``
blocks whose input streams as ``input_json_delta`` fragments, ``message_delta`` (stop
reason, output tokens) and ``message_stop``; ``GET /v1/models`` answers too. Requests are
checked as the API checks them (the key, ``anthropic-version``, ``max_tokens``,
alternating roles that open with a user turn, every ``tool_result`` answering a
``tool_use`` of the message before, at most four cache breakpoints) and refused with a 400
``invalid_request_error`` otherwise, so a test sees conversion mistakes.

Prompt caching is simulated: each ``cache_control`` breakpoint caches the prefix up to it
(tools, then system, then messages); a later request with the same prefix reports it as
``cache_read_input_tokens``, a new one as ``cache_creation_input_tokens``. Tokens are
counted as four characters of JSON each, and there is no minimum length and no expiry.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from voicecore.fakes.chat import ChatServer, word_tokens

__all__ = ["FakeAnthropic", "MessageReply"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class MessageReply:
    """One scripted answer.

    Attributes:
        text: The reply, as the tokens to stream (a str is split into words).
        tool_uses: ``(name, input)`` per tool use, streamed after the text.
        stop_reason: Overrides the natural one (``end_turn`` / ``tool_use``).
        first_token: Seconds before the first text token (after ``message_start``).
        tokens_per_second: Pace of the tokens after the first (0: all at once).
        status: Answer with this HTTP error status and Anthropic's error body instead.
        error_type: The error's type (default: the one the API uses for ``status``, or
            ``overloaded_error`` in the stream).
        error_message: The message of an HTTP or stream error.
        stream_error_after: Send an ``error`` event after this many tokens.
        stall_after: Go silent after this many tokens until the client goes away.
        drop_after: Drop the connection after this many tokens (no ``message_stop``).
        headers: Extra response headers (``x-should-retry``, ``retry-after``, ...).
    """

    text: str | Sequence[str] = ""
    tool_uses: Sequence[tuple[str, dict[str, Any]]] = ()
    stop_reason: str | None = None
    first_token: float = 0.0
    tokens_per_second: float = 0.0
    status: int | None = None
    error_type: str | None = None
    error_message: str = "scripted failure"
    stream_error_after: int | None = None
    stall_after: int | None = None
    drop_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def tokens(self) -> list[str]:
        """The tokens to stream: words with their following space, or the given sequence."""
        return word_tokens(self.text)


class FakeAnthropic(ChatServer[MessageReply]):
    """Answers ``POST /v1/messages`` with the scripted replies, in order (the last repeats).

    Args:
        replies: One per request (a str is streamed word by word).
        api_key: The ``x-api-key`` clients must send (None: any).

    Attributes:
        requests: The JSON bodies received (valid or not).
        request_headers: Their headers.
        tokens_sent: Text tokens streamed per streamed request.
        usages: The input usage reported per streamed request (the simulated cache's counts).
        client_went_away: Set when a client disconnects mid-stream.
    """

    def __init__(self, replies: Sequence[MessageReply | str] = (), *, api_key: str | None = None) -> None:
        super().__init__(replies, MessageReply, api_key=api_key)
        self.usages: list[dict[str, int]] = []
        self._cache: set[str] = set()
        self.app.router.add_post("/v1/messages", self._messages)
        self.app.router.add_get("/v1/models", self._models)

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give a client (the API root, ``http://127.0.0.1:PORT``)."""
        return self.http_url

    @staticmethod
    def error_response(status: int, message: str, kind: str | None = None, **headers: str) -> web.Response:
        """An error response as the API sends it."""
        body = {
            "type": "error",
            "error": {"type": kind or _ERROR_TYPES.get(status, "api_error"), "message": message},
        }
        return web.json_response(body, status=status, headers={"request-id": _request_id(), **headers})

    async def _models(self, request: web.Request) -> web.Response:
        self.record_peer(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        model = {
            "type": "model",
            "id": "claude-fake-1",
            "display_name": "Fake",
            "created_at": "2025-01-01T00:00:00Z",
        }
        return web.json_response(
            {"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]}
        )

    def _check_auth(self, request: web.Request) -> web.Response | None:
        # The API takes the key in x-api-key (the REST reference) or as a bearer token (SDK 2.x).
        keys = {
            request.headers.get("x-api-key"),
            request.headers.get("Authorization", "").removeprefix("Bearer "),
        }
        if self.api_key is None or self.api_key in keys:
            return None
        return self.error_response(401, "invalid x-api-key")

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return self.error_response(400, "the body is not JSON")
        self.requests.append(body)
        reply = self._reply()
        if reply.status is not None:
            return self.error_response(reply.status, reply.error_message, reply.error_type, **reply.headers)
        try:
            problem = _invalid(body, request)
        except (KeyError, TypeError, AttributeError) as error:  # a body not shaped like a request
            problem = f"malformed request: {error!r}"
        if problem is not None:
            return self.error_response(400, problem)
        if not body.get("stream"):
            return self.error_response(400, "this fake only streams")
        return await self._streamed(
            request,
            {"request-id": _request_id(), **reply.headers},
            lambda response: self._stream(request, response, body, reply),
        )

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, body: dict[str, Any], reply: MessageReply
    ) -> int:
        async def send(kind: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode())

        usage = self._usage(body)
        self.usages.append(usage)
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        await send("message_start", {"message": message})
        await send("ping", {})
        tokens = reply.tokens()
        if reply.first_token:
            await asyncio.sleep(reply.first_token)
        sent = 0
        index = 0
        for token in [*tokens, ""]:
            if sent == reply.stream_error_after:
                kind = reply.error_type or "overloaded_error"
                await send("error", {"error": {"type": kind, "message": reply.error_message}})
                return sent
            if await self._cut(request, reply, sent):
                return sent
            if not token:
                break
            if sent == 0:
                await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            elif reply.tokens_per_second:
                await asyncio.sleep(1 / reply.tokens_per_second)
            await send("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": token}})
            sent += 1
        if sent:
            await send("content_block_stop", {"index": 0})
            index = 1
        for name, arguments in reply.tool_uses:
            block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name, "input": {}}
            await send("content_block_start", {"index": index, "content_block": block})
            await send(
                "content_block_delta",
                {"index": index, "delta": {"type": "input_json_delta", "partial_json": ""}},
            )
            encoded = json.dumps(arguments)
            for start in range(0, len(encoded), 9):
                delta = {"type": "input_json_delta", "partial_json": encoded[start : start + 9]}
                await send("content_block_delta", {"index": index, "delta": delta})
            await send("content_block_stop", {"index": index})
            index += 1
        stop = reply.stop_reason or ("tool_use" if reply.tool_uses else "end_turn")
        output = sent + 10 * len(reply.tool_uses)
        await send(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": output}},
        )
        await send("message_stop", {})
        await response.write_eof()
        return sent

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        """Input usage with the cache simulated as the API does it.

        Each breakpoint looks for the longest cached prefix ending at it or at one of the 20
        blocks before it; that part is read, the rest up to the last breakpoint is written.
        """
        raw = _blocks(body)
        blocks = _strip_cache(raw)
        ends = [i + 1 for i, block in enumerate(raw) if "cache_control" in block]
        hit = max(
            (
                j
                for end in ends
                for j in range(max(1, end - 20), end + 1)
                if json.dumps(blocks[:j]) in self._cache
            ),
            default=0,
        )
        read = _tokens(blocks[:hit]) if hit else 0
        written = _tokens(blocks[: ends[-1]]) - read if ends and ends[-1] > hit else 0
        self._cache.update(json.dumps(blocks[:end]) for end in ends)
        return {
            "input_tokens": _tokens(blocks) - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
        }


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _tokens(value: object) -> int:
    return max(1, len(json.dumps(value)) // 4)


def _strip_cache(value: Any) -> Any:
    """``value`` without its ``cache_control`` fields (they do not change what is cached)."""
    if isinstance(value, dict):
        return {k: _strip_cache(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache(v) for v in value]
    return value


def _blocks(body: dict[str, Any]) -> list[Any]:
    """The request's tools, system blocks and message blocks (with their role), in order."""
    blocks: list[Any] = list(body.get("tools") or [])
    system = body.get("system") or []
    blocks += [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
    for message in body["messages"]:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        blocks += [{"role": message["role"], **part} for part in parts]
    return blocks


def _invalid(body: dict[str, Any], request: web.Request) -> str | None:
    """What the API would refuse in this request, or None."""
    if request.headers.get("anthropic-version") is None:
        return "anthropic-version: header is required"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    messages = body["messages"]
    if not messages or messages[0]["role"] != "user":
        return "messages: the first message must use the user role"
    previous_tool_uses: set[str] = set()
    for number, message in enumerate(messages):
        if number and message["role"] == messages[number - 1]["role"]:
            return f"messages.{number}: roles must alternate between user and assistant"
        content = message["content"]
        if not content:
            return f"messages.{number}: all messages must have non-empty content"
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        results = [p for p in parts if p.get("type") == "tool_result"]
        if results and parts[: len(results)] != results:
            return f"messages.{number}: tool_result blocks must come first in the message"
        for part in results:
            if part["tool_use_id"] not in previous_tool_uses:
                return f"messages.{number}: unexpected tool_use_id {part['tool_use_id']} in tool_result"
        previous_tool_uses = {p["id"] for p in parts if p.get("type") == "tool_use"}
    if sum("cache_control" in block for block in _blocks(body)) > 4:
        return "a maximum of 4 blocks with cache_control may be provided"
    return None
