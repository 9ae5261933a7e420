"""OpenAI-compatible chat completions (OpenAI, vLLM, llama.cpp, Ollama, Smallest Electron).

:class:`OpenAILLM` posts a streamed request and pumps the response body through
:class:`voicecore.sansio.openai.ChatCompletionStream`; the protocol itself lives there. Pick
the server with ``base_url``, the way the official SDK does:

=================  ========================================
server             ``base_url``
=================  ========================================
OpenAI             ``https://api.openai.com/v1`` (default)
vLLM               ``http://HOST:8000/v1``
llama.cpp          ``http://HOST:8080/v1`` (tools need ``--jinja``)
Ollama             ``http://HOST:11434/v1``
=================  ========================================
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp

from voicecore.errors import ProtocolError, ProviderError, ProviderStreamError
from voicecore.providers._http import ClientSessionOwner, provider_errors
from voicecore.providers.base import LLMChunk, TextDelta, Usage
from voicecore.sansio import openai as proto

__all__ = ["OPENAI_BASE_URL", "OpenAILLM", "OpenAIStream", "ReplyParser"]

logger = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
_MAX_ERROR_BODY = 64 * 1024


class OpenAILLM:
    """An :class:`~voicecore.providers.base.LLM` speaking the chat completions API over SSE.

    Each object keeps one HTTP connection pool, so turns after the first (or after
    :meth:`warm`) reuse an open connection. Cancelling a stream closes its connection (that is
    how the API cancels), so another is opened in the background at once, for the next turn.
    Close it with :meth:`aclose` when the call or the process ends.

    Args:
        model: The model name (for a local server, the name it serves).
        base_url: The API root including ``/v1``.
        api_key: Sent as a bearer token; None sends no ``Authorization`` (local servers).
        name: The provider's name in errors and logs.
        options: Extra request fields (``temperature``, ``max_completion_tokens``,
            ``tool_choice``, ...), sent with every request.
        headers: Extra request headers (``OpenAI-Project``, ...).
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds the server may stay silent (before the first token, or between
            two): longer raises :class:`~voicecore.errors.ProviderTimeoutError`.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        name: str = "openai",
        options: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url
        self.options = dict(options or {})
        self._url = proto.chat_completions_url(base_url)
        self._headers = proto.request_headers(api_key, headers)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._http = ClientSessionOwner()
        self.rewarming: asyncio.Task[None] | None = None
        """The background :meth:`warm` after a cancelled stream closed its connection."""

    async def complete(
        self, messages: Sequence[dict[str, Any]], *, tools: Sequence[dict[str, Any]] = ()
    ) -> OpenAIStream:
        """Send the request and return its stream once the server has answered with 200.

        Raises:
            ProviderStatusError: The server answered with an error status.
            ProviderConnectionError: It could not be reached.
            ProviderTimeoutError: It did not answer within ``read_timeout``.
        """
        body = self._body(messages, tools)
        with provider_errors(self.name):
            response = await self._http.session().post(
                self._url, data=body, headers=self._headers, timeout=self._timeout
            )
        request_id = response.headers.get(self.request_id_header)
        if response.status != 200:
            try:
                with provider_errors(self.name, request_id=request_id):
                    error_body = await _read_some(response, _MAX_ERROR_BODY)
            finally:
                response.release()
            error = self._error(error_body, response.status, request_id)
            if (should_retry := response.headers.get("x-should-retry")) in ("true", "false"):
                error.retryable = should_retry == "true"  # the server's own word beats the status
            raise error
        logger.debug("%s: stream started (request id %s)", self.name, request_id)
        return OpenAIStream(
            response,
            provider=self.name,
            request_id=request_id,
            on_cancel=self._rewarm,
            protocol=self._protocol(request_id),
        )

    # What a server with another request and reply shape over SSE (Anthropic) overrides:

    request_id_header = "x-request-id"
    """The response header holding the server's request id."""

    def _body(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> bytes:
        """The request body."""
        return proto.build_request(self.model, messages, tools=tools, options=self.options)

    def _error(self, body: bytes, status: int, request_id: str | None) -> ProviderError:
        """The error an HTTP error response stands for."""
        return proto.error_from_body(body, provider=self.name, status=status, request_id=request_id)

    def _protocol(self, request_id: str | None) -> ReplyParser:
        """The parser of one streamed reply."""
        return proto.ChatCompletionStream(provider=self.name, request_id=request_id)

    def _models_url(self) -> str:
        """What :meth:`warm` gets: a cheap authenticated request."""
        return self.base_url.rstrip("/") + "/models"

    async def warm(self) -> None:
        """Open a pooled connection now (``GET /models``), so the first turn pays no handshake.

        Raises:
            ProviderConnectionError: The server cannot be reached.
            ProviderStatusError: It rejected the API key (401 or 403).
        """
        with provider_errors(self.name):
            async with self._http.session().get(
                self._models_url(), headers=self._headers, timeout=self._timeout
            ) as response:
                body = await _read_some(response, _MAX_ERROR_BODY)
        if response.status in (401, 403):
            raise self._error(body, response.status, response.headers.get(self.request_id_header))

    def _rewarm(self) -> None:
        """A cancel closed a connection: open another in the background for the next turn."""
        if self.rewarming is None or self.rewarming.done():
            self.rewarming = asyncio.get_running_loop().create_task(
                self._quiet_warm(), name=f"{self.name}-rewarm"
            )

    async def _quiet_warm(self) -> None:
        try:
            await self.warm()
        except ProviderError as error:  # the next turn will report it if it lasts
            logger.debug("%s: re-warming failed: %s", self.name, error)

    async def aclose(self) -> None:
        """Close the connection pool; safe to call more than once."""
        if self.rewarming is not None:
            self.rewarming.cancel()
        await self._http.aclose()


class ReplyParser(Protocol):
    """A sans-I/O parser of one streamed reply.

    :class:`~voicecore.sansio.openai.ChatCompletionStream` and
    :class:`~voicecore.sansio.anthropic.MessageStream` are two.
    """

    finish_reason: str | None
    pending_error: ProviderError | ProtocolError | None

    def receive_data(self, data: bytes) -> list[proto.ChatEvent]:
        """Parse the next piece of the body."""
        ...

    def receive_eof(self) -> list[proto.ChatEvent]:
        """The body ended."""
        ...


class OpenAIStream:
    """One streamed completion: an :class:`~voicecore.providers.base.LLMStream`.

    Attributes:
        request_id: The server's ``x-request-id`` (None when it sends none: Ollama, llama.cpp).
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        provider: str,
        request_id: str | None,
        on_cancel: Callable[[], None] | None = None,
        protocol: ReplyParser | None = None,
    ) -> None:
        """``protocol`` parses the body (default: the chat completions stream)."""
        self.request_id = request_id
        self._on_cancel = on_cancel
        self._response = response
        self._provider = provider
        self._protocol = protocol or proto.ChatCompletionStream(provider=provider, request_id=request_id)
        self._ready: deque[LLMChunk] = deque()
        self._eof = False
        self._closed = False

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped (``stop``, ``length``, ``tool_calls``; Anthropic's ``end_turn``, ...)."""
        return self._protocol.finish_reason

    def __aiter__(self) -> AsyncIterator[LLMChunk]:
        return self

    async def __anext__(self) -> LLMChunk:
        while not self._ready:
            if self._eof or self._closed:
                raise StopAsyncIteration
            try:
                if (pending := self._protocol.pending_error) is not None:
                    raise pending
            except ProtocolError as error:
                raise self._malformed(error) from error
            # After [DONE] the body is read to its end, so the connection can go back to the pool.
            with provider_errors(self._provider, request_id=self.request_id):
                data = await self._response.content.readany()
            try:
                if data:
                    events = self._protocol.receive_data(data)
                else:
                    self._eof = True
                    events = self._protocol.receive_eof()
            except ProtocolError as error:
                raise self._malformed(error) from error
            self._ready.extend(_chunk(event) for event in events)
        return self._ready.popleft()

    def _malformed(self, error: ProtocolError) -> ProviderStreamError:
        return ProviderStreamError(
            f"sent a malformed stream ({error}); retry or fail over",
            provider=self._provider,
            retryable=True,
            request_id=self.request_id,
        )

    async def aclose(self) -> None:
        """Stop the completion: closing the connection is how the API cancels a request."""
        if self._closed:
            return
        self._closed = True
        if self._eof:
            self._response.release()  # fully read: the connection goes back to the pool
        else:
            self._response.close()
            if self._on_cancel is not None:
                self._on_cancel()
            logger.debug("%s: stream cancelled (request id %s)", self._provider, self.request_id)


async def _read_some(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body up to ``limit`` bytes (an error body is small; a broken proxy's may not be)."""
    body = bytearray()
    while len(body) < limit and (data := await response.content.readany()):
        body += data
    return bytes(body[:limit])


def _chunk(event: proto.ChatEvent) -> LLMChunk:
    if isinstance(event, proto.ContentDelta):
        return TextDelta(event.text)
    if isinstance(event, proto.TokenUsage):
        return Usage(
            event.prompt_tokens, event.completion_tokens, event.cached_tokens, event.cache_write_tokens
        )
    return event
