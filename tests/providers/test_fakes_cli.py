"""``python -m voicecore.fakes`` serves all three fakes, and clients reach them at the printed URLs."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest

from voicecore.fakes.__main__ import serve
from voicecore.providers.base import MULAW_8K, TextDelta
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.openai import OpenAILLM


def test_the_fakes_serve_at_the_urls_they_print(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> tuple[str, bytes]:
        server = asyncio.create_task(serve("Hi from the fake.", "Hello there."))
        out = ""
        async with asyncio.timeout(5):
            while "Ctrl-C" not in out:
                await asyncio.sleep(0.01)
                out += capsys.readouterr().out
        urls = dict(re.findall(r"(\w+)\(.*?base_url='([^']+)'", out))
        llm = OpenAILLM(model="fake", base_url=urls["OpenAILLM"])
        stream = await llm.complete([{"role": "user", "content": "hi"}])
        text = "".join([c.text async for c in stream if isinstance(c, TextDelta)])
        await stream.aclose()
        stt = DeepgramSTT(base_url=urls["DeepgramSTT"])
        listening = await stt.open(MULAW_8K, language="en")
        await listening.aclose()
        tts = ElevenLabsTTS(voice_id="fake", base_url=urls["ElevenLabsTTS"])
        speaking = await tts.open(MULAW_8K)
        await speaking.push_text("Ok.")
        await speaking.end_input()
        audio = b"".join([c.audio async for c in speaking])
        await speaking.aclose()
        for provider in (llm, stt, tts):
            await provider.aclose()
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server  # the fakes shut down cleanly
        return text, audio

    text, audio = asyncio.run(main())
    assert text == "Hi from the fake."
    assert audio
