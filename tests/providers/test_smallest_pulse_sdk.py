"""The fake Pulse server is faithful: the official ``smallestai`` SDK's live STT client drives it.

The SDK (its typed ``stream_speech_to_text`` helper over ``waves.speech_to_text.stream``) is
pointed at the fake through its ``environment``; it sends audio and its own finalize /
close_stream messages, and every transcription or error message the fake sends must validate
against the SDK's models. The SDK has no models for ``speech_started`` / ``speech_ended``
(it parses them leniently as transcription events), so those are checked against the
documented shape only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.providers.streams import drain
from voicecore.fakes.smallest_pulse import FakePulse
from voicecore.sansio.smallest_pulse import CLOSE_STREAM, FINALIZE

smallestai = pytest.importorskip("smallestai", reason="the official SDK is a test-only dependency")
from smallestai.environment import SmallestAIEnvironment  # noqa: E402
from smallestai.waves.helpers.streaming_stt import stream_speech_to_text  # noqa: E402
from smallestai.waves.speech_to_text.types import (  # noqa: E402
    CloseStream,
    FinalizeSignal,
    TranscriptionErrorEvent,
    TranscriptionEvent,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def client(server: FakePulse, api_key: str = "sm-key") -> Any:
    environment = SmallestAIEnvironment(
        atoms=server.http_url, waves=server.http_url, waves_ws=server.ws_url, payment=server.http_url
    )
    return smallestai.AsyncSmallestAI(api_key=api_key, environment=environment)


def test_the_sdk_streams_to_the_fake_and_every_message_validates() -> None:
    async def main() -> tuple[list[Any], list[dict[str, Any]], FakePulse]:
        async with FakePulse(["Hello there.", "Book a table."]) as server:
            async with stream_speech_to_text(
                client(server),
                language="en",
                sample_rate=8000,
                encoding="mulaw",
                vad_events=True,
                word_timestamps=True,
            ) as socket:
                for _ in range(10):
                    await socket.send_audio_chunk_out(b"\xff" * 160)
                await socket.send_audio_chunk_out(b"\xff" * 320)
                await socket.send_finalize_signal(FinalizeSignal(type="finalize"))
                await socket.send_close_stream(CloseStream(type="close_stream"))
                raw = await drain(socket)
            parsed: list[Any] = []
            async with stream_speech_to_text(client(server), language="en", sample_rate=16000) as socket:
                await socket.send_audio_chunk_out(b"\0" * 3200)
                await socket.send_close_stream(CloseStream(type="close_stream"))
                async for message in socket:  # the SDK's own parsing, to the close
                    parsed.append(message)
        return parsed, raw, server

    parsed, raw, server = asyncio.run(main())
    transcripts = [m for m in raw if m["type"] == "transcription"]
    for message in transcripts:
        event = TranscriptionEvent.model_validate(message)
        assert event.transcript == event.transcription
    assert [(m["transcript"], m["is_final"], m["from_finalize"], m["is_last"]) for m in transcripts] == [
        ("Hello", False, False, False),
        ("Hello there.", True, False, False),
        ("Book a table.", True, True, False),  # a fifth of it heard: the finalize flushed it
        ("", True, False, True),  # close_stream: the last one, then the close
    ]
    vad = [(m["type"], m["timestamp"]) for m in raw if m["type"].startswith("speech_")]
    assert [kind for kind, _ in vad] == ["speech_started", "speech_ended"] * 2
    assert all(isinstance(m["session_id"], str) for m in raw)
    conn = server.connections[0]
    assert conn.controls == [json.loads(FINALIZE), json.loads(CLOSE_STREAM)], "what voicecore sends too"
    assert (conn.query["model"], conn.query["vad_events"]) == ("pulse", "true")
    assert conn.headers["Authorization"] == "Bearer sm-key"
    assert [type(m).__name__ for m in parsed] == ["TranscriptionEvent"]
    assert parsed[0].is_last


def test_the_error_message_validates_and_refusals_are_http_errors() -> None:
    async def main() -> list[dict[str, Any]]:
        async with FakePulse(["Hello."], close_after_bytes=160, error_message="Unsupported audio") as server:
            for api_key, model, status in (("wrong", "pulse", 401), ("sm-key", "pulse-pro", 400)):
                with pytest.raises(smallestai.core.api_error.ApiError) as caught:
                    async with stream_speech_to_text(client(server, api_key), language="en", model=model):
                        pass
                assert caught.value.status_code == status
            async with stream_speech_to_text(client(server), language="en") as socket:
                await socket.send_audio_chunk_out(b"\0" * 320)
                return await drain(socket)

    [message] = asyncio.run(main())
    event = TranscriptionErrorEvent.model_validate(message)
    assert (event.type, event.status, event.message) == ("error", "error", "Unsupported audio")
