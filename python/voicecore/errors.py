"""voicecore's exception hierarchy.

Every exception voicecore raises derives from :class:`VoicecoreError`; the ones that
signal bad input also derive from the matching built-in, so ``except ValueError`` works::

    VoicecoreError
    ├── ConfigError(ValueError)            bad settings or constructor arguments
    ├── AudioFormatError(ValueError)       audio the core cannot take: odd byte counts,
    │                                      unsupported rates, bad buffers, invalid base64
    ├── PlayoutOverflowError(BufferError)  a bounded playout buffer would overflow
    └── ProtocolError                      a peer sent what its protocol does not allow
                                           (``kind`` names the message type)

The Rust extension raises these classes (``rust/py/src/errors.rs`` holds the one mapping).
"""

from __future__ import annotations

__all__ = ["AudioFormatError", "ConfigError", "PlayoutOverflowError", "ProtocolError", "VoicecoreError"]


class VoicecoreError(Exception):
    """Base class of every voicecore exception."""


class ConfigError(VoicecoreError, ValueError):
    """A setting or constructor argument is invalid; the message says which and why."""


class AudioFormatError(VoicecoreError, ValueError):
    """Audio data or an audio parameter cannot be processed as given."""


class PlayoutOverflowError(VoicecoreError, BufferError):
    """Appending would exceed a playout buffer's bounded capacity."""


class ProtocolError(VoicecoreError):
    """A peer (caller transport or provider) sent something its protocol does not allow."""

    def __init__(self, message: str, *, kind: str) -> None:
        """``kind`` names the offending message type (e.g. ``"mark"``, ``"media"``)."""
        super().__init__(message)
        self.kind = kind
