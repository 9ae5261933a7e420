"""A load generator: N simulated Twilio callers against a Media Streams server, with latency stats.

``python -m voicecore bench load`` runs :func:`run_load`: ``calls`` concurrent
:class:`~voicecore.caller.TwilioCaller` s (the Twilio Media Streams protocol exactly: connected,
start, a ``media`` frame every 20 ms in real time, marks echoed once their audio has played,
stop), each playing a script of turns for ``duration`` seconds: espeak-ng speech, then silence
while the agent answers; every ``barge_in_every``-th turn the caller talks over the answer.

Per turn it measures end of caller speech → first agent audio, and for barge-ins, the start of
the caller's interrupting speech → ``clear`` received. Without a target URL it serves an
in-process :class:`~voicecore.server.VoiceServer` on 127.0.0.1 whose providers are fakes with
fixed, known delays (:class:`FakeDelays`), so the engine's own share can be reported:
added latency = measured - endpointing silence - STT - LLM first token - TTS first byte.

The statistics (:func:`percentile`, :func:`added_latency`, :class:`LoadReport`) are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from voicecore.audio import ulaw_decode
from voicecore.caller import FRAME_BYTES, Turn, TwilioCaller, espeak

__all__ = [
    "FakeDelays",
    "LoadReport",
    "TurnResult",
    "added_latency",
    "held",
    "notes",
    "percentile",
    "ramp_steps",
    "run_load",
    "run_ramp",
    "table",
    "trim_silence",
]

#: What the caller says on each turn (first word is not a backchannel, so it can interrupt).
UTTERANCE = "tell me about the weather tomorrow"
#: The in-process agent's reply: a short first sentence, then enough to talk over.
REPLY = "Sure. Here is the answer you asked for, told in a few short and simple words."
#: Peak (16-bit linear) below which a caller frame counts as silence when trimming speech.
QUIET_PEAK = 300


@dataclass(frozen=True)
class FakeDelays:
    """The in-process server's fixed provider delays and endpointing silence (seconds).

    Attributes:
        endpointing: Silence the VAD needs before it decides the caller stopped (its ``stop_ms``).
        stt: From the end of speech being decided to the STT's final text.
        llm_first_token: From the request to the LLM's first token.
        llm_tokens_per_second: Pace of the following tokens.
        tts_first_byte: From the first text to the TTS's first audio.
        interim_after: Seconds of loud caller speech before the STT's first interim word (what
            lets a barge-in interrupt the agent). Kept above the turn machine's
            ``barge_in_min_speech`` (250 ms) plus the VAD's onset: a word that arrives earlier
            is not looked at again when the 250 ms are up, and the barge-in then waits for
            ``barge_in_max_speech`` (1 s) instead.
    """

    endpointing: float = 0.5
    stt: float = 0.1
    llm_first_token: float = 0.2
    llm_tokens_per_second: float = 100.0
    tts_first_byte: float = 0.08
    interim_after: float = 0.5

    @property
    def known(self) -> float:
        """Seconds of a turn's latency that the fakes and the endpointing account for."""
        return self.endpointing + self.stt + self.llm_first_token + self.tts_first_byte


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


@dataclass
class LoadReport:
    """What a load run measured.

    Attributes:
        calls: Concurrent callers.
        duration: Seconds each caller kept taking turns.
        target: The server's URL (``in-process`` for the built-in one).
        turns: Every turn of every call.
        delays: The in-process server's known delays (None against an external target).
        frames_sent: ``media`` frames the callers sent, all calls.
        frames_lost: Frames the server counted missing (its ``voicecore_caller_frames_lost``
            metric, before/after the run); None when the server exposes no such metric.
        cpu_seconds: CPU time of this process during the run (the in-process server and the
            generator share it); None against an external target.
        wall_seconds: Wall time of the run.
        loop_lags: How late each 10 ms timer on this process's event loop woke (seconds): the
            generator's own health (a late loop sends late frames and measures late audio).
        call_errors: Calls that failed as a whole (could not connect, closed early).
    """

    calls: int
    duration: float
    target: str
    turns: list[TurnResult] = field(default_factory=list)
    delays: FakeDelays | None = None
    frames_sent: int = 0
    frames_lost: int | None = None
    cpu_seconds: float | None = None
    wall_seconds: float = 0.0
    loop_lags: list[float] = field(default_factory=list)
    call_errors: list[str] = field(default_factory=list)

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

    def summary(self) -> dict[str, Any]:
        """The headline numbers (milliseconds), as :meth:`markdown` shows and ``--json`` writes."""
        out: dict[str, Any] = {
            "calls": self.calls,
            "target": self.target,
            "turns": len(self.turns),
            "failed_turns": self.failed,
            "call_errors": len(self.call_errors),
            "barge_ins": sum(t.barge_in for t in self.turns),
            "frames_sent": self.frames_sent,
            "frames_lost": self.frames_lost,
            "loop_lag_p99_ms": percentile(self.loop_lags, 99) * 1000 if self.loop_lags else 0.0,
            "loop_lag_max_ms": max(self.loop_lags, default=0.0) * 1000,
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
        if self.cpu_seconds is not None and self.wall_seconds > 0:
            out["cpu_per_call_percent"] = 100 * self.cpu_seconds / self.wall_seconds / self.calls
        return out

    def to_json(self) -> str:
        """The summary and every turn, as JSON."""
        data: dict[str, Any] = {"summary": self.summary(), "turns": [asdict(t) for t in self.turns]}
        data["delays"] = asdict(self.delays) if self.delays is not None else None
        data["call_errors"] = self.call_errors
        return json.dumps(data, indent=2)

    def markdown(self) -> str:
        """The summary as a Markdown table (one row)."""
        return table([self])

    def columns(self) -> tuple[list[str], list[str]]:
        """The table's header and this run's row."""
        s = self.summary()

        def ms(key: str) -> str:
            value = s.get(key)
            return "n/a" if value is None else f"{value:.1f}"

        head = ["calls", "turns", "failed", "latency p50/p95/p99 ms"]
        row = [str(s["calls"]), str(s["turns"]), str(s["failed_turns"] + s["call_errors"])]
        row.append(f"{ms('latency_p50_ms')} / {ms('latency_p95_ms')} / {ms('latency_p99_ms')}")
        if self.delays is not None:
            head.append("added p50/p95/p99 ms")
            row.append(f"{ms('added_p50_ms')} / {ms('added_p95_ms')} / {ms('added_p99_ms')}")
        head += ["barge-ins", "speech → clear p50/p95 ms"]
        row += [str(s["barge_ins"]), f"{ms('clear_p50_ms')} / {ms('clear_p95_ms')}"]
        if self.delays is not None:
            head.append("clear added p50/p95 ms")
            row.append(f"{ms('clear_added_p50_ms')} / {ms('clear_added_p95_ms')}")
        head += ["frames sent", "frames lost"]
        row.append(str(s["frames_sent"]))
        row.append("n/a" if s["frames_lost"] is None else str(s["frames_lost"]))
        if "cpu_per_call_percent" in s:
            head.append("CPU % of a core per call")
            row.append(f"{s['cpu_per_call_percent']:.2f}")
        head.append("loop lag p99/max ms")
        row.append(f"{s['loop_lag_p99_ms']:.1f} / {s['loop_lag_max_ms']:.1f}")
        return head, row


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
    """Call counts for a ramp: 1, 2, 5, 10, 20, 50, ... from ``start`` up to ``stop`` (inclusive)."""
    steps, decade = [], 1
    while decade <= stop:
        steps += [n for n in (decade, 2 * decade, 5 * decade) if start <= n <= stop]
        decade *= 10
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
            f"granularity, and one LLM token gap ({gap_ms:.0f} ms: the "
            "splitter confirms the first sentence's end on the next token). clear added = speech -> "
            f"clear - {d.interim_after * 1000:.0f} ms (the fake STT's first word)."
        )
        lines.append(
            "CPU: this process's CPU time over the run (the in-process server AND the generator share "
            "it), per call, as % of one core."
        )
    lines.append(
        "frames lost: the server's voicecore_caller_frames_lost counter (gaps in the media chunk "
        "sequence) over the run; the server reports no processed-frame count, so lost frames are "
        "what it counts instead (n/a: no such metric)."
    )
    lag = report.summary()["loop_lag_p99_ms"]
    if lag > 20:
        lines.append(
            f"warning: this process's event loop ran {lag:.0f} ms late at p99; frames went out late "
            "and the latencies include that."
        )
    return "\n".join(lines) + "\n"


# --- the callers ------------------------------------------------------------------------------


async def _until(condition: Callable[[], bool], within: float) -> bool:
    """Poll ``condition`` every 10 ms for up to ``within`` seconds; whether it came true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
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
    barge_in_every: int,
    speech: bytes,
    answer_within: float,
    settle: float,
    start_delay: float,
    report: LoadReport,
    sent: list[int],
) -> None:
    """One caller: greeting, then turns until ``duration`` is up; results go into ``report``."""
    await asyncio.sleep(start_delay)
    loop = asyncio.get_running_loop()
    sid = f"{number:032d}"
    async with TwilioCaller(url, call_sid="CA" + sid, stream_sid="MZ" + sid) as call:
        try:
            await _until(lambda: call.first_audio_at is not None or call.closed, answer_within)
            await _quiet(call, settle, 30.0)
            end = loop.time() + duration
            turn = 0
            while loop.time() < end or turn == 0:
                if call.closed:
                    report.call_errors.append(
                        f"call {number}: the server closed the stream ({call.close_code})"
                    )
                    return
                turn += 1
                result = TurnResult(number, turn)
                report.turns.append(result)
                await _answer(call, result, speech, answer_within)
                if result.latency is not None and barge_in_every and turn % barge_in_every == 0:
                    await asyncio.sleep(0.2)  # into the answer, then talk over it
                    turn += 1
                    barge = TurnResult(number, turn, barge_in=True)
                    report.turns.append(barge)
                    await _barge_in(call, barge, speech, answer_within)
                await _quiet(call, settle, 30.0)
        finally:
            sent.append(call.frames_sent)


async def _loop_lag(out: list[float]) -> None:
    """Append how late each 10 ms sleep woke to ``out`` until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.01)
        out.append(max(loop.time() - before - 0.01, 0.0))


_LOST = re.compile(r"^voicecore_caller_frames_lost_total\s+(\S+)$", re.MULTILINE)


async def _frames_lost(url: str) -> float | None:
    """The server's lost-frame counter from its ``/metrics`` (None: not there)."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    metrics = urlunsplit((scheme, parts.netloc, "/metrics", "", ""))
    try:
        async with aiohttp.ClientSession() as http, http.get(metrics) as response:
            if response.status != 200:
                return None
            match = _LOST.search(await response.text())
    except (aiohttp.ClientError, OSError):
        return None
    return float(match.group(1)) if match else None


@contextlib.asynccontextmanager
async def in_process_server(delays: FakeDelays, max_calls: int) -> AsyncIterator[str]:
    """Serve an agent on fake providers with ``delays`` on 127.0.0.1; yields its stream URL."""
    from voicecore.agent import ProviderChoice
    from voicecore.config import ServeConfig
    from voicecore.providers import registry
    from voicecore.runtime.session import SessionConfig
    from voicecore.sansio.turn import TurnConfig
    from voicecore.server import VoiceServer
    from voicecore.testing import FakeLLM, FakeReply, FakeSTT, FakeTTS

    def stt(keys: Mapping[str, str], options: Mapping[str, Any]) -> FakeSTT:
        loud_bytes = round(delays.interim_after * 32_000)  # the fake STT takes PCM16 at 16 kHz
        return FakeSTT([UTTERANCE] * 10_000, latency=delays.stt, interim_after_bytes=loud_bytes)

    def llm(keys: Mapping[str, str], options: Mapping[str, Any]) -> FakeLLM:
        reply = FakeReply(
            REPLY, first_token=delays.llm_first_token, tokens_per_second=delays.llm_tokens_per_second
        )
        return FakeLLM([reply])

    def tts(keys: Mapping[str, str], options: Mapping[str, Any]) -> FakeTTS:
        return FakeTTS(first_byte=delays.tts_first_byte, ms_per_char=25.0)

    for role, factory in (("stt", stt), ("llm", llm), ("tts", tts)):
        registry.register(registry.ProviderEntry(role, "loadgen", factory))  # type: ignore[arg-type]
    # No filler before the turn fails: a filler would be measured as the answer.
    turn = TurnConfig(greeting="Hello.", filler_after=9.0, turn_timeout=10.0, idle_after=60.0)
    agent = SessionConfig(instructions="You are a load-test agent.", turn=turn)
    config = ServeConfig(port=0, stt="loadgen", llm="loadgen", tts="loadgen", max_calls=max_calls)
    server = VoiceServer(config, agent, dict.fromkeys(("stt", "llm", "tts"), ProviderChoice("loadgen")))
    await server.start()
    try:
        yield f"ws://127.0.0.1:{server.port}/twilio/stream"
    finally:
        await server.shutdown(drain_timeout=0)


async def run_load(
    calls: int,
    *,
    duration: float = 20.0,
    target: str | None = None,
    barge_in_every: int = 0,
    delays: FakeDelays | None = None,
    answer_within: float = 5.0,
    settle: float = 0.3,
    stagger: float = 1.0,
    speech: bytes | None = None,
) -> LoadReport:
    """Run ``calls`` concurrent callers for ``duration`` seconds each and measure every turn.

    Args:
        calls: Concurrent callers.
        duration: Seconds each caller keeps starting turns (at least one turn each).
        target: The server's Media Streams URL; None serves an in-process agent on fakes.
        barge_in_every: Every this many turns the caller talks over the answer (0: never).
        delays: The in-process fakes' delays (default :class:`FakeDelays`).
        answer_within: Seconds a turn may wait for agent audio (or a ``clear``) before failing.
        settle: Seconds of agent silence, after its audio played, that end an answer.
        stagger: Callers start spread over this many seconds.
        speech: What each caller says (μ-law 8 kHz); default espeak-ng's :data:`UTTERANCE`.

    Returns:
        The report.
    """
    speech = trim_silence(espeak(UTTERANCE) if speech is None else speech)
    delays = (delays or FakeDelays()) if target is None else None
    report = LoadReport(calls, duration, target or "in-process", delays=delays)
    async with contextlib.AsyncExitStack() as stack:
        if target is None:
            assert delays is not None
            url = await stack.enter_async_context(in_process_server(delays, max(calls, 50)))
        else:
            url = target
        # One call first, unmeasured: the first session's imports and set-up stall the loop.
        async with TwilioCaller(url, call_sid="CA" + "9" * 32, stream_sid="MZ" + "9" * 32) as warm:
            await _until(lambda: warm.first_audio_at is not None or warm.closed, answer_within)
        lost_before = await _frames_lost(url)
        lag_task = asyncio.get_running_loop().create_task(_loop_lag(report.loop_lags))
        sent: list[int] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(
            *(
                _caller(
                    url,
                    number,
                    duration=duration,
                    barge_in_every=barge_in_every,
                    speech=speech,
                    answer_within=answer_within,
                    settle=settle,
                    start_delay=stagger * number / calls,
                    report=report,
                    sent=sent,
                )
                for number in range(calls)
            ),
            return_exceptions=True,
        )
        report.wall_seconds = time.perf_counter() - wall0
        if target is None:
            report.cpu_seconds = time.process_time() - cpu0
        lag_task.cancel()
        for number, result in enumerate(results):
            if isinstance(result, BaseException):
                report.call_errors.append(f"call {number}: {type(result).__name__}: {result}")
        report.frames_sent = sum(sent)
        await asyncio.sleep(0.5)  # the server counts a call's lost frames once it has ended
        lost_after = await _frames_lost(url)
        if lost_before is not None and lost_after is not None:
            report.frames_lost = round(lost_after - lost_before)
    return report


async def run_ramp(
    steps: Sequence[int],
    *,
    limit: float = 0.05,
    progress: Callable[[LoadReport], None] | None = None,
    **options: Any,
) -> tuple[list[LoadReport], int | None]:
    """Run :func:`run_load` at each call count in ``steps`` until a run does not :func:`held`.

    Args:
        steps: Call counts, increasing.
        limit: p95 added latency (seconds) a run may have and still hold.
        progress: Called with each run's report as it finishes.
        **options: Passed to :func:`run_load` (``duration``, ``target``, ...).

    Returns:
        Every run's report, and the largest call count that held (None: not even the first).
    """
    reports: list[LoadReport] = []
    best: int | None = None
    for calls in steps:
        report = await run_load(calls, **options)
        reports.append(report)
        if progress is not None:
            progress(report)
        if not held(report, limit):
            break
        best = calls
    return reports, best
