"""The end-of-call report: one JSON document per call, assembled from the call's events.

:class:`ReportBuilder` takes events (:mod:`voicecore.events`) as they happen and gives a
call's :class:`CallReport` at its ``CallClosed``; :func:`retry_delay` is the delivery's retry
policy. No I/O and no clock: the caller passes the offset from event time to wall time.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import msgspec

from voicecore import events as ev
from voicecore.call_info import CallInfo
from voicecore.redact import redact, redact_obj
from voicecore.usage import CallUsage

__all__ = [
    "CallReport",
    "ReportBuilder",
    "ToolUse",
    "TranscriptEntry",
    "TurnLatency",
    "encode",
    "retry_delay",
]

logger = logging.getLogger(__name__)

#: Statuses worth another attempt: timeouts, rate limits and server errors.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class TranscriptEntry(msgspec.Struct, omit_defaults=True):
    """One line of the transcript: what the caller said (final text), what they heard, a key.

    ``at`` is seconds since the call opened; an agent line has its reply's ``turn`` (0:
    greetings and fixed phrases) and ``complete`` False when a barge-in cut it.
    """

    role: Literal["caller", "agent", "keypad"]
    text: str
    at: float
    turn: int | None = None
    complete: bool | None = None


class ToolUse(msgspec.Struct, omit_defaults=True):
    """A tool the LLM called during reply ``turn``, and what it returned (None: no answer yet)."""

    turn: int
    name: str
    arguments: str
    at: float
    result: str | None = None
    is_error: bool | None = None


class TurnLatency(msgspec.Struct):
    """Where one turn's time went, in ms after the end of the caller's speech (None: not reached)."""

    turn: int
    ms: dict[str, float | None]


class CallReport(msgspec.Struct, kw_only=True):
    """What happened on one call, as the report webhook sends it (``type`` ``call.ended``)."""

    type: str = "call.ended"
    call_id: str
    call: CallInfo | None
    started_at: str
    ended_at: str
    duration_s: float
    reason: str
    transcript: list[TranscriptEntry]
    tools: list[ToolUse]
    barge_ins: int
    turns: list[TurnLatency]
    usage: CallUsage


@dataclass(slots=True)
class _Open:
    """A call whose report is being gathered."""

    opened: float
    call: CallInfo | None = None
    transcript: list[TranscriptEntry] = field(default_factory=list)
    tools: list[ToolUse] = field(default_factory=list)
    barge_ins: int = 0
    turns: list[TurnLatency] = field(default_factory=list)


class ReportBuilder:
    """Gathers each call's events and gives its report when it closes.

    Args:
        redact: Redact PII (cards, SSNs, phone numbers, e-mails) in texts, tool data and
            the call's numbers and parameters.
        max_open: Calls gathered at once; past it the oldest is dropped (a call whose
            ``CallClosed`` never came must not grow memory forever).
    """

    def __init__(self, *, redact: bool = False, max_open: int = 10_000) -> None:
        self.redact = redact
        self.max_open = max_open
        self._open: dict[str, _Open] = {}

    @property
    def open_calls(self) -> int:
        """Calls seen but not closed yet."""
        return len(self._open)

    def add(self, event: object, wall_offset: float) -> CallReport | None:
        """Take one event; at a ``CallClosed``, the call's report.

        Args:
            event: Any event; those without a ``call_id`` are ignored.
            wall_offset: Seconds to add to an event's ``at`` to get Unix time.
        """
        call_id = getattr(event, "call_id", None)
        at = getattr(event, "at", None)
        if not isinstance(call_id, str) or not isinstance(at, float | int):
            return None
        if isinstance(event, ev.CallClosed):
            gathered = self._open.pop(call_id, None) or _Open(opened=at)
            return self._report(call_id, gathered, event, wall_offset)
        call = self._open.get(call_id)
        if call is None:
            call = self._open[call_id] = _Open(opened=at)
            if len(self._open) > self.max_open:
                oldest = next(iter(self._open))
                del self._open[oldest]
                logger.warning("call report: more than %d calls open; dropped %s's", self.max_open, oldest)
        self._gather(call, event, at - call.opened)
        return None

    def _gather(self, call: _Open, event: object, since: float) -> None:
        since = round(since, 3)
        match event:
            case ev.CallOpened(call=info):
                call.call = info
            case ev.CallerSaid(text=text, final=True):
                call.transcript.append(TranscriptEntry("caller", self._text(text), since))
            case ev.AgentSaid(text=text, turn=turn, complete=complete):
                call.transcript.append(TranscriptEntry("agent", self._text(text), since, turn, complete))
            case ev.CallerPressed(digit=digit):
                call.transcript.append(TranscriptEntry("keypad", digit, since))
            case ev.ToolCalled(turn=turn, name=name, arguments=arguments):
                call.tools.append(ToolUse(turn, name, self._text(arguments), since))
            case ev.ToolReturned(turn=turn, name=name, content=content, is_error=is_error):
                for use in call.tools:
                    if use.turn == turn and use.name == name and use.result is None:
                        use.result, use.is_error = self._text(content), is_error
                        break
            case ev.BargedIn():
                call.barge_ins += 1
            case ev.TurnTimings():
                ms = {stage: _ms(getattr(event, stage)) for stage in ev.TurnTimings.STAGES}
                call.turns.append(TurnLatency(event.turn, ms))

    def _report(self, call_id: str, call: _Open, closed: ev.CallClosed, wall_offset: float) -> CallReport:
        info = call.call
        if info is not None and self.redact:
            info = dataclasses.replace(
                info,
                from_number=_redacted(info.from_number),
                to_number=_redacted(info.to_number),
                caller_name=_redacted(info.caller_name),
                parameters=redact_obj(dict(info.parameters)),
            )
        return CallReport(
            call_id=call_id,
            call=info,
            started_at=_iso(call.opened + wall_offset),
            ended_at=_iso(closed.at + wall_offset),
            duration_s=round(max(closed.at - call.opened, 0.0), 3),
            reason=closed.reason,
            transcript=call.transcript,
            tools=call.tools,
            barge_ins=call.barge_ins,
            turns=call.turns,
            usage=closed.usage,
        )

    def _text(self, text: str) -> str:
        return redact(text) if self.redact else text


def retry_delay(
    attempts: int,
    status: int | None,
    retry_after: str | None = None,
    *,
    now: float = 0.0,
    backoff: float = 1.0,
    cap: float = 60.0,
) -> float | None:
    """Seconds to wait before the next delivery attempt; None when there is none to make.

    Args:
        attempts: Attempts made so far (1 after the first).
        status: The HTTP status of the last attempt (None: no answer: refused, reset, timed out).
        retry_after: Its ``Retry-After`` header (seconds, or an HTTP date), if any.
        now: Unix time, to read a ``Retry-After`` date against.
        backoff: The first wait; each later one doubles.
        cap: The longest wait, whatever ``Retry-After`` asks.
    """
    if status is not None and status not in RETRYABLE_STATUSES:
        return None  # delivered, or refused in a way another attempt would not change
    delay = min(backoff * 2.0 ** (attempts - 1), cap)
    asked = _retry_after(retry_after, now)
    return delay if asked is None else min(max(delay, asked), cap)


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - now, 0.0)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact(text)


def encode(report: CallReport) -> bytes:
    """The report's JSON body."""
    return _encoder.encode(report)


_encoder = msgspec.json.Encoder()
