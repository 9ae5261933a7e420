"""The fake Deepgram server is faithful: the official ``deepgram-sdk`` parses all it sends.

The SDK is pointed at the fake through its ``environment`` (no network); it sends audio and
its own Finalize / KeepAlive / CloseStream messages, and every message the fake answers with
must validate against the SDK's own models.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pydantic
import pytest

from voicecore.fakes.deepgram import FakeDeepgram
from voicecore.sansio.deepgram import CLOSE_STREAM, FINALIZE, KEEP_ALIVE

deepgram = pytest.importorskip(
    "deepgram", reason="the official SDK is a test-only dependency (the test extra)"
)
from deepgram.environment import DeepgramClientEnvironment  # noqa: E402
from deepgram.listen.v1.types import (  # noqa: E402
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

# The SDK still calls websockets' legacy API, which warns; the warnings are the SDK's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODELS = {
    "Results": ListenV1Results,
    "SpeechStarted": ListenV1SpeechStarted,
    "UtteranceEnd": ListenV1UtteranceEnd,
    "Metadata": ListenV1Metadata,
}


def client(server: FakeDeepgram, api_key: str = "dg-key") -> Any:
    environment = DeepgramClientEnvironment(
        base=server.http_url, production=server.ws_url, agent=server.ws_url, agent_rest=server.http_url
    )
    return deepgram.AsyncDeepgramClient(api_key=api_key, environment=environment)


def test_the_sdk_parses_every_message_and_sends_what_voicecore_sends() -> None:
    async def main() -> tuple[list[Any], FakeDeepgram]:
        async with FakeDeepgram(["Hello there.", "Book a table for two."]) as server:
            received: list[Any] = []
            async with client(server).listen.v1.connect(
                model="nova-3",
                encoding="mulaw",
                sample_rate=8000,
                interim_results="true",
                utterance_end_ms=1000,
                vad_events="true",
            ) as socket:
                await socket.send_keep_alive()
                for _ in range(10):
                    await socket.send_media(b"\xff" * 160)
                await socket.send_media(b"\xff" * 160)
                await socket.send_finalize()
                await socket.send_close_stream()
                async for message in socket:
                    received.append(message)
        return received, server

    received, server = asyncio.run(main())
    kinds = [type(m).__name__ for m in received]
    assert kinds == [
        "ListenV1SpeechStarted",
        "ListenV1Results",  # interim
        "ListenV1Results",  # final, speech_final
        "ListenV1UtteranceEnd",
        "ListenV1SpeechStarted",
        "ListenV1Results",  # from Finalize
        "ListenV1UtteranceEnd",
        "ListenV1Metadata",
    ]
    final = received[2]
    assert final.is_final
    assert final.speech_final
    assert final.channel.alternatives[0].transcript == "Hello there."
    assert final.channel.alternatives[0].words[1].punctuated_word == "there."
    assert received[5].from_finalize is True
    assert received[-1].request_id == server.request_id
    # The SDK's control messages are the ones voicecore sends.
    assert server.connections[0].controls == [json.loads(m) for m in (KEEP_ALIVE, FINALIZE, CLOSE_STREAM)]


def test_every_fake_message_validates_against_the_sdk_models() -> None:
    """Strict validation (not the SDK's lenient construct) of each message type the fake sends."""

    async def main() -> list[dict[str, Any]]:
        async with FakeDeepgram(["One two three."]) as server:
            messages: list[dict[str, Any]] = []
            async with client(server).listen.v1.connect(
                model="nova-3",
                encoding="mulaw",
                sample_rate=8000,
                interim_results="true",
                utterance_end_ms=1000,
                vad_events="true",
            ) as socket:
                await socket.send_media(b"\xff" * 1600)
                await socket.send_close_stream()
                while True:
                    try:
                        raw = await socket._websocket.recv()
                    except Exception:  # the socket closed after Metadata
                        break
                    messages.append(json.loads(raw))
        return messages

    messages = asyncio.run(main())
    assert {m["type"] for m in messages} == set(MODELS)
    for message in messages:
        MODELS[message["type"]].model_validate(message)
    with pytest.raises(pydantic.ValidationError):  # the check can fail: the models are not lenient
        ListenV1Results.model_validate({"type": "Results", "channel": {"alternatives": "none"}})


def test_the_sdk_sees_a_refused_key_as_401() -> None:
    async def main() -> None:
        async with FakeDeepgram() as server:
            with pytest.raises(deepgram.core.api_error.ApiError) as caught:
                async with client(server, api_key="wrong").listen.v1.connect(model="nova-3"):
                    pass
        assert caught.value.status_code == 401

    asyncio.run(main())
