"""The audio hot path: G.711 codecs, streaming resampling and the Twilio frame codec.

All functions take any bytes-like object (``bytes``, ``bytearray``, ``memoryview``, a
C-contiguous ``int16`` numpy array) and return ``bytes``; PCM is 16-bit little-endian mono.
They are implemented in Rust (``voicecore._core``); one call handles a whole frame.
"""

from __future__ import annotations

from voicecore._core import (
    Resampler,
    TwilioFrameDecoder,
    TwilioFrameEncoder,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)

__all__ = [
    "Resampler",
    "TwilioFrameDecoder",
    "TwilioFrameEncoder",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]
