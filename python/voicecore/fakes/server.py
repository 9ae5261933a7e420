"""A tiny aiohttp server on 127.0.0.1 with an ephemeral port, shared by the protocol fakes."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalServer:
    """Runs an aiohttp application on 127.0.0.1; ``async with`` starts and stops it."""

    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.peers: list[tuple[str, int]] = []  # (host, port) of every request: one port = one connection

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        return f"ws://127.0.0.1:{self.port}"

    def record_peer(self, request: web.Request) -> None:
        """Note the client's address and port (one port per TCP connection)."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer is not None:
            self.peers.append((peer[0], peer[1]))

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
