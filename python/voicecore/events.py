"""What observers see of a call: frozen, slotted event records.

Every event carries the ``call_id`` and the loop time ``at`` (seconds) it happened. Observers
(:mod:`voicecore.observers`) receive them off the audio path. Transcripts are PII: observers
that log or store them should pass them through :func:`voicecore.redact.redact`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voicecore.call_info import CallInfo
from voicecore.usage import CallUsage

__all__ = [
    "AgentSaid",
    "BargedIn",
    "CallClosed",
    "CallOpened",
    "CallerPressed",
    "CallerSaid",
    "ToolCalled",
    "ToolReturned",
    "TurnTimings",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOpened:
    """A call started; ``call`` says who is on the line (numbers, direction, the call's data)."""

    call_id: str
    at: float
    call: CallInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallClosed:
    """A call ended; ``reason`` is who or what ended it, ``usage`` what it used and cost."""

    call_id: str
    at: float
    reason: str
    usage: CallUsage = field(default_factory=CallUsage)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerSaid:
    """A transcript update of the caller's speech (interim ones are replaced by later ones)."""

    call_id: str
    at: float
    text: str
    final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSaid:
    """What the caller heard of reply ``turn`` (0: greetings, fillers and prompts).

    ``complete`` is False when a barge-in cut the reply and ``text`` is only the heard part.
    """

    call_id: str
    at: float
    turn: int
    text: str
    complete: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerPressed:
    """The caller pressed a key."""

    call_id: str
    at: float
    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCalled:
    """The LLM called a tool during reply ``turn``."""

    call_id: str
    at: float
    turn: int
    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolReturned:
    """A tool call of reply ``turn`` finished."""

    call_id: str
    at: float
    turn: int
    name: str
    content: str
    is_error: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BargedIn:
    """The caller interrupted reply ``turn``; ``dropped_ms`` of queued audio never played."""

    call_id: str
    at: float
    turn: int | None
    dropped_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnTimings:
    """Where the time of one turn went, in seconds after the end of the caller's speech.

    Measured with ``time.perf_counter`` (finer than the loop's clock). A stage the turn never
    reached is None. ``first_audio_played`` is playback truth (the
    first mark echoed), the latency the caller actually experienced.
    """

    call_id: str
    at: float
    turn: int
    stt_final: float | None = None
    llm_first_token: float | None = None
    first_sentence: float | None = None
    tts_first_byte: float | None = None
    first_audio_sent: float | None = None
    first_audio_played: float | None = None

    STAGES = (
        "stt_final",
        "llm_first_token",
        "first_sentence",
        "tts_first_byte",
        "first_audio_sent",
        "first_audio_played",
    )
