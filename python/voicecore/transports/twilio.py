"""Twilio Media Streams over an aiohttp WebSocket: a pump around the sans-I/O protocol.

Each received message goes to :class:`~voicecore.sansio.twilio.TwilioProtocol`; what it meant
comes back as :data:`~voicecore.transports.base.TransportEvent` values, and whatever the
session sends is queued in the protocol and written out in order. Parsing, base64, the codec
and the mark bookkeeping all live in the protocol (and the Rust core), not here.

The engine side hears and speaks μ-law 8 kHz by default: the phone line's own format, so
nothing is resampled on the way in (no filter delay) and a TTS that can produce μ-law needs no
conversion on the way out. Pass ``engine_rate`` for PCM16 at that rate instead.

Hanging up closes the stream, which ends the call (the TwiML has nothing after
``<Connect>``). A transfer gives the call new TwiML (``<Dial>``) through Twilio's REST API
(:class:`~voicecore.transports.twilio_rest.TwilioCalls`), which also ends the stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from aiohttp import WSCloseCode, WSMsgType, web

from voicecore.errors import ProtocolError, ProviderError
from voicecore.providers.base import MULAW_8K, AudioFormat
from voicecore.sansio import twilio as tw
from voicecore.sansio import twiml
from voicecore.transports.base import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed, TransportEvent
from voicecore.transports.twilio_rest import TwilioCalls

__all__ = ["TwilioTransport"]

logger = logging.getLogger(__name__)


class TwilioTransport:
    """One call's Media Streams WebSocket (already accepted), as a :class:`Transport`.

    Args:
        ws: The prepared server-side WebSocket.
        engine_rate: PCM16 sample rate for the session, or ``None`` for μ-law 8 kHz passthrough.
        quality: Resampler profile of the Rust codec when ``engine_rate`` is set.
        calls: Twilio's call-update API, for transfers (without it a transfer ends the call).
        whisper_url: URL of the server's whisper TwiML (reads a warm transfer's summary).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        engine_rate: int | None = None,
        quality: str = "hq",
        calls: TwilioCalls | None = None,
        whisper_url: str | None = None,
    ) -> None:
        self.protocol = tw.TwilioProtocol(engine_rate=engine_rate, quality=quality)
        audio_format = MULAW_8K if engine_rate is None else AudioFormat("pcm16", engine_rate)
        self.input_format: AudioFormat = audio_format
        self.output_format: AudioFormat = audio_format
        self.started: tw.StreamStarted | None = None
        self.hung_up_by_agent = False
        self.transferred_to: str | None = None
        self._calls = calls
        self._whisper_url = whisper_url
        self._ws = ws
        self._pending: deque[tw.TwilioEvent] = deque()
        self._send_lock = asyncio.Lock()

    async def start(self) -> tw.StreamStarted:
        """Read up to the ``start`` message and return it (which call, which parameters).

        Raises:
            ProtocolError: The socket closed before ``start`` arrived.
        """
        while self.started is None:
            if not await self._receive():
                raise ProtocolError("the Media Stream closed before its 'start' message", kind="start")
        return self.started

    async def events(self) -> AsyncIterator[TransportEvent]:
        """Caller audio, played marks and key presses until the caller hangs up."""
        while True:
            while self._pending:
                match self._pending.popleft():
                    case tw.MediaReceived(audio):
                        yield CallerAudio(audio)
                    case tw.MarkPlayed(name):
                        yield MarkPlayed(name)
                    case tw.DtmfReceived(digit):
                        yield DtmfPressed(digit)
                    case tw.StreamStopped():
                        yield CallerHungUp()
                        return
            if not await self._receive():
                yield CallerHungUp()
                return

    async def _receive(self) -> bool:
        """Feed one message to the protocol; False once the socket is closed."""
        message = await self._ws.receive()
        if message.type == WSMsgType.TEXT:
            self.protocol.receive_text(message.data)
        elif message.type == WSMsgType.BINARY:
            self.protocol.receive_bytes(message.data)
        else:
            if message.type == WSMsgType.ERROR:
                logger.warning("Twilio stream %s: socket error: %s", self.protocol.stream_sid, message.data)
            return False
        for event in self.protocol.events_received():
            if isinstance(event, tw.StreamStarted):
                self.started = event
            else:
                self._pending.append(event)
        return True

    async def send_audio(self, audio: bytes) -> None:
        """Queue agent audio (``output_format``) for playback."""
        self.protocol.send_audio(audio)
        await self._flush()

    async def send_mark(self, name: str) -> None:
        """Send a mark; :class:`MarkPlayed` comes once the audio before it has played."""
        self.protocol.send_mark(name)
        await self._flush()

    async def clear(self) -> None:
        """Drop the audio Twilio has queued; the marks it discards are not reported."""
        self.protocol.send_clear()
        await self._flush()

    async def hang_up(self) -> None:
        """End the call through the REST API when it is configured, then close the stream.

        Closing the stream alone also ends the call (the TwiML has nothing after
        ``<Connect>``); the REST call makes it explicit and is logged if it fails.
        """
        self.hung_up_by_agent = True
        started = self.started
        if self._calls is not None and started is not None:
            try:
                await self._calls.hang_up(started.account_sid, started.call_sid)
            except ProviderError as error:
                logger.warning(
                    "call %s: REST hang-up failed (%s); closing the stream", started.call_sid, error
                )
        await self.close()

    async def transfer(self, to: str, summary: str | None) -> None:
        """Connect the caller to ``to``; with a ``summary``, it is read to whoever answers first.

        The call gets new TwiML through the REST API; if that is not possible (no auth token
        configured, or Twilio refuses), the failure is logged and the call ends.
        """
        started = self.started
        if self._calls is None or started is None:
            logger.error(
                "call %s: cannot transfer without TWILIO_AUTH_TOKEN; ending the call", self.protocol.call_sid
            )
            await self.hang_up()
            return
        whisper = None
        if summary and self._whisper_url:
            whisper = f"{self._whisper_url}?{urlencode({'text': summary})}"
        try:
            await self._calls.update(
                started.account_sid, started.call_sid, twiml.transfer(to, whisper_url=whisper)
            )
        except ProviderError as error:
            logger.error("call %s: transfer failed (%s); ending the call", started.call_sid, error)
            await self.hang_up()
            return
        self.transferred_to = to
        await self.close()

    async def close(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        """Close the WebSocket (safe to call more than once)."""
        if not self._ws.closed:
            await self._ws.close(code=code, message=message)

    async def _flush(self) -> None:
        # One writer at a time, taking everything queued so far: messages go out in the order
        # they were queued even when a clear and the audio pump send at the same moment.
        async with self._send_lock:
            for data in self.protocol.data_to_send():
                if self._ws.closed:
                    return  # the caller is gone; what was queued can no longer play
                try:
                    await self._ws.send_str(data)
                except ConnectionResetError:
                    return
