"""The browser's WebSocket protocol (``/ws``), without I/O.

Text frames are JSON control messages, each an object with a ``type``; binary frames are audio,
PCM16 little-endian mono. :class:`WireProtocol` is fed the frames as they arrive
(:meth:`~WireProtocol.receive_text`, :meth:`~WireProtocol.receive_bytes`) and hands out what
they meant (:meth:`~WireProtocol.events_received`: :class:`Started`, then the call events of
:mod:`voicecore.sansio.call_events`); the agent's side queues audio, marks,
``clear``, transcripts and latency figures, and the caller of the protocol sends what
:meth:`~WireProtocol.data_to_send` returns (``str`` as text frames, ``bytes`` as binary).

Client to server:
    ``{"type": "start", "sample_rate": 16000}`` first: the rate of the client's audio in both
    directions (8000, 16000, 22050, 24000, 44100 or 48000). Caller audio at another rate than
    16 kHz is resampled here, once, in Rust; the agent's audio is sent at ``sample_rate``.
    It may carry the call's own data, ``"parameters": {"first_name": "Ana"}`` (string values;
    the agent's ``{{first_name}}``, a tool's ``CallInfo.parameters``); an invalid one is
    dropped and counted, and the call goes on.
    Binary frames: caller audio, any length (an even number of bytes).
    ``{"type": "played", "mark": "m3"}``: every audio byte received before mark ``m3`` has
    been played out of the speaker. Acknowledge marks in order, once each, and never the marks
    that a ``clear`` dropped. This is the server's playback truth: what the agent remembers
    having said is what was acknowledged.
    ``{"type": "dtmf", "digit": "5"}``: a key press. ``{"type": "stop"}``: the caller hangs up.

Server to client:
    Binary frames: agent audio at ``sample_rate``, to be queued for playback.
    ``{"type": "mark", "name": "m3"}``: acknowledge with ``played`` once the audio queued
    before it has played. ``{"type": "clear"}``: drop all queued audio and its marks at once
    (the caller barged in). ``{"type": "transcript", "role": "caller", "text": ..., "final":
    false}`` (interim results are replaced by later ones) and ``{"type": "transcript", "role":
    "agent", "text": ..., "final": true, "turn": 2, "complete": false}`` (what the caller heard
    of reply ``turn``; ``complete`` is false when a barge-in cut it). ``{"type": "turn",
    "turn": 2, "ms": {"stt_final": 80.1, ..., "first_audio_played": 612.0}}``: where one
    turn's time went, in ms after the end of the caller's speech (a stage not reached is
    null). ``{"type": "end", "reason": "hangup" | "transfer" | "busy" | "shutdown", "message":
    ...}``: the call is over; the server closes the socket next.

Bad input never raises: invalid JSON, unknown types, missing fields, audio before ``start``,
odd-length audio, acknowledgements of marks never sent are counted in
:attr:`WireProtocol.problems`, logged once per kind at WARNING, and skipped.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from voicecore import events as ev
from voicecore.audio import Resampler
from voicecore.call_info import MAX_PARAMETERS, parameter_problem
from voicecore.errors import AudioFormatError, ProtocolError
from voicecore.sansio.call_events import CallerAudio, CallerHungUp, CallEvent, DtmfPressed, MarkPlayed

__all__ = [
    "ENGINE_RATE",
    "RATES",
    "Started",
    "WireEvent",
    "WireProtocol",
]

logger = logging.getLogger(__name__)

#: Caller audio reaches the session as PCM16 at this rate.
ENGINE_RATE = 16000
#: Sample rates a client may announce in ``start``.
RATES = (8000, 16000, 22050, 24000, 44100, 48000)
#: Text messages longer than this are skipped unread (control messages are tiny).
MAX_TEXT_CHARS = 4096

# --- wire messages -----------------------------------------------------------------------------


class _Start(msgspec.Struct, tag_field="type", tag="start"):
    sample_rate: int = ENGINE_RATE
    parameters: dict[str, object] = {}  # checked one by one, so that one bad entry loses nothing


class _Played(msgspec.Struct, tag_field="type", tag="played"):
    mark: str


class _Dtmf(msgspec.Struct, tag_field="type", tag="dtmf"):
    digit: str


class _Stop(msgspec.Struct, tag_field="type", tag="stop"):
    pass


class _Type(msgspec.Struct):
    """Just the type, to say what a message that failed to parse claimed to be."""

    type: str = "?"


class _Mark(msgspec.Struct, tag_field="type", tag="mark"):
    name: str


class _Clear(msgspec.Struct, tag_field="type", tag="clear"):
    pass


class _Transcript(msgspec.Struct, tag_field="type", tag="transcript", omit_defaults=True):
    role: str
    text: str
    final: bool
    turn: int | None = None
    complete: bool | None = None


class _Turn(msgspec.Struct, tag_field="type", tag="turn"):
    turn: int
    ms: dict[str, float | None]


class _End(msgspec.Struct, tag_field="type", tag="end", omit_defaults=True):
    reason: str
    message: str | None = None


_decoder = msgspec.json.Decoder(_Start | _Played | _Dtmf | _Stop)
_type_decoder = msgspec.json.Decoder(_Type)
_encoder = msgspec.json.Encoder()
_KNOWN = ("start", "played", "dtmf", "stop")

# --- events out --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """The ``start`` message: the client's audio rate and the call's own parameters."""

    sample_rate: int
    parameters: Mapping[str, str] = field(default_factory=dict)


WireEvent = Started | CallEvent


class WireProtocol:
    """One ``/ws`` connection, server side, as a state machine.

    Args:
        quality: Resampler profile for caller audio not at :data:`ENGINE_RATE`.
        max_text_chars: Text messages longer than this are skipped unread.
    """

    def __init__(self, *, quality: str = "hq", max_text_chars: int = MAX_TEXT_CHARS) -> None:
        self.quality = quality
        self.max_text_chars = max_text_chars
        self.sample_rate: int | None = None
        self.stopped = False
        self.problems: Counter[str] = Counter()
        self.cleared_marks = 0
        self._resampler: Resampler | None = None
        self._outstanding: deque[str] = deque()
        self._cleared: set[str] = set()
        self._events: list[WireEvent] = []
        self._out: list[str | bytes] = []

    # --- input --------------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Feed one text frame from the client."""
        if len(text) > self.max_text_chars:
            self._problem("oversized", f"a {len(text)}-character message (limit {self.max_text_chars})")
            return
        try:
            message = _decoder.decode(text)
        except msgspec.DecodeError as error:
            self._malformed(text, error)
            return
        if self.stopped:
            self._problem("after-stop", "a message after 'stop'")
            return
        if self.sample_rate is None and not isinstance(message, _Start):
            self._problem("before-start", "a message before 'start'")
            return
        match message:
            case _Start(sample_rate=rate, parameters=parameters):
                self._on_start(rate, parameters)
            case _Played(mark=name):
                self._on_played(name)
            case _Dtmf(digit=digit):
                if len(digit) == 1 and digit in "0123456789*#ABCD":
                    self._events.append(DtmfPressed(digit))
                else:
                    self._problem("invalid", "a 'dtmf' message whose digit is not a key")
            case _Stop():
                self.stopped = True
                self._events.append(CallerHungUp())

    def receive_bytes(self, data: bytes) -> None:
        """Feed one binary frame: caller audio at the announced rate."""
        if self.stopped:
            self._problem("after-stop", "audio after 'stop'")
            return
        if self.sample_rate is None:
            self._problem("before-start", "audio before 'start'")
            return
        if len(data) % 2:
            self._problem("odd-audio", f"a {len(data)}-byte audio frame (PCM16 frames have even lengths)")
            return
        if self._resampler is not None:
            try:
                data = self._resampler.process(data)
            except AudioFormatError:  # pragma: no cover - even lengths are checked above
                self._problem("odd-audio", "an audio frame the resampler refused")
                return
        if data:
            self._events.append(CallerAudio(bytes(data)))

    def events_received(self) -> list[WireEvent]:
        """What the frames fed since the last call meant, in order."""
        events, self._events = self._events, []
        return events

    def _on_start(self, rate: int, parameters: Mapping[str, object]) -> None:
        if self.sample_rate is not None:
            self._problem("repeated-start", "a second 'start' message")
            return
        if rate not in RATES:
            self._problem("invalid", f"a 'start' message with an unsupported sample rate {rate}")
            return
        self.sample_rate = rate
        if rate != ENGINE_RATE:
            self._resampler = Resampler(rate, ENGINE_RATE, quality=self.quality)
        self._events.append(Started(rate, self._parameters(parameters)))

    def _parameters(self, given: Mapping[str, object]) -> dict[str, str]:
        """The valid entries of a ``start`` message's parameters; each invalid one is a problem."""
        if len(given) > MAX_PARAMETERS:
            self._problem("invalid-parameter", f"{len(given)} parameters (at most {MAX_PARAMETERS})")
            return {}
        parameters = {}
        for name, value in given.items():
            if not isinstance(value, str):
                self._problem("invalid-parameter", f"parameter {name!r}: its value is not a string")
            elif problem := parameter_problem(name, value):
                self._problem("invalid-parameter", problem)
            else:
                parameters[name] = value
        return parameters

    def _on_played(self, name: str) -> None:
        if name in self._cleared:
            # Acknowledged while the clear was on its way: the session already counted it cut.
            self._cleared.discard(name)
            self.cleared_marks += 1
            return
        if not self._outstanding or self._outstanding[0] != name:
            self._problem("unknown-mark", "an acknowledgement of a mark not sent, repeated or out of order")
            return
        self._outstanding.popleft()
        self._events.append(MarkPlayed(name))

    def _malformed(self, text: str, error: msgspec.DecodeError) -> None:
        try:
            kind = _type_decoder.decode(text).type
        except msgspec.DecodeError:
            self._problem("invalid-json", "a message that is not a JSON object")
            return
        if kind not in _KNOWN:
            self._problem("unknown-type", f"a message of unknown type {kind[:40]!r}")
        else:
            self._problem("invalid", f"an invalid {kind!r} message ({error})")

    def _problem(self, kind: str, what: str) -> None:
        """Count a bad message; the first of each kind per connection is logged as a warning."""
        self.problems[kind] += 1
        level = logging.WARNING if self.problems[kind] == 1 else logging.DEBUG
        logger.log(level, "browser call: skipped %s", what)

    # --- output -------------------------------------------------------------------------------

    def send_audio(self, audio: bytes) -> None:
        """Queue agent audio, PCM16 at the client's ``sample_rate``, as one binary frame.

        Raises:
            ProtocolError: Before ``start`` (the client's rate is not known yet).
        """
        self._require_start()
        if audio:
            self._out.append(bytes(audio))

    def send_mark(self, name: str) -> None:
        """Queue a mark; :class:`MarkPlayed` comes when the client has played the audio before it."""
        self._require_start()
        self._outstanding.append(name)
        self._out.append(_encode(_Mark(name)))

    def send_clear(self) -> None:
        """Tell the client to drop its queued audio now; the pending marks will not be reported."""
        self._cleared.update(self._outstanding)
        self._outstanding.clear()
        self._out.append(_encode(_Clear()))

    def send_event(self, event: object) -> None:
        """Queue what the client shows of a session event (transcripts, turn latency); others are ignored."""
        match event:
            case ev.CallerSaid(text=text, final=final):
                self._out.append(_encode(_Transcript("caller", text, final)))
            case ev.AgentSaid(text=text, turn=turn, complete=complete):
                self._out.append(_encode(_Transcript("agent", text, True, turn, complete)))
            case ev.TurnTimings():
                ms = {stage: _ms(getattr(event, stage)) for stage in ev.TurnTimings.STAGES}
                self._out.append(_encode(_Turn(event.turn, ms)))

    def send_end(self, reason: str, message: str | None = None) -> None:
        """Tell the client the call is over (the socket is closed after it)."""
        self._out.append(_encode(_End(reason, message)))

    @property
    def outstanding_marks(self) -> tuple[str, ...]:
        """Marks sent and not yet acknowledged, oldest first."""
        return tuple(self._outstanding)

    def data_to_send(self) -> list[str | bytes]:
        """Frames to send, in order, since the last call: ``str`` as text, ``bytes`` as binary."""
        out, self._out = self._out, []
        return out

    def _require_start(self) -> None:
        if self.sample_rate is None:
            raise ProtocolError("cannot send audio to a browser before its 'start' message", kind="start")


def _encode(message: msgspec.Struct) -> str:
    return _encoder.encode(message).decode()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)
