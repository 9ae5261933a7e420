"""The Twilio transport on a bare aiohttp server: a Session runs over it unchanged, in both formats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from tests.transports.fake_twilio import FakeTwilio
from voicecore.errors import ProtocolError
from voicecore.fakes.server import LocalServer
from voicecore.providers.base import MULAW_8K, AudioFormat
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import FakeLLM, FakeSTT, FakeTTS
from voicecore.transports.base import CallerAudio, Transport
from voicecore.transports.twilio import TwilioTransport

Handler = Callable[[TwilioTransport], Awaitable[None]]


@asynccontextmanager
async def stream_server(handler: Handler, **transport_options: int) -> AsyncIterator[str]:
    """A server whose one route hands each accepted stream, started, to ``handler``."""

    async def route(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        transport = TwilioTransport(ws, **transport_options)
        await handler(transport)
        await transport.close()
        return ws

    server = LocalServer()
    server.app.router.add_get("/twilio/stream", route)
    async with server:
        yield f"{server.ws_url}/twilio/stream"


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the fake's state; no single event to wait on)
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("engine_rate", "session_format"), [(None, MULAW_8K), (16000, AudioFormat("pcm16", 16000))]
)
def test_a_session_greets_over_the_transport_and_hangs_up(
    engine_rate: int | None, session_format: AudioFormat
) -> None:
    seen: list[Transport] = []

    async def handler(transport: TwilioTransport) -> None:
        start = await transport.start()
        assert start.call_sid == "CA00000000000000000000000000000001"
        assert (transport.input_format, transport.output_format) == (session_format, session_format)
        seen.append(transport)
        config = SessionConfig(instructions="test", turn=TurnConfig(greeting="Hello."))
        tts = FakeTTS(first_byte=0.01, ms_per_char=20.0)
        session = Session(config, transport=transport, stt=FakeSTT(), llm=FakeLLM(), tts=tts)
        run = asyncio.get_running_loop().create_task(session.run())
        await until(lambda: session.ledger.idle and bool(tts.spoken))  # the greeting's mark came back
        await transport.hang_up()
        await run

    async def main() -> None:
        options = {} if engine_rate is None else {"engine_rate": engine_rate}
        async with stream_server(handler, **options) as url, FakeTwilio(url) as call:
            assert await call.closed_by_server() == aiohttp.WSCloseCode.OK
            assert call.marks == ["0.1"]
            assert len(call.played) >= 100 * 8  # 6 characters at 20 ms each, in μ-law 8 kHz
            assert set(call.received) <= {"media", "mark"}
            assert call.received["media"] > 0

    asyncio.run(main())
    (transport,) = seen
    assert isinstance(transport, Transport)
    assert transport.hung_up_by_agent


def test_a_stream_closed_before_start_raises_protocol_error() -> None:
    errors: list[Exception] = []

    async def handler(transport: TwilioTransport) -> None:
        try:
            await transport.start()
        except ProtocolError as error:
            errors.append(error)

    async def main() -> None:
        async with stream_server(handler) as url, aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url)
            await ws.send_str('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
            await ws.close()
            await until(lambda: bool(errors))

    asyncio.run(main())
    assert "before its 'start'" in str(errors[0])


def test_events_end_with_caller_hung_up_when_twilio_sends_stop() -> None:
    events: list[str] = []

    async def handler(transport: TwilioTransport) -> None:
        await transport.start()
        async for event in transport.events():
            events.append(type(event).__name__)

    async def main() -> None:
        async with stream_server(handler) as url, FakeTwilio(url) as call:
            await call.press("1")
            await until(lambda: "DtmfPressed" in events)
            await call.hang_up()
            await until(lambda: "CallerHungUp" in events)

    asyncio.run(main())
    assert events[-1] == "CallerHungUp"
    assert set(events[:-1]) <= {"CallerAudio", "DtmfPressed"}


def test_a_transfer_without_rest_credentials_ends_the_call() -> None:
    transports: list[TwilioTransport] = []

    async def handler(transport: TwilioTransport) -> None:
        await transport.start()
        transports.append(transport)
        await transport.transfer("+14155550123", "summary")

    async def main() -> None:
        async with stream_server(handler) as url, FakeTwilio(url) as call:
            assert await call.closed_by_server() == aiohttp.WSCloseCode.OK

    asyncio.run(main())
    (transport,) = transports
    assert transport.hung_up_by_agent
    assert transport.transferred_to is None


def test_the_protocol_counts_every_media_frame_it_decodes() -> None:
    audio_events: list[int] = []
    transports: list[TwilioTransport] = []

    async def handler(transport: TwilioTransport) -> None:
        await transport.start()
        transports.append(transport)
        async for event in transport.events():
            if isinstance(event, CallerAudio):
                audio_events.append(len(event.audio))

    async def main() -> int:
        async with stream_server(handler) as url, FakeTwilio(url) as call:
            await until(lambda: call.frames_sent >= 10)
            await call.hang_up()
            sent = call.frames_sent
            await until(lambda: len(audio_events) == sent)
            return sent

    sent = asyncio.run(main())
    (transport,) = transports
    assert transport.protocol.frames_received == sent == len(audio_events)
