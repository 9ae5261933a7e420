"""A fake Deepgram live STT server (``/v1/listen`` and Flux ``/v2/listen``) over a real WebSocket.

It "hears" scripted utterances as audio bytes arrive: ``SpeechStarted`` when one begins, an
interim ``Results`` halfway, a final one (``speech_final`` per the script) when its bytes are
in, then ``UtteranceEnd``. ``Finalize`` finalizes the utterance in progress with
``from_finalize``; ``CloseStream`` flushes, sends ``Metadata`` and closes 1000. Like the real
server it refuses a bad key (401 with ``dg-error``), refuses ``utterance_end_ms`` without
interim results (400), closes 1011 ``NET-0001`` after ``idle_timeout`` without client data,
and can be told to fail the first connection with a close code after some audio. The script
is shared by all connections: after a reconnect the caller's speech goes on where it was.

On ``/v2/listen`` (Flux) the same script is heard as turns: ``Connected``, then ``TurnInfo``
``StartOfTurn`` at a turn's first audio, ``Update`` every 0.25 s of audio (words in proportion to
the turn's audio heard), and at its end ``EndOfTurn`` (after an ``EagerEndOfTurn`` with the same
transcript, ``eot_delay`` earlier, when the URL sets ``eager_eot_threshold`` and the utterance is
``eager``); an utterance that ``resumes`` gets an ``EagerEndOfTurn`` halfway and a ``TurnResumed``
on the next audio. ``Configure`` is answered ``ConfigureSuccess`` or ``ConfigureFailure`` (a
threshold out of range), ``CloseStream`` by a close without status code, an unknown message by a
fatal ``Error``; ``error_code`` makes the ``close_after_bytes`` fault a fatal ``Error`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from voicecore.fakes.server import LocalServer


@dataclass
class Utterance:
    """What the caller says, and how many audio bytes it takes."""

    text: str
    audio_bytes: int = 1600
    speech_final: bool = True
    eager: bool = True
    """Flux: an ``EagerEndOfTurn`` precedes the ``EndOfTurn`` (if the URL enables eager events)."""
    resumes: bool = False
    """Flux: an ``EagerEndOfTurn`` halfway, then ``TurnResumed``: the caller went on."""


@dataclass
class Connection:
    """What one client connection sent."""

    query: dict[str, str]
    headers: dict[str, str]
    audio: bytearray
    controls: list[dict[str, Any]]
    empty_frames: int = 0
    keyterms: list[str] = field(default_factory=list)


class FakeDeepgram(LocalServer):
    """Serves ``/v1/listen`` with the scripted utterances.

    Args:
        utterances: What the caller says, in order (a str takes 1600 bytes of audio).
        api_key: The key clients must send as ``Authorization: Token`` (None: any).
        idle_timeout: Seconds without client data before it closes 1011 ``NET-0001``.
        close_after_bytes: Close the first connection after this much audio.
        close_with: The close code and reason for ``close_after_bytes``.
        final_delay: Seconds from an utterance's last audio (or ``Finalize``) to its final result.
        error_code: Flux: send a fatal ``Error`` with this code before the ``close_after_bytes`` close.
        stall_after_bytes: ``/v1``: after this much audio the first connection stays open but
            answers nothing more (a stalled server).
        eot_delay: Flux: seconds between an ``EagerEndOfTurn`` and its ``EndOfTurn``.

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
        error_code: str | None = None,
        eot_delay: float = 0.0,
        stall_after_bytes: int | None = None,
    ) -> None:
        super().__init__()
        self.utterances = [Utterance(u) if isinstance(u, str) else u for u in utterances]
        self.script = list(self.utterances)  # what is left to hear, across connections
        self.api_key = api_key
        self.idle_timeout = idle_timeout
        self.close_after_bytes = close_after_bytes
        self.close_with = close_with
        self.final_delay = final_delay
        self.error_code = error_code
        self.stall_after_bytes = stall_after_bytes
        self.eot_delay = eot_delay
        self.connections: list[Connection] = []
        self.control_received = asyncio.Event()
        self.closed = asyncio.Event()
        self.request_id = str(uuid.uuid4())
        self.app.router.add_get("/v1/listen", self._listen)
        self.app.router.add_get("/v2/listen", self._flux)

    def _refuse(self, request: web.Request) -> web.Response | None:
        """The 401 a bad key gets, or None."""
        self.record_peer(request)
        if self.api_key is not None and request.headers.get("Authorization") != f"Token {self.api_key}":
            error = "Invalid credentials."
            body = {"err_code": "INVALID_AUTH", "err_msg": error, "request_id": self.request_id}
            headers = {"dg-request-id": self.request_id, "dg-error": error}
            return web.json_response(body, status=401, headers=headers)
        return None

    async def _flux(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        headers = {"dg-request-id": self.request_id}
        problem = _flux_query_problem(request)
        if problem is not None:
            body = {"err_code": "Bad Request", "err_msg": problem}
            return web.json_response(body, status=400, headers=headers | {"dg-error": problem})
        ws = web.WebSocketResponse(autoping=True)
        ws.headers.update(headers)
        await ws.prepare(request)
        conn = Connection(dict(request.query), dict(request.headers), bytearray(), [])
        conn.keyterms = request.query.getall("keyterm", [])
        self.connections.append(conn)
        try:
            await _FluxSession(self, ws, conn).run()
        finally:
            self.closed.set()
        return ws

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        headers = {"dg-request-id": self.request_id}
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
                if self.stalled:
                    continue
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

    @property
    def stalled(self) -> bool:
        """The ``stall_after_bytes`` fault: the first connection has gone quiet."""
        limit = self.server.stall_after_bytes
        return limit is not None and self.conn is self.server.connections[0] and len(self.conn.audio) >= limit

    async def _audio(self, data: bytes) -> None:
        self.conn.audio += data
        self.audio_time += len(data) / self.rate_bytes
        if not self.script or self.stalled:
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


_FLUX_RANGES = {"eot_threshold": (0.5, 0.9), "eager_eot_threshold": (0.3, 0.9)}
_FLUX_ENCODINGS = ("linear16", "linear32", "mulaw", "alaw", "opus", "ogg-opus")


def _flux_query_problem(request: web.Request) -> str | None:
    """Why Flux would refuse the handshake's query (400), or None."""
    query = request.query
    if not query.get("model", "").startswith("flux-"):
        return "model must be a Flux model (flux-general-en, flux-general-multi)"
    if query.get("encoding") not in (None, *_FLUX_ENCODINGS):
        return f"unsupported encoding {query.get('encoding')}"
    if query.get("encoding") and not query.get("sample_rate"):
        return "sample_rate is required"
    return _thresholds_problem({k: query[k] for k in (*_FLUX_RANGES, "eot_timeout_ms") if k in query})


def _thresholds_problem(thresholds: dict[str, Any]) -> str | None:
    for name, value in thresholds.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"{name} must be a number"
        low, high = _FLUX_RANGES.get(name, (1, float("inf")))
        if not low <= number <= high:
            return f"{name} must be between {low} and {high}"
    return None


class _FluxSession:
    """One ``/v2/listen`` connection: the script heard as Flux turns."""

    def __init__(self, server: FakeDeepgram, ws: web.WebSocketResponse, conn: Connection) -> None:
        self.server, self.ws, self.conn = server, ws, conn
        self.script = server.script
        query = conn.query
        self.rate_bytes = int(query.get("sample_rate", "16000")) * (
            2 if query.get("encoding", "linear16") == "linear16" else 1
        )
        self.update_bytes = max(self.rate_bytes // 4, 1)  # an Update every 0.25 s of audio
        self.thresholds: dict[str, Any] = {
            "eot_threshold": float(query.get("eot_threshold", 0.7)),
            "eot_timeout_ms": int(query.get("eot_timeout_ms", 5000)),
        }
        if "eager_eot_threshold" in query:
            self.thresholds["eager_eot_threshold"] = float(query["eager_eot_threshold"])
        self.keyterms = list(conn.keyterms)
        self.sequence = 0
        self.turn_index = 0
        self.heard = 0  # bytes of the current turn heard
        self.turn_start = 0.0
        self.audio_time = 0.0
        self.since_update = 0
        self.resumed = False  # the resuming turn's early EagerEndOfTurn was sent
        self.resume_due = False

    @property
    def eager(self) -> bool:
        return "eager_eot_threshold" in self.thresholds

    async def send(self, message: dict[str, Any]) -> None:
        message["sequence_id"] = self.sequence
        self.sequence += 1
        await self.ws.send_json(message)

    async def run(self) -> None:
        await self.send({"type": "Connected", "request_id": self.server.request_id})
        while True:
            try:
                message = await self.ws.receive(timeout=self.server.idle_timeout)
            except TimeoutError:
                await self.ws.close(code=1011, message=b"NET-0001")
                return
            if message.type == WSMsgType.BINARY:
                if await self._audio(message.data):
                    return
            elif message.type == WSMsgType.TEXT:
                control = json.loads(message.data)
                self.conn.controls.append(control)
                self.server.control_received.set()
                kind = control.get("type")
                if kind == "CloseStream":
                    await self._close_without_status()
                    return
                if kind != "Configure":
                    await self.send(
                        {"type": "Error", "code": "INVALID_MESSAGE", "description": f"unknown message {kind}"}
                    )
                    await self.ws.close(code=1008, message=b"INVALID_MESSAGE")
                    return
                await self._configure(control)
            else:
                return

    async def _audio(self, data: bytes) -> bool:
        """Hear ``data``; True if the fault closed the connection."""
        self.conn.audio += data
        self.audio_time += len(data) / self.rate_bytes
        self.since_update += len(data)
        server = self.server
        limit = server.close_after_bytes
        if self.conn is server.connections[0] and limit is not None and len(self.conn.audio) >= limit:
            if server.error_code is not None:
                description = "the fake failed on purpose"
                await self.send({"type": "Error", "code": server.error_code, "description": description})
            code, reason = server.close_with
            await self.ws.close(code=code, message=reason.encode())
            return True
        if not self.script:
            await self._update_if_due("")
            return False
        utterance = self.script[0]
        first = self.heard == 0
        if first:
            self.turn_start = self.audio_time - len(data) / self.rate_bytes
            self.since_update = 0
        self.heard += len(data)
        text = self._words(utterance)
        if first:
            await self._turn_info("StartOfTurn", text)
        elif self.resume_due:
            self.resume_due = False
            await self._turn_info("TurnResumed", text)
        if self.heard >= utterance.audio_bytes:
            self.script.pop(0)
            if self.eager and utterance.eager:
                await self._turn_info("EagerEndOfTurn", utterance.text)
                if server.eot_delay:
                    await asyncio.sleep(server.eot_delay)
            await self._turn_info("EndOfTurn", utterance.text)
            self.turn_index += 1
            self.heard, self.resumed, self.resume_due, self.since_update = 0, False, False, 0
        elif (
            utterance.resumes and self.eager and not self.resumed and self.heard * 2 >= utterance.audio_bytes
        ):
            self.resumed = self.resume_due = True
            await self._turn_info("EagerEndOfTurn", text)
        elif not first:
            await self._update_if_due(text)
        return False

    def _words(self, utterance: Utterance) -> str:
        words = utterance.text.split()
        heard = max(len(words) * min(self.heard, utterance.audio_bytes) // utterance.audio_bytes, 1)
        return " ".join(words[:heard])

    async def _update_if_due(self, text: str) -> None:
        if self.since_update >= self.update_bytes:
            self.since_update = 0
            await self._turn_info("Update", text)

    async def _turn_info(self, event: str, text: str) -> None:
        words = text.split()
        message: dict[str, Any] = {
            "type": "TurnInfo",
            "request_id": self.server.request_id,
            "event": event,
            "turn_index": self.turn_index,
            "audio_window_start": round(self.turn_start if words else self.audio_time, 3),
            "audio_window_end": round(self.audio_time, 3),
            "transcript": text,
            "words": [{"word": w, "confidence": 0.97} for w in words],
            "end_of_turn_confidence": {"EndOfTurn": 0.92, "EagerEndOfTurn": 0.6}.get(event, 0.05),
        }
        if event == "EndOfTurn":
            message["trigger"] = "model"
        await self.send(message)

    async def _configure(self, control: dict[str, Any]) -> None:
        thresholds = control.get("thresholds") or {}
        problem = _thresholds_problem(thresholds)
        if problem is not None:
            await self.send(
                {
                    "type": "ConfigureFailure",
                    "request_id": self.server.request_id,
                    "code": "INVALID_THRESHOLDS",
                    "description": problem,
                }
            )
            return
        self.thresholds.update(thresholds)
        if "keyterms" in control:
            self.keyterms = list(control["keyterms"])
        await self.send(
            {
                "type": "ConfigureSuccess",
                "request_id": self.server.request_id,
                "thresholds": dict(self.thresholds),
                "keyterms": self.keyterms,
            }
        )

    async def _close_without_status(self) -> None:
        """Flux ends a ``CloseStream`` with a close frame that carries no status code."""
        await self.ws.send_frame(b"", WSMsgType.CLOSE)
        with contextlib.suppress(TimeoutError):
            while (await self.ws.receive(timeout=2.0)).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED):
                pass
