"""The fake Smallest AI Lightning server is faithful to the official ``smallestai`` SDK.

The SDK's own async Live TTS WebSocket client (``waves.tts.connect()``), pointed at the fake
through its documented ``environment`` (``waves_ws``), sends ``TtsRequestMessage`` requests
and reads every reply as a ``TtsResponseMessage``. And every request SmallestTTS sends, and
every message the fake sent it, validates against the SDK's ``TtsRequestMessage`` and
``TtsResponseMessage`` models.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pydantic
import pytest

from voicecore.fakes.smallest import FakeSmallestTTS, audio_for
from voicecore.providers.base import MULAW_8K
from voicecore.providers.smallest import SmallestTTS

smallestai = pytest.importorskip("smallestai", reason="the official SDK is a test-only dependency")
from smallestai import AsyncSmallestAI  # noqa: E402
from smallestai.environment import SmallestAIEnvironment  # noqa: E402
from smallestai.waves.tts.types import TtsRequestMessage, TtsResponseMessage  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_the_sdk_live_tts_client_synthesizes_through_the_fake() -> None:
    async def main() -> tuple[list[Any], FakeSmallestTTS]:
        async with FakeSmallestTTS() as server:
            environment = SmallestAIEnvironment(
                atoms=server.http_url, waves=server.http_url, waves_ws=server.ws_url, payment=server.http_url
            )
            client = AsyncSmallestAI(api_key="smallest-key", environment=environment)
            responses: list[Any] = []
            async with client.waves.tts.connect() as socket:
                await socket.synthesize_streaming_tts(
                    TtsRequestMessage(
                        voice_id="magnus",
                        text="Hello there.",
                        sample_rate=8000,
                        request_id="sdk-1",
                        word_timestamps=True,
                        complete_backoff_ms=0,
                        output_format="ulaw",  # not in the SDK's model; it allows extra fields
                    )
                )
                async with asyncio.timeout(10):
                    while not responses or responses[-1].status != "complete":
                        responses.append(await socket.recv())
        return responses, server

    responses, server = asyncio.run(main())
    assert server.connections[0].headers["Authorization"] == "Bearer smallest-key"
    assert all(isinstance(response, TtsResponseMessage) for response in responses)
    assert {response.external_request_id for response in responses} == {"sdk-1"}
    audio = b"".join(base64.b64decode(r.data.audio) for r in responses if r.status == "chunk")
    assert audio == audio_for("Hello there.", "ulaw", 8000)
    words = [(r.data.word, r.data.end) for r in responses if r.status == "word_timestamp"]
    assert words == [("Hello", 0.05), ("there.", 0.12)]


def test_both_sides_of_smallest_tts_validate_against_the_sdk_models() -> None:
    received: list[dict[str, Any]] = []

    async def main() -> FakeSmallestTTS:
        async with FakeSmallestTTS() as server:
            tts = SmallestTTS(api_key="smallest-key", base_url=server.ws_url, speed=1.1)
            stream = await tts.open(MULAW_8K)
            original = stream._socket.protocol.receive_text

            def record(text: str) -> Any:  # keep every server message the client parses
                received.append(json.loads(text))
                return original(text)

            stream._socket.protocol.receive_text = record  # type: ignore[method-assign]
            await stream.push_text("Hello there.")
            await stream.end_input()
            _ = [chunk async for chunk in stream]
            await tts.aclose()
        return server

    server = asyncio.run(main())
    [message] = server.connections[0].messages
    request = TtsRequestMessage.model_validate(message)
    assert (request.voice_id, request.text, request.sample_rate) == ("avery", "Hello there.", 8000)
    assert (request.continue_, request.flush, request.request_id) == (False, True, message["request_id"])
    assert request.model == "lightning_v3.1"
    assert request.word_timestamps is True
    assert {message["status"] for message in received} == {"chunk", "word_timestamp", "complete"}
    for message in received:
        TtsResponseMessage.model_validate(message)
    with pytest.raises(pydantic.ValidationError):  # the models are strict enough to fail
        TtsRequestMessage.model_validate({"text": 3})
    with pytest.raises(pydantic.ValidationError):
        TtsResponseMessage.model_validate({"status": "chunk", "data": {"audio": 3}})
