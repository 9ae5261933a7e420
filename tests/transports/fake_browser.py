"""A Python client of the browser protocol (``/ws``), doing what the page does.

:class:`BrowserClient` sends ``start``, then the caller's PCM16 in real-time 20 ms binary
frames (silence unless :meth:`BrowserClient.say` queued speech), plays the agent's audio at
real-time rate and acknowledges each mark (``played``) once the audio before it has played;
``clear`` drops the queued audio and its marks, which are never acknowledged. Transcripts,
turn latencies and ``end`` are recorded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import wave
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from io import BytesIO
from typing import Any

import aiohttp

from voicecore.audio import Resampler

__all__ = ["BrowserClient", "pcm_speech"]


@cache
def pcm_speech(text: str, rate: int = 16000) -> bytes:
    """``text`` spoken briskly by espeak-ng, as PCM16 at ``rate``."""
    wav = subprocess.run(["espeak-ng", "-s", "240", "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(BytesIO(wav)) as reader:
        source, frames = reader.getframerate(), reader.readframes(reader.getnframes())
    resampler = Resampler(source, rate)
    return resampler.process(frames) + resampler.flush()


@dataclass
class BrowserClient:
    """One browser call. Use as ``async with BrowserClient(url) as call: ...``.

    Attributes:
        url: The server's ``ws://host:port/ws``.
        sample_rate: The rate announced in ``start`` (audio both ways).
        parameters: The call's own data, sent in ``start`` when there is any.
        played: Agent audio played so far (PCM16 at ``sample_rate``).
        marks: Marks acknowledged after their audio played, in order.
        dropped: Marks a ``clear`` dropped (never acknowledged).
        clears: ``clear`` messages received.
        transcripts: ``transcript`` messages, in order.
        turns: ``turn`` messages, in order.
        end: The ``end`` message, once received.
        close_code: The server's close code, once it closed the socket.
    """

    url: str
    sample_rate: int = 16000
    parameters: dict[str, Any] = field(default_factory=dict)
    played: bytearray = field(default_factory=bytearray)
    marks: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    clears: int = 0
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    close_code: int | None = None

    def __post_init__(self) -> None:
        self.frame_bytes = self.sample_rate // 50 * 2
        self._caller: deque[bytes] = deque()
        self._playout: deque[bytes | str] = deque()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> BrowserClient:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(self.url)
        start: dict[str, Any] = {"type": "start", "sample_rate": self.sample_rate}
        await self.send(start | ({"parameters": self.parameters} if self.parameters else {}))
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receiver()),
            loop.create_task(self._player()),
            loop.create_task(self._sender()),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    def say(self, pcm: bytes) -> None:
        """Queue caller speech (PCM16 at ``sample_rate``) after what is already queued."""
        for start in range(0, len(pcm), self.frame_bytes):
            self._caller.append(pcm[start : start + self.frame_bytes].ljust(self.frame_bytes, b"\0"))

    def agent_text(self) -> list[str]:
        """What the server says the caller heard, reply by reply."""
        return [t["text"] for t in self.transcripts if t["role"] == "agent"]

    def caller_text(self) -> list[str]:
        """The caller's final transcripts."""
        return [t["text"] for t in self.transcripts if t["role"] == "caller" and t["final"]]

    async def send(self, message: dict[str, Any]) -> None:
        """Send one control message (nothing once the socket is closed)."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_str(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything at all (to test how the server copes with malformed input)."""
        assert self._ws is not None
        await (self._ws.send_bytes(data) if isinstance(data, bytes) else self._ws.send_str(data))

    async def hang_up(self) -> None:
        """``stop``, then close."""
        if self._ws is not None and not self._ws.closed:
            await self.send({"type": "stop"})
            await self._ws.close()
        await self._finish()

    async def closed_by_server(self, within: float = 10.0) -> int | None:
        """Wait until the server closes the socket; returns its close code."""
        async with asyncio.timeout(within):
            await self._closed.wait()
        await self._finish()
        return self.close_code

    async def _finish(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _sender(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        silence = bytes(self.frame_bytes)
        while self._ws is not None and not self._ws.closed:
            await self._ws.send_bytes(self._caller.popleft() if self._caller else silence)
            next_at += 0.02
            await asyncio.sleep(max(next_at - loop.time(), 0.0))

    async def _receiver(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                self._playout.append(message.data)
            else:
                data = json.loads(message.data)
                match data["type"]:
                    case "mark":
                        self._playout.append(data["name"])
                    case "clear":
                        self.clears += 1
                        self.dropped += [item for item in self._playout if isinstance(item, str)]
                        self._playout.clear()
                    case "transcript":
                        self.transcripts.append(data)
                    case "turn":
                        self.turns.append(data)
                    case "end":
                        self.end = data
            self._wake.set()
        self.close_code = self._ws.close_code
        self._closed.set()

    async def _player(self) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time()
        while True:
            if not self._playout:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._playout.popleft()
            if isinstance(item, str):
                self.marks.append(item)
                await self.send({"type": "played", "mark": item})
                continue
            until = max(until, loop.time()) + len(item) / 2 / self.sample_rate
            self.played += item
            await asyncio.sleep(until - loop.time())
