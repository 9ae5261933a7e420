"""voicecore's exception hierarchy.

Every exception voicecore raises derives from :class:`VoicecoreError`; the ones that
signal bad input also derive from the matching built-in, so ``except ValueError`` works::

    VoicecoreError
    ├── ConfigError(ValueError)            bad settings or constructor arguments
    ├── AudioFormatError(ValueError)       audio the core cannot take: odd byte counts,
    │                                      unsupported rates, bad buffers, invalid base64
    ├── PlayoutOverflowError(BufferError)  a bounded playout buffer would overflow
    └── HistoryError(ValueError)           a conversation-history update that does not fit
                                           the conversation (a result for an unknown tool call)

The Rust extension raises these classes (``rust/py/src/errors.rs`` holds the one mapping).
"""

from __future__ import annotations

__all__ = ["AudioFormatError", "ConfigError", "HistoryError", "PlayoutOverflowError", "VoicecoreError"]


class VoicecoreError(Exception):
    """Base class of every voicecore exception."""


class ConfigError(VoicecoreError, ValueError):
    """A setting or constructor argument is invalid; the message says which and why."""


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
