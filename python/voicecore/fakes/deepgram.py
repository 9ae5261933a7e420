"""A fake Deepgram live STT server (``/v1/listen``) over a real WebSocket.

It "hears" scripted utterances as audio bytes arrive: ``SpeechStarted`` when one begins, an
interim ``Results`` halfway, a final one (``speech_final`` per the script) when its bytes are
in, then ``UtteranceEnd``. ``Finalize`` finalizes the utterance in progress with
``from_finalize``; ``CloseStream`` flushes, sends ``Metadata`` and closes 1000. Like the real
server it refuses a bad key (401 with ``dg-error``), refuses ``utterance_end_ms`` without
interim results (400), closes 1011 ``NET-0001`` after ``idle_timeout`` without client data,
and can be told to fail the first connection with a close code after some audio. The script
is shared by all connections: after a reconnect the caller's speech goes on where it was.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from voicecore.fakes.server import LocalServer


@dataclass
class Utterance:
    """What the caller says, and how many audio bytes it takes."""

    text: str
    audio_bytes: int = 1600
    speech_final: bool = True


@dataclass
class Connection:
    """What one client connection sent."""

    query: dict[str, str]
    headers: dict[str, str]
    audio: bytearray
    controls: list[dict[str, Any]]
    empty_frames: int = 0


class FakeDeepgram(LocalServer):
    """Serves ``/v1/listen`` with the scripted utterances.

    Args:
        utterances: What the caller says, in order (a str takes 1600 bytes of audio).
        api_key: The key clients must send as ``Authorization: Token`` (None: any).
        idle_timeout: Seconds without client data before it closes 1011 ``NET-0001``.
        close_after_bytes: Close the first connection after this much audio.
        close_with: The close code and reason for ``close_after_bytes``.
        final_delay: Seconds from an utterance's last audio (or ``Finalize``) to its final result.

    Attributes:
        connections: What each client connection sent (query, headers, audio, controls).
        control_received: Set whenever a control message arrives.
        request_id: The ``dg-request-id`` and ``request_id`` it reports.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance | str] = (),
        *,
        api_key: str | None = "dg-key",
        idle_timeout: float = 10.0,
        close_after_bytes: int | None = None,
        close_with: tuple[int, str] = (1011, "NET-0000"),
        final_delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.utterances = [Utterance(u) if isinstance(u, str) else u for u in utterances]
        self.script = list(self.utterances)  # what is left to hear, across connections
        self.api_key = api_key
        self.idle_timeout = idle_timeout
        self.close_after_bytes = close_after_bytes
        self.close_with = close_with
        self.final_delay = final_delay
        self.connections: list[Connection] = []
        self.control_received = asyncio.Event()
        self.closed = asyncio.Event()
        self.request_id = str(uuid.uuid4())
        self.app.router.add_get("/v1/listen", self._listen)

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        self.record_peer(request)
        headers = {"dg-request-id": self.request_id}
        if self.api_key is not None and request.headers.get("Authorization") != f"Token {self.api_key}":
            error = "Invalid credentials."
            body = {"err_code": "INVALID_AUTH", "err_msg": error, "request_id": self.request_id}
            return web.json_response(body, status=401, headers=headers | {"dg-error": error})
        query = dict(request.query)
        if "utterance_end_ms" in query and query.get("interim_results") != "true":
            error = "utterance_end_ms requires interim_results=true"
            return web.json_response(
                {"err_code": "Bad Request", "err_msg": error},
                status=400,
                headers=headers | {"dg-error": error},
            )
        if query.get("encoding") and not query.get("sample_rate"):
            return web.json_response({"err_msg": "sample_rate is required"}, status=400, headers=headers)
        ws = web.WebSocketResponse(autoping=True)
        ws.headers.update(headers)
        await ws.prepare(request)
        conn = Connection(query, dict(request.headers), bytearray(), [])
        self.connections.append(conn)
        try:
            await _Session(self, ws, conn).run()
        finally:
            self.closed.set()
        return ws


class _Session:
    def __init__(self, server: FakeDeepgram, ws: web.WebSocketResponse, conn: Connection) -> None:
        self.server, self.ws, self.conn = server, ws, conn
        self.script = server.script
        self.rate_bytes = int(conn.query.get("sample_rate", "8000")) * (
            2 if conn.query.get("encoding") == "linear16" else 1
        )
        self.heard = 0  # bytes of the current utterance heard so far
        self.audio_time = 0.0
        self.interim_sent = False
        self.interim = conn.query.get("interim_results") == "true"
        self.vad_events = conn.query.get("vad_events") == "true"
        self.utterance_end = "utterance_end_ms" in conn.query

    async def run(self) -> None:
        while True:
            try:
                message = await self.ws.receive(timeout=self.server.idle_timeout)
            except TimeoutError:
                await self.ws.close(code=1011, message=b"NET-0001")
                return
            if message.type == WSMsgType.BINARY:
                if not message.data:
                    self.conn.empty_frames += 1
                    await self._close_stream()
                    return
                await self._audio(message.data)
                limit = self.server.close_after_bytes
                first = self.conn is self.server.connections[0]
                if first and limit is not None and len(self.conn.audio) >= limit:
                    code, reason = self.server.close_with
                    await self.ws.close(code=code, message=reason.encode())
                    return
            elif message.type == WSMsgType.TEXT:
                control = json.loads(message.data)
                self.conn.controls.append(control)
                self.server.control_received.set()
                kind = control.get("type")
                if kind == "Finalize":
                    await self._final(from_finalize=True)
                elif kind == "CloseStream":
                    await self._close_stream()
                    return
                elif kind != "KeepAlive":
                    await self.ws.send_json(
                        {
                            "type": "Error",
                            "variant": "SchemaError",
                            "description": "unknown message",
                            "message": message.data,
                        }
                    )
            else:
                return

    async def _audio(self, data: bytes) -> None:
        self.conn.audio += data
        self.audio_time += len(data) / self.rate_bytes
        if not self.script:
            return
        utterance = self.script[0]
        if self.heard == 0 and self.vad_events:
            await self.ws.send_json(
                {"type": "SpeechStarted", "channel": [0, 1], "timestamp": round(self.audio_time, 3)}
            )
        self.heard += len(data)
        if self.interim and not self.interim_sent and self.heard * 2 >= utterance.audio_bytes:
            self.interim_sent = True
            words = utterance.text.split()
            await self.ws.send_json(
                self._results(" ".join(words[: max(len(words) // 2, 1)]), False, False, False)
            )
        if self.heard >= utterance.audio_bytes:
            await self._final(from_finalize=False)

    async def _final(self, *, from_finalize: bool) -> None:
        if not self.script or self.heard == 0:
            return
        utterance = self.script.pop(0)
        speech_final = utterance.speech_final and not from_finalize
        await asyncio.sleep(self.server.final_delay)
        await self.ws.send_json(self._results(utterance.text, True, speech_final, from_finalize))
        if self.utterance_end:
            await self.ws.send_json(
                {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(self.audio_time, 3)}
            )
        self.heard, self.interim_sent = 0, False

    async def _close_stream(self) -> None:
        await self._final(from_finalize=False)
        await self.ws.send_json(
            {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": self.server.request_id,
                "sha256": "0" * 64,
                "created": "2026-11-22T14:00:00.000Z",
                "duration": round(self.audio_time, 3),
                "channels": 1,
            }
        )
        await self.ws.close(code=1000)

    def _results(self, text: str, is_final: bool, speech_final: bool, from_finalize: bool) -> dict[str, Any]:
        words = text.split()
        start = max(self.audio_time - self.heard / self.rate_bytes, 0.0)
        step = (self.audio_time - start) / max(len(words), 1)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(self.audio_time - start, 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.98,
                        "words": [
                            {
                                "word": w.strip(".,?!").lower(),
                                "start": round(start + i * step, 3),
                                "end": round(start + (i + 1) * step, 3),
                                "confidence": 0.98,
                                "punctuated_word": w,
                            }
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": self.server.request_id,
                "model_uuid": str(uuid.UUID(int=1)),
                "model_info": {"name": "general-nova-3", "version": "2026-01-01", "arch": "nova-3"},
            },
        }
