"""Calls with a speech-to-speech model: the realtime session against the fake OpenAI Realtime server.

The fake speaks the Realtime API over a real WebSocket on 127.0.0.1 and "hears" its script as
the caller's audio arrives; the loopback transport streams the caller's frames and plays the
agent's audio in real time, echoing marks, so barge-in and playback truth run as on a phone line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.runtime.test_session import Recorder, until
from voicecore import events as ev
from voicecore.call_info import CallInfo
from voicecore.fakes.openai_realtime import FakeRealtime, Heard, RealtimeReply, speech_for
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat
from voicecore.providers.openai_realtime import OpenAIRealtime
from voicecore.runtime.loop import LoopName, run
from voicecore.runtime.realtime_session import RealtimeSession, say_exactly
from voicecore.runtime.session import SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import FakeTTS, LoopbackTransport
from voicecore.tools import Toolbox, function_tool


class Call:
    """A running realtime session, its transport, the fake's side and the observed events."""

    def __init__(self, session: RealtimeSession, transport: LoopbackTransport, server: FakeRealtime) -> None:
        self.session, self.transport, self.server = session, transport, server
        self.recorder: Recorder = session.events.observers[0]  # type: ignore[assignment]
        self.task: asyncio.Task[None] | None = None

    def said(self, turn: int) -> list[Any]:
        return [e for e in self.recorder.of(ev.AgentSaid) if e.turn == turn]

    def sent(self, kind: str, connection: int = 0) -> list[dict[str, Any]]:
        return self.server.connections[connection].events(kind)

    async def closed(self) -> ev.CallClosed:
        await until(lambda: bool(self.recorder.of(ev.CallClosed)))
        closed: ev.CallClosed = self.recorder.of(ev.CallClosed)[0]
        return closed


@asynccontextmanager
async def realtime_call(
    server: FakeRealtime,
    *,
    turn: TurnConfig | None = None,
    tools: Toolbox | None = None,
    audio: AudioFormat = MULAW_8K,
    call: CallInfo | None = None,
    tts: FakeTTS | None = None,
    max_reconnects: int = 3,
    **settings: Any,
) -> AsyncIterator[Call]:
    """Runs a realtime session against ``server``; the caller hangs up when the block ends."""
    model = OpenAIRealtime(api_key="sk-test", base_url=f"{server.ws_url}/v1", **settings)
    transport = LoopbackTransport(audio)
    config = SessionConfig(instructions="You are a test agent.", turn=turn or TurnConfig(), tools=tools)
    session = RealtimeSession(
        config,
        transport=transport,
        model=model,
        fallback_tts=tts,
        observers=[Recorder()],
        call=call,
        max_reconnects=max_reconnects,
    )
    result = Call(session, transport, server)
    result.task = asyncio.get_running_loop().create_task(session.run())
    try:
        yield result
    finally:
        if not result.task.done():
            transport.hang_up_caller()
        async with asyncio.timeout(10):
            await asyncio.gather(result.task, return_exceptions=True)
        await model.aclose()


def test_a_call_is_greeted_and_answered_with_mulaw_passed_through(loop: LoopName) -> None:
    greeting = "Hello, how can I help?"

    async def scenario() -> tuple[Call, ev.CallClosed]:
        heard = [Heard("I need a table for two.", audio_ms=300, gap_ms=500)]
        async with FakeRealtime(heard, [greeting, "Sure, for when?"]) as server:
            async with realtime_call(server, turn=TurnConfig(greeting=greeting)) as call:
                await until(lambda: bool(call.said(1)))
            return call, await call.closed()

    call, closed = run(scenario(), loop=loop)

    updates = call.sent("session.update")
    session = updates[0]["session"]
    assert session["instructions"] == "You are a test agent."
    assert (
        session["audio"]["input"]["format"] == session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    )
    assert {tool["name"] for tool in session["tools"]} == {"end_call", "transfer_call"}
    greet = call.sent("response.create")[0]["response"]
    assert greet["instructions"] == say_exactly(greeting)
    assert greet["metadata"] == {"voicecore": "greeting"}

    assert [(e.text, e.complete) for e in call.said(0)] == [(greeting, True)]
    assert [(e.text, e.complete) for e in call.said(1)] == [("Sure, for when?", True)]
    assert [e.text for e in call.recorder.of(ev.CallerSaid)] == ["I need a table for two."]
    # μ-law from the model reaches the caller byte for byte.
    pcmu = {"type": "audio/pcmu"}
    assert bytes(call.transport.played) == speech_for(greeting, pcmu) + speech_for("Sure, for when?", pcmu)
    assert closed.reason == "caller hung up"
    (usage,) = closed.usage.providers
    assert usage.provider == "openai-realtime"
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert call.session.history.messages()[-1] == {"role": "assistant", "content": "Sure, for when?"}
    timings = call.recorder.of(ev.TurnTimings)
    assert [t.turn for t in timings] == [1]
    assert 0 < timings[0].first_audio_sent <= timings[0].first_audio_played  # type: ignore[operator]


@pytest.mark.parametrize("chunk_delay", [0.0, 0.05], ids=["generated", "still-generating"])
def test_barge_in_clears_the_line_and_tells_the_model_what_was_heard(chunk_delay: float) -> None:
    reply = " ".join(f"word{n}" for n in range(50))  # about 3.4 s of audio

    async def scenario() -> Call:
        heard = [
            Heard("Tell me everything.", audio_ms=300, gap_ms=200),
            Heard("Stop.", audio_ms=300, gap_ms=1000),
        ]
        replies = [RealtimeReply(reply, chunk_delay=chunk_delay), RealtimeReply("Okay.")]
        async with FakeRealtime(heard, replies) as server:
            async with realtime_call(server) as call:
                await until(lambda: bool(call.said(2)))
            await call.closed()
            return call

    call = run(scenario())
    (cut,) = call.said(1)
    assert not cut.complete
    assert cut.text
    assert reply.startswith(cut.text)
    assert cut.text != reply
    (truncation,) = call.server.connections[0].truncations
    # Caller speech began 1 s into the reply's playback (the fake's script), so about 1 s was heard.
    assert 700 <= truncation["audio_end_ms"] <= 1300
    words_heard = len(cut.text.split())
    assert abs(words_heard - 50 * truncation["audio_end_ms"] / (10 * len(reply))) <= 2
    (barged,) = call.recorder.of(ev.BargedIn)
    assert barged.turn == 1
    unheard_ms = 10 * len(reply) - truncation["audio_end_ms"]
    if chunk_delay:  # only what had arrived was queued, and dropped
        assert 0 < barged.dropped_ms < unheard_ms - 500
    else:
        assert barged.dropped_ms == pytest.approx(unheard_ms, abs=150)
    assert call.transport.clears
    assert [(e.text, e.complete) for e in call.said(2)] == [("Okay.", True)]
    history = [m["content"] for m in call.session.history.messages()[1:]]
    assert history == ["Tell me everything.", cut.text, "Stop.", "Okay."]
    first = call.server.connections[0].responses[0]
    if chunk_delay:  # the model was still speaking: its own VAD cancelled the response
        assert (first["status"], first["status_details"]["reason"]) == ("cancelled", "turn_detected")
    else:
        assert first["status"] == "completed"


@function_tool
async def weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def test_tool_calls_run_and_their_results_go_back_for_the_reply() -> None:
    async def scenario() -> Call:
        replies = [RealtimeReply(tool_calls=[("weather", '{"city": "Rome"}')]), "It is sunny in Rome."]
        async with FakeRealtime([Heard("Weather in Rome?", audio_ms=300, gap_ms=200)], replies) as server:
            async with realtime_call(server, tools=Toolbox([weather])) as call:
                await until(lambda: bool(call.said(1)))
            await call.closed()
            return call

    call = run(scenario())
    (called,) = call.recorder.of(ev.ToolCalled)
    assert (called.turn, called.name, json.loads(called.arguments)) == (1, "weather", {"city": "Rome"})
    (returned,) = call.recorder.of(ev.ToolReturned)
    assert (returned.turn, returned.content, returned.is_error) == (1, "Sunny in Rome", False)
    outputs = [
        e["item"]
        for e in call.sent("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]
    function_calls = [i for i in call.server.connections[0].items.values() if i["type"] == "function_call"]
    assert [o["call_id"] for o in outputs] == [function_calls[0]["call_id"]]
    assert outputs[0]["output"] == "Sunny in Rome"
    assert call.sent("response.create")[-1]["response"]["metadata"] == {"voicecore": "turn-1"}
    assert [(e.text, e.complete) for e in call.said(1)] == [("It is sunny in Rome.", True)]
    assert "weather" in {tool["name"] for tool in call.sent("session.update")[0]["session"]["tools"]}


def test_end_call_hangs_up_once_the_goodbye_has_played() -> None:
    async def scenario() -> tuple[Call, ev.CallClosed]:
        reply = RealtimeReply(
            "Goodbye, have a nice day.", tool_calls=[("end_call", '{"reason": "caller is done"}')]
        )
        async with FakeRealtime([Heard("That's all, bye.", audio_ms=300, gap_ms=200)], [reply]) as server:
            async with realtime_call(server) as call:
                assert call.task is not None
                async with asyncio.timeout(10):
                    await asyncio.shield(call.task)
            return call, await call.closed()

    call, closed = run(scenario())
    assert call.transport.hung_up
    assert closed.reason == "agent ended the call (caller is done)"
    assert [(e.text, e.complete) for e in call.said(1)] == [("Goodbye, have a nice day.", True)]
    assert len(call.transport.played) == pytest.approx(8 * 10 * len("Goodbye, have a nice day."), abs=16)
    assert len(call.sent("response.create")) == 0  # no reply is asked for after end_call


def test_a_lost_socket_is_reconnected_with_the_conversation_restored() -> None:
    greeting = "Hello there."

    async def scenario() -> Call:
        heard = [Heard("Are you still there?", audio_ms=300, gap_ms=800)]
        async with FakeRealtime(heard, [greeting, "Yes, I am."], drop_after_responses=1) as server:
            async with realtime_call(server, turn=TurnConfig(greeting=greeting), tts=FakeTTS()) as call:
                await until(lambda: bool(call.said(1)))
            await call.closed()
            return call

    call = run(scenario())
    assert len(call.server.connections) == 2
    restored = [e["item"] for e in call.sent("conversation.item.create", connection=1)]
    assert restored[0]["role"] == "assistant"
    assert restored[0]["content"] == [{"type": "output_text", "text": greeting}]
    assert call.sent("session.update", connection=1)[0]["session"]["instructions"] == "You are a test agent."
    assert [(e.text, e.complete) for e in call.said(1)] == [("Yes, I am.", True)]
    assert [e.text for e in call.said(0)] == [greeting]  # no fallback: nothing was cut off


def test_an_unreachable_model_gets_the_fallback_phrase_and_the_call_ends() -> None:
    async def scenario() -> tuple[Call, ev.CallClosed]:
        async with FakeRealtime(api_key="sk-other") as server:
            async with realtime_call(
                server, tts=FakeTTS(), turn=TurnConfig(fallback="Sorry, try later.")
            ) as call:
                assert call.task is not None
                async with asyncio.timeout(10):
                    await asyncio.shield(call.task)
            return call, await call.closed()

    call, closed = run(scenario())
    assert closed.reason.startswith("error")
    assert call.transport.hung_up
    assert call.transport.played  # the fallback phrase, through the fallback TTS
    assert [e.text for e in call.said(0)] == ["Sorry, try later."]


def test_a_failed_response_is_covered_by_the_fallback_phrase() -> None:
    async def scenario() -> Call:
        heard = [Heard("Hello?", audio_ms=300, gap_ms=200)]
        async with FakeRealtime(heard, [RealtimeReply(fail=True)]) as server:
            async with realtime_call(server, tts=FakeTTS(), turn=TurnConfig(fallback="Sorry?")) as call:
                await until(lambda: bool(call.said(0)))
            await call.closed()
            return call

    call = run(scenario())
    assert [e.text for e in call.said(0)] == ["Sorry?"]
    assert call.transport.played


def test_keypad_digits_go_to_the_model_as_one_entry() -> None:
    async def scenario() -> Call:
        async with FakeRealtime([], ["Thanks, account 42."]) as server:
            async with realtime_call(server) as call:
                await until(lambda: bool(call.server.connections))
                for digit in "42#":
                    call.transport.press(digit)
                await until(lambda: bool(call.said(1)))
            await call.closed()
            return call

    call = run(scenario())
    assert [e.digit for e in call.recorder.of(ev.CallerPressed)] == ["4", "2", "#"]
    (entry,) = call.sent("conversation.item.create")
    assert entry["item"]["content"] == [
        {"type": "input_text", "text": "(The caller pressed 42 on the keypad.)"}
    ]
    assert call.sent("response.create")[0]["response"]["metadata"] == {"voicecore": "keypad"}
    assert [e.text for e in call.said(1)] == ["Thanks, account 42."]


def test_an_answering_machine_gets_the_voicemail_and_nothing_it_says_reaches_the_model() -> None:
    message = "Please call us back."
    machine = CallInfo(call_id="CA1", direction="outbound", answered_by="machine_end_beep")

    async def scenario() -> tuple[Call, ev.CallClosed]:
        async with FakeRealtime([], [message]) as server:
            async with realtime_call(server, turn=TurnConfig(voicemail=message), call=machine) as call:
                assert call.task is not None
                async with asyncio.timeout(10):
                    await asyncio.shield(call.task)
            return call, await call.closed()

    call, closed = run(scenario())
    assert closed.reason == "agent ended the call (voicemail)"
    assert call.sent("response.create")[0]["response"]["instructions"] == say_exactly(message)
    assert not call.sent("input_audio_buffer.append")
    assert [(e.text, e.complete) for e in call.said(0)] == [(message, True)]


def test_a_browser_call_is_resampled_to_the_models_24_khz_and_back() -> None:
    greeting = "Hi from the browser."

    async def scenario() -> Call:
        async with FakeRealtime([], [greeting]) as server:
            async with realtime_call(server, audio=PCM16_16K, turn=TurnConfig(greeting=greeting)) as call:
                await until(lambda: bool(call.said(0)))
                await asyncio.sleep(0.2)
            await call.closed()
            return call

    call = run(scenario())
    assert call.sent("session.update")[0]["session"]["audio"]["input"]["format"] == {
        "type": "audio/pcm",
        "rate": 24000,
    }
    sent_ms = len(call.server.connections[0].audio) / 48
    assert sent_ms > 100  # the caller's 16 kHz frames arrive as 24 kHz PCM (48 bytes a ms)
    assert len(call.transport.played) == pytest.approx(32 * 10 * len(greeting), abs=32 * 10)


def test_a_silent_caller_is_prompted_then_told_goodbye() -> None:
    turn = TurnConfig(
        greeting="Hello.", idle_after=0.3, idle_prompts=1, idle_prompt="Still there?", goodbye="Bye."
    )

    async def scenario() -> tuple[Call, ev.CallClosed]:
        async with FakeRealtime([], ["Hello.", "Still there?", "Bye."]) as server:
            async with realtime_call(server, turn=turn) as call:
                assert call.task is not None
                async with asyncio.timeout(10):
                    await asyncio.shield(call.task)
            return call, await call.closed()

    call, closed = run(scenario())
    purposes = [e["response"]["metadata"]["voicecore"] for e in call.sent("response.create")]
    assert purposes == ["greeting", "idle", "goodbye"]
    assert closed.reason == "agent ended the call (idle)"
    assert [e.text for e in call.said(0)] == ["Hello.", "Still there?", "Bye."]
