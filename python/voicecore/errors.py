"""voicecore's exception hierarchy.

Every exception voicecore raises derives from :class:`VoicecoreError`; the ones that
signal bad input also derive from the matching built-in, so ``except ValueError`` works::

    VoicecoreError
    ├── ConfigError(ValueError)            bad settings or constructor arguments
    ├── AudioFormatError(ValueError)       audio the core cannot take: odd byte counts,
    │                                      unsupported rates, bad buffers, invalid base64
    ├── PlayoutOverflowError(BufferError)  a bounded playout buffer would overflow
    ├── HistoryError(ValueError)           a conversation-history update that does not fit
    │                                      the conversation (a result for an unknown tool call)
    ├── ServerProcessError(RuntimeError)   a load test's server process did not come up
    ├── ListenError(OSError)               the server cannot listen on its host and port
    ├── ProtocolError                      a peer sent what its protocol does not allow
    │                                      (``kind`` names the message type)
    └── ProviderError                      an STT/LLM/TTS provider failed (``provider``,
        │                                  ``retryable``, ``status``, ``request_id``)
        ├── ProviderConnectionError        could not connect, or the connection dropped
        ├── ProviderTimeoutError           no answer in time
        ├── ProviderStatusError            an error status: 4xx is final except 408/409/429
        └── ProviderStreamError            an error message inside a stream that had started

The Rust extension raises these classes (``rust/py/src/errors.rs`` holds the one mapping).
"""

from __future__ import annotations

import errno
import os

__all__ = [
    "AudioFormatError",
    "ConfigError",
    "HistoryError",
    "ListenError",
    "PlayoutOverflowError",
    "ProtocolError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderStatusError",
    "ProviderStreamError",
    "ProviderTimeoutError",
    "ServerProcessError",
    "VoicecoreError",
]


class VoicecoreError(Exception):
    """Base class of every voicecore exception."""


class ConfigError(VoicecoreError, ValueError):
    """A setting or constructor argument is invalid; the message says which and why."""


class ServerProcessError(VoicecoreError, RuntimeError):
    """A load test's server process did not come up (it exited, or never said it was listening)."""


class ListenError(VoicecoreError, OSError):
    """The server cannot listen on its host and port (in use, not permitted, not a local address)."""

    @classmethod
    def on(cls, host: str, port: int, error: OSError) -> ListenError:
        """The error for failing to listen on ``host:port``, saying what to change."""
        reason = os.strerror(error.errno) if error.errno else str(error)
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if error.errno == errno.EADDRINUSE:
            advice = "stop what holds the port, or choose another with --port or VOICECORE_PORT"
        elif error.errno == errno.EACCES:
            advice = "ports below 1024 need privileges: choose a higher one with --port or VOICECORE_PORT"
        elif error.errno == errno.EADDRNOTAVAIL:
            advice = "the host is not an address of this machine: choose one with --host or VOICECORE_HOST"
        else:
            advice = "check --host and --port (VOICECORE_HOST, VOICECORE_PORT)"
        listen_error = cls(f"cannot listen on {where} ({reason.lower()}): {advice}")
        listen_error.errno = error.errno
        return listen_error


class AudioFormatError(VoicecoreError, ValueError):
    """Audio data or an audio parameter cannot be processed as given."""


class PlayoutOverflowError(VoicecoreError, BufferError):
    """Appending would exceed a playout buffer's bounded capacity."""


class HistoryError(VoicecoreError, ValueError):
    """A conversation-history update contradicts the conversation so far.

    Raised for a tool result whose call id no assistant message asked for (or that already
    has a result), or for replacing an assistant message when there is none. It signals a
    bug in the caller, never bad input from the caller on the phone.
    """


class ProtocolError(VoicecoreError):
    """A peer (caller transport or provider) sent something its protocol does not allow."""

    def __init__(self, message: str, *, kind: str) -> None:
        """``kind`` names the offending message type (e.g. ``"mark"``, ``"media"``)."""
        super().__init__(message)
        self.kind = kind


class ProviderError(VoicecoreError):
    """A provider failed; ``retryable`` says whether trying again (or elsewhere) can help."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        """``status``: the HTTP/WebSocket status, if any; ``request_id``: the provider's, to quote."""
        super().__init__(f"{provider}: {message}" + (f" [request id {request_id}]" if request_id else ""))
        self.provider = provider
        self.retryable = retryable
        self.status = status
        self.request_id = request_id


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or the connection dropped mid-stream (retryable)."""

    def __init__(self, message: str, *, provider: str, request_id: str | None = None) -> None:
        """A connection failure is always worth retrying."""
        super().__init__(message, provider=provider, retryable=True, request_id=request_id)


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time (retryable)."""

    def __init__(self, message: str, *, provider: str, request_id: str | None = None) -> None:
        """A timeout is always worth retrying."""
        super().__init__(message, provider=provider, retryable=True, request_id=request_id)


class ProviderStatusError(ProviderError):
    """The provider answered with an error status.

    Client errors (4xx) are final, except 408 (timeout), 409 (conflict) and 429 (rate
    limit); server errors (5xx) are retryable.
    """

    RETRYABLE_CLIENT_STATUSES = frozenset({408, 409, 429})

    def __init__(self, message: str, *, provider: str, status: int, request_id: str | None = None) -> None:
        """``retryable`` follows from ``status``."""
        retryable = status >= 500 or status in self.RETRYABLE_CLIENT_STATUSES
        super().__init__(
            message, provider=provider, retryable=retryable, status=status, request_id=request_id
        )


class ProviderStreamError(ProviderError):
    """The provider reported an error inside a stream that had already started.

    The HTTP status was a success, so ``status`` is None; ``retryable`` comes from the error's
    own type (a server error is worth retrying, an invalid request is not). A WebSocket
    provider's error message (Deepgram, ElevenLabs) raises this too, with the close code as
    ``status`` when the socket closed with one.
    """
