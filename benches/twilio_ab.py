"""Twilio frame paths, voicecore and Pipecat interleaved: the cost ratio on a shared host.

``python -m voicecore bench -- -k twilio`` times each side in its own block of rounds, so a
neighbour that slows the shared host during one side's block moves the ratio (on this
two-core machine the same 24 kHz outbound case gave 4.4x to 15.6x within minutes). Here
the two sides alternate in bursts of 25 calls on the same inputs as the pytest-benchmark
groups (``benches/test_twilio.py``), the order flipping every burst, and each burst pair
gives one ratio; the median ratio and its interquartile range are reported. A slowdown
longer than a burst pair (~0.5 ms) hits both sides alike.

Run ``python -m benches.twilio_ab`` (Pipecat from ``benches/requirements.txt``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import test_twilio as tw
from ._signals import STREAM_ITERATIONS, frames, speech

BURSTS = 400


@dataclass(frozen=True)
class Comparison:
    """Per-call medians of both sides and the burst ratios (peer / voicecore) of one case."""

    case: str
    voicecore_ns: float
    peer_ns: float
    ratio: float
    ratio_q1: float
    ratio_q3: float


def _burst_ns(call: Callable[[Any], Any], arg: Any) -> float:
    start = time.perf_counter_ns()
    for _ in range(STREAM_ITERATIONS):
        call(arg)
    return (time.perf_counter_ns() - start) / STREAM_ITERATIONS


def interleaved(
    case: str, ours: Callable[[Any], Any], peer: Callable[[Any], Any], arg: Any, bursts: int = BURSTS
) -> Comparison:
    """Times ``ours(arg)`` and ``peer(arg)`` in alternating bursts (order flipped each time)."""
    for _ in range(2):  # warm-up
        _burst_ns(ours, arg)
        _burst_ns(peer, arg)
    mine: list[float] = []
    theirs: list[float] = []
    for k in range(bursts):
        if k % 2:
            theirs.append(_burst_ns(peer, arg))
            mine.append(_burst_ns(ours, arg))
        else:
            mine.append(_burst_ns(ours, arg))
            theirs.append(_burst_ns(peer, arg))
    ratios = [t / m for m, t in zip(mine, theirs, strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return Comparison(
        case, statistics.median(mine), statistics.median(theirs), statistics.median(ratios), q1, q3
    )


def load_pipecat() -> dict[str, Any]:
    """Pipecat's Twilio serializer and frame classes (raises ImportError when not installed)."""
    from importlib import metadata

    from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame
    from pipecat.serializers.twilio import TwilioFrameSerializer

    return {
        "serializer_cls": TwilioFrameSerializer,
        "InputAudioRawFrame": InputAudioRawFrame,
        "OutputAudioRawFrame": OutputAudioRawFrame,
        "version": metadata.version("pipecat-ai"),
    }


def compare_all(pipecat: dict[str, Any], bursts: int = BURSTS) -> list[Comparison]:
    """Every case of ``benches/test_twilio.py``: inbound, outbound at 16 and 24 kHz, hq and fast."""
    results = []
    _, messages = tw.inbound_messages()
    for quality in tw.QUALITIES:
        results.append(
            interleaved(
                tw.group_name("twilio inbound 8k->16k", quality),
                tw.voicecore_inbound(tw.INBOUND_RATE, quality),
                tw.pipecat_inbound(pipecat, tw.INBOUND_RATE),
                messages[20],
                bursts,
            )
        )
    for rate in tw.OUTBOUND_RATES:
        chunk = frames(speech(rate), rate)[20]
        for quality in tw.QUALITIES:
            results.append(
                interleaved(
                    tw.group_name(tw.outbound_case(rate), quality),
                    tw.voicecore_outbound(rate, tw.STREAM_SID, quality),
                    tw.pipecat_outbound(pipecat, rate),
                    chunk,
                    bursts,
                )
            )
    return results


def markdown(results: list[Comparison]) -> str:
    lines = [
        "| case | voicecore | Pipecat | Pipecat / voicecore (median of bursts) | interquartile range |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.case} | {r.voicecore_ns / 1000:.2f} µs | {r.peer_ns / 1000:.1f} µs | "
            f"{r.ratio:.2f}x | {r.ratio_q1:.2f}-{r.ratio_q3:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=BURSTS, help="burst pairs per case")
    args = parser.parse_args()
    pipecat = load_pipecat()
    print(f"Pipecat {pipecat['version']}, {args.bursts} burst pairs of {STREAM_ITERATIONS} calls per case")
    print(markdown(compare_all(pipecat, args.bursts)))


if __name__ == "__main__":
    main()
