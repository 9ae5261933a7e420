"""Cartesia TTS WebSocket (``/tts/websocket``, Sonic), sans I/O.

One socket carries many *contexts*; voicecore uses a fresh context per reply. Each pushed
text is a generation request with ``continue: true`` and ``flush: true``, so the server
generates it at once and numbers it: Cartesia's flush ids count the transcript segments of a
context from 1 (the chunks of the first segment carry ``flush_id`` 1, a flush starts the
next), so the k-th pushed text's chunks and timestamps carry ``flush_id`` k, and
``flush_done`` with that id says its generation is complete. :class:`CartesiaProtocol` turns
that into "text k's audio ends here": a chunk of a later flush, ``flush_done`` k or ``done``
end it, whichever comes first. The input ends with an empty transcript and
``continue: false``; the server answers ``done``. A barge-in sends ``cancel``; chunks of a
cancelled context still in flight are dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from voicecore.errors import (
    ConfigError,
    ProtocolError,
    ProviderError,
    ProviderStatusError,
    ProviderStreamError,
)
from voicecore.sansio.jsonmsg import b64_audio, json_object
from voicecore.sansio.ttsevents import ReplyAudio, ReplyDone, ReplyEvent, ReplyFailed, close_error

__all__ = [
    "CARTESIA_VERSION",
    "CartesiaProtocol",
    "auth_headers",
    "output_format",
    "websocket_url",
]

#: The API version the installed official SDK (cartesia 4.x) sends; the message shapes here
#: are that version's.
CARTESIA_VERSION = "2026-08-14"

_ENCODINGS = {"pcm16": "pcm_s16le", "mulaw": "pcm_mulaw", "alaw": "pcm_alaw"}
_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


def output_format(encoding: str, sample_rate: int) -> dict[str, Any]:
    """The raw ``output_format`` object (``pcm_mulaw`` at 8000 Hz is Twilio's payload as is).

    Raises:
        ConfigError: Cartesia has no raw format for this encoding and rate.
    """
    if encoding not in _ENCODINGS or sample_rate not in _RATES:
        raise ConfigError(f"Cartesia has no raw output format for {encoding} at {sample_rate} Hz")
    return {"container": "raw", "encoding": _ENCODINGS[encoding], "sample_rate": sample_rate}


def websocket_url(base_url: str) -> str:
    """The TTS WebSocket URL under ``base_url`` (``wss://api.cartesia.ai`` or a fake's root)."""
    return f"{base_url.rstrip('/')}/tts/websocket"


def auth_headers(api_key: str | None, version: str = CARTESIA_VERSION) -> dict[str, str]:
    """``Cartesia-Version`` and, with a key, ``Authorization: Bearer``."""
    headers = {"Cartesia-Version": version}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


@dataclass
class _Context:
    request: dict[str, Any]
    flushes: int = 0  # flush requests sent
    done_through: int = 0  # the highest flush id whose audio has ended
    texts: deque[int] = field(default_factory=deque)  # per pushed text, the flush id that ends it


class CartesiaProtocol:
    """What goes over one Cartesia TTS socket, and what came back for each context.

    Args:
        provider: The provider's name, for errors.
    """

    def __init__(self, *, provider: str = "cartesia") -> None:
        self.provider = provider
        self.closing = False
        self._contexts: dict[str, _Context] = {}
        self._used: set[str] = set()

    # --- client to server ------------------------------------------------------------------

    def open_context(self, context_id: str, request: Mapping[str, Any]) -> None:
        """Start tracking a context; its first request opens it on the server.

        ``request`` holds the fields every request of the context carries (``model_id``,
        ``voice``, ``output_format``, ``language``, ``add_timestamps``,
        ``max_buffer_delay_ms``, ``generation_config``...): they must not change within it.
        """
        if context_id in self._used:
            raise ProtocolError(f"context {context_id!r} was already used", kind="context")
        self._used.add(context_id)
        self._contexts[context_id] = _Context(dict(request))

    def push_text(self, context_id: str, text: str) -> tuple[str | None, int]:
        """A request that generates ``text`` now, and how many texts are already done.

        Transcripts of a context are joined verbatim, so the text is sent with one trailing
        space. Text with nothing to say is not sent: it ends with the text before it (at
        once, if that one's audio is out).
        """
        context = self._context(context_id)
        if not text.strip():
            context.texts.append(context.flushes)
            return None, self._advance(context, context.done_through)
        context.flushes += 1
        context.texts.append(context.flushes)
        message = {
            **context.request,
            "context_id": context_id,
            "transcript": text.strip() + " ",
            "continue": True,
            "flush": True,
        }
        return _encode(message), 0

    def end_input(self, context_id: str) -> str | None:
        """The last request of a context (empty transcript, ``continue: false``)."""
        context = self._contexts.get(context_id)
        if context is None:
            return None
        return _encode({**context.request, "context_id": context_id, "transcript": "", "continue": False})

    def cancel(self, context_id: str) -> str | None:
        """Stop a context (barge-in); its late chunks are dropped. None once it is done."""
        if self._contexts.pop(context_id, None) is None:
            return None
        return _encode({"context_id": context_id, "cancel": True})

    def texts_pending(self, context_id: str) -> int:
        """Pushed texts of the context whose audio has not all arrived."""
        context = self._contexts.get(context_id)
        return len(context.texts) if context else 0

    def _context(self, context_id: str) -> _Context:
        try:
            return self._contexts[context_id]
        except KeyError:
            raise ProtocolError(f"context {context_id!r} is not open", kind="context") from None

    @staticmethod
    def _advance(context: _Context, flush_id: int) -> int:
        """Every flush up to ``flush_id`` has ended: pop the texts that ends; how many."""
        context.done_through = max(context.done_through, flush_id)
        done = 0
        while context.texts and context.texts[0] <= context.done_through:
            context.texts.popleft()
            done += 1
        return done

    # --- server to client ------------------------------------------------------------------

    def receive_text(self, text: str) -> list[ReplyEvent]:
        """Parse one message; messages of cancelled or unknown contexts are dropped.

        Raises:
            ProtocolError: The message is not a JSON object, or its audio is not base64.
            ProviderError: An error that names no open context (it concerns the socket).
        """
        message = json_object(text, self.provider)
        kind = message.get("type")
        key = message.get("context_id")
        key = key if isinstance(key, str) else ""
        context = self._contexts.get(key)
        if kind == "error":
            error = self._error(message)
            if context is None:
                if key in self._used:
                    return []  # about a context already cancelled or done
                raise error
            del self._contexts[key]
            return [ReplyFailed(key, error)]
        if context is None:
            return []
        flush_id = message.get("flush_id")
        flush_id = flush_id if isinstance(flush_id, int) else None
        if kind == "done":
            done = self._advance(context, context.flushes)
            del self._contexts[key]
            return [*([ReplyAudio(key, texts_done=done)] if done else []), ReplyDone(key)]
        if kind == "flush_done":
            done = self._advance(context, flush_id or 0)
            return [ReplyAudio(key, texts_done=done)] if done else []
        # A chunk or timestamps of flush k: every earlier flush has ended.
        before = self._advance(context, flush_id - 1) if flush_id else 0
        if kind == "chunk":
            return [ReplyAudio(key, b64_audio(message.get("data"), self.provider), texts_done=before)]
        if kind == "timestamps":
            return [ReplyAudio(key, words=_words(message.get("word_timestamps")), texts_done=before)]
        return [ReplyAudio(key, texts_done=before)] if before else []  # phoneme timestamps, ...

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """The socket closed: None when we closed it, else the error it means."""
        return close_error(
            self.provider, code, reason, closing=self.closing, policy="API key, limits", hint="check the key"
        )

    def _error(self, message: Mapping[str, Any]) -> ProviderError:
        """An ``error`` message (``title``/``message``, or the older ``error`` string)."""
        title, detail, old = message.get("title"), message.get("message"), message.get("error")
        text = ": ".join(str(part) for part in (title, detail) if part) or str(old or "unknown error")
        if code := message.get("error_code"):
            text += f" ({code})"
        status = message.get("status_code")
        status = status if isinstance(status, int) and not isinstance(status, bool) else None
        request_id = message.get("request_id")
        request_id = request_id if isinstance(request_id, str) else None
        retryable = status is None or status >= 500 or status in ProviderStatusError.RETRYABLE_CLIENT_STATUSES
        hint = "retry" if retryable else "check the API key, voice, model and output format"
        return ProviderStreamError(
            f"{text}; {hint}",
            provider=self.provider,
            retryable=retryable,
            status=status,
            request_id=request_id,
        )


def _words(timestamps: object) -> tuple[tuple[str, float], ...]:
    """``(word, end_ms)`` from ``word_timestamps`` (seconds); malformed entries are skipped."""
    if not isinstance(timestamps, Mapping):
        return ()
    words: Sequence[object] = timestamps.get("words") or ()
    ends: Sequence[object] = timestamps.get("end") or ()
    return tuple(
        (word, float(end) * 1000.0)
        for word, end in zip(words, ends, strict=False)
        if isinstance(word, str) and isinstance(end, int | float) and not isinstance(end, bool)
    )


def _encode(message: Mapping[str, Any]) -> str:
    return msgspec.json.encode(message).decode()
