"""ElevenLabs text-to-speech over the multi-context WebSocket (``multi-stream-input``).

:class:`ElevenLabsTTS` keeps one socket per voice and output format, opened by
:meth:`ElevenLabsTTS.connect` when a call starts (or by the first reply), and gives each reply
its own *context* on it: a barge-in closes that context only, so the next reply pays no
handshake. The protocol lives in :mod:`voicecore.sansio.elevenlabs`; this module pumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp

from voicecore.errors import (
    ConfigError,
    ProtocolError,
    ProviderConnectionError,
    ProviderError,
    ProviderStreamError,
    ProviderTimeoutError,
)
from voicecore.providers._http import ClientSessionOwner, provider_errors
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioChunk, AudioFormat, WordTiming
from voicecore.sansio import elevenlabs as proto

__all__ = ["ELEVENLABS_URL", "ElevenLabsStream", "ElevenLabsTTS"]

logger = logging.getLogger(__name__)

ELEVENLABS_URL = "wss://api.elevenlabs.io"
_FORMATS = (MULAW_8K, PCM16_16K, AudioFormat("pcm16", 24000), AudioFormat("pcm16", 8000))
_END = object()


class ElevenLabsTTS:
    """A :class:`~voicecore.providers.base.TTS` for ElevenLabs, one context per reply.

    Args:
        voice_id: The default voice (``open(voice=...)`` picks another).
        api_key: Sent as ``xi-api-key``.
        model_id: ``eleven_flash_v2_5`` (lowest latency), ``eleven_turbo_v2_5``, ...
        base_url: ``wss://api.elevenlabs.io`` or a fake server's root.
        voice_settings: ``stability``, ``similarity_boost``, ``speed``, ... for every context.
        generation_config: E.g. ``{"chunk_length_schedule": [50, 120, 160, 250]}``.
        params: More query parameters (``language_code``, ``inactivity_timeout``, ...).
        keepalive_interval: Seconds between keep-alives (the server's inactivity timeout is
            20 s unless ``inactivity_timeout`` says otherwise).
        read_timeout: Seconds a context may owe audio without sending any before the
            stream raises :class:`~voicecore.errors.ProviderTimeoutError`.
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    def __init__(
        self,
        *,
        voice_id: str,
        api_key: str | None = None,
        model_id: str = "eleven_flash_v2_5",
        base_url: str = ELEVENLABS_URL,
        voice_settings: Mapping[str, Any] | None = None,
        generation_config: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        keepalive_interval: float = 10.0,
        read_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        name: str = "elevenlabs",
    ) -> None:
        if keepalive_interval <= 0:
            raise ConfigError("keepalive_interval must be positive")
        self.name = name
        self.voice_id = voice_id
        self.model_id = model_id
        self.base_url = base_url
        self.voice_settings = dict(voice_settings or {})
        self.generation_config = dict(generation_config or {})
        self.params = dict(params or {})
        self.keepalive_interval = keepalive_interval
        self.read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._headers = proto.auth_headers(api_key)
        self._http = ClientSessionOwner()
        self._sockets: dict[tuple[str, AudioFormat], _Socket] = {}
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]

    def output_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (Twilio's payload as is), then linear PCM."""
        return _FORMATS

    async def connect(self, audio: AudioFormat, *, voice: str | None = None) -> None:
        """Open the socket for ``audio`` and ``voice`` now, so the first reply pays no handshake."""
        await self._socket(audio, voice or self.voice_id)

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> ElevenLabsStream:
        """A new context on the (warm) socket for ``audio`` and ``voice``.

        Raises:
            ConfigError: ``audio`` is not one of :meth:`output_formats`.
            ProviderStatusError: The handshake was refused.
            ProviderConnectionError: The server could not be reached.
        """
        socket = await self._socket(audio, voice or self.voice_id)
        context_id = f"{self._prefix}-{next(self._ids)}"
        stream = ElevenLabsStream(socket, context_id, read_timeout=self.read_timeout)
        socket.streams[context_id] = stream
        init = socket.protocol.open_context(
            context_id, voice_settings=self.voice_settings, generation_config=self.generation_config
        )
        await socket.send(init)
        return stream

    async def _socket(self, audio: AudioFormat, voice: str) -> _Socket:
        if audio not in _FORMATS:
            raise ConfigError(f"{self.name} does not produce {audio}; use one of output_formats()")
        key = (voice, audio)
        async with self._lock:
            socket = self._sockets.get(key)
            if socket is not None and socket.alive:
                return socket
            url = proto.multi_stream_url(
                self.base_url,
                voice,
                model_id=self.model_id,
                output_format=proto.output_format_name(audio.encoding, audio.sample_rate),
                extra=self.params,
            )
            with provider_errors(self.name):
                async with asyncio.timeout(self._connect_timeout):
                    ws = await self._http.session().ws_connect(url, headers=self._headers, autoping=True)
            protocol = proto.MultiContextProtocol(
                bytes_per_ms=audio.bytes_per_second / 1000, provider=self.name
            )
            socket = self._sockets[key] = _Socket(ws, protocol, self.keepalive_interval)
            return socket

    async def aclose(self) -> None:
        """Close every socket (``close_socket``) and the client session; safe to call twice."""
        sockets, self._sockets = list(self._sockets.values()), {}
        for socket in sockets:
            await socket.close()
        await self._http.aclose()


class _Socket:
    """One open ``multi-stream-input`` socket and the streams (contexts) on it."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, protocol: proto.MultiContextProtocol, keepalive: float
    ) -> None:
        self.ws = ws
        self.protocol = protocol
        self.streams: dict[str, ElevenLabsStream] = {}
        self.failure: ProviderError | None = None
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name="elevenlabs-reader")
        self._keepalive = loop.create_task(self._keep_alive(keepalive), name="elevenlabs-keepalive")

    @property
    def alive(self) -> bool:
        return self.failure is None and not self.ws.closed

    async def send(self, message: str | None) -> None:
        if message is None:
            return
        if self.failure is not None:
            raise self.failure
        with provider_errors(self.protocol.provider):
            await self.ws.send_str(message)

    async def _read(self) -> None:
        failure: ProviderError | None = None
        try:
            while True:
                message = await self.ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    for event in self.protocol.receive_text(message.data):
                        if (stream := self.streams.get(event.context_id)) is not None:
                            stream._on_event(event)
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    reason = message.extra if isinstance(message.extra, str) else ""
                    failure = self.protocol.receive_close(self.ws.close_code, reason)
                    break
                elif message.type == aiohttp.WSMsgType.ERROR:
                    raise ProviderConnectionError(
                        f"the socket failed ({message.data}); reconnect", provider=self.protocol.provider
                    )
        except ProviderError as error:
            failure = error
        except ProtocolError as error:
            failure = ProviderStreamError(
                f"sent a malformed message ({error})", provider=self.protocol.provider, retryable=True
            )
        except (aiohttp.ClientError, ConnectionError) as error:
            failure = ProviderConnectionError(
                f"the socket failed ({error}); reconnect", provider=self.protocol.provider
            )
        self.failure = failure or ProviderConnectionError(
            "the socket closed", provider=self.protocol.provider
        )
        for stream in list(self.streams.values()):
            stream._fail(self.failure)
        self._keepalive.cancel()
        if failure is not None:
            logger.warning("%s", failure)
            await self.ws.close()

    async def _keep_alive(self, interval: float) -> None:
        """Keep each open context (or, with none, the socket) from timing out."""
        with contextlib.suppress(ProviderError):
            while True:
                await asyncio.sleep(interval)
                contexts = [cid for cid, stream in self.streams.items() if not stream.closed]
                for message in [self.protocol.keep_alive(cid) for cid in contexts] or [
                    self.protocol.keep_alive()
                ]:
                    await self.send(message)

    async def close(self) -> None:
        if self.alive:
            with contextlib.suppress(ProviderError):
                await self.send(self.protocol.close_socket())
        self._keepalive.cancel()
        await self.ws.close()
        await self._reader  # it ends with the socket, failing any stream still open


class ElevenLabsStream:
    """One reply's context: a :class:`~voicecore.providers.base.TTSStream`.

    Each ``push_text`` is sent with ``flush`` (the runtime pushes whole sentences); the chunk
    that completes a text's audio has ``end_of_text``. Word timings count from the context's
    first audio.
    """

    def __init__(self, socket: _Socket, context_id: str, *, read_timeout: float) -> None:
        self.context_id = context_id
        self.closed = False
        self._socket = socket
        self._read_timeout = read_timeout
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._input_ended = False
        self._finished = False
        self._end_queued = False

    async def push_text(self, text: str) -> None:
        """Send a sentence; it is synthesized at once."""
        if self.closed:
            return
        message = self._socket.protocol.send_text(self.context_id, text)
        if message is None:  # nothing to say: still end the text, so playback marks stay in step
            self._queue.put_nowait(AudioChunk(b"", end_of_text=True))
            return
        await self._socket.send(message)

    async def end_input(self) -> None:
        """No more text; the stream ends once the audio of every pushed text has arrived."""
        self._input_ended = True
        self._maybe_finish()

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self

    async def __anext__(self) -> AudioChunk:
        if self.closed or (self._finished and self._queue.empty()):
            raise StopAsyncIteration
        owed = self._socket.protocol.texts_pending(self.context_id) > 0
        try:
            async with asyncio.timeout(self._read_timeout if owed else None):
                item = await self._queue.get()
        except TimeoutError:
            raise ProviderTimeoutError(
                f"no audio for {self._read_timeout:g} s while text was waiting; the context stalled",
                provider=self._socket.protocol.provider,
            ) from None
        if item is _END:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        assert isinstance(item, AudioChunk)
        return item

    def _on_event(self, event: proto.ElevenLabsEvent) -> None:
        if isinstance(event, proto.ContextAudio):
            words = tuple(WordTiming(word, end_ms) for word, end_ms in event.words)
            self._queue.put_nowait(AudioChunk(event.audio, words, end_of_text=event.texts_done > 0))
            for _ in range(event.texts_done - 1):
                self._queue.put_nowait(AudioChunk(b"", end_of_text=True))
            self._maybe_finish()
        else:  # the server ended the context: whatever it owed will not come
            self._end()

    def _maybe_finish(self) -> None:
        if self._input_ended and not self._socket.protocol.texts_pending(self.context_id):
            self._end()

    def _end(self) -> None:
        if not self._end_queued:
            self._end_queued = True
            self._queue.put_nowait(_END)

    def _fail(self, error: ProviderError) -> None:
        self._queue.put_nowait(error)

    async def aclose(self) -> None:
        """Close the context (``close_context``): generation stops, late audio is dropped."""
        if self.closed:
            return
        self.closed = True
        self._socket.streams.pop(self.context_id, None)
        message = self._socket.protocol.close_context(self.context_id)
        if self._socket.alive:
            with contextlib.suppress(ProviderError):
                await self._socket.send(message)
        self._finished = True
        self._end()
