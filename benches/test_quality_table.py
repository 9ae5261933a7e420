"""Smoke test: the quality table script runs and voicecore's row meets the issue's targets."""

from __future__ import annotations

from benches.quality_table import rows


def test_quality_table_row_for_a_telephony_pair() -> None:
    table = rows([(16000, 8000)])
    assert len(table) == 4
    cells = [c.strip() for c in table[0].split("|")[1:-1]]
    assert cells[1] == "voicecore hq"
    rejection, snr, ripple, _, delay, held = (float(c) for c in cells[2:])
    assert rejection >= 90
    assert snr >= 85
    assert ripple <= 0.1
    assert delay <= 6.0
    assert held == 0.0
