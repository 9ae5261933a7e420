"""What the multi-reply WebSocket TTS adapters share (ElevenLabs, Cartesia, Smallest AI).

:class:`EventSocket` reads server messages, lets the sans-I/O protocol turn them into
:mod:`~voicecore.sansio.ttsevents` keyed by reply, and hands each to the reply it names; when
the socket fails, every reply on it fails with the same :class:`~voicecore.errors.ProviderError`.
:class:`ReplyStream` is one reply's reading side: events in, audio chunks out with
``end_of_text`` marks, and a stall timeout while audio is owed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import aiohttp

from voicecore.errors import (
    ProtocolError,
    ProviderConnectionError,
    ProviderError,
    ProviderStreamError,
    ProviderTimeoutError,
)
from voicecore.providers._http import provider_errors
from voicecore.providers.base import AudioChunk, WordTiming
from voicecore.sansio.ttsevents import ReplyAudio, ReplyEvent, ReplyFailed

__all__ = ["EventSocket", "ReplyStream", "SocketProtocol"]

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

    def _stop(self) -> bool:
        """Stop at once (barge-in), dropping what is queued; False if already stopped."""
        if self.closed:
            return False
        self.closed = True
        self._socket.receivers.pop(self.key, None)
        self._finished = True
        self._end()
        return True
