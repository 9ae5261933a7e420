"""The OpenAI Realtime API (speech to speech over one WebSocket), sans I/O.

The client sends JSON events: ``session.update`` (instructions, voice, audio formats, turn
detection, tools), ``input_audio_buffer.append`` (the caller's audio, base64),
``conversation.item.create`` (tool results, text), ``conversation.item.truncate`` (after a
barge-in: how much of the agent's audio the caller heard), ``response.create`` and
``response.cancel``. The server answers with events that :func:`parse_event` turns into the
few values a call needs (:data:`RealtimeEvent`); both the GA names and the beta ones
(``response.audio.delta``...) are read. G.711 goes through unchanged in both directions, so
a Twilio call is never transcoded.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import msgspec

from voicecore.errors import ConfigError, ProtocolError
from voicecore.sansio.chatstream import TokenUsage
from voicecore.sansio.jsonmsg import b64_audio, json_object

__all__ = [
    "AUDIO_RATES",
    "PROVIDER_SETTINGS",
    "AgentAudio",
    "AgentTranscript",
    "CallerTranscript",
    "FunctionCall",
    "RealtimeAudio",
    "RealtimeError",
    "RealtimeEvent",
    "RealtimeSettings",
    "ResponseDone",
    "ResponseStarted",
    "SessionReady",
    "SpeechStarted",
    "SpeechStopped",
    "Truncated",
    "append_audio",
    "cancel_response",
    "create_response",
    "encode",
    "function_output",
    "message_item",
    "model_audio",
    "parse_event",
    "realtime_tools",
    "realtime_url",
    "session_update",
    "truncate",
]

PROVIDER = "openai-realtime"
#: The audio the API takes: G.711 at 8 kHz, or PCM16 at 24 kHz only.
RealtimeAudio = Literal["mulaw", "alaw", "pcm16"]
#: The sample rate of each.
AUDIO_RATES: dict[str, int] = {"mulaw": 8000, "alaw": 8000, "pcm16": 24000}
_FORMATS: dict[str, dict[str, Any]] = {
    "mulaw": {"type": "audio/pcmu"},
    "alaw": {"type": "audio/pcma"},
    "pcm16": {"type": "audio/pcm", "rate": 24000},
}
TurnDetection = Literal["server_vad", "semantic_vad"]
Eagerness = Literal["low", "medium", "high", "auto"]
NoiseReduction = Literal["near_field", "far_field"]
#: Error codes that mean the request, not the connection, was wrong: logged, the call goes on.
_REQUEST_ERRORS = ("invalid_request_error",)


def model_audio(encoding: str, sample_rate: int) -> RealtimeAudio:
    """The audio to exchange with the model for a transport's format: its G.711 as is, else PCM16."""
    if encoding == "mulaw" and sample_rate == 8000:
        return "mulaw"
    if encoding == "alaw" and sample_rate == 8000:
        return "alaw"
    return "pcm16"


def realtime_url(base_url: str, model: str) -> str:
    """``{base_url}/realtime?model=...`` (``base_url`` like ``wss://api.openai.com/v1``)."""
    return f"{base_url.rstrip('/')}/realtime?{urlencode({'model': model})}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RealtimeSettings:
    """What the session is told in ``session.update``.

    Attributes:
        model: The realtime model (``gpt-realtime``).
        instructions: The system prompt.
        voice: The output voice (``marin``, ``cedar``, ``alloy``...).
        audio: The audio of both directions (see :func:`model_audio`).
        tools: Tool schemas in the chat-completions shape (``Toolbox.schemas()``).
        turn_detection: ``server_vad`` (silence ends the turn) or ``semantic_vad`` (the model
            judges whether the caller finished).
        vad_threshold: ``server_vad``: speech probability that counts as speech.
        silence_ms: ``server_vad``: silence that ends the caller's turn.
        prefix_padding_ms: ``server_vad``: audio kept before the detected speech start.
        eagerness: ``semantic_vad``: how soon it answers.
        transcription_model: Model transcribing the caller (None: no caller transcripts).
        language: The caller's language, a hint for the transcription.
        noise_reduction: ``near_field`` (headsets, phones), ``far_field`` or None.
        speed: Speaking rate, 0.25 to 1.5.
        max_output_tokens: Cap per response (None: the model's limit).
    """

    model: str = "gpt-realtime"
    instructions: str = ""
    voice: str = "marin"
    audio: RealtimeAudio = "mulaw"
    tools: Sequence[Mapping[str, Any]] = ()
    turn_detection: TurnDetection = "server_vad"
    vad_threshold: float = 0.5
    silence_ms: int = 500
    prefix_padding_ms: int = 300
    eagerness: Eagerness = "auto"
    transcription_model: str | None = "gpt-4o-transcribe"
    language: str | None = None
    noise_reduction: NoiseReduction | None = "near_field"
    speed: float = 1.0
    max_output_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.audio not in _FORMATS:
            raise ConfigError(f"audio must be 'mulaw', 'alaw' or 'pcm16' (24 kHz), not {self.audio!r}")
        if not 0.0 <= self.vad_threshold <= 1.0:
            raise ConfigError(f"vad_threshold must be 0 to 1, not {self.vad_threshold}")
        if self.silence_ms < 0 or self.prefix_padding_ms < 0:
            raise ConfigError("silence_ms and prefix_padding_ms must not be negative")
        if not 0.25 <= self.speed <= 1.5:
            raise ConfigError(f"speed must be 0.25 to 1.5, not {self.speed}")
        if self.max_output_tokens is not None and not 1 <= self.max_output_tokens <= 4096:
            raise ConfigError(f"max_output_tokens must be 1 to 4096, not {self.max_output_tokens}")


#: The settings a provider chooses for every call (the rest come per call, from the agent).
PROVIDER_SETTINGS = frozenset(
    {
        "turn_detection",
        "vad_threshold",
        "silence_ms",
        "prefix_padding_ms",
        "eagerness",
        "transcription_model",
        "noise_reduction",
        "speed",
        "max_output_tokens",
    }
)


def realtime_tools(schemas: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat-completions tool schemas (``{"type", "function": {...}}``) in the realtime shape (flat)."""
    tools = []
    for schema in schemas:
        function = schema.get("function", schema)
        tool = {"type": "function", "name": function["name"]}
        for key in ("description", "parameters"):
            if key in function:
                tool[key] = function[key]
        tools.append(tool)
    return tools


def session_update(settings: RealtimeSettings) -> dict[str, Any]:
    """The ``session.update`` event that configures a new connection."""
    audio_format = _FORMATS[settings.audio]
    detection: dict[str, Any]
    if settings.turn_detection == "semantic_vad":
        detection = {"type": "semantic_vad", "eagerness": settings.eagerness}
    else:
        detection = {
            "type": "server_vad",
            "threshold": settings.vad_threshold,
            "prefix_padding_ms": settings.prefix_padding_ms,
            "silence_duration_ms": settings.silence_ms,
        }
    detection |= {"create_response": True, "interrupt_response": True}
    audio_input: dict[str, Any] = {"format": audio_format, "turn_detection": detection}
    audio_input["noise_reduction"] = (
        {"type": settings.noise_reduction} if settings.noise_reduction is not None else None
    )
    if settings.transcription_model is not None:
        transcription = {"model": settings.transcription_model}
        if settings.language:
            transcription["language"] = settings.language
        audio_input["transcription"] = transcription
    session: dict[str, Any] = {
        "type": "realtime",
        "model": settings.model,
        "instructions": settings.instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": audio_input,
            "output": {"format": audio_format, "voice": settings.voice, "speed": settings.speed},
        },
        "tools": realtime_tools(settings.tools),
        "tool_choice": "auto" if settings.tools else "none",
        "max_output_tokens": settings.max_output_tokens or "inf",
    }
    return {"type": "session.update", "session": session}


_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


def append_audio(audio: bytes) -> str:
    """The ``input_audio_buffer.append`` event for ``audio`` as JSON text (built per frame, no encoder)."""
    return _APPEND_HEAD + base64.b64encode(audio).decode("ascii") + '"}'


def truncate(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """Tell the server the caller heard ``audio_end_ms`` of item ``item_id`` (after a barge-in)."""
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": max(int(audio_end_ms), 0),
    }


def function_output(call_id: str, output: str) -> dict[str, Any]:
    """The result of tool call ``call_id``, as a conversation item."""
    item = {"type": "function_call_output", "call_id": call_id, "output": output}
    return {"type": "conversation.item.create", "item": item}


def message_item(role: Literal["user", "assistant", "system"], text: str) -> dict[str, Any]:
    """A text message for the conversation (to restore it on a new connection, or tell of a key press)."""
    kind = "output_text" if role == "assistant" else "input_text"
    item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
    return {"type": "conversation.item.create", "item": item}


def create_response(
    instructions: str | None = None, *, purpose: str | None = None, event_id: str | None = None
) -> dict[str, Any]:
    """Ask for a response now.

    ``instructions`` replace the session's for this response only; ``purpose`` goes in its
    metadata and comes back in ``response.created`` (:attr:`ResponseStarted.purpose`), which
    tells this response from one the server's VAD started meanwhile; an ``error`` about the
    request names ``event_id``.
    """
    event: dict[str, Any] = {"type": "response.create"}
    if event_id is not None:
        event["event_id"] = event_id
    response: dict[str, Any] = {}
    if instructions is not None:
        response["instructions"] = instructions
    if purpose is not None:
        response["metadata"] = {"voicecore": purpose}
    if response:
        event["response"] = response
    return event


def cancel_response() -> dict[str, Any]:
    """Stop the response in progress."""
    return {"type": "response.cancel"}


def encode(event: Mapping[str, Any]) -> str:
    """A client event as JSON text (the API takes text frames only)."""
    return msgspec.json.encode(event).decode()


# --- server events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionReady:
    """``session.created`` or ``session.updated``: the session as the server holds it."""

    session: Mapping[str, Any]
    created: bool


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The server's VAD heard the caller start speaking (the barge-in signal)."""

    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The server's VAD heard the caller stop: the caller's turn ended."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class CallerTranscript:
    """Text of the caller's turn ``item_id`` (a delta, or the final text)."""

    item_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """A response began: the server's own after the caller's turn, or one asked for with ``purpose``."""

    response_id: str
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class AgentAudio:
    """A piece of the agent's audio for item ``item_id``."""

    response_id: str
    item_id: str
    audio: bytes


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    """Text of the agent's audio in item ``item_id``: a delta, or (``final``) the whole of it."""

    response_id: str
    item_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """The model called a tool; its result goes back as :func:`function_output`."""

    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """A response ended: ``completed``, ``cancelled``, ``failed`` or ``incomplete``.

    ``reason`` says why it did not complete (``turn_detected``, ``client_cancelled``,
    ``max_output_tokens``...), ``error`` what failed.
    """

    response_id: str
    status: str
    reason: str | None = None
    error: str | None = None
    usage: TokenUsage | None = None
    tool_calls: int = 0


@dataclass(frozen=True, slots=True)
class Truncated:
    """The server cut item ``item_id`` to ``audio_end_ms`` (and its transcript with it)."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class RealtimeError:
    """An ``error`` event: the client event ``event_id`` was refused (the socket stays open)."""

    kind: str
    code: str | None
    message: str
    event_id: str | None = None
    param: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def about_request(self) -> bool:
        """Whether a client event was at fault (its ``type`` says so), not the service."""
        return self.kind in _REQUEST_ERRORS


RealtimeEvent = (
    SessionReady
    | SpeechStarted
    | SpeechStopped
    | CallerTranscript
    | ResponseStarted
    | AgentAudio
    | AgentTranscript
    | FunctionCall
    | ResponseDone
    | Truncated
    | RealtimeError
)

#: Beta event names, and the GA name each stands for.
_BETA_NAMES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}


def parse_event(text: str | bytes) -> RealtimeEvent | None:
    """The event in one server message; None for the many a call does not act on.

    Raises:
        ProtocolError: The message is not a JSON object, or an event the call acts on lacks a
            field it needs.
    """
    message = json_object(text, PROVIDER)
    kind = message.get("type")
    kind = _BETA_NAMES.get(kind, kind) if isinstance(kind, str) else kind
    try:
        return _PARSERS[kind](message) if kind in _PARSERS else None
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ProtocolError(f"{PROVIDER}: a {kind} event lacks a field it needs", kind=str(kind)) from None


def _session(message: dict[str, Any]) -> SessionReady:
    return SessionReady(message["session"], message["type"] == "session.created")


def _speech_started(message: dict[str, Any]) -> SpeechStarted:
    return SpeechStarted(str(message["item_id"]), int(message.get("audio_start_ms") or 0))


def _speech_stopped(message: dict[str, Any]) -> SpeechStopped:
    return SpeechStopped(str(message["item_id"]), int(message.get("audio_end_ms") or 0))


def _transcription_delta(message: dict[str, Any]) -> CallerTranscript:
    return CallerTranscript(str(message["item_id"]), str(message["delta"]), False)


def _transcription_done(message: dict[str, Any]) -> CallerTranscript:
    return CallerTranscript(str(message["item_id"]), str(message["transcript"]).strip(), True)


def _response_created(message: dict[str, Any]) -> ResponseStarted:
    response = message["response"]
    metadata = response.get("metadata") or {}
    purpose = metadata.get("voicecore") if isinstance(metadata, dict) else None
    return ResponseStarted(str(response["id"]), purpose if isinstance(purpose, str) else None)


def _audio(message: dict[str, Any]) -> AgentAudio:
    audio = b64_audio(message.get("delta"), PROVIDER)
    return AgentAudio(str(message["response_id"]), str(message["item_id"]), audio)


def _transcript_delta(message: dict[str, Any]) -> AgentTranscript:
    return AgentTranscript(str(message["response_id"]), str(message["item_id"]), str(message["delta"]), False)


def _transcript_done(message: dict[str, Any]) -> AgentTranscript:
    text = str(message["transcript"])
    return AgentTranscript(str(message["response_id"]), str(message["item_id"]), text, True)


def _function_call(message: dict[str, Any]) -> FunctionCall:
    return FunctionCall(
        str(message["response_id"]),
        str(message["item_id"]),
        str(message["call_id"]),
        str(message["name"]),
        str(message.get("arguments") or ""),
    )


def _response_done(message: dict[str, Any]) -> ResponseDone:
    response = message["response"]
    details = response.get("status_details") or {}
    error = details.get("error") or None
    usage = response.get("usage") or None
    tool_calls = sum(1 for item in response.get("output") or () if item.get("type") == "function_call")
    return ResponseDone(
        str(response["id"]),
        str(response["status"]),
        reason=details.get("reason"),
        error=(error.get("message") or error.get("code") or "failed") if isinstance(error, dict) else None,
        usage=_usage(usage) if isinstance(usage, dict) else None,
        tool_calls=tool_calls,
    )


def _usage(usage: Mapping[str, Any]) -> TokenUsage:
    cached = (usage.get("input_token_details") or {}).get("cached_tokens") or 0
    return TokenUsage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0), int(cached))


def _truncated(message: dict[str, Any]) -> Truncated:
    return Truncated(str(message["item_id"]), int(message["audio_end_ms"]))


def _error(message: dict[str, Any]) -> RealtimeError:
    error = message.get("error") or {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    return RealtimeError(
        str(error.get("type") or "error"),
        error.get("code"),
        str(error.get("message") or "no message"),
        error.get("event_id"),
        error.get("param"),
        error,
    )


_PARSERS: dict[object, Any] = {
    "session.created": _session,
    "session.updated": _session,
    "input_audio_buffer.speech_started": _speech_started,
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "conversation.item.input_audio_transcription.delta": _transcription_delta,
    "conversation.item.input_audio_transcription.completed": _transcription_done,
    "response.created": _response_created,
    "response.output_audio.delta": _audio,
    "response.output_audio_transcript.delta": _transcript_delta,
    "response.output_audio_transcript.done": _transcript_done,
    "response.function_call_arguments.done": _function_call,
    "response.done": _response_done,
    "conversation.item.truncated": _truncated,
    "error": _error,
}
