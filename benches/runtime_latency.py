"""The runtime's own added latency per turn, with 1 and with many concurrent calls in one process.

Each call is a real session (Rust VAD on espeak-ng speech, turn machine, splitter, format
conversion, playback ledger, observers) over a loopback transport, with provider fakes that
add **no** delay of their own (STT final, LLM tokens and TTS audio all at once). So the time
from the VAD's end-of-speech decision to the first agent audio handed to the transport is
what voicecore itself adds; it grows only with the load of the other calls on the same core.

Run: ``python -m benches.runtime_latency [--calls 1 10 50] [--turns 3]`` (prints a markdown
table; the README's figures come from it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import statistics
import subprocess
import time
import wave
from dataclasses import dataclass
from functools import cache
from io import BytesIO

from voicecore import events as ev
from voicecore.audio import Resampler
from voicecore.providers.base import PCM16_16K
from voicecore.runtime.loop import LoopName, loop_name, run
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import FakeLLM, FakeReply, FakeSTT, FakeTTS, LoopbackTransport

UTTERANCE = "what time do you open tomorrow"
REPLY = "We open at nine. See you then."


@cache
def speech(text: str) -> bytes:
    """``text`` spoken by espeak-ng, PCM16 at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("the runtime benchmark needs espeak-ng: apt-get install espeak-ng")
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(BytesIO(wav)) as reader:
        rate, frames = reader.getframerate(), reader.readframes(reader.getnframes())
    resampler = Resampler(rate, 16000)
    return resampler.process(frames) + resampler.flush()


class _Timings:
    """Observer keeping each turn's timeline."""

    def __init__(self) -> None:
        self.turns: list[ev.TurnTimings] = []

    def on_event(self, event: object) -> None:
        if isinstance(event, ev.TurnTimings):
            self.turns.append(event)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Result:
    """Added latency (ms) from end of speech to first audio sent, over all turns of a run."""

    calls: int
    turns: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    cpu_s_per_call_minute: float


async def _one_call(turns: int, timings: _Timings, delay: float) -> None:
    await asyncio.sleep(delay)  # calls start at different moments, as real ones do
    transport = LoopbackTransport()
    zero = FakeReply(REPLY, first_token=0.0, tokens_per_second=0.0)
    session = Session(
        SessionConfig(instructions="Bench agent.", turn=TurnConfig(), call_control=False),
        transport=transport,
        stt=FakeSTT([UTTERANCE] * turns, latency=0.0),
        llm=FakeLLM([zero]),
        tts=FakeTTS(first_byte=0.0, ms_per_char=50.0),
        observers=(timings,),
    )

    async def caller() -> None:
        for _ in range(turns):
            played = len(transport.marks_played)
            transport.say(speech(UTTERANCE))
            async with asyncio.timeout(30):
                while len(transport.marks_played) < played + 2:  # noqa: ASYNC110 (polls the fake's state)
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
        transport.hang_up_caller()

    await asyncio.gather(session.run(), caller())
    session.events.flush()


async def _warm_up() -> None:
    """Synthesize once, so the fake TTS's one-time tone table is not counted as latency."""
    stream = await FakeTTS(first_byte=0.0).open(PCM16_16K)
    await stream.push_text("warm up")
    await stream.end_input()
    async for _ in stream:
        pass


async def _calls(calls: int, turns: int, timings: _Timings) -> None:
    spread = random.Random(calls)
    await asyncio.gather(*(_one_call(turns, timings, spread.uniform(0.0, 1.0)) for _ in range(calls)))


def measure(calls: int, turns: int, loop: LoopName | None = None) -> Result:
    """Run ``calls`` concurrent calls of ``turns`` turns each and summarise the added latency."""
    timings = _Timings()
    speech(UTTERANCE)  # made once, outside the measurement
    run(_warm_up(), loop=loop)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    run(_calls(calls, turns, timings), loop=loop)
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    added = sorted(t.first_audio_sent * 1000.0 for t in timings.turns if t.first_audio_sent is not None)
    if not added:
        raise RuntimeError("no turn reached its first audio")
    p95 = added[min(len(added) - 1, round(0.95 * (len(added) - 1)))]
    return Result(
        calls=calls,
        turns=len(added),
        p50_ms=statistics.median(added),
        p95_ms=p95,
        max_ms=added[-1],
        cpu_s_per_call_minute=cpu / calls / (wall / 60.0),
    )


def main() -> None:
    """Print the table for the README."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    print(f"event loop: {loop_name()}")
    print("| concurrent calls | turns | added latency p50 | p95 | max | CPU s per call-minute |")
    print("|---|---|---|---|---|---|")
    for calls in args.calls:
        r = measure(calls, args.turns)
        print(
            f"| {r.calls} | {r.turns} | {r.p50_ms:.2f} ms | {r.p95_ms:.2f} ms | {r.max_ms:.2f} ms "
            f"| {r.cpu_s_per_call_minute:.2f} |"
        )


if __name__ == "__main__":
    main()
