"""What a streamed chat reply gives out, and the SSE pump the OpenAI and Anthropic streams share.

Both APIs stream a reply as server-sent events of JSON objects; they differ only in what
each event means. :class:`SSEChatStream` holds the common part: parsing, the rule that an
error after some events is kept for the next call, and the check that the reply finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec

from voicecore.errors import ProtocolError, ProviderConnectionError, ProviderError
from voicecore.sansio.sse import ServerSentEvent, SSEParser
from voicecore.tools import ToolCall

__all__ = ["ChatEvent", "ContentDelta", "SSEChatStream", "TokenUsage"]


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """A piece of the reply text (content, or a refusal, which is meant for the user too)."""

    text: str


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """The token counts the server reported for the request (see :class:`~voicecore.providers.base.Usage`)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0


ChatEvent = ContentDelta | ToolCall | TokenUsage
"""What a chat stream gives out."""


class SSEChatStream:
    """The streamed reply of one request: SSE bytes in, :data:`ChatEvent` values out.

    A subclass says what one event means (:meth:`_event`) and what the end gives out
    (:meth:`_finish`, which sets ``done``).

    Attributes:
        finish_reason: Why the model stopped, once known.
        done: The end-of-reply event arrived; nothing more will come out.
        pending_error: An error that arrived after events that were returned first; the
            next ``receive_*`` call raises it (a pump should raise it before reading more).
    """

    END_MARKERS: ClassVar[str]
    """The reason field and end event whose absence means the reply was cut (for the message)."""

    def __init__(self, *, provider: str, request_id: str | None, sse: SSEParser) -> None:
        self.provider = provider
        self.request_id = request_id
        self.finish_reason: str | None = None
        self.done = False
        self.pending_error: ProviderError | ProtocolError | None = None
        self._sse = sse

    def receive_data(self, data: bytes) -> list[ChatEvent]:
        """Parse the next piece of the response body."""
        self._raise_pending()
        return self._events(self._sse.receive_data(data))

    def receive_eof(self) -> list[ChatEvent]:
        """The body ended; raises if it ended before the reply did (a dropped connection)."""
        self._raise_pending()
        out = self._events(self._sse.receive_eof())
        self._raise_pending()
        if self.done:
            return out
        if self.finish_reason is None:
            raise ProviderConnectionError(
                f"the stream ended before the reply finished ({self.END_MARKERS}); retry",
                provider=self.provider,
                request_id=self.request_id,
            )
        return out + self._finish()  # finished but no end event: lenient, like the SDKs

    def _raise_pending(self) -> None:
        if self.pending_error is not None:
            raise self.pending_error

    def _events(self, events: list[ServerSentEvent]) -> list[ChatEvent]:
        """Events up to an error; the error is raised now, or kept for later if events came first."""
        out: list[ChatEvent] = []
        for event in events:
            if self.done:
                break
            try:
                out += self._event(event.event, event.data)
            except (ProviderError, ProtocolError) as error:
                if not out:
                    raise
                self.pending_error = error
                break
        return out

    def _json(self, data: str) -> dict[str, Any]:
        """The JSON object an event carries; raises :class:`ProtocolError` if it is not one."""
        try:
            value = msgspec.json.decode(data)
        except msgspec.DecodeError as error:
            raise ProtocolError(f"{self.provider}: an SSE event is not JSON: {error}", kind="sse") from None
        if not isinstance(value, dict):
            raise ProtocolError(f"{self.provider}: an SSE event is not a JSON object", kind="sse")
        return value

    def _event(self, name: str, data: str) -> list[ChatEvent]:
        """What one event (``name`` is its SSE ``event`` field) gives out."""
        raise NotImplementedError

    def _finish(self) -> list[ChatEvent]:
        """The reply ended: set ``done`` and give out what was held back."""
        raise NotImplementedError
