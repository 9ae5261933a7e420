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

import pytest

from voicecore.cli import build_parser
from voicecore.errors import ProviderStatusError
from voicecore.fakes import command
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import audio_for
from voicecore.fakes.openai import FakeChatServer
from voicecore.providers.base import MULAW_8K, TextDelta
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.openai import OpenAILLM
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
"""
ACCOUNT, CALL = "AC00000000000000000000000000000001", "CA00000000000000000000000000000002"


def free_port_base(count: int = 4) -> int:
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


async def use_the_fakes(urls: dict[str, str]) -> dict[str, Any]:
    """Talk to each fake with voicecore's real adapter; what each one answered."""
    seen: dict[str, Any] = {}
    llm = OpenAILLM(model="fake", base_url=urls["openai"])
    started = time.perf_counter()
    stream = await llm.complete([{"role": "user", "content": "a table please"}])
    seen["reply"] = "".join([c.text async for c in stream if isinstance(c, TextDelta)])
    seen["reply_seconds"] = time.perf_counter() - started
    await stream.aclose()
    with pytest.raises(ProviderStatusError) as failure:  # the scripted fault
        await llm.complete([{"role": "user", "content": "again"}])
    seen["fault"] = failure.value.status
    await llm.aclose()

    stt = DeepgramSTT(api_key="any", base_url=urls["deepgram"])
    listening = await stt.open(MULAW_8K, language="en")
    started = time.perf_counter()
    await listening.push_audio(b"\xff" * 1600)  # the first utterance's 1600 bytes
    async with asyncio.timeout(10):
        async for update in listening:
            if update.final:
                seen["heard"] = update.text
                seen["final_seconds"] = time.perf_counter() - started
                break
    await listening.aclose()
    await stt.aclose()

    tts = ElevenLabsTTS(voice_id="fake", api_key="any", base_url=urls["elevenlabs"])
    speaking = await tts.open(MULAW_8K)
    started = time.perf_counter()
    await speaking.push_text("Ok.")
    await speaking.end_input()
    chunks = []
    async for chunk in speaking:
        if not chunks:
            seen["audio_seconds"] = time.perf_counter() - started
        chunks.append(chunk.audio)
    seen["audio"] = b"".join(chunks)
    await speaking.aclose()
    await tts.aclose()

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
        }
        assert (
            f'llm = {{ name = "openai-compatible", model = "fake", base_url = "{urls["openai"]}" }}'
            in "".join(lines)
        )
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
    assert seen["final_seconds"] >= 0.2
    assert seen["audio_seconds"] >= 0.2
    assert seen["fault"] == 503
    assert seen["heard"] == "I'd like a table for two."
    assert seen["audio"] == audio_for("Ok. ", "ulaw_8000")  # the adapter ends a text with a space
    assert seen["wrong_token"] == 401


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cartesia]\n", r"unknown fake\(s\) cartesia"),
        ('[openai]\nreplies = [{ txt = "x" }]\n', r"openai\.replies\[0\]: unknown field\(s\) txt"),
        ("[openai]\nfirst_token_delay = -1\n", r"openai\.first_token_delay: .*>= 0"),
        ("[deepgram]\nutterances = [{ text = 3 }]\n", r"deepgram\.utterances\[0\]\.text: Expected `str`"),
        ("[twilio]\nstatus = 200\n", r"twilio\.status: .*>= 400"),
        ("[elevenlabs]\nvoice = 1\n", r"elevenlabs: .*unknown field `voice`"),
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
