"""Twilio Media Streams, bidirectional (``<Connect><Stream>``), without I/O.

:class:`TwilioProtocol` is fed the WebSocket's messages as they arrive
(:meth:`~TwilioProtocol.receive_text`, :meth:`~TwilioProtocol.receive_bytes`) and hands out
what they meant (:meth:`~TwilioProtocol.events_received`: :class:`StreamStarted`, then the
call events of :mod:`voicecore.sansio.call_events`); the agent's side calls
:meth:`~TwilioProtocol.send_audio`, :meth:`~TwilioProtocol.send_mark` and
:meth:`~TwilioProtocol.send_clear`, and the caller of the protocol sends what
:meth:`~TwilioProtocol.data_to_send` returns as text frames. No socket, no clock.

Messages are parsed with msgspec into typed structs. Caller audio is base64 μ-law 8 kHz; the
engine side gets it either untouched (μ-law 8 kHz, the cheapest: no resampling delay, and
telephony-grade STT and TTS providers speak μ-law natively) or as PCM16 at an engine rate
through the Rust :class:`~voicecore.audio.TwilioFrameDecoder` /
:class:`~voicecore.audio.TwilioFrameEncoder` (one call per frame).

Bad input never raises: invalid JSON, unknown events, missing fields, bad base64, a wrong
``streamSid``, audio before ``start``, oversized or binary messages are counted in
:attr:`TwilioProtocol.problems`, logged once per kind at WARNING, and skipped.

Media chunks carry a sequence number; gaps are counted in :attr:`TwilioProtocol.frames_lost`,
and the frames decoded in :attr:`TwilioProtocol.frames_received`.

Marks: Twilio echoes a mark once the audio queued before it has played, and after a ``clear``
it echoes every mark still pending at once. Only the first kind means "played": the protocol
reports :class:`MarkPlayed` for marks that were outstanding, and swallows the echoes of marks
that a ``clear`` discarded (:attr:`TwilioProtocol.cleared_marks` counts them).
"""

from __future__ import annotations

import binascii
import logging
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from voicecore.audio import TwilioFrameDecoder, TwilioFrameEncoder
from voicecore.errors import AudioFormatError, ConfigError, ProtocolError
from voicecore.sansio.call_events import CallerAudio, CallerHungUp, CallEvent, DtmfPressed, MarkPlayed

__all__ = ["MediaFramer", "StreamStarted", "TwilioEvent", "TwilioProtocol"]

logger = logging.getLogger(__name__)

#: Larger text messages are refused unread (a Twilio media message is about 300 characters).
MAX_MESSAGE_CHARS = 64 * 1024
_NOT_STARTED = "cannot send to a Twilio stream before its 'start' message"

# --- wire messages (msgspec structs; Twilio's camelCase field names) ---------------------------


class _MediaFormat(msgspec.Struct, rename="camel"):
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


class _StartInfo(msgspec.Struct, rename="camel"):
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    tracks: list[str] = msgspec.field(default_factory=list)
    custom_parameters: dict[str, str] = msgspec.field(default_factory=dict)
    media_format: _MediaFormat = msgspec.field(default_factory=_MediaFormat)


class _MediaInfo(msgspec.Struct, gc=False):  # strings only: no cycles for the collector to track
    payload: str
    track: str = "inbound"
    chunk: str = ""
    timestamp: str = ""


class _DtmfInfo(msgspec.Struct):
    digit: str
    track: str = "inbound_track"


class _MarkInfo(msgspec.Struct):
    name: str


class _StopInfo(msgspec.Struct, rename="camel"):
    account_sid: str = ""
    call_sid: str = ""


class _In(msgspec.Struct, tag_field="event", rename="camel", kw_only=True):
    sequence_number: str = ""


class _Connected(_In, tag="connected"):
    protocol: str = ""
    version: str = ""


class _Start(_In, tag="start"):
    start: _StartInfo
    stream_sid: str = ""


class _Media(_In, tag="media", gc=False):
    stream_sid: str
    media: _MediaInfo


class _Dtmf(_In, tag="dtmf"):
    stream_sid: str
    dtmf: _DtmfInfo


class _Mark(_In, tag="mark"):
    stream_sid: str
    mark: _MarkInfo


class _Stop(_In, tag="stop"):
    stream_sid: str
    stop: _StopInfo = msgspec.field(default_factory=_StopInfo)


class _Event(msgspec.Struct):
    """Just the event name, to say what a message that failed to parse claimed to be."""

    event: str = "?"


class _OutMediaInfo(msgspec.Struct):
    payload: str


class _OutMarkInfo(msgspec.Struct):
    name: str


class _OutMedia(msgspec.Struct, tag_field="event", tag="media", rename="camel"):
    stream_sid: str
    media: _OutMediaInfo


class _OutMark(msgspec.Struct, tag_field="event", tag="mark", rename="camel"):
    stream_sid: str
    mark: _OutMarkInfo


class _OutClear(msgspec.Struct, tag_field="event", tag="clear", rename="camel"):
    stream_sid: str


_Inbound = _Connected | _Start | _Media | _Dtmf | _Mark | _Stop
_decoder = msgspec.json.Decoder(_Inbound)
_event_decoder = msgspec.json.Decoder(_Event)
_encoder = msgspec.json.Encoder()


class MediaFramer:
    """Outbound ``media`` messages of one stream, from base64 payloads.

    The JSON around the payload is the same for every message of a stream, so msgspec encodes
    it once (escaping the stream SID as needed) and each message is that text with the payload
    spliced in: base64 is plain ASCII that JSON strings carry unescaped. About 4x cheaper
    per 20 ms frame than encoding a struct each time. ``head`` and ``tail`` are that text, for
    a :class:`~voicecore.audio.TwilioFrameEncoder` to splice payloads into (``set_envelope``).
    """

    __slots__ = ("head", "tail")

    def __init__(self, stream_sid: str) -> None:
        empty = _encoder.encode(_OutMedia(stream_sid, _OutMediaInfo(""))).decode()
        split = empty.rindex('""') + 1  # between the quotes of the empty payload
        self.head, self.tail = empty[:split], empty[split:]

    def __call__(self, payloads: list[str]) -> list[str]:
        """One ``media`` message per base64 payload, in order."""
        head, tail = self.head, self.tail
        return [head + payload + tail for payload in payloads]


# --- events out --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """The ``start`` message: which call this stream belongs to.

    Attributes:
        stream_sid: The stream's id (``MZ...``); every later message carries it.
        call_sid: The call's id (``CA...``).
        account_sid: The Twilio account (``AC...``).
        custom_parameters: The ``<Parameter>`` values of the TwiML ``<Stream>``.
        encoding: The audio encoding Twilio announced (``audio/x-mulaw``).
        sample_rate: The announced sample rate (8000).
        channels: The announced channel count (1).
    """

    stream_sid: str
    call_sid: str
    account_sid: str = ""
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


TwilioEvent = StreamStarted | CallEvent


class TwilioProtocol:
    """One Media Streams WebSocket, server side, as a state machine.

    Args:
        engine_rate: Sample rate of PCM16 on the engine side, or ``None`` to pass μ-law 8 kHz
            through untouched (no decode, no resampling).
        quality: Resampler profile of the Rust codec (``"hq"`` or ``"fast"``); unused for
            μ-law passthrough.
        max_message_chars: Text messages longer than this are skipped unread.

    Raises:
        ConfigError: ``quality`` is invalid.
        AudioFormatError: ``engine_rate`` is not a supported rate.
    """

    def __init__(
        self,
        *,
        engine_rate: int | None = None,
        quality: str = "hq",
        max_message_chars: int = MAX_MESSAGE_CHARS,
    ) -> None:
        self.engine_rate = engine_rate
        self.max_message_chars = max_message_chars
        self._decoder = TwilioFrameDecoder(engine_rate, quality=quality) if engine_rate else None
        self._encoder = TwilioFrameEncoder(engine_rate, quality=quality) if engine_rate else None
        if engine_rate is None and quality not in ("hq", "fast"):
            raise ConfigError(f"quality must be 'hq' or 'fast', not {quality!r}")
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.stopped = False
        self.problems: Counter[str] = Counter()
        self.cleared_marks = 0
        self.frames_lost = 0
        self.frames_received = 0
        self._last_chunk = 0
        self._outstanding: deque[str] = deque()
        self._cleared: Counter[str] = Counter()
        self._events: list[TwilioEvent] = []
        self._out: list[str] = []
        self._media: MediaFramer | None = None

    # --- input --------------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Feed one text message from Twilio."""
        if len(text) > self.max_message_chars:
            self._problem("oversized", f"a {len(text)}-character message (limit {self.max_message_chars})")
            return
        try:
            message = _decoder.decode(text)
        except msgspec.DecodeError as error:
            self._malformed(text, error)
            return
        if self.stopped:
            self._problem("after-stop", f"a {_event_name(message)!r} message after 'stop'")
            return
        match message:
            case _Media(media=media):
                if self._expect_stream(message.stream_sid, "media"):
                    self._count_chunk(media.chunk)
                    self._on_media(media.payload, int(media.timestamp) if media.timestamp.isdigit() else None)
            case _Mark(mark=mark):
                if self._expect_stream(message.stream_sid, "mark"):
                    self._on_mark(mark.name)
            case _Dtmf(dtmf=dtmf):
                if self._expect_stream(message.stream_sid, "dtmf"):
                    self._events.append(DtmfPressed(dtmf.digit))
            case _Start():
                self._on_start(message)
            case _Stop():
                if self._expect_stream(message.stream_sid, "stop"):
                    self.stopped = True
                    self._events.append(CallerHungUp())
            case _Connected():
                if self.stream_sid is not None:
                    self._problem("late-connected", "a 'connected' message after 'start'")

    def receive_bytes(self, data: bytes) -> None:
        """Feed one binary message: Twilio never sends them, so it is skipped (error 31950)."""
        self._problem("binary", f"a {len(data)}-byte binary message (Media Streams messages are text)")

    def events_received(self) -> list[TwilioEvent]:
        """What the messages fed since the last call meant, in order."""
        events, self._events = self._events, []
        return events

    def _on_start(self, message: _Start) -> None:
        info = message.start
        if self.stream_sid is not None:
            self._problem("repeated-start", "a second 'start' message")
            return
        if not info.stream_sid or not info.call_sid:
            self._problem("invalid", "a 'start' message without streamSid or callSid")
            return
        fmt = info.media_format
        if (fmt.encoding, fmt.sample_rate, fmt.channels) != ("audio/x-mulaw", 8000, 1):
            self._problem("media-format", f"unexpected media format {fmt.encoding} {fmt.sample_rate} Hz")
        self.stream_sid, self.call_sid = info.stream_sid, info.call_sid
        self._media = MediaFramer(info.stream_sid)
        if self._encoder is not None:
            self._encoder.set_envelope(self._media.head, self._media.tail)
        self._events.append(
            StreamStarted(
                stream_sid=info.stream_sid,
                call_sid=info.call_sid,
                account_sid=info.account_sid,
                custom_parameters=dict(info.custom_parameters),
                encoding=fmt.encoding,
                sample_rate=fmt.sample_rate,
                channels=fmt.channels,
            )
        )

    def _on_media(self, payload: str, timestamp_ms: int | None) -> None:
        try:
            if self._decoder is not None:
                audio = self._decoder.decode(payload)
            else:
                audio = binascii.a2b_base64(payload, strict_mode=True)
        except (AudioFormatError, binascii.Error, ValueError):
            self._problem("bad-base64", "a media payload that is not valid base64")
            return
        if audio:
            self.frames_received += 1
            self._events.append(CallerAudio(audio, timestamp_ms))

    def _count_chunk(self, chunk: str) -> None:
        """Twilio numbers media chunks from 1; a jump means frames lost on the way."""
        if not chunk.isdigit():
            return
        number = int(chunk)
        if number > self._last_chunk + 1 and self._last_chunk:
            self.frames_lost += number - self._last_chunk - 1
        self._last_chunk = max(self._last_chunk, number)

    def _on_mark(self, name: str) -> None:
        if self._cleared[name]:
            # Echoed because a clear discarded the audio before it: nothing was played.
            self._cleared[name] -= 1
            if not self._cleared[name]:
                del self._cleared[name]
            self.cleared_marks += 1
            return
        try:
            self._outstanding.remove(name)
        except ValueError:
            self._problem("unknown-mark", "an echo of a mark that was not sent or was already echoed")
            return
        self._events.append(MarkPlayed(name))

    def _expect_stream(self, stream_sid: str, kind: str) -> bool:
        if self.stream_sid is None:
            self._problem("before-start", f"a {kind!r} message before 'start'")
            return False
        if stream_sid != self.stream_sid:
            self._problem("wrong-stream", f"a {kind!r} message for another streamSid")
            return False
        return True

    def _malformed(self, text: str, error: msgspec.DecodeError) -> None:
        try:
            name = _event_decoder.decode(text).event
        except msgspec.DecodeError:
            self._problem("invalid-json", "a message that is not a JSON object")
            return
        if name not in ("connected", "start", "media", "dtmf", "mark", "stop"):
            self._problem("unknown-event", f"an unknown event {name[:40]!r}")
        else:
            self._problem("invalid", f"an invalid {name!r} message ({error})")

    def _problem(self, kind: str, what: str) -> None:
        """Count a bad message; the first of each kind per stream is logged as a warning."""
        self.problems[kind] += 1
        if self.problems[kind] == 1:
            logger.warning("Twilio stream %s: skipped %s", self.stream_sid or "(not started)", what)
        else:
            logger.debug("Twilio stream %s: skipped %s", self.stream_sid, what)

    # --- output -------------------------------------------------------------------------------

    def send_audio(self, audio: bytes) -> None:
        """Queue agent audio in the engine format (μ-law 8 kHz, or PCM16 at ``engine_rate``).

        Raises:
            AudioFormatError: PCM16 audio with an odd number of bytes.
        """
        if self._encoder is not None:
            self._send_messages(self._encoder.encode(audio))
        elif audio:
            self._send_payloads([binascii.b2a_base64(audio, newline=False).decode("ascii")])

    def send_mark(self, name: str) -> None:
        """Queue a mark; :class:`MarkPlayed` comes when everything sent before it has played."""
        if self._encoder is not None:
            self._send_messages(self._encoder.flush())  # the audio before the mark, to the last sample
        self._outstanding.append(name)
        self._out.append(self._encode(_OutMark(self._sid(), _OutMarkInfo(name))))

    def send_clear(self) -> None:
        """Drop all agent audio Twilio has queued (barge-in); pending marks will not be reported."""
        if self._encoder is not None:
            self._encoder.clear()
        self._cleared.update(self._outstanding)
        self._outstanding.clear()
        self._out.append(self._encode(_OutClear(self._sid())))

    @property
    def outstanding_marks(self) -> tuple[str, ...]:
        """Marks sent and not yet echoed, oldest first."""
        return tuple(self._outstanding)

    def data_to_send(self) -> list[str]:
        """Text messages to send to Twilio, in order, since the last call."""
        out, self._out = self._out, []
        return out

    def _send_payloads(self, payloads: list[str]) -> None:
        if self._media is None:
            raise ProtocolError(_NOT_STARTED, kind="start")
        self._out += self._media(payloads)

    def _send_messages(self, messages: Sequence[str]) -> None:
        """Whole ``media`` messages from the encoder (it has the stream's envelope from ``start``)."""
        if messages:
            if self._media is None:
                raise ProtocolError(_NOT_STARTED, kind="start")
            self._out += messages

    def _sid(self) -> str:
        if self.stream_sid is None:
            raise ProtocolError(_NOT_STARTED, kind="start")
        return self.stream_sid

    @staticmethod
    def _encode(message: msgspec.Struct) -> str:
        return _encoder.encode(message).decode()


def _event_name(message: _In) -> str:
    return type(message).__struct_config__.tag or "?"  # type: ignore[return-value]
