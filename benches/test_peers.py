"""Smoke test of the load generator's peer servers (``benches/peers/``): Pipecat's and voicecore's.

Each server runs as ``bench load --target`` finds it: its own process, started with the command
line the README gives. One call by voicecore's simulated Twilio caller hears the greeting, gets
an answer, talks over the next answer and hears it stop (a ``clear``, and less of the reply
played than was synthesized), then gets an answer to what it said; SIGTERM ends the server with
status 0. The same test for both is what makes their load figures comparable.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

import voicecore
from voicecore.caller import TwilioCaller, espeak
from voicecore.loadgen import REPLY, UTTERANCE, FakeDelays, trim_silence
from voicecore.runtime.loop import run

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng for caller speech")

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a server may take to import its framework and listen (slow on a loaded machine).
START_WITHIN = 120.0
#: μ-law bytes of the whole reply as the fake TTS synthesizes it (25 ms per character, 8 kHz).
REPLY_BYTES = round(len(REPLY) * 25 * 8)
PIPECAT_MISSING = (
    "pipecat-ai with FastAPI and uvicorn is not installed (pip install -r benches/requirements.txt)"
)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


PEERS = [
    pytest.param(
        ["benches.peers.pipecat_server", "--host", "127.0.0.1", "--port", "0"],
        id="pipecat",
        marks=pytest.mark.skipif(not _has("pipecat.transports.websocket.fastapi"), reason=PIPECAT_MISSING),
    ),
    pytest.param(["voicecore", "bench", "server", "--port", "0"], id="voicecore"),
]


@pytest.fixture(params=PEERS)
def peer_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Start a peer on a free port; yield its stream URL; SIGTERM must end it with status 0."""
    env = dict(os.environ)
    # The child imports voicecore from where this process did, and benches from the root.
    paths = [str(Path(voicecore.__file__).parent.parent), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    log = tmp_path / "peer.log"
    with log.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", *request.param],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    watchdog = threading.Timer(START_WITHIN, server.kill)
    watchdog.start()
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        watchdog.cancel()
        assert "listening on ws://127.0.0.1:" in line, f"no 'listening' line: {line!r}\n{log.read_text()}"
        yield line.split(" on ", 1)[1].strip()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, log.read_text()
    finally:
        watchdog.cancel()
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


async def until(condition: Callable[[], bool], within: float) -> None:
    """Poll ``condition`` every 10 ms; fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the caller's tasks update what it reads)
            await asyncio.sleep(0.01)


def test_a_call_is_greeted_answered_and_interrupted_by_the_caller(peer_url: str) -> None:
    speech = trim_silence(espeak(UTTERANCE))

    async def main() -> tuple[TwilioCaller, int]:
        async with TwilioCaller(peer_url) as call:
            await until(lambda: call.first_audio_at is not None, 30)  # the greeting
            await until(lambda: not call.playing and call.last_audio_at is not None, 10)
            assert set(call.played) - {0xFF, 0x7F}, "the greeting is silence"
            before = len(call.played)
            call.say(speech)
            await until(lambda: bool(call.turns) and call.turns[0].answered_at is not None, 15)
            await asyncio.sleep(0.2)  # into the answer, then talk over it
            clears = call.clears
            call.say(speech)
            await until(lambda: len(call.turns) == 2, 5)
            await until(lambda: call.clears > clears, 15)
            heard = len(call.played) - before  # the reply as played until the clear dropped the rest
            barge_in = call.turns[1]
            assert call.clear_times[-1] > barge_in.spoke_at
            await until(lambda: barge_in.answered_at is not None, 15)
            return call, heard

    call, heard = run(main())
    # A lower bound only (a loaded machine makes it longer): the answer waited for the endpointing
    # and every fake's delay, less the VAD's window and the caller's 20 ms frames.
    assert call.turns[0].latency is not None
    assert call.turns[0].latency >= FakeDelays().known - 0.06
    assert 0 < heard < 0.9 * REPLY_BYTES, (
        f"{heard} of {REPLY_BYTES} bytes of the reply played before the clear"
    )
    assert call.close_code is None  # the server never hung up on the caller


# voicecore's server skips bad messages and closes a stream without ``start`` after 10 s, which
# tests/test_server.py covers; the Pipecat peer closes it as soon as Pipecat cannot detect Twilio.
@pytest.mark.parametrize("peer_url", PEERS[:1], indirect=True)
def test_a_stream_that_is_not_twilios_is_closed_and_the_next_call_is_served(peer_url: str) -> None:
    async def main() -> tuple[int | None, float | None]:
        async with aiohttp.ClientSession() as http, http.ws_connect(peer_url) as ws:
            await ws.send_str('{"event": "hello"}')
            await ws.send_str("not json")
            async with asyncio.timeout(10):
                async for _ in ws:  # whatever it answers, it must end the stream
                    pass
            closed_with = ws.close_code
        async with TwilioCaller(peer_url) as call:
            await until(lambda: call.first_audio_at is not None, 30)
            return closed_with, call.first_audio_at

    closed_with, greeted = run(main())
    assert closed_with == 1008  # policy violation: closed on purpose, not by a crash (1011)
    assert greeted is not None
