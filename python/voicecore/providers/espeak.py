"""Offline text to speech with eSpeak NG, loaded with ctypes from the ``espeakng-loader`` wheel.

``espeakng-loader`` ships ``libespeak-ng`` and its voice data, so nothing needs installing
system-wide. eSpeak NG is GPL-3.0-or-later, which is why this lives in the optional
``voicecore[local]`` extra and is never imported by the rest of voicecore.

Synthesis runs in espeak's synchronous callback mode on one worker thread: the library is
a process-wide singleton (one voice, one callback) and not re-entrant, so every synthesis
holds :data:`_LOCK`, and audio reaches the event loop chunk by chunk (about 60 ms each)
as espeak makes it. Closing a stream (barge-in) makes the callback abort the synthesis.

Audio comes out at espeak's native 22050 Hz as PCM16; the runtime resamples it once, in
Rust, to what the transport needs.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from voicecore.errors import ConfigError, ProviderError
from voicecore.providers.base import AudioChunk, AudioFormat, WordTiming

__all__ = ["ESPEAK_FORMAT", "EspeakTTS", "espeak_voice"]

ESPEAK_FORMAT = AudioFormat("pcm16", 22050)
"""What eSpeak NG produces: 16-bit mono at its native 22050 Hz."""

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a short pause after each text, so pushed sentences do not run together
_POS_CHARACTER = 1
_PARAM_RATE = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_BUFFER_MS = 60  # audio per callback: the streaming granularity

# Languages whose bare code would pick a voice callers do not expect.
_LANGUAGE_VOICES = {"en": "en-us", "pt": "pt-br", "es": "es", "zh": "cmn"}

_LOCK = threading.Lock()
"""Held for every call into the library: it has one global voice and callback."""

_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
"""The one thread that synthesizes; streams queue on it in order."""


def espeak_voice(language: str) -> str:
    """The eSpeak NG voice for a BCP 47 language tag (``"en"`` → ``"en-us"``, ``"fr-CA"`` → ``"fr"``).

    A region eSpeak NG knows (``"en-GB"`` → ``"en-gb"``) is kept; the caller gets a
    :class:`ConfigError` from :meth:`EspeakTTS.open` when no such voice exists.
    """
    tag = language.strip().lower().replace("_", "-")
    if tag in _LANGUAGE_VOICES:
        return _LANGUAGE_VOICES[tag]
    return tag


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from ``speak_lib.h``."""

    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    )


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(slots=True)
class _Job:
    """One text being synthesized: where its chunks go and whether to stop."""

    text: str
    emit: Callable[[bytes, list[tuple[str, int]]], None]
    cancelled: threading.Event
    samples: int = 0


class _Engine:
    """The loaded library; use only while holding :data:`_LOCK`."""

    def __init__(self) -> None:
        try:
            import espeakng_loader  # the optional extra: imported when first used
        except ImportError as error:
            raise ConfigError(
                "the espeak TTS needs the local extra: pip install 'voicecore[local]'"
            ) from error
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data, 0)
        if rate != ESPEAK_FORMAT.sample_rate:
            raise ProviderError(
                f"initialisation failed (returned {rate})", provider="espeak", retryable=False
            )
        self._lib = lib
        self._job: _Job | None = None
        self._callback = _Callback(self._on_audio)  # kept referenced: the library holds it
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def set_voice(self, voice: str) -> None:
        """Select ``voice`` (cheap when it is already selected)."""
        if voice == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ConfigError(f"espeak has no voice {voice!r} (see `espeak-ng --voices`)")
        self._voice = voice

    def synthesize(self, job: _Job, voice: str, rate: int) -> int:
        """Speak ``job.text``, handing its audio to ``job.emit`` as it is made; returns samples."""
        self.set_voice(voice)
        self._lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        encoded = job.text.encode()
        buffer = ctypes.create_string_buffer(encoded)
        self._job = job
        try:
            flags = _CHARS_UTF8 | _ENDPAUSE
            status = self._lib.espeak_Synth(buffer, len(encoded) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
        finally:
            self._job = None
        if status != 0 and not job.cancelled.is_set():
            raise ProviderError(f"synthesis failed (error {status})", provider="espeak", retryable=False)
        return job.samples

    def _on_audio(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: ctypes._Pointer[_Event]
    ) -> int:
        """Espeak's callback: 0 continues, 1 aborts the synthesis."""
        job = self._job
        if job is None or job.cancelled.is_set():
            return 1
        words = []
        index = 0
        while (event := events[index]).type != _EVENT_LIST_TERMINATED:
            if event.type == _EVENT_WORD:
                start = max(event.text_position - 1, 0)  # 1-based character position
                words.append((_word_at(job.text, start, event.length), event.sample))
            index += 1
        audio = ctypes.string_at(wav, 2 * count) if wav and count > 0 else b""
        job.samples += len(audio) // 2
        if audio or words:
            job.emit(audio, words)
        return 0


def _word_at(text: str, start: int, length: int) -> str:
    """The word of ``text`` at ``start``, up to the next space, without trailing punctuation.

    Espeak's ``length`` may stop short ("There's" ends at the apostrophe).
    """
    end = text.find(" ", start)
    word = text[start : end if end >= 0 else len(text)].rstrip(".,;:!?\"')")
    return word or text[start : start + length]


@cache
def _engine() -> _Engine:
    with _LOCK:
        return _Engine()


@dataclass(frozen=True, slots=True, kw_only=True)
class EspeakTTS:
    """eSpeak NG speech, offline, streamed as it is synthesized (see the module docstring).

    Attributes:
        language: The agent's language, which picks the voice unless ``voice`` is given.
        voice: An eSpeak NG voice name (``"en-us"``, ``"en-gb+f3"``); overrides ``language``.
        words_per_minute: Speaking rate (espeak's default is 175).
    """

    language: str = "en"
    voice: str | None = None
    words_per_minute: int = 175
    name: str = "espeak"

    def __post_init__(self) -> None:
        if not 80 <= self.words_per_minute <= 450:
            raise ConfigError(f"words_per_minute must be within 80..450, not {self.words_per_minute}")

    def output_formats(self) -> Sequence[AudioFormat]:
        """Only its native format; the runtime converts once in Rust."""
        return (ESPEAK_FORMAT,)

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> EspeakStream:
        """A synthesis stream; ``voice`` (the session's) overrides the provider's.

        Raises:
            ConfigError: ``audio`` is not 22050 Hz PCM16, the local extra is missing, or the
                voice does not exist.
        """
        if audio != ESPEAK_FORMAT:
            raise ConfigError(f"espeak produces {ESPEAK_FORMAT}, not {audio}")
        chosen = voice or self.voice or espeak_voice(self.language)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(_WORKER, _check_voice, chosen)
        return EspeakStream(chosen, self.words_per_minute, self.name)


def _check_voice(voice: str) -> None:
    engine = _engine()
    with _LOCK:
        engine.set_voice(voice)


_END = object()


@dataclass(frozen=True, slots=True)
class _TextEnd:
    """All audio of one pushed text is queued; it had ``samples`` samples."""

    samples: int


class EspeakStream:
    """One reply: texts in, :class:`AudioChunk` s out; one ``end_of_text`` chunk per text."""

    def __init__(self, voice: str, words_per_minute: int, provider: str) -> None:
        self._voice = voice
        self._rate = words_per_minute
        self._provider = provider
        self._loop = asyncio.get_running_loop()
        self._texts: asyncio.Queue[str | None] = asyncio.Queue()
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._driver = self._loop.create_task(self._drive(), name="espeak-stream")

    async def push_text(self, text: str) -> None:
        """Queue a sentence; its audio follows the audio of the sentences before it."""
        if self._cancelled.is_set():
            raise ProviderError("stream closed", provider=self._provider, retryable=False)
        self._texts.put_nowait(text)

    async def end_input(self) -> None:
        """No more text: the iteration ends after the audio of what was pushed."""
        self._texts.put_nowait(None)

    async def _drive(self) -> None:
        try:
            while (text := await self._texts.get()) is not None:
                await self._speak(text)
        except BaseException as error:
            self._out.put_nowait(error)
            raise
        finally:
            self._out.put_nowait(_END)

    async def _speak(self, text: str) -> None:
        def emit(audio: bytes, words: list[tuple[str, int]]) -> None:  # on the worker thread
            self._loop.call_soon_threadsafe(self._out.put_nowait, (audio, words))

        job = _Job(text, emit, self._cancelled)
        future = self._loop.run_in_executor(_WORKER, _synthesize, job, self._voice, self._rate)
        try:
            samples = await future
        except asyncio.CancelledError:
            self._cancelled.set()  # the callback aborts the synthesis
            raise
        # Every emit was scheduled on the loop before the future's result was, so the text's
        # audio is queued already and its end goes after it.
        self._out.put_nowait(_TextEnd(samples))

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[AudioChunk]:
        offset = 0  # samples of the texts before this one
        pending: tuple[str, int] | None = None  # a word ends where the next one starts
        rate_ms = ESPEAK_FORMAT.sample_rate / 1000.0
        while True:
            item = await self._out.get()
            if item is _END:
                self._out.put_nowait(_END)
                return
            if isinstance(item, BaseException):
                if isinstance(item, asyncio.CancelledError):
                    return
                raise item
            if isinstance(item, _TextEnd):
                words: tuple[WordTiming, ...] = ()
                if pending is not None:  # the last word ends with the text's audio
                    words = (WordTiming(pending[0], (offset + item.samples) / rate_ms),)
                    pending = None
                offset += item.samples
                yield AudioChunk(b"", words, end_of_text=True)
                continue
            assert isinstance(item, tuple)
            audio, raw_words = item
            timings: list[WordTiming] = []
            for word, start in raw_words:
                if pending is not None:
                    timings.append(WordTiming(pending[0], (offset + start) / rate_ms))
                pending = (word, start)
            yield AudioChunk(audio, tuple(timings))

    async def aclose(self) -> None:
        """Stop synthesis at once; safe to call more than once."""
        self._cancelled.set()
        if not self._driver.done():
            self._driver.cancel()
            await asyncio.gather(self._driver, return_exceptions=True)
        self._out.put_nowait(_END)


def _synthesize(job: _Job, voice: str, rate: int) -> int:
    engine = _engine()
    with _LOCK:
        if job.cancelled.is_set():
            return 0
        return engine.synthesize(job, voice, rate)
