"""The asyncio side of a streaming STT WebSocket, shared by the providers that speak one.

:class:`LiveSTTStream` pumps one socket through a sans-I/O protocol object
(:class:`LiveProtocol`: Deepgram ``/v1`` and ``/v2``, Smallest Pulse): audio out as binary
frames (kept in a :class:`~voicecore.sansio.replay.ReplayBuffer`), control messages as text,
server messages parsed into events that a subclass turns into
:class:`~voicecore.providers.base.TranscriptUpdate` s. A socket lost mid-call is replaced (up
to ``max_reconnects`` times) and sent the audio no final result had covered, so the iterator
never shows the gap. :class:`LiveSTT` is the provider side that opens such streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import ClassVar, Protocol, TypeVar

import aiohttp

from voicecore.errors import (
    ConfigError,
    ProtocolError,
    ProviderConnectionError,
    ProviderError,
    ProviderStreamError,
)
from voicecore.providers._http import ClientSessionOwner, provider_errors
from voicecore.providers.base import AudioFormat, TranscriptUpdate
from voicecore.runtime.metrics import count_stt_gap
from voicecore.sansio.replay import ReplayBuffer

__all__ = ["LiveProtocol", "LiveSTT", "LiveSTTStream"]

logger = logging.getLogger(__name__)

_REPLAY_FRAME = 8000  # bytes per frame when replaying after a reconnect


class LiveProtocol(Protocol):
    """What :class:`LiveSTTStream` needs of a sans-I/O streaming STT protocol."""

    provider: str
    request_id: str | None

    def send_audio(self, audio: bytes, now: float) -> bytes | None:
        """The binary frame for ``audio`` (None: send nothing)."""
        ...

    def send_finalize(self, now: float) -> str | None:
        """The message asking for the final text so far (None: the protocol has none)."""
        ...

    def send_close_stream(self) -> str:
        """The message that ends the stream."""
        ...

    def keepalive_at(self, now: float) -> float | None:
        """When a keep-alive message is due (None: the protocol sends none)."""
        ...

    def send_keepalive(self, now: float) -> str | None:
        """The keep-alive message if one is due at ``now``."""
        ...

    def receive_text(self, text: str) -> Sequence[object]:
        """The events in one text frame."""
        ...

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """What the socket's close means (None: a normal end)."""
        ...


class LiveSTTStream:
    """One live stream over a WebSocket: an :class:`~voicecore.providers.base.STTStream`.

    Subclasses say what each parsed event means in :meth:`_on_event` (append updates to
    ``self._ready``, settle the replay buffer on final results).

    Attributes:
        reconnects: How many times the socket was replaced.
    """

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        protocol: LiveProtocol,
        replay: ReplayBuffer,
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
        self.reconnects = 0
        loop = asyncio.get_running_loop()
        self._now = loop.time
        self._keepalive: asyncio.Task[None] | None = None
        if protocol.keepalive_at(self._now()) is not None:
            name = f"{protocol.provider}-keepalive"
            self._keepalive = loop.create_task(self._keep_alive(), name=name)

    @property
    def request_id(self) -> str | None:
        """The provider's id for the current socket (quote it to their support)."""
        return self._protocol.request_id

    @property
    def gap_seconds(self) -> float:
        """Caller audio lost for good: it overflowed the replay buffer before a reconnect."""
        return self._replay.gap_seconds

    async def push_audio(self, audio: bytes) -> None:
        """Send caller audio (an empty chunk is skipped).

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
        """Ask for the final text of what was sent, if the protocol has a way to."""
        if self._closed or self._ws.closed:
            return
        if (message := self._protocol.send_finalize(self._now())) is not None:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self._ws.send_str(message)

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
            except ProviderError as error:  # the server's own error message: reconnect if it may help
                return error
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

    def _on_event(self, event: object) -> None:
        """Turn one parsed server event into updates (in ``self._ready``); subclasses say how."""
        raise NotImplementedError

    async def _reconnect_and_replay(self) -> None:
        assert self._reconnect is not None
        async with self._send_lock:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await self._ws.close()
            self._ws = await self._reconnect()
            self.reconnects += 1
            lost = self._replay.replay_gap_seconds
            replay = self._replay.replay()
            if (gap := self._replay.replay_gap_seconds - lost) > 0:
                logger.warning(
                    "%s: %.2f s of caller audio was too old to replay", self._protocol.provider, gap
                )
                count_stt_gap(self._protocol.provider, gap)
            with provider_errors(self._protocol.provider, request_id=self.request_id):
                for start in range(0, len(replay), _REPLAY_FRAME):
                    await self._ws.send_bytes(replay[start : start + _REPLAY_FRAME])

    async def _keep_alive(self) -> None:
        """Send the protocol's keep-alive whenever one is due."""
        protocol = self._protocol
        while not self._closed:
            due = protocol.keepalive_at(self._now())
            if due is None:
                return
            await asyncio.sleep(max(due - self._now(), 0.0))
            if (message := protocol.send_keepalive(self._now())) is not None and not self._ws.closed:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await self._ws.send_str(message)

    async def aclose(self) -> None:
        """Send the protocol's end of stream and close the socket; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            if not self._ws.closed:
                await self._ws.send_str(self._protocol.send_close_stream())
            await self._ws.close()


_WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)


async def connect(
    http: aiohttp.ClientSession, url: str, *, headers: dict[str, str], provider: str, connect_timeout: float
) -> aiohttp.ClientWebSocketResponse:
    """Open a streaming STT socket; handshake failures become provider errors.

    Raises:
        ProviderStatusError: The handshake was refused (bad key: 401, bad parameters: 400).
        ProviderConnectionError: The server could not be reached in ``connect_timeout`` seconds.
    """
    with provider_errors(provider):
        async with asyncio.timeout(connect_timeout):
            return await http.ws_connect(url, headers=headers, timeout=_WS_TIMEOUT, autoping=True)


_Stream = TypeVar("_Stream", bound=LiveSTTStream)


class LiveSTT:
    """The provider side every streaming STT shares: client session, handshake, replaying stream.

    A subclass builds the URL and the protocol for a call and passes them to
    :meth:`_open_stream`; ``request_id_header`` names the handshake header, if any, that
    holds the provider's id for the socket.

    Args:
        headers: Sent on every handshake (the API key).
        name: The provider's name in errors and logs.
        max_reconnects: Times a stream reconnects after losing its socket mid-call.
        replay_seconds: The most unsettled audio kept for a replay.
        connect_timeout: Seconds for the WebSocket handshake.
    """

    request_id_header: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        headers: dict[str, str],
        name: str,
        max_reconnects: int,
        replay_seconds: float,
        connect_timeout: float,
    ) -> None:
        self.name = name
        self.max_reconnects = max_reconnects
        self.replay_seconds = replay_seconds
        self._headers = headers
        self._connect_timeout = connect_timeout
        self._http = ClientSessionOwner()

    def input_formats(self) -> Sequence[AudioFormat]:
        """The audio formats the provider takes, the preferred one first."""
        raise NotImplementedError

    def _check_format(self, audio: AudioFormat) -> None:
        if audio not in self.input_formats():
            raise ConfigError(f"{self.name} does not take {audio}; use one of input_formats()")

    async def _open_stream(
        self, stream: type[_Stream], audio: AudioFormat, url: str, protocol: LiveProtocol
    ) -> _Stream:
        """Connect to ``url`` and wrap the socket in ``stream`` (which reconnects to it too)."""

        async def reconnect() -> aiohttp.ClientWebSocketResponse:
            ws = await connect(
                self._http.session(),
                url,
                headers=self._headers,
                provider=self.name,
                connect_timeout=self._connect_timeout,
            )
            if self.request_id_header:  # aiohttp keeps the handshake response only privately
                protocol.request_id = ws._response.headers.get(self.request_id_header)
            return ws

        ws = await reconnect()
        replay = ReplayBuffer(
            bytes_per_second=audio.bytes_per_second,
            sample_width=2 if audio.encoding == "pcm16" else 1,
            capacity_seconds=self.replay_seconds,
        )
        return stream(ws, protocol, replay, reconnect=reconnect, max_reconnects=self.max_reconnects)

    async def aclose(self) -> None:
        """Close the client session; safe to call more than once."""
        await self._http.aclose()
