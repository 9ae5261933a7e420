"""Smallest AI Lightning TTS WebSocket (``/waves/v1/tts/live``), sans I/O.

Every pushed text is one request (``continue: false``, ``flush: true``) with its own
``request_id``, which the server echoes as ``external_request_id`` on its ``chunk``,
``word_timestamp`` and ``complete`` messages; so a text's audio ends at its ``complete``.
A reply's requests are spoken in the order they were pushed: audio of a later request that
arrives early is held until the ones before it are complete. Word times come relative to
their request's audio, and are moved onto the reply's timeline here. There is no cancel
message: :meth:`LightningProtocol.drop` forgets a reply, and its late audio is dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import msgspec

from voicecore.errors import (
    ConfigError,
    ProtocolError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderStreamError,
)
from voicecore.sansio.jsonmsg import b64_audio, json_object
from voicecore.sansio.ttsevents import ReplyAudio, ReplyEvent, ReplyFailed, close_error

__all__ = [
    "LightningProtocol",
    "auth_headers",
    "output_format",
    "tts_url",
]

_RATES = (8000, 16000, 24000, 44100)
_G711 = {"mulaw": "ulaw", "alaw": "alaw"}
_FINAL_WORDS = ("auth", "api key", "invalid", "credit", "quota", "not found", "forbidden", "unsupported")


def output_format(encoding: str, sample_rate: int) -> str:
    """The ``output_format`` for raw audio (``ulaw`` at 8000 Hz is Twilio's payload as is).

    Raises:
        ConfigError: Lightning has no raw format for this encoding and rate.
    """
    if encoding in _G711 and sample_rate == 8000:
        return _G711[encoding]
    if encoding == "pcm16" and sample_rate in _RATES:
        return "pcm"
    raise ConfigError(f"Smallest AI Lightning has no raw output format for {encoding} at {sample_rate} Hz")


def tts_url(base_url: str, *, timeout: int | None = None) -> str:
    """The Lightning TTS WebSocket URL (``timeout``: the server's idle timeout in seconds)."""
    url = f"{base_url.rstrip('/')}/waves/v1/tts/live"
    return f"{url}?{urlencode({'timeout': timeout})}" if timeout else url


def auth_headers(api_key: str | None) -> dict[str, str]:
    """``Authorization: Bearer`` (none without a key)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


@dataclass
class _Request:
    key: str | None  # None once its reply is dropped
    complete: bool = False
    held: list[tuple[bytes, tuple[tuple[str, float], ...]]] = field(
        default_factory=list
    )  # until it is the head
    offset_ms: float = 0.0  # where its audio starts on the reply's timeline


@dataclass
class _Reply:
    texts: deque[_Request] = field(default_factory=deque)  # oldest first; an empty text is complete at once
    audio_ms: float = 0.0


class LightningProtocol:
    """What goes over one Lightning TTS socket, and what came back for each reply.

    Args:
        request: The fields of every request (``voice_id``, ``model``, ``language``,
            ``sample_rate``, ``output_format``, ``word_timestamps``, ``complete_backoff_ms``...).
        bytes_per_ms: Audio bytes per millisecond of the output format (for word times).
        provider: The provider's name, for errors.
    """

    def __init__(
        self, *, request: Mapping[str, Any], bytes_per_ms: float, provider: str = "smallest"
    ) -> None:
        self.request = dict(request)
        self.bytes_per_ms = bytes_per_ms
        self.provider = provider
        self.closing = False
        self._replies: dict[str, _Reply] = {}
        self._requests: dict[str, _Request] = {}  # in flight (sent, no ``complete`` yet), oldest first
        self._sent = 0

    @property
    def in_flight(self) -> int:
        """Requests sent whose ``complete`` has not come."""
        return len(self._requests)

    # --- client to server ------------------------------------------------------------------

    def open_reply(self, key: str) -> None:
        """Start tracking a reply."""
        if key in self._replies:
            raise ProtocolError(f"reply {key!r} is already open", kind="reply")
        self._replies[key] = _Reply()

    def push_text(self, key: str, text: str) -> tuple[str | None, int]:
        """The request for ``text``, and how many texts are already done.

        Text with nothing to say is not sent: it ends with the text before it (at once, if
        that one is spoken).
        """
        reply = self._reply(key)
        if not text.strip():
            if not reply.texts:
                return None, 1
            reply.texts.append(_Request(key, complete=True))
            return None, 0
        self._sent += 1
        request_id = f"{key}.{self._sent}"
        request = _Request(key)
        if not reply.texts:
            request.offset_ms = reply.audio_ms
        reply.texts.append(request)
        self._requests[request_id] = request
        message = {
            **self.request,
            "text": text.strip(),
            "continue": False,
            "flush": True,
            "request_id": request_id,
        }
        return _encode(message), 0

    def keep_alive(self) -> list[str]:
        """The message that resets the server's idle timer (a single space).

        Nothing while requests are in flight, so that whatever it answers cannot be taken for a
        reply's audio (and the server is not idle then anyway).
        """
        if self._requests:
            return []
        return [_encode({**self.request, "text": " ", "request_id": "keepalive"})]

    def drop(self, key: str) -> int:
        """Forget a reply (barge-in): its late audio is dropped. How many forgotten requests are in flight."""
        reply = self._replies.pop(key, None)
        if reply is None:
            return 0
        for request in reply.texts:
            request.key = None
        return sum(1 for request in self._requests.values() if request.key is None)

    def texts_pending(self, key: str) -> int:
        """Pushed texts of the reply whose audio has not all arrived."""
        reply = self._replies.get(key)
        return len(reply.texts) if reply else 0

    def _reply(self, key: str) -> _Reply:
        try:
            return self._replies[key]
        except KeyError:
            raise ProtocolError(f"reply {key!r} is not open", kind="reply") from None

    # --- server to client ------------------------------------------------------------------

    def receive_text(self, text: str) -> list[ReplyEvent]:
        """Parse one message; messages of dropped replies or unknown requests are dropped.

        Raises:
            ProtocolError: The message is not a JSON object, or its audio is not base64.
            ProviderError: An error that names no request (it concerns the socket).
        """
        message = json_object(text, self.provider)
        status = message.get("status")
        request_id = message.get("external_request_id")
        if request_id is None and self._requests and status != "error":
            request_id = next(iter(self._requests))  # a server that does not echo: the oldest request
        request = self._requests.get(request_id) if isinstance(request_id, str) else None
        if status == "error":
            return self._failed(message, request, echoed=isinstance(request_id, str))
        if request is None:
            return []
        data = message.get("data")
        data = data if isinstance(data, Mapping) else {}
        if status == "complete":
            del self._requests[str(request_id)]
            request.complete = True
            return self._advance(request.key, None)
        if status == "chunk":
            return self._deliver(request, b64_audio(data.get("audio"), self.provider), ())
        if status == "word_timestamp":
            word, end = data.get("word"), data.get("end")
            if isinstance(word, str) and isinstance(end, int | float) and not isinstance(end, bool):
                return self._deliver(request, b"", ((word, float(end) * 1000.0),))
        return []

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """The socket closed: None when we closed it, else the error it means."""
        return close_error(
            self.provider, code, reason, closing=self.closing, policy="API key, concurrency limit"
        )

    def _deliver(
        self, request: _Request, audio: bytes, words: tuple[tuple[str, float], ...]
    ) -> list[ReplyEvent]:
        """Pass on what arrived for ``request`` now if it is its reply's oldest text, else hold it."""
        if request.key is None:
            return []
        reply = self._replies[request.key]
        if reply.texts[0] is not request:
            request.held.append((audio, words))
            return []
        return [self._spoken(request.key, reply, request, audio, words)]

    def _spoken(
        self,
        key: str,
        reply: _Reply,
        request: _Request,
        audio: bytes,
        words: tuple[tuple[str, float], ...],
        done: int = 0,
    ) -> ReplyAudio:
        reply.audio_ms += len(audio) / self.bytes_per_ms
        timed = tuple((word, request.offset_ms + end) for word, end in words)
        return ReplyAudio(key, audio, timed, done)

    def _advance(self, key: str | None, reply: _Reply | None) -> list[ReplyEvent]:
        """Pop the reply's complete texts from the front, passing on what the next ones held."""
        if key is None or (reply := reply or self._replies.get(key)) is None:
            return []
        events: list[ReplyEvent] = []
        done = 0
        while reply.texts and reply.texts[0].complete:
            reply.texts.popleft()
            done += 1
            if reply.texts:
                head = reply.texts[0]
                head.offset_ms = reply.audio_ms
                for audio, words in head.held:
                    events.append(self._spoken(key, reply, head, audio, words, done))
                    done = 0
                head.held.clear()
        if done:
            events.append(ReplyAudio(key, texts_done=done))
        return events

    def _failed(
        self, message: Mapping[str, Any], request: _Request | None, *, echoed: bool
    ) -> list[ReplyEvent]:
        """An error for a reply's request fails that reply; one naming no request fails the socket."""
        error = self._error(message)
        if request is None and not echoed:
            raise error
        key = request.key if request is not None else None
        if key is None:
            return []  # about a keep-alive, or a request of a reply already dropped
        self.drop(key)
        return [ReplyFailed(key, error)]

    def _error(self, message: Mapping[str, Any]) -> ProviderError:
        """An error message (``{"error": {"message", "code"}}`` or ``message`` at the top)."""
        inner = message.get("error")
        inner = inner if isinstance(inner, Mapping) else {"message": inner} if inner else {}
        text = str(inner.get("message") or message.get("message") or "unknown error")
        code = inner.get("code") or message.get("code")
        if "inactivity" in text.lower() or "timed out" in text.lower():
            return ProviderConnectionError(
                f"{text}; reconnect (keep-alives were too far apart)", provider=self.provider
            )
        status = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        if status is not None:
            retryable = status >= 500 or status in ProviderStatusError.RETRYABLE_CLIENT_STATUSES
        else:
            retryable = not any(word in f"{text} {code or ''}".lower() for word in _FINAL_WORDS)
        hint = "retry" if retryable else "check the API key, voice, model and sample rate"
        label = f" ({code})" if code else ""
        return ProviderStreamError(
            f"{text}{label}; {hint}", provider=self.provider, retryable=retryable, status=status
        )


def _encode(message: Mapping[str, Any]) -> str:
    return msgspec.json.encode(message).decode()
