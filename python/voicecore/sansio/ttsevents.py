"""The events a multi-reply TTS socket protocol yields for each reply.

A reply is a context (ElevenLabs, Cartesia) or a group of requests (Smallest AI); ``key`` names it.
``texts_done`` counts the pushed texts whose audio ends *before* the event's own audio, so
a stream emits that many end-of-text marks first.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicecore.errors import ProviderError

__all__ = ["ReplyAudio", "ReplyDone", "ReplyEvent", "ReplyFailed"]


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
