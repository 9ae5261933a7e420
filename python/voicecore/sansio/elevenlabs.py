"""ElevenLabs multi-context TTS WebSocket (``multi-stream-input``), sans I/O.

One socket carries several *contexts*, each an independent synthesis; voicecore uses one
context per reply, so a barge-in closes that context (``close_context``) and the socket
stays warm for the next reply. Client messages are JSON with ``context_id``; the server
answers with ``audio`` (base64 in the socket's ``output_format``) plus character
``alignment`` and, after ``close_context``, ``isFinal``, keyed by ``contextId``.

The audio does not say where one pushed text ends, so :class:`MultiContextProtocol` counts
the characters of the ``alignment`` (which follows the text as sent, unlike
``normalizedAlignment``) against each pushed text; spaces are not counted, so it does not
matter whether the server aligns them. The same alignment gives word end times, in ms from
the context's first audio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from voicecore.errors import (
    ConfigError,
    ProtocolError,
    ProviderConnectionError,
    ProviderError,
    ProviderStreamError,
)
from voicecore.sansio.jsonmsg import b64_audio, json_object
from voicecore.sansio.ttsevents import ReplyAudio, ReplyDone, ReplyEvent, close_error

__all__ = [
    "MultiContextProtocol",
    "auth_headers",
    "multi_stream_url",
    "output_format_name",
]

# (encoding, sample rate) -> output_format; the raw formats need no decoding on our side.
_OUTPUT_FORMATS = {
    ("mulaw", 8000): "ulaw_8000",
    ("alaw", 8000): "alaw_8000",
    ("pcm16", 8000): "pcm_8000",
    ("pcm16", 16000): "pcm_16000",
    ("pcm16", 22050): "pcm_22050",
    ("pcm16", 24000): "pcm_24000",
    ("pcm16", 44100): "pcm_44100",
}


def output_format_name(encoding: str, sample_rate: int) -> str:
    """The ``output_format`` for raw audio (``ulaw_8000`` is Twilio's payload as is).

    Raises:
        ConfigError: ElevenLabs has no raw format for this encoding and rate.
    """
    try:
        return _OUTPUT_FORMATS[(encoding, sample_rate)]
    except KeyError:
        raise ConfigError(f"ElevenLabs has no raw output format for {encoding} at {sample_rate} Hz") from None


def multi_stream_url(
    base_url: str, voice_id: str, *, model_id: str, output_format: str, extra: Mapping[str, str] | None = None
) -> str:
    """The ``multi-stream-input`` URL for ``voice_id`` with its query."""
    query = {"model_id": model_id, "output_format": output_format, **(extra or {})}
    path = f"/v1/text-to-speech/{quote(voice_id, safe='')}/multi-stream-input"
    return f"{base_url.rstrip('/')}{path}?{urlencode(query)}"


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The ``xi-api-key`` header (none without a key)."""
    return {"xi-api-key": api_key} if api_key else {}


@dataclass
class _Context:
    pending: deque[int] = field(default_factory=deque)  # non-space characters left per pushed text
    audio_ms: float = 0.0
    word: str = ""
    word_end: float = 0.0


class MultiContextProtocol:
    """What goes over one ``multi-stream-input`` socket, and what came back for each context.

    Args:
        bytes_per_ms: Audio bytes per millisecond of the output format (for word times).
        provider: The provider's name, for errors.
    """

    def __init__(self, *, bytes_per_ms: float, provider: str = "elevenlabs") -> None:
        self.bytes_per_ms = bytes_per_ms
        self.provider = provider
        self._contexts: dict[str, _Context] = {}
        self._closed: set[str] = set()
        self.closing = False

    @property
    def open_contexts(self) -> int:
        """Contexts opened and not yet closed (the server allows five at once)."""
        return len(self._contexts)

    # --- client to server ------------------------------------------------------------------

    def open_context(
        self,
        context_id: str,
        *,
        voice_settings: Mapping[str, Any] | None = None,
        generation_config: Mapping[str, Any] | None = None,
    ) -> str:
        """The first message of a context: a single space, with its settings."""
        if context_id in self._contexts or context_id in self._closed:
            raise ProtocolError(f"context {context_id!r} was already used", kind="context")
        self._contexts[context_id] = _Context()
        message: dict[str, Any] = {"text": " ", "context_id": context_id}
        if voice_settings:
            message["voice_settings"] = dict(voice_settings)
        if generation_config:
            message["generation_config"] = dict(generation_config)
        return _encode(message)

    def send_text(self, context_id: str, text: str, *, flush: bool = True) -> str | None:
        """Text for a context, ending in one space; ``flush`` generates it now (None: nothing to say)."""
        context = self._context(context_id)
        letters = sum(not c.isspace() for c in text)
        if not letters:
            return None
        context.pending.append(letters)
        message: dict[str, Any] = {"text": text.rstrip() + " ", "context_id": context_id}
        if flush:
            message["flush"] = True
        return _encode(message)

    def keep_alive(self, context_id: str | None = None) -> str:
        """Reset a context's inactivity timer (or, without one, the socket's)."""
        return _encode({"text": "", "context_id": context_id} if context_id else {"text": ""})

    def keep_alives(self) -> list[str]:
        """Keep-alives for every open context (or, with none, for the socket)."""
        return [self.keep_alive(context_id) for context_id in self._contexts] or [self.keep_alive()]

    def close_context(self, context_id: str) -> str | None:
        """Stop a context (barge-in); its late audio is dropped. None if it is already closed."""
        if self._contexts.pop(context_id, None) is None:
            return None
        self._closed.add(context_id)
        return _encode({"context_id": context_id, "close_context": True})

    def close_socket(self) -> str:
        """End the connection (contexts already flushing finish first)."""
        self.closing = True
        return _encode({"close_socket": True})

    def texts_pending(self, context_id: str) -> int:
        """Pushed texts of the context whose audio has not all arrived."""
        context = self._contexts.get(context_id)
        return len(context.pending) if context else 0

    def _context(self, context_id: str) -> _Context:
        try:
            return self._contexts[context_id]
        except KeyError:
            raise ProtocolError(f"context {context_id!r} is not open", kind="context") from None

    # --- server to client ------------------------------------------------------------------

    def receive_text(self, text: str) -> list[ReplyEvent]:
        """Parse one message; messages for closed or unknown contexts are dropped.

        A chunk that completes pushed texts is followed by a :class:`ReplyAudio` with
        ``texts_done`` and no audio (the texts end after that chunk's audio).
        """
        message = json_object(text, self.provider)
        if "message" in message or "error" in message:
            raise self._error(message)
        context_id = message.get("contextId") or message.get("context_id")
        if not isinstance(context_id, str) or context_id not in self._contexts:
            return []  # late audio of a closed context, or a context-less reply
        if message.get("isFinal") or message.get("is_final"):
            del self._contexts[context_id]
            self._closed.add(context_id)
            return [ReplyDone(context_id)]
        encoded = message.get("audio")
        if not encoded:
            return []
        audio = b64_audio(encoded, self.provider)
        return self._audio(context_id, audio, message.get("alignment") or message.get("normalizedAlignment"))

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """The socket closed: None after ``close_socket``, else the error it means."""
        return close_error(
            self.provider,
            code,
            reason,
            closing=self.closing,
            policy="API key, quota, limits",
            hint="check the key and the voice",
        )

    def _audio(self, context_id: str, audio: bytes, alignment: Mapping[str, Any] | None) -> list[ReplyEvent]:
        context = self._contexts[context_id]
        offset = context.audio_ms
        context.audio_ms += len(audio) / self.bytes_per_ms
        words: list[tuple[str, float]] = []
        done = 0
        if alignment:
            chars: Sequence[str] = alignment.get("chars") or ()
            starts: Sequence[float] = alignment.get("charStartTimesMs") or ()
            durations: Sequence[float] = (
                alignment.get("charDurationsMs") or alignment.get("charsDurationsMs") or ()
            )
            for char, start, duration in zip(chars, starts, durations, strict=False):
                if char.isspace():
                    if context.word:
                        words.append((context.word, context.word_end))
                        context.word = ""
                    continue
                context.word += char
                context.word_end = offset + float(start) + float(duration)
                if context.pending:
                    context.pending[0] -= 1
                    if context.pending[0] <= 0:
                        context.pending.popleft()
                        done += 1
                        words.append((context.word, context.word_end))  # a text's last word
                        context.word = ""
        spoken = ReplyAudio(context_id, audio, tuple(words))
        return [spoken, ReplyAudio(context_id, texts_done=done)] if done else [spoken]

    def _error(self, message: Mapping[str, Any]) -> ProviderError:
        text = str(message.get("message") or message.get("error"))
        kind = message.get("error")
        code = message.get("code")
        status = code if isinstance(code, int) else None
        if kind in ("input_timeout_exceeded", "inactivity_timeout"):
            return ProviderConnectionError(f"{text}; reconnect", provider=self.provider)
        hint = (
            "close a context before opening another"
            if kind == "max_active_conversations"
            else "check the API key, voice and parameters"
        )
        label = f" ({kind})" if kind and kind != text else ""
        return ProviderStreamError(
            f"{text}{label}; {hint}", provider=self.provider, retryable=False, status=status
        )


def _encode(message: Mapping[str, Any]) -> str:
    return msgspec.json.encode(message).decode()
