"""The fake Cartesia server is faithful to the official ``cartesia`` SDK.

Two checks. The SDK's own async WebSocket client (``tts.websocket_connect()`` and its context
helper), pointed at the fake by its documented ``websocket_base_url`` option, synthesizes
through it and reads every reply as the SDK's typed events. And every message the fake sent
CartesiaTTS, and every message CartesiaTTS sent, validates against the SDK's models of the
WebSocket protocol (``WebsocketResponse`` types, ``GenerationRequest``, ``CancelContextRequest``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pydantic
import pytest

from voicecore.errors import ProviderStreamError
from voicecore.fakes.cartesia import FakeCartesia, audio_for, error_message
from voicecore.providers.base import MULAW_8K
from voicecore.providers.cartesia import CartesiaTTS
from voicecore.sansio.cartesia import output_format

cartesia = pytest.importorskip(
    "cartesia", reason="the official SDK is a test-only dependency (the test extra)"
)
from cartesia import AsyncCartesia  # noqa: E402
from cartesia.types import websocket_response as responses  # noqa: E402
from cartesia.types.generation_request import GenerationRequest  # noqa: E402
from cartesia.types.websocket_client_event import CancelContextRequest  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MULAW = output_format("mulaw", 8000)
RESPONSE_TYPES: dict[str, type[pydantic.BaseModel]] = {
    "chunk": responses.Chunk,
    "timestamps": responses.Timestamps,
    "flush_done": responses.FlushDone,
    "done": responses.Done,
    "error": responses.Error,
}


def test_the_sdk_websocket_client_synthesizes_through_the_fake() -> None:
    async def main() -> tuple[list[Any], FakeCartesia]:
        async with FakeCartesia() as server:
            client = AsyncCartesia(api_key="cartesia-key", websocket_base_url=server.ws_url)
            events: list[Any] = []
            async with client.tts.websocket_connect() as connection:
                context = connection.context(
                    model_id="sonic-3",
                    voice={"mode": "id", "id": "voice-1"},
                    output_format={"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000},
                    add_timestamps=True,
                )
                await context.push("Hello there. ", flush=True)
                await context.push("How are you?")
                await context.no_more_inputs()
                async with asyncio.timeout(10):
                    events = [event async for event in context.receive()]
            await client.close()
        return events, server

    events, server = asyncio.run(main())
    conn = server.connections[0]
    assert conn.headers["Authorization"] == "Bearer cartesia-key"
    assert conn.headers["cartesia-version"]  # the SDK's own version header
    kinds = [event.type for event in events]
    assert kinds[-1] == "done"
    assert "flush_done" in kinds
    assert "timestamps" in kinds
    audio = b"".join(event.audio for event in events if event.type == "chunk")
    assert audio == audio_for("Hello there. How are you?", MULAW)
    flushed = [event for event in events if event.type == "flush_done"]
    assert [event.flush_id for event in flushed] == [1]
    words = [w for event in events if event.type == "timestamps" for w in event.word_timestamps.words]
    assert words == ["Hello", "there.", "How", "are", "you?"]


def test_both_sides_of_cartesia_tts_validate_against_the_sdk_models() -> None:
    received: list[dict[str, Any]] = []

    async def main() -> FakeCartesia:
        async with FakeCartesia(error=error_message(400, "voice not found"), chunk_delay=0.01) as server:
            tts = CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=server.ws_url)
            stream = await tts.open(MULAW_8K)
            socket = stream._socket
            original = socket.protocol.receive_text

            def record(text: str) -> Any:  # keep every server message the client parses
                received.append(json.loads(text))
                return original(text)

            socket.protocol.receive_text = record  # type: ignore[method-assign]
            await stream.push_text("Hello.")
            with pytest.raises(ProviderStreamError, match="voice not found"):
                _ = [chunk async for chunk in stream]
            stream = await tts.open(MULAW_8K)
            await stream.push_text("Hello there.")
            await stream.end_input()
            _ = [chunk async for chunk in stream]
            cut = await tts.open(MULAW_8K)
            await cut.push_text("A sentence cut short by the caller.")
            await anext(cut)
            await cut.aclose()
            await asyncio.wait_for(server.cancelled.wait(), 5)
            await tts.aclose()
        return server

    server = asyncio.run(main())
    seen = set()
    for message in server.connections[0].messages:
        if message.get("cancel"):
            CancelContextRequest.model_validate(message)
            seen.add("cancel")
        else:
            GenerationRequest.model_validate(message)
            seen.add("request")
    assert seen == {"cancel", "request"}
    kinds = {message["type"] for message in received}
    assert kinds >= {"chunk", "timestamps", "flush_done", "done", "error"}
    for message in received:
        RESPONSE_TYPES[message["type"]].model_validate(message)
    with pytest.raises(pydantic.ValidationError):  # the models are strict enough to fail
        responses.Chunk.model_validate({"type": "chunk", "context_id": 3, "data": None})
