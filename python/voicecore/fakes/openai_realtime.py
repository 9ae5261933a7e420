"""A fake OpenAI Realtime API server (GA protocol, ``/v1/realtime``) over a real WebSocket.

It speaks the GA event names and shapes of the ``openai`` SDK's ``types/realtime``: it opens
with ``session.created``, deep-merges ``session.update`` (refusing a session type other than
``realtime`` and audio formats other than ``audio/pcm`` at 24 kHz, ``audio/pcmu`` and
``audio/pcma``), and "hears" a script of utterances (:class:`Heard`) as appended audio arrives,
the way server VAD would: ``input_audio_buffer.speech_started`` after an utterance's leading
silence, then ``speech_stopped``, ``committed``, the user item and (if transcription is on) its
transcript. Each response (made by VAD or by ``response.create``) takes the next
:class:`RealtimeReply`: function calls first, then an assistant message spoken as a 440 Hz tone
(in the session's output format) in ``chunk_ms`` chunks, each preceded by its share of the
transcript. A response is cancelled by barge-in (``turn_detected``) or ``response.cancel``
(``client_cancelled``); ``conversation.item.truncate`` cuts an assistant item's transcript in
proportion to the audio heard. Every refused client event gets an ``error`` event naming the
client's ``event_id`` and the socket stays open. The script is shared by all connections: after
a reconnect the conversation goes on where it was; ``drop_after_responses`` closes the first
connection 1011 right after its N-th ``response.done``.
"""

from __future__ import annotations

import array
import asyncio
import base64
import binascii
import contextlib
import copy
import json
import math
import re
import sys
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aiohttp import WSMsgType, web

from voicecore.audio import alaw_encode, ulaw_encode
from voicecore.fakes.server import LocalServer

__all__ = ["FakeRealtime", "Heard", "RealtimeConnection", "RealtimeReply"]

#: Sample rate and bytes per sample of each GA audio format.
FORMATS: dict[str, tuple[int, int]] = {
    "audio/pcm": (24000, 2),
    "audio/pcmu": (8000, 1),
    "audio/pcma": (8000, 1),
}
TONE_HZ = 440
TONE_PEAK = round(32767 * 10 ** (-12 / 20))  # about -12 dBFS
MS_PER_AUDIO_TOKEN = 50
MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # a 15 MiB append, base64-encoded, fits
_EPSILON = 1e-6


@dataclass
class Heard:
    """What the caller says: heard once ``audio_ms`` of appended audio has arrived.

    The utterance starts after ``gap_ms`` more of silence (its ``speech_started`` comes then).
    """

    text: str
    audio_ms: int = 600
    gap_ms: int = 0


@dataclass
class RealtimeReply:
    """One response the model gives.

    Each response, whether created by server VAD or by ``response.create``, takes the next one;
    the last one repeats when the script runs out; an empty script answers "OK.".
    """

    text: str = ""
    """The spoken reply (its transcript); its audio is synthesized."""
    tool_calls: Sequence[tuple[str, str]] = ()
    """``(name, arguments JSON)``: function_call items, output before any text."""
    first_audio_delay: float = 0.0
    """Seconds before the first audio delta."""
    chunk_delay: float = 0.0
    """Seconds between audio chunks."""
    fail: bool = False
    """``response.done`` with status ``failed`` (``server_error``), no output."""


@dataclass
class RealtimeConnection:
    """What one client connection sent, and the conversation state the fake keeps for it."""

    query: dict[str, str]
    headers: dict[str, str]
    received: list[dict[str, Any]] = field(default_factory=list)
    """Every client event, parsed (malformed frames excepted)."""
    session: dict[str, Any] = field(default_factory=dict)
    """The current session configuration."""
    audio: bytearray = field(default_factory=bytearray)
    """All appended audio, decoded."""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The conversation's items by id, in conversation order."""
    truncations: list[dict[str, Any]] = field(default_factory=list)
    """The accepted ``conversation.item.truncate`` events."""
    responses: list[dict[str, Any]] = field(default_factory=list)
    """The ``response`` of every ``response.done`` sent."""

    def events(self, type: str) -> list[dict[str, Any]]:
        """The received client events of ``type``."""
        return [event for event in self.received if event.get("type") == type]


class FakeRealtime(LocalServer):
    """Serves ``/v1/realtime`` with the scripted utterances and replies.

    Args:
        heard: What the caller says, in order (a str: 600 ms of speech, no leading silence).
        replies: One per response, in order (a str: spoken text); the last one repeats.
        api_key: The key clients must send as ``Authorization: Bearer`` (None: any).
        ms_per_character: Milliseconds of reply audio per character of reply text.
        chunk_ms: Milliseconds of audio per ``response.output_audio.delta``.
        transcription_delay: Seconds from a commit to its input transcription.
        drop_after_responses: Close the first connection 1011 right after its N-th ``response.done``.

    Attributes:
        connections: What each client connection sent, and its conversation.
        connected: Set on each new connection.
        closed: Set whenever a connection ends.
    """

    def __init__(
        self,
        heard: Sequence[Heard | str] = (),
        replies: Sequence[RealtimeReply | str] = (),
        *,
        api_key: str | None = "sk-test",
        ms_per_character: float = 10.0,
        chunk_ms: int = 100,
        transcription_delay: float = 0.0,
        drop_after_responses: int | None = None,
    ) -> None:
        super().__init__()
        self.heard = [Heard(h) if isinstance(h, str) else h for h in heard]
        self.script = list(self.heard)  # what is left to hear, across connections
        self.replies = [RealtimeReply(r) if isinstance(r, str) else r for r in replies]
        self.replies_given = 0
        self.api_key = api_key
        self.ms_per_character = ms_per_character
        self.chunk_ms = chunk_ms
        self.transcription_delay = transcription_delay
        self.drop_after_responses = drop_after_responses
        self.connections: list[RealtimeConnection] = []
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.app.router.add_get("/v1/realtime", self._realtime)

    @property
    def realtime_url(self) -> str:
        """``ws://HOST:PORT/v1/realtime`` (add ``?model=...``)."""
        return f"{self.ws_url}/v1/realtime"

    def next_reply(self) -> RealtimeReply:
        """The reply the next response gives (shared by all connections)."""
        if not self.replies:
            return RealtimeReply("OK.")
        reply = self.replies[min(self.replies_given, len(self.replies) - 1)]
        self.replies_given += 1
        return reply

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The HTTP error a bad handshake gets (wrong key: 401, no model: 400), or None."""
        self.record_peer(request)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            message = (
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return _http_error(401, "invalid_api_key", message, None)
        if not request.query.get("model"):
            return _http_error(400, "missing_model", "Missing required parameter: 'model'.", "model")
        return None

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refusal(request)) is not None:
            return refused
        ws = web.WebSocketResponse(autoping=True, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        conn = RealtimeConnection(dict(request.query), dict(request.headers))
        conn.session = _default_session(request.query["model"])
        self.connections.append(conn)
        self.connected.set()
        try:
            await _Session(self, ws, conn).run()
        finally:
            self.closed.set()
        return ws


def _http_error(status: int, code: str, message: str, param: str | None) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": param}}
    return web.json_response(body, status=status)


def _id(prefix: str) -> str:
    """A fresh id like the real API's (``event_…``, ``item_…``, ``resp_…``)."""
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


def _default_session(model: str) -> dict[str, Any]:
    """The GA session a new connection starts with."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": _id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _vad_defaults("server_vad"),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "include": None,
    }


def _vad_defaults(kind: Any) -> dict[str, Any]:
    """The settings a turn detection of ``kind`` has unless the client sets them."""
    if kind == "semantic_vad":
        return {"type": kind, "eagerness": "auto", "create_response": True, "interrupt_response": True}
    if kind != "server_vad":
        return {}
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "create_response": True,
        "interrupt_response": True,
        "idle_timeout_ms": None,
    }


class _RefusedError(Exception):
    """A client event the real API would answer with an ``error`` event."""

    def __init__(self, code: str, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


class _CancelledError(Exception):
    """The response in flight was cancelled: stop producing it."""


def _get(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]…``, or None where a step is missing or not an object."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _require(event: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    """``event[key]``, refused as missing or of the wrong type (a bool is no int).

    ``where`` is the path to ``event`` the error's ``param`` names (``"item."``).
    """
    param = f"{where}{key}"
    if event.get(key) is None:
        raise _RefusedError("missing_required_parameter", f"Missing required parameter: '{param}'.", param)
    value = event[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _RefusedError("invalid_type", f"Invalid type for '{param}': expected {kind.__name__}.", param)
    return value


def _check_format(fmt: Any, param: str) -> None:
    """Refuse an audio format the GA API does not take (PCM is 24 kHz only)."""
    if not isinstance(fmt, dict) or fmt.get("type") not in FORMATS:
        kind = _get(fmt, "type")
        supported = ", ".join(f"'{name}'" for name in FORMATS)
        message = f"Invalid value: '{kind}'. Supported values are: {supported}."
        raise _RefusedError("invalid_value", message, f"{param}.type")
    if fmt["type"] == "audio/pcm" and fmt.get("rate", 24000) != 24000:
        raise _RefusedError(
            "invalid_value", "Invalid value: only a rate of 24000 is supported.", f"{param}.rate"
        )


def _check_session(update: dict[str, Any]) -> None:
    """Refuse a ``session.update`` the real API refuses (the session is then unchanged)."""
    if "type" not in update:
        raise _RefusedError(
            "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"
        )
    if update["type"] != "realtime":
        message = f"Invalid value: '{update['type']}'. This endpoint takes sessions of type 'realtime'."
        raise _RefusedError("invalid_value", message, "session.type")
    for path in (("audio",), ("audio", "input"), ("audio", "output")):
        value = _get(update, *path)
        if value is not None and not isinstance(value, dict):
            param = ".".join(("session", *path))
            raise _RefusedError("invalid_type", f"Invalid type for '{param}': expected an object.", param)
    for side in ("input", "output"):
        fmt = _get(update, "audio", side, "format")
        if fmt is not None:
            _check_format(fmt, f"session.audio.{side}.format")
    detection = _get(update, "audio", "input", "turn_detection")
    if detection is not None and _get(detection, "type") not in ("server_vad", "semantic_vad"):
        message = "Invalid value: turn_detection.type is 'server_vad' or 'semantic_vad'."
        raise _RefusedError("invalid_value", message, "session.audio.input.turn_detection.type")
    _check_modalities(update.get("output_modalities"), "session.output_modalities")


def _check_modalities(modalities: Any, param: str) -> None:
    if modalities is not None and modalities not in (["audio"], ["text"]):
        raise _RefusedError(
            "invalid_value", "Invalid value: output_modalities is ['audio'] or ['text'].", param
        )


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` deep-merged into a copy of ``base``.

    A format is replaced whole, and so is a turn detection of another type (over its defaults).
    """
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and key != "format":
            if key == "turn_detection" and value.get("type") != old.get("type"):
                old = _vad_defaults(value.get("type"))
            merged[key] = _merge(old, value)
        elif key == "turn_detection" and isinstance(value, dict):
            merged[key] = _merge(_vad_defaults(value.get("type")), value)
        elif key == "format" and isinstance(value, dict) and value.get("type") == "audio/pcm":
            merged[key] = {"rate": 24000, **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _pieces(text: str) -> list[str]:
    """``text`` as words with their following spaces (they concatenate back to ``text``)."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


def _share(words: int, chunk: int, chunks: int) -> int:
    """Where chunk ``chunk`` of ``chunks`` starts in ``words`` words (rounded up: the transcript leads)."""
    return -(-words * chunk // chunks)


def _words(text: Any) -> int:
    return len(text.split()) if isinstance(text, str) else 0


@lru_cache(maxsize=32)
def _tone(rate: int, samples: int) -> bytes:
    """``samples`` of a 440 Hz tone at about -12 dBFS, PCM16 little-endian at ``rate``."""
    step = 2 * math.pi * TONE_HZ / rate
    pcm = array.array("h", (round(TONE_PEAK * math.sin(step * i)) for i in range(samples)))
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes()


def speech_for(text: str, fmt: dict[str, Any], ms_per_character: float = 10.0) -> bytes:
    """The audio the fake speaks for ``text`` in ``fmt``: a tone, ``ms_per_character`` ms per character."""
    rate, _ = FORMATS[fmt["type"]]
    pcm = _tone(rate, round(len(text) * ms_per_character * rate / 1000))
    if fmt["type"] == "audio/pcmu":
        return ulaw_encode(pcm)
    if fmt["type"] == "audio/pcma":
        return alaw_encode(pcm)
    return pcm


def _user_item(item: dict[str, Any]) -> dict[str, Any]:
    """A client's ``conversation.item.create`` item, checked, with id, object and status set."""
    kind = item.get("type")
    if kind == "message":
        _check_message(item)
    elif kind == "function_call":
        for key in ("name", "arguments"):
            _require(item, key, str, "item.")
    elif kind == "function_call_output":
        _require(item, "call_id", str, "item.")
        _require(item, "output", str, "item.")
    else:
        supported = "'message', 'function_call', 'function_call_output'"
        message = f"Invalid value: '{kind}'. Supported values are: {supported}."
        raise _RefusedError("invalid_value", message, "item.type")
    if "id" in item:
        _require(item, "id", str, "item.")
    made = copy.deepcopy(item)
    made.setdefault("id", _id("item"))
    made.update(object="realtime.item", status="completed")
    if kind == "function_call":
        made.setdefault("call_id", _id("call"))
    return made


_CONTENT_TYPES = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio", "text"),
}


def _check_message(item: dict[str, Any]) -> None:
    role = item.get("role")
    if role not in _CONTENT_TYPES:
        raise _RefusedError(
            "invalid_value",
            f"Invalid value: '{role}'. Supported roles: user, assistant, system.",
            "item.role",
        )
    content = item.get("content")
    if not isinstance(content, list):
        raise _RefusedError(
            "missing_required_parameter", "Missing required parameter: 'item.content'.", "item.content"
        )
    for index, part in enumerate(content):
        if _get(part, "type") not in _CONTENT_TYPES[role]:
            message = f"Invalid value: '{_get(part, 'type')}' for a {role} message's content."
            raise _RefusedError("invalid_value", message, f"item.content[{index}].type")


class _Session:
    """One ``/v1/realtime`` connection: the conversation, the input buffer and the response in flight."""

    def __init__(self, server: FakeRealtime, ws: web.WebSocketResponse, conn: RealtimeConnection) -> None:
        self.server, self.ws, self.conn = server, ws, conn
        self.send_lock = asyncio.Lock()
        self.conversation_id = _id("conv")
        self.buffer = bytearray()  # appended since the last commit or clear
        self.position = 0.0  # ms of audio appended on this connection
        self.silence = 0.0  # ms of the current utterance's leading silence heard
        self.speech = 0.0  # ms of the current utterance's speech heard
        self.speech_item: str | None = None  # the item id of the speech being heard
        self.response: _Response | None = None
        self.audio_ms: dict[str, float] = {}  # item id -> its audio (user input, assistant output)
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropping: asyncio.Task[Any] | None = None
        self.handlers = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit_buffer,
            "input_audio_buffer.clear": self._clear_buffer,
            "conversation.item.create": self._item_create,
            "conversation.item.delete": self._item_delete,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.truncate": self._item_truncate,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "output_audio_buffer.clear": self._output_audio_buffer_clear,
        }

    # --- the pump ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Send ``session.created``, then answer client events until the socket closes."""
        try:
            with contextlib.suppress(ConnectionError):
                await self.send("session.created", session=self.conn.session)
                async for message in self.ws:
                    if message.type == WSMsgType.TEXT:
                        await self.receive(message.data)
                    elif message.type == WSMsgType.BINARY:
                        await self.error("invalid_json", "Binary frames are not supported; send JSON text.")
        finally:
            for task in self.tasks:
                if task is not self.dropping:
                    task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def receive(self, data: str) -> None:
        """Handle one client frame; a refused one gets an ``error`` event."""
        try:
            event = json.loads(data)
        except ValueError:
            await self.error("invalid_json", "We could not parse the JSON body of your request.")
            return
        if not isinstance(event, dict):
            await self.error("invalid_json", "A client event is a JSON object.")
            return
        self.conn.received.append(event)
        client_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        handler = self.handlers.get(str(event.get("type")))
        try:
            if handler is None:
                supported = ", ".join(f"'{name}'" for name in self.handlers)
                raise _RefusedError(
                    "invalid_value",
                    f"Invalid value: '{event.get('type')}'. Supported values are: {supported}.",
                    "type",
                )
            await handler(event)
        except _RefusedError as refused:
            await self.error(refused.code, refused.message, refused.param, client_id)

    async def send(self, type: str, **fields: Any) -> None:
        """Send a server event (serialized now, so later changes to ``fields`` do not show)."""
        text = json.dumps({"type": type, "event_id": _id("event"), **fields})
        async with self.send_lock:
            await self.ws.send_str(text)

    async def error(
        self, code: str, message: str, param: str | None = None, event_id: str | None = None
    ) -> None:
        """Send an ``error`` event; the socket stays open."""
        error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": event_id,
        }
        await self.send("error", error=error)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` beside the pump (cancelled when the connection ends)."""
        task = asyncio.create_task(self._quietly(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    @staticmethod
    async def _quietly(work: Coroutine[Any, Any, None]) -> None:
        with contextlib.suppress(ConnectionError):
            await work

    # --- session and input audio ------------------------------------------------------------

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        detection = _get(self.conn.session, "audio", "input", "turn_detection")
        return detection if isinstance(detection, dict) else None

    def _vad_flag(self, name: str) -> bool:
        """A turn detection flag (``create_response``, ``interrupt_response``): true unless set false."""
        return self.turn_detection is not None and self.turn_detection.get(name) is not False

    async def _session_update(self, event: dict[str, Any]) -> None:
        update = _require(event, "session", dict)
        _check_session(update)
        self.conn.session = _merge(self.conn.session, update)
        await self.send("session.updated", session=self.conn.session)

    async def _append(self, event: dict[str, Any]) -> None:
        audio = _require(event, "audio", str)
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise _RefusedError(
                "invalid_value", "Invalid 'audio': the audio is not valid base64.", "audio"
            ) from None
        self.conn.audio += data
        self.buffer += data
        rate, width = FORMATS[self.conn.session["audio"]["input"]["format"]["type"]]
        ms = len(data) * 1000 / (rate * width)
        if self.turn_detection is None:
            self.position += ms
        else:
            await self._hear(ms)

    async def _hear(self, ms: float) -> None:
        """Hear ``ms`` more audio as server VAD would: the script's silences, speech starts and ends."""
        end, script = self.position + ms, self.server.script
        while script:
            heard = script[0]
            if self.speech_item is None:
                take = min(ms, max(heard.gap_ms - self.silence, 0.0))
                self.silence, self.position, ms = self.silence + take, self.position + take, ms - take
                if self.silence < heard.gap_ms - _EPSILON or (ms < _EPSILON and heard.audio_ms > 0):
                    break
                await self._speech_started()
            take = min(ms, max(heard.audio_ms - self.speech, 0.0))
            self.speech, self.position, ms = self.speech + take, self.position + take, ms - take
            if self.speech < heard.audio_ms - _EPSILON:
                break
            await self._speech_stopped()
        self.position = end

    async def _speech_started(self) -> None:
        self.speech_item = _id("item")
        await self.send(
            "input_audio_buffer.speech_started", audio_start_ms=round(self.position), item_id=self.speech_item
        )
        if self.response is not None and self._vad_flag("interrupt_response"):
            await self.response.cancel("turn_detected")

    async def _speech_stopped(self) -> None:
        heard, item_id = self.server.script.pop(0), self.speech_item or _id("item")
        self.silence, self.speech, self.speech_item = 0.0, 0.0, None
        await self.send(
            "input_audio_buffer.speech_stopped", audio_end_ms=round(self.position), item_id=item_id
        )
        await self._commit(item_id, heard)
        if self._vad_flag("create_response") and self.response is None:
            self.start_response({})

    async def _commit(self, item_id: str, heard: Heard | None) -> None:
        """Commit the input buffer as a user audio item (and transcribe it, if the session says)."""
        fmt = self.conn.session["audio"]["input"]["format"]["type"]
        rate, width = FORMATS[fmt]
        self.audio_ms[item_id] = len(self.buffer) * 1000 / (rate * width)
        self.buffer.clear()
        previous = self.last_item_id()
        content = [{"type": "input_audio", "transcript": None}]
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": content,
        }
        await self.send("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        self.conn.items[item_id] = item
        await self.send("conversation.item.added", previous_item_id=previous, item=item)
        await self.send("conversation.item.done", previous_item_id=previous, item=item)
        if _get(self.conn.session, "audio", "input", "transcription") is None:
            return
        transcribing = self._transcribe(item, heard.text if heard else "")
        if self.server.transcription_delay > 0:  # later, maybe after the response started (as for real)
            self.spawn(transcribing)
        else:  # at once: before the response, so tests see a fixed order
            await transcribing

    async def _transcribe(self, item: dict[str, Any], text: str) -> None:
        if self.server.transcription_delay > 0:
            await asyncio.sleep(self.server.transcription_delay)
        item["content"][0]["transcript"] = text
        audio_tokens = round(self.audio_ms.get(item["id"], 0.0) / MS_PER_AUDIO_TOKEN)
        usage = {
            "type": "tokens",
            "total_tokens": audio_tokens + _words(text),
            "input_tokens": audio_tokens,
            "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            "output_tokens": _words(text),
        }
        await self.send(
            "conversation.item.input_audio_transcription.completed",
            item_id=item["id"],
            content_index=0,
            transcript=text,
            usage=usage,
        )

    async def _commit_buffer(self, event: dict[str, Any]) -> None:
        if not self.buffer:
            message = (
                "Error committing input audio buffer: buffer too small. "
                "Expected at least 100ms of audio, but buffer only has 0.00ms of audio."
            )
            raise _RefusedError("input_audio_buffer_commit_empty", message, None)
        script = self.server.script
        heard = script.pop(0) if script else None
        item_id = self.speech_item or _id("item")
        self.silence, self.speech, self.speech_item = 0.0, 0.0, None
        await self._commit(item_id, heard)

    async def _clear_buffer(self, event: dict[str, Any]) -> None:
        self.buffer.clear()
        self.silence, self.speech, self.speech_item = 0.0, 0.0, None
        await self.send("input_audio_buffer.cleared")

    # --- the conversation -------------------------------------------------------------------

    def last_item_id(self) -> str | None:
        return next(reversed(self.conn.items), None)

    def previous_of(self, item_id: str) -> str | None:
        """The id of the item before ``item_id`` in the conversation (None: it is first)."""
        previous = None
        for key in self.conn.items:
            if key == item_id:
                return previous
            previous = key
        return previous

    def _insert(self, item: dict[str, Any], after: str | None) -> None:
        """Add ``item`` to the conversation after item ``after`` (None: at the end; "root": first)."""
        entries = list(self.conn.items.items())
        ids = [key for key, _ in entries]
        index = {None: len(entries), "root": 0}.get(after, ids.index(after) + 1 if after in ids else 0)
        entries.insert(index, (item["id"], item))
        self.conn.items.clear()
        self.conn.items.update(entries)

    async def _item_create(self, event: dict[str, Any]) -> None:
        item = _user_item(_require(event, "item", dict))
        after = event.get("previous_item_id")
        if after is not None and _require(event, "previous_item_id", str) not in (*self.conn.items, "root"):
            raise _RefusedError(
                "invalid_value", f"Previous item with id '{after}' not found.", "previous_item_id"
            )
        if item["id"] in self.conn.items:
            raise _RefusedError("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id")
        if item["type"] == "function_call_output" and not self._known_call(item["call_id"]):
            message = f"Tool call ID '{item['call_id']}' not found in conversation."
            raise _RefusedError("invalid_value", message, "item.call_id")
        self._insert(item, after)
        previous = self.previous_of(item["id"])
        await self.send("conversation.item.added", previous_item_id=previous, item=item)
        await self.send("conversation.item.done", previous_item_id=previous, item=item)

    def _known_call(self, call_id: str) -> bool:
        return any(
            i.get("type") == "function_call" and i.get("call_id") == call_id for i in self.conn.items.values()
        )

    def _item(self, event: dict[str, Any]) -> dict[str, Any]:
        """The conversation item ``event["item_id"]`` names (refused if there is none)."""
        item_id = _require(event, "item_id", str)
        if item_id not in self.conn.items:
            raise _RefusedError("invalid_value", f"Item with item_id not found: {item_id}", "item_id")
        return self.conn.items[item_id]

    async def _item_delete(self, event: dict[str, Any]) -> None:
        item = self._item(event)
        del self.conn.items[item["id"]]
        self.audio_ms.pop(item["id"], None)
        await self.send("conversation.item.deleted", item_id=item["id"])

    async def _item_retrieve(self, event: dict[str, Any]) -> None:
        await self.send("conversation.item.retrieved", item=self._item(event))

    async def _item_truncate(self, event: dict[str, Any]) -> None:
        item = self._item(event)
        content_index = _require(event, "content_index", int)
        audio_end_ms = _require(event, "audio_end_ms", int)
        if item.get("type") != "message" or item.get("role") != "assistant":
            raise _RefusedError("invalid_value", "Only assistant messages can be truncated.", "item_id")
        if content_index != 0 or not item["content"]:
            raise _RefusedError(
                "invalid_value", "Invalid value: the item has no audio content there.", "content_index"
            )
        length = self.audio_ms.get(item["id"], 0.0)
        if not 0 <= audio_end_ms <= length:
            message = f"Audio content of {length:.0f}ms is already shorter than {audio_end_ms}ms."
            raise _RefusedError("invalid_value", message, "audio_end_ms")
        part = item["content"][0]
        pieces = _pieces(part.get("transcript") or "")
        kept = math.floor(len(pieces) * audio_end_ms / length) if length else 0
        part["transcript"] = "".join(pieces[:kept]).rstrip()
        self.audio_ms[item["id"]] = float(audio_end_ms)
        self.conn.truncations.append(event)
        await self.send(
            "conversation.item.truncated",
            item_id=item["id"],
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )

    # --- responses --------------------------------------------------------------------------

    async def _response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            message = (
                f"Conversation already has an active response in progress: {self.response.id}. "
                "Wait until the response is finished before creating a new one."
            )
            raise _RefusedError("conversation_already_has_active_response", message, None)
        params = event.get("response") or {}
        if not isinstance(params, dict):
            raise _RefusedError(
                "invalid_type", "Invalid type for 'response': expected an object.", "response"
            )
        fmt = _get(params, "audio", "output", "format")
        if fmt is not None:
            _check_format(fmt, "response.audio.output.format")
        _check_modalities(params.get("output_modalities"), "response.output_modalities")
        self.start_response(params)

    async def _response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        if self.response is None or (wanted is not None and wanted != self.response.id):
            raise _RefusedError(
                "response_cancel_not_active", "Cancellation failed: no active response found.", None
            )
        await self.response.cancel("client_cancelled")

    async def _output_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        raise _RefusedError(
            "invalid_value", "output_audio_buffer.clear is only supported for WebRTC and SIP.", "type"
        )

    def start_response(self, params: dict[str, Any]) -> None:
        """Start the next scripted response (its own task)."""
        response = _Response(self, self.server.next_reply(), params)
        self.response = response
        response.task = self.spawn(response.run())

    def context_tokens(self, instructions: str) -> tuple[int, int]:
        """Plausible (text, audio) input tokens for the conversation so far: a token a word, one per 50 ms."""
        text, audio = _words(instructions), 0.0
        for item in self.conn.items.values():
            text += _words(item.get("arguments")) + _words(item.get("output"))
            for part in item.get("content") or ():
                text += _words(_get(part, "text")) + _words(_get(part, "transcript"))
            audio += self.audio_ms.get(item["id"], 0.0)
        return text, round(audio / MS_PER_AUDIO_TOKEN)

    async def drop_if_due(self) -> None:
        """The ``drop_after_responses`` fault: close the first connection 1011, abruptly."""
        limit = self.server.drop_after_responses
        if (
            limit is not None
            and self.conn is self.server.connections[0]
            and len(self.conn.responses) == limit
        ):
            self.dropping = asyncio.current_task()
            await self.ws.close(code=1011, message=b"")


class _Response:
    """One response in flight: its events, pacing and how it ends (completed, cancelled, failed)."""

    def __init__(self, session: _Session, reply: RealtimeReply, params: dict[str, Any]) -> None:
        self.s, self.reply, self.params = session, reply, params
        self.id = _id("resp")
        self.task: asyncio.Task[None] | None = None
        self.reason: str | None = None  # why it was cancelled
        self.stop = asyncio.Event()
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the output item being produced
        self.part_open = False
        self.said = ""  # the transcript (or text) of the message so far
        self.content: dict[str, Any] = {}  # the message's content part, as the conversation has it
        self.audio_ms = 0.0
        config = session.conn.session
        self.in_conversation = params.get("conversation", "auto") != "none"
        self.modalities = params.get("output_modalities") or config.get("output_modalities") or ["audio"]
        self.format = _get(params, "audio", "output", "format") or config["audio"]["output"]["format"]
        instructions = params.get("instructions", config.get("instructions"))
        self.input_tokens = session.context_tokens(instructions if isinstance(instructions, str) else "")

    async def cancel(self, reason: str) -> None:
        """Stop at the next event; return once ``response.done`` (cancelled) is sent."""
        if self.reason is None:
            self.reason = reason
            self.stop.set()
        if self.task is not None and self.task is not asyncio.current_task():
            await asyncio.shield(self.task)

    async def run(self) -> None:
        """Produce the whole response: ``response.created`` to ``response.done``."""
        await self.s.send("response.created", response=self.resource("in_progress", None))
        try:
            if self.reply.fail:
                message = "The server had an error while processing your request."
                error = {"type": "server_error", "code": "server_error", "message": message}
                await self.end("failed", {"type": "failed", "error": error})
                return
            for name, arguments in self.reply.tool_calls:
                await self.function_call(name, arguments)
            if self.reply.text:
                await self.message(self.reply.text)
        except _CancelledError:
            await self.close_open()
            await self.end("cancelled", {"type": "cancelled", "reason": self.reason})
            return
        await self.end("completed", None)

    async def emit(self, type: str, **fields: Any) -> None:
        """Send an event of this response, unless it has been cancelled."""
        if self.reason is not None:
            raise _CancelledError
        await self.s.send(type, **fields)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (at least a loop turn), cut short by a cancel."""
        await asyncio.sleep(0)
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)
        if self.reason is not None:
            raise _CancelledError

    def where(self, item: dict[str, Any]) -> dict[str, Any]:
        """The fields that place an event in this response's output."""
        return {"response_id": self.id, "item_id": item["id"], "output_index": self.output.index(item)}

    async def open_item(self, item: dict[str, Any]) -> None:
        """Add an output item: ``response.output_item.added`` and ``conversation.item.added``."""
        self.output.append(item)
        self.open = item
        await self.emit(
            "response.output_item.added", response_id=self.id, output_index=len(self.output) - 1, item=item
        )
        if self.in_conversation:
            self.s.conn.items[item["id"]] = item
            await self.s.send(
                "conversation.item.added", previous_item_id=self.s.previous_of(item["id"]), item=item
            )

    async def close_item(self, item: dict[str, Any], status: str) -> None:
        """Finish an output item: ``response.output_item.done`` and ``conversation.item.done``."""
        self.open, item["status"] = None, status
        await self.s.send(
            "response.output_item.done", response_id=self.id, output_index=self.output.index(item), item=item
        )
        if self.in_conversation and item["id"] in self.s.conn.items:
            await self.s.send(
                "conversation.item.done", previous_item_id=self.s.previous_of(item["id"]), item=item
            )

    async def function_call(self, name: str, arguments: str) -> None:
        item = {
            "id": _id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
        }
        item.update(name=name, call_id=_id("call"), arguments="")
        await self.open_item(item)
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            await self.pause(0)
            await self.emit(
                "response.function_call_arguments.delta",
                **self.where(item),
                call_id=item["call_id"],
                delta=piece,
            )
        item["arguments"] = arguments
        await self.emit(
            "response.function_call_arguments.done",
            **self.where(item),
            call_id=item["call_id"],
            name=name,
            arguments=arguments,
        )
        await self.close_item(item, "completed")

    @property
    def audio(self) -> bool:
        return "audio" in self.modalities

    async def message(self, text: str) -> None:
        item: dict[str, Any] = {"id": _id("item"), "object": "realtime.item", "type": "message"}
        item.update(status="in_progress", role="assistant", content=[])
        await self.open_item(item)
        part = {"type": "audio", "transcript": ""} if self.audio else {"type": "text", "text": ""}
        await self.emit("response.content_part.added", **self.where(item), content_index=0, part=part)
        self.part_open = True
        self.content = (
            {"type": "output_audio", "transcript": ""} if self.audio else {"type": "output_text", "text": ""}
        )
        item["content"] = [self.content]
        await (self.speak(item, text) if self.audio else self.write(item, text))
        await self.close_part(item)
        await self.close_item(item, "completed")

    async def speak(self, item: dict[str, Any], text: str) -> None:
        """The reply as audio chunks, each preceded by its share of the transcript."""
        rate, width = FORMATS[self.format["type"]]
        audio = speech_for(text, self.format, self.s.server.ms_per_character)
        size = max(rate * self.s.server.chunk_ms // 1000, 1) * width
        chunks = [audio[i : i + size] for i in range(0, len(audio), size)] or [b""]
        pieces = _pieces(text)
        await self.pause(self.reply.first_audio_delay)
        for n, chunk in enumerate(chunks):
            if n:
                await self.pause(self.reply.chunk_delay)
            share = "".join(
                pieces[_share(len(pieces), n, len(chunks)) : _share(len(pieces), n + 1, len(chunks))]
            )
            if share:
                await self.emit(
                    "response.output_audio_transcript.delta", **self.where(item), content_index=0, delta=share
                )
                self.said += share
                self.content["transcript"] = self.said
            if chunk:
                delta = base64.b64encode(chunk).decode()
                await self.emit(
                    "response.output_audio.delta", **self.where(item), content_index=0, delta=delta
                )
                self.audio_ms += len(chunk) * 1000 / (rate * width)
                self.s.audio_ms[item["id"]] = self.audio_ms

    async def write(self, item: dict[str, Any], text: str) -> None:
        """The reply as text deltas (output modality ``text``), a word each."""
        await self.pause(self.reply.first_audio_delay)
        for n, piece in enumerate(_pieces(text)):
            if n:
                await self.pause(self.reply.chunk_delay)
            await self.emit("response.output_text.delta", **self.where(item), content_index=0, delta=piece)
            self.said += piece
            self.content["text"] = self.said

    async def close_part(self, item: dict[str, Any]) -> None:
        """End the message's content part with what was said so far."""
        self.part_open = False
        where = self.where(item)
        if self.audio:
            await self.s.send("response.output_audio.done", **where, content_index=0)
            await self.s.send(
                "response.output_audio_transcript.done", **where, content_index=0, transcript=self.said
            )
            part = {"type": "audio", "transcript": self.said}
        else:
            await self.s.send("response.output_text.done", **where, content_index=0, text=self.said)
            part = {"type": "text", "text": self.said}
        await self.s.send("response.content_part.done", **where, content_index=0, part=part)

    async def close_open(self) -> None:
        """After a cancel: end the item in progress as ``incomplete``."""
        if self.open is None:
            return
        item = self.open
        if self.part_open:
            await self.close_part(item)
        await self.close_item(item, "incomplete")

    async def end(self, status: str, details: dict[str, Any] | None) -> None:
        """Send ``response.done`` (the connection may take a new response from here)."""
        if self.s.response is self:
            self.s.response = None
        resource = self.resource(status, details)
        self.s.conn.responses.append(copy.deepcopy(resource))
        await self.s.send("response.done", response=resource)
        await self.s.drop_if_due()

    def resource(self, status: str, details: dict[str, Any] | None) -> dict[str, Any]:
        """The ``realtime.response`` object (the client's ``response.create`` parameters included)."""
        config = self.s.conn.session
        resource = _merge(
            {"max_output_tokens": config.get("max_output_tokens", "inf"), "metadata": None}, self.params
        )
        resource.update(
            object="realtime.response",
            id=self.id,
            status=status,
            status_details=details,
            output=self.output,
            conversation_id=self.s.conversation_id if self.in_conversation else None,
            output_modalities=self.modalities,
            audio={
                "output": {"format": self.format, "voice": config["audio"]["output"].get("voice", "alloy")}
            },
            usage=None if status == "in_progress" else self.usage(),
        )
        return resource

    def usage(self) -> dict[str, Any]:
        """Plausible token counts: a token a word of text, one per 50 ms of audio."""
        text_in, audio_in = self.input_tokens
        text_out = _words(self.said) + sum(
            _words(i.get("arguments")) + 1 for i in self.output if i["type"] == "function_call"
        )
        audio_out = round(self.audio_ms / MS_PER_AUDIO_TOKEN)
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "cached_tokens": 0,
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }
