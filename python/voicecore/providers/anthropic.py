"""Anthropic's Messages API (Claude), streamed over SSE.

:class:`AnthropicLLM` is the chat completions client (:class:`~voicecore.providers.openai.OpenAILLM`:
one connection pool, warm-up, cancel by closing the stream, ``x-should-retry`` honoured) with
Anthropic's request, reply and errors from :mod:`voicecore.sansio.anthropic`, where the
conversion from voicecore's OpenAI-shaped history and the prompt-cache breakpoints live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voicecore.errors import ConfigError, ProviderError
from voicecore.providers.openai import OpenAILLM, ReplyParser
from voicecore.sansio import anthropic as proto

__all__ = ["ANTHROPIC_BASE_URL", "DEFAULT_ANTHROPIC_MODEL", "AnthropicLLM"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"  # the fastest to a first token, for conversation


class AnthropicLLM(OpenAILLM):
    """An :class:`~voicecore.providers.base.LLM` speaking Anthropic's Messages API over SSE.

    Args:
        model: The model name (``claude-haiku-4-5``, ``claude-sonnet-4-5``, ...).
        base_url: The API root, without ``/v1`` (as the official SDK takes it).
        api_key: Sent as ``x-api-key``.
        max_tokens: The most tokens a reply may have (spoken replies are short).
        cache: Prompt-cache breakpoints: ``"history"`` (tools, system and the conversation
            so far), ``"prefix"`` (tools and system) or ``"none"``; see
            :func:`voicecore.sansio.anthropic.build_request` for why ``history`` is the default.
        name: The provider's name in errors and logs.
        options: Extra request fields (``temperature``, ``tool_choice``, ...).
        headers: Extra request headers (``anthropic-beta``, ...).
        connect_timeout: Seconds to open a connection.
        read_timeout: Seconds the server may stay silent before
            :class:`~voicecore.errors.ProviderTimeoutError` (it pings while it thinks).
    """

    request_id_header = "request-id"

    def __init__(
        self,
        *,
        model: str = DEFAULT_ANTHROPIC_MODEL,
        base_url: str = ANTHROPIC_BASE_URL,
        api_key: str | None = None,
        max_tokens: int = 1024,
        cache: proto.CacheMode = "history",
        name: str = "anthropic",
        options: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
    ) -> None:
        super().__init__(
            model=model,
            base_url=base_url,
            name=name,
            options=options,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        if cache not in ("none", "prefix", "history"):
            raise ConfigError(f"cache must be 'none', 'prefix' or 'history', not {cache!r}")
        self.max_tokens = max_tokens
        self.cache: proto.CacheMode = cache
        self._url = proto.messages_url(base_url)
        self._headers = proto.request_headers(api_key, headers)

    def _body(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> bytes:
        return proto.build_request(
            self.model,
            messages,
            tools=tools,
            max_tokens=self.max_tokens,
            cache=self.cache,
            options=self.options,
        )

    def _error(self, body: bytes, status: int, request_id: str | None) -> ProviderError:
        return proto.error_from_body(body, provider=self.name, status=status, request_id=request_id)

    def _protocol(self, request_id: str | None) -> ReplyParser:
        return proto.MessageStream(provider=self.name, request_id=request_id)

    def _models_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1/models"
