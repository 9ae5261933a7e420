"""The audio hot path: G.711 codecs, streaming resampling, the Twilio frame codec, playout.

All functions take any bytes-like object (``bytes``, ``bytearray``, ``memoryview``, a
C-contiguous ``int16`` numpy array) and return ``bytes``; PCM is 16-bit little-endian mono.
They are implemented in Rust (``voicecore._core``); one call handles a whole frame.

:class:`PlayoutBuffer` queues outbound agent audio with named marks and hands it out in
fixed frames; :meth:`PlayoutBuffer.clear` (barge-in) returns a :class:`ClearReport`.

:class:`Vad` detects speech in inbound audio and endpoints turns, returning
:class:`VadEvent` s (start with pre-roll audio, end). :class:`BeepDetector` finds an answering
machine's beep (a steady pure tone), after which the machine records.

:func:`simd_level` says which kernels run: AVX-512, AVX2 or portable, as the CPU allows;
the environment variable ``VOICECORE_SIMD`` (``portable``, ``avx2``, ``avx512``, ``native``),
read once at import, lowers it, to benchmark or check the lower kernels on a bigger CPU.
"""

from __future__ import annotations

from voicecore._core import (
    Beep,
    BeepDetector,
    ClearReport,
    PlayoutBuffer,
    Resampler,
    TwilioFrameDecoder,
    TwilioFrameEncoder,
    alaw_decode,
    alaw_encode,
    simd_detected,
    simd_level,
    ulaw_decode,
    ulaw_encode,
)
from voicecore.vad import Vad, VadEvent

__all__ = [
    "Beep",
    "BeepDetector",
    "ClearReport",
    "PlayoutBuffer",
    "Resampler",
    "TwilioFrameDecoder",
    "TwilioFrameEncoder",
    "Vad",
    "VadEvent",
    "alaw_decode",
    "alaw_encode",
    "simd_detected",
    "simd_level",
    "ulaw_decode",
    "ulaw_encode",
]
