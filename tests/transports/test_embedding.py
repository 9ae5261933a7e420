"""The transports inside other servers: a whole call over FastAPI (uvicorn) and ``websockets``.

Each server accepts the Media Streams socket its own way and hands it to ``TwilioTransport``;
the fake Twilio calls it over a real socket, speaks, and talks over the reply. The same call
runs over aiohttp (the socket ``serve`` uses), so the three are held to one standard.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
import uvicorn
import websockets.asyncio.server
from aiohttp import web
from fastapi import FastAPI, WebSocket

from tests.transports.fake_browser import BrowserClient
from tests.transports.fake_twilio import FakeTwilio, speech
from voicecore.fakes.server import LocalServer
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import FakeLLM, FakeSTT, FakeTTS
from voicecore.transports.sockets import UnsupportedSocketError, message_socket
from voicecore.transports.twilio import TwilioTransport
from voicecore.transports.websocket import BrowserTransport

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng for caller speech"
)

GREETING = "Hi there."
LONG_REPLY = " ".join(f"Sentence number {n} of a long answer." for n in range(1, 9))
SERVERS = ["aiohttp", "fastapi", "websockets"]

Accepted = Callable[[object], Awaitable[None]]


@asynccontextmanager
async def serving(kind: str, on_socket: Accepted) -> AsyncIterator[str]:
    """A ``kind`` server whose one WebSocket route hands each accepted socket to ``on_socket``."""
    if kind == "aiohttp":

        async def route(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await on_socket(ws)
            return ws

        local = LocalServer()
        local.app.router.add_get("/stream", route)
        async with local:
            yield f"{local.ws_url}/stream"
    elif kind == "fastapi":
        app = FastAPI()

        @app.websocket("/stream")
        async def stream(ws: WebSocket) -> None:
            await ws.accept()
            await on_socket(ws)

        async with on_uvicorn(app) as port:
            yield f"ws://127.0.0.1:{port}/stream"
    else:
        async with websockets.asyncio.server.serve(on_socket, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            yield f"ws://127.0.0.1:{port}/stream"


@asynccontextmanager
async def on_uvicorn(app: FastAPI) -> AsyncIterator[int]:
    """``app`` served by uvicorn on this event loop; yields its port on 127.0.0.1."""
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app, ws="websockets-sansio", log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
            await asyncio.sleep(0.01)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        listener.close()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the fake's state; no single event to wait on)
            await asyncio.sleep(0.02)


def agent_session(transport: TwilioTransport | BrowserTransport) -> Session:
    config = SessionConfig(instructions="You are a test agent.", turn=TurnConfig(greeting=GREETING))
    return Session(
        config,
        transport=transport,
        stt=FakeSTT(["tell me everything", "stop"], latency=0.05),
        llm=FakeLLM([LONG_REPLY, "Okay."]),
        tts=FakeTTS(first_byte=0.02, ms_per_char=15.0),
    )


@needs_espeak
@pytest.mark.parametrize("kind", SERVERS)
def test_a_call_hears_the_greeting_and_a_reply_and_barges_in(kind: str) -> None:
    sessions: list[Session] = []
    ended: list[BaseException | None] = []

    async def on_socket(ws: object) -> None:
        transport = TwilioTransport(ws)
        await transport.start()
        session = agent_session(transport)
        sessions.append(session)
        try:
            await session.run()
            ended.append(None)
        except BaseException as error:
            ended.append(error)
            raise
        finally:
            await transport.close()

    async def main() -> None:
        async with serving(kind, on_socket) as url, FakeTwilio(url) as call:
            await until(lambda: len(call.marks) >= 1)  # the greeting, played to the end
            assert len(call.played) > 800
            assert set(call.played) != {0xFF}  # not silence
            call.say(speech("tell me everything"))
            await until(lambda: len(call.marks) >= 3)  # two sentences of the long reply played
            call.say(speech("no, stop there please"))  # the caller talks over the agent
            await until(lambda: call.clears >= 1)
            await until(lambda: bool(call.discarded))
            assert not set(call.discarded) & set(call.marks)  # each mark echoed once
            session = sessions[0]
            await until(lambda: len(session.history.messages()) >= 4)
            heard = session.history.messages()[3]
            assert heard["role"] == "assistant"
            assert LONG_REPLY.startswith(heard["content"])
            assert len(heard["content"]) < len(LONG_REPLY)  # cut where the caller talked over it
            assert not session.transport.protocol.problems  # type: ignore[attr-defined]
        await until(lambda: bool(ended))  # the caller hung up: the call ends, no error
        assert ended == [None]

    asyncio.run(main())


@pytest.mark.parametrize("kind", SERVERS)
def test_a_caller_who_vanishes_mid_reply_ends_the_call_without_an_error(kind: str) -> None:
    ended: list[BaseException | None] = []

    async def on_socket(ws: object) -> None:
        transport = TwilioTransport(ws)
        await transport.start()
        config = SessionConfig(instructions="test", turn=TurnConfig(greeting=LONG_REPLY))
        tts = FakeTTS(first_byte=0.01, ms_per_char=15.0)
        session = Session(config, transport=transport, stt=FakeSTT(), llm=FakeLLM(), tts=tts)
        try:
            await session.run()
            ended.append(None)
        except BaseException as error:
            ended.append(error)
        finally:
            await transport.close()

    async def main() -> None:
        async with serving(kind, on_socket) as url:
            async with FakeTwilio(url) as call:
                await until(lambda: len(call.played) > 1600)  # the long greeting is playing
                await call.drop()  # the socket closes with no 'stop'
            await until(lambda: bool(ended))
        assert ended == [None]

    asyncio.run(main())


@pytest.mark.parametrize("kind", SERVERS)
def test_a_browser_call_runs_over_each_server(kind: str) -> None:
    ended: list[BaseException | None] = []

    async def on_socket(ws: object) -> None:
        transport = BrowserTransport(ws)
        await transport.start()
        try:
            await agent_session(transport).run()
            ended.append(None)
        except BaseException as error:
            ended.append(error)
        finally:
            await transport.end("hangup")

    async def main() -> None:
        async with serving(kind, on_socket) as url:
            async with BrowserClient(url) as page:
                await until(lambda: bool(page.marks))  # the greeting, played to the end
                assert len(page.played) > 16000 * 2 * 0.1  # PCM16 at 16 kHz, not silence
                assert any(page.played)
            await until(lambda: bool(ended))  # the page hung up: the call ends, no error
        assert ended == [None]

    asyncio.run(main())


def test_an_object_that_is_no_websocket_is_refused_with_what_to_pass() -> None:
    with pytest.raises(UnsupportedSocketError, match=r"cannot drive a dict as a WebSocket: pass an aiohttp"):
        message_socket({})
    with pytest.raises(TypeError):
        TwilioTransport(object())


def test_the_readmes_fastapi_example_answers_the_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Embedding in your own server", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    for key in ("DEEPGRAM_API_KEY", "OPENAI_API_KEY", "ELEVENLABS_VOICE_ID", "ELEVENLABS_API_KEY"):
        monkeypatch.setenv(key, "test")
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.md", "exec"), namespace)

    async def main() -> None:
        async with on_uvicorn(namespace["app"]) as port, aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/twilio/voice"
            async with http.post(url, data={"CallSid": "CA1"}) as response:
                assert response.status == 200
                assert response.content_type == "text/xml"
                stream = ElementTree.fromstring(await response.text()).find("./Connect/Stream")
            assert stream is not None
            assert stream.get("url") == f"wss://127.0.0.1:{port}/twilio/stream"

    asyncio.run(main())
