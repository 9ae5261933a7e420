"""Type stubs for the Rust extension ``voicecore._core``; import from ``voicecore.audio``, ``.text``."""

from collections.abc import Callable
from typing import Final, Literal, Self, final

from typing_extensions import Buffer

__all__ = [
    "Beep",
    "BeepDetector",
    "ClearReport",
    "Endpointer",
    "NativeVad",
    "PlayoutBuffer",
    "Resampler",
    "SentenceSplitter",
    "TwilioFrameDecoder",
    "TwilioFrameEncoder",
    "VadEvent",
    "__version__",
    "alaw_decode",
    "alaw_encode",
    "build_profile",
    "simd_detected",
    "simd_level",
    "speakable",
    "ulaw_decode",
    "ulaw_encode",
    "vad_features",
]

__version__: Final[str]
build_profile: Final[str]

_SimdLevel = Literal["portable", "avx2", "avx512"]

def simd_level() -> _SimdLevel:
    """The instruction set the audio kernels use: the CPU's, lowered by ``VOICECORE_SIMD``."""

def simd_detected() -> _SimdLevel:
    """The highest instruction set this CPU supports, whatever ``VOICECORE_SIMD`` says."""

def ulaw_encode(pcm: Buffer) -> bytes:
    """Encode PCM16 little-endian samples as G.711 μ-law, one byte per sample.

    Bit-exact with ``audioop.lin2ulaw(pcm, 2)`` for every input value.

    Raises:
        AudioFormatError: ``pcm`` has an odd number of bytes or an unsupported item format.
    """

def ulaw_decode(data: Buffer) -> bytes:
    """Decode G.711 μ-law bytes to PCM16 little-endian; bit-exact with ``audioop.ulaw2lin(data, 2)``."""

def alaw_encode(pcm: Buffer) -> bytes:
    """Encode PCM16 little-endian samples as G.711 A-law, one byte per sample.

    Bit-exact with ``audioop.lin2alaw(pcm, 2)`` for every input value.

    Raises:
        AudioFormatError: ``pcm`` has an odd number of bytes or an unsupported item format.
    """

def alaw_decode(data: Buffer) -> bytes:
    """Decode G.711 A-law bytes to PCM16 little-endian; bit-exact with ``audioop.alaw2lin(data, 2)``."""

@final
class Resampler:
    """Streaming PCM16 resampler between 8000, 16000, 22050, 24000, 44100 and 48000 Hz.

    Every output sample is returned by the ``process`` call whose input made it possible
    (no hold-back); the only latency is the filter delay ``delay``. Any chunking of a stream
    gives output identical, sample for sample, to processing it in one call.

    Args:
        in_rate: Input sample rate in Hz.
        out_rate: Output sample rate in Hz (equal rates copy the input).
        quality: ``"hq"`` (≥ 90 dB alias/image rejection, flat to 0.9 of the lower Nyquist,
            ≤ 6 ms delay on 8k↔16k and 24k→8k) or ``"fast"`` (flat to 0.8 of Nyquist, shorter).

    Raises:
        AudioFormatError: A rate is not supported (the message lists the supported ones).
        ConfigError: ``quality`` is not a known profile.
    """

    def __new__(cls, in_rate: int, out_rate: int, *, quality: str = "hq") -> Self: ...
    def process(self, pcm: Buffer) -> bytes:
        """Resample a PCM16 chunk of any even length; returns every output sample it allows.

        Raises:
            AudioFormatError: ``pcm`` has an odd byte length (the stream is left unchanged).
        """

    def flush(self) -> bytes:
        """End the stream: return the delayed tail (``ceil(delay)`` samples) and reset."""

    def reset(self) -> None:
        """Forget the stream without returning its tail."""

    @property
    def delay(self) -> float:
        """Group delay in output samples: output sample ``m`` carries input time ``m - delay``."""

    @property
    def in_rate(self) -> int:
        """Input sample rate in Hz."""

    @property
    def out_rate(self) -> int:
        """Output sample rate in Hz."""

    @property
    def quality(self) -> str:
        """The quality profile, ``"hq"`` or ``"fast"``."""

@final
class TwilioFrameDecoder:
    """Inbound Twilio Media Streams audio: one ``media.payload`` → PCM16 at ``rate``, in one call.

    Base64 decoding, μ-law decoding and 8 kHz → ``rate`` resampling (state kept across frames)
    all happen in Rust. JSON framing stays with the caller. ``quality`` is the resampler
    profile (see :class:`Resampler`); ``"fast"`` still keeps aliasing ~30 dB below μ-law's own
    quantisation noise at half the cost.

    Raises:
        AudioFormatError: ``rate`` is not supported.
        ConfigError: ``quality`` is not ``"hq"`` or ``"fast"``.
    """

    def __new__(cls, rate: int = 16000, *, quality: str = "hq") -> Self: ...
    def decode(self, payload: str | Buffer) -> bytes:
        """Decode one base64 payload (``str`` or ASCII bytes) to PCM16 little-endian at ``rate``.

        Raises:
            AudioFormatError: The payload is not valid base64 (the stream is left unchanged).
        """

    def reset(self) -> None:
        """Forget the stream (for a new call)."""

    @property
    def rate(self) -> int:
        """The engine-side sample rate in Hz."""

    @property
    def delay(self) -> float:
        """Resampler delay in ``rate`` samples."""

@final
class TwilioFrameEncoder:
    """Outbound Twilio Media Streams audio: PCM16 at ``rate`` → base64 μ-law 20 ms payloads.

    Resampling to 8 kHz, μ-law encoding, framing into 160-byte payloads and base64 all happen
    in Rust; audio short of a whole frame waits for the next call. ``quality`` is the
    resampler profile, as for :class:`TwilioFrameDecoder`.

    Raises:
        AudioFormatError: ``rate`` is not supported.
        ConfigError: ``quality`` is not ``"hq"`` or ``"fast"``.
    """

    def __new__(cls, rate: int = 16000, *, quality: str = "hq") -> Self: ...
    def encode(self, pcm: Buffer) -> tuple[str, ...]:
        """Encode a PCM16 chunk; returns every complete 20 ms payload (possibly none).

        Raises:
            AudioFormatError: ``pcm`` has an odd byte length.
        """

    def flush(self) -> tuple[str, ...]:
        """End the utterance: the resampler tail and the last (shorter) payload; then reset."""

    def set_envelope(self, head: str, tail: str) -> None:
        """Emit every later payload as ``head + payload + tail``.

        ``head`` and ``tail`` are the stream's ``media`` message on either side of its payload,
        encoded once in Python, so each frame comes out as the whole message. ``("", "")`` gives
        bare payloads again.
        """

    def clear(self) -> None:
        """Drop everything not yet emitted (barge-in) and start a fresh stream."""

    @property
    def rate(self) -> int:
        """The engine-side sample rate in Hz."""

    @property
    def delay(self) -> float:
        """Resampler delay in 8 kHz samples."""

    @property
    def pending_ms(self) -> float:
        """Milliseconds of encoded audio waiting to fill a 20 ms payload."""

@final
class ClearReport:
    """What :meth:`PlayoutBuffer.clear` discarded; immutable.

    Attributes:
        dropped_ms: Duration of the queued audio that was dropped, in milliseconds.
        dropped_samples: Number of queued samples that were dropped (never played).
        dropped_marks: Marks after dropped audio, which the caller never reached, in order.
        passed_marks: Marks the caller had reached (placed at the read position while the
            buffer was empty) that no read had reported yet, in order.
    """

    @property
    def dropped_ms(self) -> float: ...
    @property
    def dropped_samples(self) -> int: ...
    @property
    def dropped_marks(self) -> list[str]: ...
    @property
    def passed_marks(self) -> list[str]: ...

@final
class PlayoutBuffer:
    """A bounded playout (jitter) buffer for outbound audio, with Twilio-style marks.

    Audio is appended with :meth:`push` (PCM16 little-endian, optionally ending in a named
    mark) and read back in fixed frames with :meth:`read_frame`. A mark is *passed* once all
    audio pushed before it has been read; each mark is reported exactly once, by
    :meth:`read_frame` or by :meth:`clear`. Memory grows with the queued audio, never beyond
    ``capacity_ms``. Not thread-safe: use it from one thread (the event loop).

    Args:
        sample_rate: Sample rate in Hz: 8000, 16000, 22050, 24000, 44100 or 48000.
        frame_ms: Frame length in milliseconds, 1 to 1000, and a whole number of samples
            at ``sample_rate`` (at 22050 and 44100 Hz it must be a multiple of 20 or 10 ms).
        capacity_ms: Most audio that may be queued at once, in milliseconds (at least
            ``frame_ms``).

    Raises:
        AudioFormatError: ``sample_rate`` is not supported.
        ConfigError: ``frame_ms`` or ``capacity_ms`` is out of range.
    """

    def __new__(cls, sample_rate: int, frame_ms: int = 20, capacity_ms: int = 60000) -> Self: ...
    def push(self, pcm: Buffer, mark: str | None = None) -> None:
        """Append audio, then ``mark`` (if given) at its end; all or nothing.

        Args:
            pcm: PCM16 little-endian samples: bytes, bytearray, memoryview or a C-contiguous
                int16 array. May be empty (to place just the mark).
            mark: A name reported once the caller has heard all of ``pcm``.

        Raises:
            AudioFormatError: ``pcm`` has an odd number of bytes or an unsupported item format;
                nothing is appended.
            PlayoutOverflowError: The queued audio plus ``pcm`` would exceed ``capacity_ms``;
                nothing is appended, not even the mark.
        """

    def mark(self, name: str) -> None:
        """Place a mark after all audio pushed so far.

        On an empty buffer the mark is reached at once and reported by the next
        :meth:`read_frame` (even one that returns no frame) or :meth:`clear`.
        """

    def read_frame(self, pad: bool = False) -> tuple[bytes | None, list[str]]:
        """Read one frame of ``frame_bytes`` bytes and the marks it passes.

        Args:
            pad: If fewer than a frame's samples (but at least one) are queued, return them
                followed by silence instead of no frame. The silence is not counted as played.

        Returns:
            ``(frame, marks)``: the frame, or ``None`` when less than a frame was queued (an
            underrun, counted in :attr:`underruns`); and the marks reached by this read, in
            the order they were placed.
        """

    def clear(self) -> ClearReport:
        """Drop all queued audio and marks at once (barge-in) and report what was lost.

        Increments :attr:`generation`. The caller heard exactly :attr:`played_ms` of audio.
        """

    def reset(self) -> None:
        """Return to the just-constructed state: no audio or marks, all counters zero.

        Unreported marks are discarded without being reported.
        """

    def __len__(self) -> int: ...
    @property
    def sample_rate(self) -> int:
        """Sample rate in Hz."""

    @property
    def frame_ms(self) -> int:
        """Frame length in milliseconds."""

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (two per sample)."""

    @property
    def capacity_ms(self) -> int:
        """Most audio that may be queued at once, in milliseconds."""

    @property
    def played_samples(self) -> int:
        """Samples of real audio returned by reads: padding and cleared audio excluded."""

    @property
    def played_ms(self) -> float:
        """:attr:`played_samples` in milliseconds: how much audio the caller was sent."""

    @property
    def queued_samples(self) -> int:
        """Samples queued and not yet read (also ``len(buffer)``)."""

    @property
    def queued_ms(self) -> float:
        """:attr:`queued_samples` in milliseconds."""

    @property
    def underruns(self) -> int:
        """Reads that returned no frame because less than a frame was queued."""

    @property
    def generation(self) -> int:
        """How many times :meth:`clear` has run."""

@final
class SentenceSplitter:
    """Streaming sentence splitter for LLM output on its way to a TTS.

    :meth:`push` takes tokens of any size and returns every sentence completed so far, each
    as soon as its end is certain: after terminal punctuation it waits at most for the first
    non-space character, when that character decides (a lower-case letter after "e.g.", a
    digit after "p.", a capital after "Hello."). Sentences come back exactly as written,
    stripped of surrounding whitespace; joining them gives back the input up to whitespace at
    the joins. Any split of the same text into tokens gives the same sentences.

    Boundaries: ``. ! ? …`` and runs of them (``?!``, ``!!!``, ``. . . .``) with closing
    quotes and brackets; the CJK full stop and full-width ``!`` ``?``; the Devanagari danda;
    a bullet; a markdown list marker or heading at the start of a line; the next item of a
    numbered or lettered list ("1. … 2. …"); a blank line; the end of a heading line. A fenced
    code block is returned whole (no boundary inside it), so :func:`speakable` drops it whole.
    Not boundaries: titles and abbreviations (Dr., Mr., St., e.g., i.e., vs., a.m.),
    initials (J. R. R. Tolkien), decimals, prices, percentages, versions (v2.1.3), times,
    dates, URLs and e-mail addresses, "[...]".

    Args:
        min_chars: A sentence shorter than this (after trimming) is joined to the next one
            instead of being returned alone. 0 (the default) returns every sentence.
        max_chars: A sentence longer than this is cut at its last clause boundary (``,`` ``;``
            ``:`` or a dash), else at its last space, so the TTS is never starved. No returned
            piece is longer, except a fenced code block, which is never cut. Default 300.
        lang: ISO 639-1 code (``"en"``, ``"es"``, ``"fr"``, ``"de"``, ``"hi"``, ``"zh"``,
            ``"ja"``; a region suffix is ignored) whose abbreviations to know; ``None`` (the
            default) knows the English ones. Terminators of every script work whatever it is.
        first_clause_chars: First-chunk mode: the first piece of each stream is returned at
            its first clause boundary (comma, semicolon, colon, dash) once it has at least
            this many characters, to cut time to first audio. ``None`` (the default) is off.
        eager_first_end: The first piece of each stream is returned as soon as a push ends
            with a terminator that only an unusual continuation could undo (``"Sure."``,
            ``"Of course!"``; not after numbers, abbreviations, initials, URLs or ellipses),
            saving one token gap before the first audio. A wrong guess ("example." +
            "com") costs a split, never text. Off by default: output then depends on where
            tokens end.

    Raises:
        ConfigError: A count is negative, ``max_chars`` is 0, ``min_chars`` or
            ``first_clause_chars`` exceeds ``max_chars``, or ``lang`` is unknown.
    """

    def __new__(
        cls,
        *,
        min_chars: int = 0,
        max_chars: int = 300,
        lang: str | None = None,
        first_clause_chars: int | None = None,
        eager_first_end: bool = False,
    ) -> Self: ...
    def push(self, text: str) -> list[str]:
        """Take a token of any length; return the sentences it completed, in order (often none)."""

    def flush(self) -> list[str]:
        """End the stream: return what remains (if more than whitespace), then reset."""

    def reset(self) -> None:
        """Forget the stream without returning anything (a new reply, or barge-in)."""

    @property
    def pending(self) -> str:
        """Text received and not yet returned (the unfinished sentence)."""

    @property
    def min_chars(self) -> int:
        """Shortest sentence returned alone."""

    @property
    def max_chars(self) -> int:
        """Longest piece returned."""

    @property
    def lang(self) -> str | None:
        """The language code whose abbreviations are known, or ``None``."""

    @property
    def first_clause_chars(self) -> int | None:
        """First-chunk mode threshold, or ``None`` when off."""

    @property
    def eager_first_end(self) -> bool:
        """Whether the first piece is released at a likely end without waiting."""

def speakable(text: str) -> str:
    """The text a TTS should read.

    Removes markdown emphasis (``**``, ``*``, ``_``, ``~~``), heading marks, list bullets,
    thematic breaks, link and image syntax (keeping the link text), code fences with their
    contents, inline-code backticks (keeping the code) and emoji; collapses whitespace to
    single spaces and trims the ends. Nothing else changes. The result may be empty (a code
    block, an emoji): skip it rather than sending it to the TTS.
    """

@final
class VadEvent:
    """A speech boundary decided by a VAD; immutable, compares by value.

    Attributes:
        kind: ``"start"`` or ``"end"``.
        at_ms: Stream time of the boundary in ms from the first pushed sample: the onset
            of the speech (start) or the end of it (end).
        decided_ms: Stream time at which the boundary was decided (the end of the frame
            that decided it); ``decided_ms - at_ms`` is at least ``start_ms``/``stop_ms``.
        audio: Start events: PCM16 from ``preroll_ms`` before ``at_ms`` (or the stream
            start) up to ``decided_ms``. End events: empty.
    """

    @property
    def kind(self) -> Literal["start", "end"]: ...
    @property
    def at_ms(self) -> int: ...
    @property
    def decided_ms(self) -> int: ...
    @property
    def audio(self) -> bytes: ...

@final
class Beep:
    """A steady pure tone (an answering machine's beep); immutable, compares by value.

    Attributes:
        start_ms: Stream time of its first 10 ms frame, in ms from the first pushed sample.
        end_ms: Stream time of its end: the machine records from here.
        frequency_hz: Its pitch, from its first frame.
    """

    @property
    def start_ms(self) -> int: ...
    @property
    def end_ms(self) -> int: ...
    @property
    def frequency_hz(self) -> float: ...

@final
class BeepDetector:
    """Finds answering-machine beeps: runs of 10 ms frames that are one pure tone (300-3400 Hz).

    A frame is a tone when a second-order linear predictor leaves 20 dB less energy than it
    had (speech, noise and DTMF's two tones leave far more); a beep is at least ``min_ms`` of
    such frames at one pitch, reported when it ends.

    Raises:
        ConfigError: ``sample_rate`` is not 8000 or 16000, or ``min_ms`` is not 10-5000.
    """

    def __new__(cls, sample_rate: int = 8000, *, min_ms: int = 120) -> Self: ...
    def push(self, pcm: Buffer) -> list[Beep]:
        """Push PCM16 audio of any even length; return the beeps that ended within it.

        Raises:
            AudioFormatError: Odd byte length or unsupported item format (nothing consumed).
        """

    def reset(self) -> None:
        """Forget the stream: no tone in progress, stream time zero."""

    @property
    def sample_rate(self) -> int: ...

@final
class NativeVad:
    """The native VAD: 10 ms frames scored by the built-in detector, then endpointed.

    Use :class:`voicecore.audio.Vad`, which documents the settings.

    Raises:
        ConfigError: A setting is out of range.
    """

    def __new__(
        cls,
        sample_rate: int = 16000,
        *,
        threshold: float = 0.5,
        start_ms: int = 200,
        stop_ms: int = 500,
        preroll_ms: int = 300,
    ) -> Self: ...
    def push(self, pcm: Buffer) -> list[VadEvent]:
        """Push PCM16 audio of any even length; return the events its frames decide.

        Raises:
            AudioFormatError: Odd byte length or unsupported item format (nothing consumed).
        """

    def reset(self) -> None:
        """Forget the stream: quiet state, stream time zero."""

    @property
    def in_speech(self) -> bool:
        """Whether the endpointed state is "speaking" after the last push."""

    @property
    def probability(self) -> float:
        """Speech probability (0..1) of the last complete frame; 0.0 before the first."""

    @property
    def sample_rate(self) -> int: ...
    @property
    def frame_ms(self) -> int: ...
    @property
    def threshold(self) -> float: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def stop_ms(self) -> int: ...
    @property
    def preroll_ms(self) -> int: ...

@final
class Endpointer:
    """Framing and endpointing over per-frame probabilities from a Python scorer.

    ``noise_hold=True`` adds the native backend's longer hold before ends in noise (up to
    400 ms, from the probability floor before each segment's onset; tuned to the native
    detector's scale), e.g. to compare another scorer through the same endpointer.

    Raises:
        ConfigError: A setting is out of range.
    """

    def __new__(
        cls,
        sample_rate: int,
        frame_ms: int,
        *,
        threshold: float = 0.5,
        start_ms: int = 200,
        stop_ms: int = 500,
        preroll_ms: int = 300,
        noise_hold: bool = False,
    ) -> Self: ...
    def push(self, pcm: Buffer, score: Callable[[bytes], float]) -> list[VadEvent]:
        """Push PCM16 audio; ``score`` gets each complete frame's bytes and returns its probability.

        Probabilities are clamped to 0..1 (NaN counts as 0). If ``score`` raises, the stream
        is reset and the exception propagates.

        Raises:
            AudioFormatError: Odd byte length or unsupported item format (nothing consumed).
        """

    def reset(self) -> None:
        """Forget the stream: quiet state, stream time zero."""

    @property
    def in_speech(self) -> bool:
        """Whether the endpointed state is "speaking" after the last push."""

    @property
    def probability(self) -> float:
        """Speech probability (0..1) of the last complete frame; 0.0 before the first."""

    @property
    def sample_rate(self) -> int: ...
    @property
    def frame_ms(self) -> int: ...
    @property
    def threshold(self) -> float: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def stop_ms(self) -> int: ...
    @property
    def preroll_ms(self) -> int: ...

def vad_features(pcm: Buffer, sample_rate: int) -> bytes:
    """The native detector's model inputs for every whole 10 ms frame, as float32 bytes.

    For the training script (``benches/vad_train.py``): reshape to ``(-1, n_inputs)``.

    Raises:
        ConfigError: ``sample_rate`` is not 8000 or 16000.
        AudioFormatError: Odd byte length.
    """
