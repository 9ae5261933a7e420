"""One WebSocket interface over the servers voicecore can be embedded in.

The transports read and write whole messages through :class:`MessageSocket`, so a call can
run on the socket of whichever server accepted it: aiohttp (``python -m voicecore serve``),
FastAPI/Starlette, or the ``websockets`` library. :func:`message_socket` wraps each; the
sockets are recognised by their methods, so Starlette and ``websockets`` (not dependencies of
voicecore) are never imported.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Protocol, runtime_checkable

from aiohttp import WSMsgType

__all__ = ["MessageSocket", "UnsupportedSocketError", "message_socket"]

logger = logging.getLogger(__name__)


class UnsupportedSocketError(TypeError):
    """The object is not a WebSocket voicecore knows how to drive."""


@runtime_checkable
class MessageSocket(Protocol):
    """An accepted WebSocket, message by message."""

    @property
    def closed(self) -> bool:
        """Whether either side has closed it (nothing more can be sent)."""
        ...

    async def receive(self) -> str | bytes | None:
        """The next text or binary message; None once the socket is closed."""
        ...

    async def send(self, data: str | bytes) -> bool:
        """Send a text (``str``) or binary message; False when the peer has already gone."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` (safe to call more than once)."""
        ...


def message_socket(ws: object) -> MessageSocket:
    """``ws``, an accepted WebSocket of a supported library, as a :class:`MessageSocket`.

    Supported: aiohttp's ``WebSocketResponse`` (or client socket), Starlette's/FastAPI's
    ``WebSocket`` after ``accept()``, a ``websockets`` connection, and anything that already
    implements the interface.

    Raises:
        UnsupportedSocketError: ``ws`` is none of these.
    """
    if all(hasattr(ws, name) for name in ("receive", "send_str", "send_bytes", "closed")):
        return _Aiohttp(ws)
    if all(hasattr(ws, name) for name in ("receive", "send_text", "send_bytes", "application_state")):
        return _Starlette(ws)
    if all(hasattr(ws, name) for name in ("recv", "send", "close")):
        return _Websockets(ws)
    if isinstance(ws, MessageSocket):
        return ws
    raise UnsupportedSocketError(
        f"cannot drive a {type(ws).__qualname__} as a WebSocket: pass an aiohttp WebSocketResponse, "
        "a Starlette/FastAPI WebSocket (after accept()), a websockets connection, or an object "
        "implementing voicecore.transports.sockets.MessageSocket"
    )


class _Aiohttp:
    """aiohttp's ``WebSocketResponse`` (server) or ``ClientWebSocketResponse``."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    @property
    def closed(self) -> bool:
        return bool(self._ws.closed)

    async def receive(self) -> str | bytes | None:
        message = await self._ws.receive()
        if message.type == WSMsgType.TEXT or message.type == WSMsgType.BINARY:
            return message.data  # type: ignore[no-any-return]
        if message.type == WSMsgType.ERROR:
            logger.warning("WebSocket error: %s", message.data)
        return None

    async def send(self, data: str | bytes) -> bool:
        if self._ws.closed:
            return False
        try:
            if isinstance(data, bytes):
                await self._ws.send_bytes(data)
            else:
                await self._ws.send_str(data)
        except ConnectionResetError:
            return False
        return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._ws.closed:
            await self._ws.close(code=code, message=reason.encode())


class _Remembering:
    """An adapter that remembers seeing its socket close, beside what the library reports."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed or self._library_says_closed()

    def _library_says_closed(self) -> bool:
        raise NotImplementedError


class _Starlette(_Remembering):
    """Starlette's (and so FastAPI's) ``WebSocket``, after ``accept()``."""

    def _library_says_closed(self) -> bool:
        # WebSocketState.DISCONNECTED on either side; compared by name to import nothing.
        return "DISCONNECTED" in (self._ws.client_state.name, self._ws.application_state.name)

    async def receive(self) -> str | bytes | None:
        if self.closed:
            return None
        try:
            message = await self._ws.receive()
        except RuntimeError:  # the socket was closed under us
            self._closed = True
            return None
        if message["type"] != "websocket.receive":
            self._closed = True
            return None
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def send(self, data: str | bytes) -> bool:
        if self.closed:
            return False
        try:
            if isinstance(data, bytes):
                await self._ws.send_bytes(data)
            else:
                await self._ws.send_text(data)
        except (OSError, RuntimeError) as error:  # a disconnect, under every ASGI server
            if not _is_disconnect(error):
                raise
            self._closed = True
            return False
        return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, RuntimeError):  # the peer went first
            await self._ws.close(code=code, reason=reason or None)


def _is_disconnect(error: BaseException) -> bool:
    """Whether a Starlette send failed because the peer had gone (not a bug in the caller)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"WebSocketDisconnect", "ClientDisconnected", "ConnectionError"}) or (
        isinstance(error, RuntimeError) and "close message has been sent" in str(error)
    )


class _Websockets(_Remembering):
    """A connection of the ``websockets`` library (the asyncio API, or the legacy one)."""

    def _library_says_closed(self) -> bool:
        state = getattr(self._ws, "state", None)
        return state is not None and getattr(state, "name", "") in ("CLOSING", "CLOSED")

    async def receive(self) -> str | bytes | None:
        if self.closed:
            return None
        try:
            return await self._ws.recv()  # type: ignore[no-any-return]
        except Exception as error:
            if not _is_closed(error):
                raise
            self._closed = True
            return None

    async def send(self, data: str | bytes) -> bool:
        if self.closed:
            return False
        try:
            await self._ws.send(data)
        except Exception as error:
            if not _is_closed(error):
                raise
            self._closed = True
            return False
        return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        await self._ws.close(code=code, reason=reason)


def _is_closed(error: BaseException) -> bool:
    """Whether a ``websockets`` call failed because the connection is closed."""
    return any(cls.__name__ == "ConnectionClosed" for cls in type(error).__mro__) or isinstance(
        error, ConnectionError
    )
