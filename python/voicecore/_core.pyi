"""Type stubs for the Rust extension ``voicecore._core``; import from ``voicecore.audio`` instead."""

from typing import Final

from typing_extensions import Buffer

__version__: Final[str]
build_profile: Final[str]

def ulaw_encode(pcm: Buffer, /) -> bytes:
    """Encode PCM16 little-endian samples as G.711 μ-law, one byte per sample.

    Bit-exact with ``audioop.lin2ulaw(pcm, 2)`` for every input value.

    Raises:
        AudioFormatError: ``pcm`` has an odd number of bytes or an unsupported item format.
    """

def ulaw_decode(data: Buffer, /) -> bytes:
    """Decode G.711 μ-law bytes to PCM16 little-endian; bit-exact with ``audioop.ulaw2lin(data, 2)``."""

def alaw_encode(pcm: Buffer, /) -> bytes:
    """Encode PCM16 little-endian samples as G.711 A-law, one byte per sample.

    Bit-exact with ``audioop.lin2alaw(pcm, 2)`` for every input value.

    Raises:
        AudioFormatError: ``pcm`` has an odd number of bytes or an unsupported item format.
    """

def alaw_decode(data: Buffer, /) -> bytes:
    """Decode G.711 A-law bytes to PCM16 little-endian; bit-exact with ``audioop.alaw2lin(data, 2)``."""
