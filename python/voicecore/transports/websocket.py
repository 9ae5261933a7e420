"""The browser's ``/ws`` WebSocket: the shared pump around the sans-I/O wire protocol.

:class:`~voicecore.transports.pump.WebSocketPump` feeds each frame to
:class:`~voicecore.sansio.wire.WireProtocol` and writes out what the session sends. The
session hears PCM16 at 16 kHz (the protocol resamples other rates once) and speaks PCM16 at
the client's rate.

A :class:`PageObserver` watches the session for the page: caller transcripts, what the caller
heard of each reply and per-turn latency go to the page. Those events arrive on the observers'
thread and are handed to the event loop before they touch the protocol.

A browser has no phone line: hanging up sends ``end`` and closes the socket, and a transfer
ends the call with a message saying where the caller would have been put through.
"""

from __future__ import annotations

import asyncio
import contextlib

from voicecore.providers.base import PCM16_16K, AudioFormat
from voicecore.sansio import wire
from voicecore.transports.pump import WebSocketPump

__all__ = ["BrowserTransport", "PageObserver"]


class BrowserTransport(WebSocketPump):
    """One browser's WebSocket (already accepted), as a :class:`Transport`.

    Args:
        ws: The accepted WebSocket (aiohttp, Starlette/FastAPI or ``websockets``; see
            :func:`~voicecore.transports.sockets.message_socket`).
        quality: Resampler profile for caller audio not at 16 kHz.
    """

    def __init__(self, ws: object, *, quality: str = "hq") -> None:
        self.protocol = wire.WireProtocol(quality=quality)
        super().__init__(ws, self.protocol)
        self.input_format: AudioFormat = PCM16_16K
        self.output_format: AudioFormat = PCM16_16K
        self.hung_up_by_agent = False
        self.transferred_to: str | None = None
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> wire.Started:
        """Read up to the ``start`` message; the output format follows the client's rate.

        Raises:
            ProtocolError: The socket closed before ``start`` arrived.
        """
        started = await self._start(wire.Started, "the browser closed its socket before 'start'")
        self.output_format = AudioFormat("pcm16", started.sample_rate)
        return started

    async def hang_up(self) -> None:
        """End the call: ``end``, then the socket closes."""
        self.hung_up_by_agent = True
        await self.end("hangup")

    async def transfer(self, to: str, summary: str | None) -> None:
        """A browser cannot be put through to a phone: the call ends, saying where it would go."""
        del summary  # there is nobody to read it to
        self.transferred_to = to
        await self.end("transfer", f"The agent transferred this call to {to}.")

    async def end(self, reason: str, message: str | None = None, code: int = 1000) -> None:
        """Send ``end`` with ``reason`` and close the socket (safe to call more than once)."""
        if self._ws.closed:
            return
        self.protocol.send_end(reason, message)
        await self._flush()
        await self.close(code)

    # --- what the page shows ----------------------------------------------------------------

    def show(self, event: object) -> None:
        """Send the page what it shows of a session event (on the event loop's thread)."""
        if self._ws.closed:
            return
        self.protocol.send_event(event)
        task = self._loop.create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


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
