"""What the caller's side of a call sends, whatever the wire: one set of events for every protocol.

The Twilio Media Streams protocol (:mod:`voicecore.sansio.twilio`) and the browser's
(:mod:`voicecore.sansio.wire`) both hand these out, the transports pass them on unchanged and
the session (:class:`~voicecore.transports.base.Transport`) consumes them. Only the start of a
stream differs per protocol (which call it is, or the browser's audio rate).

They are frozen msgspec structs rather than dataclasses: one is built for every 20 ms of
every call, and a struct costs a fifth of a frozen dataclass to build.
"""

from __future__ import annotations

import msgspec

__all__ = ["CallEvent", "CallerAudio", "CallerHungUp", "DtmfPressed", "MarkPlayed"]


class CallerAudio(msgspec.Struct, frozen=True):
    """Caller audio in the transport's ``input_format``.

    Attributes:
        audio: The audio.
        timestamp_ms: Where it starts on the stream's media clock (ms since the stream began),
            when the protocol says (Twilio does); the session measures how late frames arrive
            against it.
    """

    audio: bytes
    timestamp_ms: int | None = None


class MarkPlayed(msgspec.Struct, frozen=True):
    """Everything sent before mark ``name`` has been played to the caller."""

    name: str


class DtmfPressed(msgspec.Struct, frozen=True):
    """The caller pressed a key."""

    digit: str


class CallerHungUp(msgspec.Struct, frozen=True):
    """The caller's side ended the call (Twilio's ``stop``, the browser's ``stop``, a closed socket)."""


CallEvent = CallerAudio | MarkPlayed | DtmfPressed | CallerHungUp
