"""A fake OpenAI-compatible chat completions server, speaking SSE over a real socket.

``flavor`` picks whose dialect it speaks, with each server's documented quirks:

- ``openai``: ``x-request-id``, first delta ``{"role", "content": "", "refusal": null}``,
  ``usage: null`` on every chunk, an ``obfuscation`` field, tool-call arguments in fragments.
- ``vllm``: ``stop_reason`` on the finishing choice, errors with a numeric ``code``, a
  mid-stream error followed by ``data: [DONE]``.
- ``llamacpp``: first delta ``content: null``, ``timings`` on the last chunk, stream errors as
  the non-standard ``error:`` SSE field.
- ``ollama``: ``role`` in every delta, each tool call whole in one delta, ``fp_ollama``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from voicecore.fakes.chat import ChatServer, word_tokens

Flavor = Literal["openai", "vllm", "llamacpp", "ollama"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        text: The reply, as the tokens to stream (a str is split into words).
        tool_calls: ``(name, arguments_json)`` per call, streamed after the text.
        finish_reason: Overrides the natural one (``stop`` / ``tool_calls``).
        status: Answer with this HTTP error status and the flavor's error body instead.
        error_message: The message of an HTTP or stream error.
        stream_error_after: Send a mid-stream error event after this many tokens.
        stall_after: Go silent after this many tokens until the client goes away.
        drop_after: Drop the connection after this many tokens (no [DONE]).
        endless: Keep streaming tokens (``text`` repeated) until the client goes away.
        headers: Extra response headers (``x-should-retry``, ...).
        split: Write every event in pieces of this many bytes (0: one write per event).
        keepalive_comments: Send an SSE comment before the first chunk (as some proxies do).
        first_token_delay: Seconds between the response headers and the first chunk.
        tokens_per_second: Pace of the content tokens after the first (0: as fast as possible).
    """

    text: str | Sequence[str] = ""
    tool_calls: Sequence[tuple[str, str]] = ()
    finish_reason: str | None = None
    status: int | None = None
    error_message: str = "scripted failure"
    stream_error_after: int | None = None
    stall_after: int | None = None
    drop_after: int | None = None
    endless: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    split: int = 0
    keepalive_comments: bool = False
    first_token_delay: float = 0.0
    tokens_per_second: float = 0.0

    def tokens(self) -> list[str]:
        """The tokens to stream: words with their following space, or the given sequence."""
        return word_tokens(self.text)


class FakeChatServer(ChatServer[Reply]):
    """Answers ``POST /v1/chat/completions`` with the scripted replies, in order.

    The last reply repeats once the script runs out; ``GET /v1/models`` answers too.

    Args:
        replies: One per request (a str is streamed word by word).
        flavor: Whose dialect to speak: ``openai``, ``vllm``, ``llamacpp`` or ``ollama``.
        api_key: The bearer token clients must send (None: any).

    Attributes:
        requests: The JSON bodies received.
        request_headers: Their headers.
        tokens_sent: Content tokens streamed per request.
        client_went_away: Set when a client disconnects mid-stream.
    """

    def __init__(
        self, replies: Sequence[Reply | str] = (), *, flavor: Flavor = "openai", api_key: str | None = None
    ) -> None:
        super().__init__(replies, Reply, api_key=api_key)
        self.flavor = flavor
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give a client (``http://127.0.0.1:PORT/v1``)."""
        return self.http_url + "/v1"

    # --- errors in each flavor's shape ---------------------------------------------------------

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """An error body for ``status`` in this flavor's shape."""
        kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        if self.flavor == "vllm":
            return {"error": {"message": message, "type": "BadRequestError", "param": None, "code": status}}
        if self.flavor == "llamacpp":
            return {"error": {"code": status, "message": message, "type": kind}}
        if self.flavor == "ollama":
            kind = {404: "not_found_error"}.get(
                status, "api_error" if status >= 500 else "invalid_request_error"
            )
            return {"error": {"message": message, "type": kind, "param": None, "code": None}}
        code = {400: "context_length_exceeded", 429: "rate_limit_exceeded", 404: "model_not_found"}.get(
            status
        )
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _headers(self, reply: Reply) -> dict[str, str]:
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}", "openai-processing-ms": "12"}
        return (headers if self.flavor == "openai" else {}) | reply.headers

    # --- handlers -----------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        self.record_peer(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return web.json_response(self.error_body(401, "Incorrect API key provided"), status=401)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        if (denied := self._check_auth(request)) is not None:
            return denied
        body = await request.json()
        self.requests.append(body)
        reply = self._reply()
        if reply.status is not None:
            return web.json_response(
                self.error_body(reply.status, reply.error_message),
                status=reply.status,
                headers=self._headers(reply),
            )
        if not body.get("stream"):
            return web.json_response(self.error_body(400, "this fake only streams"), status=400)
        return await self._streamed(
            request, self._headers(reply), lambda response: self._stream(request, response, body, reply)
        )

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, body: dict[str, Any], reply: Reply
    ) -> int:
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = _Chunks(self.flavor, body.get("model", "fake"), usage)

        async def send(text: str) -> None:
            data = text.encode()
            if reply.split:
                for start in range(0, len(data), reply.split):
                    await response.write(data[start : start + reply.split])
            else:
                await response.write(data)

        if reply.keepalive_comments:
            await send(": keep-alive\n\n")
        await asyncio.sleep(reply.first_token_delay)
        await send(chunks.event(chunks.first_delta()))
        tokens = reply.tokens()
        source = itertools.cycle(tokens or ["x "]) if reply.endless else iter(tokens)
        sent = 0
        for token in source:
            if sent == reply.stream_error_after:
                await self._stream_error(send, reply)
                return sent
            if await self._cut(request, reply, sent):
                return sent
            if sent and reply.tokens_per_second > 0:
                await asyncio.sleep(1.0 / reply.tokens_per_second)
            await send(chunks.event(chunks.delta({"content": token})))
            sent += 1
            if reply.endless:
                await asyncio.sleep(0.002)
                if request.transport is None or request.transport.is_closing():
                    self.client_went_away.set()
                    return sent
        if reply.stream_error_after is not None and sent <= reply.stream_error_after:
            await self._stream_error(send, reply)
            return sent
        for index, (name, arguments) in enumerate(reply.tool_calls):
            for delta in chunks.tool_call_deltas(index, name, arguments):
                await send(chunks.event(chunks.delta(delta)))
        natural = "tool_calls" if reply.tool_calls else "stop"
        await send(chunks.event(chunks.finish(reply.finish_reason or natural)))
        if usage:
            await send(chunks.event(chunks.usage(len(tokens))))
        await send("data: [DONE]\n\n")
        await response.write_eof()
        return sent

    async def _stream_error(self, send: Any, reply: Reply) -> None:
        if self.flavor == "llamacpp":
            error = {"code": 500, "message": reply.error_message, "type": "server_error"}
            await send(f"error: {json.dumps(error)}\n\n")
        elif self.flavor == "vllm":
            await send(f"data: {json.dumps(self.error_body(400, reply.error_message))}\n\n")
            await send("data: [DONE]\n\n")
        else:
            error = {"message": reply.error_message, "type": "server_error", "param": None, "code": None}
            await send(f"data: {json.dumps({'error': error})}\n\n")


class _Chunks:
    """Builds one flavor's chunk objects."""

    def __init__(self, flavor: Flavor, model: str, usage: bool) -> None:
        self.flavor = flavor
        self.usage_enabled = usage
        self.id = {"ollama": "chatcmpl-42", "openai": "chatcmpl-" + uuid.uuid4().hex[:24]}.get(
            flavor, f"chatcmpl-{uuid.uuid4()}"
        )
        self.model = f"{model}-2024-07-18" if flavor == "openai" else model
        self.fingerprint = {"openai": "fp_0123456789", "ollama": "fp_ollama", "llamacpp": "b6000-abcdef"}.get(
            flavor
        )

    def base(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        }
        if self.flavor == "openai":
            chunk["service_tier"] = "default"
            chunk["obfuscation"] = "a1b2"
            if self.usage_enabled:
                chunk["usage"] = None
        return chunk

    def first_delta(self) -> dict[str, Any]:
        delta: dict[str, Any] = {"role": "assistant", "content": None if self.flavor == "llamacpp" else ""}
        if self.flavor == "openai":
            delta["refusal"] = None
        return self.base([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])

    def delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        if self.flavor == "ollama":
            delta = {"role": "assistant", "content": delta.get("content", "")} | delta
        return self.base([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])

    def tool_call_deltas(self, index: int, name: str, arguments: str) -> list[dict[str, Any]]:
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        if self.flavor == "ollama":
            whole = {
                "id": call_id,
                "index": index,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            return [{"tool_calls": [whole]}]
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        pieces = [arguments[i : i + 7] for i in range(0, len(arguments), 7)]
        return [{"tool_calls": [first]}] + [
            {"tool_calls": [{"index": index, "function": {"arguments": p}}]} for p in pieces
        ]

    def finish(self, reason: str) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        if self.flavor == "vllm":
            choice["stop_reason"] = None
        chunk = self.base([choice])
        if self.flavor == "llamacpp":
            chunk["timings"] = {"prompt_n": 9, "predicted_n": 12, "predicted_per_second": 50.0}
        return chunk

    def usage(self, completion_tokens: int) -> dict[str, Any]:
        chunk = self.base([])
        chunk["usage"] = {
            "prompt_tokens": 9,
            "completion_tokens": completion_tokens,
            "total_tokens": 9 + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        return chunk

    @staticmethod
    def event(chunk: dict[str, Any]) -> str:
        return f"data: {json.dumps(chunk)}\n\n"
