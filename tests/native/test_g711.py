"""G.711 μ-law / A-law in the Rust core, checked against CPython's ``audioop`` as the oracle.

Exhaustive where the domain is small (every int16, every code byte), property-based
elsewhere, plus the garbage a network-facing codec must survive.
"""

from __future__ import annotations

import array
import gc
import hashlib
import itertools
import os
import sys
import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore import audio
from voicecore.errors import AudioFormatError, VoicecoreError

Codec = Callable[[Any], bytes]

ENCODERS: dict[str, Codec] = {"ulaw": audio.ulaw_encode, "alaw": audio.alaw_encode}
DECODERS: dict[str, Codec] = {"ulaw": audio.ulaw_decode, "alaw": audio.alaw_decode}
ALL_FUNCS: dict[str, Codec] = {
    "ulaw_encode": audio.ulaw_encode,
    "ulaw_decode": audio.ulaw_decode,
    "alaw_encode": audio.alaw_encode,
    "alaw_decode": audio.alaw_decode,
}
ORACLE_ENCODE = {"ulaw": "lin2ulaw", "alaw": "lin2alaw"}
ORACLE_DECODE = {"ulaw": "ulaw2lin", "alaw": "alaw2lin"}

law_param = pytest.mark.parametrize("law", ["ulaw", "alaw"])
func_param = pytest.mark.parametrize("name", sorted(ALL_FUNCS))

# Even-length PCM, i.e. whole int16 samples; sizes span a frame up to ~1/4 s at 8 kHz.
pcm_bytes = st.lists(st.integers(-32768, 32767), max_size=2048).map(
    lambda xs: np.asarray(xs, dtype="<i2").tobytes()
)


def _le_int16(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2")


# --- exhaustive agreement with audioop ---------------------------------------------------------


@law_param
def test_encode_every_int16_matches_audioop(law: str, audioop: ModuleType, all_int16_pcm: bytes) -> None:
    expected = getattr(audioop, ORACLE_ENCODE[law])(all_int16_pcm, 2)
    got = ENCODERS[law](all_int16_pcm)
    assert len(got) == 65536
    if got != expected:
        bad = next(i for i in range(65536) if got[i] != expected[i])
        pytest.fail(f"{law}_encode({bad - 32768}) = {got[bad]:#04x}, audioop says {expected[bad]:#04x}")


@law_param
def test_decode_every_code_matches_audioop(law: str, audioop: ModuleType, all_codes: bytes) -> None:
    expected = getattr(audioop, ORACLE_DECODE[law])(all_codes, 2)
    got = DECODERS[law](all_codes)
    assert len(got) == 512
    assert _le_int16(got).tolist() == _le_int16(expected).tolist()


@law_param
def test_each_sample_encodes_independently(law: str, audioop: ModuleType, all_int16_pcm: bytes) -> None:
    # One call per sample (no batching effects, e.g. SIMD tails) over a spread of values.
    encode, oracle = ENCODERS[law], getattr(audioop, ORACLE_ENCODE[law])
    for i in range(0, 65536 * 2, 2 * 97):
        sample = all_int16_pcm[i : i + 2]
        assert encode(sample) == oracle(sample, 2), _le_int16(sample)[0]


@pytest.mark.parametrize(
    ("law", "prefix"),
    [("ulaw", "81d633c9e6972a18"), ("alaw", "38488f6fd710f468")],
)
def test_fingerprint_of_all_int16(law: str, prefix: str, all_int16_pcm: bytes) -> None:
    # Pins the tables independently of the local audioop build.
    assert hashlib.sha256(ENCODERS[law](all_int16_pcm)).hexdigest().startswith(prefix)


@law_param
def test_decode_then_encode_is_identity_on_all_codes(law: str, all_codes: bytes) -> None:
    got = ENCODERS[law](DECODERS[law](all_codes))
    expected = bytearray(all_codes)
    if law == "ulaw":
        expected[0x7F] = 0xFF  # μ-law has two zeros: 0x7F (-0) decodes to 0, which encodes as 0xFF (+0)
    assert got == bytes(expected)


def test_known_values() -> None:
    silence = np.zeros(4, dtype="<i2").tobytes()
    assert audio.ulaw_encode(silence) == b"\xff" * 4
    assert audio.alaw_encode(silence) == b"\xd5" * 4
    assert audio.ulaw_decode(b"\x00\x80") == np.array([-32124, 32124], dtype="<i2").tobytes()
    assert audio.alaw_decode(b"\xd5") == np.array([8], dtype="<i2").tobytes()


# --- properties --------------------------------------------------------------------------------


@law_param
@given(pcm=pcm_bytes, data=st.data())
def test_chunked_encode_equals_one_call(
    law: str, pcm: bytes, data: st.DataObject, audioop: ModuleType
) -> None:
    n = len(pcm) // 2
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=8)))
    bounds = [0, *cuts, n]
    encode = ENCODERS[law]
    pieces = [encode(pcm[2 * a : 2 * b]) for a, b in itertools.pairwise(bounds)]
    whole = encode(pcm)
    assert b"".join(pieces) == whole
    assert whole == getattr(audioop, ORACLE_ENCODE[law])(pcm, 2)


@law_param
@given(codes=st.binary(max_size=2048), data=st.data())
def test_chunked_decode_equals_one_call(law: str, codes: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(codes)), max_size=8)))
    bounds = [0, *cuts, len(codes)]
    decode = DECODERS[law]
    assert b"".join(decode(codes[a:b]) for a, b in itertools.pairwise(bounds)) == decode(codes)


@law_param
@given(codes=st.binary(max_size=4096))
def test_random_bytes_decode_and_round_trip(law: str, codes: bytes, audioop: ModuleType) -> None:
    # Any byte string is a valid G.711 stream: decoding never fails and matches the oracle.
    pcm = DECODERS[law](codes)
    assert len(pcm) == 2 * len(codes)
    assert pcm == getattr(audioop, ORACLE_DECODE[law])(codes, 2)
    expected = codes.replace(b"\x7f", b"\xff") if law == "ulaw" else codes
    assert ENCODERS[law](pcm) == expected


@law_param
@given(pcm=pcm_bytes)
def test_encoder_accepts_every_bytes_like_type(law: str, pcm: bytes) -> None:
    encode = ENCODERS[law]
    expected = encode(pcm)
    samples = array.array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    inputs: list[Any] = [
        bytearray(pcm),
        memoryview(pcm),
        memoryview(bytearray(pcm)),
        np.frombuffer(pcm, dtype="<i2").copy(),
        np.frombuffer(pcm, dtype=np.uint8).copy(),
        samples,
    ]
    for obj in inputs:
        assert encode(obj) == expected, type(obj)


@law_param
@given(codes=st.binary(max_size=1024))
def test_decoder_accepts_every_bytes_like_type(law: str, codes: bytes) -> None:
    decode = DECODERS[law]
    expected = decode(codes)
    inputs: list[Any] = [
        bytearray(codes),
        memoryview(codes),
        np.frombuffer(codes, dtype=np.uint8).copy(),
        array.array("B", codes),
    ]
    for obj in inputs:
        assert decode(obj) == expected, type(obj)


@law_param
def test_encoder_accepts_sliced_memoryview(law: str, all_int16_pcm: bytes) -> None:
    view = memoryview(all_int16_pcm)[1000:1320]  # a contiguous window into a larger buffer
    assert ENCODERS[law](view) == ENCODERS[law](all_int16_pcm[1000:1320])


# --- empty and garbage input -------------------------------------------------------------------


@func_param
@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b""), np.zeros(0, dtype=np.int16)])
def test_empty_input_gives_empty_output(name: str, empty: Any) -> None:
    if name.endswith("decode") and isinstance(empty, np.ndarray):
        empty = np.zeros(0, dtype=np.uint8)
    out = ALL_FUNCS[name](empty)
    assert out == b""
    assert type(out) is bytes


@law_param
@pytest.mark.parametrize("length", [1, 3, 159, 321, 65537])
def test_odd_pcm_length_raises_audio_format_error_naming_length(law: str, length: int) -> None:
    with pytest.raises(AudioFormatError, match=rf"\b{length}\b") as excinfo:
        ENCODERS[law](b"\x01" * length)
    # Callers may catch the general classes too.
    assert isinstance(excinfo.value, VoicecoreError)
    assert isinstance(excinfo.value, ValueError)


@law_param
def test_odd_length_bytearray_and_memoryview_raise(law: str) -> None:
    for obj in (bytearray(b"\x00" * 7), memoryview(b"\x00" * 7)):
        with pytest.raises(AudioFormatError, match=r"\b7\b"):
            ENCODERS[law](obj)


@func_param
def test_non_contiguous_numpy_view_raises(name: str) -> None:
    dtype = np.int16 if name.endswith("encode") else np.uint8
    strided = np.arange(64, dtype=dtype)[::2]
    assert not strided.flags.c_contiguous
    with pytest.raises(AudioFormatError, match="contiguous"):
        ALL_FUNCS[name](strided)
    # The explicit fix the message suggests works.
    assert len(ALL_FUNCS[name](np.ascontiguousarray(strided))) > 0


@func_param
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.complex64])
def test_wrong_dtype_numpy_raises(name: str, dtype: Any) -> None:
    with pytest.raises(AudioFormatError, match="format"):
        ALL_FUNCS[name](np.zeros(160, dtype=dtype))


@law_param
def test_big_endian_int16_raises(law: str) -> None:
    # '>i2' has the right item size but the wrong byte order: silently encoding it would be noise.
    with pytest.raises(AudioFormatError, match="format"):
        ENCODERS[law](np.zeros(160, dtype=">i2"))


@law_param
def test_decoder_rejects_int16_arrays(law: str) -> None:
    # G.711 codes are bytes; an int16 array passed to a decoder is almost certainly PCM by mistake.
    with pytest.raises(AudioFormatError):
        DECODERS[law](np.zeros(160, dtype=np.int16))


@func_param
@pytest.mark.parametrize("bad", ["abcd", "", 160, 1.5, None, [0, 1], (0, 1), object()])
def test_non_bytes_like_raises_type_error(name: str, bad: Any) -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        ALL_FUNCS[name](bad)


@func_param
def test_wrong_arity_raises_type_error(name: str) -> None:
    func: Any = ALL_FUNCS[name]
    with pytest.raises(TypeError):
        func()
    with pytest.raises(TypeError):
        func(b"\x00\x00", b"\x00\x00")


@func_param
def test_buffer_export_is_released(name: str) -> None:
    # A buffer view held past the call would make a bytearray unresizable ("BufferError: Existing exports").
    buf = bytearray(320)
    ALL_FUNCS[name](buf)
    buf.extend(b"\x00\x00")
    del buf[:]
    view_base = bytearray(64)
    with memoryview(view_base) as mv:
        ALL_FUNCS[name](mv)
    view_base.extend(b"\x00\x00")


@law_param
def test_errors_release_buffer_export(law: str) -> None:
    buf = bytearray(3)
    with pytest.raises(AudioFormatError):
        ENCODERS[law](buf)
    buf.extend(b"\x00")  # would raise BufferError if the failed call leaked the export
    assert len(ENCODERS[law](buf)) == 2


# --- resources ---------------------------------------------------------------------------------


@func_param
def test_memory_flat_over_many_calls(name: str) -> None:
    func = ALL_FUNCS[name]
    frame = np.arange(-160, 160, dtype="<i2").tobytes() if name.endswith("encode") else bytes(range(160))
    as_array = np.frombuffer(frame, dtype=np.int16 if name.endswith("encode") else np.uint8)

    def run(n: int) -> None:
        for _ in range(n):
            func(frame)
            func(as_array)

    refs_before = sys.getrefcount(frame), sys.getrefcount(as_array)
    run(1000)  # warm up caches and allocator pools
    gc.collect()
    rss_before = _rss_bytes()
    tracemalloc.start()
    try:
        run(50_000)  # 10^5 calls in all
        gc.collect()
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = _rss_bytes() - rss_before
    assert (sys.getrefcount(frame), sys.getrefcount(as_array)) == refs_before
    assert current < 64 * 1024, f"{current} bytes of Python objects retained after 10^5 calls"
    # Leaking even one 320-byte output per call would add ~32 MB.
    assert rss_growth < 8 * 1024 * 1024, f"RSS grew by {rss_growth} bytes over 10^5 calls"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except OSError:  # not Linux: fall back to the (monotonic) peak, which still catches big leaks
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
