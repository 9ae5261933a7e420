"""The transport interface: how a session hears the caller and plays the agent.

A transport turns its wire protocol into :data:`TransportEvent` values (the call events of
:mod:`voicecore.sansio.call_events`, which every sans-I/O protocol hands out) and carries out
the session's outbound calls. Marks are its playback truth: after the audio of a sentence the
session sends a mark, and the transport reports :class:`MarkPlayed` once the caller's side
has played everything before it (Twilio echoes marks; the browser acknowledges them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from voicecore.providers.base import AudioFormat
from voicecore.sansio.call_events import CallerAudio, CallerHungUp, CallEvent, DtmfPressed, MarkPlayed

__all__ = ["CallerAudio", "CallerHungUp", "DtmfPressed", "MarkPlayed", "Transport", "TransportEvent"]


#: What a transport hands the session: the call events every protocol shares.
TransportEvent = CallEvent


@runtime_checkable
class Transport(Protocol):
    """One call's connection to the caller."""

    input_format: AudioFormat
    output_format: AudioFormat

    def events(self) -> AsyncIterator[TransportEvent]:
        """What the caller's side sends, until the call ends."""
        ...

    async def send_audio(self, audio: bytes) -> None:
        """Queue agent audio (``output_format``) for playback."""
        ...

    async def send_mark(self, name: str) -> None:
        """Ask to be told (:class:`MarkPlayed`) when everything queued so far has played."""
        ...

    async def clear(self) -> None:
        """Drop all queued agent audio now (barge-in); pending marks are not reported."""
        ...

    async def hang_up(self) -> None:
        """End the call from the agent's side."""
        ...

    async def transfer(self, to: str, summary: str | None) -> None:
        """Hand the caller to ``to``; a warm transfer passes ``summary`` to whoever answers."""
        ...
