"""A whole call through the real adapters and their wire fakes: Deepgram → OpenAI → ElevenLabs.

The caller's line is the in-process loopback transport (real-time 20 ms frames, playback
marks echoed when the audio has played); every provider hop is a real socket to a fake that
speaks the provider's protocol. The fake Deepgram "hears" its utterance after a set amount
of audio, so no speech synthesis is needed, and the turn ends on Deepgram's endpointing.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.providers.calls import run_until_marks
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import FakeElevenLabs, audio_for
from voicecore.fakes.openai import FakeChatServer, Reply
from voicecore.providers.base import PCM16_16K, TTS
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.failover import FailoverLLM, FailoverTTS
from voicecore.providers.openai import OpenAILLM
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.testing import LoopbackTransport

SECOND_OF_AUDIO = PCM16_16K.bytes_per_second


async def call(
    llm_servers: list[FakeChatServer], *, failover: bool = False, stalled_tts: FakeElevenLabs | None = None
) -> tuple[LoopbackTransport, Session, FakeDeepgram, FakeElevenLabs]:
    """One caller turn ("What are your opening hours?") answered over the wire; two sentences heard."""
    async with (
        FakeDeepgram([Utterance("What are your opening hours?", audio_bytes=SECOND_OF_AUDIO // 4)]) as dg,
        FakeElevenLabs() as el,
    ):
        transport = LoopbackTransport(PCM16_16K)
        stt = DeepgramSTT(api_key="dg-key", base_url=dg.ws_url)
        llms = [OpenAILLM(model="m", base_url=s.base_url, name=f"llm{i}") for i, s in enumerate(llm_servers)]
        llm = FailoverLLM(llms, first_token_timeout=2) if failover else llms[0]
        tts: TTS = ElevenLabsTTS(voice_id="v", api_key="xi-key", base_url=el.ws_url)
        ttss = [tts]
        if stalled_tts is not None:  # a primary TTS that never speaks, before the working one
            stalled = ElevenLabsTTS(
                voice_id="v", api_key="xi-key", base_url=stalled_tts.ws_url, name="stalled"
            )
            ttss.insert(0, stalled)
            tts = FailoverTTS(ttss, first_audio_timeout=0.25)
        config = SessionConfig(instructions="Be brief.", turn=TurnConfig(end_of_turn="stt"))
        session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts)

        await run_until_marks(session, transport)
        for provider in (stt, *llms, *ttss):
            await provider.aclose()
    return transport, session, dg, el


def test_a_turn_over_the_wire_is_heard_sentence_by_sentence() -> None:
    async def main() -> tuple[LoopbackTransport, Session, FakeDeepgram, FakeChatServer, FakeElevenLabs]:
        async with FakeChatServer([Reply("We open at nine. We close at five.")]) as llm_server:
            transport, session, dg, el = await call([llm_server])
        return transport, session, dg, llm_server, el

    transport, session, dg, llm_server, el = asyncio.run(main())
    # Deepgram got the caller's line as linear16 at 16 kHz, unconverted, and was closed cleanly.
    assert dg.connections[0].query["encoding"] == "linear16"
    assert dg.connections[0].query["sample_rate"] == "16000"
    assert len(dg.connections[0].audio) >= SECOND_OF_AUDIO // 4
    assert dg.connections[0].controls[-1] == {"type": "CloseStream"}
    # The LLM was asked with the transcript.
    assert llm_server.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "What are your opening hours?",
    }
    # ElevenLabs spoke each sentence; the caller heard both, each followed by its mark.
    texts = [m["text"] for m in el.connections[0].messages if m.get("text", "").strip()]
    assert texts == ["We open at nine. ", "We close at five. "]
    assert len(transport.marks_played) == 2
    assert bytes(transport.played).startswith(audio_for("We open at nine.", "pcm_16000"))
    history = [(m["role"], m.get("content")) for m in session.history.messages()[1:]]
    assert history == [
        ("user", "What are your opening hours?"),
        ("assistant", "We open at nine. We close at five."),
    ]
    # Usage: the audio Deepgram received, the tokens OpenAI reported, the text ElevenLabs got.
    usage = {entry.provider: entry for entry in session.usage.report({}).providers}
    assert usage["deepgram"].stt_seconds == pytest.approx(len(dg.connections[0].audio) / SECOND_OF_AUDIO)
    assert (usage["llm0"].prompt_tokens, usage["llm0"].cached_tokens) == (9, 4)  # what the fake reports
    assert usage["llm0"].completion_tokens == llm_server.tokens_sent[0] == 8
    assert usage["elevenlabs"].tts_characters == len("We open at nine.") + len("We close at five.")


def test_the_turn_fails_over_to_the_backup_llm_and_the_caller_hears_it() -> None:
    async def main() -> tuple[LoopbackTransport, Session, FakeChatServer, FakeChatServer]:
        async with (
            FakeChatServer([Reply(status=503)]) as primary,
            FakeChatServer([Reply("Backup here. All is well.")], flavor="ollama") as backup,
        ):
            transport, session, _, _ = await call([primary, backup], failover=True)
        return transport, session, primary, backup

    transport, session, primary, backup = asyncio.run(main())
    assert len(primary.requests) == 1
    assert primary.requests == backup.requests, "the backup answered the same turn"
    assert len(transport.marks_played) == 2
    assert bytes(transport.played).startswith(audio_for("Backup here.", "pcm_16000"))
    tokens = {e.provider: e.completion_tokens for e in session.usage.report({}).providers if e.prompt_tokens}
    assert tokens == {"llm1": 5}  # the tokens are the backup's, which answered


def test_a_stalled_tts_is_replaced_within_the_reply_and_the_caller_hears_it_all() -> None:
    async def main() -> tuple[LoopbackTransport, Session, FakeElevenLabs, FakeElevenLabs]:
        async with (
            FakeChatServer([Reply("We open at nine. We close at five.")]) as llm_server,
            FakeElevenLabs(stall=True) as stalled,
        ):
            transport, session, _, el = await call([llm_server], stalled_tts=stalled)
        return transport, session, stalled, el

    transport, session, stalled, el = asyncio.run(main())
    assert [m["text"] for m in stalled.connections[0].messages if m.get("text", "").strip()]
    texts = [m["text"] for m in el.connections[0].messages if m.get("text", "").strip()]
    assert texts == ["We open at nine. ", "We close at five. "]
    assert len(transport.marks_played) == 2
    assert bytes(transport.played).startswith(audio_for("We open at nine.", "pcm_16000"))
    characters = {
        e.provider: e.tts_characters for e in session.usage.report({}).providers if e.tts_characters
    }
    assert characters == {"elevenlabs": len("We open at nine.") + len("We close at five.")}  # the stand-in
