"""The load generator: its statistics (pure), its command line, real runs against real servers."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from voicecore import cli, loadgen, loadproc
from voicecore.audio import ulaw_encode
from voicecore.caller import FRAME_BYTES
from voicecore.errors import ServerProcessError
from voicecore.loadgen import FakeDelays, LoadReport, TurnResult, added_latency, percentile, trim_silence
from voicecore.loadresults import write_results
from voicecore.loadserver import probe_loop_lag
from voicecore.playout_meter import PlayoutMeter
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
        frames_received=498,
        frame_gaps=0,
        cpu_seconds=1.0,
        rss=[(0.0, 40.0), (5.0, 50.0), (10.0, 45.0)],
        rss_idle=30.0,
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
    assert summary["frames_lost"] == 2  # sent - processed
    assert summary["rss_peak_mib"] == 50.0
    assert summary["rss_end_mib"] == 45.0
    assert summary["rss_per_call_mib"] == pytest.approx(10.0)  # (50 - 30) / 2 calls
    assert summary["rss_slope_mib_per_hour"] == pytest.approx(0.5 * 3600)


def test_report_markdown_and_json() -> None:
    table = report().markdown()
    lines = table.splitlines()
    assert len(lines) == 3
    assert lines[0].count("|") == lines[2].count("|")
    assert "900.0 / " in table
    assert "500 / 498 / 2" in table
    data = report().to_json()
    assert len(data["turns"]) == 3
    assert data["summary"]["failed_turns"] == 1


def test_report_without_delays_has_no_added_latency() -> None:
    plain = LoadReport(1, 1.0, "ws://x/twilio/stream", [TurnResult(0, 1, latency=0.5)])
    assert "added_p50_ms" not in plain.summary()
    assert "added" not in plain.markdown()
    assert "1 / 0 / n/a / n/a" not in plain.markdown()
    assert "0 / n/a / n/a" in plain.markdown()  # no processed-frame metric, so no lost count
    assert plain.summary()["frames_lost"] is None
    assert "rss_per_call_mib" not in plain.summary()  # no pid, no RSS


def test_slope_is_least_squares() -> None:
    assert loadgen.slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert loadgen.slope([(0.0, 0.0), (1.0, 1.0), (2.0, 0.0), (3.0, 1.0)]) == pytest.approx(0.2)
    assert loadgen.slope([(1.0, 1.0)]) is None
    assert loadgen.slope([(1.0, 1.0), (1.0, 2.0)]) is None


def test_rss_slope_ignores_samples_before_every_call_was_up() -> None:
    ramping = LoadReport(1, 1.0, "x", rss=[(0.0, 10.0), (1.0, 40.0), (2.0, 40.0), (3.0, 40.0)], rss_idle=10.0)
    assert ramping.rss_slope() == pytest.approx(9.0 * 3600)
    ramping.settled_at = 1.0
    assert ramping.rss_slope() == pytest.approx(0.0)


def test_last_half_slope_tells_a_filling_bound_from_a_leak() -> None:
    # Per-call state fills toward its bound for the first half, then RSS stays flat.
    filling = [(float(t), 10.0 + min(t, 50)) for t in range(101)]
    report = LoadReport(1, 1.0, "x", rss=filling, rss_idle=10.0, settled_at=0.0)
    assert report.rss_slope() > 0
    assert report.rss_slope(last_half=True) == pytest.approx(0.0)
    leaking = LoadReport(1, 1.0, "x", rss=[(float(t), 10.0 + t) for t in range(101)], rss_idle=10.0)
    assert leaking.rss_slope(last_half=True) == pytest.approx(3600.0)


# --- the playout meter ------------------------------------------------------------------------


def test_playout_meter_counts_a_gap_inside_an_answer() -> None:
    meter = PlayoutMeter()
    meter.audio(10.0, 0.1)  # plays 10.0-10.1
    meter.audio(10.05, 0.1)  # in time: queued, plays 10.1-10.2
    meter.audio(10.3, 0.1)  # the buffer ran dry at 10.2: a 100 ms gap
    assert meter.underruns == 1
    assert meter.underrun_seconds == pytest.approx(0.1)
    assert meter.late_frames == 1
    meter.audio(10.35, 0.1)  # in time for the shifted playout (10.4), late for the gapless one (10.3)
    assert meter.underruns == 1
    assert meter.late_frames == 2
    assert (meter.answers, meter.frames) == (1, 4)


def test_playout_meter_gap_between_answers_is_no_underrun() -> None:
    meter = PlayoutMeter()
    meter.audio(0.0, 0.5)
    meter.end_answer()  # the caller spoke, or a clear dropped the rest
    meter.audio(3.0, 0.5)
    assert (meter.answers, meter.underruns, meter.late_frames) == (2, 0, 0)
    total = PlayoutMeter()
    total.merge(meter)
    total.merge(meter)
    assert (total.answers, total.frames) == (4, 4)


def test_playout_meter_audio_sent_ahead_is_never_late() -> None:
    meter = PlayoutMeter()
    for i in range(50):
        meter.audio(i * 0.001, 0.02)  # a burst: a second of audio within 50 ms
    assert (meter.underruns, meter.late_frames) == (0, 0)


# --- /proc ------------------------------------------------------------------------------------


def test_parse_stat_cpu_counts_fields_after_the_command_name() -> None:
    fields = ["S"] + ["0"] * 10 + ["250", "150"] + ["0"] * 30  # utime 250, stime 150 ticks
    stat = "1234 (a (weird) name) " + " ".join(fields)
    assert loadproc.parse_stat_cpu(stat, 100) == pytest.approx(4.0)


def test_parse_status_rss() -> None:
    assert loadproc.parse_status_rss("Name:\tx\nVmRSS:\t   2048 kB\nThreads:\t1\n") == 2.0
    with pytest.raises(ValueError, match="VmRSS"):
        loadproc.parse_status_rss("Name:\tzombie\n")


def test_parse_schedstat_wait_is_the_second_field_in_seconds() -> None:
    assert loadproc.parse_schedstat_wait("734269000 1500000000 4\n") == pytest.approx(1.5)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_this_process_cpu_and_rss_from_proc() -> None:
    before = loadproc.cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))  # burn some CPU
    assert loadproc.cpu_seconds(os.getpid()) > before
    assert 5 < loadproc.rss_mib(os.getpid()) < 100_000
    wait = loadproc.run_queue_wait(os.getpid())
    assert wait is None or wait >= 0


def test_spawned_says_why_a_server_did_not_start() -> None:
    async def start() -> None:
        argv = [sys.executable, "-c", "print('starting'); print('oops, no config'); raise SystemExit(3)"]
        async with loadproc.spawned(argv, cpu=None, within=30):
            raise AssertionError("it never listened")

    with pytest.raises(ServerProcessError, match="oops, no config"):
        run(start())


# --- command line -----------------------------------------------------------------------------


def test_bench_load_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["bench", "load", "--help"])
    out = capsys.readouterr().out
    assert "bench load" in out
    for option in ("--calls", "--duration", "--target", "--in-process", "--server-cpu", "--peer"):
        assert option in out
    for option in ("--server-cmd", "--results", "--soak", "--ramp", "--server-pid", "--stagger"):
        assert option in out


def test_bench_micro_is_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "micro"]) == cli.EXIT_USAGE  # no ./benches here: the micro path


def test_bench_load_refuses_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "load", "--calls", "0"]) == cli.EXIT_USAGE
    assert "--calls" in capsys.readouterr().err
    assert cli.main(["bench", "load", "--server-pid", "1"]) == cli.EXIT_USAGE
    assert "--target" in capsys.readouterr().err
    assert cli.main(["bench", "load", "--soak", "0"]) == cli.EXIT_USAGE
    assert "--soak" in capsys.readouterr().err
    assert cli.main(["bench", "load", "--call-seconds", "0"]) == cli.EXIT_USAGE
    assert "--call-seconds" in capsys.readouterr().err


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
    assert result.frames_received == result.frames_sent  # the server decoded every frame
    assert result.frames_lost == 0
    assert result.frame_gaps == 0
    assert result.playout.answers >= 4  # greeting and answers, per call
    assert result.playout.underruns == 0
    assert result.cpu_seconds is not None
    assert result.cpu_seconds > 0


@needs_espeak
def test_callers_hang_up_and_dial_again_every_call_seconds() -> None:
    from prometheus_client import REGISTRY

    calls_before = REGISTRY.get_sample_value("voicecore_calls_total") or 0.0
    result = run(loadgen.run_load(2, duration=7.0, call_seconds=0.1, stagger=0.2))
    assert not result.call_errors
    assert result.failed == 0, [t.error for t in result.turns]
    assert result.dials >= 4  # each call takes one turn, then the caller dials again
    assert len(result.turns) >= result.dials
    for number in (0, 1):  # turn numbers go on across a caller's calls
        turns = [t.turn for t in result.turns if t.call == number]
        assert turns == list(range(1, len(turns) + 1))
    calls = (REGISTRY.get_sample_value("voicecore_calls_total") or 0.0) - calls_before
    assert calls == result.dials + 1  # every dial was a call of its own (and the warm-up call)
    assert result.frames_received == result.frames_sent  # every call's frames were counted
    assert result.summary()["dials"] == result.dials


@needs_espeak
def test_bench_load_command_runs_a_pinned_server_process_and_writes_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    argv = ["bench", "load", "--calls", "1", "--duration", "0", "--barge-in-every", "0"]
    status = cli.main([*argv, "--results", str(results)])
    assert status == 0
    assert "| server | calls |" in capsys.readouterr().out
    data = json.loads((results / "report.json").read_text())
    (summary,) = [run["summary"] for run in data["runs"]]
    assert summary["target"] == "voicecore"
    assert summary["turns"] == 1
    assert summary["failed_turns"] == 0
    assert summary["frames_lost"] == 0
    assert summary["cpu_per_call_percent"] > 0  # read from the server process's /proc
    assert summary["rss_idle_mib"] > 5
    assert "generator_cpu_percent" in summary
    assert "| voicecore | 1 |" in (results / "report.md").read_text()


@needs_espeak
def test_server_cmd_is_loaded_beside_voicecore(tmp_path: Path) -> None:
    # The peer mechanism (what --peer pipecat uses), tried on voicecore's own server as the peer.
    command = shlex.join([sys.executable, "-m", "voicecore", "bench", "server", "--port", "{port}"])
    argv = ["bench", "load", "--calls", "1", "--duration", "0", "--barge-in-every", "0"]
    status = cli.main([*argv, "--server-cmd", command, "--results", str(tmp_path)])
    assert status == 0
    runs = json.loads((tmp_path / "report.json").read_text())["runs"]
    assert [run["summary"]["target"] for run in runs] == ["voicecore", "server-cmd"]
    assert all(run["summary"]["failed_turns"] == 0 for run in runs)
    assert all(run["summary"]["frames_lost"] == 0 for run in runs)
    table = (tmp_path / "report.md").read_text()
    assert "| voicecore | 1 |" in table
    assert "| server-cmd | 1 |" in table


@needs_espeak
def test_short_soak_against_a_server_process_loses_nothing() -> None:
    command = loadgen.voicecore_server_command()
    server = loadgen.spawned_server("voicecore", command, cpu=None, delays=FakeDelays())
    result = run(
        loadgen.run_load(5, duration=20.0, server=server, barge_in_every=3, soak=True, rss_every=1.0)
    )
    assert not result.call_errors
    assert result.failed == 0, [t.error for t in result.turns]
    assert result.frames_sent > 5 * 20 * 50 * 0.9  # five calls, 20 s of 50 frames a second
    assert result.frames_lost == 0
    assert result.frame_gaps == 0
    summary = result.summary()
    assert len(result.rss) >= 10
    # Generous: a leak of 1 MiB a call-minute would pass this only just; a flat server is far below.
    assert summary["rss_peak_mib"] - summary["rss_idle_mib"] < 50
    assert "RSS slope MiB/h" in result.markdown()


@needs_espeak
def test_bench_load_ramp_runs_each_step_and_says_what_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "load", "--ramp", "--calls", "1", "--max-calls", "2", "--duration", "0"]
    status = cli.main([*argv, "--barge-in-every", "0", "--in-process", "--results", str(tmp_path)])
    captured = capsys.readouterr()
    data = json.loads((tmp_path / "report.json").read_text())
    assert [run["summary"]["calls"] for run in data["runs"]] == [1, 2]
    # A noisy machine may push p95 past the limit; whatever held is what the report says.
    assert status == (0 if data["held"]["in-process"] is not None else 1)
    assert "in-process: largest call count that held" in captured.out
    assert "in-process, 1 call(s): " in captured.err


# --- results ----------------------------------------------------------------------------------


def test_results_folder_has_the_reports_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    one, two = report(), report()
    two.calls, two.target = 4, "pipecat"
    written, skipped = write_results(
        tmp_path / "r", [one, two], "the table\n", {"in-process": 2, "pipecat": None}
    )
    assert skipped is None
    names = sorted(path.name for path in written)
    assert names == ["cpu_per_call.png", "latency.png", "report.json", "report.md", "rss_per_call.png"]
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["held"] == {"in-process": 2, "pipecat": None}
    assert [run["summary"]["target"] for run in data["runs"]] == ["in-process", "pipecat"]


def test_results_without_matplotlib_skip_the_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    written, skipped = write_results(tmp_path, [report()], "t\n")
    assert [path.name for path in written] == ["report.md", "report.json"]
    assert skipped is not None
    assert "voicecore[bench]" in skipped


# --- ramp -------------------------------------------------------------------------------------


def test_ramp_steps() -> None:
    assert loadgen.ramp_steps(1, 500) == [1, 2, 5, 10, 20, 50, *range(100, 501, 50)]
    assert loadgen.ramp_steps(3, 30) == [5, 10, 20, 30]
    assert loadgen.ramp_steps(60, 320) == [100, 150, 200, 250, 300, 320]
    assert loadgen.ramp_steps(7, 7) == [7]


def test_held_needs_no_failure_and_p95_added_within_the_limit() -> None:
    ok = LoadReport(1, 1.0, "in-process", [TurnResult(0, 1, latency=0.9)], FakeDelays())
    assert loadgen.held(ok, limit=0.05)  # 20 ms added
    assert not loadgen.held(ok, limit=0.01)
    assert not loadgen.held(report(), limit=1.0)  # a failed turn
    external = LoadReport(1, 1.0, "ws://x", [TurnResult(0, 1, latency=3.0)])
    assert loadgen.held(external, limit=0.0)  # no known delays: only failures count


def test_run_ramp_stops_at_the_first_miss_unless_every_step_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    async def load(calls: int, **options: object) -> LoadReport:
        latency = 2.0 if calls == 2 else 0.9  # 2 calls: 1.1 s added, over any limit here
        return LoadReport(calls, 1.0, "x", [TurnResult(0, 1, latency=latency)], FakeDelays())

    monkeypatch.setattr(loadgen, "run_load", load)
    reports, best = run(loadgen.run_ramp([1, 2, 5], limit=0.05))
    assert ([r.calls for r in reports], best) == ([1, 2], 1)
    reports, best = run(loadgen.run_ramp([1, 2, 5], limit=0.05, every_step=True))
    assert ([r.calls for r in reports], best) == ([1, 2, 5], 1)  # 5 held, but 2 did not


def test_table_has_a_row_per_run() -> None:
    lines = loadgen.table([report(), report()]).splitlines()
    assert len(lines) == 4
    with pytest.raises(ValueError, match="no runs"):
        loadgen.table([])


def test_the_servers_loop_lag_probe_sees_a_blocked_loop() -> None:
    async def blocked() -> list[tuple[float, float]]:
        lags: list[tuple[float, float]] = []
        probe = asyncio.get_running_loop().create_task(probe_loop_lag(lags, every=0.01))
        await asyncio.sleep(0.03)
        time.sleep(0.1)  # noqa: ASYNC251 (blocks the loop on purpose: the probe wakes >= 90 ms late)
        await asyncio.sleep(0.03)
        probe.cancel()
        return lags

    lags = asyncio.run(blocked())
    assert max(late for _, late in lags) >= 0.09
    assert all(late >= 0 for _, late in lags)
    assert [t for t, _ in lags] == sorted(t for t, _ in lags)
