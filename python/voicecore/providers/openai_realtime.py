"""The OpenAI Realtime API over its WebSocket: a speech-to-speech model for a whole call.

:class:`OpenAIRealtime` opens one socket per call (:meth:`OpenAIRealtime.connect`), waits for
``session.created``, configures the session and waits for ``session.updated``, so a refused
setting fails the connect, not the first turn. :class:`RealtimeConnection` sends client events
and yields the parsed server events (:mod:`voicecore.sansio.openai_realtime`). A lost socket
ends the iteration with a :class:`~voicecore.errors.ProviderConnectionError`; the session
reconnects and restores the conversation (:mod:`voicecore.runtime.realtime_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from voicecore.errors import ConfigError, ProtocolError, ProviderConnectionError, ProviderStreamError
from voicecore.providers._http import ClientSessionOwner, provider_errors
from voicecore.providers.base import AudioFormat
from voicecore.sansio import openai_realtime as proto

__all__ = ["OPENAI_REALTIME_URL", "OpenAIRealtime", "RealtimeConnection"]

logger = logging.getLogger(__name__)

OPENAI_REALTIME_URL = "wss://api.openai.com/v1"


class RealtimeConnection:
    """One configured socket to the model: send events, iterate the server's.

    Attributes:
        session: The session as the server last described it (``session.updated``).
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, provider: str, request_id: str | None) -> None:
        self._ws = ws
        self.provider = provider
        self.request_id = request_id
        self.session: Mapping[str, Any] = {}
        self._early: list[proto.RealtimeEvent] = []  # events read while waiting for the session

    @property
    def closed(self) -> bool:
        """Whether the socket is closed (lost or ended)."""
        return self._ws.closed

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send a client event; on a lost socket it is dropped (the iterator reports the loss)."""
        await self._send(proto.encode(event))

    async def send_audio(self, audio: bytes) -> None:
        """Append caller audio (in the session's format) to the model's input buffer."""
        if audio:
            await self._send(proto.append_audio(audio))

    async def _send(self, data: str) -> None:
        if self._ws.closed:
            return
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await self._ws.send_str(data)

    async def configure(self, update: Mapping[str, Any], within: float) -> None:
        """Send ``session.update`` and wait for ``session.updated``.

        Raises:
            ProviderStreamError: The server refused the settings (the message says which).
            ProviderTimeoutError: No answer ``within`` seconds.
        """
        await self.send(update)
        with provider_errors(self.provider, request_id=self.request_id):
            async with asyncio.timeout(within):
                while True:
                    event = await self._next()
                    if isinstance(event, proto.SessionReady) and not event.created:
                        self.session = event.session
                        return
                    if isinstance(event, proto.RealtimeError):
                        raise ProviderStreamError(
                            f"refused the session settings: {event.message} ({event.param or event.code})",
                            provider=self.provider,
                            retryable=not event.about_request,
                            request_id=self.request_id,
                        )
                    if event is not None and not isinstance(event, proto.SessionReady):
                        self._early.append(event)

    def __aiter__(self) -> AsyncIterator[proto.RealtimeEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[proto.RealtimeEvent]:
        while self._early:
            yield self._early.pop(0)
        while True:
            event = await self._next()
            if event is not None:
                yield event

    async def _next(self) -> proto.RealtimeEvent | None:
        """The next server event worth acting on (None: one to skip).

        Raises:
            ProviderConnectionError: The socket closed or failed.
        """
        message = await self._ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            try:
                return proto.parse_event(message.data)
            except ProtocolError as error:  # one bad event does not end the call
                logger.warning("%s: skipping a malformed event: %s", self.provider, error)
                return None
        if message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
            return None
        code = self._ws.close_code
        raise ProviderConnectionError(
            f"the socket closed (code {code})" if code is not None else "the socket was lost",
            provider=self.provider,
            request_id=self.request_id,
        )

    async def aclose(self) -> None:
        """Close the socket (a normal close: the server ends the session)."""
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, asyncio.TimeoutError):
            await self._ws.close()


class OpenAIRealtime:
    """OpenAI's realtime speech-to-speech model (also Azure OpenAI and compatible servers).

    It takes the place of the STT, the LLM and the TTS: the model hears the caller, decides
    when their turn ends and speaks its reply. Settings not given per call (instructions,
    tools, the audio format) are the provider's (see
    :class:`~voicecore.sansio.openai_realtime.RealtimeSettings`).

    Args:
        api_key: Sent as ``Authorization: Bearer``; None sends none.
        model: ``gpt-realtime``, ``gpt-realtime-mini``...
        base_url: ``wss://api.openai.com/v1`` or another server's (the socket is ``/realtime``).
        voice: The voice, unless the agent names one.
        connect_timeout: Seconds for the handshake and for the session to be configured.
        headers: More headers for the handshake (Azure's ``api-key``, say).
        name: The provider's name in errors, logs and usage.
        **settings: The other :class:`RealtimeSettings` fields (``turn_detection``,
            ``silence_ms``, ``transcription_model``, ``noise_reduction``, ``speed``...).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "gpt-realtime",
        base_url: str = OPENAI_REALTIME_URL,
        voice: str = "marin",
        connect_timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        name: str = "openai-realtime",
        **settings: Any,
    ) -> None:
        unknown = sorted(set(settings) - proto.PROVIDER_SETTINGS)
        if unknown:
            takes = ", ".join(sorted(proto.PROVIDER_SETTINGS))
            raise ConfigError(f"{name} does not take {', '.join(unknown)}; it takes: {takes}")
        if connect_timeout <= 0:
            raise ConfigError(f"connect_timeout must be positive, not {connect_timeout}")
        self.name = name
        self.model = model
        self.base_url = base_url
        self.voice = voice
        self.connect_timeout = connect_timeout
        self._headers = dict(headers or {})
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._settings = settings
        proto.RealtimeSettings(model=model, voice=voice, **settings)  # refuse bad settings now
        self._client = ClientSessionOwner()

    def audio_format(self, transport_format: AudioFormat) -> AudioFormat:
        """The format the model exchanges with a call on ``transport_format`` (G.711 as is)."""
        audio = proto.model_audio(transport_format.encoding, transport_format.sample_rate)
        return AudioFormat(audio, proto.AUDIO_RATES[audio])

    def settings(
        self,
        *,
        instructions: str,
        tools: Sequence[Mapping[str, Any]],
        audio_format: AudioFormat,
        language: str | None = None,
        voice: str | None = None,
    ) -> proto.RealtimeSettings:
        """The session settings for one call."""
        return proto.RealtimeSettings(
            model=self.model,
            instructions=instructions,
            voice=voice or self.voice,
            audio=proto.model_audio(audio_format.encoding, audio_format.sample_rate),
            tools=tools,
            language=language,
            **self._settings,
        )

    async def connect(self, settings: proto.RealtimeSettings) -> RealtimeConnection:
        """Open a socket and configure its session.

        Raises:
            ProviderError: The handshake failed (status, connection), the server refused the
                settings, or it did not answer in time.
        """
        url = proto.realtime_url(self.base_url, settings.model)
        with provider_errors(self.name):
            async with asyncio.timeout(self.connect_timeout):
                ws = await self._client.session().ws_connect(url, headers=self._headers, autoping=True)
        # aiohttp keeps the handshake response only privately
        request_id = ws._response.headers.get("x-request-id") if ws._response is not None else None
        connection = RealtimeConnection(ws, self.name, request_id)
        try:
            await connection.configure(proto.session_update(settings), self.connect_timeout)
        except BaseException:
            await connection.aclose()
            raise
        return connection

    async def aclose(self) -> None:
        """Close the provider's client session."""
        await self._client.aclose()
