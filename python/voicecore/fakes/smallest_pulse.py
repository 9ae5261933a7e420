"""A fake Smallest AI Pulse live STT server (``/waves/v1/stt/live``) over a real WebSocket.

It "hears" scripted utterances as audio bytes arrive: ``speech_started`` when one begins (with
``vad_events``), an interim ``transcription`` halfway, a final one when its bytes are in, then
``speech_ended``. ``finalize`` answers with one final transcript (``from_finalize``) of what
is in progress, empty if nothing is; ``close_stream`` with the last one (``is_last``), then a
close 1000. Like the real server it refuses a bad key (401) and bad parameters (400) before
the upgrade, and can be told to fail the first connection after some audio: with a close code
(1008 is the organisation's concurrency limit) or with an ``error`` message first. The script
is shared by all connections, so after a reconnect the caller's speech goes on where it was.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from voicecore.fakes.deepgram import Utterance
from voicecore.fakes.server import LocalServer

__all__ = ["Connection", "FakePulse", "Utterance"]

_RATES = ("8000", "16000", "22050", "24000", "44100", "48000")
_ENCODINGS = ("linear16", "linear32", "alaw", "mulaw", "opus", "ogg_opus")


@dataclass
class Connection:
    """What one client connection sent."""

    query: dict[str, str]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    controls: list[dict[str, Any]] = field(default_factory=list)


class FakePulse(LocalServer):
    """Serves ``/waves/v1/stt/live`` with the scripted utterances.

    Args:
        utterances: What the caller says, in order (a str takes 1600 bytes of audio).
        api_key: The key clients must send as ``Authorization: Bearer`` (None: any).
        close_after_bytes: Fail the first connection after this much audio.
        close_with: The close code and reason of that failure.
        error_message: Send an ``error`` message with this text before that close.

    Attributes:
        connections: What each client connection sent.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance | str] = (),
        *,
        api_key: str | None = "sm-key",
        close_after_bytes: int | None = None,
        close_with: tuple[int, str] = (1011, "internal error"),
        error_message: str | None = None,
    ) -> None:
        super().__init__()
        self.script = [Utterance(u) if isinstance(u, str) else u for u in utterances]
        self.api_key = api_key
        self.close_after_bytes = close_after_bytes
        self.close_with = close_with
        self.error_message = error_message
        self.connections: list[Connection] = []
        self.app.router.add_get("/waves/v1/stt/live", self._live)

    async def _live(self, request: web.Request) -> web.StreamResponse:
        self.record_peer(request)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"status": "error", "message": "Invalid API key"}, status=401)
        query = dict(request.query)
        problem = _query_problem(query)
        if problem is not None:
            return web.json_response({"status": "error", "message": problem}, status=400)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(query, dict(request.headers))
        self.connections.append(conn)
        await _Session(self, ws, conn).run()
        return ws


def _query_problem(query: dict[str, str]) -> str | None:
    if query.get("model") != "pulse":
        return f"model {query.get('model')!r} cannot stream: use model=pulse"
    if not query.get("language"):
        return "language is required"
    if query.get("sample_rate", "16000") not in _RATES:
        return f"sample_rate must be one of {', '.join(_RATES)}"
    if query.get("encoding", "linear16") not in _ENCODINGS:
        return f"encoding must be one of {', '.join(_ENCODINGS)}"
    return None


class _Session:
    def __init__(self, server: FakePulse, ws: web.WebSocketResponse, conn: Connection) -> None:
        self.server, self.ws, self.conn = server, ws, conn
        query = conn.query
        width = 2 if query.get("encoding", "linear16") == "linear16" else 1
        self.rate_bytes = int(query.get("sample_rate", "16000")) * width
        self.vad = query.get("vad_events", query.get("vad")) == "true"
        self.word_times = query.get("word_timestamps") == "true"
        self.session_id = str(uuid.uuid4())
        self.heard = 0  # bytes of the current utterance heard
        self.start = 0.0  # where it began, in seconds of this connection's audio
        self.audio_time = 0.0
        self.interim_sent = False

    async def run(self) -> None:
        async for message in self.ws:
            if message.type == WSMsgType.BINARY:
                if await self._audio(message.data):
                    return
            elif message.type == WSMsgType.TEXT:
                control = json.loads(message.data)
                self.conn.controls.append(control)
                if control.get("type") == "finalize":
                    await self._final(from_finalize=True)
                elif control.get("type") == "close_stream":
                    await self._final(from_finalize=False, last=True)
                    await self.ws.close(code=1000)
                    return

    async def _audio(self, data: bytes) -> bool:
        """Hear ``data``; True if the fault closed the connection."""
        self.conn.audio += data
        self.audio_time += len(data) / self.rate_bytes
        server = self.server
        limit = server.close_after_bytes
        if self.conn is server.connections[0] and limit is not None and len(self.conn.audio) >= limit:
            if server.error_message is not None:
                await self.ws.send_json({"type": "error", "status": "error", "message": server.error_message})
            code, reason = server.close_with
            await self.ws.close(code=code, message=reason.encode())
            return True
        if not server.script:
            return False
        utterance = server.script[0]
        if self.heard == 0:
            self.start = self.audio_time - len(data) / self.rate_bytes
            if self.vad:
                await self._send({"type": "speech_started", "timestamp": round(self.start, 3)})
        self.heard += len(data)
        if not self.interim_sent and utterance.audio_bytes > self.heard >= utterance.audio_bytes / 2:
            self.interim_sent = True
            words = utterance.text.split()
            await self._send(self._transcription(" ".join(words[: max(len(words) // 2, 1)]), False))
        if self.heard >= utterance.audio_bytes:
            await self._final(from_finalize=False)
        return False

    async def _final(self, *, from_finalize: bool, last: bool = False) -> None:
        script = self.server.script
        text = ""
        if script and self.heard:
            text = script.pop(0).text
        elif not (from_finalize or last):
            return
        await self._send(self._transcription(text, True, from_finalize=from_finalize, last=last))
        if text and self.vad:
            await self._send({"type": "speech_ended", "timestamp": round(self.audio_time, 3)})
        self.heard, self.interim_sent = 0, False

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_json(message | {"session_id": self.session_id})

    def _transcription(
        self, text: str, is_final: bool, *, from_finalize: bool = False, last: bool = False
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "transcription",
            "status": "success",
            "transcription": text,
            "transcript": text,
            "is_final": is_final,
            "is_last": last,
            "from_finalize": from_finalize,
            "language": self.conn.query.get("language"),
            "languages": [self.conn.query.get("language")],
        }
        if self.word_times:
            words = text.split()
            step = (self.audio_time - self.start) / max(len(words), 1)
            message["words"] = [
                {
                    "word": word,
                    "start": round(self.start + i * step, 3),
                    "end": round(self.start + (i + 1) * step, 3),
                    "confidence": 0.95,
                }
                for i, word in enumerate(words)
            ]
        return message
