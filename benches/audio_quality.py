"""Resampler quality and latency measurements shared by the tests and the quality benchmark.

Every metric compares against the exact signal: tones are generated analytically at both
rates, so no reference resampler is trusted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: A resampler under test: (input int16 array, in_rate, out_rate) -> (output int16 array, delay
#: in output samples). The output must already include any end-of-stream flush.
ResampleFn = Callable[[np.ndarray, int, int], tuple[np.ndarray, float]]

AMPLITUDE = 30000.0
TELEPHONY_AND_COMMON_PAIRS = [
    (8000, 16000),
    (16000, 8000),
    (24000, 8000),
    (24000, 16000),
    (44100, 16000),
    (48000, 16000),
]


def tone(rate: int, freq: float, seconds: float, amplitude: float = AMPLITUDE) -> np.ndarray:
    """A sine at ``freq`` Hz rounded to int16."""
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _steady(y: np.ndarray) -> slice:
    """The middle half of a signal, away from start-up and flush transients."""
    return slice(len(y) // 4, len(y) * 3 // 4)


def tone_snr_db(resample: ResampleFn, in_rate: int, out_rate: int, freq: float) -> float:
    """SNR of a resampled tone against the exact tone at the output rate, shifted by the delay."""
    y, delay = resample(tone(in_rate, freq, 1.0), in_rate, out_rate)
    window = _steady(y)
    m = np.arange(len(y))[window]
    exact = AMPLITUDE * np.sin(2 * np.pi * freq * (m - delay) / out_rate)
    error = y[window].astype(np.float64) - exact
    return float(10 * np.log10(np.sum(exact**2) / np.sum(error**2)))


def tone_gain_db(resample: ResampleFn, in_rate: int, out_rate: int, freq: float) -> float:
    """Gain at ``freq`` from a least-squares sine fit of the steady-state output."""
    y, _ = resample(tone(in_rate, freq, 1.0), in_rate, out_rate)
    window = _steady(y)
    t = np.arange(len(y))[window] / out_rate
    basis = np.column_stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)])
    (a, b, _), *_ = np.linalg.lstsq(basis, y[window].astype(np.float64), rcond=None)
    return float(20 * np.log10(np.hypot(a, b) / AMPLITUDE))


def alias_rejection_db(resample: ResampleFn, in_rate: int, out_rate: int, freq: float) -> float:
    """How far below the input tone everything in the output lies, for a tone above the output Nyquist."""
    y, _ = resample(tone(in_rate, freq, 1.0), in_rate, out_rate)
    rms = float(np.sqrt(np.mean(y[_steady(y)].astype(np.float64) ** 2)))
    return float("inf") if rms == 0 else float(20 * np.log10(AMPLITUDE / np.sqrt(2) / rms))


def spectral_level_db(y: np.ndarray, rate: int, freq: float) -> float:
    """Level of the component at ``freq`` relative to ``AMPLITUDE`` (Kaiser β=20 window).

    The window's sidelobes lie near -150 dB, far below the levels being measured.
    """
    segment = y[_steady(y)].astype(np.float64)
    window = np.kaiser(len(segment), 20.0)
    spectrum = np.abs(np.fft.rfft(segment * window)) * 2 / window.sum()
    bin_hz = rate / len(segment)
    center = round(freq / bin_hz)
    peak = spectrum[max(center - 8, 0) : center + 9].max()
    return float(20 * np.log10(max(peak, 1e-12) / AMPLITUDE))


def image_rejection_db(resample: ResampleFn, in_rate: int, out_rate: int, freq: float) -> float:
    """For upsampling: how far below the tone its first image (at in_rate - freq) lies.

    An image above the output Nyquist folds back into the output band; it is measured there.
    """
    y, _ = resample(tone(in_rate, freq, 1.0), in_rate, out_rate)
    image = (in_rate - freq) % out_rate
    folded = min(image, out_rate - image)
    return -spectral_level_db(y, out_rate, folded)


@dataclass(frozen=True)
class QualityReport:
    """Worst-case quality of one resampler on one rate pair."""

    worst_rejection_db: float
    worst_snr_db: float
    ripple_db: float


def quality_report(
    resample: ResampleFn, in_rate: int, out_rate: int, passband_fraction: float = 0.9
) -> QualityReport:
    """Rejection, in-band SNR and ripple over tones spanning the passband (up to ``passband_fraction``)."""
    low_nyquist = min(in_rate, out_rate) / 2
    fractions = (0.02, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9)
    passband = [low_nyquist * f * passband_fraction / 0.9 for f in fractions]
    if out_rate < in_rate:
        low, top = out_rate / 2, in_rate / 2
        high = [low + (top - low) * f for f in (0.01, 0.1, 0.3, 0.6, 0.97)]
        rejections = [alias_rejection_db(resample, in_rate, out_rate, f) for f in high]
    else:
        rejections = [image_rejection_db(resample, in_rate, out_rate, f) for f in passband]
    snrs = [tone_snr_db(resample, in_rate, out_rate, f) for f in passband]
    gains = [tone_gain_db(resample, in_rate, out_rate, f) for f in passband]
    return QualityReport(min(rejections), min(snrs), max(abs(g) for g in gains))


def hold_back_ms(process_chunk: Callable[[np.ndarray], int], in_rate: int, out_rate: int) -> float:
    """Worst shortfall, in ms, between output returned and output the input so far allows (20 ms chunks)."""
    chunk = in_rate // 50
    worst = 0.0
    received = 0
    for i in range(1, 51):
        received += process_chunk(np.zeros(chunk, dtype=np.int16))
        allowed = i * chunk * out_rate / in_rate
        worst = max(worst, (allowed - received) / out_rate * 1000)
    return worst
