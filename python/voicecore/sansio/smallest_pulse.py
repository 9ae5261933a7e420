"""Smallest AI Pulse live transcription (``/waves/v1/stt/live``), sans I/O.

The client sends audio as binary frames in the encoding named in the URL (``mulaw`` at 8 kHz
straight from a phone line; the server does not resample) and JSON text messages:
``{"type":"finalize"}`` at a turn boundary (one ``is_final`` transcript comes back, the socket
stays open) and ``{"type":"close_stream"}`` at the end (a last transcript with ``is_last``,
then the server closes). The server sends ``transcription`` messages (interim, then
``is_final``), ``speech_started`` / ``speech_ended`` with ``vad_events``, and ``error`` before
it closes; a close with 1008 means the organisation's concurrent-stream limit was reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from voicecore.errors import ProviderConnectionError, ProviderError, ProviderStreamError
from voicecore.sansio.jsonmsg import json_object
from voicecore.sansio.livestt import PlainAudioProtocol

__all__ = [
    "CLOSE_STREAM",
    "ENCODINGS",
    "FINALIZE",
    "PulseEvent",
    "PulseProtocol",
    "SpeechEnded",
    "SpeechStarted",
    "Transcription",
    "auth_headers",
    "pulse_url",
]

FINALIZE = '{"type":"finalize"}'
CLOSE_STREAM = '{"type":"close_stream"}'
ENCODINGS = {"pcm16": "linear16", "mulaw": "mulaw", "alaw": "alaw"}


@dataclass(frozen=True, slots=True)
class Transcription:
    """A transcript of the audio since the last final one.

    Attributes:
        text: The words (may be empty).
        is_final: This text will not change.
        is_last: The last transcript, answering ``close_stream``.
        from_finalize: The final transcript answers a ``finalize``.
        end: When its last word ends, in seconds of the stream's audio (None without word times).
        confidence: The mean confidence of its words (None without words).
    """

    text: str
    is_final: bool
    is_last: bool = False
    from_finalize: bool = False
    end: float | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The server's VAD heard speech start at ``timestamp`` seconds."""

    timestamp: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The server's VAD heard speech end at ``timestamp`` seconds."""

    timestamp: float


PulseEvent = Transcription | SpeechStarted | SpeechEnded


def pulse_url(
    base_url: str,
    *,
    language: str,
    encoding: str,
    sample_rate: int,
    model: str = "pulse",
    vad_events: bool = True,
    word_timestamps: bool = True,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The WebSocket URL with its query, as Smallest names the parameters.

    Args:
        base_url: ``wss://api.smallest.ai`` (``wss://api.us.smallest.ai`` for zh, ja, ko) or a fake.
        language: ``en``, ``hi``, ``multi-asian``, ...
        encoding: ``linear16``, ``mulaw`` or ``alaw`` (see ``ENCODINGS``).
        sample_rate: Hz of the audio sent.
        model: ``pulse`` (the only streaming model).
        vad_events: Send ``speech_started`` / ``speech_ended``.
        word_timestamps: Send word times (they settle the replay buffer).
        extra: More parameters, as Smallest names them (``keywords``, ``eou_timeout_ms``, ...).
    """
    query = {
        "model": model,
        "language": language,
        "encoding": encoding,
        "sample_rate": str(sample_rate),
        "vad_events": "true" if vad_events else "false",
        "word_timestamps": "true" if word_timestamps else "false",
    }
    query.update(extra or {})
    return f"{base_url.rstrip('/')}/waves/v1/stt/live?{urlencode(query)}"


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The ``Authorization: Bearer`` header (none without a key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class PulseProtocol(PlainAudioProtocol):
    """One Pulse stream's protocol state (a :class:`~voicecore.providers._live.LiveProtocol`).

    Pulse documents no keep-alive message (WebSocket pings keep the socket open).
    """

    def __init__(self, *, provider: str = "smallest") -> None:
        self.provider = provider
        self.request_id: str | None = None
        """The server's ``session_id`` (quote it to Smallest's support)."""
        self.closing = False

    # --- client to server ------------------------------------------------------------------

    def send_finalize(self, now: float) -> str:
        """``finalize``: one final transcript of what was sent so far; the stream stays open."""
        del now
        return FINALIZE

    def send_close_stream(self) -> str:
        """``close_stream``: the server flushes, sends the ``is_last`` transcript and closes."""
        self.closing = True
        return CLOSE_STREAM

    # --- server to client ------------------------------------------------------------------

    def receive_text(self, text: str) -> list[PulseEvent]:
        """Parse one text frame.

        Raises:
            ProtocolError: The frame is not a JSON object.
            ProviderStreamError: The server's ``error`` message.
        """
        message = json_object(text, self.provider)
        self.request_id = message.get("session_id") or self.request_id
        kind = message.get("type")
        if kind == "error" or message.get("status") == "error":
            raise ProviderStreamError(
                f"error: {message.get('message') or 'no message'}",
                provider=self.provider,
                retryable=False,
                request_id=self.request_id,
            )
        if kind == "transcription":
            return [self._transcription(message)]
        if kind == "speech_started":
            return [SpeechStarted(float(message.get("timestamp") or 0.0))]
        if kind == "speech_ended":
            return [SpeechEnded(float(message.get("timestamp") or 0.0))]
        return []  # a message type newer than this client: skip it

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """The socket closed: None if that ended a ``close_stream``, else the error it means."""
        if self.closing and code in (1000, 1005, None):
            return None
        if code == 1008:
            return ProviderStreamError(
                f"closed with 1008 {reason}: the organisation's limit of concurrent streams is reached; "
                "raise it with Smallest or retry when calls end",
                provider=self.provider,
                retryable=True,
                status=code,
                request_id=self.request_id,
            )
        hint = "the server ended the stream before close_stream" if code == 1000 else "the connection dropped"
        return ProviderConnectionError(
            f"closed with {code} {reason}: {hint}; reconnect", provider=self.provider
        )

    def _transcription(self, message: Mapping[str, Any]) -> Transcription:
        text = message.get("transcript")
        if text is None:
            text = message.get("transcription")
        words = [w for w in message.get("words") or () if isinstance(w, dict)]
        ends = [float(w["end"]) for w in words if isinstance(w.get("end"), int | float)]
        scores = [float(w["confidence"]) for w in words if isinstance(w.get("confidence"), int | float)]
        return Transcription(
            text=str(text or ""),
            is_final=bool(message.get("is_final")) or bool(message.get("is_last")),
            is_last=bool(message.get("is_last")),
            from_finalize=bool(message.get("from_finalize")),
            end=max(ends) if ends else None,
            confidence=sum(scores) / len(scores) if scores else None,
        )
