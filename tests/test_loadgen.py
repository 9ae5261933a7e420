"""The load generator: its statistics (pure), its command line, and one short real run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from voicecore import cli, loadgen
from voicecore.audio import ulaw_encode
from voicecore.caller import FRAME_BYTES
from voicecore.loadgen import FakeDelays, LoadReport, TurnResult, added_latency, percentile, trim_silence
from voicecore.runtime.loop import run

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng for caller speech"
)


# --- statistics -------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_refuses_nonsense(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, q)


def test_added_latency_removes_the_known_delays() -> None:
    delays = FakeDelays(endpointing=0.5, stt=0.1, llm_first_token=0.2, tts_first_byte=0.08)
    assert delays.known == pytest.approx(0.88)
    assert added_latency(0.893, delays) == pytest.approx(0.013)


def test_trim_silence_drops_quiet_frames_at_both_ends() -> None:
    quiet = b"\xff" * FRAME_BYTES * 3
    loud = ulaw_encode((8000).to_bytes(2, "little", signed=True) * FRAME_BYTES * 2)
    assert trim_silence(quiet + loud + quiet) == loud
    assert trim_silence(quiet) == b""


def report() -> LoadReport:
    turns = [
        TurnResult(0, 1, latency=0.89),
        TurnResult(0, 2, latency=0.91, barge_in=True, clear_latency=0.52),
        TurnResult(1, 1, error="no agent audio within 5 s"),
    ]
    return LoadReport(
        2,
        5.0,
        "in-process",
        turns,
        FakeDelays(),
        frames_sent=500,
        frames_lost=0,
        cpu_seconds=1.0,
        wall_seconds=10.0,
    )


def test_report_summary_counts_and_subtracts() -> None:
    summary = report().summary()
    assert summary["turns"] == 3
    assert summary["failed_turns"] == 1
    assert summary["barge_ins"] == 1
    assert summary["latency_p50_ms"] == pytest.approx(900.0)
    assert summary["added_p50_ms"] == pytest.approx(20.0)
    assert summary["clear_added_p50_ms"] == pytest.approx(20.0)
    assert summary["cpu_per_call_percent"] == pytest.approx(5.0)


def test_report_markdown_and_json() -> None:
    table = report().markdown()
    lines = table.splitlines()
    assert len(lines) == 3
    assert lines[0].count("|") == lines[2].count("|")
    assert "900.0 / " in table
    data = json.loads(report().to_json())
    assert len(data["turns"]) == 3
    assert data["summary"]["failed_turns"] == 1


def test_report_without_delays_has_no_added_latency() -> None:
    plain = LoadReport(1, 1.0, "ws://x/twilio/stream", [TurnResult(0, 1, latency=0.5)])
    assert "added_p50_ms" not in plain.summary()
    assert "added" not in plain.markdown()
    assert "n/a" in plain.markdown()  # no lost-frame metric


# --- command line -----------------------------------------------------------------------------


def test_bench_load_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bench", "load", "--help"])
    out = capsys.readouterr().out
    assert "bench load" in out
    for option in ("--calls", "--duration", "--target", "--barge-in-every", "--json"):
        assert option in out


def test_bench_micro_is_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "micro"]) == cli.EXIT_USAGE  # no ./benches here: the micro path


def test_bench_load_refuses_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "load", "--calls", "0"]) == cli.EXIT_USAGE
    assert "--calls" in capsys.readouterr().err


# --- a real run -------------------------------------------------------------------------------


@needs_espeak
def test_two_callers_each_get_every_answer_and_a_clear() -> None:
    result = run(loadgen.run_load(2, duration=0.0, barge_in_every=1, stagger=0.2))
    assert not result.call_errors
    assert result.failed == 0, [t.error for t in result.turns]
    assert len(result.turns) == 4  # per call: one turn, then one barge-in over its answer
    assert all(t.latency is not None for t in result.turns)
    assert len(result.clear_latencies) == 2
    assert result.frames_sent > 0
    assert result.frames_lost == 0


@needs_espeak
def test_bench_load_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "load.json"
    status = cli.main(
        ["bench", "load", "--calls", "1", "--duration", "0", "--barge-in-every", "0", "--json", str(out)]
    )
    assert status == 0
    assert "| calls |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["summary"]["turns"] == 1
    assert data["summary"]["failed_turns"] == 0


# --- ramp -------------------------------------------------------------------------------------


def test_ramp_steps() -> None:
    assert loadgen.ramp_steps(1, 500) == [1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert loadgen.ramp_steps(3, 30) == [5, 10, 20, 30]
    assert loadgen.ramp_steps(7, 7) == [7]


def test_held_needs_no_failure_and_p95_added_within_the_limit() -> None:
    ok = LoadReport(1, 1.0, "in-process", [TurnResult(0, 1, latency=0.9)], FakeDelays())
    assert loadgen.held(ok, limit=0.05)  # 20 ms added
    assert not loadgen.held(ok, limit=0.01)
    assert not loadgen.held(report(), limit=1.0)  # a failed turn
    external = LoadReport(1, 1.0, "ws://x", [TurnResult(0, 1, latency=3.0)])
    assert loadgen.held(external, limit=0.0)  # no known delays: only failures count


def test_table_has_a_row_per_run() -> None:
    lines = loadgen.table([report(), report()]).splitlines()
    assert len(lines) == 4
    with pytest.raises(ValueError, match="no runs"):
        loadgen.table([])
