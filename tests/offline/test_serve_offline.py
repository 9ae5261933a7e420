"""The embedded default, end to end with no fakes: `serve` and `call` as real commands.

A caller question synthesized with espeak-ng goes through ``python -m voicecore call`` to
``python -m voicecore serve`` (built-in front-desk agent: PocketSphinx, the intent router,
eSpeak NG) on 127.0.0.1; the reply the caller heard is transcribed back with PocketSphinx.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from voicecore.audio import Resampler, ulaw_decode
from voicecore.providers.base import PCM16_16K

pytest.importorskip("pocketsphinx", reason="the offline agent needs the local extra")
pytest.importorskip("espeakng_loader", reason="the offline agent needs the local extra")
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng for the caller")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def agent_sentences() -> list[str]:
    """Everything the front-desk agent can say: its greeting and every intent's reply."""
    from voicecore.agent import load_agent
    from voicecore.agents import FRONT_DESK

    definition = load_agent(FRONT_DESK)
    replies = [intent.reply for intent in definition.intents if intent.reply]
    return [definition.config.turn.greeting or "", *replies]


def transcribe(wav: Path) -> str:
    """What PocketSphinx hears in a μ-law or PCM16 WAV, its vocabulary limited to the words the
    agent can say (all its replies, so it must still tell them apart)."""
    from voicecore.providers.pocketsphinx import PocketsphinxSTT

    with wave.open(str(wav)) as reader:
        rate, width, frames = (
            reader.getframerate(),
            reader.getsampwidth(),
            reader.readframes(reader.getnframes()),
        )
    pcm = ulaw_decode(frames) if width == 1 else frames
    resampler = Resampler(rate, 16000)
    pcm = resampler.process(pcm) + resampler.flush()

    async def run() -> str:
        stream = await PocketsphinxSTT(phrases=agent_sentences(), interim_every_ms=0).open(
            PCM16_16K, language="en"
        )
        finals: list[str] = []

        async def collect() -> None:
            async for update in stream:
                if update.final and update.text:
                    finals.append(update.text)

        collector = asyncio.create_task(collect())
        second = 32000
        for start in range(0, len(pcm), second):  # finalize once a second, like a VAD would
            await stream.push_audio(pcm[start : start + second])
            await stream.finalize()
        await asyncio.sleep(1.0)
        await stream.aclose()
        async with asyncio.timeout(30):
            await collector
        return " ".join(finals)

    return asyncio.run(run())


def test_a_question_is_answered_by_the_offline_agent_through_serve_and_call(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "VOICECORE_STT": "", "VOICECORE_LLM": "", "VOICECORE_TTS": ""}
    env = {k: v for k, v in env.items() if v or not k.startswith("VOICECORE_")}
    env.pop("OPENAI_BASE_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "voicecore", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = "".join(server.stdout.readline() for _ in range(10))
        assert "front-desk agent (offline)" in banner
        assert "pocketsphinx" in banner
        assert "espeak" in banner
        reply = tmp_path / "reply.wav"
        call = subprocess.run(
            [
                sys.executable, "-m", "voicecore", "call",
                "--url", f"ws://127.0.0.1:{port}/twilio/stream",
                "--say", "what time do you open",
                "--out", str(reply),
            ],
            env=env, capture_output=True, text=True, timeout=90, check=True,
        )  # fmt: skip
        assert "turn 1:" in call.stdout
        assert reply.stat().st_size > 10_000  # the greeting and the answer were heard
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=30)
    assert re.search(r"turn 1: \S+ request intent-opening_hours", log), log[-2000:]  # the matched intent
    heard = transcribe(reply).lower()
    assert {"open", "noon", "eleven"} & set(heard.split()), heard
