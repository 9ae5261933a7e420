"""The events a multi-reply TTS socket protocol yields for each reply.

A reply is a context (ElevenLabs, Cartesia) or a group of requests (Smallest AI); ``key`` names it.
``texts_done`` counts the pushed texts whose audio ends *before* the event's own audio, so
a stream emits that many end-of-text marks first.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicecore.errors import ProviderConnectionError, ProviderError, ProviderStreamError

__all__ = ["ReplyAudio", "ReplyDone", "ReplyEvent", "ReplyFailed", "close_error"]


@dataclass(frozen=True, slots=True)
class ReplyAudio:
    """Audio or word times for one reply.

    Attributes:
        key: The reply.
        audio: Raw bytes in the reply's output format (may be empty).
        words: ``(word, end_ms)``, ``end_ms`` counted from the reply's first audio.
        texts_done: How many pushed texts end before this event's audio.
    """

    key: str
    audio: bytes = b""
    words: tuple[tuple[str, float], ...] = ()
    texts_done: int = 0


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """The server sent all of the reply's audio."""

    key: str


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """The server reported an error for this reply; the socket stays usable."""

    key: str
    error: ProviderError


ReplyEvent = ReplyAudio | ReplyDone | ReplyFailed


def close_error(
    provider: str, code: int | None, reason: str, *, closing: bool, policy: str, hint: str = ""
) -> ProviderError | None:
    """What a close of a TTS socket means: None when we closed it, else the error.

    A 1008 (a policy violation: ``policy`` lists the usual causes, ``hint`` what to check) is
    not retryable; any other close is a dropped connection, retryable on a new socket.
    """
    if closing and code in (1000, None):
        return None
    if code == 1008:
        advice = f"; {hint}" if hint else ""
        return ProviderStreamError(
            f"closed the socket with 1008 {reason}: a policy violation ({policy}){advice}",
            provider=provider,
            retryable=False,
            status=code,
        )
    return ProviderConnectionError(f"closed the socket ({code} {reason}); reconnect", provider=provider)
