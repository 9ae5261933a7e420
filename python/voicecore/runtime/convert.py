"""Audio format conversion between providers and transports, done once and in Rust."""

from __future__ import annotations

from voicecore.audio import Resampler, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicecore.providers.base import AudioFormat

__all__ = ["AudioConverter"]

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
