"""A fake Smallest AI Lightning TTS WebSocket server (``/waves/v1/tts/live``).

The handshake needs ``Authorization: Bearer <key>`` (else HTTP 401 before the upgrade, as is
any status the test injects). Each JSON request (``voice_id`` and ``text`` required) is
synthesized in the order received (or all at once, with ``concurrent``): ``chunk`` messages
with base64 audio in ``data.audio``, ``word_timestamp`` messages (``data.id``/``word``/
``start``/``end``, seconds from the start of that request's audio) when asked for, then
``complete`` after ``complete_backoff_ms`` (4000 unless given). Every message carries
``session_id`` and ``request_id`` and echoes the client's ``session_id``/``request_id`` as
``external_session_id``/``external_request_id``. Errors are ``{"status": "error", "error":
{"message", "code"}}``. A connection silent for ``?timeout=`` seconds (60 by default) is
closed with the inactivity message. Closing the socket stops the work still queued on it.

Audio is deterministic: each character becomes ``MS_PER_CHAR`` ms of one byte value (its code
point mod 251 + 1).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from voicecore.fakes.server import LocalServer

MS_PER_CHAR = 10
RATES = (8000, 16000, 24000, 44100)
_BYTES_PER_SAMPLE = {"pcm": 2, "ulaw": 1, "alaw": 1}


def audio_for(text: str, output_format: str = "pcm", sample_rate: int = 44100) -> bytes:
    """The audio the fake makes for ``text``: ``MS_PER_CHAR`` ms of one byte value per character."""
    per_char = int(MS_PER_CHAR * _BYTES_PER_SAMPLE[output_format] * sample_rate / 1000)
    return b"".join(bytes([ord(c) % 251 + 1]) * per_char for c in text)


def error_payload(message: str, code: str = "400", *, nested: bool = True) -> dict[str, Any]:
    """An error message, ``{"error": {"message", "code"}}`` or with ``message`` at the top."""
    if nested:
        return {"status": "error", "error": {"message": message, "code": code}}
    return {"status": "error", "message": message}


@dataclass
class Connection:
    """What one client connection sent, and what the server left undone when it closed."""

    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # external request ids answered with complete
    abandoned: int = 0  # requests not complete when the socket closed
    pending: int = 0  # requests received and not yet complete
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeSmallestTTS(LocalServer):
    """Serves Lightning's TTS WebSocket.

    Args:
        api_key: The Bearer key clients must send (None: any).
        handshake_status: Refuse every handshake with this HTTP status.
        chunk_chars: Characters of text per audio chunk.
        first_audio_delay: Seconds before each request's first chunk.
        chunk_delay: Seconds between chunks.
        stall: Accept requests but never answer.
        error: Answer the first request with this error message (see :func:`error_payload`).
        disconnect_after: Close the socket (1011) after this many chunks.
        echo_request_id: Echo ``external_request_id`` (False: a server that does not).
        concurrent: Synthesize a connection's requests at once rather than in order, so a
            short request can finish before a long one sent earlier.

    Attributes:
        connections: What each client connection sent.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "smallest-key",
        handshake_status: int | None = None,
        chunk_chars: int = 4,
        first_audio_delay: float = 0.0,
        chunk_delay: float = 0.0,
        stall: bool = False,
        error: dict[str, Any] | None = None,
        disconnect_after: int | None = None,
        echo_request_id: bool = True,
        concurrent: bool = False,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.handshake_status = handshake_status
        self.chunk_chars = chunk_chars
        self.first_audio_delay = first_audio_delay
        self.chunk_delay = chunk_delay
        self.stall = stall
        self.error = error
        self.disconnect_after = disconnect_after
        self.echo_request_id = echo_request_id
        self.concurrent = concurrent
        self.connections: list[Connection] = []
        self._chunks_sent = 0
        self.app.router.add_get("/waves/v1/tts/live", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.record_peer(request)
        if self.handshake_status is not None:
            return web.json_response({"message": "refused by the test"}, status=self.handshake_status)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(dict(request.query), dict(request.headers))
        self.connections.append(conn)
        timeout = float(request.query.get("timeout", "60"))
        session = f"ws_{uuid.uuid4().hex[:8]}"
        work: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[Any]] = {loop.create_task(self._work(ws, conn, session, work))}
        try:
            while True:
                try:
                    message = await ws.receive(timeout=timeout)
                except TimeoutError:
                    await ws.send_json(
                        error_payload(
                            f"Connection timed out after {timeout:g} seconds of inactivity", nested=False
                        )
                    )
                    await ws.close()
                    break
                if message.type != WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                conn.messages.append(data)
                conn.pending += 1
                if self.concurrent:
                    tasks.add(loop.create_task(self._answer(ws, conn, session, data)))
                else:
                    work.put_nowait(data)
        finally:
            for task in tasks:
                task.cancel()
            conn.abandoned = conn.pending
            conn.closed.set()
        return ws

    async def _work(
        self, ws: web.WebSocketResponse, conn: Connection, session: str, work: asyncio.Queue[dict[str, Any]]
    ) -> None:
        """Synthesize requests one after another, as the server does on one connection."""
        while await self._answer(ws, conn, session, await work.get()):
            pass

    async def _answer(
        self, ws: web.WebSocketResponse, conn: Connection, session: str, data: dict[str, Any]
    ) -> bool:
        """Answer one request; False once the socket is closed."""
        ids = {"session_id": session, "request_id": f"task_{uuid.uuid4().hex[:8]}"}
        if self.echo_request_id and "request_id" in data:
            ids["external_request_id"] = data["request_id"]
        if "session_id" in data:
            ids["external_session_id"] = data["session_id"]
        if not await self._synthesize(ws, data, ids):
            return False
        if data.get("request_id"):
            conn.completed.append(str(data["request_id"]))
        conn.pending -= 1
        return True

    async def _synthesize(self, ws: web.WebSocketResponse, data: dict[str, Any], ids: dict[str, str]) -> bool:
        """Send one request's audio, word times and ``complete``; False once the socket is closed."""
        if self.stall:
            await asyncio.Event().wait()  # a hung server: never answers, until the socket closes
        problem = self._invalid(data)
        failure = error_payload(problem) if problem is not None else self.error
        if failure is not None:
            self.error = None  # an injected error answers one request
            await ws.send_json({**ids, **failure})
            return True
        text = str(data["text"])
        fmt = str(data.get("output_format", "pcm"))
        rate = int(data.get("sample_rate", 44100))
        spoken = text if text.strip() else ""  # a lone space (a keep-alive) makes no audio
        if spoken and self.first_audio_delay:
            await asyncio.sleep(self.first_audio_delay)
        for start in range(0, len(spoken), self.chunk_chars):
            piece = text[start : start + self.chunk_chars]
            audio = base64.b64encode(audio_for(piece, fmt, rate)).decode()
            await ws.send_json({**ids, "status": "chunk", "data": {"audio": audio}})
            self._chunks_sent += 1
            if self.disconnect_after is not None and self._chunks_sent >= self.disconnect_after:
                await ws.close(code=1011, message=b"internal error")
                return False
            if data.get("word_timestamps"):
                for index, word, begin, end in _words_ending(text, start, start + len(piece)):
                    timing = {"id": index, "word": word, "start": begin, "end": end}
                    await ws.send_json({**ids, "status": "word_timestamp", "data": timing})
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        await asyncio.sleep(float(data.get("complete_backoff_ms", 4000)) / 1000)
        await ws.send_json({**ids, "status": "complete", "data": {}})
        return True

    @staticmethod
    def _invalid(data: dict[str, Any]) -> str | None:
        missing = [name for name in ("voice_id", "text") if not isinstance(data.get(name), str)]
        if missing:
            return f"{' and '.join(missing)} is required"
        if data.get("sample_rate", 44100) not in RATES:
            return f"sample_rate must be one of {RATES}"
        if data.get("output_format", "pcm") not in _BYTES_PER_SAMPLE:  # the fake makes raw audio only
            return "unsupported output_format"
        return None


def _words_ending(text: str, start: int, end: int) -> list[tuple[int, str, float, float]]:
    """Words whose last character lies in ``[start, end)``: index, word, start and end seconds."""
    words: list[tuple[int, str, float, float]] = []
    position = 0
    for index, word in enumerate(text.split()):
        first = text.index(word, position)
        position = first + len(word)
        if start <= position - 1 < end:
            words.append((index, word, first * MS_PER_CHAR / 1000, position * MS_PER_CHAR / 1000))
    return words
