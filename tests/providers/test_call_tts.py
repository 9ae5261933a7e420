"""Whole calls on a μ-law phone line through the Cartesia and Smallest AI adapters and their wire fakes.

As in test_call.py, the caller's line is the in-process loopback transport and every provider
hop (Deepgram → OpenAI → the TTS) is a real socket to a fake; here the line is μ-law at
8 kHz, as Twilio's is, so each TTS is asked for μ-law and its bytes reach the caller as sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.providers.calls import run_until_marks
from voicecore.fakes import cartesia as fake_cartesia
from voicecore.fakes import smallest as fake_smallest
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.openai import FakeChatServer, Reply
from voicecore.fakes.server import LocalServer
from voicecore.providers.base import MULAW_8K
from voicecore.providers.cartesia import CartesiaTTS
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.openai import OpenAILLM
from voicecore.providers.smallest import SmallestTTS
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.cartesia import output_format
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import LoopbackTransport


def cartesia(server: LocalServer) -> CartesiaTTS:
    return CartesiaTTS(voice_id="v", api_key="cartesia-key", base_url=server.ws_url)


def smallest(server: LocalServer) -> SmallestTTS:
    return SmallestTTS(voice_id="v", api_key="smallest-key", base_url=server.ws_url)


CASES: dict[str, tuple[Any, Any, bytes]] = {
    "cartesia": (
        fake_cartesia.FakeCartesia,
        cartesia,
        fake_cartesia.audio_for("We open at nine. ", output_format("mulaw", 8000)),
    ),
    "smallest": (
        fake_smallest.FakeSmallestTTS,
        smallest,
        fake_smallest.audio_for("We open at nine.", "ulaw", 8000),
    ),
}


@pytest.mark.parametrize("provider", sorted(CASES))
def test_the_caller_hears_the_tts_audio_sentence_by_sentence(provider: str) -> None:
    fake, make, first_sentence = CASES[provider]

    segments: list[tuple[str, list[tuple[str, float]]]] = []

    async def main() -> tuple[LoopbackTransport, Session, LocalServer]:
        async with (
            FakeDeepgram(
                [Utterance("What are your opening hours?", audio_bytes=MULAW_8K.bytes_per_second // 4)]
            ) as dg,
            FakeChatServer([Reply("We open at nine. We close at five.")]) as llm_server,
            fake() as tts_server,
        ):
            transport = LoopbackTransport(MULAW_8K)
            stt = DeepgramSTT(api_key="dg-key", base_url=dg.ws_url)
            llm = OpenAILLM(model="m", base_url=llm_server.base_url)
            tts = make(tts_server)
            config = SessionConfig(instructions="Be brief.", turn=TurnConfig(end_of_turn="stt"))
            session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts)
            append = session.ledger.append

            def record(turn: int, text: str, duration_ms: float, now: float, words: Any = ()) -> str:
                segments.append((text, [(w.text, w.end_ms) for w in words]))
                return append(turn, text, duration_ms, now, words)

            session.ledger.append = record  # type: ignore[method-assign]

            await run_until_marks(session, transport)
            for p in (stt, llm, tts):
                await p.aclose()
        return transport, session, tts_server

    transport, session, tts_server = asyncio.run(main())
    assert len(tts_server.connections) == 1, "the reply used the socket the session warmed at call start"
    assert len(transport.marks_played) == 2, "a mark after each sentence's audio"
    assert bytes(transport.played).startswith(first_sentence), "the TTS's μ-law reached the caller as sent"
    # The TTS's word times reach the playback ledger, counted from each sentence's start (10 ms
    # a character in the fakes), so a barge-in knows which words were heard.
    assert segments == [
        ("We open at nine.", [("We", 20.0), ("open", 70.0), ("at", 100.0), ("nine.", 160.0)]),
        ("We close at five.", [("We", 20.0), ("close", 80.0), ("at", 110.0), ("five.", 170.0)]),
    ]
    history = [(m["role"], m.get("content")) for m in session.history.messages()[1:]]
    assert history == [
        ("user", "What are your opening hours?"),
        ("assistant", "We open at nine. We close at five."),
    ]
