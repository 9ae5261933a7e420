"""End-to-end calls in process: real speech through the Rust VAD, scripted STT/LLM/TTS fakes.

The caller speaks espeak-ng speech in real-time 20 ms frames over a loopback transport that
plays the agent's audio in real time and echoes its marks, so barge-in, playback truth and
timers run as on a phone line (each test takes a few seconds of wall time).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import wave
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from voicecore import events as ev
from voicecore.audio import Resampler
from voicecore.call_info import CallInfo
from voicecore.errors import ProviderStatusError
from voicecore.observers.audit import AuditObserver
from voicecore.providers.base import PCM16_16K, Usage
from voicecore.runtime.loop import LoopName, run
from voicecore.runtime.metrics import count_outbound_answer
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import FakeLLM, FakeReply, FakeSTT, FakeTTS, LoopbackTransport
from voicecore.tools import Toolbox, function_tool
from voicecore.usage import Prices

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng for caller speech")


@cache
def speech(text: str) -> bytes:
    """``text`` spoken by espeak-ng, as PCM16 at 16 kHz."""
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(BytesIO(wav)) as reader:
        rate, frames = reader.getframerate(), reader.readframes(reader.getnframes())
    resampler = Resampler(rate, 16000)
    return resampler.process(frames) + resampler.flush()


Script = Callable[[LoopbackTransport, Session], Awaitable[None]]


async def run_call(
    session: Session, transport: LoopbackTransport, script: Script, limit: float = 20.0
) -> None:
    """Runs ``session`` while ``script`` plays the caller; hangs up when the script is done."""

    async def caller() -> None:
        await script(transport, session)
        transport.hang_up_caller()

    async with asyncio.timeout(limit):
        await asyncio.gather(session.run(), caller())


class Recorder:
    """An observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def on_event(self, event: object) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def make(
    *,
    utterances: list[str],
    replies: list[FakeReply | str],
    turn: TurnConfig | None = None,
    tts: FakeTTS | None = None,
    tools: Toolbox | None = None,
    observers: tuple[Any, ...] = (),
    stt: FakeSTT | None = None,
    call: CallInfo | None = None,
    instructions: str = "You are a test agent.",
) -> tuple[Session, LoopbackTransport, FakeLLM, FakeTTS]:
    transport = LoopbackTransport()
    llm = FakeLLM(replies)
    tts = tts or FakeTTS(first_byte=0.05, ms_per_char=40.0)
    config = SessionConfig(instructions=instructions, turn=turn or TurnConfig(), tools=tools)
    stt = stt or FakeSTT(utterances, latency=0.05)
    session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts, observers=observers, call=call)
    return session, transport, llm, tts


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Waits for a condition on the call's observable state (the caller's view: it polls)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (state of several fakes, no single event to wait on)
            await asyncio.sleep(0.02)


def roles(session: Session) -> list[tuple[str, str]]:
    return [(m["role"], m.get("content") or "") for m in session.history.messages()[1:]]


def test_greeting_and_one_turn_are_spoken_and_remembered(loop: LoopName) -> None:
    session, transport, llm, tts = make(
        utterances=["what's the weather"],
        replies=["It is sunny. Highs of twenty."],
        turn=TurnConfig(greeting="Hello, how can I help?"),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: len(transport.marks_played) >= 1)  # the greeting played
        transport.say(speech("what is the weather like"))
        await until(lambda: len(transport.marks_played) >= 3)

    run(run_call(session, transport, script), loop=loop)
    assert tts.spoken == ["Hello, how can I help?", "It is sunny.", "Highs of twenty."]
    assert roles(session) == [
        ("assistant", "Hello, how can I help?"),
        ("user", "what's the weather"),
        ("assistant", "It is sunny. Highs of twenty."),
    ]
    assert llm.requests[0][0][-1] == {"role": "user", "content": "what's the weather"}
    assert not transport.clears


def test_the_calls_variables_are_in_what_the_agent_says_and_what_the_llm_is_told(
    loop: LoopName, caplog: pytest.LogCaptureFixture
) -> None:
    call = CallInfo(call_id="CA9", from_number="+14155550100", parameters={"first_name": "Ana"})
    session, transport, llm, tts = make(
        utterances=["is it today"],
        replies=["Yes."],
        turn=TurnConfig(greeting="Hi {{first_name}}, calling from {{call.from}}?"),
        instructions="Help {{first_name}} ({{account}}). Today is {{now.date}}.",
        call=call,
    )
    dates = {f"{datetime.now(UTC):%Y-%m-%d}"}

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: len(transport.marks_played) >= 1)
        transport.say(speech("is it today"))
        await until(lambda: len(transport.marks_played) >= 2)

    with caplog.at_level(logging.WARNING, logger="voicecore.runtime.session"):
        run(run_call(session, transport, script), loop=loop)
    dates.add(f"{datetime.now(UTC):%Y-%m-%d}")
    assert tts.spoken == ["Hi Ana, calling from +14155550100?", "Yes."]
    system = llm.requests[0][0][0]
    assert system["role"] == "system"
    assert system["content"] in {f"Help Ana (). Today is {date}." for date in dates}
    assert "instructions names call variables this call lacks (left blank): account" in caplog.text
    assert "Ana" not in caplog.text  # names only: the call's data stays out of the logs


def test_barge_in_clears_at_once_and_history_keeps_only_what_was_heard(loop: LoopName) -> None:
    long_reply = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 9))
    session, transport, _, _ = make(
        utterances=["tell me everything", "stop there"],
        replies=[long_reply, "Okay."],
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("tell me everything"))
        await until(lambda: len(transport.marks_played) >= 2)  # two sentences heard
        transport.say(speech("no stop there please"))
        await until(lambda: bool(transport.clears))
        await until(lambda: "Okay." in transport.marks_played[-1:] or len(roles(session)) >= 4)
        await asyncio.sleep(1.0)

    run(run_call(session, transport, script), loop=loop)
    assert len(transport.clears) == 1
    history = roles(session)
    heard = history[1][1]
    assert history[0] == ("user", "tell me everything")
    assert heard.startswith("This is sentence number 1 of a long answer. This is sentence number 2")
    assert len(heard) < len(long_reply)
    assert long_reply.startswith(heard)
    assert ("user", "stop there") in history


def test_barge_in_clears_while_a_sentence_is_still_streaming_after_the_last_mark_played(
    loop: LoopName,
) -> None:
    # A TTS at twice real time: "Sure." plays out (its mark comes back) while the long second
    # sentence's audio is still coming, before that sentence has a mark of its own. The agent
    # is audible all along, so speech over it must still interrupt.
    reply = "Sure. " + "This second sentence goes on and on for quite a long while before it ends."
    tts = FakeTTS(first_byte=0.05, ms_per_char=40.0, realtime_factor=2.0)
    session, transport, _, _ = make(utterances=["tell me", "stop there"], replies=[reply, "Okay."], tts=tts)

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("tell me everything"))
        await until(lambda: len(transport.marks_played) >= 1)  # "Sure." played
        transport.say(speech("no stop there please"))
        await until(lambda: bool(transport.clears) or len(transport.marks_played) >= 3, within=15.0)

    run(run_call(session, transport, script), loop=loop)
    assert len(transport.clears) == 1


def test_barge_in_clears_a_sentence_that_began_after_the_previous_one_had_played(
    loop: LoopName,
) -> None:
    # A slow LLM: "Sure." is spoken and its mark comes back before the next sentence's text
    # (and audio) exists. The reply is still streaming, so the agent becomes audible again with
    # that sentence, and speech over it must interrupt.
    rest = "Here is the rest of a rather long answer that keeps on going for a good while."
    reply = FakeReply("Sure. " + rest, tokens_per_second=8.0)
    session, transport, _, _ = make(utterances=["tell me", "stop there"], replies=[reply, "Okay."])

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("tell me everything"))
        await until(lambda: len(transport.marks_played) >= 1)  # "Sure." played, nothing queued
        heard = len(transport.played)
        await until(lambda: len(transport.played) > heard + 1600, within=15.0)  # the rest: playing
        transport.say(speech("no stop there please"))
        await until(lambda: bool(transport.clears) or len(transport.marks_played) >= 3, within=15.0)

    run(run_call(session, transport, script), loop=loop)
    assert len(transport.clears) == 1


def test_first_sentence_is_spoken_before_the_next_token_confirms_its_end(loop: LoopName) -> None:
    # The LLM stalls after "Sure. ": a splitter that waited for the next token to confirm
    # the sentence's end would say nothing until it came.
    reply = FakeReply("Sure. Here is the rest.", tokens_per_second=0.01)
    session, transport, _, tts = make(utterances=["tell me"], replies=[reply])

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("tell me everything"))
        await until(lambda: len(transport.marks_played) >= 1)

    run(run_call(session, transport, script), loop=loop)
    assert tts.received == ["Sure."]


def test_backchannel_while_the_agent_speaks_is_ignored(loop: LoopName) -> None:
    reply = "Here is a fairly long answer. It goes on for a while. And then it ends."
    session, transport, llm, _ = make(utterances=["question", "yeah"], replies=[reply])

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("I have a question"))
        await until(lambda: len(transport.marks_played) >= 1)
        transport.say(speech("yeah"))
        await until(lambda: len(transport.marks_played) >= 3)

    run(run_call(session, transport, script), loop=loop)
    assert not transport.clears
    assert len(llm.requests) == 1
    assert roles(session)[-1] == ("assistant", reply)


class Shop:
    """Tools for the tests: one fast, one slow."""

    @function_tool
    async def order_status(self, order: str) -> str:
        """Look up an order.

        Args:
            order: The order number.
        """
        await asyncio.sleep(1.2)
        return f"order {order} ships tomorrow"

    @function_tool
    async def store_hours(self) -> str:
        """Opening hours."""
        return "9 to 5"


@pytest.mark.parametrize(("tool", "filler"), [("order_status", True), ("store_hours", False)])
def test_tools_run_and_only_slow_ones_get_a_filler(tool: str, filler: bool, loop: LoopName) -> None:
    arguments = '{"order": "42"}' if tool == "order_status" else "{}"
    session, transport, llm, tts = make(
        utterances=["where is my order"],
        replies=[FakeReply("", tool_calls=((tool, arguments),)), "Done."],
        turn=TurnConfig(tool_filler_delay=0.5, filler_after=3.0),
        tools=Toolbox.from_object(Shop()),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("where is my order"))
        await until(lambda: "Done." in tts.spoken)
        await until(lambda: session.ledger.idle)

    run(run_call(session, transport, script), loop=loop)
    assert ("One moment." in tts.spoken) is filler
    tool_message = next(m for m in session.history.messages() if m["role"] == "tool")
    assert ("ships tomorrow" in tool_message["content"]) is (tool == "order_status")
    assert llm.requests[1][0][-1]["role"] == "tool"


def test_provider_error_and_timeout_end_in_the_fallback_not_silence(loop: LoopName) -> None:
    failure = ProviderStatusError("bad request", provider="fake-llm", status=400)
    session, transport, _, tts = make(
        utterances=["hello", "hello again"],
        replies=[FakeReply(error=failure), FakeReply("late", first_token=30.0)],
        turn=TurnConfig(filler_after=0.5, turn_timeout=2.0),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("hello"))
        await until(lambda: "Sorry, could you repeat that?" in tts.spoken)
        transport.say(speech("hello again"))
        await until(lambda: tts.spoken.count("Sorry, could you repeat that?") == 2)

    run(run_call(session, transport, script), loop=loop)
    assert "One moment." in tts.spoken  # the latency budget filler came before the timeout


def test_idle_prompt_counts_from_the_end_of_playback(loop: LoopName) -> None:
    session, transport, _, tts = make(
        utterances=[],
        replies=[],
        turn=TurnConfig(greeting="Hi there.", idle_after=1.0, idle_prompts=1),
        tts=FakeTTS(first_byte=0.0, ms_per_char=150.0),  # a 1.35 s greeting
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: transport.hung_up, within=15.0)

    run(run_call(session, transport, script), loop=loop)
    # Fixed phrases are spoken sentence by sentence too (one playback mark each).
    assert tts.spoken == ["Hi there.", "Are you still there?", "Thank you for calling.", "Goodbye."]
    assert transport.hung_up


def test_barge_in_clears_within_a_frame_and_observers_see_the_call(tmp_path: Path, loop: LoopName) -> None:
    from prometheus_client import REGISTRY

    barge_ins_before = REGISTRY.get_sample_value("voicecore_barge_ins_total") or 0.0
    recorder = Recorder()
    audit = AuditObserver(tmp_path / "audit.db")
    long_reply = " ".join(f"Sentence {n} of the answer is here." for n in range(1, 9))
    session, transport, _, _ = make(
        utterances=["call me at 415 555 0123", "stop"],
        replies=[long_reply, "Sure."],
        observers=(recorder, audit),
        call=CallInfo(call_id="CA9", channel="twilio", from_number="+14155550123"),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("call me at four one five five five five"))
        await until(lambda: len(transport.marks_played) >= 2)
        transport.say(speech("stop please stop"))
        await until(lambda: bool(transport.clears))
        await asyncio.sleep(0.5)

    run(run_call(session, transport, script), loop=loop)
    session.events.flush()
    audit.close()
    barge_ins = recorder.of(ev.BargedIn)
    assert len(barge_ins) == 1
    assert REGISTRY.get_sample_value("voicecore_barge_ins_total") == barge_ins_before + 1
    assert barge_ins[0].turn == 1
    assert barge_ins[0].dropped_ms > 0
    assert 0.0 <= transport.clears[0] - barge_ins[0].at <= 0.020  # within one 20 ms frame
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds[0] == "CallOpened"
    assert recorder.of(ev.CallOpened)[0].call == session.call
    assert session.call_id == "CA9"
    assert kinds[-1] == "CallClosed"
    cut = [e for e in recorder.of(ev.AgentSaid) if e.turn == 1]
    assert cut
    assert not cut[0].complete
    assert long_reply.startswith(cut[0].text)
    timings = recorder.of(ev.TurnTimings)[0]
    stages = [getattr(timings, stage) for stage in ev.TurnTimings.STAGES]
    assert all(value is not None for value in stages), timings
    assert stages == sorted(stages)  # each stage comes after the one before
    import sqlite3

    with sqlite3.connect(tmp_path / "audit.db") as db:
        rows = db.execute("SELECT kind, payload FROM events WHERE kind = 'CallerSaid'").fetchall()
    assert rows
    assert all("415 555 0123" not in payload for _, payload in rows)
    with sqlite3.connect(tmp_path / "audit.db") as db:
        (opened,) = db.execute("SELECT payload FROM events WHERE kind = 'CallOpened'").fetchone()
    assert '"channel":"twilio"' in opened
    assert "+14155550123" not in opened  # the caller's number is PII too
    assert any("[PHONE]" in payload for _, payload in rows)


@pytest.mark.parametrize(
    ("call", "arguments"),
    [
        ("end_call", '{"reason": "caller is done"}'),
        ("transfer_call", '{"to": "+14155550100", "summary": "wants a refund", "warm": true}'),
    ],
)
def test_call_control_tools_act_after_the_goodbye_is_heard(call: str, arguments: str, loop: LoopName) -> None:
    goodbye = "Thanks for calling, goodbye."
    session, transport, llm, tts = make(
        utterances=["that is all"],
        replies=[FakeReply(goodbye, tool_calls=((call, arguments),)), ""],
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("that is all thank you"))
        await until(lambda: transport.hung_up or transport.transferred_to is not None)

    run(run_call(session, transport, script), loop=loop)
    assert tts.spoken == [goodbye]
    assert transport.marks_played  # the goodbye played before the call was handed off
    names = [tool["function"]["name"] for tool in llm.requests[0][1]]
    assert {"end_call", "transfer_call"} <= set(names)
    if call == "end_call":
        assert transport.hung_up
        assert transport.transferred_to is None
    else:
        assert transport.transferred_to == ("+14155550100", "wants a refund")
        assert not transport.hung_up


def test_speculative_start_runs_the_llm_before_the_final_text(loop: LoopName) -> None:
    recorder = Recorder()
    session, transport, llm, tts = make(
        utterances=[],
        replies=["We open at nine."],
        turn=TurnConfig(speculative_after=0.1),
        observers=(recorder,),
        stt=FakeSTT(["when do you open"], latency=0.4, full_interims=True),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("when do you open"))
        await until(
            lambda: "We open at nine." in tts.spoken and session.ledger.idle and bool(transport.marks_played)
        )

    run(run_call(session, transport, script), loop=loop)
    session.events.flush()
    assert len(llm.requests) == 1
    timings = recorder.of(ev.TurnTimings)[0]
    assert timings.llm_first_token is not None
    assert timings.stt_final is not None
    assert timings.llm_first_token < timings.stt_final  # the LLM started before the STT was done
    assert timings.first_audio_sent is not None
    assert timings.first_audio_sent >= timings.stt_final  # but nothing played before it agreed
    assert roles(session) == [("user", "when do you open"), ("assistant", "We open at nine.")]


def test_false_interruption_resumes_the_cut_sentence(loop: LoopName) -> None:
    reply = " ".join(f"Point {n} is worth hearing in full." for n in range(1, 7))
    session, transport, _, tts = make(
        utterances=["tell me", ""],  # the second "utterance" is a cough: no words at all
        replies=[reply],
        turn=TurnConfig(barge_in_max_speech=0.4, false_interruption_timeout=0.8),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("tell me please"))
        await until(lambda: len(transport.marks_played) >= 2)
        transport.say(speech("ahhhhhhh"))  # long enough to interrupt, but no words follow
        await until(lambda: bool(transport.clears))
        await until(lambda: tts.spoken[-1:] == ["Point 6 is worth hearing in full."] and len(tts.spoken) > 6)
        await until(lambda: session.ledger.idle)

    run(run_call(session, transport, script), loop=loop)
    resumed = " ".join(tts.spoken[6:])
    assert reply.endswith(resumed)  # the cut sentence and everything after it, said again
    assert resumed.startswith("Point ")
    assert len(tts.spoken[6:]) >= 2  # sentence by sentence, so marks track it
    assert roles(session)[-1][0] == "assistant"
    assert roles(session)[-1][1] == reply  # the history holds the whole reply, once
    assert len(transport.clears) == 1


def test_the_llm_sees_a_history_within_its_token_budget(loop: LoopName) -> None:
    words = ["one", "two", "three", "four"]
    session, transport, llm, _ = make(
        utterances=[f"question {w}" for w in words], replies=["A short answer."]
    )
    session.history.max_tokens = 45  # the system prompt and about four short messages

    async def script(transport: LoopbackTransport, session: Session) -> None:
        for n in range(len(words)):
            transport.say(speech(f"question number {n}"))
            await until(lambda n=n: len(transport.marks_played) == n + 1 and session.ledger.idle)
            await asyncio.sleep(0.3)

    run(run_call(session, transport, script), loop=loop)
    last = llm.requests[-1][0]
    assert last[0]["role"] == "system"
    assert last[-1] == {"role": "user", "content": "question four"}
    assert {"role": "user", "content": "question one"} not in last  # the oldest turn was dropped
    assert len(last) < 1 + 2 * len(words)


class Pair:
    """Two tools that each wait until the other has started: they finish only if run in parallel."""

    def __init__(self) -> None:
        self.started = {"stock": asyncio.Event(), "price": asyncio.Event()}

    async def _meet(self, mine: str, other: str) -> str:
        self.started[mine].set()
        try:
            async with asyncio.timeout(3.0):
                await self.started[other].wait()
        except TimeoutError:
            return "ran alone"
        return "ran alongside"

    @function_tool
    async def check_stock(self) -> str:
        """Stock level."""
        return await self._meet("stock", "price")

    @function_tool
    async def check_price(self) -> str:
        """Price."""
        return await self._meet("price", "stock")


def test_tool_calls_of_one_response_run_in_parallel(loop: LoopName) -> None:
    session, transport, _, tts = make(
        utterances=["is it in stock and how much"],
        replies=[FakeReply("", tool_calls=(("check_stock", "{}"), ("check_price", "{}"))), "Yes, ten euros."],
        tools=Toolbox.from_object(Pair()),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("is it in stock and how much is it"))
        await until(lambda: "Yes, ten euros." in tts.spoken)

    run(run_call(session, transport, script), loop=loop)
    results = [m["content"] for m in session.history.messages() if m["role"] == "tool"]
    assert results == ["ran alongside", "ran alongside"]


def test_a_speech_recognition_outage_reconnects_and_the_call_goes_on(loop: LoopName) -> None:
    stt = FakeSTT(["hello there"], latency=0.05, fail_after_bytes=3200)  # the first stream dies at once
    session, transport, _, tts = make(utterances=[], replies=["Hi, how can I help?"], stt=stt)

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: len(stt.opened) >= 2)  # reconnected
        transport.say(speech("hello there"))
        await until(lambda: "Hi, how can I help?" in tts.spoken and bool(transport.marks_played))

    run(run_call(session, transport, script), loop=loop)
    assert roles(session) == [("user", "hello there"), ("assistant", "Hi, how can I help?")]


def test_provider_errors_are_counted_for_prometheus(loop: LoopName) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    errors_before = value("voicecore_provider_errors_total", provider="fake-llm", retryable="false")
    failure = ProviderStatusError("bad request", provider="fake-llm", status=400)
    session, transport, _, tts = make(utterances=["hello"], replies=[FakeReply(error=failure)])

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("hello"))
        await until(lambda: "Sorry, could you repeat that?" in tts.spoken)

    run(run_call(session, transport, script), loop=loop)
    assert (
        value("voicecore_provider_errors_total", provider="fake-llm", retryable="false") == errors_before + 1
    )


# --- usage and cost -------------------------------------------------------------------------


def test_call_closed_reports_the_usage_sent_to_each_provider_and_its_cost(
    tmp_path: Path, loop: LoopName
) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    tokens = Usage(prompt_tokens=1200, completion_tokens=9, cached_tokens=1000)
    prices = {
        "usage-stt": Prices(stt_per_minute=0.6),
        "usage-llm": Prices(input_per_mtok=2.0, cached_input_per_mtok=0.5, output_per_mtok=8.0),
        "usage-tts": Prices(tts_per_kchar=0.3),
    }
    recorder = Recorder()
    audit = AuditObserver(tmp_path / "audit.db")
    transport = LoopbackTransport()
    stt = FakeSTT(["what's the weather"], latency=0.05, name="usage-stt")
    llm = FakeLLM([FakeReply("It is sunny. Highs of twenty.", usage=tokens)], name="usage-llm")
    tts = FakeTTS(first_byte=0.05, ms_per_char=40.0, name="usage-tts")
    config = SessionConfig(
        instructions="You are a test agent.",
        turn=TurnConfig(greeting="Hello, how can I help?"),
        prices=prices,
    )
    session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts, observers=(recorder, audit))
    tts_before = value("voicecore_tts_characters_total", provider="usage-tts")
    cached_before = value("voicecore_llm_tokens_total", provider="usage-llm", kind="cached_input")
    calls_costed_before = value("voicecore_call_cost_usd_count")

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: len(transport.marks_played) >= 1)
        transport.say(speech("what is the weather like"))
        await until(lambda: len(transport.marks_played) >= 3)

    run(run_call(session, transport, script), loop=loop)
    session.events.flush()
    audit.close()
    (closed,) = recorder.of(ev.CallClosed)
    usage = {entry.provider: entry for entry in closed.usage.providers}
    assert list(usage) == ["usage-stt", "usage-tts", "usage-llm"]  # in order of first use
    stt_seconds = sum(stream.received for stream in stt.opened) / PCM16_16K.bytes_per_second
    assert stt_seconds > 1.0  # the caller's speech and the silence around it
    assert usage["usage-stt"].stt_seconds == pytest.approx(stt_seconds)
    assert tts.received == ["Hello, how can I help?", "It is sunny.", "Highs of twenty."]
    characters = sum(map(len, tts.received))
    assert usage["usage-tts"].tts_characters == characters
    assert len(llm.requests) == 1
    llm_usage = usage["usage-llm"]
    assert (llm_usage.prompt_tokens, llm_usage.completion_tokens, llm_usage.cached_tokens) == (1200, 9, 1000)
    stt_cost = stt_seconds / 60 * 0.6
    llm_cost = (200 * 2.0 + 1000 * 0.5 + 9 * 8.0) / 1e6
    tts_cost = characters / 1000 * 0.3
    assert usage["usage-stt"].cost_usd == pytest.approx(stt_cost)
    assert llm_usage.cost_usd == pytest.approx(llm_cost)
    assert usage["usage-tts"].cost_usd == pytest.approx(tts_cost)
    assert closed.usage.cost_usd == pytest.approx(stt_cost + llm_cost + tts_cost)
    assert closed.usage.unpriced == ()
    assert value("voicecore_tts_characters_total", provider="usage-tts") == tts_before + characters
    assert (
        value("voicecore_llm_tokens_total", provider="usage-llm", kind="cached_input") == cached_before + 1000
    )
    assert value("voicecore_call_cost_usd_count") == calls_costed_before + 1
    import json
    import sqlite3

    with sqlite3.connect(tmp_path / "audit.db") as db:
        (payload,) = db.execute("SELECT payload FROM events WHERE kind = 'CallClosed'").fetchone()
    assert json.loads(payload)["usage"]["cost_usd"] == pytest.approx(closed.usage.cost_usd)


def test_text_cut_off_by_a_barge_in_still_counts_as_sent_to_the_tts(loop: LoopName) -> None:
    recorder = Recorder()
    long_reply = " ".join(f"This is sentence number {n} of a long answer." for n in range(1, 9))
    session, transport, _, tts = make(
        utterances=["tell me everything", "stop there"], replies=[long_reply, "Okay."], observers=(recorder,)
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        transport.say(speech("tell me everything"))
        await until(lambda: len(transport.marks_played) >= 2)
        transport.say(speech("no stop there please"))
        await until(lambda: bool(transport.clears))
        await until(lambda: "Okay." in tts.received)
        await asyncio.sleep(0.5)

    run(run_call(session, transport, script), loop=loop)
    session.events.flush()
    (closed,) = recorder.of(ev.CallClosed)
    (tts_usage,) = [entry for entry in closed.usage.providers if entry.provider == "fake-tts"]
    heard = sum(len(said.text) for said in recorder.of(ev.AgentSaid))
    assert tts_usage.tts_characters == sum(map(len, tts.received))
    assert tts_usage.tts_characters > heard  # billed for what was sent, not what was heard
    assert tts_usage.cost_usd is None  # no price table
    assert sorted(closed.usage.unpriced) == ["fake-llm", "fake-stt", "fake-tts"]


VOICEMAIL = "Hi, this is the clinic about your appointment. Please call us back."


def beep(seconds: float = 0.5, hz: float = 1000.0) -> bytes:
    """An answering machine's beep: a loud sine tone, PCM16 at 16 kHz."""
    import numpy as np

    t = np.arange(int(16000 * seconds)) / 16000
    return (12000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def answers(answered_by: str) -> float:
    """``voicecore_outbound_answers_total`` for one verdict."""
    value = REGISTRY.get_sample_value("voicecore_outbound_answers_total", {"answered_by": answered_by})
    return value or 0.0


def test_outbound_answers_are_counted_by_a_bounded_set_of_verdicts() -> None:
    before = {label: answers(label) for label in ("human", "none", "other")}
    count_outbound_answer("human")
    count_outbound_answer(None)
    count_outbound_answer("robot-overlord")  # not Twilio's: one label for all such
    assert {label: answers(label) - before[label] for label in before} == {"human": 1, "none": 1, "other": 1}
    assert answers("robot-overlord") == 0.0


def test_a_machine_past_its_beep_gets_the_calls_own_voicemail_then_the_agent_hangs_up(
    loop: LoopName,
) -> None:
    call = CallInfo(
        call_id="CA1",
        direction="outbound",
        answered_by="machine_end_beep",
        parameters={"voicemail": VOICEMAIL},
    )
    session, transport, llm, tts = make(
        utterances=[],
        replies=[],
        turn=TurnConfig(greeting="Hello!", voicemail="The agent's own message."),
        call=call,
    )
    recorder = Recorder()
    session.events.observers = (recorder,)

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: transport.hung_up)

    machines_before = answers("machine_end_beep")
    run(run_call(session, transport, script), loop=loop)
    assert answers("machine_end_beep") == machines_before + 1  # counted for the campaign's dashboard
    sentences = ["Hi, this is the clinic about your appointment.", "Please call us back."]
    assert tts.spoken == sentences  # no greeting: nobody is there to hear it
    assert len(transport.marks_played) == 2  # the whole message played before the hang-up
    assert not llm.requests
    assert recorder.of(ev.CallClosed)[0].reason == "agent ended the call (voicemail)"


def test_a_machine_mid_greeting_gets_the_message_once_its_beep_ends(loop: LoopName) -> None:
    call = CallInfo(call_id="CA2", direction="outbound", answered_by="machine_start")
    session, transport, llm, tts = make(
        utterances=["you have reached the smiths please leave a message"],
        replies=["I should never be said."],
        turn=TurnConfig(voicemail=VOICEMAIL, voicemail_silence=3.0),
        call=call,
    )
    beep_ended: list[float] = []

    async def script(transport: LoopbackTransport, session: Session) -> None:
        clock = asyncio.get_running_loop().time
        transport.say(speech("You have reached the Smiths. Please leave a message after the tone."))
        transport.say(bytes(32000))  # a second of silence, then the beep
        transport.say(beep())
        await until(lambda: not transport.speaking, within=15.0)
        beep_ended.append(clock())
        assert not tts.received  # nothing was said over the greeting or the beep
        await until(lambda: bool(tts.received))
        beep_ended.append(clock())
        await until(lambda: transport.hung_up)

    run(run_call(session, transport, script), loop=loop)
    # The beep started the message, long before 3 s of silence would have.
    assert beep_ended[1] - beep_ended[0] < 1.5
    assert tts.spoken == ["Hi, this is the clinic about your appointment.", "Please call us back."]
    assert not llm.requests  # its greeting was not taken for a caller's turn


def test_a_machine_that_never_beeps_gets_the_message_after_its_greeting_and_a_silence(
    loop: LoopName,
) -> None:
    call = CallInfo(call_id="CA2", direction="outbound", answered_by="machine_start")
    session, transport, _, tts = make(
        utterances=[], replies=[], turn=TurnConfig(voicemail=VOICEMAIL, voicemail_silence=1.0), call=call
    )
    quiet_at: list[float] = []

    async def script(transport: LoopbackTransport, session: Session) -> None:
        clock = asyncio.get_running_loop().time
        transport.say(speech("Please leave a message."))
        await until(lambda: not transport.speaking, within=15.0)
        quiet_at.append(clock())
        await until(lambda: bool(tts.received))
        quiet_at.append(clock())
        await until(lambda: transport.hung_up)

    run(run_call(session, transport, script), loop=loop)
    assert quiet_at[1] - quiet_at[0] >= 0.9  # its speech ended (VAD), then a second of silence
    assert len(transport.marks_played) == 2


@pytest.mark.parametrize(("verdict", "voicemail"), [("fax", VOICEMAIL), ("machine_end_beep", None)])
def test_a_fax_or_a_machine_with_no_message_to_leave_is_hung_up_on_at_once(
    verdict: str, voicemail: str | None, loop: LoopName
) -> None:
    call = CallInfo(call_id="CA3", direction="outbound", answered_by=verdict)
    session, transport, _, tts = make(
        utterances=[], replies=[], turn=TurnConfig(greeting="Hello!", voicemail=voicemail), call=call
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: transport.hung_up, within=3.0)

    run(run_call(session, transport, script), loop=loop)
    assert not tts.received


def test_a_goodbye_the_tts_cannot_say_still_ends_the_call(loop: LoopName) -> None:
    session, transport, _, tts = make(
        utterances=[],
        replies=[],
        turn=TurnConfig(idle_after=0.3, idle_prompts=0, goodbye="Goodbye."),
        tts=FakeTTS(first_byte=0.0, fail_on=["Goodbye."]),
    )

    async def script(transport: LoopbackTransport, session: Session) -> None:
        await until(lambda: transport.hung_up, within=5.0)

    run(run_call(session, transport, script), loop=loop)
    assert tts.received == ["Goodbye."]
    assert not transport.marks_played
