"""Deepgram live transcription (``/v1/listen``), sans I/O: URL, control messages, results.

The client sends audio as binary frames in the encoding named in the URL (``mulaw`` at
8 kHz straight from a phone line, so no conversion) and JSON control messages as text:
``KeepAlive`` while no audio flows (the server closes an idle socket after 10 s),
``Finalize`` to flush what it has heard, ``CloseStream`` to end. The server answers with
``Results`` (interim, then final; ``speech_final`` when its endpointing heard a pause),
``SpeechStarted``, ``UtteranceEnd`` and, at the end, ``Metadata``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from voicecore.errors import ProtocolError, ProviderConnectionError, ProviderError, ProviderStreamError
from voicecore.sansio.jsonmsg import json_object
from voicecore.sansio.replay import ReplayBuffer

__all__ = [
    "CLOSE_STREAM",
    "FINALIZE",
    "KEEP_ALIVE",
    "DeepgramEvent",
    "ListenProtocol",
    "Metadata",
    "ReplayBuffer",
    "Results",
    "SpeechStarted",
    "UtteranceEnd",
    "auth_headers",
    "close_error",
    "listen_url",
]

KEEP_ALIVE = '{"type":"KeepAlive"}'
FINALIZE = '{"type":"Finalize"}'
CLOSE_STREAM = '{"type":"CloseStream"}'
ENCODINGS = {"pcm16": "linear16", "mulaw": "mulaw", "alaw": "alaw"}


@dataclass(frozen=True, slots=True)
class Results:
    """A transcript of one audio window.

    Attributes:
        transcript: The best alternative's text (may be empty).
        is_final: This window's text will not change.
        speech_final: Endpointing heard a pause: the speaker finished (implies final).
        from_finalize: The result answers a ``Finalize``.
        confidence: The best alternative's confidence.
        start: Start of the window in seconds of audio.
        duration: Length of the window in seconds.
    """

    transcript: str
    is_final: bool
    speech_final: bool
    from_finalize: bool = False
    confidence: float | None = None
    start: float = 0.0
    duration: float = 0.0


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The server heard speech start at ``timestamp`` seconds (``vad_events=true``)."""

    timestamp: float


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    """A gap of ``utterance_end_ms`` followed the last word, which ended at ``last_word_end``."""

    last_word_end: float


@dataclass(frozen=True, slots=True)
class Metadata:
    """The summary the server sends before it closes the stream."""

    request_id: str | None
    duration: float


DeepgramEvent = Results | SpeechStarted | UtteranceEnd | Metadata


def listen_url(
    base_url: str,
    *,
    model: str,
    encoding: str,
    sample_rate: int,
    language: str,
    interim_results: bool = True,
    endpointing_ms: int | None = 300,
    utterance_end_ms: int | None = 1000,
    vad_events: bool = True,
    smart_format: bool = True,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The WebSocket URL with its query, as Deepgram documents the parameters.

    Args:
        base_url: ``wss://api.deepgram.com`` or a self-hosted / fake server.
        model: ``nova-3``, ``nova-2-phonecall``, ...
        encoding: ``linear16``, ``mulaw`` or ``alaw`` (see ``ENCODINGS``).
        sample_rate: Hz of the audio sent.
        language: ``en-US``, ``multi``, ...
        interim_results: Send interim results as words are heard.
        endpointing_ms: Silence that makes a result ``speech_final`` (None: off).
        utterance_end_ms: Gap after the last word for ``UtteranceEnd`` (None: off; needs
            interim results, the server refuses it otherwise).
        vad_events: Send ``SpeechStarted``.
        smart_format: Punctuation and formatting of numbers, dates, ...
        extra: More parameters, as Deepgram names them (``keyterm``, ``redact``, ...).

    Raises:
        ProtocolError: ``utterance_end_ms`` without interim results.
    """
    if utterance_end_ms is not None and not interim_results:
        raise ProtocolError("deepgram: utterance_end_ms needs interim_results", kind="listen")
    query: dict[str, str] = {
        "model": model,
        "encoding": encoding,
        "sample_rate": str(sample_rate),
        "channels": "1",
        "language": language,
        "interim_results": _flag(interim_results),
        "endpointing": "false" if endpointing_ms is None else str(endpointing_ms),
        "vad_events": _flag(vad_events),
        "smart_format": _flag(smart_format),
    }
    if utterance_end_ms is not None:
        query["utterance_end_ms"] = str(utterance_end_ms)
    query.update(extra or {})
    return f"{base_url.rstrip('/')}/v1/listen?{urlencode(query)}"


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The ``Authorization: Token`` header (none for a server that needs no key)."""
    return {"Authorization": f"Token {api_key}"} if api_key else {}


def _flag(value: bool) -> str:
    return "true" if value else "false"


class ListenProtocol:
    """One live stream's protocol state: what to send when, and what the server said.

    Time is passed in (``now``, seconds on any monotonic clock); nothing here reads a clock.

    Args:
        provider: The provider's name, for errors.
        keepalive_interval: Seconds without audio after which a ``KeepAlive`` is due
            (Deepgram asks for one every 3 to 5 s and closes after 10 s of silence).
    """

    def __init__(self, *, provider: str = "deepgram", keepalive_interval: float = 4.0) -> None:
        self.provider = provider
        self.keepalive_interval = keepalive_interval
        self.request_id: str | None = None
        self.closing = False
        self._last_sent: float | None = None

    # --- client to server ------------------------------------------------------------------

    def send_audio(self, audio: bytes, now: float) -> bytes | None:
        """The binary frame for ``audio``; None for no audio (an empty frame would end the stream)."""
        if not audio:
            return None
        self._last_sent = now
        return audio

    def send_finalize(self, now: float) -> str:
        """``Finalize``: transcribe what was sent so far now (the VAD heard the end of speech)."""
        self._last_sent = now
        return FINALIZE

    def send_close_stream(self) -> str:
        """``CloseStream``: the server finishes, sends ``Metadata`` and closes."""
        self.closing = True
        return CLOSE_STREAM

    def keepalive_at(self, now: float) -> float:
        """When the next ``KeepAlive`` is due (the interval after the last thing sent)."""
        return (now if self._last_sent is None else self._last_sent) + self.keepalive_interval

    def send_keepalive(self, now: float) -> str | None:
        """``KeepAlive`` if one is due at ``now``, else None."""
        if self.closing or (self._last_sent is not None and now < self.keepalive_at(now)):
            return None
        self._last_sent = now
        return KEEP_ALIVE

    # --- server to client ------------------------------------------------------------------

    def receive_text(self, text: str) -> list[DeepgramEvent]:
        """Parse one text frame."""
        message = json_object(text, self.provider)
        kind = message.get("type")
        if kind == "Results":
            return [self._results(message)]
        if kind == "SpeechStarted":
            return [SpeechStarted(float(message.get("timestamp") or 0.0))]
        if kind == "UtteranceEnd":
            return [UtteranceEnd(float(message.get("last_word_end") or 0.0))]
        if kind == "Metadata":
            self.request_id = message.get("request_id") or self.request_id
            return [Metadata(self.request_id, float(message.get("duration") or 0.0))]
        if kind == "Error" or "err_code" in message:
            description = message.get("description") or message.get("err_msg") or "no description"
            code = message.get("variant") or message.get("code") or message.get("err_code") or "unknown"
            raise ProviderStreamError(
                f"error {code}: {description}",
                provider=self.provider,
                retryable=False,
                request_id=self.request_id,
            )
        return []  # a message type newer than this client: skip it, as the SDK does

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """The socket closed: None if that ended a ``CloseStream``, else the error it means."""
        return close_error(self.provider, code, reason, closing=self.closing, request_id=self.request_id)

    def _results(self, message: Mapping[str, Any]) -> Results:
        alternatives = (message.get("channel") or {}).get("alternatives") or [{}]
        best = alternatives[0]
        metadata = message.get("metadata") or {}
        self.request_id = metadata.get("request_id") or self.request_id
        speech_final = bool(message.get("speech_final"))
        return Results(
            transcript=str(best.get("transcript") or ""),
            is_final=bool(message.get("is_final")) or speech_final,
            speech_final=speech_final,
            from_finalize=bool(message.get("from_finalize")),
            confidence=best.get("confidence"),
            start=float(message.get("start") or 0.0),
            duration=float(message.get("duration") or 0.0),
        )


def close_error(
    provider: str, code: int | None, reason: str, *, closing: bool, request_id: str | None
) -> ProviderError | None:
    """What a close of a Deepgram socket (``/v1`` or ``/v2``) means: None if it ended a ``CloseStream``.

    Deepgram closes normally only after ``CloseStream`` (Flux without a status code); any other
    close, even 1000, ends a call's transcription early, so it is an error (retryable: reconnect),
    except an undecodable-audio close, which a reconnect with the same settings cannot fix.
    """
    if closing and code in (1000, 1005, None):
        return None
    if reason.startswith("DATA-") or code in (1002, 1003, 1008):
        return ProviderStreamError(
            f"closed with {code} {reason}: the audio could not be decoded; check that the encoding "
            "and sample rate in the URL match the audio sent",
            provider=provider,
            retryable=False,
            status=code,
            request_id=request_id,
        )
    if reason.startswith("NET-0001"):
        hint = "no audio or KeepAlive for 10 s"
    elif reason.startswith("NET-"):
        hint = "the server timed out"
    elif code == 1000:
        hint = "the server ended the stream before CloseStream"
    else:
        hint = "the connection dropped"
    return ProviderConnectionError(f"closed with {code} {reason}: {hint}; reconnect", provider=provider)
