"""FailoverTTS over two real ElevenLabsTTS clients and fake servers: a reply survives the first one."""

from __future__ import annotations

import asyncio
import socket

import pytest

from voicecore.errors import ConfigError, ProviderStreamError
from voicecore.fakes.elevenlabs import FakeElevenLabs, audio_for
from voicecore.providers.base import MULAW_8K, PCM16_16K, TTS, AudioFormat
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.failover import FailoverTTS
from voicecore.testing import FakeTTS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def speak(tts: FailoverTTS, *texts: str, end: bool = True) -> tuple[bytes, str | None]:
    stream = await tts.open(MULAW_8K)
    try:
        for text in texts:
            await stream.push_text(text)
        if end:
            await stream.end_input()
        audio = b"".join([chunk.audio async for chunk in stream])
    finally:
        await stream.aclose()
    return audio, stream.provider  # type: ignore[attr-defined]


def eleven(url: str, name: str, **kwargs: object) -> ElevenLabsTTS:
    return ElevenLabsTTS(voice_id="v", api_key="xi-key", base_url=url, name=name, **kwargs)  # type: ignore[arg-type]


def test_a_stalled_primary_is_replaced_and_the_backup_gets_every_text() -> None:
    async def main() -> tuple[bytes, str | None, FakeElevenLabs]:
        async with FakeElevenLabs(stall=True) as one, FakeElevenLabs(chunk_chars=100) as two:
            providers = [eleven(one.ws_url, "primary"), eleven(two.ws_url, "backup")]
            tts = FailoverTTS(providers, first_audio_timeout=0.3)
            assert isinstance(tts, TTS)
            audio, provider = await speak(tts, "First sentence.", "Second one.")
            for p in providers:
                await p.aclose()
        return audio, provider, two

    audio, provider, backup = asyncio.run(main())
    assert provider == "backup"
    assert audio == audio_for("First sentence. ", "ulaw_8000") + audio_for("Second one. ", "ulaw_8000")
    texts = [m["text"] for m in backup.connections[0].messages if m.get("text", "").strip()]
    assert texts == ["First sentence. ", "Second one. "]


def test_an_unreachable_primary_is_skipped_at_open_and_then_for_its_cooldown() -> None:
    async def main() -> list[str | None]:
        async with FakeElevenLabs() as two:
            providers = [eleven(f"ws://127.0.0.1:{free_port()}", "primary"), eleven(two.ws_url, "backup")]
            tts = FailoverTTS(providers, cooldown=60)
            used = [(await speak(tts, "Hi."))[1], (await speak(tts, "Again."))[1]]
            for p in providers:
                await p.aclose()
        return used

    assert asyncio.run(main()) == ["backup", "backup"]


def test_a_final_error_is_not_hidden() -> None:
    async def main() -> None:
        async with FakeElevenLabs(api_key="other") as one, FakeElevenLabs() as two:
            providers = [eleven(one.ws_url, "primary"), eleven(two.ws_url, "backup")]
            with pytest.raises(ProviderStreamError, match="Invalid API key"):
                await speak(FailoverTTS(providers), "Hello.")
            assert two.connections == []
            for p in providers:
                await p.aclose()

    asyncio.run(main())


def test_no_deadline_runs_before_the_first_text() -> None:
    async def main() -> tuple[bytes, str | None]:
        async with FakeElevenLabs() as one, FakeElevenLabs() as two:
            providers = [eleven(one.ws_url, "primary"), eleven(two.ws_url, "backup")]
            tts = FailoverTTS(providers, first_audio_timeout=0.1)
            stream = await tts.open(MULAW_8K)
            first = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.25)  # the reply is still thinking: no text, so no failover
            await stream.push_text("Ready.")
            chunk = await first
            await stream.aclose()
            for p in providers:
                await p.aclose()
            return chunk.audio, stream.provider  # type: ignore[attr-defined]

    audio, provider = asyncio.run(main())
    assert provider == "primary"
    assert audio


def test_formats_must_be_shared() -> None:
    both = FailoverTTS([FakeTTS(formats=(PCM16_16K, MULAW_8K)), FakeTTS(formats=(MULAW_8K,))])
    assert both.output_formats() == (MULAW_8K,)
    with pytest.raises(ConfigError, match="share no output format"):
        FailoverTTS([FakeTTS(formats=(PCM16_16K,)), FakeTTS(formats=(AudioFormat("pcm16", 24000),))])
    with pytest.raises(ConfigError, match="first_audio_timeout"):
        FailoverTTS([FakeTTS()], first_audio_timeout=0)
