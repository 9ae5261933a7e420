"""What the multi-reply WebSocket TTS adapters share (ElevenLabs, Cartesia, Smallest AI).

:class:`EventSocket` reads server messages, lets the sans-I/O protocol turn them into
:mod:`~voicecore.sansio.ttsevents` keyed by reply, and hands each to the reply it names; when
the socket fails, every reply on it fails with the same :class:`~voicecore.errors.ProviderError`.
:class:`ReplyStream` is one reply's reading side: events in, audio chunks out with
``end_of_text`` marks, and a stall timeout while audio is owed. :class:`SocketTTS` is the
provider side: the client session and one warm socket per key (format, or voice and format).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from typing import Generic, Protocol, TypeVar

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
from voicecore.providers.base import AudioChunk, AudioFormat, WordTiming
from voicecore.sansio.ttsevents import ReplyAudio, ReplyEvent, ReplyFailed

__all__ = ["EventSocket", "ReplyStream", "SocketProtocol", "SocketTTS"]

logger = logging.getLogger(__name__)

_END = object()


class SocketProtocol(Protocol):
    """The sans-I/O side of a socket: messages in, events per reply out."""

    provider: str
    closing: bool

    def receive_text(self, text: str) -> list[ReplyEvent]:
        """Events for one server message."""
        ...

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """The error a close means (None for one we asked for)."""
        ...


class EventSocket:
    """One open WebSocket, its reader task and the replies on it.

    Args:
        ws: The connected socket.
        protocol: Parses what the server sends.
        keepalive: ``(seconds, messages)``: send what ``messages()`` returns every so often
            (None: never).
    """

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        protocol: SocketProtocol,
        *,
        keepalive: tuple[float, Callable[[], list[str]]] | None = None,
    ) -> None:
        self.ws = ws
        self.protocol = protocol
        self.receivers: dict[str, ReplyStream] = {}
        self.failure: ProviderError | None = None
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name=f"{protocol.provider}-reader")
        self._keepalive: asyncio.Task[None] | None = None
        if keepalive is not None:
            self._keepalive = loop.create_task(
                self._keep_alive(*keepalive), name=f"{protocol.provider}-keepalive"
            )

    @property
    def alive(self) -> bool:
        """Open and not failed."""
        return self.failure is None and not self.ws.closed

    async def send(self, message: str | None) -> None:
        """Send a text frame (None: nothing); raises the socket's failure if it has one."""
        if message is None:
            return
        if self.failure is not None:
            raise self.failure
        with provider_errors(self.protocol.provider):
            await self.ws.send_str(message)

    async def _read(self) -> None:
        provider = self.protocol.provider
        failure: ProviderError | None = None
        try:
            while True:
                message = await self.ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    for event in self.protocol.receive_text(message.data):
                        if (receiver := self.receivers.get(event.key)) is not None:
                            receiver.on_event(event)
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
                        f"the socket failed ({message.data}); reconnect", provider=provider
                    )
        except ProviderError as error:
            failure = error
        except ProtocolError as error:
            failure = ProviderStreamError(
                f"sent a malformed message ({error})", provider=provider, retryable=True
            )
        except (aiohttp.ClientError, ConnectionError) as error:
            failure = ProviderConnectionError(f"the socket failed ({error}); reconnect", provider=provider)
        self.failure = failure or ProviderConnectionError("the socket closed", provider=provider)
        for receiver in list(self.receivers.values()):
            receiver.fail(self.failure)
        if self._keepalive is not None:
            self._keepalive.cancel()
        if failure is not None:
            logger.warning("%s", failure)
            await self.ws.close()

    async def _keep_alive(self, interval: float, messages: Callable[[], list[str]]) -> None:
        with contextlib.suppress(ProviderError):
            while True:
                await asyncio.sleep(interval)
                for message in messages():
                    await self.send(message)

    async def close(self, last: str | None = None) -> None:
        """Send ``last`` (if any), close the socket and wait for the reader to end."""
        self.protocol.closing = True
        if self.alive:
            with contextlib.suppress(ProviderError):
                await self.send(last)
        if self._keepalive is not None:
            self._keepalive.cancel()
        await self.ws.close()
        await self._reader  # it ends with the socket, failing any reply still open


class ReplyStream:
    """One reply on an :class:`EventSocket`: its events become queued audio chunks, read with ``async for``.

    Subclasses send the provider's messages (``push_text`` through :meth:`_send_text`,
    ``aclose``); after the audio of each pushed text comes an ``end_of_text`` mark, and the
    stream ends once input has ended and every text has its mark, or when the server says so.

    Args:
        socket: The socket the reply is on.
        key: The reply's context or request-group id.
        read_timeout: Seconds the reply may owe audio without any arriving before reading
            raises :class:`~voicecore.errors.ProviderTimeoutError`.
    """

    def __init__(self, socket: EventSocket, key: str, *, read_timeout: float) -> None:
        self.key = key
        self.closed = False
        self._socket = socket
        self._read_timeout = read_timeout
        self._input_ended = False
        self._texts_pushed = 0
        self._texts_ended = 0  # end_of_text marks queued
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._finished = False
        self._end_queued = False
        socket.receivers[key] = self

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self

    async def __anext__(self) -> AudioChunk:
        if self._finished:
            raise StopAsyncIteration
        owed = self._texts_ended < self._texts_pushed
        try:
            async with asyncio.timeout(self._read_timeout if owed else None):
                item = await self._queue.get()
        except TimeoutError:
            raise ProviderTimeoutError(
                f"no audio for {self._read_timeout:g} s while text was waiting; the stream stalled",
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

    def on_event(self, event: ReplyEvent) -> None:
        """Queue what the socket's reader parsed for this reply."""
        if isinstance(event, ReplyAudio):
            self._texts_done(event.texts_done)
            if event.audio or event.words:
                words = tuple(WordTiming(word, end_ms) for word, end_ms in event.words)
                self._queue.put_nowait(AudioChunk(event.audio, words))
            self._maybe_finish()
            return
        self._socket.receivers.pop(self.key, None)
        if isinstance(event, ReplyFailed):
            self._queue.put_nowait(event.error)
        else:  # the server ended the reply: whatever it owed will not come
            self._end()

    def fail(self, error: ProviderError) -> None:
        """The socket failed: reading raises ``error`` after what is queued."""
        self._queue.put_nowait(error)

    async def _send_text(self, message: str | None, done: int) -> None:
        """Send one pushed text's request (None: nothing to send), with the texts it ended."""
        self._texts_pushed += 1
        self._texts_done(done)
        await self._socket.send(message)

    async def end_input(self) -> None:
        """No more text; the stream ends once the audio of every pushed text has arrived."""
        self._input_ended = True
        self._maybe_finish()

    def _texts_done(self, count: int) -> None:
        """Queue an ``end_of_text`` mark for each of ``count`` texts."""
        for _ in range(count):
            self._queue.put_nowait(AudioChunk(b"", end_of_text=True))
        self._texts_ended += count

    def _maybe_finish(self) -> None:
        if self._input_ended and self._texts_ended >= self._texts_pushed:
            self._end()

    def _end(self) -> None:
        if not self._end_queued:
            self._end_queued = True
            self._queue.put_nowait(_END)

    async def _send_last(self, message: str | None) -> None:
        """Send a reply's last message (a cancel) if the socket lives; a failure no longer matters."""
        if self._socket.alive:
            with contextlib.suppress(ProviderError):
                await self._socket.send(message)

    def _stop(self) -> bool:
        """Stop at once (barge-in), dropping what is queued; False if already stopped."""
        if self.closed:
            return False
        self.closed = True
        self._socket.receivers.pop(self.key, None)
        self._finished = True
        self._end()
        return True


_Key = TypeVar("_Key", bound=Hashable)


class SocketTTS(Generic[_Key]):
    """The provider side of a WebSocket TTS: one warm socket per key, reopened once it dies.

    A subclass says how to open the socket for a key (:meth:`_dial`, using :meth:`_connect`)
    and which formats it produces; replies get ids unique to this provider object.

    Args:
        headers: Sent on every handshake (the API key).
        name: The provider's name in errors and logs.
        connect_timeout: Seconds for the WebSocket handshake.
    """

    def __init__(self, *, headers: dict[str, str], name: str, connect_timeout: float) -> None:
        self.name = name
        self._headers = headers
        self._connect_timeout = connect_timeout
        self._http = ClientSessionOwner()
        self._sockets: dict[_Key, EventSocket] = {}
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]

    def output_formats(self) -> Sequence[AudioFormat]:
        """The audio formats the provider produces, the preferred one first."""
        raise NotImplementedError

    def _reply_id(self) -> str:
        """A fresh id for a reply (a context or a group of requests)."""
        return f"{self._prefix}-{next(self._ids)}"

    async def _socket(self, audio: AudioFormat, key: _Key) -> EventSocket:
        """The live socket for ``key`` (which produces ``audio``), opened now if there is none.

        Raises:
            ConfigError: ``audio`` is not one of :meth:`output_formats`.
        """
        if audio not in self.output_formats():
            raise ConfigError(f"{self.name} does not produce {audio}; use one of output_formats()")
        async with self._lock:
            socket = self._sockets.get(key)
            if socket is None or not socket.alive:
                socket = self._sockets[key] = await self._reopen(key)
            return socket

    async def _reopen(self, key: _Key) -> EventSocket:
        """A new socket for ``key`` (called under the lock)."""
        return await self._dial(key)

    async def _dial(self, key: _Key) -> EventSocket:
        """Open a socket for ``key``."""
        raise NotImplementedError

    async def _connect(self, url: str, *, heartbeat: float | None = None) -> aiohttp.ClientWebSocketResponse:
        """The handshake, within ``connect_timeout``; its failures become provider errors.

        ``heartbeat``: seconds between pings, for a server that closes idle sockets and takes
        no keep-alive message (None: no pings).
        """
        with provider_errors(self.name):
            async with asyncio.timeout(self._connect_timeout):
                return await self._http.session().ws_connect(
                    url, headers=self._headers, autoping=True, heartbeat=heartbeat
                )

    def _last_message(self, socket: EventSocket) -> str | None:
        """What to send on ``socket`` before closing it (None: nothing)."""
        del socket
        return None

    async def aclose(self) -> None:
        """Close every socket and the client session; safe to call twice."""
        sockets, self._sockets = list(self._sockets.values()), {}
        for socket in sockets:
            await socket.close(self._last_message(socket))
        await self._http.aclose()
