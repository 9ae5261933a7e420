"""Print the resampler quality/latency table: voicecore "hq"/"fast" beside soxr HQ and VHQ.

Run: ``python -m benches.quality_table`` (from the repository root). Every figure is measured
here against analytic tones (see ``benches/audio_quality.py``); hold-back is the worst shortfall
between the output a 20 ms-chunk stream returned and the output its input allowed.
"""

from __future__ import annotations

import numpy as np
import soxr

from benches.audio_quality import TELEPHONY_AND_COMMON_PAIRS, ResampleFn, hold_back_ms, quality_report
from voicecore.audio import Resampler


def voicecore_fn(quality: str) -> ResampleFn:
    def run(x: np.ndarray, in_rate: int, out_rate: int) -> tuple[np.ndarray, float]:
        r = Resampler(in_rate, out_rate, quality=quality)
        return np.frombuffer(r.process(x.tobytes()) + r.flush(), dtype=np.int16), r.delay

    return run


def soxr_fn(quality: str) -> ResampleFn:
    def run(x: np.ndarray, in_rate: int, out_rate: int) -> tuple[np.ndarray, float]:
        return soxr.resample(x, in_rate, out_rate, quality=quality), 0.0  # soxr output is time-aligned

    return run


def voicecore_latency_ms(quality: str, in_rate: int, out_rate: int) -> tuple[float, float]:
    """(filter delay, hold-back) in ms for a voicecore stream."""
    r = Resampler(in_rate, out_rate, quality=quality)
    held = hold_back_ms(lambda c: len(r.process(c.tobytes())) // 2, in_rate, out_rate)
    return r.delay / out_rate * 1000, held


def soxr_latency_ms(quality: str, in_rate: int, out_rate: int) -> tuple[float, float]:
    """(filter delay, hold-back) in ms for a soxr stream; soxr hides its delay by holding output back."""
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)
    return 0.0, hold_back_ms(lambda c: len(stream.resample_chunk(c)), in_rate, out_rate)


def rows(pairs: list[tuple[int, int]]) -> list[str]:
    """Markdown rows: one per (pair, resampler)."""
    contenders = [
        ("voicecore hq", voicecore_fn("hq"), 0.9, lambda a, b: voicecore_latency_ms("hq", a, b)),
        ("voicecore fast", voicecore_fn("fast"), 0.8, lambda a, b: voicecore_latency_ms("fast", a, b)),
        ("soxr HQ", soxr_fn("HQ"), 0.9, lambda a, b: soxr_latency_ms("HQ", a, b)),
        ("soxr VHQ", soxr_fn("VHQ"), 0.9, lambda a, b: soxr_latency_ms("VHQ", a, b)),
    ]
    out = []
    for in_rate, out_rate in pairs:
        for name, fn, band, latency in contenders:
            report = quality_report(fn, in_rate, out_rate, passband_fraction=band)
            delay, held = latency(in_rate, out_rate)
            out.append(
                f"| {in_rate // 1000 if in_rate % 1000 == 0 else in_rate / 1000}k→{out_rate // 1000}k "
                f"| {name} | {report.worst_rejection_db:.1f} | {report.worst_snr_db:.1f} "
                f"| {report.ripple_db:.4f} | {band} | {delay:.2f} | {held:.1f} |"
            )
    return out


HEADER = [
    "| pair | resampler | worst alias/image rejection (dB) | worst in-band SNR vs exact (dB) "
    "| max passband deviation (dB) | passband (of Nyquist) | filter delay (ms) "
    "| worst hold-back on 20 ms chunks (ms) |",
    "|---|---|---|---|---|---|---|---|",
]


def main() -> None:
    """Print the table for the benchmark pairs."""
    print("\n".join(HEADER + rows(TELEPHONY_AND_COMMON_PAIRS)))


if __name__ == "__main__":
    main()
