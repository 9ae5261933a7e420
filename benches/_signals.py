"""Deterministic benchmark inputs and the checks that keep benchmark results honest.

Inputs are speech-like: a voiced source (a 90-180 Hz gliding fundamental with harmonics
shaped by three formants) under a syllabic (4 Hz) envelope, plus low-level noise, peak
normalised to -12 dBFS. Everything is seeded, so every run and every machine benchmarks
the same samples.
"""

from __future__ import annotations

import functools

import numpy as np
import soxr

RATES = (8000, 16000, 22050, 24000, 44100, 48000)
PEAK_DBFS = -12.0
FRAME_MS = 20


# Streaming cases time rounds of this many consecutive calls (500 ms of 20 ms chunks), so each
# round's per-call time is amortised over several output blocks of block-based streams (soxr
# returns ~100-140 ms every 4-7 calls): mean and median then both mean "cost per 20 ms".
STREAM_ITERATIONS = 25
STREAM_ROUNDS = 400


def frame_samples(rate: int, ms: int = FRAME_MS) -> int:
    """Samples in ``ms`` milliseconds at ``rate`` (exact for all RATES at 20 ms)."""
    return rate * ms // 1000


@functools.cache
def speech(rate: int, seconds: float = 1.0, seed: int = 20240611) -> bytes:
    """Speech-like PCM16 little-endian mono audio, deterministic for (rate, seconds, seed)."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    t = np.arange(n) / rate
    # Gliding pitch, integrated to a phase so harmonics stay coherent.
    f0 = 135.0 + 45.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    nyquist_guard = min(0.45 * rate, 7000.0)
    formants = ((700.0, 130.0), (1220.0, 70.0), (2600.0, 160.0))
    voiced = np.zeros(n)
    for k in range(1, 60):
        fk = k * 180.0  # upper bound of the k-th harmonic
        if fk > nyquist_guard:
            break
        gain = sum(np.exp(-(((k * 135.0) - fc) ** 2) / (2 * (3 * bw) ** 2)) for fc, bw in formants)
        voiced += (gain + 0.02) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t + 0.3) ** 2
    signal = voiced * envelope + 0.01 * rng.standard_normal(n) * np.max(np.abs(voiced))
    peak = 32767 * 10 ** (PEAK_DBFS / 20)
    samples = np.round(signal / np.max(np.abs(signal)) * peak).astype("<i2")
    return samples.tobytes()


def frames(pcm: bytes, rate: int, ms: int = FRAME_MS) -> list[bytes]:
    """Splits PCM16 into whole ``ms`` frames (a trailing partial frame is dropped)."""
    step = 2 * frame_samples(rate, ms)
    return [pcm[i : i + step] for i in range(0, len(pcm) - step + 1, step)]


def burstiness(outputs: list[bytes], out_rate: int) -> dict[str, float]:
    """How a stream delivered its output over equal input chunks (latency-relevant).

    Returns:
        ``max_out_ms``: the most audio one call returned, in ms; ``empty_calls``: the
        fraction of calls that returned nothing (block-based resamplers hold audio back).
    """
    sizes = [len(o) // 2 for o in outputs]
    return {
        "max_out_ms": round(1000 * max(sizes, default=0) / out_rate, 2),
        "empty_calls": round(sum(1 for n in sizes if n == 0) / max(len(sizes), 1), 3),
    }


def as_int16(pcm: bytes) -> np.ndarray:
    """PCM16 little-endian bytes as an int16 array (no copy)."""
    return np.frombuffer(pcm, dtype="<i2")


def snr_db_aligned(got: np.ndarray, ref: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Best SNR (dB) of ``got`` against ``ref`` over integer lags ``0..max_lag`` of ``got``.

    Resamplers differ in how much of their group delay they compensate, so the
    comparison searches the lag that lines ``got`` up with ``ref``; the first and last
    10 % are ignored so start-up and flush transients do not dominate.

    Returns:
        (snr_db, lag) for the best lag.
    """
    got = got.astype(np.float64)
    ref = ref.astype(np.float64)
    best = (-np.inf, 0)
    for lag in range(max_lag + 1):
        n = min(len(got) - lag, len(ref))
        if n <= 0:
            break
        lo, hi = n // 10, n - n // 10
        a, b = got[lag + lo : lag + hi], ref[lo:hi]
        err = float(np.sum((a - b) ** 2))
        snr = np.inf if err == 0 else 10 * np.log10(float(np.sum(b**2)) / err)
        if snr > best[0]:
            best = (snr, lag)
    return best


def reference_resample(pcm: bytes, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot very-high-quality float resampling: the yardstick for streamed output."""
    x = as_int16(pcm).astype(np.float64)
    return np.asarray(soxr.resample(x, in_rate, out_rate, "VHQ"))


def assert_resampled_well(
    got_pcm: bytes,
    src_pcm: bytes,
    in_rate: int,
    out_rate: int,
    *,
    min_snr_db: float,
    max_lag: int = 512,
    max_held: int = 0,
) -> None:
    """Asserts that ``got_pcm`` is ``src_pcm`` resampled to ``out_rate`` (length and fidelity).

    Args:
        got_pcm: The resampler's output, PCM16.
        src_pcm: Its input, PCM16 at ``in_rate``.
        in_rate: Input sample rate.
        out_rate: Output sample rate.
        min_snr_db: Least acceptable SNR against a one-shot VHQ resampling.
        max_lag: Most output samples the output may lag the reference by (uncompensated delay).
        max_held: Most output samples a stream may still hold back (0 for flushed output).

    Raises:
        AssertionError: the output is too short or too long, or too far from the reference.
    """
    ref = reference_resample(src_pcm, in_rate, out_rate)
    got = as_int16(got_pcm)
    lo, hi = len(ref) - max_held - 2, len(ref) + max_lag + 2
    assert lo <= len(got) <= hi, f"{in_rate}->{out_rate}: {len(got)} samples out, expected {lo}..{hi}"
    snr, lag = snr_db_aligned(got, ref, max_lag)
    assert snr >= min_snr_db, f"{in_rate}->{out_rate}: SNR {snr:.1f} dB at lag {lag} < {min_snr_db} dB"
