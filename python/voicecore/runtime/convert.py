"""Audio format conversion between providers and transports, done once and in Rust."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from voicecore.audio import Resampler, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicecore.providers.base import TTS, AudioFormat

__all__ = ["AudioConverter", "choose_format", "synthesize"]

_DECODE = {"mulaw": ulaw_decode, "alaw": alaw_decode}
_ENCODE = {"mulaw": ulaw_encode, "alaw": alaw_encode}


class AudioConverter:
    """A stream converter from ``source`` to ``target`` format (a pass-through when they match).

    G.711 is decoded to PCM16, resampled (state kept across chunks) and encoded again only as
    far as the two formats differ.
    """

    def __init__(self, source: AudioFormat, target: AudioFormat) -> None:
        """Prepare the conversion; the resampler's filter is designed here, not on first audio."""
        self.source = source
        self.target = target
        #: Whether audio goes through unchanged (decided once: :meth:`convert` runs per frame).
        self.passthrough = source == target
        self._resampler = (
            Resampler(source.sample_rate, target.sample_rate)
            if source.sample_rate != target.sample_rate
            else None
        )

    @property
    def delay_ms(self) -> float:
        """Delay the conversion adds (the resampler's filter delay)."""
        if self._resampler is None:
            return 0.0
        return self._resampler.delay * 1000.0 / self.target.sample_rate

    def convert(self, audio: bytes) -> bytes:
        """Convert a chunk; returns every output sample it makes possible."""
        if self.passthrough:
            return audio
        pcm = _DECODE[self.source.encoding](audio) if self.source.encoding != "pcm16" else audio
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        return _ENCODE[self.target.encoding](pcm) if self.target.encoding != "pcm16" else pcm

    def flush(self) -> bytes:
        """End of a stretch of audio: the resampler's tail, converted; the stream starts afresh."""
        if self._resampler is None:
            return b""
        pcm = self._resampler.flush()
        return _ENCODE[self.target.encoding](pcm) if self.target.encoding != "pcm16" else pcm

    def reset(self) -> None:
        """Drop the stream state without its tail (barge-in)."""
        if self._resampler is not None:
            self._resampler.reset()


def choose_format(offered: Sequence[AudioFormat], wanted: AudioFormat) -> AudioFormat:
    """``wanted`` if the provider offers it (no conversion), else the provider's first choice."""
    return wanted if wanted in offered else offered[0]


async def synthesize(
    tts: TTS, text: str, output: AudioFormat, *, voice: str | None = None
) -> AsyncIterator[bytes]:
    """A fixed phrase spoken by ``tts``, in ``output`` format, as it comes (the stream closed after).

    Raises:
        ProviderError: The TTS failed.
    """
    source = choose_format(tts.output_formats(), output)
    convert = AudioConverter(source, output)
    stream = await tts.open(source, voice=voice)
    try:
        await stream.push_text(text)
        await stream.end_input()
        async for chunk in stream:
            if audio := convert.convert(chunk.audio):
                yield audio
        if tail := convert.flush():
            yield tail
    finally:
        await stream.aclose()
