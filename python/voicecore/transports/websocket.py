"""The browser's ``/ws`` WebSocket over aiohttp: a pump around the sans-I/O wire protocol.

Each received frame goes to :class:`~voicecore.sansio.wire.WireProtocol`; what it meant comes
back as :data:`~voicecore.transports.base.TransportEvent` values, and whatever the session
sends is queued in the protocol and written out in order. The session hears PCM16 at 16 kHz
(the protocol resamples other rates once) and speaks PCM16 at the client's rate.

A :class:`PageObserver` watches the session for the page: caller transcripts, what the caller
heard of each reply and per-turn latency go to the page. Those events arrive on the observers'
thread and are handed to the event loop before they touch the protocol.

A browser has no phone line: hanging up sends ``end`` and closes the socket, and a transfer
ends the call with a message saying where the caller would have been put through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, WSMsgType, web

from voicecore.errors import ProtocolError
from voicecore.providers.base import PCM16_16K, AudioFormat
from voicecore.sansio import wire
from voicecore.transports.base import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed, TransportEvent

__all__ = ["BrowserTransport", "PageObserver"]

logger = logging.getLogger(__name__)


class BrowserTransport:
    """One browser's WebSocket (already accepted), as a :class:`Transport`.

    Args:
        ws: The prepared server-side WebSocket.
        quality: Resampler profile for caller audio not at 16 kHz.
    """

    def __init__(self, ws: web.WebSocketResponse, *, quality: str = "hq") -> None:
        self.protocol = wire.WireProtocol(quality=quality)
        self.input_format: AudioFormat = PCM16_16K
        self.output_format: AudioFormat = PCM16_16K
        self.hung_up_by_agent = False
        self.transferred_to: str | None = None
        self._ws = ws
        self._loop = asyncio.get_running_loop()
        self._pending: deque[wire.WireEvent] = deque()
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> wire.Started:
        """Read up to the ``start`` message; the output format follows the client's rate.

        Raises:
            ProtocolError: The socket closed before ``start`` arrived.
        """
        while True:
            while self._pending:
                event = self._pending.popleft()
                if isinstance(event, wire.Started):
                    self.output_format = AudioFormat("pcm16", event.sample_rate)
                    return event
            if not await self._receive():
                raise ProtocolError("the browser closed its socket before 'start'", kind="start")

    async def events(self) -> AsyncIterator[TransportEvent]:
        """Caller audio, played marks and key presses until the caller hangs up."""
        while True:
            while self._pending:
                match self._pending.popleft():
                    case wire.AudioReceived(audio):
                        yield CallerAudio(audio)
                    case wire.MarkPlayed(name):
                        yield MarkPlayed(name)
                    case wire.DtmfReceived(digit):
                        yield DtmfPressed(digit)
                    case wire.Stopped():
                        yield CallerHungUp()
                        return
            if not await self._receive():
                yield CallerHungUp()
                return

    async def _receive(self) -> bool:
        """Feed one frame to the protocol; False once the socket is closed."""
        message = await self._ws.receive()
        if message.type == WSMsgType.BINARY:
            self.protocol.receive_bytes(message.data)
        elif message.type == WSMsgType.TEXT:
            self.protocol.receive_text(message.data)
        else:
            if message.type == WSMsgType.ERROR:
                logger.warning("browser call: socket error: %s", message.data)
            return False
        self._pending.extend(self.protocol.events_received())
        return True

    async def send_audio(self, audio: bytes) -> None:
        """Queue agent audio (``output_format``) for playback."""
        self.protocol.send_audio(audio)
        await self._flush()

    async def send_mark(self, name: str) -> None:
        """Send a mark; :class:`MarkPlayed` comes once the page has played the audio before it."""
        self.protocol.send_mark(name)
        await self._flush()

    async def clear(self) -> None:
        """Have the page drop its queued audio; the marks it discards are not reported."""
        self.protocol.send_clear()
        await self._flush()

    async def hang_up(self) -> None:
        """End the call: ``end``, then the socket closes."""
        self.hung_up_by_agent = True
        await self.end("hangup")

    async def transfer(self, to: str, summary: str | None) -> None:
        """A browser cannot be put through to a phone: the call ends, saying where it would go."""
        del summary  # there is nobody to read it to
        self.transferred_to = to
        await self.end("transfer", f"The agent transferred this call to {to}.")

    async def end(self, reason: str, message: str | None = None, code: int = WSCloseCode.OK) -> None:
        """Send ``end`` with ``reason`` and close the socket (safe to call more than once)."""
        if self._ws.closed:
            return
        self.protocol.send_end(reason, message)
        await self._flush()
        await self.close(code)

    async def close(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        """Close the WebSocket (safe to call more than once)."""
        if not self._ws.closed:
            await self._ws.close(code=code, message=message)

    # --- what the page shows ----------------------------------------------------------------

    def show(self, event: object) -> None:
        """Send the page what it shows of a session event (on the event loop's thread)."""
        if self._ws.closed:
            return
        self.protocol.send_event(event)
        task = self._loop.create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        # One writer at a time, taking everything queued so far: frames go out in the order
        # they were queued even when a clear and the audio pump send at the same moment.
        async with self._send_lock:
            for data in self.protocol.data_to_send():
                if self._ws.closed:
                    return  # the caller is gone; what was queued can no longer play
                try:
                    if isinstance(data, bytes):
                        await self._ws.send_bytes(data)
                    else:
                        await self._ws.send_str(data)
                except ConnectionResetError:
                    return


class PageObserver:
    """The session observer that shows transcripts and latency on the page of ``transport``."""

    def __init__(self, transport: BrowserTransport) -> None:
        """Forward to ``transport``, on the loop it was created on."""
        self.transport = transport
        self._loop = asyncio.get_running_loop()

    def on_event(self, event: object) -> None:
        """Hand the event to the event loop (this runs on the observers' thread)."""
        with contextlib.suppress(RuntimeError):  # the loop closed: the call is long over
            self._loop.call_soon_threadsafe(self.transport.show, event)

    def close(self) -> None:
        """Nothing to finish."""
