"""The fake Realtime server is faithful: the official ``openai`` SDK talks to it as to the real API.

The SDK is code we did not write. Its client events (``session.update``, ``append``,
``conversation.item.create``, ``truncate``, ``response.create``/``cancel``) are accepted by the
fake, and every server event the fake sends parses into the SDK's typed GA model for its
``type`` and also validates strictly against it (pydantic, required fields and literals
checked), so our Realtime adapter's tests run against the real protocol.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from voicecore.fakes import FakeRealtime, Heard, RealtimeReply

openai = pytest.importorskip("openai", reason="the official SDK is a test-only dependency (the test extra)")
pytest.importorskip("websockets", reason="the SDK's realtime client needs websockets")

from openai.types import realtime as rt  # noqa: E402 - after the importorskip
from openai.types.realtime.realtime_server_event import ConversationItemRetrieved  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

#: The SDK's GA class for each server event type the fake sends.
CLASSES: dict[str, type[Any]] = {
    "session.created": rt.SessionCreatedEvent,
    "session.updated": rt.SessionUpdatedEvent,
    "error": rt.RealtimeErrorEvent,
    "input_audio_buffer.speech_started": rt.InputAudioBufferSpeechStartedEvent,
    "input_audio_buffer.speech_stopped": rt.InputAudioBufferSpeechStoppedEvent,
    "input_audio_buffer.committed": rt.InputAudioBufferCommittedEvent,
    "input_audio_buffer.cleared": rt.InputAudioBufferClearedEvent,
    "conversation.item.added": rt.ConversationItemAdded,
    "conversation.item.done": rt.ConversationItemDone,
    "conversation.item.deleted": rt.ConversationItemDeletedEvent,
    "conversation.item.retrieved": ConversationItemRetrieved,
    "conversation.item.truncated": rt.ConversationItemTruncatedEvent,
    "conversation.item.input_audio_transcription.completed": (
        rt.ConversationItemInputAudioTranscriptionCompletedEvent
    ),
    "response.created": rt.ResponseCreatedEvent,
    "response.done": rt.ResponseDoneEvent,
    "response.output_item.added": rt.ResponseOutputItemAddedEvent,
    "response.output_item.done": rt.ResponseOutputItemDoneEvent,
    "response.content_part.added": rt.ResponseContentPartAddedEvent,
    "response.content_part.done": rt.ResponseContentPartDoneEvent,
    "response.output_audio.delta": rt.ResponseAudioDeltaEvent,
    "response.output_audio.done": rt.ResponseAudioDoneEvent,
    "response.output_audio_transcript.delta": rt.ResponseAudioTranscriptDeltaEvent,
    "response.output_audio_transcript.done": rt.ResponseAudioTranscriptDoneEvent,
    "response.output_text.delta": rt.ResponseTextDeltaEvent,
    "response.output_text.done": rt.ResponseTextDoneEvent,
    "response.function_call_arguments.delta": rt.ResponseFunctionCallArgumentsDeltaEvent,
    "response.function_call_arguments.done": rt.ResponseFunctionCallArgumentsDoneEvent,
}
SESSION = {
    "type": "realtime",
    "instructions": "Be brief.",
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "gpt-4o-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        },
        "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
    },
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
}


def client(server: FakeRealtime) -> Any:
    return openai.AsyncOpenAI(api_key="sk-test", websocket_base_url=server.ws_url + "/v1", max_retries=0)


class Events:
    """Reads events through the SDK and checks each against its GA model, strictly."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.seen: list[Any] = []

    async def next(self) -> Any:
        raw = await asyncio.wait_for(self.connection.recv_bytes(), 5)
        event = self.connection.parse_event(raw)
        cls = CLASSES[event.type]
        assert type(event) is cls, (event.type, type(event))
        TypeAdapter(cls).validate_json(raw, strict=False)  # required fields, types and literals
        if event.type in ("session.created", "session.updated"):
            TypeAdapter(rt.RealtimeSessionCreateResponse).validate_python(event.session.model_dump())
        self.seen.append(event)
        return event

    async def until(self, type: str) -> list[Any]:
        events = [await self.next()]
        while events[-1].type != type:
            events.append(await self.next())
        return events


def audio(ms: int) -> str:
    return base64.b64encode(b"\0" * 48 * ms).decode()


def test_the_sdk_builds_the_realtime_url_and_parses_every_event_of_a_spoken_turn() -> None:
    async def main() -> None:
        heard = [Heard("Weather in Paris?", audio_ms=300, gap_ms=100)]
        replies = [RealtimeReply(tool_calls=[("get_weather", '{"city": "Paris"}')]), "Sunny, twenty degrees."]
        async with FakeRealtime(heard, replies, chunk_ms=100) as server:
            async with client(server).realtime.connect(model="gpt-realtime") as connection:
                events = Events(connection)
                created = await events.next()
                assert isinstance(created, rt.SessionCreatedEvent)
                await connection.session.update(session=SESSION)  # type: ignore[arg-type]
                updated = await events.next()
                assert isinstance(updated, rt.SessionUpdatedEvent)
                assert updated.session.audio.output.format.type == "audio/pcmu"
                for _ in range(5):
                    await connection.input_audio_buffer.append(audio=audio(100))
                turn = await events.until("response.done")
                call = next(e for e in turn if isinstance(e, rt.ResponseFunctionCallArgumentsDoneEvent))
                assert (call.name, call.arguments) == ("get_weather", '{"city": "Paris"}')
                await connection.conversation.item.create(
                    item={"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 20}'}
                )
                await connection.response.create()
                answer = await events.until("response.done")
            conn = server.connections[0]
        assert conn.query == {"model": "gpt-realtime"}
        assert conn.headers["Authorization"] == "Bearer sk-test"
        assert conn.session["tools"][0]["name"] == "get_weather"
        assert [type(e).__name__ for e in turn[:6]] == [
            "InputAudioBufferSpeechStartedEvent",
            "InputAudioBufferSpeechStoppedEvent",
            "InputAudioBufferCommittedEvent",
            "ConversationItemAdded",
            "ConversationItemDone",
            "ConversationItemInputAudioTranscriptionCompletedEvent",
        ]
        assert (turn[0].audio_start_ms, turn[1].audio_end_ms) == (100, 400)
        assert turn[5].transcript == "Weather in Paris?"
        deltas = [e for e in answer if isinstance(e, rt.ResponseAudioDeltaEvent)]
        assert sum(len(base64.b64decode(e.delta)) for e in deltas) == len("Sunny, twenty degrees.") * 10 * 8
        done = answer[-1]
        assert isinstance(done, rt.ResponseDoneEvent)
        assert done.response.status == "completed"
        assert done.response.usage is not None
        assert done.response.usage.output_tokens > 0
        assert done.response.output is not None
        message = done.response.output[0]
        assert isinstance(message, rt.RealtimeConversationItemAssistantMessage)
        assert message.content[0].transcript == "Sunny, twenty degrees."

    asyncio.run(main())


def test_the_sdk_cancels_truncates_and_reads_errors() -> None:
    slow = RealtimeReply("one two three four five six", chunk_delay=0.2)

    async def main() -> None:
        async with FakeRealtime(replies=["Hello there.", slow]) as server:
            async with client(server).realtime.connect(model="gpt-realtime") as connection:
                events = Events(connection)
                await events.next()
                await connection.session.update(
                    session={"type": "realtime", "audio": {"input": {"turn_detection": None}}}
                )
                await events.next()
                await connection.conversation.item.create(
                    item={
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "Hi"}],
                    }
                )
                await events.until("conversation.item.done")
                await connection.response.create(response={"instructions": "Greet the caller."})
                first = await events.until("response.done")
                item_id = first[-1].response.output[0].id
                await connection.conversation.item.truncate(item_id=item_id, content_index=0, audio_end_ms=60)
                truncated = await events.next()
                await connection.conversation.item.truncate(
                    item_id=item_id, content_index=0, audio_end_ms=9000, event_id="evt_late"
                )
                refused = await events.next()
                await connection.conversation.item.retrieve(item_id=item_id)
                retrieved = await events.next()
                await connection.response.create(response={"output_modalities": ["audio"]})
                await events.until("response.output_audio.delta")
                await connection.response.cancel()
                cancelled = (await events.until("response.done"))[-1]
                await connection.input_audio_buffer.commit()
                empty = await events.next()
                await connection.conversation.item.delete(item_id=item_id)
                deleted = await events.next()
            assert (
                server.connections[0].events("response.create")[0]["response"]["instructions"]
                == "Greet the caller."
            )
        assert isinstance(truncated, rt.ConversationItemTruncatedEvent)
        assert truncated.audio_end_ms == 60
        assert isinstance(refused, rt.RealtimeErrorEvent)
        assert (refused.error.param, refused.error.event_id) == ("audio_end_ms", "evt_late")
        assert isinstance(retrieved, ConversationItemRetrieved)
        assert retrieved.item.content[0].transcript == "Hello"
        assert cancelled.response.status == "cancelled"
        assert cancelled.response.status_details.reason == "client_cancelled"
        assert isinstance(empty, rt.RealtimeErrorEvent)
        assert empty.error.code == "input_audio_buffer_commit_empty"
        assert isinstance(deleted, rt.ConversationItemDeletedEvent)

    asyncio.run(main())


def test_the_sdk_refuses_a_wrong_key_at_the_handshake() -> None:
    async def main() -> None:
        async with FakeRealtime() as server:
            wrong = openai.AsyncOpenAI(api_key="sk-wrong", websocket_base_url=server.ws_url + "/v1")
            with pytest.raises(Exception, match="401"):
                async with wrong.realtime.connect(model="gpt-realtime"):
                    pass
        assert server.connections == []

    asyncio.run(main())


def test_the_sdk_reconnects_after_the_dropped_connection_and_the_conversation_goes_on() -> None:
    async def main() -> None:
        heard = [Heard("First.", audio_ms=100), Heard("Second.", audio_ms=100)]
        close_codes: list[int] = []

        def on_reconnecting(event: Any) -> None:
            close_codes.append(event.close_code)

        async with FakeRealtime(heard, ["One.", "Two."], drop_after_responses=1) as server:
            manager = client(server).realtime.connect(
                model="gpt-realtime", on_reconnecting=on_reconnecting, initial_delay=0.01
            )
            async with manager as connection:
                stream = aiter(connection)  # the SDK reconnects while iterating
                seen = [await anext(stream)]
                await connection.input_audio_buffer.append(audio=audio(100))
                while seen[-1].type != "response.done":
                    seen.append(await asyncio.wait_for(anext(stream), 5))
                seen.append(await asyncio.wait_for(anext(stream), 5))  # the new connection's session.created
                await connection.input_audio_buffer.append(audio=audio(100))
                while seen[-1].type != "response.done":
                    seen.append(await asyncio.wait_for(anext(stream), 5))
        assert close_codes == [1011]
        assert len(server.connections) == 2
        assert [type(e).__name__ for e in seen].count("SessionCreatedEvent") == 2
        done = [e for e in seen if isinstance(e, rt.ResponseDoneEvent)]
        assert [d.response.output[0].content[0].transcript for d in done] == ["One.", "Two."]

    asyncio.run(main())
