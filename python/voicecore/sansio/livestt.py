"""What the sans-I/O streaming-STT protocols without keep-alives share (Deepgram Flux, Pulse).

Each sends audio as binary frames, as is, and no keep-alive message (WebSocket pings keep
the socket open); the rest of :class:`~voicecore.providers._live.LiveProtocol` is their own.
"""

from __future__ import annotations

__all__ = ["PlainAudioProtocol"]


class PlainAudioProtocol:
    """The audio and keep-alive half of a live STT protocol that needs no keep-alive."""

    def send_audio(self, audio: bytes, now: float) -> bytes | None:
        """The binary frame for ``audio``; None for no audio."""
        del now
        return audio or None

    def keepalive_at(self, now: float) -> float | None:
        """None: no keep-alive messages."""
        del now
        return None

    def send_keepalive(self, now: float) -> str | None:
        """None (see :meth:`keepalive_at`)."""
        del now
        return None
