"""Deepgram live speech-to-text over its WebSocket (``/v1/listen``).

:class:`DeepgramSTT` opens one socket per call and pumps it through
:class:`voicecore.sansio.deepgram.ListenProtocol`. Telephony audio goes through untouched:
``input_formats()`` lists μ-law 8 kHz first, so a Twilio call streams its own bytes with
``encoding=mulaw&sample_rate=8000``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import aiohttp

from voicecore.errors import (
    ConfigError,
    ProtocolError,
    ProviderConnectionError,
    ProviderError,
    ProviderStreamError,
)
from voicecore.providers._http import ClientSessionOwner, provider_errors
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat, TranscriptUpdate
from voicecore.sansio import deepgram as proto

__all__ = ["DEEPGRAM_URL", "DeepgramSTT", "DeepgramStream"]

logger = logging.getLogger(__name__)

DEEPGRAM_URL = "wss://api.deepgram.com"
_REPLAY_FRAME = 8000  # bytes per frame when replaying after a reconnect
_FORMATS = (
    MULAW_8K,
    PCM16_16K,
    AudioFormat("pcm16", 8000),
    AudioFormat("pcm16", 24000),
    AudioFormat("alaw", 8000),
)


class DeepgramSTT:
    """An :class:`~voicecore.providers.base.STT` for Deepgram's live API (Nova models).

    Args:
        api_key: Sent as ``Authorization: Token``; None sends none (a self-hosted server).
        model: ``nova-3``, ``nova-2-phonecall``, ...
        base_url: ``wss://api.deepgram.com`` or a self-hosted server's root.
        endpointing_ms: Silence after which a result is ``speech_final`` (None: off).
        utterance_end_ms: Gap after the last word for an ``UtteranceEnd`` (None: off).
        smart_format: Punctuation and number formatting.
        params: More query parameters, as Deepgram names them (``keyterm``, ``redact``, ...).
        keepalive_interval: Seconds without audio before a ``KeepAlive`` is sent.
        max_reconnects: Times a stream reconnects after losing its socket mid-call, replaying
            the audio no final result had covered (0: a lost socket ends the stream).
        replay_seconds: The most unsettled audio kept for a replay (older audio is a gap).
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "nova-3",
        base_url: str = DEEPGRAM_URL,
        endpointing_ms: int | None = 300,
        utterance_end_ms: int | None = 1000,
        smart_format: bool = True,
        params: Mapping[str, str] | None = None,
        keepalive_interval: float = 4.0,
        max_reconnects: int = 3,
        replay_seconds: float = 30.0,
        connect_timeout: float = 5.0,
        name: str = "deepgram",
    ) -> None:
        if keepalive_interval <= 0 or keepalive_interval >= 10:
            raise ConfigError(
                "keepalive_interval must be between 0 and 10 s (Deepgram closes after 10 s idle)"
            )
        self.name = name
        self.model = model
        self.base_url = base_url
        self.endpointing_ms = endpointing_ms
        self.utterance_end_ms = utterance_end_ms
        self.smart_format = smart_format
        self.params = dict(params or {})
        self.keepalive_interval = keepalive_interval
        self.max_reconnects = max_reconnects
        self.replay_seconds = replay_seconds
        self._headers = proto.auth_headers(api_key)
        self._timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)
        self._connect_timeout = connect_timeout
        self._http = ClientSessionOwner()

    def input_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (phone audio as is), then linear PCM."""
        return _FORMATS

    async def open(self, audio: AudioFormat, *, language: str) -> DeepgramStream:
        """Open a live stream for ``audio`` in ``language`` (``en``, ``en-US``, ``multi``, ...).

        Raises:
            ProviderStatusError: The handshake was refused (bad key: 401, bad parameters: 400).
            ProviderConnectionError: The server could not be reached.
        """
        if audio not in _FORMATS:
            raise ConfigError(f"{self.name} does not take {audio}; use one of input_formats()")
        url = proto.listen_url(
            self.base_url,
            model=self.model,
            encoding=proto.ENCODINGS[audio.encoding],
            sample_rate=audio.sample_rate,
            language=language,
            endpointing_ms=self.endpointing_ms,
            utterance_end_ms=self.utterance_end_ms,
            smart_format=self.smart_format,
            extra=self.params,
        )
        protocol = proto.ListenProtocol(provider=self.name, keepalive_interval=self.keepalive_interval)
        ws = await self._connect(url, protocol)
        replay = proto.ReplayBuffer(
            bytes_per_second=audio.bytes_per_second,
            sample_width=2 if audio.encoding == "pcm16" else 1,
            capacity_seconds=self.replay_seconds,
        )

        async def reconnect() -> aiohttp.ClientWebSocketResponse:
            return await self._connect(url, protocol)

        return DeepgramStream(ws, protocol, replay, reconnect=reconnect, max_reconnects=self.max_reconnects)

    async def _connect(self, url: str, protocol: proto.ListenProtocol) -> aiohttp.ClientWebSocketResponse:
        with provider_errors(self.name):
            async with asyncio.timeout(self._connect_timeout):
                ws = await self._http.session().ws_connect(
                    url, headers=self._headers, timeout=self._timeout, autoping=True
                )
        # aiohttp keeps the handshake response only privately; its dg-request-id names the stream.
        protocol.request_id = ws._response.headers.get("dg-request-id")
        return ws

    async def aclose(self) -> None:
        """Close the client session; safe to call more than once."""
        await self._http.aclose()


class DeepgramStream:
    """One live stream: an :class:`~voicecore.providers.base.STTStream`.

    Interim results come out as non-final updates, final ones as final updates
    (``end_of_turn`` when Deepgram's endpointing marked them ``speech_final``), and an
    ``UtteranceEnd`` as an empty final update with ``end_of_turn``.

    If the socket is lost mid-call, the stream reconnects (up to ``max_reconnects`` times)
    and first sends the audio that no final result had covered yet, so no caller speech is
    lost; the caller never sees the gap in the iterator.

    Attributes:
        speech_started: Audio time (s) of the last ``SpeechStarted``, if any came.
        metadata: The ``Metadata`` summary, once the server has sent it.
        reconnects: How many times the socket was replaced.
    """

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        protocol: proto.ListenProtocol,
        replay: proto.ReplayBuffer,
        *,
        reconnect: Callable[[], Awaitable[aiohttp.ClientWebSocketResponse]] | None = None,
        max_reconnects: int = 0,
    ) -> None:
        self._ws = ws
        self._protocol = protocol
        self._replay = replay
        self._reconnect = reconnect
        self._max_reconnects = max_reconnects
        self._send_lock = asyncio.Lock()  # audio sends and replays never interleave
        self._ready: deque[TranscriptUpdate] = deque()
        self._ended = False
        self._closed = False
        self.speech_started: float | None = None
        self.metadata: proto.Metadata | None = None
        self.reconnects = 0
        loop = asyncio.get_running_loop()
        self._now = loop.time
        self._keepalive = loop.create_task(self._keep_alive(), name="deepgram-keepalive")

    @property
    def request_id(self) -> str | None:
        """Deepgram's id for the current socket (quote it to their support)."""
        return self._protocol.request_id

    @property
    def gap_seconds(self) -> float:
        """Caller audio lost for good: it overflowed the replay buffer before a reconnect."""
        return self._replay.gap_seconds

    async def push_audio(self, audio: bytes) -> None:
        """Send caller audio (an empty chunk is skipped: Deepgram reads it as end of stream).

        A send on a lost socket is not an error here: the audio stays in the replay buffer and
        goes out when the stream reconnects (the iterator reports a loss it cannot repair).
        """
        frame = self._protocol.send_audio(audio, self._now())
        if frame is None or self._closed:
            return
        async with self._send_lock:
            self._replay.push(frame)
            if not self._ws.closed:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await self._ws.send_bytes(frame)

    async def finalize(self) -> None:
        """Ask for the final text of what was sent (the answer is marked ``from_finalize``)."""
        if not self._closed and not self._ws.closed:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self._ws.send_str(self._protocol.send_finalize(self._now()))

    def __aiter__(self) -> AsyncIterator[TranscriptUpdate]:
        return self

    async def __anext__(self) -> TranscriptUpdate:
        while not self._ready:
            if self._ended or self._closed:
                raise StopAsyncIteration
            failure = await self._receive()
            if failure is None or self._closed:
                continue
            if failure.retryable and self._reconnect is not None and self.reconnects < self._max_reconnects:
                logger.warning("%s; reconnecting and replaying %d bytes", failure, self._replay.pending)
                await self._reconnect_and_replay()
                continue
            self._ended = True
            raise failure
        return self._ready.popleft()

    async def _receive(self) -> ProviderError | None:
        """Read one message; the error it means if the socket was lost."""
        ws = self._ws
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            try:
                events = self._protocol.receive_text(message.data)
            except ProtocolError as error:
                raise ProviderStreamError(
                    f"sent a malformed message ({error})", provider=self._protocol.provider, retryable=True
                ) from error
            for event in events:
                self._on_event(event)
            return None
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            reason = message.extra if isinstance(message.extra, str) else ""
            failure = self._protocol.receive_close(ws.close_code, reason)
            if failure is None:
                self._ended = True
            return failure
        if message.type == aiohttp.WSMsgType.ERROR:
            return ProviderConnectionError(
                f"the socket failed ({message.data})", provider=self._protocol.provider
            )
        return None

    async def _reconnect_and_replay(self) -> None:
        assert self._reconnect is not None
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self._ws.close()
            self._ws = await self._reconnect()
            self.reconnects += 1
            replay = self._replay.replay()
            with provider_errors(self._protocol.provider, request_id=self.request_id):
                for start in range(0, len(replay), _REPLAY_FRAME):
                    await self._ws.send_bytes(replay[start : start + _REPLAY_FRAME])

    def _on_event(self, event: proto.DeepgramEvent) -> None:
        match event:
            case proto.Results(text, is_final, speech_final, _, confidence, start, duration):
                if is_final:
                    self._replay.settle(start + duration)
                self._ready.append(
                    TranscriptUpdate(text, final=is_final, end_of_turn=speech_final, confidence=confidence)
                )
            case proto.UtteranceEnd():
                self._ready.append(TranscriptUpdate("", final=True, end_of_turn=True))
            case proto.SpeechStarted(timestamp):
                self.speech_started = timestamp
            case proto.Metadata():
                self.metadata = event

    async def _keep_alive(self) -> None:
        """Send ``KeepAlive`` whenever no audio went out for the interval."""
        protocol = self._protocol
        while not self._closed:
            await asyncio.sleep(max(protocol.keepalive_at(self._now()) - self._now(), 0.0))
            if (message := protocol.send_keepalive(self._now())) is not None and not self._ws.closed:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await self._ws.send_str(message)

    async def aclose(self) -> None:
        """Send ``CloseStream`` and close the socket; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._keepalive.cancel()
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            if not self._ws.closed:
                await self._ws.send_str(self._protocol.send_close_stream())
            await self._ws.close()
