"""What the fake chat servers (OpenAI-compatible, Anthropic) share.

Both answer requests with scripted replies in order (the last repeats), record what they
received, stream the reply as SSE, and can stall or drop the connection after so many
tokens; only the wire format of the events differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from voicecore.fakes.server import LocalServer

__all__ = ["ChatServer", "word_tokens"]


def word_tokens(text: str | Sequence[str]) -> list[str]:
    """The tokens to stream: words with their following space, or the given sequence."""
    if isinstance(text, str):
        words = text.split(" ") if text else []
        return [w + " " for w in words[:-1]] + words[-1:]
    return list(text)


class _Cuts(Protocol):
    stall_after: int | None
    drop_after: int | None


_Reply = TypeVar("_Reply")


class ChatServer(LocalServer, Generic[_Reply]):
    """A fake chat API's common state and stream handling.

    Args:
        replies: One per request (a str is made a reply with ``script``).
        script: The reply type, called with a str or with nothing (when there is no script).
        api_key: The key clients must send (None: any).

    Attributes:
        requests: The JSON bodies received.
        request_headers: Their headers.
        tokens_sent: Content tokens streamed per streamed request.
        client_went_away: Set when a client disconnects mid-stream.
    """

    def __init__(
        self, replies: Sequence[_Reply | str], script: Callable[..., _Reply], *, api_key: str | None
    ) -> None:
        super().__init__()
        self.replies = [script(r) if isinstance(r, str) else r for r in replies]
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.tokens_sent: list[int] = []
        self.client_went_away = asyncio.Event()
        self._script = script

    def _record(self, request: web.Request) -> None:
        """Note a chat request's peer and headers (before any check, so refused ones count)."""
        self.record_peer(request)
        self.request_headers.append(dict(request.headers))

    def _reply(self) -> _Reply:
        """The reply for the request just recorded in :attr:`requests`."""
        if not self.replies:
            return self._script()
        return self.replies[min(len(self.requests) - 1, len(self.replies) - 1)]

    async def _streamed(
        self,
        request: web.Request,
        headers: dict[str, str],
        stream: Callable[[web.StreamResponse], Awaitable[int]],
    ) -> web.StreamResponse:
        """An SSE response written by ``stream`` (which returns the tokens it sent)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **headers})
        await response.prepare(request)
        sent = 0
        try:
            sent = await stream(response)
        except ConnectionError:
            self.client_went_away.set()
        finally:
            self.tokens_sent.append(sent)
        return response

    async def _cut(self, request: web.Request, reply: _Cuts, sent: int) -> bool:
        """Stall or drop the connection if the script says so after ``sent`` tokens; True if it did.

        Stalling waits until the client goes away.
        """
        if sent == reply.stall_after:
            await self._wait_for_disconnect(request)
            return True
        if sent == reply.drop_after:
            assert request.transport is not None
            request.transport.close()
            return True
        return False

    async def _wait_for_disconnect(self, request: web.Request) -> None:
        # aiohttp gives a handler no disconnect event; polling the transport is the way.
        while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self.client_went_away.set()
