"""Type stubs for the Rust extension ``voicecore._core``; import from ``voicecore.audio`` instead."""

from typing import Final, Self, final

from typing_extensions import Buffer

__all__ = [
    "Resampler",
    "TwilioFrameDecoder",
    "TwilioFrameEncoder",
    "__version__",
    "alaw_decode",
    "alaw_encode",
    "build_profile",
    "ulaw_decode",
    "ulaw_encode",
]

__version__: Final[str]
build_profile: Final[str]

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
    all happen in Rust. JSON framing stays with the caller.

    Raises:
        AudioFormatError: ``rate`` is not supported.
    """

    def __new__(cls, rate: int = 16000) -> Self: ...
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
    in Rust; audio short of a whole frame waits for the next call.

    Raises:
        AudioFormatError: ``rate`` is not supported.
    """

    def __new__(cls, rate: int = 16000) -> Self: ...
    def encode(self, pcm: Buffer) -> list[str]:
        """Encode a PCM16 chunk; returns every complete 20 ms payload (possibly none).

        Raises:
            AudioFormatError: ``pcm`` has an odd byte length.
        """

    def flush(self) -> list[str]:
        """End the utterance: the resampler tail and the last (shorter) payload; then reset."""

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
