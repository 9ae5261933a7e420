"""A fake Cartesia TTS WebSocket server (``/tts/websocket``).

The handshake needs ``Cartesia-Version`` (header, or ``cartesia_version`` in the query) and
the key as ``Authorization: Bearer``, ``X-API-Key`` or ``access_token``/``api_key`` in the query;
otherwise it is refused with HTTP 400/401 before the upgrade, as is any status the test
injects. Generation requests open a context on first use; every later request of the context
must carry the same fields (except ``transcript``, ``continue`` and ``flush``). Transcripts
are buffered and generated on ``flush`` (each flush numbered from 1: its ``chunk`` and
``timestamps`` messages carry the ``flush_id``, then ``flush_done``) or on ``continue: false``
(generate what is left, then ``done``). ``cancel`` stops a context, though ``late_chunks``
already in flight are still sent, as on the real server. A request for a finished context is
an error message.

Audio is deterministic: each character becomes ``MS_PER_CHAR`` ms of one byte value (its code
point mod 251 + 1); word ``end`` times (seconds) count from the context's first audio.
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
_BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4, "pcm_mulaw": 1, "pcm_alaw": 1}
_FIXED_EXCEPT = frozenset({"transcript", "continue", "flush", "duration"})


def bytes_per_ms(output_format: dict[str, Any]) -> float:
    """Bytes of audio per millisecond in a raw ``output_format``."""
    return float(_BYTES_PER_SAMPLE[output_format["encoding"]] * output_format["sample_rate"] / 1000)


def audio_for(text: str, output_format: dict[str, Any]) -> bytes:
    """The audio the fake makes for ``text``: ``MS_PER_CHAR`` ms of one byte value per character."""
    per_char = int(MS_PER_CHAR * bytes_per_ms(output_format))
    return b"".join(bytes([ord(c) % 251 + 1]) * per_char for c in text)


def error_message(
    status: int,
    message: str,
    *,
    title: str = "Invalid request",
    context_id: str | None = None,
    old: bool = False,
) -> dict[str, Any]:
    """An ``error`` message in the current shape (``title``/``message``) or the older one (``error``)."""
    body: dict[str, Any] = {"type": "error", "done": True, "status_code": status}
    if context_id is not None:
        body["context_id"] = context_id
    if old:
        body["error"] = message
    else:
        body |= {
            "title": title,
            "message": message,
            "error_code": "invalid_request",
            "request_id": "req-fake",
        }
    return body


@dataclass
class Connection:
    """What one client connection sent."""

    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)  # context id -> its first request
    cancelled: list[str] = field(default_factory=list)


@dataclass
class _Context:
    first: dict[str, Any]
    buffer: str = ""
    flushes: int = 0
    chars: int = 0  # characters spoken so far (for timestamps)
    cancelled: bool = False
    finished: bool = False
    work: asyncio.Queue[tuple[str, int | None, bool]] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None


class FakeCartesia(LocalServer):
    """Serves Cartesia's TTS WebSocket.

    Args:
        api_key: The key clients must send (None: any).
        handshake_status: Refuse every handshake with this HTTP status.
        chunk_chars: Characters of text per audio chunk.
        first_audio_delay: Seconds before a context's first chunk.
        chunk_delay: Seconds between chunks.
        late_chunks: Chunks still sent after a ``cancel``.
        stall: Accept text but never answer.
        error: Answer the next context's first flush with this ``error`` message (see
            :func:`error_message`).
        disconnect_after: Close the socket (1011) after this many chunks.

    Attributes:
        connections: What each client connection sent.
        cancelled: Set when a ``cancel`` arrives.
        sent_after_cancel: Chunks sent for contexts already cancelled.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "cartesia-key",
        handshake_status: int | None = None,
        chunk_chars: int = 4,
        first_audio_delay: float = 0.0,
        chunk_delay: float = 0.0,
        late_chunks: int = 0,
        stall: bool = False,
        error: dict[str, Any] | None = None,
        disconnect_after: int | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.handshake_status = handshake_status
        self.chunk_chars = chunk_chars
        self.first_audio_delay = first_audio_delay
        self.chunk_delay = chunk_delay
        self.late_chunks = late_chunks
        self.stall = stall
        self.error = error
        self.disconnect_after = disconnect_after
        self.connections: list[Connection] = []
        self.cancelled = asyncio.Event()
        self.sent_after_cancel = 0
        self._chunks_sent = 0
        self.app.router.add_get("/tts/websocket", self._handle)

    def _refusal(self, request: web.Request) -> web.Response | None:
        if self.handshake_status is not None:
            return web.json_response({"error": "refused by the test"}, status=self.handshake_status)
        if not (request.headers.get("Cartesia-Version") or request.query.get("cartesia_version")):
            return web.json_response({"error": "Cartesia-Version header is required"}, status=400)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        keys = {
            bearer,
            request.headers.get("X-API-Key"),
            request.query.get("access_token"),
            request.query.get("api_key"),
        }
        if self.api_key is not None and self.api_key not in keys:
            return web.json_response({"error": "Invalid API key"}, status=401)
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.record_peer(request)
        if (refusal := self._refusal(request)) is not None:
            return refusal
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(dict(request.query), dict(request.headers))
        self.connections.append(conn)
        contexts: dict[str, _Context] = {}
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                conn.messages.append(data)
                await self._on_message(ws, conn, contexts, data)
        finally:
            for context in contexts.values():
                if context.worker is not None:
                    context.worker.cancel()
        return ws

    async def _on_message(
        self, ws: web.WebSocketResponse, conn: Connection, contexts: dict[str, _Context], data: dict[str, Any]
    ) -> None:
        context_id = data.get("context_id")
        if data.get("cancel"):
            if (context := contexts.get(str(context_id))) is not None:
                context.cancelled = True
            conn.cancelled.append(str(context_id))
            self.cancelled.set()
            return
        missing = [name for name in ("model_id", "transcript", "voice", "output_format") if name not in data]
        if missing or not isinstance(context_id, str):
            await ws.send_json(error_message(400, f"missing field(s): {', '.join(missing) or 'context_id'}"))
            return
        context = contexts.get(context_id)
        if context is None:
            context = contexts[context_id] = _Context(data)
            conn.contexts[context_id] = data
            context.worker = asyncio.get_running_loop().create_task(self._work(ws, context_id, context))
        elif context.finished or context.cancelled:
            await ws.send_json(error_message(400, "context has finished", context_id=context_id))
            return
        elif _fixed(data) != _fixed(context.first):
            await ws.send_json(error_message(400, "fields changed within a context", context_id=context_id))
            return
        context.buffer += data["transcript"]
        last = not data.get("continue", False)
        if data.get("flush") or last:
            flush_id = None
            if data.get("flush"):
                context.flushes += 1
                flush_id = context.flushes
            text, context.buffer = context.buffer, ""
            context.finished = last
            context.work.put_nowait((text, flush_id, last))

    async def _work(self, ws: web.WebSocketResponse, context_id: str, context: _Context) -> None:
        """Generate a context's flushes in order, as the server would."""
        first = True
        while True:
            text, flush_id, last = await context.work.get()
            if self.stall or context.cancelled:
                continue
            if self.error is not None:
                error, self.error = self.error, None  # an injected error answers one context
                await ws.send_json({**error, "context_id": context_id})
                return
            if first and self.first_audio_delay:
                await asyncio.sleep(self.first_audio_delay)
            first = False
            if not await self._speak(ws, context_id, context, text, flush_id):
                return
            tag = {} if flush_id is None else {"flush_id": flush_id}
            if flush_id is not None:
                await ws.send_json(
                    {
                        "type": "flush_done",
                        "context_id": context_id,
                        "done": False,
                        "flush_done": True,
                        "status_code": 206,
                    }
                    | tag
                )
            if last:
                await ws.send_json(
                    {"type": "done", "context_id": context_id, "done": True, "status_code": 200}
                )
                return

    async def _speak(
        self, ws: web.WebSocketResponse, context_id: str, context: _Context, text: str, flush_id: int | None
    ) -> bool:
        """Send ``text``'s chunks and word times; False once the socket is closed or the context cancelled."""
        fmt = context.first["output_format"]
        tag = {} if flush_id is None else {"flush_id": flush_id}
        late = self.late_chunks
        for start in range(0, len(text), self.chunk_chars):
            if context.cancelled:
                if late <= 0:
                    return False
                late -= 1
                self.sent_after_cancel += 1
            piece = text[start : start + self.chunk_chars]
            chunk = {
                "type": "chunk",
                "context_id": context_id,
                "data": base64.b64encode(audio_for(piece, fmt)).decode(),
                "done": False,
                "status_code": 206,
                "step_time": 1.0,
            }
            await ws.send_json(chunk | tag)
            self._chunks_sent += 1
            if self.disconnect_after is not None and self._chunks_sent >= self.disconnect_after:
                await ws.close(code=1011, message=b"internal error")
                return False
            words = _words_ending(text, start, start + len(piece), context.chars)
            if words and context.first.get("add_timestamps"):
                await ws.send_json(
                    {
                        "type": "timestamps",
                        "context_id": context_id,
                        "done": False,
                        "status_code": 206,
                        "word_timestamps": {
                            "words": [w for w, _, _ in words],
                            "start": [s for _, s, _ in words],
                            "end": [e for _, _, e in words],
                        },
                    }
                    | tag
                )
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        context.chars += len(text)
        return not context.cancelled


def _fixed(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in _FIXED_EXCEPT}


def _words_ending(text: str, start: int, end: int, offset: int) -> list[tuple[str, float, float]]:
    """Words of ``text`` whose last character lies in ``[start, end)``, with start/end seconds."""
    words: list[tuple[str, float, float]] = []
    position = 0
    for word in text.split():
        first = text.index(word, position)
        position = first + len(word)
        if start <= position - 1 < end:
            words.append(
                (word, (offset + first) * MS_PER_CHAR / 1000, (offset + position) * MS_PER_CHAR / 1000)
            )
    return words
