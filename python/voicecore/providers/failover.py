"""Fail over between LLM providers within one turn, before the caller hears anything.

:class:`FailoverLLM` is an :class:`~voicecore.providers.base.LLM` over an ordered list of
them. A retryable :class:`~voicecore.errors.ProviderError` (an error status worth retrying,
a dropped connection, an error event) or no first chunk within ``first_token_timeout`` moves
the same request to the next provider, as long as nothing has come out of the stream yet;
the failed provider is then skipped for a cool-down
(:class:`voicecore.sansio.failover.CircuitBreaker`). Once output has started an error
propagates as it is: text the caller may have heard cannot be taken back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voicecore.errors import ConfigError, ProviderError, ProviderTimeoutError
from voicecore.providers.base import LLM, LLMChunk, LLMStream
from voicecore.sansio.failover import CircuitBreaker

__all__ = ["FailoverLLM", "FailoverStream"]

logger = logging.getLogger(__name__)


class FailoverLLM:
    """Tries its providers in order of preference, within the same turn.

    Args:
        providers: The LLMs, most preferred first.
        cooldown: Seconds a failed provider is skipped by later turns.
        first_token_timeout: Seconds a provider has to produce its first chunk before the
            turn moves on (None: wait as long as the provider's own timeouts allow).
        name: The name in errors and logs.
    """

    def __init__(
        self,
        providers: Sequence[LLM],
        *,
        cooldown: float = 30.0,
        first_token_timeout: float | None = 3.0,
        name: str | None = None,
    ) -> None:
        if first_token_timeout is not None and first_token_timeout <= 0:
            raise ConfigError("first_token_timeout must be positive (or None)")
        self.providers = list(providers)
        self.breaker = CircuitBreaker(len(self.providers), cooldown=cooldown)
        self.first_token_timeout = first_token_timeout
        self.name = name or "failover(" + ",".join(p.name for p in self.providers) + ")"

    async def complete(
        self, messages: Sequence[dict[str, Any]], *, tools: Sequence[dict[str, Any]] = ()
    ) -> FailoverStream:
        """Start the completion on the first provider that answers; see the module doc.

        Raises:
            ProviderError: A final error, or the last provider's error when all failed.
        """
        stream = FailoverStream(self, messages, tools)
        await stream._start()
        return stream


class FailoverStream:
    """The stream of whichever provider answered.

    Attributes:
        provider: The name of the provider serving the stream.
        request_id: That provider's request id.
    """

    def __init__(
        self, owner: FailoverLLM, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> None:
        self._owner = owner
        self._messages = messages
        self._tools = tools
        self._now = asyncio.get_running_loop().time
        self._queue: list[int] = owner.breaker.order(self._now())
        self._index = -1
        self._stream: LLMStream | None = None
        self._first: LLMChunk | None = None
        self._done = False
        self.provider: str | None = None
        self.request_id: str | None = None

    async def _start(self) -> None:
        """Find a provider whose stream yields a first chunk (or ends) without a retryable error."""
        owner = self._owner
        while True:
            self._index = self._queue.pop(0)
            provider = owner.providers[self._index]
            failure = await self._try(provider)
            if failure is None:
                owner.breaker.succeeded(self._index)
                self.provider = provider.name
                self.request_id = getattr(self._stream, "request_id", None)
                return
            if self._stream is not None:
                await self._stream.aclose()
                self._stream = None
            if not failure.retryable:
                raise failure
            owner.breaker.failed(self._index, self._now())
            if not self._queue:
                raise failure
            following = owner.providers[self._queue[0]].name
            logger.warning("%s failed before any output (%s); trying %s", provider.name, failure, following)

    async def _try(self, provider: LLM) -> ProviderError | None:
        """Start ``provider`` and read its first chunk; the error that stopped it, if any."""
        timeout = self._owner.first_token_timeout
        try:
            async with asyncio.timeout(timeout):
                self._stream = await provider.complete(self._messages, tools=self._tools)
                try:
                    self._first = await anext(aiter(self._stream))
                except StopAsyncIteration:
                    self._done = True
        except ProviderError as error:
            return error
        except TimeoutError:
            return ProviderTimeoutError(f"no first token within {timeout:g} s", provider=provider.name)
        return None

    def __aiter__(self) -> AsyncIterator[LLMChunk]:
        return self

    async def __anext__(self) -> LLMChunk:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        if self._done or self._stream is None:
            raise StopAsyncIteration
        try:
            return await anext(aiter(self._stream))
        except ProviderError as error:
            if error.retryable:  # too late for this turn, but later turns skip the provider
                self._owner.breaker.failed(self._index, self._now())
            raise

    async def aclose(self) -> None:
        """Close the serving provider's stream; safe to call more than once."""
        self._done = True
        self._first = None
        if self._stream is not None:
            await self._stream.aclose()
