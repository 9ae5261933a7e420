"""Per-turn latency of the offline stack: the demo agent with PocketSphinx, the router and eSpeak NG.

One call with the built-in front-desk agent (``voicecore/agents/front_desk.toml``) runs
through a real :class:`~voicecore.runtime.session.Session` over a loopback transport (real
time, 20 ms frames): the caller's questions are synthesized by eSpeak NG, recognized by
PocketSphinx restricted to the agent's phrases (grammar), answered by the intent router and
spoken by eSpeak NG. Nothing is faked but the caller.

Per turn, the session's own timeline (:class:`voicecore.events.TurnTimings`, seconds after
the VAD's end of speech): STT final, router answer (``llm_first_token``), TTS first audio
and first audio sent (the loopback caller starts hearing it then); ``first_audio_played`` is
the first mark's echo, i.e. the end of the reply's first sentence.

Run ``python -m benches.offline_turn [--rounds 2]`` (prints a Markdown table).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

from voicecore import events as ev
from voicecore.agent import load_agent
from voicecore.agents import FRONT_DESK
from voicecore.providers.base import PCM16_16K
from voicecore.providers.espeak import ESPEAK_FORMAT, EspeakTTS
from voicecore.providers.pocketsphinx import PocketsphinxSTT
from voicecore.providers.router import IntentRouterLLM
from voicecore.runtime.convert import AudioConverter
from voicecore.runtime.loop import run
from voicecore.runtime.session import Session
from voicecore.testing import LoopbackTransport

QUESTIONS = ("when are you open", "where are you located", "do you have vegetarian dishes")


class _Timings:
    """An observer keeping the per-turn timelines."""

    def __init__(self) -> None:
        self.turns: list[ev.TurnTimings] = []

    def on_event(self, event: object) -> None:
        if isinstance(event, ev.TurnTimings):
            self.turns.append(event)

    def close(self) -> None:
        pass


async def _spoken(text: str) -> bytes:
    stream = await EspeakTTS().open(ESPEAK_FORMAT)
    await stream.push_text(text)
    await stream.end_input()
    convert = AudioConverter(ESPEAK_FORMAT, PCM16_16K)
    pcm = b"".join([convert.convert(chunk.audio) async for chunk in stream]) + convert.flush()
    await stream.aclose()
    return pcm


async def call(questions: Sequence[str]) -> tuple[list[ev.TurnTimings], list[dict[str, Any]]]:
    """One call asking ``questions`` in turn; the timelines and the conversation."""
    agent = load_agent(FRONT_DESK)
    examples = [example for intent in agent.intents for example in intent.examples]
    stt = PocketsphinxSTT(phrases=examples, restrict="grammar")
    llm = IntentRouterLLM(agent.intents, threshold=agent.intent_threshold)
    config = dataclasses.replace(agent.config, turn=dataclasses.replace(agent.config.turn, greeting=None))
    transport = LoopbackTransport(PCM16_16K)
    timings = _Timings()
    session = Session(
        config, transport=transport, stt=stt, llm=llm, tts=EspeakTTS(language="en"), observers=[timings]
    )
    running = asyncio.get_running_loop().create_task(session.run())
    for question in questions:
        heard = len(transport.marks_played)
        transport.say(await _spoken(question))
        async with asyncio.timeout(60):
            # The caller listens to the whole reply: until no mark has come for 1.5 s.
            while len(transport.marks_played) == heard:  # noqa: ASYNC110 (the fake caller polls)
                await asyncio.sleep(0.02)
            while True:
                heard = len(transport.marks_played)
                await asyncio.sleep(1.5)
                if len(transport.marks_played) == heard:
                    break
    transport.hang_up_caller()
    await running
    await asyncio.sleep(0.1)  # the observers' dispatcher thread hands over the last timings
    return timings.turns, session.history.messages()


def main(argv: Sequence[str] | None = None) -> None:
    """Print the per-stage latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="calls, each asking every question")
    args = parser.parse_args(argv)
    turns: list[ev.TurnTimings] = []
    for _ in range(args.rounds):
        timings, messages = run(call(QUESTIONS))
        turns += timings
        for message in messages[1:]:
            print(f"  {message['role']}: {message.get('content')}")
    print(f"\n{len(turns)} turns; ms after the VAD's end of speech, median (max):\n")
    print("| stage | median | max |")
    print("|---|---|---|")
    for stage in ev.TurnTimings.STAGES:
        values = [v * 1000 for t in turns if (v := getattr(t, stage)) is not None]
        if values:
            print(f"| {stage} | {statistics.median(values):.0f} | {max(values):.0f} |")


if __name__ == "__main__":
    main()
