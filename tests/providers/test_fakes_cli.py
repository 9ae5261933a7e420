"""``python -m voicecore fakes`` serves a script on fixed ports; the real adapters get its content."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from voicecore.cli import build_parser
from voicecore.errors import ProviderStatusError
from voicecore.fakes import command
from voicecore.fakes.cartesia import audio_for as cartesia_audio
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import audio_for
from voicecore.fakes.openai import FakeChatServer
from voicecore.fakes.smallest import audio_for as smallest_audio
from voicecore.providers.anthropic import AnthropicLLM
from voicecore.providers.base import LLM, MULAW_8K, STT, TTS, TextDelta
from voicecore.providers.cartesia import CartesiaTTS
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.deepgram_flux import DeepgramFluxSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.openai import OpenAILLM
from voicecore.providers.smallest import SmallestTTS
from voicecore.providers.smallest_pulse import SmallestPulseSTT
from voicecore.sansio.cartesia import output_format as cartesia_format
from voicecore.transports.twilio_rest import TwilioCalls

SCRIPT = """
[deepgram]
utterances = ["I'd like a table for two.", { text = "At eight.", audio_bytes = 800 }]
final_delay = 0.2

[openai]
replies = ["Sure, for when?", { text = "unused", status = 503 }]
first_token_delay = 0.3
tokens_per_second = 50

[elevenlabs]
first_audio_delay = 0.2

[twilio]
auth_token = "tw-token"

[anthropic]
replies = ["Certainly, what time?", { text = "unused", status = 529 }]
first_token = 0.25

[cartesia]
first_audio_delay = 0.2

[smallest-tts]
first_audio_delay = 0.2

[smallest-stt]
utterances = ["Table for four."]

[openai-realtime]
replies = [{ tool_calls = [["book", '{"people": 2}']] }, "Booked for two."]
first_audio_delay = 0.2
"""
ACCOUNT, CALL = "AC00000000000000000000000000000001", "CA00000000000000000000000000000002"


def free_port_base(count: int = len(command.FAKES)) -> int:
    """A base port with ``count`` free ports from it (checked by binding them)."""
    for _ in range(50):
        base = random.randrange(20000, 60000)
        sockets = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")


async def hear(stt: STT, audio_bytes: int) -> tuple[str, float]:
    """What ``stt`` makes of ``audio_bytes`` of caller audio: its first final text, and how long it took."""
    listening = await stt.open(MULAW_8K, language="en")
    started = time.perf_counter()
    await listening.push_audio(b"\xff" * audio_bytes)
    text = ""
    async with asyncio.timeout(10):
        async for update in listening:
            if update.final:
                text = update.text
                break
    took = time.perf_counter() - started
    await listening.aclose()
    await stt.aclose()  # type: ignore[attr-defined]
    return text, took


async def speak(tts: TTS, text: str) -> tuple[bytes, float]:
    """The μ-law audio ``tts`` makes for ``text``, and how long its first chunk took."""
    speaking = await tts.open(MULAW_8K)
    started = time.perf_counter()
    await speaking.push_text(text)
    await speaking.end_input()
    chunks, first = [], 0.0
    async for chunk in speaking:
        if not chunks:
            first = time.perf_counter() - started
        chunks.append(chunk.audio)
    await speaking.aclose()
    await tts.aclose()  # type: ignore[attr-defined]
    return b"".join(chunks), first


async def reply(llm: LLM) -> tuple[str, float]:
    """The text of ``llm``'s reply to one question, and how long the whole reply took."""
    started = time.perf_counter()
    stream = await llm.complete([{"role": "user", "content": "a table please"}])
    text = "".join([c.text async for c in stream if isinstance(c, TextDelta)])
    took = time.perf_counter() - started
    await stream.aclose()
    return text, took


async def realtime_replies(url: str) -> tuple[list[str], float]:
    """What the Realtime fake at ``url`` answers two ``response.create``s (the function called, then
    the transcript), and how long the spoken one took to its first audio."""
    replies: list[str] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{url}/v1/realtime?model=gpt-realtime", headers={"Authorization": "Bearer any"}
        ) as ws,
    ):
        for _ in range(2):
            await ws.send_json({"type": "response.create"})
            started = time.perf_counter()
            took = 0.0
            while (event := await ws.receive_json(timeout=10))["type"] != "response.done":
                if event["type"] == "response.output_audio.delta" and not took:
                    took = time.perf_counter() - started
            item = event["response"]["output"][0]
            replies.append(item.get("name") or item["content"][0]["transcript"])
    return replies, took


async def use_the_fakes(urls: dict[str, str]) -> dict[str, Any]:
    """Talk to each fake with voicecore's real adapter; what each one answered."""
    seen: dict[str, Any] = {}
    llm = OpenAILLM(model="fake", base_url=urls["openai"])
    seen["reply"], seen["reply_seconds"] = await reply(llm)
    with pytest.raises(ProviderStatusError) as failure:  # the scripted fault
        await llm.complete([{"role": "user", "content": "again"}])
    seen["fault"] = failure.value.status
    await llm.aclose()

    claude = AnthropicLLM(api_key="any", base_url=urls["anthropic"])
    seen["claude"], seen["claude_seconds"] = await reply(claude)
    with pytest.raises(ProviderStatusError) as overloaded:
        await claude.complete([{"role": "user", "content": "again"}])
    seen["claude_fault"] = overloaded.value.status
    await claude.aclose()

    # The Deepgram fake's utterances are shared by its live and Flux endpoints, in order.
    seen["heard"], seen["final_seconds"] = await hear(
        DeepgramSTT(api_key="any", base_url=urls["deepgram"]), 1600
    )
    seen["flux"], _ = await hear(DeepgramFluxSTT(api_key="any", base_url=urls["deepgram"]), 800)
    seen["pulse"], _ = await hear(SmallestPulseSTT(api_key="any", base_url=urls["smallest-stt"]), 1600)

    voices: dict[str, TTS] = {
        "elevenlabs": ElevenLabsTTS(voice_id="fake", api_key="any", base_url=urls["elevenlabs"]),
        "cartesia": CartesiaTTS(voice_id="fake", api_key="any", base_url=urls["cartesia"]),
        "smallest-tts": SmallestTTS(voice_id="fake", api_key="any", base_url=urls["smallest-tts"]),
    }
    for name, tts in voices.items():
        seen[f"{name}_audio"], seen[f"{name}_seconds"] = await speak(tts, "Ok.")

    seen["realtime"], seen["realtime_seconds"] = await realtime_replies(urls["openai-realtime"])

    await TwilioCalls("tw-token", base_url=urls["twilio"]).hang_up(ACCOUNT, CALL)
    with pytest.raises(ProviderStatusError) as refused:
        await TwilioCalls("wrong-token", base_url=urls["twilio"]).hang_up(ACCOUNT, CALL)
    seen["wrong_token"] = refused.value.status
    return seen


@pytest.mark.parametrize(
    ("entry", "stop"),
    [(["voicecore", "fakes"], signal.SIGINT), (["voicecore.fakes"], signal.SIGTERM)],
    ids=["voicecore-fakes-sigint", "voicecore.fakes-sigterm"],
)
def test_the_fakes_command_serves_its_script_at_the_urls_it_prints(
    tmp_path: Path, entry: list[str], stop: signal.Signals
) -> None:
    script = tmp_path / "script.toml"
    script.write_text(SCRIPT)
    base = free_port_base()
    process = subprocess.Popen(
        [sys.executable, "-m", *entry, "--port-base", str(base), "--script", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert process.stdout is not None
        lines = []
        while not (line := process.stdout.readline()).startswith("ready"):
            assert line, f"the command exited early: {process.stderr.read() if process.stderr else ''}"
            lines.append(line)
        urls = {line.split()[0]: line.split()[1] for line in lines}
        assert urls == {
            "deepgram": f"ws://127.0.0.1:{base}",
            "openai": f"http://127.0.0.1:{base + 1}/v1",
            "elevenlabs": f"ws://127.0.0.1:{base + 2}",
            "twilio": f"http://127.0.0.1:{base + 3}",
            "anthropic": f"http://127.0.0.1:{base + 4}",
            "cartesia": f"ws://127.0.0.1:{base + 5}",
            "smallest-tts": f"ws://127.0.0.1:{base + 6}",
            "smallest-stt": f"ws://127.0.0.1:{base + 7}",
            "openai-realtime": f"ws://127.0.0.1:{base + 8}",
        }
        printed = "".join(lines)
        for line in (
            f'llm = {{ name = "openai-compatible", model = "fake", base_url = "{urls["openai"]}" }}',
            f'llm = {{ name = "anthropic", base_url = "{urls["anthropic"]}" }}',
            f'stt = {{ name = "deepgram", base_url = "{urls["deepgram"]}" }}, or name = "deepgram-flux"',
            f'tts = {{ name = "cartesia", base_url = "{urls["cartesia"]}" }}',
            f'tts = {{ name = "smallest", base_url = "{urls["smallest-tts"]}" }}',
            f'stt = {{ name = "smallest", base_url = "{urls["smallest-stt"]}" }}',
            f'llm = {{ name = "openai-realtime", base_url = "{urls["openai-realtime"]}" }}  (OPENAI_API_KEY',
        ):
            assert line in printed
        seen = asyncio.run(use_the_fakes(urls))
        process.send_signal(stop)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
    assert seen["reply"] == "Sure, for when?"
    # The scripted delays, as lower bounds only (an upper bound would be noise on a busy machine).
    assert seen["reply_seconds"] >= 0.3
    assert seen["claude_seconds"] >= 0.25
    assert seen["final_seconds"] >= 0.2
    for name in ("elevenlabs", "cartesia", "smallest-tts"):
        assert seen[f"{name}_seconds"] >= 0.2, name
    assert (seen["fault"], seen["claude_fault"]) == (503, 529)
    assert seen["claude"] == "Certainly, what time?"
    assert (seen["heard"], seen["flux"], seen["pulse"]) == (
        "I'd like a table for two.",
        "At eight.",
        "Table for four.",
    )
    # Each TTS fake's audio for the text its adapter sent (ElevenLabs and Cartesia add a space).
    assert seen["elevenlabs_audio"] == audio_for("Ok. ", "ulaw_8000")
    assert seen["cartesia_audio"] == cartesia_audio("Ok. ", cartesia_format("mulaw", 8000))
    assert seen["smallest-tts_audio"] == smallest_audio("Ok.", "ulaw", 8000)
    assert seen["wrong_token"] == 401
    assert seen["realtime"] == ["book", "Booked for two."]
    assert seen["realtime_seconds"] >= 0.2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[whisper]\n", r"unknown fake\(s\) whisper"),
        ("[cartesia]\nchunk_chars = 0\n", r"cartesia\.chunk_chars: .*>= 1"),
        ('[anthropic]\nreplies = [{ txt = "x" }]\n', r"anthropic\.replies\[0\]: unknown field\(s\) txt"),
        (
            "[smallest-stt]\nutterances = [{ text = 3 }]\n",
            r"smallest-stt\.utterances\[0\]\.text: Expected `str`",
        ),
        ('[openai]\nreplies = [{ txt = "x" }]\n', r"openai\.replies\[0\]: unknown field\(s\) txt"),
        ("[openai]\nfirst_token_delay = -1\n", r"openai\.first_token_delay: .*>= 0"),
        ("[deepgram]\nutterances = [{ text = 3 }]\n", r"deepgram\.utterances\[0\]\.text: Expected `str`"),
        ("[twilio]\nstatus = 200\n", r"twilio\.status: .*>= 400"),
        ("[elevenlabs]\nvoice = 1\n", r"elevenlabs: .*unknown field `voice`"),
        (
            '[openai-realtime]\nheard = [{ text = "x", ms = 3 }]\n',
            r"openai-realtime\.heard\[0\]: unknown field\(s\) ms",
        ),
        ("[openai-realtime]\nchunk_ms = 0\n", r"openai-realtime\.chunk_ms: .*>= 1"),
    ],
)
def test_a_bad_script_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    script = tmp_path / "script.toml"
    script.write_text(text)
    assert command.main(["--script", str(script)]) == command.EXIT_USAGE
    error = capsys.readouterr().err
    assert str(script) in error
    assert re.search(message, error), error


def test_a_json_script_sets_delays_per_section_and_per_reply(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    slow = {"text": ["Slow", " one."], "first_token_delay": 2, "drop_after": 1}
    sections = {
        "openai": {"replies": ["Hi.", slow], "first_token_delay": 0.5, "flavor": "vllm"},
        "deepgram": {"utterances": [{"text": "Yes.", "audio_bytes": 320}], "close_after_bytes": 640},
    }
    script.write_text(json.dumps(sections))
    servers = dict(command.build(script, [f for f in command.FAKES if f.name in ("openai", "deepgram")]))
    llm, stt = servers[command.FAKES[1]], servers[command.FAKES[0]]
    assert isinstance(llm, FakeChatServer)
    assert llm.flavor == "vllm"
    assert [(r.text, r.first_token_delay, r.drop_after) for r in llm.replies] == [
        ("Hi.", 0.5, None),
        (["Slow", " one."], 2.0, 1),
    ]
    assert isinstance(stt, FakeDeepgram)
    assert stt.utterances == [Utterance("Yes.", audio_bytes=320)]
    assert (stt.close_after_bytes, stt.close_with) == (640, (1011, "NET-0000"))


def test_a_taken_port_is_refused_with_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert command.main(["--port-base", str(port), "--only", "deepgram"]) == command.EXIT_USAGE
    assert "choose another --port-base" in capsys.readouterr().err


def test_the_main_command_line_has_the_fakes_subcommand() -> None:
    args = build_parser().parse_args(["fakes", "--port-base", "9000", "--only", "openai,twilio"])
    assert (args.port_base, args.only, args.script) == (9000, "openai,twilio", None)
    assert len({fake.offset for fake in command.FAKES}) == len(command.FAKES)  # stable, distinct ports
