"""Per-message cost of the WebSocket server library: aiohttp (what ``serve`` uses) vs websockets.

What is timed, per call, for both servers (same group, same client, same event loop):

* receive ("ws server receive ..."): the client writes ``MESSAGES`` Twilio ``media`` text
  messages (a real one: JSON with a base64 payload of 160 μ-law bytes, ~250 characters) and
  waits for the server's reply, which the server sends after it has received the last one.
  The server's handler only counts messages (``async for`` over the socket), so the figure is
  the library's cost to read, unmask, validate UTF-8 and hand over one text message.
* send ("ws server send ..."): the client asks, and the server sends ``MESSAGES`` such
  messages with ``await send_str`` / ``await send`` one by one, as the transport sends agent
  audio; the client waits until it has read them all.

The client is the same for both and as cheap as possible: a raw socket after a hand-written
HTTP upgrade, frames masked once up front and written in one go, replies counted by length,
so the difference between the two rows is the servers'. Both run on the loop ``serve``
uses (:mod:`voicecore.runtime.loop`: uvloop when installed). Divide by ``MESSAGES`` for the
cost per message. websockets is benchmark-only (benches/requirements.txt); the test is
skipped without it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from voicecore.runtime import loop as voicecore_loop

websockets_server = pytest.importorskip("websockets.asyncio.server", reason="pip install websockets (peer)")

MESSAGES = 1000
MESSAGE = json.dumps(
    {
        "event": "media",
        "sequenceNumber": "4",
        "streamSid": "MZ00000000000000000000000000000001",
        "media": {
            "track": "inbound",
            "chunk": "2",
            "timestamp": "5",
            "payload": base64.b64encode(bytes(160)).decode(),
        },
    }
)


def _client_frame(text: str) -> bytes:
    """One masked client text frame (RFC 6455), built once."""
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    length = len(payload)
    header += bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + length.to_bytes(2, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def _server_frame_length(text: str) -> int:
    length = len(text.encode())
    return length + (2 if length < 126 else 4)


class RawClient:
    """A WebSocket client that is little more than a socket, so the server's cost shows."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.burst = _client_frame(MESSAGE) * MESSAGES
        self.go = _client_frame("go")
        self.expected = _server_frame_length(MESSAGE) * MESSAGES

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def receive_round(self) -> None:
        self.writer.write(self.burst)
        assert await self.reader.readexactly(_server_frame_length("done")) == b"\x81\x04done"

    async def send_round(self) -> None:
        self.writer.write(self.go)
        await self.reader.readexactly(self.expected)


async def _aiohttp_server() -> tuple[int, Callable[[], Awaitable[None]]]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        count = 0
        async for message in ws:
            if message.data == "go":
                for _ in range(MESSAGES):
                    await ws.send_str(MESSAGE)
                continue
            count += 1
            if count == MESSAGES:
                count = 0
                await ws.send_str("done")
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return int(runner.addresses[0][1]), runner.cleanup


async def _websockets_server() -> tuple[int, Callable[[], Awaitable[None]]]:
    async def handler(ws: Any) -> None:
        count = 0
        async for message in ws:
            if message == "go":
                for _ in range(MESSAGES):
                    await ws.send(MESSAGE)
                continue
            count += 1
            if count == MESSAGES:
                count = 0
                await ws.send("done")

    server = await websockets_server.serve(handler, "127.0.0.1", 0, compression=None, max_size=2**20)
    port = next(iter(server.sockets)).getsockname()[1]

    async def close() -> None:
        server.close()
        await server.wait_closed()

    return int(port), close


SERVERS = {"aiohttp": _aiohttp_server, "websockets": _websockets_server}


@pytest.fixture(params=sorted(SERVERS))
def connection(request: pytest.FixtureRequest) -> Iterator[tuple[str, asyncio.AbstractEventLoop, RawClient]]:
    impl = request.param
    loop = voicecore_loop.loop_factory(voicecore_loop.loop_name())()
    port, close = loop.run_until_complete(SERVERS[impl]())
    client = loop.run_until_complete(RawClient.connect(port))
    try:
        yield impl, loop, client
    finally:
        client.writer.close()
        loop.run_until_complete(close())
        loop.close()


def _extra(benchmark: Any, impl: str) -> None:
    import aiohttp
    import websockets

    versions = {"aiohttp": aiohttp.__version__, "websockets": websockets.__version__}
    benchmark.extra_info.update(impl=impl, version=versions[impl], messages_per_call=MESSAGES)


def test_receive(benchmark: Any, connection: tuple[str, asyncio.AbstractEventLoop, RawClient]) -> None:
    impl, loop, client = connection
    benchmark.group = f"ws server receive, {MESSAGES} Twilio media messages"
    _extra(benchmark, impl)
    loop.run_until_complete(client.receive_round())  # correctness: all received, reply framed
    benchmark.pedantic(lambda: loop.run_until_complete(client.receive_round()), rounds=20, warmup_rounds=2)


def test_send(benchmark: Any, connection: tuple[str, asyncio.AbstractEventLoop, RawClient]) -> None:
    impl, loop, client = connection
    benchmark.group = f"ws server send, {MESSAGES} Twilio media messages"
    _extra(benchmark, impl)
    loop.run_until_complete(client.send_round())  # correctness: every byte of every frame arrived
    benchmark.pedantic(lambda: loop.run_until_complete(client.send_round()), rounds=20, warmup_rounds=2)
