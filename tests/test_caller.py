"""The simulated caller sends exactly Twilio's Media Streams messages (protocols.md, section 1)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from voicecore.caller import FRAME_BYTES, TwilioCaller, media_head, media_message
from voicecore.fakes.server import LocalServer
from voicecore.sansio.call_events import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed
from voicecore.sansio.twilio import StreamStarted, TwilioProtocol


@asynccontextmanager
async def recording_server(
    protocol: TwilioProtocol, received: list[str], sockets: list[web.WebSocketResponse]
) -> AsyncIterator[str]:
    """A stream route that keeps every text message and feeds it to the server's ``protocol``."""

    async def route(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.append(ws)
        async for message in ws:
            received.append(message.data)
            protocol.receive_text(message.data)
        return ws

    server = LocalServer()
    server.app.router.add_get("/twilio/stream", route)
    async with server:
        yield f"{server.ws_url}/twilio/stream"


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (the caller's state; no single event to wait on)
            await asyncio.sleep(0.02)


async def a_call(protocol: TwilioProtocol, received: list[str]) -> TwilioCaller:
    """A call using every message: speech, a key, a played mark, a mark dropped by clear, stop."""
    sockets: list[web.WebSocketResponse] = []

    async def send_queued() -> None:
        for text in protocol.data_to_send():
            await sockets[0].send_str(text)

    async with recording_server(protocol, received, sockets) as url:
        call = TwilioCaller(
            url, call_sid="CA42", stream_sid="MZ42", account_sid="AC42", parameters={"k": "v"}
        )
        async with call:
            await until(lambda: protocol.stream_sid is not None)
            call.say(b"\x00" * (5 * FRAME_BYTES))
            await call.press("7")
            protocol.send_audio(b"\xff" * 800)
            protocol.send_mark("played")
            await send_queued()
            # Until the server has read the echo too: a clear before that would count it cleared.
            await until(lambda: call.marks == ["played"] and any('"played"' in m for m in received))
            protocol.send_audio(b"\xff" * 16000)
            protocol.send_mark("dropped")
            protocol.send_clear()
            await send_queued()
            await until(lambda: call.discarded == ["dropped"] and not call.speaking)
        await until(lambda: protocol.stopped)
    return call


def test_the_caller_sends_what_twilio_sends() -> None:
    protocol = TwilioProtocol()
    received: list[str] = []
    call = asyncio.run(a_call(protocol, received))

    # The server's own parser accepts every message and reads the call from them.
    assert not protocol.problems
    assert protocol.frames_lost == 0
    assert protocol.cleared_marks == 1
    events = protocol.events_received()
    assert events[0] == StreamStarted("MZ42", "CA42", "AC42", {"k": "v"}, "audio/x-mulaw", 8000, 1)
    assert DtmfPressed("7") in events
    assert MarkPlayed("played") in events
    assert events[-1] == CallerHungUp()

    messages: list[dict[str, Any]] = [json.loads(text) for text in received]
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    numbered = messages[1:]
    assert [m["sequenceNumber"] for m in numbered] == [str(n) for n in range(1, len(numbered) + 1)]
    assert [m["event"] for m in numbered].count("start") == 1
    assert numbered[0] == {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": "MZ42",
        "start": {
            "accountSid": "AC42",
            "streamSid": "MZ42",
            "callSid": "CA42",
            "tracks": ["inbound"],
            "customParameters": {"k": "v"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    assert numbered[-1] == {
        "event": "stop",
        "sequenceNumber": str(len(numbered)),
        "streamSid": "MZ42",
        "stop": {"accountSid": "AC42", "callSid": "CA42"},
    }
    by_event: dict[str, list[dict[str, Any]]] = {}
    for message in numbered[1:-1]:
        assert set(message) == {"event", "sequenceNumber", "streamSid", message["event"]}
        assert message["streamSid"] == "MZ42"
        by_event.setdefault(message["event"], []).append(message[message["event"]])
    assert set(by_event) == {"media", "dtmf", "mark"}
    assert by_event["dtmf"] == [{"track": "inbound_track", "digit": "7"}]
    assert by_event["mark"] == [{"name": "played"}, {"name": "dropped"}]
    media = by_event["media"]
    assert len(media) == call.frames_sent
    for chunk, body in enumerate(media, start=1):
        assert set(body) == {"track", "chunk", "timestamp", "payload"}
        assert body["track"] == "inbound"
        assert body["chunk"] == str(chunk)  # strings, from "1"
        assert body["timestamp"] == str(20 * (chunk - 1))  # ms of the stream's media clock
        assert len(base64.b64decode(body["payload"], validate=True)) == FRAME_BYTES
    payloads = [base64.b64decode(body["payload"]) for body in media]
    assert b"\x00" * FRAME_BYTES in payloads  # the caller's speech went out among the silence


def test_a_pre_encoded_media_message_is_the_json_twilio_sends() -> None:
    frame = bytes(range(FRAME_BYTES))
    payload = base64.b64encode(frame).decode()
    text = media_message(media_head("MZ42"), 3, payload, 5)

    assert json.loads(text) == {
        "event": "media",
        "streamSid": "MZ42",
        "media": {"track": "inbound", "chunk": "3", "timestamp": "40", "payload": payload},
        "sequenceNumber": "5",
    }
    protocol = TwilioProtocol()
    protocol.receive_text(json.dumps({"event": "start", "start": {"streamSid": "MZ42", "callSid": "CA42"}}))
    protocol.receive_text(text)
    assert not protocol.problems
    assert protocol.events_received()[1:] == [CallerAudio(frame, 40)]
