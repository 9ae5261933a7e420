"""Whole calls through the real Session with the newer STT paths: failover mid-utterance, Flux turns.

As in ``test_call.py``, the caller's line is the in-process loopback transport and every
provider hop is a real socket to a wire fake. The caller's "speech" is a quiet, distinct byte
pattern (below the VAD's threshold, so the STT alone ends the turn) that lets the test check
byte for byte what each STT server heard.
"""

from __future__ import annotations

import asyncio
from array import array

from prometheus_client import REGISTRY

from tests.providers.calls import run_until_marks
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import FakeElevenLabs, audio_for
from voicecore.fakes.openai import FakeChatServer, Reply
from voicecore.providers.base import PCM16_16K, STT
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.deepgram_flux import DeepgramFluxSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.failover import FailoverSTT
from voicecore.providers.openai import OpenAILLM
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio import turn as t
from voicecore.testing import LoopbackTransport

QUESTION = "What are your opening hours?"
HALF_SECOND = PCM16_16K.bytes_per_second // 2
#: Half a second of quiet (|sample| <= 6), distinct caller audio: the question, as the fakes hear it.
SPEECH = array("h", ((i * 37) % 13 - 6 for i in range(HALF_SECOND // 2))).tobytes()


async def call(stt: STT) -> tuple[LoopbackTransport, Session, FakeChatServer, list[t.Action]]:
    """The caller asks ``QUESTION``; the agent answers in two sentences, which the caller hears."""
    async with (
        FakeChatServer([Reply("We open at nine. We close at five.")]) as llm_server,
        FakeElevenLabs() as el,
    ):
        transport = LoopbackTransport(PCM16_16K)
        transport.say(SPEECH)
        llm = OpenAILLM(model="m", base_url=llm_server.base_url)
        tts = ElevenLabsTTS(voice_id="v", api_key="xi-key", base_url=el.ws_url)
        config = SessionConfig(instructions="Be brief.", turn=t.TurnConfig(end_of_turn="stt"))
        session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts)
        actions: list[t.Action] = []
        machine_handle, machine_tick = session.machine.handle, session.machine.tick

        def handle(event: t.Event, now: float) -> list[t.Action]:
            actions.extend(result := machine_handle(event, now))
            return result

        def tick(now: float) -> list[t.Action]:
            actions.extend(result := machine_tick(now))
            return result

        session.machine.handle, session.machine.tick = handle, tick  # type: ignore[method-assign]

        await run_until_marks(session, transport)
        for provider in (llm, tts, stt):
            await provider.aclose()  # type: ignore[union-attr]
    return transport, session, llm_server, actions


def test_the_first_stt_dies_mid_utterance_and_the_second_hears_every_word() -> None:
    async def main() -> tuple[LoopbackTransport, Session, FakeChatServer, FakeDeepgram, FakeDeepgram]:
        async with (
            FakeDeepgram([Utterance(QUESTION, HALF_SECOND)], close_after_bytes=HALF_SECOND * 2 // 5) as nova,
            FakeDeepgram([Utterance(QUESTION, HALF_SECOND, eager=False)]) as flux,
        ):
            stt = FailoverSTT(
                [
                    DeepgramSTT(api_key="dg-key", base_url=nova.ws_url, max_reconnects=0),
                    DeepgramFluxSTT(api_key="dg-key", base_url=flux.ws_url),
                ]
            )
            transport, session, llm_server, _ = await call(stt)
        return transport, session, llm_server, nova, flux

    labels = {"provider": "deepgram", "reason": "error"}
    before = REGISTRY.get_sample_value("voicecore_stt_failovers_total", labels) or 0.0
    transport, session, llm_server, nova, flux = asyncio.run(main())
    # Nova's socket died 0.2 s into the question; Flux was sent the question from its first byte.
    assert bytes(nova.connections[0].audio) == SPEECH[: HALF_SECOND * 2 // 5]
    assert bytes(flux.connections[0].audio).startswith(SPEECH), "no caller speech lost"
    assert flux.connections[0].query["encoding"] == "linear16"
    assert REGISTRY.get_sample_value("voicecore_stt_failovers_total", labels) == before + 1
    # The agent answered the whole question, and the caller heard the answer.
    assert llm_server.requests[0]["messages"][-1] == {"role": "user", "content": QUESTION}
    assert len(transport.marks_played) == 2
    assert bytes(transport.played).startswith(audio_for("We open at nine.", "pcm_16000"))
    history = [(m["role"], m.get("content")) for m in session.history.messages()[1:]]
    assert history[0] == ("user", QUESTION)


def test_flux_eager_end_of_turn_starts_the_reply_early_and_end_of_turn_confirms_it() -> None:
    async def main() -> tuple[LoopbackTransport, FakeChatServer, list[t.Action], FakeDeepgram]:
        async with FakeDeepgram([Utterance(QUESTION, HALF_SECOND)], eot_delay=0.3) as flux:
            stt = DeepgramFluxSTT(api_key="dg-key", base_url=flux.ws_url, eager_eot_threshold=0.5)
            transport, _, llm_server, actions = await call(stt)
        return transport, llm_server, actions, flux

    transport, llm_server, actions, flux = asyncio.run(main())
    replies = [a for a in actions if isinstance(a, t.StartReply | t.ConfirmReply | t.CancelReply)]
    assert replies == [t.StartReply(1, QUESTION, None, speculative=True), t.ConfirmReply(1)]
    assert len(llm_server.requests) == 1, "one LLM request: started on the eager event, kept"
    assert llm_server.requests[0]["messages"][-1] == {"role": "user", "content": QUESTION}
    assert len(transport.marks_played) == 2
    assert flux.connections[0].query["eager_eot_threshold"] == "0.5"
