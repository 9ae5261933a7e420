"""Twilio Media Streams over a WebSocket: the shared pump around the sans-I/O protocol.

:class:`~voicecore.transports.pump.WebSocketPump` feeds each message to
:class:`~voicecore.sansio.twilio.TwilioProtocol` and writes out what the session sends.
Parsing, base64, the codec and the mark bookkeeping all live in the protocol (and the Rust
core); this module adds the ``start`` message (which call it is), hanging up and transfers.

The engine side hears and speaks μ-law 8 kHz by default: the phone line's own format, so
nothing is resampled on the way in (no filter delay) and a TTS that can produce μ-law needs no
conversion on the way out. Pass ``engine_rate`` for PCM16 at that rate instead.

Hanging up closes the stream, which ends the call (the TwiML has nothing after
``<Connect>``). A transfer gives the call new TwiML (``<Dial>``) through Twilio's REST API
(:class:`~voicecore.transports.twilio_rest.TwilioCalls`), which also ends the stream.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from voicecore.call_info import CallInfo
from voicecore.errors import ProviderError
from voicecore.providers.base import MULAW_8K, AudioFormat
from voicecore.sansio import twilio as tw
from voicecore.sansio import twiml
from voicecore.transports.pump import WebSocketPump
from voicecore.transports.twilio_rest import TwilioCalls

__all__ = ["TwilioTransport"]

logger = logging.getLogger(__name__)


class TwilioTransport(WebSocketPump):
    """One call's Media Streams WebSocket (already accepted), as a :class:`Transport`.

    Args:
        ws: The accepted Media Streams WebSocket: aiohttp's, Starlette/FastAPI's or a
            ``websockets`` connection (see :func:`~voicecore.transports.sockets.message_socket`).
        engine_rate: PCM16 sample rate for the session, or ``None`` for μ-law 8 kHz passthrough.
        quality: Resampler profile of the Rust codec when ``engine_rate`` is set.
        calls: Twilio's call-update API, for transfers (without it a transfer ends the call).
        whisper_url: URL of the server's whisper TwiML (reads a warm transfer's summary).
    """

    def __init__(
        self,
        ws: object,
        *,
        engine_rate: int | None = None,
        quality: str = "hq",
        calls: TwilioCalls | None = None,
        whisper_url: str | None = None,
    ) -> None:
        self.protocol = tw.TwilioProtocol(engine_rate=engine_rate, quality=quality)
        super().__init__(ws, self.protocol)
        audio_format = MULAW_8K if engine_rate is None else AudioFormat("pcm16", engine_rate)
        self.input_format: AudioFormat = audio_format
        self.output_format: AudioFormat = audio_format
        self.started: tw.StreamStarted | None = None
        self.hung_up_by_agent = False
        self.transferred_to: str | None = None
        self._calls = calls
        self._whisper_url = whisper_url

    async def start(self) -> tw.StreamStarted:
        """Read up to the ``start`` message and return it (which call, which parameters).

        Raises:
            ProtocolError: The socket closed before ``start`` arrived.
        """
        self.started = await self._start(
            tw.StreamStarted, "the Media Stream closed before its 'start' message"
        )
        return self.started

    @property
    def call_info(self) -> CallInfo:
        """The call as its ``start`` message describes it: numbers, direction, its own parameters.

        Raises:
            RuntimeError: :meth:`start` has not returned yet.
        """
        if self.started is None:
            raise RuntimeError("the call is known once start() has returned: await transport.start() first")
        return CallInfo.from_twilio(self.started.call_sid, self.started.custom_parameters)

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
