"""A simulated phone caller: Twilio's side of a Media Streams call, over a real WebSocket.

:class:`TwilioCaller` connects to a server's ``/twilio/stream`` the way Twilio does
(``connected``, then ``start`` with custom parameters), streams the caller's μ-law audio in
real-time 20 ms ``media`` frames (silence unless :meth:`TwilioCaller.say` queued speech) and
plays the agent's audio at real-time rate: a mark is echoed once all audio sent before it has
played, and a ``clear`` drops the queued audio and echoes every pending mark at once, exactly
once each, as Twilio does. :meth:`TwilioCaller.hang_up` sends ``stop`` and closes.

It is what ``python -m voicecore call`` runs, what the tests call a fake Twilio, and the
basis of a load generator. :attr:`TwilioCaller.turns` measures each reply's latency as the
caller hears it: from the end of the caller's speech to the agent's first audio, and keeps
the agent audio the caller heard after each utterance (:attr:`TwilioCaller.greeting` before
the first); :func:`recognise` turns such audio into words with any STT (Twilio carries no text).
"""

from __future__ import annotations

import array
import asyncio
import base64
import binascii
import io
import json
import logging
import shutil
import subprocess
import sys
import wave
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from voicecore.audio import Resampler, ulaw_decode, ulaw_encode
from voicecore.errors import AudioFormatError, ConfigError
from voicecore.pacer import pacer
from voicecore.playout_meter import PlayoutMeter
from voicecore.providers.base import MULAW_8K, STT
from voicecore.runtime.convert import AudioConverter

__all__ = [
    "FRAME_BYTES",
    "Turn",
    "TwilioCaller",
    "espeak",
    "media_head",
    "media_message",
    "recognise",
    "simulate",
    "summary",
    "ulaw_from_wav",
    "write_wav",
]

logger = logging.getLogger(__name__)

FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz
_SILENCE_PAYLOAD = binascii.b2a_base64(b"\xff" * FRAME_BYTES, newline=False).decode("ascii")


def media_head(stream_sid: str) -> str:
    """The start of every ``media`` message of a stream, up to its chunk number (:func:`media_message`)."""
    return f'{{"event":"media","streamSid":{json.dumps(stream_sid)},"media":{{"track":"inbound","chunk":"'


def media_message(head: str, chunk: int, payload: str, sequence: int) -> str:
    """A Twilio ``media`` message: ``head`` (:func:`media_head`), frame ``chunk`` 's base64 ``payload``.

    Built by string formatting, not ``json.dumps``: hundreds of callers send 50 a second each, and
    only the numbers change (``payload`` is base64, which needs no escaping).
    """
    return (
        f'{head}{chunk}","timestamp":"{20 * (chunk - 1)}","payload":"{payload}"}},'
        f'"sequenceNumber":"{sequence}"}}'
    )


@dataclass
class Turn:
    """One caller utterance and the agent's answer, in loop time (seconds).

    Attributes:
        spoke_at: When the caller's speech started going out.
        ended_at: When its last frame went out (None while speaking).
        answered_at: When the agent's first audio after it arrived (None until then).
        heard: The agent audio played after it, until the next utterance ended (μ-law 8 kHz).
        interrupted: The caller's next utterance talked over the answer (a barge-in).
    """

    spoke_at: float
    ended_at: float | None = None
    answered_at: float | None = None
    heard: bytearray = field(default_factory=bytearray)
    interrupted: bool = False

    @property
    def latency(self) -> float | None:
        """Seconds from the end of the caller's speech to the agent's first audio."""
        if self.ended_at is None or self.answered_at is None:
            return None
        return self.answered_at - self.ended_at


@dataclass
class TwilioCaller:
    """One call from Twilio's side. Use as ``async with TwilioCaller(url) as call: ...``.

    Attributes:
        url: The server's Media Streams URL (``ws://host:port/twilio/stream``).
        call_sid: The call's id in ``start`` and ``stop``.
        stream_sid: The stream's id on every message after ``connected``.
        account_sid: The Twilio account's id in ``start`` and ``stop``.
        parameters: ``customParameters`` of ``start`` (what the TwiML's ``<Parameter>`` s give).
        played: Agent audio played so far (μ-law 8 kHz).
        greeting: The part of it played before the caller's first utterance ended.
        marks: Marks echoed after their audio played, in order.
        discarded: Marks echoed because a ``clear`` discarded their audio.
        clears: ``clear`` messages received.
        clear_times: When each ``clear`` arrived (loop time).
        received: How many messages of each ``event`` the server sent (a count, not the
            messages: a load test's callers would otherwise hold every audio frame).
        turns: The caller's utterances and when the agent answered each.
        connected_at: When the stream opened.
        first_audio_at: When the agent's first audio arrived (the greeting).
        last_audio_at: When the agent's latest audio arrived.
        close_code: The server's close code, once it closed the stream.
        meter: The agent's audio as the phone plays it: underruns and late frames per answer.
    """

    url: str
    call_sid: str = "CA00000000000000000000000000000001"
    stream_sid: str = "MZ00000000000000000000000000000001"
    account_sid: str = "AC00000000000000000000000000000001"
    parameters: dict[str, str] = field(default_factory=dict)
    played: bytearray = field(default_factory=bytearray)
    greeting: bytearray = field(default_factory=bytearray)
    marks: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    clears: int = 0
    clear_times: list[float] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)
    turns: list[Turn] = field(default_factory=list)
    connected_at: float | None = None
    first_audio_at: float | None = None
    last_audio_at: float | None = None
    close_code: int | None = None
    meter: PlayoutMeter = field(default_factory=PlayoutMeter)

    def __post_init__(self) -> None:
        self._caller: deque[str] = deque()  # base64 payloads of the speech frames to send
        self._playout: deque[tuple[bytes, bytearray] | str] = deque()  # audio and its turn, marks
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._sequence = 0
        self._chunk = 0
        self._stall = 0.0
        self._stall_until: float | None = None
        self._held = 0
        self._speaking = False
        self._media_head = media_head(self.stream_sid)
        self._paced: int | None = None
        self._frames_sent = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def __aenter__(self) -> TwilioCaller:
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(self.url)
        except BaseException:
            await self._http.close()
            raise
        self.connected_at = asyncio.get_running_loop().time()
        # The one message without a sequenceNumber: ``start`` is "1".
        await self._ws.send_str(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self.send(
            {
                "event": "start",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.parameters,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receiver(), name="caller-receive"),
            loop.create_task(self._player(), name="caller-play"),
        ]
        self._paced = pacer().add(self._send_frame)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    # --- what the caller does ---------------------------------------------------------------

    def say(self, ulaw: bytes) -> None:
        """Queue caller speech (μ-law 8 kHz); it goes out after what is already queued."""
        for start in range(0, len(ulaw), FRAME_BYTES):
            frame = ulaw[start : start + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
            self._caller.append(binascii.b2a_base64(frame, newline=False).decode("ascii"))

    @property
    def speaking(self) -> bool:
        """Whether caller speech is still queued."""
        return bool(self._caller)

    @property
    def frames_sent(self) -> int:
        """``media`` frames sent so far (speech and silence; not one the closed stream refused)."""
        return self._frames_sent

    @property
    def playing(self) -> bool:
        """Whether agent audio is still queued to play."""
        return bool(self._playout)

    @property
    def closed(self) -> bool:
        """Whether the stream is closed (by either side)."""
        return self._closed.is_set()

    def stall(self, seconds: float) -> None:
        """Hold the caller's frames back for ``seconds``, then send them at once (a network hiccup).

        They keep their timestamps, so the server sees them arrive late.
        """
        self._stall = seconds

    async def press(self, digit: str) -> None:
        """The caller presses a key."""
        dtmf = {"track": "inbound_track", "digit": digit}
        await self.send({"event": "dtmf", "streamSid": self.stream_sid, "dtmf": dtmf})

    async def send(self, message: dict[str, Any]) -> bool:
        """Send one message with the next ``sequenceNumber`` (from "1"); whether it went (not once closed)."""
        if self._ws is None or self._ws.closed:
            return False
        self._sequence += 1
        await self._ws.send_str(json.dumps({**message, "sequenceNumber": str(self._sequence)}))
        return True

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything at all (to test how a server copes with malformed input)."""
        assert self._ws is not None, "use inside 'async with'"
        if isinstance(data, bytes):
            await self._ws.send_bytes(data)
        else:
            await self._ws.send_str(data)

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then the socket closes."""
        if self._ws is not None and not self._ws.closed:
            self._stop_sending()  # no media after stop
            stop = {"accountSid": self.account_sid, "callSid": self.call_sid}
            await self.send({"event": "stop", "streamSid": self.stream_sid, "stop": stop})
            await self._ws.close()
        await self._finish()

    async def drop(self) -> None:
        """The connection drops: the socket closes with no ``stop`` (a failed line, a crash)."""
        if self._ws is not None and not self._ws.closed:
            self._stop_sending()
            await self._ws.close()
        await self._finish()

    async def closed_by_server(self, within: float = 10.0) -> int | None:
        """Wait until the server closes the stream; returns its close code."""
        async with asyncio.timeout(within):
            await self._closed.wait()
        await self._finish()
        return self.close_code

    def _stop_sending(self) -> None:
        if self._paced is not None:
            pacer().remove(self._paced)
            self._paced = None

    async def _finish(self) -> None:
        self._stop_sending()
        await self._stop_tasks(self._tasks)
        if self._http is not None:
            await self._http.close()

    @staticmethod
    async def _stop_tasks(tasks: Sequence[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- Twilio's side ----------------------------------------------------------------------

    async def _send_frame(self, due: float) -> None:
        """Send the caller's next 20 ms frame (the pacer calls this every 20 ms; ``due``: its time)."""
        if self._ws is None or self._ws.closed:
            return
        if self._stall:
            if self._stall_until is None:
                self._stall_until = due + self._stall
            if due < self._stall_until:
                self._held += 1  # sent, with its own chunk number, once the stall is over
                return
            self._stall, self._stall_until = 0.0, None
        try:
            for _ in range(self._held + 1):
                await self._send_media(due)
        except ConnectionResetError:
            pass  # the stream is closing: the receiver sees it end
        self._held = 0

    async def _send_media(self, due: float) -> None:
        if self._caller:
            if not self._speaking:
                self._speaking = True
                self.turns.append(Turn(spoke_at=due))
            payload = self._caller.popleft()
        else:
            if self._speaking:
                self._speaking = False
                self.turns[-1].ended_at = due
                self.meter.end_answer()
            payload = _SILENCE_PAYLOAD
        self._chunk += 1
        if self._ws is None or self._ws.closed:
            return
        self._sequence += 1
        await self._ws.send_str(media_message(self._media_head, self._chunk, payload, self._sequence))
        self._frames_sent += 1

    async def _receiver(self) -> None:
        assert self._ws is not None
        loop = asyncio.get_running_loop()
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                logger.warning("the server sent a non-text message (%s)", message.type.name)
                continue
            data = json.loads(message.data)
            event = data.get("event")
            self.received[str(event)] += 1
            if data.get("streamSid") != self.stream_sid:
                logger.warning("the server sent a %r message for another streamSid", event)
            match event:
                case "media":
                    now = loop.time()
                    self.last_audio_at = now
                    if self.first_audio_at is None:
                        self.first_audio_at = now
                    if (
                        self.turns
                        and self.turns[-1].ended_at is not None
                        and self.turns[-1].answered_at is None
                    ):
                        self.turns[-1].answered_at = now
                    audio = base64.b64decode(data["media"]["payload"])
                    self.meter.audio(now, len(audio) / 8000)
                    self._playout.append((audio, self._answering()))
                case "mark":
                    self._playout.append(data["mark"]["name"])
                case "clear":
                    self.clears += 1
                    self.clear_times.append(loop.time())
                    self.meter.end_answer()
                    pending = [item for item in self._playout if isinstance(item, str)]
                    self._playout.clear()
                    for name in pending:  # Twilio echoes every mark the clear discarded
                        self.discarded.append(name)
                        await self._echo(name)
            self._wake.set()
        self.close_code = self._ws.close_code
        self._closed.set()

    def _answering(self) -> bytearray:
        """Where agent audio arriving now belongs: the latest finished utterance's answer."""
        for turn in reversed(self.turns):
            if turn.ended_at is not None:
                return turn.heard
        return self.greeting

    async def _player(self) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time()  # when the audio handed to the "speaker" so far ends
        while True:
            if not self._playout:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._playout.popleft()
            if isinstance(item, str):
                self.marks.append(item)
                await self._echo(item)
                continue
            audio, heard = item
            until = max(until, loop.time()) + len(audio) / 8000
            self.played += audio
            heard += audio
            await asyncio.sleep(until - loop.time())

    async def _echo(self, name: str) -> None:
        await self.send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})


# --- audio in and out ---------------------------------------------------------------------------


def ulaw_from_wav(data: bytes) -> bytes:
    """A 16-bit PCM WAV file's audio (first channel) as a phone line carries it: μ-law 8 kHz.

    Raises:
        AudioFormatError: Not a 16-bit PCM WAV, or a sample rate the resampler does not take.
    """
    try:
        with wave.open(io.BytesIO(data)) as reader:
            rate, width, channels = reader.getframerate(), reader.getsampwidth(), reader.getnchannels()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as error:
        raise AudioFormatError(f"not a WAV file: {error}") from None
    if width != 2:
        raise AudioFormatError(f"the WAV has {8 * width}-bit samples; give 16-bit PCM")
    if channels > 1:
        samples = array.array("h", frames)[::channels]
        frames = samples.tobytes()
    resampler = Resampler(rate, 8000) if rate != 8000 else None
    pcm = resampler.process(frames) + resampler.flush() if resampler is not None else frames
    return ulaw_encode(pcm)


def espeak(text: str) -> bytes:
    """``text`` spoken by espeak-ng, as μ-law 8 kHz.

    Raises:
        ConfigError: espeak-ng is not installed.
    """
    if shutil.which("espeak-ng") is None:
        raise ConfigError("speaking text needs espeak-ng (apt install espeak-ng); or give a WAV file")
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    return ulaw_from_wav(wav)


def write_wav(path: Path, ulaw: bytes) -> None:
    """Write μ-law 8 kHz audio as a 16-bit PCM WAV file."""
    pcm = ulaw_decode(ulaw)
    if sys.byteorder == "big":
        samples = array.array("h", pcm)
        samples.byteswap()
        pcm = samples.tobytes()
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(pcm)


async def recognise(stt: STT, ulaw: bytes, language: str = "en") -> str:
    """What ``stt`` hears in ``ulaw`` (μ-law 8 kHz): its final text, or "" for no words."""
    if not ulaw:
        return ""
    offered = stt.input_formats()
    fmt = MULAW_8K if MULAW_8K in offered else offered[0]
    convert = AudioConverter(MULAW_8K, fmt)
    stream = await stt.open(fmt, language=language)
    try:
        await stream.push_audio(convert.convert(ulaw) + convert.flush())
        await stream.finalize()
        async for update in stream:
            if update.final:
                return update.text
        return ""
    finally:
        await stream.aclose()


# --- a scripted call --------------------------------------------------------------------------


async def simulate(
    url: str,
    utterances: Sequence[bytes],
    *,
    settle: float = 1.5,
    answer_within: float = 10.0,
    limit: float = 300.0,
    barge_in: float | None = None,
    parameters: Mapping[str, str] | None = None,
) -> TwilioCaller:
    """Call ``url``, wait for the greeting, say each utterance and wait for each reply, hang up.

    After connecting and after each utterance, the caller waits up to ``answer_within`` seconds
    for agent audio; the answer is over once its audio has played and nothing new came for
    ``settle`` seconds. With ``barge_in``, every answer but the last is interrupted: the next
    utterance starts ``barge_in`` seconds after the answer's first audio arrived.

    Args:
        url: The server's Media Streams URL.
        utterances: What the caller says, in turn (μ-law 8 kHz each).
        settle: Seconds of agent silence that end an answer.
        answer_within: Seconds to wait for an answer (or the greeting) to start.
        limit: Seconds the whole call may take.
        barge_in: Seconds into each answer (but the last) at which the caller talks over it.
        parameters: The call's own data (``start``'s ``customParameters``, as TwiML would give).

    Returns:
        The finished call, with what was played, the marks and each turn's latency.
    """
    async with asyncio.timeout(limit), TwilioCaller(url, parameters=dict(parameters or {})) as call:
        await _answer(call, lambda: call.first_audio_at is not None, settle, answer_within)
        for index, utterance in enumerate(utterances):
            if call.closed:
                break
            call.say(utterance)
            turns = len(call.turns)
            while (call.speaking or len(call.turns) == turns) and not call.closed:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            turn = call.turns[-1]

            def answered(turn: Turn = turn) -> bool:
                return turn.answered_at is not None

            if barge_in is None or index == len(utterances) - 1:
                await _answer(call, answered, settle, answer_within)
            elif await _started(call, answered, answer_within):
                assert turn.answered_at is not None
                await asyncio.sleep(max(0.0, turn.answered_at + barge_in - asyncio.get_running_loop().time()))
                turn.interrupted = True
    return call


async def _started(call: TwilioCaller, started: Callable[[], bool], within: float) -> bool:
    """Wait up to ``within`` seconds for the agent to start answering; whether it did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not started() and not call.closed and loop.time() < deadline:  # noqa: ASYNC110 (the receiver sets it)
        await asyncio.sleep(0.02)
    return started()


async def _answer(call: TwilioCaller, started: Callable[[], bool], settle: float, within: float) -> None:
    """Wait for the agent to start answering (up to ``within``), then for ``settle`` s of silence."""
    loop = asyncio.get_running_loop()
    await _started(call, started, within)
    since = loop.time()
    while not call.closed:
        last = max(call.last_audio_at or since, since)
        if not call.playing and loop.time() - last >= settle:
            return
        await asyncio.sleep(0.05)


def _interruption(call: TwilioCaller, answered_at: float, spoke_at: float) -> str:
    """The caller talked over an answer at ``spoke_at``: how far into it, and when ``clear`` came."""
    into = f"  you talked over the answer {spoke_at - answered_at:.2f} s into it; "
    clear = next((t for t in call.clear_times if t >= spoke_at), None)
    if clear is None:
        return into + "the agent did not stop (no clear)"
    return into + f"clear {clear - spoke_at:.2f} s after you started"


def summary(call: TwilioCaller, said: Sequence[str] = (), agent_words: Sequence[str] | None = None) -> str:
    """What a simulated call heard, turn by turn, for people.

    Args:
        call: The finished call.
        said: What the caller said in each turn (its text, or a note such as ``(wav)``).
        agent_words: What the agent said: the greeting, then each turn's answer (see
            :func:`recognise`); None when not recognised.
    """
    lines = []
    words = list(agent_words) if agent_words is not None else None

    def agent(index: int) -> None:
        if words is not None and index < len(words):
            lines.append(f"  agent: {words[index] or '(no words recognised)'}")

    if call.first_audio_at is not None and call.connected_at is not None:
        lines.append(
            f"greeting: first agent audio {call.first_audio_at - call.connected_at:.2f} s after connecting"
        )
        agent(0)
    for number, turn in enumerate(call.turns, 1):
        spoke = (turn.ended_at or turn.spoke_at) - turn.spoke_at
        latency = turn.latency
        answer = f"agent audio {latency:.2f} s after you stopped" if latency is not None else "no answer"
        lines.append(f"turn {number}: you spoke {spoke:.1f} s; {answer}")
        if number <= len(said):
            lines.append(f"  you: {said[number - 1]}")
        agent(number)
        if turn.interrupted and number < len(call.turns) and turn.answered_at is not None:
            lines.append(_interruption(call, turn.answered_at, call.turns[number].spoke_at))
    lines.append(
        f"heard {len(call.played) / 8000:.1f} s of agent audio; {len(call.marks)} mark(s) played, "
        f"{call.clears} clear(s)"
        + (f"; the server closed the call ({call.close_code})" if call.close_code else "")
    )
    return "\n".join(lines) + "\n"
