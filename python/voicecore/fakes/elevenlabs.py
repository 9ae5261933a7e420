"""A fake ElevenLabs TTS WebSocket server.

``multi-stream-input``: contexts opened by a single-space message with settings, text
buffered per context and synthesized on ``flush`` (or once the first
``chunk_length_schedule`` threshold is buffered), audio sent as base64 in the socket's
``output_format`` with ``alignment`` / ``normalizedAlignment`` (``charDurationsMs``) and
``contextId``; ``close_context`` stops a context and answers ``isFinal``; ``close_socket``
finishes every context and closes 1000; more than five contexts is an error message and a
1008 close, as is a wrong ``xi-api-key``; ``{"text": ""}`` with or without a context is a
keep-alive; silence beyond ``inactivity_timeout`` closes the socket.

``stream-input`` (single context, for the official SDK): the same without context ids;
``{"text": ""}`` ends the input, and the server flushes, sends ``{"isFinal": true}`` and closes.

Audio is deterministic: each character becomes ``MS_PER_CHAR`` ms of one byte value (its code
point mod 251 + 1), so a test can tell which text a chunk spoke.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from voicecore.fakes.server import LocalServer

MS_PER_CHAR = 10
BYTES_PER_MS = {
    "ulaw_8000": 8,
    "alaw_8000": 8,
    "pcm_8000": 16,
    "pcm_16000": 32,
    "pcm_22050": 44.1,
    "pcm_24000": 48,
}
MAX_CONTEXTS = 5


def audio_for(text: str, output_format: str) -> bytes:
    """The audio the fake makes for ``text``: ``MS_PER_CHAR`` ms of one byte value per character."""
    per_char = int(MS_PER_CHAR * BYTES_PER_MS[output_format])
    return b"".join(bytes([ord(c) % 251 + 1]) * per_char for c in text)


@dataclass
class Connection:
    """What one client connection sent: its URL, headers, messages and contexts."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)  # context id -> its init message
    closed_contexts: list[str] = field(default_factory=list)
    keepalives: int = 0


class FakeElevenLabs(LocalServer):
    """Serves both TTS WebSocket endpoints for any voice id.

    Args:
        api_key: The ``xi-api-key`` clients must send (None: any).
        stall: Accept text but never answer with audio.
        chunk_chars: Characters of text per audio message.
        first_audio_delay: Seconds from a flush to the first audio of the flushed text.

    Attributes:
        connections: What each client connection sent.
        context_closed: Set when a ``close_context`` arrives.
        keepalive_received: Set when a keep-alive arrives.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "xi-key",
        stall: bool = False,
        chunk_chars: int = 4,
        first_audio_delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.first_audio_delay = first_audio_delay
        self.api_key = api_key
        self.stall = stall  # accept text but never answer with audio
        self.chunk_chars = chunk_chars  # characters of text per audio message
        self.connections: list[Connection] = []
        self.context_closed = asyncio.Event()
        self.keepalive_received = asyncio.Event()
        self.app.router.add_get("/v1/text-to-speech/{voice}/multi-stream-input", self._multi)
        self.app.router.add_get("/v1/text-to-speech/{voice}/stream-input", self._single)

    async def _open(self, request: web.Request) -> tuple[web.WebSocketResponse, Connection]:
        self.record_peer(request)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(request.path, dict(request.query), dict(request.headers))
        self.connections.append(conn)
        return ws, conn

    async def _refuse_bad_key(self, ws: web.WebSocketResponse, conn: Connection) -> bool:
        if self.api_key is None or conn.headers.get("xi-api-key") == self.api_key:
            return False
        await ws.send_json({"message": "Invalid API key", "error": "invalid_api_key", "code": 1008})
        await ws.close(code=1008, message=b"Invalid API key")
        return True

    async def _multi(self, request: web.Request) -> web.WebSocketResponse:
        ws, conn = await self._open(request)
        if await self._refuse_bad_key(ws, conn):
            return ws
        output_format = conn.query.get("output_format", "mp3_44100_128")
        timeout = float(conn.query.get("inactivity_timeout", "20"))
        buffers: dict[str, str] = {}
        while True:
            try:
                message = await ws.receive(timeout=timeout)
            except TimeoutError:
                await ws.send_json(
                    {"message": "Input timeout exceeded", "error": "input_timeout_exceeded", "code": 1008}
                )
                await ws.close(code=1008, message=b"input timeout exceeded")
                return ws
            if message.type != WSMsgType.TEXT:
                return ws
            data = json.loads(message.data)
            conn.messages.append(data)
            context_id = data.get("context_id")
            if data.get("close_socket"):
                for cid in list(buffers):
                    await self._synthesize(ws, buffers.pop(cid), output_format, cid)
                    await ws.send_json({"isFinal": True, "contextId": cid})
                await ws.close(code=1000)
                return ws
            if context_id is None:
                if data.get("text") == "":
                    conn.keepalives += 1
                    self.keepalive_received.set()
                continue
            if data.get("close_context"):
                buffers.pop(context_id, None)
                conn.closed_contexts.append(context_id)
                await ws.send_json({"isFinal": True, "contextId": context_id})
                self.context_closed.set()
                continue
            if context_id not in buffers:
                if data.get("text") != " ":
                    await ws.send_json(
                        {
                            "message": f"context {context_id} was not initialized",
                            "error": "invalid_message",
                            "code": 1008,
                        }
                    )
                    await ws.close(code=1008, message=b"invalid message")
                    return ws
                if len(buffers) >= MAX_CONTEXTS:
                    await ws.send_json(
                        {
                            "message": "Maximum simultaneous contexts per WebSocket connection exceeded (5).",
                            "error": "max_active_conversations",
                            "code": 1008,
                        }
                    )
                    await ws.close(code=1008, message=b"max_active_conversations")
                    return ws
                buffers[context_id] = ""
                conn.contexts[context_id] = data
                continue
            text = data.get("text", "")
            if text == "" and not data.get("flush"):
                conn.keepalives += 1
                self.keepalive_received.set()
                continue
            buffers[context_id] += text
            schedule = (conn.contexts[context_id].get("generation_config") or {}).get(
                "chunk_length_schedule"
            ) or [120]
            if data.get("flush") or len(buffers[context_id]) >= schedule[0]:
                await self._synthesize(ws, buffers[context_id], output_format, context_id)
                buffers[context_id] = ""

    async def _single(self, request: web.Request) -> web.WebSocketResponse:
        ws, conn = await self._open(request)
        if await self._refuse_bad_key(ws, conn):
            return ws
        output_format = conn.query.get("output_format", "mp3_44100_128")
        buffer = ""
        first = True
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            conn.messages.append(data)
            if first:
                first = False
                continue  # the init message (" ") carries settings only
            text = data.get("text", "")
            if text == "":
                await self._synthesize(ws, buffer, output_format, None)
                await ws.send_json({"isFinal": True})
                await ws.close(code=1000)
                break
            buffer += text
            if data.get("flush") or data.get("try_trigger_generation"):
                await self._synthesize(ws, buffer, output_format, None)
                buffer = ""
        return ws

    async def _synthesize(
        self, ws: web.WebSocketResponse, text: str, output_format: str, context_id: str | None
    ) -> None:
        if self.stall or not text.strip():
            return
        await asyncio.sleep(self.first_audio_delay)
        fmt = output_format if output_format in BYTES_PER_MS else "pcm_16000"
        for start in range(0, len(text), self.chunk_chars):
            piece = text[start : start + self.chunk_chars]
            alignment = {
                "chars": list(piece),
                "charStartTimesMs": [i * MS_PER_CHAR for i in range(len(piece))],
                "charDurationsMs": [MS_PER_CHAR] * len(piece),
            }
            message: dict[str, Any] = {
                "audio": base64.b64encode(audio_for(piece, fmt)).decode(),
                "isFinal": None,
                "normalizedAlignment": alignment,
                "alignment": alignment,
            }
            if context_id is not None:
                message["contextId"] = context_id
            await ws.send_json(message)
