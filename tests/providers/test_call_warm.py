"""Whole calls where the session warms the LLM's and the TTS's connections at call start.

Every provider hop is a real socket to its wire fake (the caller's line is the in-process
loopback), as in test_call_tts.py. The fakes record their connections, so the tests see which
were open by the time the first completion request arrived, and that the reply reused them.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from tests.providers.calls import run_until_marks
from voicecore.errors import ProviderError
from voicecore.fakes.cartesia import FakeCartesia
from voicecore.fakes.cartesia import audio_for as cartesia_audio
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import FakeElevenLabs
from voicecore.fakes.elevenlabs import audio_for as elevenlabs_audio
from voicecore.fakes.openai import FakeChatServer, Reply
from voicecore.fakes.server import LocalServer
from voicecore.providers.base import LLM, MULAW_8K, TTS, AudioFormat, TTSStream
from voicecore.providers.cartesia import CartesiaTTS
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.failover import FailoverTTS
from voicecore.providers.openai import OpenAILLM
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.cartesia import output_format
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import LoopbackTransport

QUESTION = "What are your opening hours?"


class WatchedChatServer(FakeChatServer):
    """Notes, as each completion request arrives, how many connections the other fakes had seen."""

    def __init__(self, reply: str, watched: list[LocalServer]) -> None:
        super().__init__([Reply(reply)])
        self.watched = watched
        self.seen_at_request: list[tuple[int, list[int]]] = []  # (LLM requests so far, TTS connections)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.seen_at_request.append((len(self.peers), [len(set(s.peers)) for s in self.watched]))
        return await super()._chat(request)


class RefusesFirstHandshake(FakeCartesia):
    """Refuses its first WebSocket handshake with 503 (the warm-up's), then serves as usual."""

    refused = False

    def _refusal(self, request: web.Request) -> web.Response | None:
        if not self.refused:
            self.refused = True
            return web.json_response({"error": "overloaded"}, status=503)
        return super()._refusal(request)


class SlowHandshake(FakeCartesia):
    """Answers each WebSocket handshake only once ``release`` is set, so a warm-up stays in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.handshakes = 0  # started, answered or not

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.handshakes += 1
        await self.release.wait()
        return await super()._handle(request)


async def _call(llm: LLM, tts: TTS, dg: FakeDeepgram) -> tuple[LoopbackTransport, Session]:
    """One call: the caller asks once, hears the reply's sentence, hangs up."""
    transport = LoopbackTransport(MULAW_8K)
    stt = DeepgramSTT(api_key="dg-key", base_url=dg.ws_url)
    config = SessionConfig(instructions="Be brief.", turn=TurnConfig(end_of_turn="stt"))
    session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts)

    try:
        await run_until_marks(session, transport, marks=1)
    finally:
        for provider in (stt, llm, tts):
            await provider.aclose()
    return transport, session


def _utterance() -> FakeDeepgram:
    return FakeDeepgram([Utterance(QUESTION, audio_bytes=MULAW_8K.bytes_per_second // 4)])


def test_the_llm_and_tts_connections_are_open_before_the_first_request() -> None:
    async def main() -> tuple[LoopbackTransport, WatchedChatServer, FakeCartesia]:
        tts_server = FakeCartesia()
        async with (
            _utterance() as dg,
            tts_server,
            WatchedChatServer("We open at nine.", [tts_server]) as llm_server,
        ):
            llm = OpenAILLM(model="m", base_url=llm_server.base_url)
            tts = CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=tts_server.ws_url)
            transport, _ = await _call(llm, tts, dg)
        return transport, llm_server, tts_server

    transport, llm_server, tts_server = asyncio.run(main())
    assert llm_server.seen_at_request == [(1, [1])], (
        "the warm-up's request and the TTS socket both came before the first completion request"
    )
    assert len(set(llm_server.peers)) == 1, "the completion reused the connection the warm-up opened"
    assert len(tts_server.connections) == 1, "the reply used the socket opened at call start"
    assert transport.played, "the caller heard the reply"


def test_the_greeting_waits_for_the_tts_warm_up_in_flight_rather_than_dialling_again() -> None:
    async def main() -> tuple[LoopbackTransport, SlowHandshake]:
        tts_server = SlowHandshake()
        async with FakeDeepgram([]) as dg, tts_server, FakeChatServer() as llm_server:
            transport = LoopbackTransport(MULAW_8K)
            stt = DeepgramSTT(api_key="dg-key", base_url=dg.ws_url)
            llm = OpenAILLM(model="m", base_url=llm_server.base_url)
            tts = CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=tts_server.ws_url)
            config = SessionConfig(instructions="Be brief.", turn=TurnConfig(greeting="Hello there."))
            session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts)
            greeting_opens = asyncio.Event()
            real_open = tts.open

            async def open_noted(audio: AudioFormat, *, voice: str | None = None) -> TTSStream:
                greeting_opens.set()
                return await real_open(audio, voice=voice)

            tts.open = open_noted  # type: ignore[method-assign]

            async def caller() -> None:
                await greeting_opens.wait()
                assert tts_server.handshakes == 1  # the warm-up's, unanswered
                tts_server.release.set()  # answered only now, while the greeting's open is waiting
                while not transport.marks_played:  # noqa: ASYNC110 (the loopback has no event for marks)
                    await asyncio.sleep(0.02)
                transport.hang_up_caller()

            try:
                async with asyncio.timeout(15):
                    await asyncio.gather(session.run(), caller())
            finally:
                for provider in (stt, llm, tts):
                    await provider.aclose()
        return transport, tts_server

    transport, tts_server = asyncio.run(main())
    assert tts_server.handshakes == 1, "the greeting's open waited for the warm-up's socket"
    assert bytes(transport.played).startswith(cartesia_audio("Hello there. ", output_format("mulaw", 8000)))


def test_a_failed_tts_warm_up_is_logged_and_the_reply_opens_its_own_socket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> tuple[LoopbackTransport, FakeCartesia]:
        async with (
            _utterance() as dg,
            RefusesFirstHandshake() as tts_server,
            FakeChatServer(["We open at nine."]) as llm_server,
        ):
            llm = OpenAILLM(model="m", base_url=llm_server.base_url)
            tts = CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=tts_server.ws_url)
            transport, _ = await _call(llm, tts, dg)
        return transport, tts_server

    with caplog.at_level(logging.WARNING, logger="voicecore.runtime.session"):
        transport, tts_server = asyncio.run(main())
    warnings = [r.getMessage() for r in caplog.records if "warming cartesia failed" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "503" in warnings[0]
    assert tts_server.refused
    assert len(tts_server.connections) == 1, "the reply's own handshake succeeded"
    assert transport.marks_played, "the call went on as usual"


def test_failover_tts_warms_every_provider_and_a_refused_one_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> tuple[LoopbackTransport, WatchedChatServer, FakeElevenLabs]:
        refusing, standby = FakeCartesia(handshake_status=503), FakeElevenLabs()
        async with (
            _utterance() as dg,
            refusing,
            standby,
            WatchedChatServer("We open at nine.", [refusing, standby]) as llm_server,
        ):
            llm = OpenAILLM(model="m", base_url=llm_server.base_url)
            tts = FailoverTTS(
                [
                    CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=refusing.ws_url),
                    ElevenLabsTTS(voice_id="v", api_key="xi-key", base_url=standby.ws_url),
                ]
            )
            transport, _ = await _call(llm, tts, dg)
        return transport, llm_server, standby

    with caplog.at_level(logging.WARNING, logger="voicecore.providers.failover"):
        transport, llm_server, standby = asyncio.run(main())
    assert llm_server.seen_at_request == [(1, [1, 1])], "both TTS handshakes came before the request"
    assert "warming cartesia failed" in caplog.text
    assert len(standby.connections) == 1, "the stand-in spoke on the socket warmed at call start"
    assert bytes(transport.played).startswith(elevenlabs_audio("We open at nine.", "ulaw_8000"))


def test_a_warm_up_still_running_when_the_call_ends_is_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    """An LLM server that accepts the connection and never answers keeps the warm-up waiting."""

    async def main() -> list[asyncio.Task[object]]:
        accepted = asyncio.Event()
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)
            accepted.set()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, FakeDeepgram([]) as dg, FakeCartesia() as tts_server:
            transport = LoopbackTransport(MULAW_8K)
            stt = DeepgramSTT(api_key="dg-key", base_url=dg.ws_url)
            llm = OpenAILLM(model="m", base_url=f"http://127.0.0.1:{port}/v1")
            tts = CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=tts_server.ws_url)
            session = Session(
                SessionConfig(instructions="Be brief."), transport=transport, stt=stt, llm=llm, tts=tts
            )

            async def caller() -> None:
                await accepted.wait()  # the warm-up's request is out, and will get no answer
                transport.hang_up_caller()

            async with asyncio.timeout(10):
                await asyncio.gather(session.run(), caller())
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for provider in (stt, llm, tts):
                await provider.aclose()
            for writer in held:
                writer.close()
        return left

    with caplog.at_level(logging.WARNING):
        left = asyncio.run(main())
    assert not [t.get_name() for t in left if t.get_name().startswith("warm-")], "the warm-up was cancelled"
    assert "warming" not in caplog.text, "a cancelled warm-up is not a failure"


def test_warm_ups_are_cancelled_when_the_stt_cannot_open() -> None:
    """The call never starts: the LLM warm-up, still waiting on a silent server, ends with it."""

    async def main() -> tuple[list[asyncio.Task[object]], BaseException]:
        accepted = asyncio.Event()
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)
            accepted.set()

        async def hang_up_once_warming(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accepted.wait()  # the STT's handshake fails only once the LLM warm-up is out
            writer.close()

        llm_server = await asyncio.start_server(silent, "127.0.0.1", 0)
        stt_server = await asyncio.start_server(hang_up_once_warming, "127.0.0.1", 0)
        llm_port, stt_port = (s.sockets[0].getsockname()[1] for s in (llm_server, stt_server))
        async with llm_server, stt_server, FakeCartesia() as tts_server:
            stt = DeepgramSTT(api_key="dg-key", base_url=f"ws://127.0.0.1:{stt_port}", max_reconnects=0)
            llm = OpenAILLM(model="m", base_url=f"http://127.0.0.1:{llm_port}/v1")
            tts = CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=tts_server.ws_url)
            session = Session(
                SessionConfig(instructions="Be brief."),
                transport=LoopbackTransport(MULAW_8K),
                stt=stt,
                llm=llm,
                tts=tts,
            )
            async with asyncio.timeout(10):
                failure = await asyncio.gather(session.run(), return_exceptions=True)
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for provider in (stt, llm, tts):
                await provider.aclose()
            for writer in held:
                writer.close()
        return left, failure[0]

    left, failure = asyncio.run(main())
    assert isinstance(failure, ProviderError), failure
    assert not [t.get_name() for t in left if t.get_name().startswith("warm-")], "the warm-ups were cancelled"
