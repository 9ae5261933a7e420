"""A tiny aiohttp server on 127.0.0.1 with an ephemeral port, shared by the protocol fakes.

Set ``host`` and ``port`` before starting it to listen elsewhere (``python -m voicecore
fakes`` gives each fake a fixed port, so load tests can point at stable URLs).
"""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalServer:
    """Runs an aiohttp application on ``host``:``port``; ``async with`` starts and stops it.

    Attributes:
        host: The address to listen on (127.0.0.1 unless changed before starting).
        port: The port to listen on (0: any free one); once started, the port it listens on.
    """

    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.peers: list[tuple[str, int]] = []  # (host, port) of every request: one port = one connection

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://HOST:PORT``."""
        return f"ws://{self.host}:{self.port}"

    def record_peer(self, request: web.Request) -> None:
        """Note the client's address and port (one port per TCP connection)."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer is not None:
            self.peers.append((peer[0], peer[1]))

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:  # the port is taken: free what setup() made
            await self._runner.cleanup()
            raise
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
