"""The fake ElevenLabs server is faithful to the official ``elevenlabs`` SDK.

Two checks. The SDK's own realtime client (``text_to_speech.convert_realtime``, which speaks
the single-context ``stream-input`` protocol) synthesizes through the fake; it always dials
``wss://`` (it rewrites the base URL's scheme), so the test points its computed WebSocket base
at the fake's plain ``ws://`` address, and nothing else is patched. The SDK has no client for
``multi-stream-input``, but it ships that protocol's message models: every message the fake
sends there, and every message ElevenLabsTTS sends, must validate against them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pydantic
import pytest

from voicecore.fakes.elevenlabs import FakeElevenLabs, audio_for
from voicecore.providers.base import MULAW_8K
from voicecore.providers.elevenlabs import ElevenLabsTTS

elevenlabs = pytest.importorskip(
    "elevenlabs", reason="the official SDK is a test-only dependency (the test extra)"
)
from elevenlabs.client import ElevenLabs  # noqa: E402

# The SDK's websockets calls may use deprecated APIs; those warnings are the SDK's.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_the_sdk_realtime_client_synthesizes_through_the_fake() -> None:
    async def main() -> tuple[bytes, FakeElevenLabs]:
        async with FakeElevenLabs() as server:
            client = ElevenLabs(base_url=server.http_url, api_key="xi-key")
            client.text_to_speech._ws_base_url = server.ws_url  # the SDK forces wss://

            def synthesize() -> bytes:
                chunks = client.text_to_speech.convert_realtime(
                    "voice-1",
                    text=iter(["Hello there. ", "How are you?"]),
                    model_id="eleven_flash_v2_5",
                    output_format="ulaw_8000",
                )
                return b"".join(chunks)

            audio = await asyncio.to_thread(synthesize)
        return audio, server

    audio, server = asyncio.run(main())
    conn = server.connections[0]
    assert conn.path == "/v1/text-to-speech/voice-1/stream-input"
    assert conn.query == {"model_id": "eleven_flash_v2_5", "output_format": "ulaw_8000"}
    assert conn.messages[0]["text"] == " "
    assert conn.messages[-1] == {"text": ""}
    spoken = "".join(m["text"] for m in conn.messages[1:])
    assert audio == audio_for(spoken, "ulaw_8000")


def test_multi_context_messages_validate_against_the_sdk_models() -> None:
    from elevenlabs.types import (
        AudioOutputMulti,
        CloseContext,
        CloseSocket,
        FinalOutputMulti,
        InitializeConnectionMulti,
        KeepContextAlive,
        SendTextMulti,
    )

    received: list[dict[str, Any]] = []

    async def main() -> FakeElevenLabs:
        async with FakeElevenLabs() as server:
            tts = ElevenLabsTTS(
                voice_id="v",
                api_key="xi-key",
                base_url=server.ws_url,
                keepalive_interval=0.05,
                voice_settings={"stability": 0.5, "similarity_boost": 0.8, "speed": 1.0},
                generation_config={"chunk_length_schedule": [50, 120]},
            )
            stream = await tts.open(MULAW_8K)
            await asyncio.wait_for(server.keepalive_received.wait(), 5)
            socket = stream._socket  # type: ignore[attr-defined]
            original = socket.protocol.receive_text

            def record(text: str) -> Any:  # keep every server message the client parses
                received.append(json.loads(text))
                return original(text)

            socket.protocol.receive_text = record
            await stream.push_text("Hello there.")
            await stream.end_input()
            _ = [chunk async for chunk in stream]
            await stream.aclose()
            await asyncio.wait_for(server.context_closed.wait(), 5)
            await tts.aclose()
        return server

    server = asyncio.run(main())
    models = {
        "init": InitializeConnectionMulti,
        "text": SendTextMulti,
        "keepalive": KeepContextAlive,
        "close_context": CloseContext,
        "close_socket": CloseSocket,
    }
    seen = set()
    for message in server.connections[0].messages:
        kind = (
            "close_socket"
            if "close_socket" in message
            else "close_context"
            if "close_context" in message
            else "init"
            if message.get("text") == " "
            else "keepalive"
            if message.get("text") == ""
            else "text"
        )
        seen.add(kind)
        models[kind].model_validate(message)
    assert seen == set(models)
    assert received, "the fake sent audio"
    for message in received:
        (FinalOutputMulti if message.get("isFinal") else AudioOutputMulti).model_validate(message)
    with pytest.raises(pydantic.ValidationError):  # the models are strict enough to fail
        AudioOutputMulti.model_validate({"audio": 3, "contextId": []})
