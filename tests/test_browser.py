"""The browser side of the server over real sockets on 127.0.0.1: ``/ws`` and the page.

A Python client of the protocol (``tests/transports/fake_browser.py``) streams espeak-ng
speech and plays the agent's audio in real time, acknowledging marks as the page does. The
agent runs on the scripted fakes of :mod:`voicecore.testing` (the ``fakes`` fixture of
``tests/test_server.py``).
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.test_server import (
    AGENT,
    GREETING,
    LONG_REPLY,
    TEST_PROVIDERS,
    config,
    fakes,
    needs_espeak,
    serving,
    until,
)
from tests.transports.fake_browser import BrowserClient, pcm_speech
from voicecore.providers import registry
from voicecore.runtime.loop import run
from voicecore.runtime.session import SessionConfig
from voicecore.sansio import turn
from voicecore.sansio.turn import TurnConfig
from voicecore.server import BUSY_MESSAGE, VoiceServer
from voicecore.testing import FakeLLM, FakeReply

__all__ = ["fakes"]  # the providers named "test", used by every test here


def ws_url(server: VoiceServer) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"


@needs_espeak
def test_a_browser_call_hears_the_greeting_and_a_reply_and_barges_in() -> None:
    async def main() -> None:
        async with serving() as server, BrowserClient(ws_url(server)) as call:
            await until(lambda: len(call.marks) >= 1)  # the greeting, played to the end
            assert len(call.played) > 3200  # at least 0.1 s of audio
            assert any(call.played)  # not silence
            await until(lambda: call.agent_text() == [GREETING])  # shown once heard
            call.say(pcm_speech("tell me everything"))
            await until(lambda: len(call.marks) >= 3)  # two sentences of the long reply played
            assert call.caller_text() == ["tell me everything"]
            assert call.clears == 0
            call.say(pcm_speech("no, stop there please"))  # the caller talks over the agent
            await until(lambda: call.clears >= 1)
            assert call.dropped
            assert not set(call.dropped) & set(call.marks)
            session = next(iter(server.calls.values())).session
            protocol = session.transport.protocol  # type: ignore[attr-defined]
            assert not protocol.problems
            await until(lambda: len(session.history.messages()) >= 4)
            _, greeting, user, heard = ((m["role"], m["content"]) for m in session.history.messages()[:4])
            assert greeting == ("assistant", GREETING)
            assert user == ("user", "tell me everything")
            assert heard[1].startswith("Sentence number 1 of a long answer. Sentence number 2")
            assert LONG_REPLY.startswith(heard[1])
            assert len(heard[1]) < len(LONG_REPLY)
            # The page is told what was heard of the cut reply, and where the turn's time went.
            await until(lambda: any(t.get("complete") is False for t in call.transcripts))
            cut = next(t for t in call.transcripts if t.get("complete") is False)
            assert cut["text"] == heard[1]
            await until(lambda: bool(call.turns))
            assert call.turns[0]["turn"] >= 1
            assert call.turns[0]["ms"]["first_audio_played"] is not None

    run(main())


def test_a_browser_calls_parameters_fill_in_the_agents_variables() -> None:
    agent = SessionConfig(
        instructions="You help {{first_name}} with their {{plan}} plan.",
        turn=TurnConfig(greeting="Hi {{first_name|there}}, you're on {{call.channel}}."),
    )

    async def main() -> None:
        async with (
            serving(agent=agent) as server,
            BrowserClient(ws_url(server), parameters={"first_name": "Ana", "plan": 7}) as call,
        ):
            await until(lambda: call.agent_text() == ["Hi Ana, you're on browser."])
            session = next(iter(server.calls.values())).session
            assert session.call.parameters == {"first_name": "Ana"}  # the number was not a string
            assert session.history.messages()[0]["content"] == "You help Ana with their  plan."
            assert session.transport.protocol.problems == {"invalid-parameter": 1}  # type: ignore[attr-defined]

    run(main())


@needs_espeak
def test_a_browser_at_48k_is_resampled_once_and_hears_48k_audio() -> None:
    async def main() -> None:
        async with serving() as server, BrowserClient(ws_url(server), sample_rate=48000) as call:
            await until(lambda: len(call.marks) >= 1)
            session = next(iter(server.calls.values())).session
            assert session.transport.input_format.sample_rate == 16000
            assert session.transport.output_format.sample_rate == 48000
            call.say(pcm_speech("tell me everything", 48000))
            await until(lambda: call.caller_text() == ["tell me everything"])
            await until(lambda: len(call.marks) >= 2)

    run(main())


def test_bad_frames_are_skipped_and_the_call_goes_on() -> None:
    async def main() -> None:
        async with serving() as server, BrowserClient(ws_url(server)) as call:
            for frame in ("not json", '{"type": "dance"}', '{"type": "played", "mark": "x"}', b"\x01"):
                await call.send_raw(frame)
            await until(lambda: len(call.marks) >= 1)  # the greeting still played and was acked
            session = next(iter(server.calls.values())).session
            protocol = session.transport.protocol  # type: ignore[attr-defined]
            await until(lambda: sum(protocol.problems.values()) == 4)
            assert set(protocol.problems) == {"invalid-json", "unknown-type", "unknown-mark", "odd-audio"}
            await until(lambda: call.agent_text() == [GREETING])

    run(main())


def test_a_full_server_refuses_a_browser_with_1013() -> None:
    async def main() -> None:
        async with serving(config(max_calls=1)) as server, BrowserClient(ws_url(server)) as first:
            await until(lambda: bool(server.calls))
            async with BrowserClient(ws_url(server)) as second:
                assert await second.closed_by_server() == 1013
                assert second.end == {"type": "end", "reason": "busy", "message": BUSY_MESSAGE}
            await until(lambda: len(first.marks) >= 1)  # the first call is untouched

    run(main())


def test_shutdown_says_goodbye_to_a_browser_call_and_ends_it() -> None:
    async def main() -> None:
        server = VoiceServer(config(), AGENT, TEST_PROVIDERS)
        await server.start()
        async with BrowserClient(ws_url(server)) as call:
            await until(lambda: len(call.marks) >= 1)
            shutdown = asyncio.get_running_loop().create_task(server.shutdown(drain_timeout=0.3))
            async with BrowserClient(ws_url(server)) as late:  # draining: refused
                assert await late.closed_by_server() == 1013
            assert await call.closed_by_server() == 1000
            await shutdown
            assert call.marks[-1] == "goodbye"  # the closing phrase played before the socket closed
            assert call.end == {"type": "end", "reason": "shutdown"}
        assert not server.calls

    run(main())


def test_a_hang_up_from_the_browser_ends_the_call() -> None:
    async def main() -> None:
        async with serving() as server:
            async with BrowserClient(ws_url(server)) as call:
                await until(lambda: bool(server.calls))
                await call.hang_up()
            await until(lambda: not server.calls)

    run(main())


@needs_espeak
def test_a_transfer_ends_a_browser_call_saying_where_to(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = '{"to": "+14155550123"}'
    reply = FakeReply("Let me put you through.", tool_calls=(("transfer_call", arguments),))
    entry = registry.ProviderEntry("llm", "test", lambda keys, options: FakeLLM([reply, "Transferring."]))
    monkeypatch.setitem(registry.PROVIDERS, ("llm", "test"), entry)

    async def main() -> None:
        async with serving() as server, BrowserClient(ws_url(server)) as call:
            await until(lambda: bool(call.marks))
            call.say(pcm_speech("a person please"))
            assert await call.closed_by_server() == 1000
            assert call.end is not None
            assert call.end["reason"] == "transfer"
            assert "+14155550123" in call.end["message"]
            await until(lambda: not server.calls)

    run(main())


def test_key_presses_reach_the_session() -> None:
    async def main() -> None:
        async with serving() as server, BrowserClient(ws_url(server)) as call:
            await until(lambda: bool(server.calls))
            session = next(iter(server.calls.values())).session
            pressed: list[str] = []
            handle = session.machine.handle

            def spy(event: turn.Event, now: float) -> list[turn.Action]:
                if isinstance(event, turn.Dtmf):
                    pressed.append(event.digit)
                return handle(event, now)

            session.machine.handle = spy  # type: ignore[method-assign]
            await call.send({"type": "dtmf", "digit": "7"})
            await until(lambda: pressed == ["7"])

    run(main())


def test_a_page_from_another_site_may_not_open_the_socket() -> None:
    async def main() -> None:
        async with serving() as server, aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(ws_url(server), headers={"Origin": "https://elsewhere.example"})
            assert refused.value.status == 403
            origin = {"Origin": f"http://127.0.0.1:{server.port}"}
            async with http.ws_connect(ws_url(server), headers=origin) as ws:
                await ws.send_json({"type": "start", "sample_rate": 16000})
                await until(lambda: bool(server.calls))

    run(main())


@pytest.mark.parametrize("path", ["/", "/web/app.js", "/web/worklet.js"])
def test_the_page_is_served(path: str) -> None:
    async def main() -> None:
        async with serving(agent=AGENT) as server, aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.port}{path}") as response:
                assert response.status == 200
                body = await response.text()
            assert ("AudioWorklet" in body) or ("registerProcessor" in body) or ("/web/app.js" in body)

    run(main())


def test_browser_audio_held_back_counts_as_late_against_the_audio_received() -> None:
    frame = b"\x00\x00" * 320  # 20 ms at 16 kHz

    async def main() -> None:
        async with (
            serving() as server,
            aiohttp.ClientSession() as http,
            http.ws_connect(ws_url(server)) as ws,
        ):
            await ws.send_str('{"type": "start", "sample_rate": 16000}')
            for _ in range(10):  # real time
                await ws.send_bytes(frame)
                await asyncio.sleep(0.02)
            await until(lambda: bool(server.calls))
            (call,) = server.calls.values()
            assert call.session.arrivals.late_frames == 0
            await asyncio.sleep(0.5)  # the network holds ~25 frames back, then delivers them at once
            for _ in range(25):
                await ws.send_bytes(frame)
            await until(lambda: call.session.arrivals.late_frames >= 15)
            await ws.send_str('{"type": "stop"}')

    run(main())
