"""The fake OpenAI Realtime server speaks the GA protocol over a real socket on 127.0.0.1."""

from __future__ import annotations

import array
import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from voicecore.audio import alaw_decode, ulaw_decode
from voicecore.fakes import FakeRealtime, Heard, RealtimeReply
from voicecore.fakes.openai_realtime import TONE_PEAK, speech_for

PCM = {"type": "audio/pcm", "rate": 24000}


class Client:
    """A plain aiohttp WebSocket client: sends client events, reads server events."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"type": type, **fields}))

    async def append(self, ms: int, bytes_per_ms: int = 48) -> None:
        """``ms`` of silence in the input format, as 20 ms appends."""
        for _ in range(ms // 20):
            await self.send(
                "input_audio_buffer.append", audio=base64.b64encode(b"\0" * 20 * bytes_per_ms).decode()
            )

    async def recv(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        event: dict[str, Any] = json.loads(message.data)
        assert event["event_id"].startswith("event_")
        self.seen.append(event)
        return event

    async def until(self, type: str) -> list[dict[str, Any]]:
        """The events up to and including the next one of ``type``."""
        events = [await self.recv()]
        while events[-1]["type"] != type:
            events.append(await self.recv())
        return events

    async def update(self, **session: Any) -> dict[str, Any]:
        await self.send("session.update", session={"type": "realtime", **session})
        event = await self.recv()
        assert event["type"] == "session.updated", event
        return event


@asynccontextmanager
async def connect(server: FakeRealtime, key: str = "sk-test") -> AsyncIterator[Client]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{server.realtime_url}?model=gpt-realtime", headers={"Authorization": f"Bearer {key}"}
        ) as ws,
    ):
        client = Client(ws)
        assert (await client.recv())["type"] == "session.created"
        yield client


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 10))


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def samples(pcm: bytes) -> array.array[int]:
    return array.array("h", pcm)


# --- the handshake and the session ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "key", "status", "code"),
    [
        ("?model=gpt-realtime", "sk-wrong", 401, "invalid_api_key"),
        ("?model=gpt-realtime", None, 401, "invalid_api_key"),
        ("", "sk-test", 400, "missing_model"),
    ],
)
def test_a_bad_handshake_is_refused_with_an_openai_error_body(
    query: str, key: str | None, status: int, code: str
) -> None:
    async def main() -> None:
        async with FakeRealtime() as server, aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.realtime_url + query, headers=headers)
            assert refused.value.status == status
            async with http.get(server.realtime_url + query, headers=headers) as response:
                body = await response.json()
            assert body["error"]["code"] == code
            assert body["error"]["type"] == "invalid_request_error"
            assert set(body["error"]) == {"message", "type", "code", "param"}
            assert server.connections == []

    run(main)


def test_any_key_is_taken_when_the_fake_wants_none() -> None:
    async def main() -> None:
        async with FakeRealtime(api_key=None) as server, connect(server, key="anything"):
            await asyncio.wait_for(server.connected.wait(), 1)
        assert server.connections[0].query == {"model": "gpt-realtime"}

    run(main)


def test_the_session_opens_with_the_ga_defaults_and_updates_merge_into_it() -> None:
    async def main() -> None:
        async with FakeRealtime() as server, connect(server) as client:
            created = client.seen[0]["session"]
            assert created["type"] == "realtime"
            assert created["object"] == "realtime.session"
            assert created["id"].startswith("sess_")
            assert created["model"] == "gpt-realtime"
            assert created["audio"]["input"]["format"] == PCM
            assert created["audio"]["input"]["turn_detection"]["type"] == "server_vad"
            assert created["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
            assert created["audio"]["output"] == {"format": PCM, "voice": "alloy", "speed": 1.0}
            assert (created["tools"], created["tool_choice"], created["max_output_tokens"]) == (
                [],
                "auto",
                "inf",
            )

            updated = await client.update(
                instructions="Be brief.",
                audio={
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    },
                    "output": {"format": {"type": "audio/pcma"}, "voice": "marin"},
                },
            )
            session = updated["session"]
            assert session["id"] == created["id"]
            assert session["instructions"] == "Be brief."
            assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
            detection = session["audio"]["input"]["turn_detection"]
            assert (detection["silence_duration_ms"], detection["threshold"]) == (500, 0.5)
            assert session["audio"]["output"] == {
                "format": {"type": "audio/pcma"},
                "voice": "marin",
                "speed": 1.0,
            }
            assert server.connections[0].session == session
            assert server.connections[0].events("session.update")[0]["session"]["instructions"] == "Be brief."

    run(main)


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"type": "transcription"}, "invalid_value", "session.type"),
        ({"instructions": "x"}, "missing_required_parameter", "session.type"),
        (
            {"type": "realtime", "audio": {"input": {"format": {"type": "audio/wav"}}}},
            "invalid_value",
            "session.audio.input.format.type",
        ),
        (
            {"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "invalid_value",
            "session.audio.output.format.rate",
        ),
        ({"type": "realtime", "audio": "loud"}, "invalid_type", "session.audio"),
        (
            {"type": "realtime", "output_modalities": ["audio", "text"]},
            "invalid_value",
            "session.output_modalities",
        ),
    ],
)
def test_a_refused_session_update_is_an_error_event_and_changes_nothing(
    session: dict[str, Any], code: str, param: str
) -> None:
    async def main() -> None:
        async with FakeRealtime() as server, connect(server) as client:
            before = json.loads(json.dumps(server.connections[0].session))
            await client.send("session.update", event_id="evt_1", session=session)
            error = await client.recv()
            assert error["type"] == "error"
            assert error["error"] == {
                "type": "invalid_request_error",
                "code": code,
                "message": error["error"]["message"],
                "param": param,
                "event_id": "evt_1",
            }
            assert server.connections[0].session == before
            await client.update(instructions="Still open.")  # the socket stays open

    run(main)


# --- hearing the caller -----------------------------------------------------------------------


def test_speech_is_heard_after_its_gap_then_committed_transcribed_and_answered() -> None:
    async def main() -> None:
        heard = [Heard("Book a table.", audio_ms=400, gap_ms=200)]
        async with FakeRealtime(heard, ["Sure."]) as server, connect(server) as client:
            await client.update(audio={"input": {"transcription": {"model": "gpt-4o-transcribe"}}})
            await client.append(180)
            await client.append(40)
            started = await client.recv()
            assert started["type"] == "input_audio_buffer.speech_started"
            assert started["audio_start_ms"] == 200
            await client.append(400)
            events = await client.until("response.done")
        assert types(events[:5]) == [
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.input_audio_transcription.completed",
        ]
        stopped, committed, added, _, transcript = events[:5]
        item_id = started["item_id"]
        assert stopped == stopped | {"audio_end_ms": 600, "item_id": item_id}
        assert committed == committed | {"item_id": item_id, "previous_item_id": None}
        assert added["item"] == {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        assert transcript == transcript | {
            "item_id": item_id,
            "content_index": 0,
            "transcript": "Book a table.",
        }
        assert transcript["usage"]["type"] == "tokens"
        assert "response.created" in types(events)
        conn = server.connections[0]
        assert len(conn.audio) == 620 * 48
        assert conn.items[item_id]["content"][0]["transcript"] == "Book a table."
        assert [r["status"] for r in conn.responses] == ["completed"]

    run(main)


def test_a_slow_transcription_arrives_after_the_response_started() -> None:
    async def main() -> None:
        heard = [Heard("Hi.", audio_ms=100)]
        async with FakeRealtime(heard, transcription_delay=0.05) as server, connect(server) as client:
            await client.update(audio={"input": {"transcription": {"model": "whisper-1"}}})
            await client.append(100)
            events = await client.until("conversation.item.input_audio_transcription.completed")
        assert types(events).index("response.created") < len(events) - 1

    run(main)


def test_vad_without_create_response_commits_but_does_not_answer() -> None:
    async def main() -> None:
        async with FakeRealtime(["One.", "Two."]) as server, connect(server) as client:
            await client.update(
                audio={"input": {"turn_detection": {"type": "server_vad", "create_response": False}}}
            )
            await client.append(1200)
            events = [await client.recv() for _ in range(10)]
        assert (
            types(events)
            == [
                "input_audio_buffer.speech_started",
                "input_audio_buffer.speech_stopped",
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
            ]
            * 2
        )
        assert events[5]["audio_start_ms"] == 600
        assert events[3]["previous_item_id"] is None
        assert events[8]["previous_item_id"] == events[0]["item_id"]

    run(main)


def test_with_turn_detection_off_a_commit_takes_the_next_utterance_and_answers_nothing() -> None:
    async def main() -> None:
        async with FakeRealtime(["Hello?"], ["Hi."]) as server, connect(server) as client:
            await client.update(audio={"input": {"turn_detection": None, "transcription": {"model": "m"}}})
            await client.send("input_audio_buffer.commit", event_id="evt_empty")
            error = await client.recv()
            assert error["error"]["code"] == "input_audio_buffer_commit_empty"
            assert error["error"]["event_id"] == "evt_empty"
            await client.append(2000)
            await client.send("input_audio_buffer.commit")
            events = await client.until("conversation.item.input_audio_transcription.completed")
            assert types(events) == [
                "input_audio_buffer.committed",
                "conversation.item.added",
                "conversation.item.done",
                "conversation.item.input_audio_transcription.completed",
            ]
            assert events[-1]["transcript"] == "Hello?"
            await client.append(40)
            await client.send("input_audio_buffer.clear")
            assert (await client.recv())["type"] == "input_audio_buffer.cleared"
            await client.send("input_audio_buffer.commit")
            assert (await client.recv())["error"]["code"] == "input_audio_buffer_commit_empty"
            await client.send("response.create")
            done = (await client.until("response.done"))[-1]
            assert done["response"]["output"][0]["content"][0]["transcript"] == "Hi."

    run(main)


# --- responses --------------------------------------------------------------------------------


AUDIO_RESPONSE = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "response.output_audio_transcript.delta",
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "response.output_audio.delta",
    "response.output_audio.delta",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]


def test_a_response_speaks_its_text_as_a_tone_in_chunks_with_the_transcript() -> None:
    async def main() -> None:
        async with FakeRealtime(replies=["Hello there!"], chunk_ms=50) as server, connect(server) as client:
            await client.send("response.create", response={"instructions": "Greet.", "metadata": {"k": "v"}})
            events = await client.until("response.done")
        assert types(events) == AUDIO_RESPONSE
        response_id = events[0]["response"]["id"]
        item_id = events[1]["item"]["id"]
        assert events[0]["response"]["status"] == "in_progress"
        for event in events[4:12]:
            assert (
                event
                | {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
                == event
            )
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
        )
        assert len(audio) == 12 * 10 * 48  # 10 ms a character, PCM16 at 24 kHz
        assert [len(base64.b64decode(e["delta"])) for e in events[5:9] if "audio.delta" in e["type"]] == [
            2400,
            2400,
            960,
        ]
        assert audio == speech_for("Hello there!", PCM)
        pcm = samples(audio)
        assert TONE_PEAK - 50 < max(pcm) <= TONE_PEAK  # about -12 dBFS
        crossings = sum(1 for a, b in itertools.pairwise(pcm) if a < 0 <= b)
        assert 50 <= crossings <= 54  # 440 Hz over 120 ms
        deltas = [e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"]
        assert deltas == ["Hello ", "there!"]
        assert events[10]["transcript"] == "Hello there!"
        assert events[11]["part"] == {"type": "audio", "transcript": "Hello there!"}
        item = events[12]["item"]
        assert item == events[13]["item"]
        assert (item["status"], item["role"], item["content"]) == (
            "completed",
            "assistant",
            [{"type": "output_audio", "transcript": "Hello there!"}],
        )
        done = events[-1]["response"]
        assert (done["object"], done["id"], done["status"], done["status_details"]) == (
            "realtime.response",
            response_id,
            "completed",
            None,
        )
        assert done["output"] == [item]
        assert (done["instructions"], done["metadata"]) == ("Greet.", {"k": "v"})
        usage = done["usage"]
        assert usage["output_token_details"] == {"text_tokens": 2, "audio_tokens": 2}
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
        assert server.connections[0].responses == [done]

    run(main)


@pytest.mark.parametrize(("kind", "decode"), [("audio/pcmu", ulaw_decode), ("audio/pcma", alaw_decode)])
def test_a_g711_session_gets_8_khz_g711_audio(kind: str, decode: Callable[[bytes], bytes]) -> None:
    async def main() -> None:
        async with FakeRealtime(replies=["Hi."]) as server, connect(server) as client:
            await client.update(audio={"output": {"format": {"type": kind}}})
            await client.send("response.create")
            events = await client.until("response.done")
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
        )
        assert len(audio) == 3 * 10 * 8
        peak = max(samples(decode(audio)))
        assert TONE_PEAK * 0.9 < peak < TONE_PEAK * 1.1
        assert events[-1]["response"]["audio"]["output"]["format"] == {"type": kind}

    run(main)


def test_a_text_response_streams_text_deltas() -> None:
    async def main() -> None:
        async with FakeRealtime(replies=["Two words."]) as server, connect(server) as client:
            await client.send(
                "response.create", response={"output_modalities": ["text"], "conversation": "none"}
            )
            events = await client.until("response.done")
        assert [e.get("delta") for e in events if e["type"] == "response.output_text.delta"] == [
            "Two ",
            "words.",
        ]
        assert "conversation.item.added" not in types(events)
        done = events[-1]["response"]
        assert done["conversation_id"] is None
        assert done["output"][0]["content"] == [{"type": "output_text", "text": "Two words."}]
        assert server.connections[0].items == {}

    run(main)


def test_a_tool_call_is_answered_by_its_output_and_a_new_response() -> None:
    reply = RealtimeReply(tool_calls=[("get_weather", '{"city": "Paris"}')])

    async def main() -> None:
        async with FakeRealtime(replies=[reply, "It is sunny."]) as server, connect(server) as client:
            await client.send("response.create")
            events = await client.until("response.done")
            assert types(events) == [
                "response.created",
                "response.output_item.added",
                "conversation.item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
            call = events[5]
            assert (call["name"], call["arguments"]) == ("get_weather", '{"city": "Paris"}')
            assert "".join(e["delta"] for e in events[3:5]) == call["arguments"]
            assert all(e["call_id"] == call["call_id"] for e in events[3:5])
            item = events[6]["item"]
            assert item == item | {
                "type": "function_call",
                "status": "completed",
                "call_id": call["call_id"],
                "name": "get_weather",
            }
            assert events[-1]["response"]["output"] == [item]

            await client.send(
                "conversation.item.create",
                item={"type": "function_call_output", "call_id": "call_nope", "output": "{}"},
            )
            assert (await client.recv())["error"]["param"] == "item.call_id"
            output = {
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": '{"sky": "clear"}',
            }
            await client.send("conversation.item.create", item=output)
            added, done = await client.recv(), await client.recv()
            assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
            assert added["previous_item_id"] == item["id"]
            assert added["item"] == added["item"] | output | {"status": "completed"}
            await client.send("response.create")
            answer = (await client.until("response.done"))[-1]["response"]
        assert answer["output"][0]["content"][0]["transcript"] == "It is sunny."
        assert list(server.connections[0].items) == [
            item["id"],
            added["item"]["id"],
            answer["output"][0]["id"],
        ]

    run(main)


def test_a_failing_reply_ends_failed_with_a_server_error() -> None:
    async def main() -> None:
        async with FakeRealtime(replies=[RealtimeReply("x", fail=True)]) as server, connect(server) as client:
            await client.send("response.create")
            events = await client.until("response.done")
        assert types(events) == ["response.created", "response.done"]
        response = events[-1]["response"]
        assert (response["status"], response["output"]) == ("failed", [])
        assert response["status_details"]["type"] == "failed"
        assert response["status_details"]["error"]["code"] == "server_error"
        assert response["status_details"]["error"]["type"] == "server_error"

    run(main)


def test_the_last_reply_repeats_and_an_empty_script_says_ok() -> None:
    async def main() -> None:
        async with FakeRealtime() as server, connect(server) as client:
            await client.send("response.create")
            first = (await client.until("response.done"))[-1]["response"]
        assert first["output"][0]["content"][0]["transcript"] == "OK."
        server = FakeRealtime(replies=["A.", "B."])
        assert [server.next_reply().text for _ in range(3)] == ["A.", "B.", "B."]

    run(main)


# --- interruptions ----------------------------------------------------------------------------


def test_speech_during_a_response_cancels_it_and_truncate_cuts_what_was_not_heard() -> None:
    slow = RealtimeReply("one two three four five six seven eight nine ten", chunk_delay=0.2)

    async def main() -> None:
        heard = [Heard("Hi.", audio_ms=100), Heard("Stop!", audio_ms=100)]
        async with FakeRealtime(heard, [slow, "Okay."]) as server, connect(server) as client:
            await client.append(100)
            before = await client.until("response.output_audio.delta")
            item_id = before[-1]["item_id"]
            await client.append(20)
            events = await client.until("response.done")
            assert events[0]["type"] == "input_audio_buffer.speech_started"
            response = events[-1]["response"]
            assert response["status"] == "cancelled"
            assert response["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
            item = next(e for e in events if e["type"] == "response.output_item.done")["item"]
            assert item["status"] == "incomplete"
            heard_ms = (
                sum(
                    len(base64.b64decode(e["delta"]))
                    for e in client.seen
                    if e["type"] == "response.output_audio.delta"
                )
                // 48
            )
            assert 100 <= heard_ms < 490
            transcript = item["content"][0]["transcript"]
            assert "one two three four five six seven eight nine ten".startswith(transcript.strip())

            await client.send(
                "conversation.item.truncate",
                event_id="evt_t",
                item_id=item_id,
                content_index=0,
                audio_end_ms=heard_ms + 1,
            )
            refused = await client.recv()
            assert refused["error"] | {"param": "audio_end_ms", "event_id": "evt_t"} == refused["error"]
            await client.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=50)
            truncated = await client.recv()
            assert truncated == truncated | {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 50,
            }
            await client.append(80)
            answer = (await client.until("response.done"))[-1]["response"]
        conn = server.connections[0]
        assert conn.items[item_id]["content"][0]["transcript"] == "one"
        assert [t["audio_end_ms"] for t in conn.truncations] == [50]
        assert answer["output"][0]["content"][0]["transcript"] == "Okay."
        assert [r["status"] for r in conn.responses] == ["cancelled", "completed"]

    run(main)


def test_interrupt_response_false_lets_the_response_finish() -> None:
    slow = RealtimeReply("a b c", chunk_delay=0.05)

    async def main() -> None:
        async with FakeRealtime(["Hi.", "More."], [slow], chunk_ms=10) as server, connect(server) as client:
            await client.update(
                audio={"input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}}
            )
            await client.append(600)
            await client.until("response.output_audio.delta")
            await client.append(20)
            events = await client.until("response.done")
        assert "input_audio_buffer.speech_started" in types(events)
        assert events[-1]["response"]["status"] == "completed"

    run(main)


def test_response_cancel_cancels_the_active_response_and_is_refused_without_one() -> None:
    slow = RealtimeReply("a slow reply that takes a while", first_audio_delay=5)

    async def main() -> None:
        async with FakeRealtime(replies=[slow]) as server, connect(server) as client:
            await client.send("response.cancel", event_id="evt_c")
            refused = await client.recv()
            assert (
                refused["error"] | {"code": "response_cancel_not_active", "event_id": "evt_c"}
                == refused["error"]
            )
            await client.send("response.create")
            await client.until("response.content_part.added")
            await client.send("response.create", event_id="evt_twice")
            twice = await client.recv()
            assert twice["error"]["code"] == "conversation_already_has_active_response"
            await client.send("response.cancel")
            events = await client.until("response.done")
        assert types(events) == [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        assert events[1]["transcript"] == ""
        assert events[3]["item"]["status"] == "incomplete"
        assert events[-1]["response"]["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert server.connections[0].responses[0]["status"] == "cancelled"

    run(main)


def test_truncate_refuses_unknown_items_user_items_and_other_content() -> None:
    async def main() -> None:
        async with FakeRealtime(["Hi."]) as server, connect(server) as client:
            await client.update(
                audio={"input": {"turn_detection": {"type": "server_vad", "create_response": False}}}
            )
            await client.append(600)
            user_id = (await client.until("conversation.item.done"))[-1]["item"]["id"]
            await client.send("response.create")
            assistant_id = (await client.until("response.done"))[-1]["response"]["output"][0]["id"]
            cases = [
                ({"item_id": "item_nope", "content_index": 0, "audio_end_ms": 0}, "item_id"),
                ({"item_id": user_id, "content_index": 0, "audio_end_ms": 0}, "item_id"),
                ({"item_id": assistant_id, "content_index": 1, "audio_end_ms": 0}, "content_index"),
                ({"item_id": assistant_id, "content_index": 0, "audio_end_ms": 31}, "audio_end_ms"),
                ({"item_id": assistant_id, "content_index": 0}, "audio_end_ms"),
            ]
            for n, (fields, param) in enumerate(cases):
                await client.send("conversation.item.truncate", event_id=f"evt_{n}", **fields)
                error = (await client.recv())["error"]
                assert (error["param"], error["event_id"]) == (param, f"evt_{n}")
            await client.send(
                "conversation.item.truncate", item_id=assistant_id, content_index=0, audio_end_ms=30
            )
            assert (await client.recv())["type"] == "conversation.item.truncated"
        assert server.connections[0].truncations == [
            server.connections[0].events("conversation.item.truncate")[-1]
        ]

    run(main)


# --- the conversation and malformed input ------------------------------------------------------


def test_items_are_created_deleted_and_retrieved() -> None:
    async def main() -> None:
        async with FakeRealtime() as server, connect(server) as client:
            text = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
            await client.send("conversation.item.create", item=text)
            first = (await client.until("conversation.item.done"))[-1]["item"]
            assert first["id"].startswith("item_")
            system = {
                "id": "item_sys",
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "Be nice."}],
            }
            await client.send("conversation.item.create", item=system, previous_item_id="root")
            added = (await client.until("conversation.item.done"))[0]
            assert added["previous_item_id"] is None
            assert list(server.connections[0].items) == ["item_sys", first["id"]]
            await client.send("conversation.item.retrieve", item_id="item_sys")
            assert (await client.recv())["item"] == added["item"]
            await client.send("conversation.item.delete", item_id="item_sys")
            assert (await client.recv()) | {
                "type": "conversation.item.deleted",
                "item_id": "item_sys",
            } == client.seen[-1]
            for item, param in [
                ({"type": "message", "role": "robot", "content": []}, "item.role"),
                (
                    {"type": "message", "role": "user", "content": [{"type": "output_text", "text": "x"}]},
                    "item.content[0].type",
                ),
                ({"type": "image"}, "item.type"),
                ({"id": first["id"], **text}, "item.id"),
            ]:
                await client.send("conversation.item.create", item=item)
                assert (await client.recv())["error"]["param"] == param
            await client.send("conversation.item.delete", item_id="item_sys")
            assert (await client.recv())["error"]["param"] == "item_id"
        assert list(server.connections[0].items) == [first["id"]]

    run(main)


@pytest.mark.parametrize(
    ("frame", "code", "param"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_json", None),
        ('{"type": "response.explode"}', "invalid_value", "type"),
        ('{"type": "input_audio_buffer.append", "audio": "***"}', "invalid_value", "audio"),
        ('{"type": "input_audio_buffer.append"}', "missing_required_parameter", "audio"),
        ('{"type": "conversation.item.create", "item": "x"}', "invalid_type", "item"),
        (
            '{"type": "response.create", "response": {"output_modalities": ["video"]}}',
            "invalid_value",
            "response.output_modalities",
        ),
        ('{"type": "output_audio_buffer.clear"}', "invalid_value", "type"),
        (
            '{"type": "conversation.item.create", "item": {"type": "function_call_output", "output": "x"}}',
            "missing_required_parameter",
            "item.call_id",
        ),
        (
            '{"type": "conversation.item.create", "item": {"type": "function_call", "name": "f", '
            '"arguments": "{}"}, "previous_item_id": [1]}',
            "invalid_type",
            "previous_item_id",
        ),
        ('{"type": "conversation.item.truncate", "item_id": 7}', "invalid_type", "item_id"),
    ],
)
def test_malformed_input_gets_an_error_and_the_socket_stays_open(
    frame: str, code: str, param: str | None
) -> None:
    async def main() -> None:
        async with FakeRealtime() as server, connect(server) as client:
            await client.ws.send_str(frame)
            error = await client.recv()
            assert error["type"] == "error"
            assert (error["error"]["code"], error["error"]["param"]) == (code, param)
            await client.ws.send_bytes(b"\x00")
            assert (await client.recv())["error"]["code"] == "invalid_json"
            await client.update(instructions="Still here.")
        assert server.connections[0].session["instructions"] == "Still here."

    run(main)


# --- faults and reconnects --------------------------------------------------------------------


def test_drop_after_responses_closes_1011_and_the_script_goes_on_after_a_reconnect() -> None:
    async def main() -> None:
        heard = [Heard("First.", audio_ms=100), Heard("Second.", audio_ms=100)]
        async with FakeRealtime(heard, ["One.", "Two."], drop_after_responses=1) as server:
            async with connect(server) as client:
                await client.append(100)
                await client.until("response.done")
                closing = await client.ws.receive(timeout=5)
                assert closing.type == aiohttp.WSMsgType.CLOSE
                assert client.ws.close_code == 1011
            await asyncio.wait_for(server.closed.wait(), 2)
            server.connected.clear()
            async with connect(server) as again:
                assert server.connected.is_set()
                await again.update(audio={"input": {"transcription": {"model": "m"}}})
                await again.append(100)
                events = await again.until("response.done")
        transcripts = [e["transcript"] for e in events if e["type"].endswith("transcription.completed")]
        assert transcripts == ["Second."]
        assert events[-1]["response"]["output"][0]["content"][0]["transcript"] == "Two."
        assert [len(c.responses) for c in server.connections] == [1, 1]

    run(main)
