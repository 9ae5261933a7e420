"""Resampler: quality against exact tones, exact streaming, latency and errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benches.audio_quality import (
    TELEPHONY_AND_COMMON_PAIRS,
    alias_rejection_db,
    image_rejection_db,
    quality_report,
    tone,
    tone_gain_db,
    tone_snr_db,
)
from voicecore.audio import Resampler
from voicecore.errors import AudioFormatError, ConfigError

RATES = [8000, 16000, 22050, 24000, 44100, 48000]
ALL_PAIRS = list(itertools.product(RATES, RATES))


def voicecore_hq(x: np.ndarray, in_rate: int, out_rate: int) -> tuple[np.ndarray, float]:
    r = Resampler(in_rate, out_rate)
    out = r.process(x.tobytes()) + r.flush()
    return np.frombuffer(out, dtype=np.int16), r.delay


def voicecore_fast(x: np.ndarray, in_rate: int, out_rate: int) -> tuple[np.ndarray, float]:
    r = Resampler(in_rate, out_rate, quality="fast")
    out = r.process(x.tobytes()) + r.flush()
    return np.frombuffer(out, dtype=np.int16), r.delay


@pytest.mark.parametrize(("in_rate", "out_rate"), [p for p in ALL_PAIRS if p[1] < p[0]])
def test_tones_above_output_nyquist_are_rejected_by_90_db(in_rate: int, out_rate: int) -> None:
    low, high = out_rate / 2, in_rate / 2
    for fraction in (0.02, 0.3, 0.97):
        freq = low + (high - low) * fraction
        assert alias_rejection_db(voicecore_hq, in_rate, out_rate, freq) >= 90, freq


@pytest.mark.parametrize(("in_rate", "out_rate"), [p for p in ALL_PAIRS if p[1] > p[0]])
def test_images_of_in_band_tones_are_rejected_by_90_db(in_rate: int, out_rate: int) -> None:
    for fraction in (0.1, 0.5, 0.9):
        freq = in_rate / 2 * fraction
        assert image_rejection_db(voicecore_hq, in_rate, out_rate, freq) >= 90, freq


@pytest.mark.parametrize(("in_rate", "out_rate"), [p for p in ALL_PAIRS if p[0] != p[1]])
def test_in_band_tones_match_the_exact_signal(in_rate: int, out_rate: int) -> None:
    nyquist = min(in_rate, out_rate) / 2
    for fraction in (0.02, 0.25, 0.5, 0.75, 0.9):
        freq = nyquist * fraction
        assert tone_snr_db(voicecore_hq, in_rate, out_rate, freq) >= 85, freq
        assert abs(tone_gain_db(voicecore_hq, in_rate, out_rate, freq)) <= 0.1, freq


def test_a_tone_outside_the_passband_is_not_passed_off_as_in_band() -> None:
    # The metric can fail: a tone at 0.99 x Nyquist lies in the transition band and is attenuated.
    assert abs(tone_gain_db(voicecore_hq, 16000, 8000, 3990)) > 0.1


@pytest.mark.parametrize(("in_rate", "out_rate"), TELEPHONY_AND_COMMON_PAIRS)
def test_fast_profile_trades_rejection_for_delay(in_rate: int, out_rate: int) -> None:
    fast = quality_report(voicecore_fast, in_rate, out_rate, passband_fraction=0.8)
    assert fast.worst_rejection_db >= 60
    assert Resampler(in_rate, out_rate, quality="fast").delay < Resampler(in_rate, out_rate).delay


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (16000, 8000), (24000, 8000)])
def test_telephony_delay_is_at_most_6_ms(in_rate: int, out_rate: int) -> None:
    r = Resampler(in_rate, out_rate)
    assert r.delay / out_rate * 1000 <= 6.0


@pytest.mark.parametrize(("in_rate", "out_rate"), ALL_PAIRS)
def test_impulse_peak_arrives_at_the_reported_delay(in_rate: int, out_rate: int) -> None:
    r = Resampler(in_rate, out_rate)
    impulse = np.zeros(in_rate // 10, dtype=np.int16)
    impulse[100] = 20000
    y = np.frombuffer(r.process(impulse.tobytes()) + r.flush(), dtype=np.int16)
    expected = 100 * out_rate / in_rate + r.delay
    assert abs(int(np.argmax(y)) - expected) <= 1.0


@pytest.mark.parametrize(("in_rate", "out_rate"), ALL_PAIRS)
def test_every_20_ms_chunk_returns_all_the_output_it_allows(in_rate: int, out_rate: int) -> None:
    r = Resampler(in_rate, out_rate)
    chunk = np.zeros(in_rate // 50, dtype=np.int16).tobytes()
    received = 0
    for i in range(1, 21):
        received += len(r.process(chunk)) // 2
        # No hold-back: ceil(samples in x ratio), the most the input so far can determine.
        assert received == -(-i * (in_rate // 50) * out_rate // in_rate)


@settings(max_examples=60, deadline=None)
@given(
    pair=st.sampled_from(ALL_PAIRS),
    quality=st.sampled_from(["hq", "fast"]),
    data=st.binary(max_size=6000).map(lambda b: b[: len(b) // 2 * 2]),
    cuts=st.lists(st.integers(min_value=0, max_value=1500), max_size=10),
)
def test_any_chunking_is_bit_identical_to_one_call(
    pair: tuple[int, int], quality: str, data: bytes, cuts: list[int]
) -> None:
    whole = Resampler(*pair, quality=quality)
    expected = whole.process(data) + whole.flush()
    chunked = Resampler(*pair, quality=quality)
    pieces = []
    position = 0
    for cut in sorted(c * 2 for c in cuts):
        pieces.append(chunked.process(data[position : max(cut, position)]))
        position = max(cut, position)
    pieces.append(chunked.process(data[position:]))
    pieces.append(chunked.flush())
    assert b"".join(pieces) == expected


@pytest.mark.parametrize(("in_rate", "out_rate"), [(48000, 16000), (8000, 16000), (44100, 16000)])
def test_a_long_buffer_in_one_call_equals_20_ms_chunks(in_rate: int, out_rate: int) -> None:
    """Long inputs are resampled in internal pieces (bounded memory); the output is the same."""
    data = np.random.default_rng(3).integers(-20000, 20000, 4 * in_rate, dtype=np.int16).tobytes()
    whole = Resampler(in_rate, out_rate)
    chunked = Resampler(in_rate, out_rate)
    step = in_rate // 50 * 2
    pieces = [chunked.process(data[i : i + step]) for i in range(0, len(data), step)]
    assert whole.process(data) == b"".join(pieces)


def test_flush_returns_the_tail_and_starts_a_new_stream() -> None:
    r = Resampler(16000, 8000)
    x = tone(16000, 500, 0.1).tobytes()
    first = r.process(x) + r.flush()
    assert len(first) // 2 == 800 + int(np.ceil(r.delay))
    assert r.process(x) + r.flush() == first


def test_reset_forgets_history() -> None:
    r = Resampler(8000, 16000)
    r.process(tone(8000, 300, 0.05).tobytes())
    r.reset()
    silence = r.process(bytes(320))
    assert silence == bytes(len(silence))


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.tobytes(),
        lambda x: bytearray(x.tobytes()),
        lambda x: memoryview(x.tobytes()),
        lambda x: x,
        lambda x: memoryview(x),
    ],
)
def test_accepts_any_bytes_like_input(make: object) -> None:
    x = tone(16000, 440, 0.02)
    expected = Resampler(16000, 8000).process(x.tobytes())
    assert Resampler(16000, 8000).process(make(x)) == expected  # type: ignore[operator]


def test_unsupported_rate_lists_the_supported_ones() -> None:
    with pytest.raises(AudioFormatError, match="8000, 16000, 22050, 24000, 44100 and 48000"):
        Resampler(11025, 16000)
    with pytest.raises(ValueError, match="12345"):
        Resampler(16000, 12345)


def test_odd_length_names_the_length_and_keeps_the_stream() -> None:
    r = Resampler(16000, 8000)
    good = tone(16000, 440, 0.02).tobytes()
    reference = Resampler(16000, 8000)
    with pytest.raises(AudioFormatError, match="641 bytes"):
        r.process(good + b"\x00")
    assert r.process(good) == reference.process(good)


def test_bad_quality_and_bad_input_types_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="hq"):
        Resampler(16000, 8000, quality="best")
    r = Resampler(16000, 8000)
    with pytest.raises(TypeError, match="bytes-like"):
        r.process("not audio")  # type: ignore[arg-type]
    with pytest.raises(AudioFormatError, match="format"):
        r.process(np.zeros(10, dtype=np.float32))
    with pytest.raises(AudioFormatError, match="contiguous"):
        r.process(np.zeros(20, dtype=np.int16)[::2])


def test_properties_describe_the_stream() -> None:
    r = Resampler(24000, 8000, quality="fast")
    assert (r.in_rate, r.out_rate, r.quality) == (24000, 8000, "fast")
    assert "24000" in repr(r)
