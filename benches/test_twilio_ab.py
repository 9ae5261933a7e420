"""Smoke tests of the interleaved Twilio comparison (its figures: ``python -m benches.twilio_ab``)."""

from __future__ import annotations

import pytest

from . import test_twilio as tw
from . import twilio_ab


def test_interleaved_comparison_reports_the_costlier_call_as_the_peer() -> None:
    work = list(range(3000))

    def cheap(n: int) -> int:
        return sum(work[:n])

    def costly(n: int) -> int:  # four times the work
        return sum(work[:n]) + sum(work[:n]) + sum(work[:n]) + sum(work[:n])

    result = twilio_ab.interleaved("case", cheap, costly, 1500, bursts=20)
    assert result.case == "case"
    assert result.voicecore_ns > 0
    assert result.peer_ns > result.voicecore_ns
    assert result.ratio_q1 <= result.ratio <= result.ratio_q3
    assert result.ratio > 1


def test_every_twilio_case_is_compared_against_pipecat() -> None:
    try:
        pipecat = twilio_ab.load_pipecat()
    except ImportError:
        pytest.skip(tw.PIPECAT_MISSING)
    results = twilio_ab.compare_all(pipecat, bursts=2)
    assert [r.case for r in results] == [
        "twilio inbound 8k->16k",
        "twilio inbound 8k->16k, voicecore fast",
        "twilio outbound 16k 20ms",
        "twilio outbound 16k 20ms, voicecore fast",
        "twilio outbound 24k 20ms",
        "twilio outbound 24k 20ms, voicecore fast",
        "twilio outbound 44.1k 20ms",
        "twilio outbound 44.1k 20ms, voicecore fast",
        "twilio outbound 48k 20ms",
        "twilio outbound 48k 20ms, voicecore fast",
    ]
    assert all(r.ratio > 0 for r in results)
    assert twilio_ab.markdown(results).count("\n") == len(results) + 1
