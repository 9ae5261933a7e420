"""The page for real: headless Chromium talks to the agent with a fake microphone.

Chromium's fake capture device plays a WAV of espeak-ng speech into ``getUserMedia``; the
page (opened with ``?autostart``) runs its AudioWorklets, streams the microphone over ``/ws``
and plays the agent's audio, acknowledging marks from its playback worklet. The test reads
the page's state and DOM over the Chrome DevTools protocol (a small client on aiohttp's
WebSocket) and asserts that the agent was heard and the transcript appeared.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.test_server import GREETING, fakes, needs_espeak, serving, until
from tests.transports.fake_browser import pcm_speech
from voicecore.runtime.loop import run

__all__ = ["fakes"]  # the providers named "test"

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium) to test the page"
)


class DevTools:
    """Just enough of the Chrome DevTools protocol: evaluate JavaScript in one page."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page."""
        ident = next(self._ids)
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        await self.ws.send_json({"id": ident, "method": "Runtime.evaluate", "params": params})
        async for message in self.ws:
            reply = json.loads(message.data)
            if reply.get("id") == ident:
                return reply["result"]["result"].get("value")
        raise ConnectionError("DevTools closed")


@contextlib.asynccontextmanager
async def chromium(url: str, microphone: Path, profile: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium on ``url`` with ``microphone`` as its fake capture device."""
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        "--autoplay-policy=no-user-gesture-required",
        url,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"
        await until(active.exists, within=30.0)
        await until(lambda: len(active.read_text().splitlines()) >= 2, within=5.0)
        port = active.read_text().splitlines()[0]
        async with aiohttp.ClientSession() as http:
            pages: list[dict[str, Any]] = []

            async def find_page() -> None:
                while not pages:
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                        pages.extend(p for p in await response.json() if p.get("type") == "page")
                    await asyncio.sleep(0.1)

            async with asyncio.timeout(20.0):
                await find_page()
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield DevTools(ws)
    finally:
        process.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def write_microphone(path: Path) -> None:
    """Two seconds of silence, the caller's words, then eight seconds of silence (16 kHz)."""
    silence = bytes(2 * 16000)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(silence * 2 + pcm_speech("tell me everything") + silence * 8)


@needs_chromium
@needs_espeak
def test_the_page_in_headless_chromium_hears_a_reply_and_shows_the_transcript(tmp_path: Path) -> None:
    microphone = tmp_path / "caller.wav"
    write_microphone(microphone)

    async def main() -> None:
        async with serving() as server:
            url = f"http://127.0.0.1:{server.port}/?autostart"
            async with chromium(url, microphone, tmp_path / "profile") as page:
                state: dict[str, Any] = {}

                async def page_state() -> None:
                    state.update(await page.evaluate("window.voicecore && window.voicecore.state()") or {})

                async def heard_a_reply() -> bool:
                    await page_state()
                    agent = [t for t in state.get("transcript", []) if t["role"] == "agent" and t["turn"]]
                    return bool(agent) and bool(state.get("turns"))

                async with asyncio.timeout(60.0):
                    while not await heard_a_reply():  # noqa: ASYNC110 (the page's state, polled)
                        await asyncio.sleep(0.2)
                assert state["status"].startswith("connected"), state["status"]
                assert state["audioBytes"] > 0
                assert state["marksPlayed"] >= 2  # acknowledged from the playback worklet
                assert state["playedMs"] > 0
                text = await page.evaluate("document.getElementById('transcript').innerText")
                assert GREETING in text
                assert "tell me everything" in text  # the caller's final transcript (the fake STT's script)
                assert "Sentence number 1 of a long answer." in text  # heard, so shown
                rows = await page.evaluate("document.querySelectorAll('#turns tr').length")
                assert rows >= 1
                session = next(iter(server.calls.values())).session
                assert not session.transport.protocol.problems  # type: ignore[attr-defined]

    run(main())
