"""A fake Twilio over a real socket: the Media Streams client side of a phone call.

It connects to ``/twilio/stream`` the way Twilio does (``connected``, then ``start`` with the
custom parameters), streams the caller's μ-law audio in real-time 20 ms ``media`` frames
(silence unless :meth:`FakeTwilio.say` queued speech), and plays the agent's audio at real-time
rate: a mark is echoed once all audio sent before it has played, and a ``clear`` drops the
queued audio and echoes every pending mark at once, exactly once each. :meth:`FakeTwilio.hang_up`
sends ``stop`` and closes, as Twilio does when the caller hangs up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import wave
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from io import BytesIO
from typing import Any

import aiohttp

from voicecore.audio import Resampler, ulaw_encode

FRAME = 160  # 20 ms of μ-law at 8 kHz
SILENCE = b"\xff" * FRAME


@cache
def speech(text: str) -> bytes:
    """``text`` spoken by espeak-ng, as a phone line carries it: μ-law 8 kHz."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(BytesIO(wav)) as reader:
        rate, frames = reader.getframerate(), reader.readframes(reader.getnframes())
    resampler = Resampler(rate, 8000)
    return ulaw_encode(resampler.process(frames) + resampler.flush())


@dataclass
class FakeTwilio:
    """One call from Twilio's side. Use as ``async with FakeTwilio(url) as call: ...``."""

    url: str
    call_sid: str = "CA00000000000000000000000000000001"
    stream_sid: str = "MZ00000000000000000000000000000001"
    parameters: dict[str, str] = field(default_factory=dict)
    played: bytearray = field(default_factory=bytearray)
    marks: list[str] = field(default_factory=list)
    clears: int = 0
    discarded: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    def __post_init__(self) -> None:
        self._caller: deque[bytes] = deque()
        self._playout: deque[bytes | str] = deque()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._sequence = 0
        self._chunk = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> FakeTwilio:
        self._http = aiohttp.ClientSession()
        self.ws = await self._http.ws_connect(self.url)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": "AC00000000000000000000000000000001",
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._receiver()), loop.create_task(self._player())]
        self._tasks.append(loop.create_task(self._sender()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    # --- what the test does -----------------------------------------------------------------

    def say(self, ulaw: bytes) -> None:
        """Queue caller speech (μ-law 8 kHz); it goes out after what is already queued."""
        for start in range(0, len(ulaw), FRAME):
            self._caller.append(ulaw[start : start + FRAME].ljust(FRAME, b"\xff"))

    @property
    def speaking(self) -> bool:
        """Whether caller speech is still queued."""
        return bool(self._caller)

    async def press(self, digit: str) -> None:
        """The caller presses a key."""
        await self.send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def send(self, message: dict[str, Any]) -> None:
        """Send one message (``sequenceNumber`` added)."""
        if self.ws.closed:
            return
        self._sequence += 1
        await self.ws.send_str(json.dumps({**message, "sequenceNumber": str(self._sequence)}))

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything at all (for malformed-input tests)."""
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then the socket closes."""
        if not self.ws.closed:
            await self.send(
                {"event": "stop", "streamSid": self.stream_sid, "stop": {"callSid": self.call_sid}}
            )
            await self.ws.close()
        await self._finish()

    async def closed_by_server(self, within: float = 10.0) -> int | None:
        """Wait until the server closes the stream; returns its close code."""
        async with asyncio.timeout(within):
            await self._closed.wait()
        await self._finish()
        return self.close_code

    async def _finish(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.close()

    # --- Twilio's side ----------------------------------------------------------------------

    async def _sender(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self.ws.closed:
            frame = self._caller.popleft() if self._caller else SILENCE
            self._chunk += 1
            media = {"track": "inbound", "chunk": str(self._chunk), "timestamp": str(20 * (self._chunk - 1))}
            media["payload"] = base64.b64encode(frame).decode()
            await self.send({"event": "media", "streamSid": self.stream_sid, "media": media})
            next_at += 0.02
            await asyncio.sleep(max(next_at - loop.time(), 0.0))

    async def _receiver(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            self.received.append(data)
            assert data.get("streamSid") == self.stream_sid, data
            match data["event"]:
                case "media":
                    self._playout.append(base64.b64decode(data["media"]["payload"]))
                case "mark":
                    self._playout.append(data["mark"]["name"])
                case "clear":
                    self.clears += 1
                    pending = [item for item in self._playout if isinstance(item, str)]
                    self._playout.clear()
                    for name in pending:  # Twilio echoes every mark the clear discarded
                        self.discarded.append(name)
                        await self._echo(name)
            self._wake.set()
        self.close_code = self.ws.close_code
        self._closed.set()

    async def _player(self) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time()  # when the audio handed to the "speaker" so far ends
        while True:
            if not self._playout:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._playout.popleft()
            if isinstance(item, str):
                self.marks.append(item)
                await self._echo(item)
                continue
            until = max(until, loop.time()) + len(item) / 8000
            self.played += item
            await asyncio.sleep(until - loop.time())

    async def _echo(self, name: str) -> None:
        await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
