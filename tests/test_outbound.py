"""Outbound calls: ``POST /calls`` places a call through Twilio's REST API, and the answered
call runs like any other. The fake Twilio API plays the network and the callee: it requests
the server's webhook, signed, and opens the stream the TwiML names.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from voicecore import cli
from voicecore.agent import ProviderChoice
from voicecore.call_info import CallInfo
from voicecore.config import ServeConfig
from voicecore.errors import ConfigError
from voicecore.fakes import FakeTwilioAPI
from voicecore.providers import registry
from voicecore.runtime.loop import run
from voicecore.runtime.session import SessionConfig
from voicecore.sansio.outbound import (
    DialRequest,
    DialRequestError,
    check_variables,
    parse_dial_request,
    webhook_url,
)
from voicecore.sansio.turn import TurnConfig
from voicecore.server import VoiceServer
from voicecore.testing import FakeLLM, FakeSTT, FakeTTS

ACCOUNT = "AC00000000000000000000000000000001"
AUTH_TOKEN = "12345"
API_TOKEN = "api-secret"
CALLER_ID = "+14155550199"
AGENT = SessionConfig(instructions="You remind people.", turn=TurnConfig(greeting="Hi, a reminder."))
PROVIDERS = dict.fromkeys(("stt", "llm", "tts"), ProviderChoice("test"))


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [
        registry.ProviderEntry("stt", "test", lambda keys, options: FakeSTT([], latency=0.05)),
        registry.ProviderEntry("llm", "test", lambda keys, options: FakeLLM(["Okay."])),
        registry.ProviderEntry(
            "tts", "test", lambda keys, options: FakeTTS(first_byte=0.02, ms_per_char=15.0)
        ),
    ]
    for entry in entries:
        monkeypatch.setitem(registry.PROVIDERS, (entry.role, entry.name), entry)


# --- the request, without I/O -------------------------------------------------------------


def test_a_dial_request_names_the_callee_and_may_carry_the_calls_data() -> None:
    body = b'{"to": "+14155550100", "parameters": {"appointment": "Tue 3pm"}, "machine_detection": true}'
    assert parse_dial_request(body, default_from=CALLER_ID) == DialRequest(
        "+14155550100", CALLER_ID, {"appointment": "Tue 3pm"}, True, None
    )
    own_caller_id = b'{"to": "+14155550100", "from": "+14155550111", "ring_timeout": 20}'
    assert parse_dial_request(own_caller_id, default_from=None) == DialRequest(
        "+14155550100", "+14155550111", {}, False, 20
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "the body must be a JSON object"),
        (b"{}", "the body must be a JSON object"),
        (b'{"to": "4155550100"}', "'to' must be an E.164 number like +14155550100, not '4155550100'"),
        (b'{"to": "+14155550100", "from": "me"}', "'from' must be an E.164 number"),
        (b'{"to": "+14155550100", "extra": 1}', "the body must be a JSON object"),
        (b'{"to": "+14155550100", "parameters": {"From": "+1999"}}', "'From' is set by the server"),
        (b'{"to": "+14155550100", "parameters": {"voicecore_token": "x"}}', "is set by the server"),
        (b'{"to": "+14155550100", "parameters": {"a b": "x"}}', "use 1-64 letters"),
        (
            b'{"to": "+14155550100", "parameters": {"now.date": "x"}}',
            "'now.date': 'now', 'now.*' and 'call.*'",
        ),
        (b'{"to": "+14155550100", "parameters": {"call.from": "x"}}', "name built-in variables"),
        (b'{"to": "+14155550100", "parameters": {"a": 1}}', "the body must be a JSON object"),
        (b'{"to": "+14155550100", "ring_timeout": 1}', "'ring_timeout' must be 5 to 600 seconds, not 1"),
    ],
)
def test_a_dial_request_that_cannot_be_dialled_says_what_to_change(body: bytes, message: str) -> None:
    with pytest.raises(DialRequestError, match=re.escape(message)):
        parse_dial_request(body, default_from=CALLER_ID)


def test_without_a_caller_id_a_request_must_name_its_from_number() -> None:
    with pytest.raises(DialRequestError, match="give 'from'"):
        parse_dial_request(b'{"to": "+14155550100"}', default_from=None)


def test_a_call_must_carry_every_variable_the_agent_names_without_a_default() -> None:
    texts = {
        "instructions": "Remind {{first_name}} of {{when}} on {{now.date}}.",
        "greeting": "Hi {{first_name|}}.",
    }
    check_variables(DialRequest("+14155550100", CALLER_ID, {"first_name": "Ana", "when": "Tue"}), texts)
    with pytest.raises(
        DialRequestError,
        match=re.escape(
            "the agent needs parameters this call lacks: first_name (in instructions); when (in "
            "instructions); give them in 'parameters', or give the agent a default like {{first_name|...}}"
        ),
    ):
        check_variables(DialRequest("+14155550100", CALLER_ID, {"first_name": ""}), texts)


def test_parameters_ride_in_the_webhooks_query() -> None:
    assert webhook_url("https://agent.example/", {}) == "https://agent.example/twilio/voice"
    assert (
        webhook_url("https://agent.example", {"name": "Ada L", "at": "3pm&4pm"})
        == "https://agent.example/twilio/voice?name=Ada+L&at=3pm%264pm"
    )


def test_outbound_calls_need_the_account_and_a_public_url() -> None:
    with pytest.raises(
        ConfigError, match="need TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN and VOICECORE_PUBLIC_URL"
    ):
        ServeConfig(api_token="x").validate()
    with pytest.raises(ConfigError, match=r"VOICECORE_CALLER_ID must be an E\.164 number"):
        ServeConfig(caller_id="415").validate()


# --- through the server and the fake Twilio API -------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def outbound_server(
    api: FakeTwilioAPI, agent: SessionConfig = AGENT, **changes: Any
) -> AsyncIterator[VoiceServer]:
    """A server whose public URL is its own address, placing calls through ``api``."""
    port = free_port()
    settings: dict[str, Any] = {
        "port": port,
        "public_url": f"http://127.0.0.1:{port}",
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_account_sid": ACCOUNT,
        "twilio_api_url": api.http_url,
        "api_token": API_TOKEN,
        "caller_id": CALLER_ID,
        "stt": "test",
        "llm": "test",
        "tts": "test",
    } | changes
    server = VoiceServer(ServeConfig(**settings).validate(), agent, PROVIDERS)
    await server.start()
    try:
        yield server
    finally:
        await server.shutdown(drain_timeout=0)


async def place(
    server: VoiceServer, body: dict[str, Any], token: str = API_TOKEN
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{server.port}/calls", json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the fakes' state; no single event to wait on)
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("machine_detection", [False, True])
def test_a_placed_call_is_answered_greets_the_callee_and_knows_its_data(machine_detection: bool) -> None:
    async def main() -> None:
        async with (
            FakeTwilioAPI(auth_token=AUTH_TOKEN, answered_by="human") as api,
            outbound_server(api) as server,
        ):
            body = {"to": "+14155550100", "parameters": {"appointment": "Tue 3pm"}}
            status, answer = await place(server, body | {"machine_detection": machine_detection})
            assert status == 201
            assert answer == {"call_sid": api.placed[0].sid, "to": "+14155550100", "from": CALLER_ID}
            placed = api.placed[0]
            assert placed.form["Url"] == f"{server.config.public_url}/twilio/voice?appointment=Tue+3pm"
            assert ("MachineDetection" in placed.form) is machine_detection
            async with asyncio.timeout(10):
                await placed.answered.wait()
            assert placed.webhook_status == 200  # the signed webhook was accepted
            callee = placed.callee
            assert callee is not None
            await until(lambda: len(callee.marks) >= 1)  # the greeting, played to the end
            assert len(callee.played) > 800
            session = server.calls[placed.sid].session
            assert session.call == CallInfo(
                call_id=placed.sid,
                channel="twilio",
                direction="outbound",
                from_number=CALLER_ID,
                to_number="+14155550100",
                answered_by="human" if machine_detection else None,
                parameters={"appointment": "Tue 3pm"},
            )
            assert session.call.remote_number == "+14155550100"

    run(main())


@pytest.mark.parametrize(
    ("parameters", "mode"),
    [
        ({"voicemail": "Your appointment is on Tuesday. Please call us back."}, "DetectMessageEnd"),
        ({}, "Enable"),
    ],
)
def test_a_machine_gets_the_calls_voicemail_after_its_beep_or_is_hung_up_on(
    parameters: dict[str, str], mode: str
) -> None:
    async def main() -> None:
        async with (
            FakeTwilioAPI(auth_token=AUTH_TOKEN, answered_by="machine") as api,
            outbound_server(api) as server,
        ):
            body = {"to": "+14155550100", "parameters": parameters, "machine_detection": True}
            status, _ = await place(server, body)
            assert status == 201
            placed = api.placed[0]
            assert placed.form["MachineDetection"] == mode  # a message waits for the beep
            async with asyncio.timeout(10):
                await placed.answered.wait()
            callee = placed.callee
            assert callee is not None
            await until(lambda: any(u.status == "completed" for u in api.updates))  # the agent hung up
            assert [u.call_sid for u in api.updates] == [placed.sid]
            if parameters:
                assert len(callee.marks) == 2  # both sentences of the message played, no greeting
                sentences = "Your appointment is on Tuesday." + "Please call us back."
                assert len(callee.played) >= 8 * 15 * len(sentences)  # 15 ms a character, all heard
            else:
                assert callee.played == b""
                assert not callee.marks

    run(main())


def test_a_call_is_placed_only_with_the_data_its_agent_names_and_is_greeted_with_it() -> None:
    agent = SessionConfig(
        instructions="You remind {{first_name}} of their {{appointment|appointment}}. It is {{now.weekday}}.",
        turn=TurnConfig(
            greeting="Hi {{first_name}}, this is {{call.from}} about your {{appointment|visit}}."
        ),
        timezone="America/New_York",
    )

    async def main() -> None:
        async with FakeTwilioAPI(auth_token=AUTH_TOKEN) as api, outbound_server(api, agent) as server:
            status, answer = await place(server, {"to": "+14155550100", "parameters": {"appointment": "x"}})
            assert status == 400
            assert answer["error"].startswith(
                "the agent needs parameters this call lacks: first_name (in instructions, greeting)"
            )
            assert not api.placed
            before = datetime.now(ZoneInfo("America/New_York"))
            status, _ = await place(server, {"to": "+14155550100", "parameters": {"first_name": "Ana"}})
            assert status == 201
            placed = api.placed[0]
            async with asyncio.timeout(10):
                await placed.answered.wait()
            callee = placed.callee
            assert callee is not None
            await until(lambda: len(callee.marks) >= 1)
            session = server.calls[placed.sid].session
            assert isinstance(session.tts, FakeTTS)
            assert session.tts.spoken == [f"Hi Ana, this is {CALLER_ID} about your visit."]
            weekdays = {f"{before:%A}", f"{datetime.now(ZoneInfo('America/New_York')):%A}"}
            assert session.history.messages()[0]["content"] in {
                f"You remind Ana of their appointment. It is {day}." for day in weekdays
            }

    run(main())


def test_placing_a_call_needs_the_api_token_and_a_valid_request() -> None:
    async def main() -> None:
        async with FakeTwilioAPI(auth_token=AUTH_TOKEN) as api, outbound_server(api) as server:
            status, answer = await place(server, {"to": "+14155550100"}, token="wrong")
            assert (status, answer) == (401, {"error": "send Authorization: Bearer <VOICECORE_API_TOKEN>"})
            status, answer = await place(server, {"to": "555"})
            assert status == 400
            assert answer["error"].startswith("'to' must be an E.164 number")
            assert api.placed == []

    run(main())


def test_twilio_refusing_the_call_is_reported_with_twilios_reason() -> None:
    async def main() -> None:
        async with FakeTwilioAPI(auth_token="another account's token") as api, outbound_server(api) as server:
            status, answer = await place(server, {"to": "+14155550100"})
            assert status == 422
            assert answer["error"] == (
                "the call was not placed: twilio: call creation answered 401: "
                "Authentication Error - invalid username (Twilio error 20003)"
            )

    run(main())


def test_outbound_calls_are_off_without_an_api_token_and_refused_when_full() -> None:
    async def main() -> None:
        async with FakeTwilioAPI(auth_token=AUTH_TOKEN, answer=False) as api:
            async with outbound_server(api, api_token=None) as server:
                status, answer = await place(server, {"to": "+14155550100"})
                assert status == 404
                assert "outbound calls are off" in answer["error"]
            async with outbound_server(api, max_calls=1) as server:
                assert server.admission.admit("CA-other", time.monotonic())  # the one line is busy
                status, answer = await place(server, {"to": "+14155550100"})
                assert (status, answer) == (503, {"error": "the server is full or draining: try again later"})
            assert api.placed == []

    run(main())


# --- the official SDK against the fake, and `voicecore dial` ------------------------------


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning")
def test_the_official_sdk_places_a_call_on_the_fake() -> None:
    from twilio.base.exceptions import TwilioRestException
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    async def main() -> None:
        async with FakeTwilioAPI(auth_token=AUTH_TOKEN, answer=False) as api:
            http = AsyncTwilioHttpClient()
            try:
                client = Client(ACCOUNT, AUTH_TOKEN, http_client=http)
                client.api.base_url = api.http_url
                call = await client.calls.create_async(
                    to="+14155550100", from_=CALLER_ID, url="https://agent.example/twilio/voice"
                )
                assert (call.sid, call.status, call.direction) == (
                    api.placed[0].sid,
                    "queued",
                    "outbound-api",
                )
                assert api.placed[0].form["Url"] == "https://agent.example/twilio/voice"
                with pytest.raises(TwilioRestException) as refused:
                    await client.calls.create_async(to="0", from_=CALLER_ID, url="https://agent.example/")
                assert (refused.value.status, refused.value.code) == (400, 21211)
            finally:
                await http.close()

    asyncio.run(main())


@pytest.fixture
def background_server() -> Iterator[tuple[VoiceServer, FakeTwilioAPI]]:
    """A server and the fake Twilio API on an event loop of their own (the CLI runs its own)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    made: list[tuple[VoiceServer, FakeTwilioAPI]] = []

    async def serve() -> None:
        async with FakeTwilioAPI(auth_token=AUTH_TOKEN, answer=False) as api, outbound_server(api) as server:
            made.append((server, api))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield made[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def test_dial_places_a_call_through_the_server(
    background_server: tuple[VoiceServer, FakeTwilioAPI],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, api = background_server
    url = f"http://127.0.0.1:{server.port}"
    monkeypatch.setenv("VOICECORE_API_TOKEN", API_TOKEN)
    assert cli.main(["dial", "+14155550100", "--server", url, "--param", "appointment=Tue 3pm"]) == 0
    assert capsys.readouterr().out == f"placed call {api.placed[0].sid} to +14155550100 from {CALLER_ID}\n"
    assert api.placed[0].form["Url"].endswith("/twilio/voice?appointment=Tue+3pm")
    assert cli.main(["dial", "555", "--server", url]) == 1
    assert "'to' must be an E.164 number" in capsys.readouterr().err
    monkeypatch.setenv("VOICECORE_API_TOKEN", "wrong")
    assert cli.main(["dial", "+14155550100", "--server", url]) == 1
    assert "send Authorization: Bearer" in capsys.readouterr().err
    assert cli.main(["dial", "+14155550100", "--server", url, "--param", "novalue"]) == 2
    assert "--param takes NAME=VALUE" in capsys.readouterr().err
    assert len(api.placed) == 1
