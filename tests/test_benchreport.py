from __future__ import annotations

from typing import Any

from voicecore.benchreport import format_seconds, render, summarize


def _bench(
    group: str | None, impl: str | None, mean: float, median: float, rounds: int = 100
) -> dict[str, Any]:
    extra = {} if impl is None else {"impl": impl, "case": f"{group} case"}
    return {
        "group": group,
        "name": f"test_x[{impl}]",
        "extra_info": extra,
        "stats": {"mean": mean, "median": median, "rounds": rounds, "min": median / 2, "max": mean * 3},
    }


REPORT: dict[str, Any] = {
    "machine_info": {"node": "test"},
    "benchmarks": [
        _bench("g711 ulaw_encode 20ms", "audioop", mean=800e-9, median=750e-9, rounds=5000),
        _bench("g711 ulaw_encode 20ms", "voicecore", mean=400e-9, median=250e-9, rounds=9000),
        _bench("resample 8000->16000", "soxr", mean=10e-6, median=8e-6),
        _bench("resample 8000->16000", "voicecore", mean=20e-6, median=16e-6),
        _bench("twilio inbound", "pipecat", mean=27e-6, median=10e-6),
    ],
}


def test_summarize_groups_orders_and_computes_ratios() -> None:
    summaries = summarize(REPORT)
    assert [s.group for s in summaries] == ["g711 ulaw_encode 20ms", "resample 8000->16000", "twilio inbound"]
    g711 = summaries[0]
    assert [r.impl for r in g711.rows] == ["voicecore", "audioop"]
    voicecore, audioop = g711.rows
    assert voicecore.speedup_median is None
    assert audioop.speedup_median == 3.0
    assert audioop.speedup_mean == 2.0
    assert audioop.rounds == 5000
    assert audioop.case == "g711 ulaw_encode 20ms case"
    assert summaries[1].rows[1].speedup_median == 0.5
    assert not summaries[2].has_voicecore
    assert summaries[2].rows[0].speedup_median is None


def test_render_text() -> None:
    text = render(REPORT)
    blocks = text.rstrip("\n").split("\n\n")
    assert len(blocks) == 3
    g711 = blocks[0].splitlines()
    assert g711[0] == "g711 ulaw_encode 20ms"
    assert g711[1].split() == ["impl", "mean", "median", "rounds", "peer", "/", "voicecore"]
    assert g711[2].split() == ["voicecore", "400", "ns", "250", "ns", "9000"]
    assert "audioop" in g711[3]
    assert "voicecore is 3.00x faster by median, 2.00x faster by mean" in g711[3]
    assert "voicecore is 2.00x slower by median, 2.00x slower by mean" in blocks[1]
    assert "no voicecore result in this group" in blocks[2]
    # Columns line up: every row of a block starts its 'mean' cell at the same offset.
    assert len({line.index("ns") for line in g711[2:]}) == 1


def test_render_markdown() -> None:
    lines = render(REPORT, markdown=True).splitlines()
    assert lines[0] == "| group | impl | mean | median | rounds | peer / voicecore |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert len(lines) == 2 + 5
    assert lines[3] == (
        "| g711 ulaw_encode 20ms | audioop | 800 ns | 750 ns | 5000 "
        "| voicecore is 3.00x faster by median, 2.00x faster by mean |"
    )


def test_render_names_the_simd_kernels_the_report_recorded() -> None:
    machine = {"voicecore_simd": "avx512", "voicecore_simd_detected": "avx512"}
    assert render({**REPORT, "machine_info": machine}).endswith("\n\nvoicecore kernels: avx512\n")
    lowered = {"voicecore_simd": "avx2", "voicecore_simd_detected": "avx512"}
    markdown = render({**REPORT, "machine_info": lowered}, markdown=True).splitlines()
    assert markdown[-2:] == ["", "voicecore kernels: avx2, lowered by VOICECORE_SIMD from avx512"]
    assert "voicecore kernels" not in render(REPORT)


def test_render_tolerates_missing_fields_and_empty_reports() -> None:
    assert "No benchmark results" in render({"benchmarks": []})
    assert "No benchmark results" in render({})
    report = {"benchmarks": [_bench(None, None, mean=1e-3, median=1e-3)]}
    summaries = summarize(report)
    assert summaries[0].group == "(no group)"
    assert summaries[0].rows[0].impl == "?"
    assert summaries[0].rows[0].case == "test_x[None]"
    assert "(no group)" in render(report)


def test_format_seconds() -> None:
    assert format_seconds(586.45e-9) == "586 ns"
    assert format_seconds(1.1067e-6) == "1.11 µs"
    assert format_seconds(17.9157e-6) == "17.9 µs"
    assert format_seconds(2.5e-3) == "2.5 ms"
    assert format_seconds(3.0) == "3 s"
    assert format_seconds(0.0) == "0 ns"
