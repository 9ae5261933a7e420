"""A load generator: N simulated Twilio callers against a Media Streams server, with latency stats.

``python -m voicecore bench load`` runs :func:`run_load`: ``calls`` concurrent
:class:`~voicecore.caller.TwilioCaller` s (the Twilio Media Streams protocol exactly: connected,
start, a ``media`` frame every 20 ms in real time, marks echoed once their audio has played,
stop), each playing a script of turns for ``duration`` seconds: espeak-ng speech, then silence
while the agent answers; every ``barge_in_every``-th turn the caller talks over the answer.

Per turn it measures end of caller speech → first agent audio, and for barge-ins, the start of
the caller's interrupting speech → ``clear`` received; per call, the agent's audio as a phone
plays it (:class:`~voicecore.playout_meter.PlayoutMeter`: underruns, late frames). The server
comes from a :data:`ServerFactory`: the load-test agent (:mod:`voicecore.loadserver`, fakes with
fixed, known delays) in its own process pinned to a core (:func:`spawned_server`), in this
process (:func:`in_process`), or any server at a URL (:func:`external`). With known delays the
engine's own share is reported: added latency = measured - endpointing - STT - LLM first token
- TTS first byte. With the server's pid, its CPU and RSS come from ``/proc``; with its
``/metrics``, the frames it processed.

The statistics (:func:`percentile`, :func:`added_latency`, :func:`slope`, :class:`LoadReport`)
are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from voicecore import loadproc
from voicecore.audio import ulaw_decode
from voicecore.caller import FRAME_BYTES, Turn, TwilioCaller, espeak
from voicecore.loadserver import REPLY, UTTERANCE, FakeDelays, fake_server
from voicecore.playout_meter import PlayoutMeter

__all__ = [
    "REPLY",
    "UTTERANCE",
    "FakeDelays",
    "LoadReport",
    "ServerFactory",
    "Target",
    "TurnResult",
    "added_latency",
    "external",
    "held",
    "in_process",
    "notes",
    "percentile",
    "ramp_steps",
    "run_load",
    "run_ramp",
    "slope",
    "spawned_server",
    "table",
    "trim_silence",
    "voicecore_server_command",
]

#: Peak (16-bit linear) below which a caller frame counts as silence when trimming speech.
QUIET_PEAK = 300


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default).

    Raises:
        ValueError: No values, or ``q`` outside 0-100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of ``(x, y)`` points (None: fewer than two distinct x)."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def added_latency(measured: float, delays: FakeDelays) -> float:
    """The engine's share of a turn's latency: ``measured`` minus the known delays (seconds)."""
    return measured - delays.known


def trim_silence(ulaw: bytes, peak: int = QUIET_PEAK) -> bytes:
    """``ulaw`` (μ-law 8 kHz) without its leading and trailing quiet 20 ms frames.

    espeak-ng pads its speech with silence; the caller's "end of speech" must be the end of
    the sound, or the endpointing silence would start before the measured end.
    """
    frames = [ulaw[i : i + FRAME_BYTES] for i in range(0, len(ulaw), FRAME_BYTES)]

    def loud(frame: bytes) -> bool:
        pcm = memoryview(ulaw_decode(frame)).cast("h")
        return max((abs(s) for s in pcm), default=0) > peak

    flags = [loud(frame) for frame in frames]
    if not any(flags):
        return b""
    first = flags.index(True)
    last = len(flags) - 1 - flags[::-1].index(True)
    return b"".join(frames[first : last + 1])


@dataclass
class TurnResult:
    """One caller turn.

    Attributes:
        call: The caller's number (0-based).
        turn: The turn's number within the call (1-based).
        latency: End of caller speech → first agent audio, seconds (None: no answer).
        barge_in: Whether this turn's speech interrupted the agent.
        clear_latency: For a barge-in, start of the caller's speech → ``clear`` received.
        error: Why the turn failed (None: it did not).
    """

    call: int
    turn: int
    latency: float | None = None
    barge_in: bool = False
    clear_latency: float | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the turn got no answer (or a barge-in got no ``clear``)."""
        return self.error is not None

    @property
    def done(self) -> bool:
        """Whether the turn is over (answered or failed)."""
        return self.failed or (
            self.latency is not None and (not self.barge_in or self.clear_latency is not None)
        )


@dataclass
class LoadReport:
    """What a load run measured.

    Attributes:
        calls: Concurrent callers.
        duration: Seconds each caller kept taking turns.
        target: The server's name (``voicecore``, ``pipecat``, ...) or URL.
        turns: Every turn of every call.
        delays: The server's known delays (None: unknown, an external target).
        frames_sent: ``media`` frames the callers sent, all calls.
        frames_received: Frames the server decoded over the run (its
            ``voicecore_caller_frames_received`` counter); None without such a metric.
        frame_gaps: Gaps the server counted in the media chunk numbers (its
            ``voicecore_caller_frames_lost`` counter); None without such a metric.
        playout: The agent's audio as the callers' phones played it, all calls.
        cpu_seconds: CPU time of the server process over the run (in-process: the server AND the
            generator); None without its pid.
        generator_cpu_seconds: CPU time of this process (the generator) over the run.
        server_wait_seconds: Time the server was runnable but waiting for a CPU over the run
            (another process had its core); None without its pid or schedstat.
        rss: ``(seconds into the run, RSS MiB)`` samples of the server process.
        rss_idle: The server's RSS before the calls (after one warm-up call), MiB.
        settled_at: Seconds into the run when every call had heard its greeting.
        wall_seconds: Wall time of the run.
        soak: Whether this was a soak run (its RSS slope is the point).
        loop_lags: How late each 10 ms timer on the generator's event loop woke (seconds): the
            generator's own health (a late loop sends late frames and measures late audio).
        call_errors: Calls that failed as a whole (could not connect, closed early).
        dials: Calls placed (more than ``calls`` when callers hang up and dial again).
    """

    calls: int
    duration: float
    target: str
    turns: list[TurnResult] = field(default_factory=list)
    delays: FakeDelays | None = None
    frames_sent: int = 0
    frames_received: int | None = None
    frame_gaps: int | None = None
    playout: PlayoutMeter = field(default_factory=PlayoutMeter)
    cpu_seconds: float | None = None
    generator_cpu_seconds: float = 0.0
    server_wait_seconds: float | None = None
    rss: list[tuple[float, float]] = field(default_factory=list)
    rss_idle: float | None = None
    settled_at: float | None = None
    wall_seconds: float = 0.0
    soak: bool = False
    loop_lags: list[float] = field(default_factory=list)
    call_errors: list[str] = field(default_factory=list)
    dials: int = 0

    @property
    def latencies(self) -> list[float]:
        """Answered turns' latencies (seconds)."""
        return [t.latency for t in self.turns if t.latency is not None]

    @property
    def clear_latencies(self) -> list[float]:
        """Barge-ins' speech start → ``clear`` (seconds)."""
        return [t.clear_latency for t in self.turns if t.clear_latency is not None]

    @property
    def failed(self) -> int:
        """Failed turns."""
        return sum(t.failed for t in self.turns)

    @property
    def frames_lost(self) -> int | None:
        """Frames sent that the server did not process (None: it does not count them)."""
        return None if self.frames_received is None else self.frames_sent - self.frames_received

    def rss_slope(self, *, last_half: bool = False) -> float | None:
        """The server's RSS growth (MiB per hour, least squares) once every call was up.

        ``last_half`` fits only the second half of that time: what is left once per-call state
        that fills toward a bound (a history reaching its token budget) has filled, i.e. a leak.
        """
        since = self.settled_at if self.settled_at is not None else 0.0
        if last_half and self.rss:
            since += (self.rss[-1][0] - since) / 2
        per_second = slope([(t, mib) for t, mib in self.rss if t >= since])
        return None if per_second is None else per_second * 3600

    def summary(self) -> dict[str, Any]:
        """The headline numbers (milliseconds, MiB), as :meth:`columns` shows and report.json keeps."""
        meter = self.playout
        out: dict[str, Any] = {
            "target": self.target,
            "calls": self.calls,
            "turns": len(self.turns),
            "failed_turns": self.failed,
            "call_errors": len(self.call_errors),
            "dials": self.dials,
            "barge_ins": sum(t.barge_in for t in self.turns),
            "frames_sent": self.frames_sent,
            "frames_received": self.frames_received,
            "frames_lost": self.frames_lost,
            "frame_gaps": self.frame_gaps,
            "answers_heard": meter.answers,
            "underruns": meter.underruns,
            "underrun_ms": meter.underrun_seconds * 1000,
            "late_frames": meter.late_frames,
            "frames_heard": meter.frames,
            "loop_lag_p99_ms": percentile(self.loop_lags, 99) * 1000 if self.loop_lags else 0.0,
            "loop_lag_max_ms": max(self.loop_lags, default=0.0) * 1000,
            "wall_seconds": self.wall_seconds,
        }
        for name, values in (("latency", self.latencies), ("clear", self.clear_latencies)):
            for q in (50, 95, 99):
                out[f"{name}_p{q}_ms"] = percentile(values, q) * 1000 if values else None
        if self.delays is not None:
            added = [added_latency(v, self.delays) for v in self.latencies]
            for q in (50, 95, 99):
                out[f"added_p{q}_ms"] = percentile(added, q) * 1000 if added else None
            out["known_delay_ms"] = self.delays.known * 1000
            clear_added = [v - self.delays.interim_after for v in self.clear_latencies]
            for q in (50, 95):
                out[f"clear_added_p{q}_ms"] = percentile(clear_added, q) * 1000 if clear_added else None
        if self.wall_seconds > 0:
            out["generator_cpu_percent"] = 100 * self.generator_cpu_seconds / self.wall_seconds
            if self.cpu_seconds is not None:
                out["cpu_per_call_percent"] = 100 * self.cpu_seconds / self.wall_seconds / self.calls
            if self.server_wait_seconds is not None:
                out["server_wait_percent"] = 100 * self.server_wait_seconds / self.wall_seconds
        if self.rss_idle is not None and self.rss:
            peak = max(mib for _, mib in self.rss)
            out["rss_idle_mib"] = self.rss_idle
            out["rss_peak_mib"] = peak
            out["rss_end_mib"] = self.rss[-1][1]
            out["rss_per_call_mib"] = (peak - self.rss_idle) / self.calls
            out["rss_slope_mib_per_hour"] = self.rss_slope()
            out["rss_slope_last_half_mib_per_hour"] = self.rss_slope(last_half=True)
        return out

    def to_json(self) -> dict[str, Any]:
        """The summary, every turn, the delays and the RSS samples (JSON-ready)."""
        return {
            "summary": self.summary(),
            "delays": asdict(self.delays) if self.delays is not None else None,
            "call_errors": self.call_errors,
            "rss": self.rss,
            "turns": [asdict(t) for t in self.turns],
        }

    def markdown(self) -> str:
        """The summary as a Markdown table (one row)."""
        return table([self])

    def columns(self) -> tuple[list[str], list[str]]:
        """The table's header and this run's row."""
        s = self.summary()

        def num(key: str, digits: int = 1) -> str:
            value = s.get(key)
            return "n/a" if value is None else f"{value:.{digits}f}"

        def triple(prefix: str) -> str:
            return " / ".join(num(f"{prefix}_p{q}_ms") for q in (50, 95, 99))

        columns = [
            ("server", s["target"]),
            ("calls", str(s["calls"])),
            ("turns", str(s["turns"])),
            ("failed", str(s["failed_turns"] + s["call_errors"])),
            ("latency p50/p95/p99 ms", triple("latency")),
        ]
        if self.delays is not None:
            columns.append(("added p50/p95/p99 ms", triple("added")))
        columns += [
            ("barge-ins", str(s["barge_ins"])),
            ("speech → clear p50/p95 ms", f"{num('clear_p50_ms')} / {num('clear_p95_ms')}"),
        ]
        if self.delays is not None:
            columns.append(
                ("clear added p50/p95 ms", f"{num('clear_added_p50_ms')} / {num('clear_added_p95_ms')}")
            )
        columns += [
            (
                "frames sent / processed / lost",
                f"{s['frames_sent']} / {num('frames_received', 0)} / {num('frames_lost', 0)}",
            ),
            ("seq gaps", num("frame_gaps", 0)),
            (
                "underruns (ms) / late frames",
                f"{s['underruns']} ({s['underrun_ms']:.0f}) / {s['late_frames']}",
            ),
            ("server CPU % of a core per call", num("cpu_per_call_percent", 2)),
            ("RSS idle / peak MiB", f"{num('rss_idle_mib')} / {num('rss_peak_mib')}"),
            ("RSS MiB per call", num("rss_per_call_mib", 3)),
        ]
        if self.soak:
            slopes = f"{num('rss_slope_mib_per_hour')} / {num('rss_slope_last_half_mib_per_hour')}"
            columns.append(("RSS slope MiB/h (all / last half)", slopes))
        columns.append(("server waited for CPU %", num("server_wait_percent", 0)))
        columns.append(("generator CPU %", num("generator_cpu_percent", 0)))
        columns.append(("loop lag p99/max ms", f"{s['loop_lag_p99_ms']:.1f} / {s['loop_lag_max_ms']:.1f}"))
        return [head for head, _ in columns], [cell for _, cell in columns]


def table(reports: Sequence[LoadReport]) -> str:
    """Runs as a Markdown table, one row each (the first run's columns).

    Raises:
        ValueError: No reports.
    """
    if not reports:
        raise ValueError("a table of no runs")
    head, _ = reports[0].columns()
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(report.columns()[1]) + " |" for report in reports]
    return "\n".join(lines) + "\n"


def held(report: LoadReport, limit: float) -> bool:
    """Whether a run held: no failed turn or call and, with known delays, p95 added latency <= ``limit`` s.

    Against an external target (no known delays) only failures count.
    """
    if report.failed or report.call_errors or not report.latencies:
        return False
    if report.delays is None:
        return True
    added = [added_latency(v, report.delays) for v in report.latencies]
    return percentile(added, 95) <= limit


def ramp_steps(start: int, stop: int) -> list[int]:
    """Call counts for a ramp from ``start`` to ``stop``: 1, 2, 5, 10, 20, 50, then every 50.

    Steps of 50 from 100 on tell the count that held to within 50 calls.
    """
    coarse = [1, 2, 5, 10, 20, 50]
    steps = [n for n in [*coarse, *range(100, stop + 1, 50)] if start <= n <= stop]
    if stop not in steps and stop >= start:
        steps.append(stop)
    return steps


def notes(report: LoadReport) -> str:
    """What the table's columns mean for this run, for people."""
    lines = [
        f"{report.calls} call(s) against {report.target}, {report.duration:g} s of turns each, "
        f"{report.wall_seconds:.1f} s in all.",
        "latency: end of caller speech -> first agent audio. speech -> clear: start of a barge-in's "
        "speech -> the server's clear.",
    ]
    if report.delays is not None:
        d = report.delays
        gap_ms = 1000 / d.llm_tokens_per_second if d.llm_tokens_per_second > 0 else 0.0
        lines.append(
            f"added = latency - {d.known * 1000:.0f} ms known (endpointing {d.endpointing * 1000:.0f} + STT "
            f"{d.stt * 1000:.0f} + LLM first token {d.llm_first_token * 1000:.0f} + TTS first byte "
            f"{d.tts_first_byte * 1000:.0f}); it includes the 20 ms frame pacing and the VAD's frame "
            f"granularity, and for a server that waits for the next token to confirm the first "
            f"sentence's end, one LLM token gap ({gap_ms:.0f} ms; voicecore does not wait). "
            "clear added = speech -> "
            f"clear - {d.interim_after * 1000:.0f} ms (the fake STT's first word)."
        )
    lines += [
        "frames: sent by the callers / processed (the server's voicecore_caller_frames_received "
        "counter over the run) / lost = sent - processed; seq gaps: the server's "
        "voicecore_caller_frames_lost counter (gaps in the media chunk numbers); n/a: the server "
        "has no such metric.",
        "underruns: times a caller's playout buffer (real-time playback from an answer's first "
        "audio, as Twilio plays it) ran dry inside an answer, and the silence they added; late "
        "frames: agent frames that arrived after their time on that answer's gapless schedule.",
        "server CPU: the server process's user+system time over the run (/proc), per call, as % of "
        "one core"
        + (" (in-process: server AND generator)." if report.target == "in-process" else ".")
        + " RSS per call = (peak RSS - idle RSS after a warm-up call) / calls.",
    ]
    lines.append(
        "generator CPU: this load generator's own process over the run, % of one core (near 100: "
        "the generator, not the server, is the limit). server waited for CPU: time the server's "
        "main thread was runnable but another process had the core (/proc/PID/schedstat), % of "
        "the run; more than a few % and the figures measure a shared core, not the server."
    )
    lag = report.summary()["loop_lag_p99_ms"]
    if lag > 20:
        lines.append(
            f"warning: the generator's event loop ran {lag:.0f} ms late at p99; frames went out late "
            "and the latencies include that."
        )
    return "\n".join(lines) + "\n"


# --- servers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A server to load.

    Attributes:
        name: What the table calls it.
        url: Its Media Streams URL.
        pid: Its process id, to read its CPU and RSS (None: not measured).
        delays: Its providers' known delays (None: unknown).
    """

    name: str
    url: str
    pid: int | None
    delays: FakeDelays | None


#: Makes a server for a run of N calls (the argument) and stops it afterwards.
ServerFactory = Callable[[int], contextlib.AbstractAsyncContextManager[Target]]


def in_process(delays: FakeDelays) -> ServerFactory:
    """The load-test agent in this process (its CPU is this process's: server and generator)."""

    @contextlib.asynccontextmanager
    async def factory(calls: int) -> AsyncIterator[Target]:
        async with fake_server(delays, max(calls, 50)) as url:
            yield Target("in-process", url, os.getpid(), delays)

    return factory


def external(url: str, pid: int | None = None) -> ServerFactory:
    """A server someone else runs at ``url`` (``pid``: measure it, on this machine)."""

    @contextlib.asynccontextmanager
    async def factory(calls: int) -> AsyncIterator[Target]:
        yield Target(url, url, pid, None)

    return factory


def voicecore_server_command(profile_dir: str | None = None) -> Callable[[int, int], list[str]]:
    """``python -m voicecore bench server`` for a port and a call count (cProfile into ``profile_dir``)."""

    def command(port: int, calls: int) -> list[str]:
        argv = [sys.executable, "-m", "voicecore", "bench", "server", "--port", str(port)]
        argv += ["--max-calls", str(max(calls, 50))]
        if profile_dir is not None:
            argv += ["--profile", os.path.join(profile_dir, f"server-{calls}-calls.prof")]
        return argv

    return command


def spawned_server(
    name: str, command: Callable[[int, int], list[str]], *, cpu: int | None, delays: FakeDelays | None
) -> ServerFactory:
    """A fresh server process per run: ``command(port, calls)``, pinned to ``cpu`` (None: not pinned).

    It must print a line containing "listening" once it takes calls; its stream URL is the first
    ``ws://`` URL on that line, else ``ws://127.0.0.1:PORT/twilio/stream``.
    """

    @contextlib.asynccontextmanager
    async def factory(calls: int) -> AsyncIterator[Target]:
        port = loadproc.free_port()
        async with loadproc.spawned(command(port, calls), cpu=cpu) as process:
            url = process.url or f"ws://127.0.0.1:{port}/twilio/stream"
            yield Target(name, url, process.pid, delays)

    return factory


# --- progress ---------------------------------------------------------------------------------


async def _progress(report: LoadReport, connected: list[int], total: float, out: TextIO) -> None:
    """Redraw one status line on ``out`` (a terminal: twice a second; else a line every 10 s)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    terminal = out.isatty()
    try:
        while True:
            done = sum(t.done for t in report.turns)
            elapsed = loop.time() - started
            line = (
                f"{report.target}: {len(connected)}/{report.calls} calls connected, {done} turns done, "
                f"{elapsed:.0f}/{total:.0f} s"
            )
            out.write(f"\r{line} " if terminal else f"{line}\n")
            out.flush()
            await asyncio.sleep(0.5 if terminal else 10.0)
    finally:
        if terminal:
            out.write("\n")
            out.flush()


# --- the callers ------------------------------------------------------------------------------


#: Seconds between polls of a caller's state. The times measured are taken where the audio is sent
#: and received, not here, so this only paces the script; every 10 ms was a tenth of the
#: generator's CPU at 300 callers.
POLL_SECONDS = 0.05


async def _until(condition: Callable[[], bool], within: float) -> bool:
    """Poll ``condition`` every :data:`POLL_SECONDS` for up to ``within`` seconds; whether it came true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


async def _quiet(call: TwilioCaller, settle: float, within: float) -> None:
    """Wait until the agent's audio has played and nothing new came for ``settle`` seconds."""
    loop = asyncio.get_running_loop()
    since = loop.time()

    def done() -> bool:
        last = max(call.last_audio_at or since, since)
        return call.closed or (not call.playing and loop.time() - last >= settle)

    await _until(done, within)


async def _speak(call: TwilioCaller, ulaw: bytes, within: float) -> int | None:
    """Say ``ulaw`` and wait until it has gone out; the index of its turn (None: timed out)."""
    before = len(call.turns)
    call.say(ulaw)
    ok = await _until(lambda: len(call.turns) > before and call.turns[before].ended_at is not None, within)
    return before if ok else None


async def _answer(call: TwilioCaller, result: TurnResult, speech: bytes, answer_within: float) -> Turn | None:
    """Say ``speech`` and wait for the agent's audio; fills ``result``; the caller's turn."""
    index = await _speak(call, speech, len(speech) / 8000 + 5)
    if index is None:
        result.error = "the caller's speech did not go out"
        return None
    spoken = call.turns[index]
    if await _until(lambda: spoken.answered_at is not None, answer_within):
        result.latency = spoken.latency
    elif result.error is None:
        result.error = f"no agent audio within {answer_within:g} s"
    return spoken


async def _barge_in(call: TwilioCaller, result: TurnResult, speech: bytes, answer_within: float) -> None:
    """Talk over the agent's answer: time the ``clear``, then the answer to the new speech."""
    clears = len(call.clear_times)
    task = asyncio.get_running_loop().create_task(_answer(call, result, speech, answer_within))
    if await _until(lambda: len(call.clear_times) > clears, answer_within + len(speech) / 8000):
        started = call.turns[-1].spoke_at
        result.clear_latency = call.clear_times[clears] - started
    else:
        result.error = "no clear after the barge-in"
    await task


async def _caller(
    url: str,
    number: int,
    *,
    duration: float,
    call_seconds: float | None,
    barge_in_every: int,
    speech: bytes,
    answer_within: float,
    settle: float,
    start_delay: float,
    report: LoadReport,
    connected: list[int],
) -> None:
    """One caller: turns until ``duration`` is up, hanging up and dialling again every ``call_seconds``.

    Each call hears its greeting before its first turn; results go into ``report``.
    """
    await asyncio.sleep(start_delay)
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    turn = 0
    dial = 0
    while dial == 0 or loop.time() < end:
        dial += 1
        report.dials += 1
        hang_up_at = end if call_seconds is None else min(end, loop.time() + call_seconds)
        last_turn = await _call(
            url,
            number,
            dial,
            turn,
            until=hang_up_at,
            barge_in_every=barge_in_every,
            speech=speech,
            answer_within=answer_within,
            settle=settle,
            report=report,
            connected=connected,
        )
        if last_turn is None:
            return  # the server closed the call: reported, and the caller gives up
        turn = last_turn


async def _call(
    url: str,
    number: int,
    dial: int,
    turn: int,
    *,
    until: float,
    barge_in_every: int,
    speech: bytes,
    answer_within: float,
    settle: float,
    report: LoadReport,
    connected: list[int],
) -> int | None:
    """One call of caller ``number``: greeting, then turns (numbered on from ``turn``) until ``until``.

    Returns:
        The last turn's number, or None when the server closed the stream.
    """
    loop = asyncio.get_running_loop()
    sid = f"{number:016d}{dial:016d}"
    call = TwilioCaller(url, call_sid="CA" + sid, stream_sid="MZ" + sid)
    first = True
    try:
        async with call:
            await _until(lambda: call.first_audio_at is not None or call.closed, answer_within)
            if dial == 1:
                connected.append(number)
            await _quiet(call, settle, 30.0)
            while loop.time() < until or first:
                first = False
                if call.closed:
                    report.call_errors.append(
                        f"call {number}: the server closed the stream ({call.close_code})"
                    )
                    return None
                turn += 1
                result = TurnResult(number, turn)
                report.turns.append(result)
                spoken = await _answer(call, result, speech, answer_within)
                if (
                    spoken is not None
                    and spoken.answered_at is not None
                    and barge_in_every
                    and turn % barge_in_every == 0
                ):
                    # 0.2 s into the answer (not into when the poll saw it), then talk over it
                    await asyncio.sleep(max(spoken.answered_at + 0.2 - loop.time(), 0.0))
                    turn += 1
                    barge = TurnResult(number, turn, barge_in=True)
                    report.turns.append(barge)
                    await _barge_in(call, barge, speech, answer_within)
                await _quiet(call, settle, 30.0)
    finally:
        report.frames_sent += call.frames_sent
        report.playout.merge(call.meter)
    return turn


async def _loop_lag(out: list[float]) -> None:
    """Append how late each 10 ms sleep woke to ``out`` until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.01)
        out.append(max(loop.time() - before - 0.01, 0.0))


_SAMPLE = "^{}\\s+(\\S+)$"


async def _metrics(url: str, names: Sequence[str]) -> dict[str, float]:
    """The server's ``/metrics`` samples among ``names`` (those it has; none when it has no /metrics)."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    metrics = urlunsplit((scheme, parts.netloc, "/metrics", "", ""))
    try:
        async with aiohttp.ClientSession() as http, http.get(metrics) as response:
            if response.status != 200:
                return {}
            text = await response.text()
    except (aiohttp.ClientError, OSError):
        return {}
    found = {}
    for name in names:
        match = re.search(_SAMPLE.format(re.escape(name)), text, re.MULTILINE)
        if match:
            found[name] = float(match.group(1))
    return found


_RECEIVED = "voicecore_caller_frames_received_total"
_GAPS = "voicecore_caller_frames_lost_total"
_ACTIVE = "voicecore_active_calls"


async def _calls_ended(url: str, within: float) -> None:
    """Wait until the server has no call in progress (it counts a call's frames once it ends)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        active = (await _metrics(url, (_ACTIVE,))).get(_ACTIVE)
        if active is None:  # no such gauge: give it a moment
            await asyncio.sleep(0.5)
            return
        if active == 0:
            return
        await asyncio.sleep(0.1)


async def run_load(
    calls: int,
    *,
    duration: float = 20.0,
    server: ServerFactory | None = None,
    barge_in_every: int = 0,
    answer_within: float = 5.0,
    settle: float = 0.3,
    stagger: float = 1.0,
    speech: bytes | None = None,
    rss_every: float = 1.0,
    soak: bool = False,
    call_seconds: float | None = None,
    progress: TextIO | None = None,
) -> LoadReport:
    """Run ``calls`` concurrent callers for ``duration`` seconds each and measure every turn.

    Args:
        calls: Concurrent callers.
        duration: Seconds each caller keeps starting turns (at least one turn each).
        server: Makes the server (default: the load-test agent in this process, :func:`in_process`).
        barge_in_every: Every this many turns the caller talks over the answer (0: never).
        answer_within: Seconds a turn may wait for agent audio (or a ``clear``) before failing.
        settle: Seconds of agent silence, after its audio played, that end an answer.
        stagger: Callers start spread over this many seconds.
        speech: What each caller says (μ-law 8 kHz); default espeak-ng's :data:`UTTERANCE`.
        rss_every: Seconds between samples of the server's RSS.
        soak: Mark the report as a soak (its table shows the RSS slope).
        call_seconds: Each caller hangs up after this many seconds of turns and dials again
            (a soak then covers calls ending and starting, where per-call state would leak);
            None: one call per caller for the whole run.
        progress: Where a one-line progress display goes (None: nowhere).

    Returns:
        The report.
    """
    speech = trim_silence(espeak(UTTERANCE) if speech is None else speech)
    factory = server if server is not None else in_process(FakeDelays())
    loop = asyncio.get_running_loop()
    async with factory(calls) as target, contextlib.AsyncExitStack() as background:
        report = LoadReport(calls, duration, target.name, delays=target.delays, soak=soak)
        # One call first, unmeasured: the first session's imports and set-up stall the loop.
        async with TwilioCaller(target.url, call_sid="CA" + "9" * 32, stream_sid="MZ" + "9" * 32) as warm:
            await _until(lambda: warm.first_audio_at is not None or warm.closed, answer_within)
        await _calls_ended(target.url, 10.0)  # the warm-up call's frames are counted
        before = await _metrics(target.url, (_RECEIVED, _GAPS))

        def start(coro: Coroutine[Any, Any, None]) -> None:
            task = loop.create_task(coro)

            async def stop() -> None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            background.push_async_callback(stop)

        start(_loop_lag(report.loop_lags))
        connected: list[int] = []
        if progress is not None:
            start(_progress(report, connected, stagger + duration, progress))
        began = loop.time()
        generator0 = time.process_time()
        cpu0 = wait0 = None
        samples: list[tuple[float, float]] = []
        if target.pid is not None:
            cpu0 = loadproc.cpu_seconds(target.pid)
            wait0 = loadproc.run_queue_wait(target.pid)
            report.rss_idle = loadproc.rss_mib(target.pid)
            start(loadproc.sample_rss(target.pid, rss_every, samples))

        async def settled() -> None:
            await _until(lambda: len(connected) == calls, stagger + 2 * answer_within + 30)
            report.settled_at = loop.time() - began

        start(settled())
        results = await asyncio.gather(
            *(
                _caller(
                    target.url,
                    number,
                    duration=duration,
                    call_seconds=call_seconds,
                    barge_in_every=barge_in_every,
                    speech=speech,
                    answer_within=answer_within,
                    settle=settle,
                    start_delay=stagger * number / calls,
                    report=report,
                    connected=connected,
                )
                for number in range(calls)
            ),
            return_exceptions=True,
        )
        report.wall_seconds = loop.time() - began
        report.generator_cpu_seconds = time.process_time() - generator0
        if target.pid is not None and cpu0 is not None:
            report.cpu_seconds = loadproc.cpu_seconds(target.pid) - cpu0
            wait1 = loadproc.run_queue_wait(target.pid)
            if wait0 is not None and wait1 is not None:
                report.server_wait_seconds = wait1 - wait0
            samples.append((loop.time(), loadproc.rss_mib(target.pid)))
            report.rss = [(t - began, mib) for t, mib in samples]
        for number, result in enumerate(results):
            if isinstance(result, BaseException):
                report.call_errors.append(f"call {number}: {type(result).__name__}: {result}")
        await _calls_ended(target.url, 30.0)
        after = await _metrics(target.url, (_RECEIVED, _GAPS))
        if _RECEIVED in before and _RECEIVED in after:
            report.frames_received = round(after[_RECEIVED] - before[_RECEIVED])
        if _GAPS in before and _GAPS in after:
            report.frame_gaps = round(after[_GAPS] - before[_GAPS])
    return report


async def run_ramp(
    steps: Sequence[int],
    *,
    limit: float = 0.05,
    on_run: Callable[[LoadReport], None] | None = None,
    every_step: bool = False,
    **options: Any,
) -> tuple[list[LoadReport], int | None]:
    """Run :func:`run_load` at each call count in ``steps`` until a run does not :func:`held`.

    Args:
        steps: Call counts, increasing.
        limit: p95 added latency (seconds) a run may have and still hold.
        on_run: Called with each run's report as it finishes.
        every_step: Run every step even after one did not hold (a peer measured at the same
            call counts as the server it is compared with).
        **options: Passed to :func:`run_load` (``duration``, ``server``, ...).

    Returns:
        Every run's report, and the largest call count up to which every run held (None: not
        even the first).
    """
    reports: list[LoadReport] = []
    best: int | None = None
    holding = True
    for calls in steps:
        report = await run_load(calls, **options)
        reports.append(report)
        if on_run is not None:
            on_run(report)
        holding = holding and held(report, limit)
        if holding:
            best = calls
        elif not every_step:
            break
    return reports, best
