"""The load test's server: the voicecore agent on in-process fake providers with fixed delays.

:func:`fake_server` serves it on 127.0.0.1 inside the running loop (``bench load --in-process``
and the tests); :func:`serve` is ``python -m voicecore bench server``, the same server in a
process of its own, which ``bench load`` spawns pinned to one core and measures from ``/proc``.
It prints :data:`LISTENING` with its stream URL once it accepts calls, and stops on SIGTERM or
SIGINT; with a profile path it runs under cProfile and writes the stats when it stops; with a
loop-lag path it writes how late each 10 ms timer of its event loop woke (:func:`probe_loop_lag`), the
server's own view of whether its loop kept up.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import signal
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from voicecore.runtime.loop import settle_heap

__all__ = [
    "GREETING",
    "INSTRUCTIONS",
    "LISTENING",
    "REPLY",
    "UTTERANCE",
    "FakeDelays",
    "fake_server",
    "probe_loop_lag",
    "serve",
]

#: What the callers say on each turn (first word is not a backchannel, so it can interrupt).
UTTERANCE = "tell me about the weather tomorrow"
#: The agent's reply: a short first sentence, then enough to talk over.
REPLY = "Sure. Here is the answer you asked for, told in a few short and simple words."
#: What the load-test agent says when a call connects (the peers say the same).
GREETING = "Hello."
#: The load-test agent's instructions (the peers have the same).
INSTRUCTIONS = "You are a load-test agent."
#: The start of the line a spawned server prints once it accepts calls (its stream URL follows).
LISTENING = "listening on"


@dataclass(frozen=True)
class FakeDelays:
    """The load-test server's fixed provider delays and endpointing silence (seconds).

    Attributes:
        endpointing: Silence the VAD needs before it decides the caller stopped (its ``stop_ms``).
        stt: From the end of speech being decided to the STT's final text.
        llm_first_token: From the request to the LLM's first token.
        llm_tokens_per_second: Pace of the following tokens.
        tts_first_byte: From the first text to the TTS's first audio.
        interim_after: Seconds of loud caller speech before the STT's first interim word (what
            lets a barge-in interrupt the agent).
        tts_ms_per_char: Milliseconds of TTS audio per character of text.
    """

    endpointing: float = 0.5
    stt: float = 0.1
    llm_first_token: float = 0.2
    llm_tokens_per_second: float = 100.0
    tts_first_byte: float = 0.08
    interim_after: float = 0.5
    tts_ms_per_char: float = 25.0

    @property
    def known(self) -> float:
        """Seconds of a turn's latency that the fakes and the endpointing account for."""
        return self.endpointing + self.stt + self.llm_first_token + self.tts_first_byte


@contextlib.asynccontextmanager
async def fake_server(delays: FakeDelays, max_calls: int, port: int = 0) -> AsyncIterator[str]:
    """Serve an agent on fake providers with ``delays`` on 127.0.0.1:``port``; yields its stream URL."""
    from voicecore.agent import ProviderChoice
    from voicecore.config import ServeConfig
    from voicecore.providers import registry
    from voicecore.runtime.session import SessionConfig
    from voicecore.sansio.turn import TurnConfig
    from voicecore.server import VoiceServer
    from voicecore.testing import FakeLLM, FakeReply, FakeSTT, FakeTTS

    def stt(keys: Mapping[str, str], options: Mapping[str, Any]) -> FakeSTT:
        loud_bytes = round(delays.interim_after * 32_000)  # the fake STT takes PCM16 at 16 kHz
        return FakeSTT([UTTERANCE], cycle=True, latency=delays.stt, interim_after_bytes=loud_bytes)

    def llm(keys: Mapping[str, str], options: Mapping[str, Any]) -> FakeLLM:
        reply = FakeReply(
            REPLY, first_token=delays.llm_first_token, tokens_per_second=delays.llm_tokens_per_second
        )
        return FakeLLM([reply], record=False)  # a soak must not keep every request

    def tts(keys: Mapping[str, str], options: Mapping[str, Any]) -> FakeTTS:
        return FakeTTS(first_byte=delays.tts_first_byte, ms_per_char=delays.tts_ms_per_char, record=False)

    for role, factory in (("stt", stt), ("llm", llm), ("tts", tts)):
        registry.register(registry.ProviderEntry(role, "loadgen", factory))  # type: ignore[arg-type]
    # No filler before the turn fails: a filler would be measured as the answer.
    turn = TurnConfig(greeting=GREETING, filler_after=9.0, turn_timeout=10.0, idle_after=60.0)
    agent = SessionConfig(instructions=INSTRUCTIONS, turn=turn)
    config = ServeConfig(port=port, stt="loadgen", llm="loadgen", tts="loadgen", max_calls=max_calls)
    server = VoiceServer(config, agent, dict.fromkeys(("stt", "llm", "tts"), ProviderChoice("loadgen")))
    await server.start()
    try:
        yield f"ws://127.0.0.1:{server.port}/twilio/stream"
    finally:
        await server.shutdown(drain_timeout=0)


async def probe_loop_lag(out: list[tuple[float, float]], every: float = 0.01) -> None:
    """Append ``(loop time, seconds late)`` for each ``every``-second sleep to ``out`` until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(every)
        now = loop.time()
        out.append((now, max(now - before - every, 0.0)))


async def _serve_until_signalled(
    port: int, delays: FakeDelays, max_calls: int, out: TextIO, lags: list[tuple[float, float]] | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fake_server(delays, max_calls, port) as url:
        settle_heap()
        probe = loop.create_task(probe_loop_lag(lags)) if lags is not None else None
        print(f"voicecore load-test server {LISTENING} {url}", file=out, flush=True)
        await stop.wait()
        if probe is not None:
            probe.cancel()


def serve(
    port: int,
    *,
    delays: FakeDelays,
    max_calls: int,
    out: TextIO,
    profile: Path | None = None,
    loop_lag: Path | None = None,
) -> None:
    """Run the load-test server on ``port`` (0: any) until SIGTERM or SIGINT.

    Args:
        port: TCP port on 127.0.0.1.
        delays: The fakes' delays.
        max_calls: Calls it admits at once.
        out: Where the :data:`LISTENING` line goes.
        profile: Write cProfile stats of the whole run here (for ``python -m pstats``).
        loop_lag: Write the event loop's lag here as JSON ``[[loop time, seconds late], ...]``.
    """
    from voicecore.runtime.loop import run

    if profile is not None:
        profile.parent.mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile() if profile is not None else None
    if profiler is not None:
        profiler.enable()
    lags: list[tuple[float, float]] | None = [] if loop_lag is not None else None
    try:
        run(_serve_until_signalled(port, delays, max_calls, out, lags))
    finally:
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        if loop_lag is not None:
            loop_lag.parent.mkdir(parents=True, exist_ok=True)
            loop_lag.write_text(json.dumps(lags), encoding="utf-8")
