"""Fakes of the providers, for voicecore's tests and yours.

:class:`FakeSTT`, :class:`FakeLLM` and :class:`FakeTTS` are scripted in-process fakes of the
provider interfaces (:mod:`voicecore.providers.base`) with configurable latencies, tool calls,
word timestamps and failures, and need no network: an end-to-end test of an agent runs real
audio through the Rust core with these standing in for Deepgram, OpenAI and ElevenLabs.

The fake servers of :mod:`voicecore.fakes`, which speak each provider's real wire protocol on
127.0.0.1 (``FakeDeepgram``, ``FakeChatServer``, ``FakeAnthropic``, ``FakeElevenLabs``,
``FakeCartesia``, ``FakeSmallestTTS``, ``FakePulse``, ``FakeTwilioAPI``, ...), can be imported
from here too; they are imported on first use, so the in-process fakes do not pull in aiohttp.
"""

from __future__ import annotations

import array
import asyncio
import math
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from voicecore.audio import alaw_decode, ulaw_decode
from voicecore.errors import ProviderError, ProviderStatusError
from voicecore.providers.base import (
    PCM16_16K,
    AudioChunk,
    AudioFormat,
    LLMChunk,
    TextDelta,
    ToolCall,
    TranscriptUpdate,
    Usage,
    WordTiming,
)
from voicecore.transports.base import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed, TransportEvent

if TYPE_CHECKING:
    from voicecore.fakes import (
        CallUpdate,
        FakeAnthropic,
        FakeCartesia,
        FakeChatServer,
        FakeDeepgram,
        FakeElevenLabs,
        FakePulse,
        FakeRealtime,
        FakeSmallestTTS,
        FakeTwilioAPI,
        Heard,
        LocalServer,
        MessageReply,
        RealtimeReply,
        Reply,
        Utterance,
    )

__all__ = [
    "CallUpdate",
    "FakeAnthropic",
    "FakeCartesia",
    "FakeChatServer",
    "FakeDeepgram",
    "FakeElevenLabs",
    "FakeLLM",
    "FakePulse",
    "FakeRealtime",
    "FakeReply",
    "FakeSTT",
    "FakeSmallestTTS",
    "FakeTTS",
    "FakeTwilioAPI",
    "Heard",
    "LocalServer",
    "LoopbackTransport",
    "MessageReply",
    "RealtimeReply",
    "Reply",
    "Utterance",
]


def __getattr__(name: str) -> Any:
    """A fake server of :mod:`voicecore.fakes`, imported on first use (they need aiohttp)."""
    if not name.startswith("_"):
        from voicecore import fakes

        if name in fakes.__all__:
            return getattr(fakes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_END = object()


class _Queue:
    """An async iterator fed by the fake, ended by ``close`` (or failed by ``fail``)."""

    def __init__(self) -> None:
        self._items: asyncio.Queue[object] = asyncio.Queue()

    def put(self, item: object) -> None:
        self._items.put_nowait(item)

    def close(self) -> None:
        self._items.put_nowait(_END)

    def fail(self, error: BaseException) -> None:
        self._items.put_nowait(error)

    async def get(self) -> object:
        item = await self._items.get()
        if isinstance(item, BaseException):
            raise item
        if item is _END:
            self._items.put_nowait(_END)  # every later read ends too
            raise StopAsyncIteration
        return item


# --- STT --------------------------------------------------------------------------------------


@dataclass
class FakeSTT:
    """Recognizes scripted utterances: each ``finalize()`` yields the next one as final text.

    Attributes:
        utterances: What the caller says, turn by turn.
        latency: Seconds from ``finalize()`` to the final text.
        interim_after_bytes: Bytes of loud audio (peaks of 1024 or more, its stand-in for speech)
            after which the next utterance's first word is sent as an interim (0: never).
            ``finalize()`` does nothing unless loud audio came since the last final.
        formats: Formats it accepts.
        fail_after_bytes: The first stream opened fails (a retryable outage) once this much
            audio arrived (None: never); streams opened after it work.
        full_interims: Interim results carry the whole next utterance (else its first word).
        cycle: Start the script again once it runs out (a caller who says the same forever, in
            a script of one: the load test's hundreds of calls each held a 10 000-entry list,
            which every garbage collection walked).
    """

    utterances: Sequence[str] = ()
    latency: float = 0.05
    interim_after_bytes: int = 6400
    formats: Sequence[AudioFormat] = (PCM16_16K,)
    fail_after_bytes: int | None = None
    full_interims: bool = False
    cycle: bool = False
    name: str = "fake-stt"
    opened: list[_FakeSTTStream] = field(default_factory=list)

    def input_formats(self) -> Sequence[AudioFormat]:
        """The configured formats."""
        return self.formats

    async def open(self, audio: AudioFormat, *, language: str) -> _FakeSTTStream:
        """A stream that shares this fake's script with every other stream it opened."""
        del language
        if audio not in self.formats:
            raise ProviderStatusError(f"unsupported format {audio}", provider=self.name, status=400)
        script = deque(self.utterances) if not self.opened else self.opened[0].script
        stream = _FakeSTTStream(self, script, audio)
        self.opened.append(stream)
        return stream


class _FakeSTTStream:
    def __init__(self, owner: FakeSTT, script: deque[str], audio: AudioFormat) -> None:
        self.owner = owner
        self.format = audio
        self.script = script
        self.received = 0
        self._since_final = 0
        self._interim_sent = False
        self._out = _Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    async def push_audio(self, audio: bytes) -> None:
        if self.closed:
            raise ProviderError("stream closed", provider=self.owner.name, retryable=False)
        self.received += len(audio)
        if _loud(audio, self.format):
            self._since_final += len(audio)
        fail_at = self.owner.fail_after_bytes
        if fail_at is not None and self.received >= fail_at and self is self.owner.opened[0]:
            self._out.fail(ProviderStatusError("fake outage", provider=self.owner.name, status=503))
            return
        threshold = self.owner.interim_after_bytes
        if threshold and not self._interim_sent and self._since_final >= threshold and self.script:
            self._interim_sent = True
            upcoming = self.script[0]
            interim = upcoming if self.owner.full_interims else " ".join(upcoming.split()[:1])
            self._out.put(TranscriptUpdate(interim, final=False))

    async def finalize(self) -> None:
        if not self.script or self.closed or not self._since_final:
            return  # nothing was said since the last final
        text = self.script.popleft()
        if self.owner.cycle:
            self.script.append(text)
        self._since_final, self._interim_sent = 0, False
        task = asyncio.get_running_loop().create_task(self._final_later(text), name="fake-stt-final")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _final_later(self, text: str) -> None:
        await asyncio.sleep(self.owner.latency)
        self._out.put(TranscriptUpdate(text, final=True, end_of_turn=True))

    def __aiter__(self) -> AsyncIterator[TranscriptUpdate]:
        return self

    async def __anext__(self) -> TranscriptUpdate:
        item = await self._out.get()
        assert isinstance(item, TranscriptUpdate)
        return item

    async def aclose(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        self._out.close()


def _loud(audio: bytes, audio_format: AudioFormat) -> bool:
    """Whether a chunk has more than background level in it (the fake's stand-in for speech)."""
    if audio_format.encoding == "mulaw":
        audio = ulaw_decode(audio)
    elif audio_format.encoding == "alaw":
        audio = alaw_decode(audio)
    # A little-endian sample is outside -1024..1023 exactly when its high byte is not 0x00-0x03
    # or 0xFC-0xFF: one C-level translate over the high bytes, no Python int per sample (this
    # ran for every caller frame of a load test and was a seventh of the server's CPU).
    return _LOUD_HIGH_BYTE in audio[1 : len(audio) // 2 * 2 : 2].translate(_HIGH_BYTE_LOUDNESS)


#: Maps a sample's high byte to 1 when the sample is loud (outside -1024..1023), else 0.
_HIGH_BYTE_LOUDNESS = bytes(0 if b <= 0x03 or b >= 0xFC else 1 for b in range(256))
_LOUD_HIGH_BYTE = b"\x01"


# --- LLM --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeReply:
    """One scripted completion.

    Attributes:
        text: The reply text, streamed word by word.
        tool_calls: Tool calls sent after the text: ``(name, arguments_json)``.
        first_token: Seconds before the first chunk.
        tokens_per_second: Pace of the following chunks (0: all at once), kept on the stream's
            own clock: a consumer that falls behind does not delay later tokens further.
        error: Raised instead of (or, with ``error_after_tokens``, in the middle of) the reply.
        error_after_tokens: Tokens sent before ``error`` is raised.
        usage: The token counts reported at the end (default: 10 prompt tokens, one
            completion token per word).
    """

    text: str = ""
    tool_calls: tuple[tuple[str, str], ...] = ()
    first_token: float = 0.05
    tokens_per_second: float = 100.0
    error: ProviderError | None = None
    error_after_tokens: int = 0
    usage: Usage | None = None


@dataclass
class FakeLLM:
    """Answers each ``complete()`` with the next scripted reply and records what it was sent."""

    replies: Sequence[FakeReply | str] = ()
    name: str = "fake-llm"
    record: bool = True
    """Keep ``requests`` and ``streams`` (tests); off for long-running servers (load tests, soaks)."""
    requests: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(default_factory=list)
    streams: list[_FakeLLMStream] = field(default_factory=list)
    """The streams it returned, one per request (``closed`` says whether each was closed)."""
    _next: int = 0

    async def complete(
        self, messages: Sequence[dict[str, Any]], *, tools: Sequence[dict[str, Any]] = ()
    ) -> _FakeLLMStream:
        """The next reply (the last one repeats when the script runs out)."""
        if self.record:
            self.requests.append(([dict(m) for m in messages], list(tools)))
        if not self.replies:
            reply = FakeReply("")
        else:
            item = self.replies[min(self._next, len(self.replies) - 1)]
            reply = FakeReply(item) if isinstance(item, str) else item
        self._next += 1
        stream = _FakeLLMStream(reply, self._next)
        if self.record:
            self.streams.append(stream)
        return stream


class _FakeLLMStream:
    def __init__(self, reply: FakeReply, number: int) -> None:
        self.reply = reply
        self.request_id: str | None = f"fake-req-{number}"
        self.closed = False
        self._chunks = self._generate()

    async def _generate(self) -> AsyncIterator[LLMChunk]:
        reply = self.reply
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(reply.first_token)
        tokens = [word + " " for word in reply.text.split(" ")] if reply.text else []
        if tokens:
            tokens[-1] = tokens[-1].rstrip(" ")
        for index, token in enumerate(tokens):
            if reply.error is not None and index == reply.error_after_tokens:
                raise reply.error
            if index and reply.tokens_per_second > 0:
                # Due on the provider's clock, as a real one streams: a late loop gets the
                # tokens that came meanwhile at once, rather than every later token late too.
                due = start + reply.first_token + index / reply.tokens_per_second
                await asyncio.sleep(max(due - loop.time(), 0.0))
            yield TextDelta(token)
        if reply.error is not None and reply.error_after_tokens >= len(tokens):
            raise reply.error
        for number, (name, arguments) in enumerate(reply.tool_calls):
            yield ToolCall(id=f"call_{number}", name=name, arguments=arguments)
        yield reply.usage or Usage(prompt_tokens=10, completion_tokens=len(tokens))

    def __aiter__(self) -> AsyncIterator[LLMChunk]:
        return self

    async def __anext__(self) -> LLMChunk:
        if self.closed:
            raise StopAsyncIteration
        return await anext(self._chunks)

    async def aclose(self) -> None:
        self.closed = True
        await self._chunks.aclose()  # type: ignore[attr-defined]


# --- TTS --------------------------------------------------------------------------------------


@dataclass
class FakeTTS:
    """Speaks text as a quiet tone whose length follows the text, with word timings.

    Attributes:
        first_byte: Seconds from the first text to the first audio.
        ms_per_char: Audio length per character of text.
        chunk_ms: Audio per chunk.
        realtime_factor: Synthesis speed (2.0: audio comes twice as fast as it plays; 0: at once).
        formats: Formats it produces.
        fail_on: Text that makes the stream fail (retryable) when it is pushed.
        received: Every text pushed to its streams (``spoken``: the texts synthesized).
        record: Keep ``received`` and ``spoken`` (tests); off for long-running servers.
    """

    first_byte: float = 0.05
    ms_per_char: float = 60.0
    chunk_ms: int = 40
    realtime_factor: float = 0.0
    formats: Sequence[AudioFormat] = (PCM16_16K,)
    fail_on: Iterable[str] = ()
    name: str = "fake-tts"
    record: bool = True
    spoken: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)

    def output_formats(self) -> Sequence[AudioFormat]:
        """The configured formats."""
        return self.formats

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> _FakeTTSStream:
        """A synthesis stream producing ``audio``."""
        del voice
        if audio not in self.formats or audio.encoding != "pcm16":
            raise ProviderStatusError(f"unsupported format {audio}", provider=self.name, status=400)
        return _FakeTTSStream(self, audio)


class _FakeTTSStream:
    def __init__(self, owner: FakeTTS, audio: AudioFormat) -> None:
        self.owner = owner
        self.format = audio
        self._texts: asyncio.Queue[str | None] = asyncio.Queue()
        self._chunks = self._generate()
        self.closed = False
        self._elapsed_ms = 0.0

    async def push_text(self, text: str) -> None:
        if self.owner.record:
            self.owner.received.append(text)
        if text in set(self.owner.fail_on):
            self._texts.put_nowait(f"\x00fail:{text}")
        else:
            self._texts.put_nowait(text)

    async def end_input(self) -> None:
        self._texts.put_nowait(None)

    async def _generate(self) -> AsyncIterator[AudioChunk]:
        owner, rate = self.owner, self.format.sample_rate
        first = True
        while (text := await self._texts.get()) is not None:
            if text.startswith("\x00fail:"):
                raise ProviderStatusError("fake synthesis failure", provider=owner.name, status=503)
            if first:
                await asyncio.sleep(owner.first_byte)
                first = False
            if owner.record:
                owner.spoken.append(text)
            total_ms = max(len(text) * owner.ms_per_char, owner.chunk_ms)
            words = _word_timings(text, self._elapsed_ms, total_ms)
            samples = int(rate * total_ms / 1000)
            per_chunk = max(int(rate * owner.chunk_ms / 1000), 1)
            for start in range(0, samples, per_chunk):
                n = min(per_chunk, samples - start)
                audio = _tone(start, n, rate)
                chunk_words = words if start == 0 else ()
                if owner.realtime_factor > 0:
                    await asyncio.sleep(n / rate / owner.realtime_factor)
                yield AudioChunk(audio, chunk_words, end_of_text=start + n >= samples)
            self._elapsed_ms += total_ms

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self

    async def __anext__(self) -> AudioChunk:
        if self.closed:
            raise StopAsyncIteration
        return await anext(self._chunks)

    async def aclose(self) -> None:
        self.closed = True
        await self._chunks.aclose()  # type: ignore[attr-defined]


def _word_timings(text: str, offset_ms: float, total_ms: float) -> tuple[WordTiming, ...]:
    """Word end times spread over the text in proportion to characters."""
    timings, position = [], 0
    for word in text.split():
        position = text.index(word, position) + len(word)
        timings.append(WordTiming(word, offset_ms + total_ms * position / len(text)))
    return tuple(timings)


@cache
def _tone_table(rate: int) -> bytes:
    """Ten seconds of a quiet 440 Hz tone at ``rate`` (PCM16 little-endian), made once."""
    step = 2 * math.pi * 440 / rate
    samples = array.array("h", (int(3000 * math.sin(step * i)) for i in range(10 * rate)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _tone(start: int, n: int, rate: int) -> bytes:
    """``n`` samples of the tone from sample ``start`` (a slice: fakes must cost ~nothing)."""
    table = _tone_table(rate)
    offset = (2 * start) % len(table)
    chunk = table[offset : offset + 2 * n]
    return chunk if len(chunk) == 2 * n else chunk + table[: 2 * n - len(chunk)]


# --- caller side ------------------------------------------------------------------------------


class LoopbackTransport:
    """An in-process call: a scripted caller on one side, a session on the other.

    The caller streams 20 ms frames continuously in real time (silence unless :meth:`say` has
    queued speech), as a phone line does. Agent audio is "played" in real time too: a player
    task consumes it frame by frame and echoes each mark once everything before it has played,
    so the session's playback truth is exercised as with Twilio.
    """

    def __init__(self, audio_format: AudioFormat = PCM16_16K, *, frame_ms: int = 20) -> None:
        """A transport whose caller and agent audio both use ``audio_format``."""
        self.input_format = audio_format
        self.output_format = audio_format
        self.frame_bytes = audio_format.bytes_per_second * frame_ms // 1000
        self.frame_s = frame_ms / 1000.0
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._caller_audio: deque[bytes] = deque()
        self._playout: deque[bytes | str] = deque()
        self._playing = asyncio.Event()
        self.played = bytearray()
        self.marks_played: list[str] = []
        self.clears: list[float] = []
        self.hung_up = False
        self.transferred_to: tuple[str, str | None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # The session's side.

    async def events(self) -> AsyncIterator[TransportEvent]:
        """Caller frames, played marks and key presses, until either side hangs up."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._caller_frames(), name="loopback-caller"),
                loop.create_task(self._player(), name="loopback-player"),
            ]
        try:
            while (event := await self._events.get()) is not _END:
                assert isinstance(event, CallerAudio | MarkPlayed | DtmfPressed | CallerHungUp)
                yield event
        finally:
            for task in self._tasks:
                task.cancel()

    async def send_audio(self, audio: bytes) -> None:
        """Queue agent audio for real-time playback."""
        self._playout.append(audio)
        self._playing.set()

    async def send_mark(self, name: str) -> None:
        """Echo ``name`` once the audio queued before it has played."""
        self._playout.append(name)
        self._playing.set()

    async def clear(self) -> None:
        """Drop queued audio and marks at once."""
        self.clears.append(asyncio.get_running_loop().time())
        self._playout.clear()

    async def hang_up(self) -> None:
        """The agent ended the call."""
        self.hung_up = True
        self._events.put_nowait(_END)

    async def transfer(self, to: str, summary: str | None) -> None:
        """The agent handed the caller on; the call leaves this transport."""
        self.transferred_to = (to, summary)
        self._events.put_nowait(_END)

    # The caller's side.

    def say(self, pcm: bytes) -> None:
        """Queue caller speech; it goes out in real-time frames after what is already queued."""
        for start in range(0, len(pcm), self.frame_bytes):
            frame = pcm[start : start + self.frame_bytes]
            self._caller_audio.append(frame.ljust(self.frame_bytes, b"\0"))

    def press(self, digit: str) -> None:
        """The caller presses a key."""
        self._events.put_nowait(DtmfPressed(digit))

    def hang_up_caller(self) -> None:
        """The caller hangs up."""
        self._events.put_nowait(CallerHungUp())
        self._events.put_nowait(_END)

    @property
    def speaking(self) -> bool:
        """Whether the caller still has speech queued."""
        return bool(self._caller_audio)

    async def _caller_frames(self) -> None:
        loop = asyncio.get_running_loop()
        silence = bytes(self.frame_bytes)
        next_at = loop.time()
        while True:
            frame = self._caller_audio.popleft() if self._caller_audio else silence
            self._events.put_nowait(CallerAudio(frame))
            next_at += self.frame_s
            await asyncio.sleep(max(next_at - loop.time(), 0.0))

    async def _player(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._playout:
                self._playing.clear()
                await self._playing.wait()
                continue
            item = self._playout.popleft()
            if isinstance(item, str):
                self.marks_played.append(item)
                self._events.put_nowait(MarkPlayed(item))
                continue
            seconds = len(item) / self.output_format.bytes_per_second
            started = loop.time()
            self.played += item
            await asyncio.sleep(max(seconds - (loop.time() - started), 0.0))
