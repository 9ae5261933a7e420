"""The server over real sockets on 127.0.0.1: TwiML, signatures, calls, admission, draining, bad input.

Calls are placed by a fake Twilio (``tests/transports/fake_twilio.py``) that streams espeak-ng
speech in real time and plays the agent's audio in real time, echoing marks as Twilio does.
The agent runs on the scripted fakes of :mod:`voicecore.testing`, registered for the test, and
everything runs on the event loop ``serve`` uses (uvloop when installed).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import logging
import random
import shutil
import wave
import weakref
from array import array
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from xml.etree import ElementTree

import aiohttp
import msgspec
import pytest
from prometheus_client import REGISTRY
from twilio.request_validator import RequestValidator

from tests.transports.fake_twilio import FakeTwilio, speech
from voicecore.agent import ProviderChoice
from voicecore.audio import ulaw_decode
from voicecore.call_info import CallInfo
from voicecore.caller import TwilioCaller, recognise, simulate, summary, ulaw_from_wav, write_wav
from voicecore.config import ServeConfig
from voicecore.fakes import FakeTwilioAPI
from voicecore.logs import JsonFormatter, TextFormatter
from voicecore.providers import registry
from voicecore.runtime.loop import EndedCalls, run
from voicecore.runtime.session import SessionConfig
from voicecore.sansio import turn
from voicecore.sansio.turn import TurnConfig
from voicecore.server import GOODBYE_MESSAGE, TOKEN_PARAMETER, VoiceServer, stream_token
from voicecore.testing import FakeLLM, FakeReply, FakeSTT, FakeTTS
from voicecore.tools import Toolbox, function_tool

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng for caller speech"
)

TOKEN = "12345"
GREETING = "Hi there."
LONG_REPLY = " ".join(f"Sentence number {n} of a long answer." for n in range(1, 9))
AGENT = SessionConfig(instructions="You are a test agent.", turn=TurnConfig(greeting=GREETING))
TEST_PROVIDERS = dict.fromkeys(("stt", "llm", "tts"), ProviderChoice("test"))


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers named ``test``: the caller's words and a two-sentence reply, short fast speech."""
    entries = [
        registry.ProviderEntry(
            "stt", "test", lambda keys, options: FakeSTT(["tell me everything", "stop"], latency=0.05)
        ),
        registry.ProviderEntry("llm", "test", lambda keys, options: FakeLLM([LONG_REPLY, "Okay."])),
        registry.ProviderEntry(
            "tts", "test", lambda keys, options: FakeTTS(first_byte=0.02, ms_per_char=15.0)
        ),
    ]
    for entry in entries:
        monkeypatch.setitem(registry.PROVIDERS, (entry.role, entry.name), entry)


def config(**changes: object) -> ServeConfig:
    return ServeConfig(port=0, stt="test", llm="test", tts="test").with_overrides(**changes)


@asynccontextmanager
async def serving(
    serve_config: ServeConfig | None = None, agent: SessionConfig = AGENT
) -> AsyncIterator[VoiceServer]:
    serve_config = serve_config or config()
    server = VoiceServer(serve_config, agent, TEST_PROVIDERS)
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown(drain_timeout=0)


def stream_url(server: VoiceServer) -> str:
    return f"ws://127.0.0.1:{server.port}/twilio/stream"


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the fake's state; no single event to wait on)
            await asyncio.sleep(0.02)


VOICE_FORM = {
    "CallSid": "CA00000000000000000000000000000001",
    "AccountSid": "AC00000000000000000000000000000001",
    "From": "+14155550100",
    "To": "+14155550199",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "ApiVersion": "2010-04-01",
}


async def post_voice(
    server: VoiceServer, form: dict[str, str] = VOICE_FORM, *, signature: str | None = None
) -> tuple[int, str]:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{server.port}/twilio/voice", data=form, headers=headers) as response,
    ):
        assert response.status == 403 or response.content_type == "text/xml"
        return response.status, await response.text()


def sign(server: VoiceServer, form: dict[str, str], token: str = TOKEN) -> str:
    url = f"http://127.0.0.1:{server.port}/twilio/voice"
    return str(RequestValidator(token).compute_signature(url, form))


# --- TwiML and signatures -------------------------------------------------------------------


def test_voice_webhook_connects_the_call_to_the_stream_with_the_caller_as_parameters() -> None:
    async def main() -> None:
        async with serving() as server:
            status, body = await post_voice(server)
            assert status == 200
            stream = ElementTree.fromstring(body).find("./Connect/Stream")
            assert stream is not None
            assert stream.get("url") == stream_url(server)
            params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
            assert params == {"From": "+14155550100", "To": "+14155550199", "Direction": "inbound"}

    run(main())


class Desk:
    """An agent tool that needs to know who is calling."""

    def __init__(self) -> None:
        self.calls: list[CallInfo] = []

    @function_tool
    async def who_is_calling(self, call: CallInfo) -> str:
        """Who the caller is."""
        self.calls.append(call)
        return call.remote_number or "unknown"


@needs_espeak
def test_the_webhooks_fields_and_query_describe_the_call_to_its_tools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    desk = Desk()
    agent = SessionConfig(
        instructions="x", turn=TurnConfig(greeting=GREETING), tools=Toolbox.from_object(desk)
    )
    llm = registry.ProviderEntry(
        "llm",
        "test",
        lambda keys, options: FakeLLM([FakeReply("", tool_calls=(("who_is_calling", "{}"),)), "Hi."]),
    )
    monkeypatch.setitem(registry.PROVIDERS, ("llm", "test"), llm)

    async def main() -> None:
        async with serving(agent=agent) as server, aiohttp.ClientSession() as http:
            # The call's own data rides in the query; Twilio's fields cannot be forged through it.
            url = f"http://127.0.0.1:{server.port}/twilio/voice?ref=42&From=%2B19999999999"
            async with http.post(url, data=VOICE_FORM) as response:
                stream = ElementTree.fromstring(await response.text()).find("./Connect/Stream")
            assert stream is not None
            params = {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}
            assert params == {
                "ref": "42",
                "From": "+14155550100",
                "To": "+14155550199",
                "Direction": "inbound",
            }
            async with FakeTwilio(stream_url(server), parameters=params) as call:
                await until(lambda: len(call.marks) >= 1)
                call.say(speech("who am I speaking to"))
                await until(lambda: bool(desk.calls))
                assert server.calls[call.call_sid].session.call == desk.calls[0]

    run(main())
    expected = CallInfo(
        call_id="CA00000000000000000000000000000001",
        channel="twilio",
        from_number="+14155550100",
        to_number="+14155550199",
        parameters={"ref": "42"},
    )
    assert desk.calls == [expected]


def test_the_protocols_test_vector_still_holds() -> None:
    # ../shared/protocols.md: the same validator the server uses reproduces Twilio's vector.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert RequestValidator("12345").validate(url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_signatures_are_checked_when_an_auth_token_is_set() -> None:
    async def main() -> None:
        async with serving(config(twilio_auth_token=TOKEN)) as server:
            status, body = await post_voice(server, signature=sign(server, VOICE_FORM))
            assert status == 200
            stream = ElementTree.fromstring(body).find("./Connect/Stream")
            assert stream is not None
            params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
            assert params[TOKEN_PARAMETER] == stream_token(TOKEN, VOICE_FORM["CallSid"])
            assert (await post_voice(server))[0] == 403  # no signature
            assert (await post_voice(server, signature=sign(server, VOICE_FORM, "wrong")))[0] == 403
            tampered = {**VOICE_FORM, "From": "+19995550000"}
            assert (await post_voice(server, tampered, signature=sign(server, VOICE_FORM)))[0] == 403

    run(main())


def test_signature_uses_the_public_url_behind_a_proxy() -> None:
    async def main() -> None:
        public = "https://voice.example.com"
        async with serving(config(twilio_auth_token=TOKEN, public_url=public)) as server:
            signature = RequestValidator(TOKEN).compute_signature(f"{public}/twilio/voice", VOICE_FORM)
            status, body = await post_voice(server, signature=signature)
            assert status == 200
            assert 'url="wss://voice.example.com/twilio/stream"' in body
            assert (await post_voice(server, signature=sign(server, VOICE_FORM)))[0] == 403

    run(main())


def test_a_stream_without_the_webhooks_token_is_closed() -> None:
    async def main() -> None:
        async with serving(config(twilio_auth_token=TOKEN)) as server:
            async with FakeTwilio(stream_url(server), parameters={TOKEN_PARAMETER: "forged"}) as call:
                assert await call.closed_by_server() == 1008
                assert not call.played
            good = {TOKEN_PARAMETER: stream_token(TOKEN, "CA00000000000000000000000000000001")}
            async with FakeTwilio(stream_url(server), parameters=good) as call:
                await until(lambda: bool(call.marks))  # the greeting played
            assert not server.calls

    run(main())


# --- calls ----------------------------------------------------------------------------------


@needs_espeak
def test_a_call_hears_the_greeting_and_a_reply_and_barges_in() -> None:
    async def main() -> None:
        async with serving() as server, FakeTwilio(stream_url(server)) as call:
            await until(lambda: len(call.marks) >= 1)  # the greeting, played to the end
            assert len(call.played) > 800  # at least 0.1 s of audio
            assert set(call.played) != {0xFF}  # not silence
            call.say(speech("tell me everything"))
            await until(lambda: len(call.marks) >= 3)  # two sentences of the long reply played
            assert call.clears == 0
            call.say(speech("no, stop there please"))  # the caller talks over the agent
            await until(lambda: call.clears >= 1)
            await until(lambda: bool(call.discarded))
            assert not set(call.discarded) & set(call.marks)  # each mark echoed once
            session = server.calls[call.call_sid].session
            protocol = session.transport.protocol  # type: ignore[attr-defined]
            await until(lambda: protocol.cleared_marks == len(call.discarded))
            assert not protocol.problems
            await until(lambda: len(session.history.messages()) >= 4)
            _, greeting, user, heard = ((m["role"], m["content"]) for m in session.history.messages()[:4])
            assert greeting == ("assistant", GREETING)
            assert user == ("user", "tell me everything")
            assert heard[0] == "assistant"
            assert heard[1].startswith("Sentence number 1 of a long answer. Sentence number 2")
            assert LONG_REPLY.startswith(heard[1])
            assert len(heard[1]) < len(LONG_REPLY)

    run(main())


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@needs_espeak
def test_every_log_record_of_a_call_names_the_call_and_no_words_are_logged_at_info() -> None:
    captured = _Records()
    voicecore_logger = logging.getLogger("voicecore")
    voicecore_logger.addHandler(captured)
    level = voicecore_logger.level
    voicecore_logger.setLevel(logging.DEBUG)

    async def main() -> None:
        async with serving() as server, FakeTwilio(stream_url(server)) as call:
            await until(lambda: len(call.marks) >= 1)
            call.say(speech("tell me everything"))
            await until(lambda: len(call.marks) >= 3)
            await call.hang_up()
            await until(lambda: not server.calls)

    try:
        run(main())
    finally:
        voicecore_logger.removeHandler(captured)
        voicecore_logger.setLevel(level)
    of_call = [r for r in captured.records if r.name in ("voicecore.server", "voicecore.runtime.session")]
    messages = [r.getMessage() for r in of_call]
    assert any("started" in m for m in messages)
    assert any("ended" in m for m in messages)
    assert any("request fake-req-1" in m for m in messages)  # logged by the session's reply task
    for record in of_call:
        assert record.call_id == "CA00000000000000000000000000000001", record.getMessage()  # type: ignore[attr-defined]
        assert record.stream_sid == "MZ00000000000000000000000000000001"  # type: ignore[attr-defined]
        assert record.transport == "twilio"  # type: ignore[attr-defined]
    words = ["tell me everything", "Sentence number", GREETING]
    for record in captured.records:
        if record.levelno >= logging.INFO:
            assert not any(w.lower() in record.getMessage().lower() for w in words), record.getMessage()
    line = JsonFormatter({"worker": 1}).format(of_call[0])
    fields = msgspec.json.decode(line)
    assert fields["call_id"] == "CA00000000000000000000000000000001"
    assert fields["stream_sid"] == "MZ00000000000000000000000000000001"
    assert fields["transport"] == "twilio"
    assert fields["worker"] == 1
    assert fields["message"] == of_call[0].getMessage()
    assert {"time", "level", "logger"} <= set(fields)
    assert "[call CA00000000000000000000000000000001]: " in TextFormatter().format(of_call[0])


def test_log_format_json_writes_one_object_a_line_with_and_without_a_call() -> None:
    from voicecore import logs

    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        logs.configure("json", stream=stream)
        logging.getLogger("voicecore.test").info("outside %d", 1)
        with logs.call_scope(logs.CallFields("WS1", "browser")):
            logging.getLogger("voicecore.test").warning("inside")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before[0]:
            root.addHandler(handler)
        root.setLevel(before[1])
    outside, inside = (msgspec.json.decode(line) for line in stream.getvalue().splitlines())
    assert outside["message"] == "outside 1"
    assert "call_id" not in outside
    assert inside["call_id"] == "WS1"
    assert inside["transport"] == "browser"
    assert inside["level"] == "WARNING"


def test_dtmf_reaches_the_session_and_hang_up_ends_the_call() -> None:
    async def main() -> None:
        async with serving() as server:
            async with FakeTwilio(stream_url(server)) as call:
                await until(lambda: bool(server.calls))
                session = next(iter(server.calls.values())).session
                pressed: list[str] = []
                handle = session.machine.handle

                def spy(event: turn.Event, now: float) -> list[turn.Action]:
                    if isinstance(event, turn.Dtmf):
                        pressed.append(event.digit)
                    return handle(event, now)

                session.machine.handle = spy  # type: ignore[method-assign]
                await call.press("5")
                await until(lambda: pressed == ["5"])
            await until(lambda: not server.calls)  # stop ended the call
            assert server.admission.active == 0

    run(main())


def test_a_calls_providers_are_closed_when_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[str] = []

    class ClosingLLM(FakeLLM):
        async def aclose(self) -> None:
            closed.append("llm")

    entry = registry.ProviderEntry("llm", "test", lambda keys, options: ClosingLLM(["Okay."]))
    monkeypatch.setitem(registry.PROVIDERS, ("llm", "test"), entry)

    async def main() -> None:
        async with serving() as server:
            async with FakeTwilio(stream_url(server)):
                await until(lambda: bool(server.calls))
            await until(lambda: not server.calls)
        assert closed == ["llm"]  # the fake STT and TTS have no aclose; nothing else was closed

    run(main())


@needs_espeak
def test_a_finished_call_is_freed_by_reference_counting_alone() -> None:
    """A call that ended, barge-in and all, leaves no reference cycle behind: its session is freed
    when the call ends, not at the next full collection (which a busy server runs rarely)."""

    async def main() -> None:
        async with serving() as server:
            gc.collect()
            gc.disable()
            try:
                async with FakeTwilio(stream_url(server)) as call:
                    await until(lambda: len(call.marks) >= 1)
                    session = weakref.ref(server.calls[call.call_sid].session)
                    call.say(speech("tell me everything"))
                    await until(lambda: len(call.marks) >= 2)
                    call.say(speech("no, stop there please"))
                    await until(lambda: call.clears >= 1)
                await until(lambda: not server.calls)
                await until(lambda: session() is None, within=2.0)
            finally:
                gc.enable()

    run(main())


@needs_espeak
def test_calls_that_end_are_followed_by_a_full_collection_of_their_cycles() -> None:
    async def main() -> None:
        async with serving() as server:
            server.ended_calls = EndedCalls(every=1)
            gc.collect()
            gc.disable()  # only the server collects
            try:
                async with FakeTwilio(stream_url(server)) as call:
                    await until(lambda: len(call.marks) >= 1)
                    # The fake STT and its stream refer to each other: only a collection frees them.
                    stt = weakref.ref(server.calls[call.call_sid].session.stt)
                await until(lambda: not server.calls)
                assert server.ended_calls.collections == 1
                await until(lambda: stt() is None, within=2.0)
            finally:
                gc.enable()

    run(main())


# --- admission and draining -----------------------------------------------------------------


def test_call_beyond_the_limit_is_refused_at_the_webhook_and_at_the_stream() -> None:
    async def main() -> None:
        async with serving(config(max_calls=1)) as server:
            async with FakeTwilio(stream_url(server)) as first:
                await until(lambda: bool(server.calls))
                status, body = await post_voice(server, {**VOICE_FORM, "CallSid": "CA2"})
                assert status == 200
                root = ElementTree.fromstring(body)
                reject = root.find("Reject")
                assert reject is not None
                assert reject.get("reason") == "busy"
                assert root.find("Connect") is None
                async with FakeTwilio(stream_url(server), call_sid="CA3", stream_sid="MZ3") as second:
                    assert await second.closed_by_server() == 1013
                await until(lambda: bool(first.marks))  # the first call was not disturbed
            await until(lambda: not server.calls)
            assert (await post_voice(server, {**VOICE_FORM, "CallSid": "CA4"}))[0] == 200
            _, body = await post_voice(server, {**VOICE_FORM, "CallSid": "CA4"})
            assert "<Connect>" in body

    run(main())


def test_a_call_whose_session_crashes_gives_its_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenSTT(FakeSTT):
        async def open(self, audio: object, *, language: str) -> object:  # type: ignore[override]
            raise RuntimeError("a bug in the STT adapter")

    monkeypatch.setitem(
        registry.PROVIDERS, ("stt", "test"), registry.ProviderEntry("stt", "test", lambda k, o: BrokenSTT())
    )

    async def main() -> None:
        async with serving(config(max_calls=1)) as server:
            for n in range(2):  # the second call is not refused: the first one's slot came back
                async with FakeTwilio(stream_url(server), call_sid=f"CA{n}", stream_sid=f"MZ{n}") as call:
                    assert await call.closed_by_server() == 1000
                await until(lambda: not server.calls)
                assert server.admission.active == 0

    run(main())


def test_a_reserved_slot_keeps_its_call() -> None:
    async def main() -> None:
        async with serving(config(max_calls=1)) as server:
            assert "<Connect>" in (await post_voice(server))[1]  # reserves the only slot
            async with FakeTwilio(stream_url(server), call_sid="CA9", stream_sid="MZ9") as other:
                assert await other.closed_by_server() == 1013
            async with FakeTwilio(stream_url(server), call_sid=VOICE_FORM["CallSid"]) as call:
                await until(lambda: bool(call.marks))

    run(main())


def test_shutdown_refuses_new_calls_and_says_goodbye_after_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = registry.ProviderEntry(
        "tts", "test", lambda keys, options: FakeTTS(first_byte=0.01, ms_per_char=5.0)
    )
    monkeypatch.setitem(registry.PROVIDERS, ("tts", "test"), fast)

    async def main() -> None:
        server = VoiceServer(config(), AGENT, TEST_PROVIDERS)
        await server.start()
        port = server.port
        async with FakeTwilio(stream_url(server)) as call:
            await until(lambda: len(call.marks) >= 1)
            shutdown = asyncio.get_running_loop().create_task(server.shutdown(drain_timeout=0.3))
            await until(lambda: server.admission.draining)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    assert response.status == 503
                async with http.post(f"http://127.0.0.1:{port}/twilio/voice", data=VOICE_FORM) as response:
                    assert '<Reject reason="busy"' in await response.text()
            assert await call.closed_by_server() == 1000
            await shutdown
            assert call.marks[-1] == "goodbye"  # the closing phrase played before the socket closed
            assert call.clears >= 1
        assert not server.calls
        assert GOODBYE_MESSAGE

    run(main())


# --- bad input ------------------------------------------------------------------------------


def test_garbage_on_one_call_does_not_disturb_another() -> None:
    rng = random.Random(6)
    sid = "MZ00000000000000000000000000000001"
    garbage: list[str | bytes] = [
        "",
        "{",
        "null",
        '{"event": "media"}',
        '{"event": "media", "streamSid": "' + sid + '", "media": {"payload": "%%%"}}',
        '{"event": "media", "streamSid": "MZwrong", "media": {"payload": "AAAA"}}',
        '{"event": "mark", "streamSid": "' + sid + '", "mark": {"name": "never-sent"}}',
        '{"event": "start"}',
        '{"event": "bogus", "streamSid": "' + sid + '"}',
        "x" * 100_000,
        b"\x00\x01binary",
    ]
    garbage += [
        "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(1, 200))) for _ in range(30)
    ]

    async def main() -> None:
        async with (
            serving() as server,
            FakeTwilio(stream_url(server)) as victim,
            FakeTwilio(stream_url(server), call_sid="CA2", stream_sid="MZ2") as attacker,
        ):
            await until(lambda: len(server.calls) == 2)
            victim_session = server.calls[victim.call_sid].session
            for message in garbage:
                await attacker.send_raw(message)
            await until(lambda: len(attacker.marks) >= 1)  # the attacked call still works
            stt = victim_session._stt_stream  # the fake STT counts the caller audio it was sent
            before = stt.received
            await until(lambda: stt.received >= before + 10 * 320)  # the other call's audio flows
            problems = server.calls[attacker.call_sid].session.transport.protocol.problems  # type: ignore[attr-defined]
            assert problems["binary"] == 1
            assert problems["invalid-json"] >= 3
            assert not victim_session.transport.protocol.problems  # type: ignore[attr-defined]
            await attacker.send_raw("x" * (2 << 20))  # past the socket's limit: a clean close
            assert await attacker.closed_by_server() == 1009
            before = stt.received
            await until(lambda: stt.received >= before + 10 * 320)  # the other call still flows

    run(main())


# --- transfer -------------------------------------------------------------------------------


@needs_espeak
def test_a_warm_transfer_updates_the_call_through_the_rest_api(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = '{"to": "+14155550123", "summary": "Wants a table for two.", "warm": true}'
    reply = FakeReply("Let me put you through.", tool_calls=(("transfer_call", arguments),))
    entry = registry.ProviderEntry("llm", "test", lambda keys, options: FakeLLM([reply, "Transferring."]))
    monkeypatch.setitem(registry.PROVIDERS, ("llm", "test"), entry)

    async def main() -> None:
        async with (
            FakeTwilioAPI(auth_token=TOKEN) as api,
            serving(config(twilio_auth_token=TOKEN, twilio_api_url=api.http_url)) as server,
        ):
            token = {TOKEN_PARAMETER: stream_token(TOKEN, "CA00000000000000000000000000000001")}
            async with FakeTwilio(stream_url(server), parameters=token) as call:
                await until(lambda: bool(call.marks))
                call.say(speech("a person please"))
                assert await call.closed_by_server() == 1000
            (update,) = api.updates
            assert update.path.endswith(
                "/Accounts/AC00000000000000000000000000000001/Calls/" + call.call_sid + ".json"
            )
            account, password = base64.b64decode(update.auth.removeprefix("Basic ")).decode().split(":")
            assert (account, password) == ("AC00000000000000000000000000000001", TOKEN)
            dial = ElementTree.fromstring(update.twiml).find("./Dial/Number")
            assert dial is not None
            assert dial.text == "+14155550123"
            whisper = dial.get("url", "")
            assert whisper.startswith(f"http://127.0.0.1:{server.port}/twilio/whisper?")
            # Twilio fetches the whisper (signed) and reads the summary to the person answering.
            signature = RequestValidator(TOKEN).compute_signature(whisper, {})
            async with (
                aiohttp.ClientSession() as http,
                http.post(whisper, headers={"X-Twilio-Signature": signature}) as response,
            ):
                assert (
                    ElementTree.fromstring(await response.text()).findtext("Say") == "Wants a table for two."
                )
            async with aiohttp.ClientSession() as http, http.post(whisper) as response:
                assert response.status == 403

    run(main())


@needs_espeak
def test_end_call_hangs_up_through_the_rest_api(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = FakeReply("Goodbye!", tool_calls=(("end_call", '{"reason": "done"}'),))
    entry = registry.ProviderEntry("llm", "test", lambda keys, options: FakeLLM([reply, ""]))
    monkeypatch.setitem(registry.PROVIDERS, ("llm", "test"), entry)

    async def main() -> None:
        async with (
            FakeTwilioAPI(auth_token=TOKEN) as api,
            serving(config(twilio_auth_token=TOKEN, twilio_api_url=api.http_url)) as server,
        ):
            token = {TOKEN_PARAMETER: stream_token(TOKEN, "CA00000000000000000000000000000001")}
            async with FakeTwilio(stream_url(server), parameters=token) as call:
                await until(lambda: bool(call.marks))
                call.say(speech("that is all goodbye"))
                assert await call.closed_by_server() == 1000
            (update,) = api.updates
            assert update.status == "completed"
            assert update.path.endswith("/Calls/" + call.call_sid + ".json")

    run(main())


# --- late audio ---------------------------------------------------------------------------------


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


LATE_FRAMES = "voicecore_caller_frame_lateness_seconds_count"
UNDERRUNS = "voicecore_agent_audio_underruns_total"
UNDERRUN_SECONDS = "voicecore_agent_audio_underrun_seconds_total"


@needs_espeak
def test_a_normal_call_has_no_late_frames_and_no_underruns() -> None:
    before = [metric(name) for name in (LATE_FRAMES, UNDERRUNS, UNDERRUN_SECONDS)]

    async def main() -> None:
        async with serving() as server, FakeTwilio(stream_url(server)) as call:
            await until(lambda: len(call.marks) >= 1)
            call.say(speech("tell me everything"))
            await until(lambda: len(call.marks) >= 3)
            assert server.calls[call.call_sid].session.arrivals.late_frames == 0

    run(main())
    assert [metric(name) for name in (LATE_FRAMES, UNDERRUNS, UNDERRUN_SECONDS)] == before


@needs_espeak
def test_a_recorded_call_holds_the_caller_left_and_what_the_caller_heard_right(tmp_path: Path) -> None:
    said = speech("tell me everything")

    async def main() -> bytes:
        async with serving(config(recordings=str(tmp_path))) as server:
            async with FakeTwilio(stream_url(server)) as call:
                await until(lambda: len(call.marks) >= 1)
                call.say(said)
                session = server.calls[call.call_sid].session
                await until(lambda: len(call.marks) >= 9 and session.ledger.idle, within=20)  # all played
            await until(lambda: not server.calls)
            return bytes(call.played)

    played = run(main())
    with wave.open(str(tmp_path / "CA00000000000000000000000000000001.wav"), "rb") as recording:
        assert (recording.getnchannels(), recording.getsampwidth(), recording.getframerate()) == (2, 2, 8000)
        stereo = array("h", recording.readframes(recording.getnframes()))
    left, right = stereo[0::2].tobytes(), stereo[1::2]
    frames = said + b"\xff" * (-len(said) % 160)  # the caller's speech, as 20 ms frames
    assert ulaw_decode(frames) in left  # the caller's audio, sample for sample
    heard = array("h", ulaw_decode(played))
    assert [x for x in right if x] == [x for x in heard if x]  # the agent's, as played
    assert len(right) > len(heard)  # laid out in time: silence between the greeting and the reply


def test_a_recording_is_named_by_the_call_id_made_safe_for_a_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()

    async def main() -> None:
        async with serving(config(recordings=str(folder))) as server:
            async with FakeTwilio(stream_url(server), call_sid="../../CA1") as call:
                await until(lambda: len(call.marks) >= 1)
            await until(lambda: not server.calls)

    run(main())
    assert [path.name for path in folder.iterdir()] == ["______CA1.wav"]
    assert list(tmp_path.iterdir()) == [folder]


def test_frames_held_back_by_the_network_count_as_late() -> None:
    before = metric(LATE_FRAMES)

    async def main() -> None:
        async with serving() as server, FakeTwilio(stream_url(server)) as call:
            await until(lambda: call.frames_sent >= 10)
            call.stall(0.5)  # ~25 frames held back, then sent at once
            sent = call.frames_sent
            await until(lambda: call.frames_sent >= sent + 40)
            session = server.calls[call.call_sid].session
            await until(lambda: session.arrivals.late_frames >= 15)

    run(main())
    assert metric(LATE_FRAMES) - before >= 15


def test_a_tts_slower_than_real_time_underruns_the_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    slow = registry.ProviderEntry(
        "tts", "test", lambda keys, options: FakeTTS(first_byte=0.02, ms_per_char=15.0, realtime_factor=0.5)
    )
    monkeypatch.setitem(registry.PROVIDERS, ("tts", "test"), slow)
    before = metric(UNDERRUNS), metric(UNDERRUN_SECONDS)

    async def main() -> None:
        async with serving() as server, FakeTwilio(stream_url(server)) as call:
            await until(lambda: len(call.marks) >= 1)  # the greeting: 135 ms made in 270 ms

    run(main())
    assert metric(UNDERRUNS) - before[0] >= 1
    assert metric(UNDERRUN_SECONDS) - before[1] >= 0.05


# --- the simulated caller (python -m voicecore call) ----------------------------------------


@needs_espeak
def test_a_simulated_call_measures_each_turn_and_records_what_it_heard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = registry.ProviderEntry("llm", "test", lambda keys, options: FakeLLM(["Sure. Here it is."]))
    monkeypatch.setitem(registry.PROVIDERS, ("llm", "test"), entry)

    async def main() -> TwilioCaller:
        async with serving() as server:
            return await simulate(stream_url(server), [speech("tell me everything")], settle=0.3)

    call = run(main())
    (turn,) = call.turns
    assert turn.latency is not None
    assert turn.latency > 0
    assert call.marks[:3] == ["0.1", "1.2", "1.3"]  # greeting, then the reply's sentences
    out = tmp_path / "heard.wav"
    write_wav(out, bytes(call.played))
    assert ulaw_from_wav(out.read_bytes()) == bytes(call.played)  # μ-law survives the round trip
    assert "turn 1: you spoke" in summary(call)
    # FakeTTS speaks 15 ms a character (8 μ-law bytes a ms); resampling adds a few ms a sentence.
    assert 0 <= len(call.greeting) - len(GREETING) * 15 * 8 < 400
    assert 0 <= len(turn.heard) - len("Sure.Here it is.") * 15 * 8 < 400  # two sentences
    assert len(call.played) == len(call.greeting) + len(turn.heard)
    words = run(recognise(FakeSTT(["the greeting"]), bytes(call.greeting)))
    assert words == "the greeting"  # the audio reached the STT and its final text came back
    text = summary(call, ["tell me everything"], ["hi there", "sure here it is"])
    assert "greeting: first agent audio" in text
    assert "  agent: hi there\nturn 1: you spoke" in text
    assert "  you: tell me everything\n  agent: sure here it is\n" in text


@needs_espeak
def test_a_simulated_call_can_talk_over_an_answer() -> None:
    async def main() -> TwilioCaller:
        async with serving() as server:
            utterances = [speech("tell me everything"), speech("stop right there please")]
            return await simulate(stream_url(server), utterances, settle=0.3, barge_in=0.4)

    call = run(main())
    first, second = call.turns
    assert first.interrupted
    assert not second.interrupted
    assert first.answered_at is not None
    # The caller waited 0.4 s into the answer (to the millisecond: both are float loop times).
    assert second.spoke_at - first.answered_at >= 0.4 - 1e-3
    # The long answer (8 sentences, seconds of audio) was cut: a clear after the caller began.
    assert any(t > second.spoke_at for t in call.clear_times)
    assert len(first.heard) < len(LONG_REPLY) * 15 * 8 // 2
    text = summary(call)
    assert "you talked over the answer 0.4" in text
    assert "clear " in text
    assert "s after you started" in text
