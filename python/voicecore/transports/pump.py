"""The part every WebSocket transport shares: a pump between a WebSocket and a sans-I/O protocol.

Each received message is fed to the protocol; what it meant comes back as the call events of
:mod:`voicecore.sansio.call_events` (and the protocol's own start event), and whatever the
session sends is queued in the protocol and written out in order by one writer at a time.
:class:`~voicecore.transports.twilio.TwilioTransport` and
:class:`~voicecore.transports.websocket.BrowserTransport` add what differs: how a stream
starts, how a call is hung up or transferred. The socket may be any that
:func:`~voicecore.transports.sockets.message_socket` accepts (aiohttp, Starlette/FastAPI,
``websockets``), so the transports run inside whichever server accepted the call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, TypeVar

from voicecore.errors import ProtocolError
from voicecore.sansio.call_events import CallerAudio, CallerHungUp, CallEvent, DtmfPressed, MarkPlayed
from voicecore.transports.sockets import message_socket

__all__ = ["SansIOProtocol", "WebSocketPump"]

_CALL_EVENTS = (CallerAudio, MarkPlayed, DtmfPressed, CallerHungUp)
_Start = TypeVar("_Start")


class SansIOProtocol(Protocol):
    """What the pump needs of a protocol (:class:`~voicecore.sansio.twilio.TwilioProtocol`, ...)."""

    def receive_text(self, text: str) -> None: ...  # noqa: D102
    def receive_bytes(self, data: bytes) -> None: ...  # noqa: D102
    def events_received(self) -> Sequence[object]: ...  # noqa: D102
    def data_to_send(self) -> Sequence[str | bytes]: ...  # noqa: D102
    def send_audio(self, audio: bytes) -> None: ...  # noqa: D102
    def send_mark(self, name: str) -> None: ...  # noqa: D102
    def send_clear(self) -> None: ...  # noqa: D102


class WebSocketPump:
    """One call's accepted server-side WebSocket around ``protocol``.

    Args:
        ws: The accepted WebSocket: aiohttp, Starlette/FastAPI, ``websockets`` or a
            :class:`~voicecore.transports.sockets.MessageSocket`.
        protocol: The sans-I/O protocol spoken on it.

    Raises:
        UnsupportedSocketError: ``ws`` is not a WebSocket voicecore can drive.
    """

    def __init__(self, ws: object, protocol: SansIOProtocol) -> None:
        self._ws = message_socket(ws)
        self._protocol = protocol
        self._pending: deque[object] = deque()
        self._send_lock = asyncio.Lock()

    async def _start(self, kind: type[_Start], closed: str) -> _Start:
        """Read up to the protocol's start event and return it.

        Raises:
            ProtocolError: The socket closed before it (``closed`` says so).
        """
        while True:
            while self._pending:
                if isinstance(event := self._pending.popleft(), kind):
                    return event
            if not await self._receive():
                raise ProtocolError(closed, kind="start")

    async def events(self) -> AsyncIterator[CallEvent]:
        """Caller audio, played marks and key presses until the caller hangs up."""
        while True:
            while self._pending:
                event = self._pending.popleft()
                if isinstance(event, _CALL_EVENTS):
                    yield event
                    if isinstance(event, CallerHungUp):
                        return
            if not await self._receive():
                yield CallerHungUp()
                return

    async def _receive(self) -> bool:
        """Feed one message to the protocol; False once the socket is closed."""
        message = await self._ws.receive()
        if message is None:
            return False
        if isinstance(message, str):
            self._protocol.receive_text(message)
        else:
            self._protocol.receive_bytes(message)
        self._pending.extend(self._protocol.events_received())
        return True

    async def send_audio(self, audio: bytes) -> None:
        """Queue agent audio (``output_format``) for playback."""
        self._protocol.send_audio(audio)
        await self._flush()

    async def send_mark(self, name: str) -> None:
        """Send a mark; :class:`MarkPlayed` comes once the audio before it has played."""
        self._protocol.send_mark(name)
        await self._flush()

    async def clear(self) -> None:
        """Drop the agent audio queued on the caller's side; the marks it discards are not reported."""
        self._protocol.send_clear()
        await self._flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket with ``code`` and ``reason`` (safe to call more than once)."""
        await self._ws.close(code, reason)

    async def _flush(self) -> None:
        # One writer at a time, taking everything queued so far: messages go out in the order
        # they were queued even when a clear and the audio pump send at the same moment.
        async with self._send_lock:
            for data in self._protocol.data_to_send():
                if not await self._ws.send(data):
                    return  # the caller is gone; what was queued can no longer play
