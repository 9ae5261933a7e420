"""A whole call with the offline stack and no fakes but the caller: the demo agent hears and answers.

The caller's words are synthesized by eSpeak NG, recognized by PocketSphinx (restricted to
the agent's phrases), answered by the intent router and spoken by eSpeak NG through a
real session; the agent's audio is then recognized again to check what it said.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

pytest.importorskip("espeakng_loader")
pytest.importorskip("pocketsphinx")

from voicecore.agent import load_agent
from voicecore.agents import FRONT_DESK
from voicecore.providers.base import PCM16_16K
from voicecore.providers.espeak import ESPEAK_FORMAT, EspeakTTS
from voicecore.providers.pocketsphinx import PocketsphinxSTT
from voicecore.providers.router import IntentRouterLLM
from voicecore.runtime.convert import AudioConverter
from voicecore.runtime.loop import run
from voicecore.runtime.session import Session
from voicecore.testing import FakeSTT, FakeTTS, LoopbackTransport


async def spoken(text: str) -> bytes:
    stream = await EspeakTTS().open(ESPEAK_FORMAT)
    await stream.push_text(text)
    await stream.end_input()
    convert = AudioConverter(ESPEAK_FORMAT, PCM16_16K)
    pcm = b"".join([convert.convert(chunk.audio) async for chunk in stream]) + convert.flush()
    await stream.aclose()
    return pcm


async def heard(stt: PocketsphinxSTT, pcm: bytes) -> str:
    stream = await stt.open(PCM16_16K, language="en")
    await stream.push_audio(pcm)
    await stream.finalize()
    text = ""
    async for update in stream:
        if update.final:
            text = update.text
            break
    await stream.aclose()
    return text


def test_the_offline_demo_agent_says_goodbye_and_hangs_up() -> None:
    agent = load_agent(FRONT_DESK)
    phrases = [example for intent in agent.intents for example in intent.examples]
    stt = PocketsphinxSTT(phrases=phrases, restrict="grammar")
    llm = IntentRouterLLM(agent.intents, threshold=agent.intent_threshold)
    config = dataclasses.replace(agent.config, turn=dataclasses.replace(agent.config.turn, greeting=None))
    transport = LoopbackTransport(PCM16_16K)
    session = Session(config, transport=transport, stt=stt, llm=llm, tts=EspeakTTS(language="en"))

    async def call() -> str:
        transport.say(await spoken("thank you goodbye"))
        async with asyncio.timeout(20):
            await session.run()  # the agent hangs up once its goodbye has played
        return await heard(stt, bytes(transport.played))

    reply_heard = run(call())
    assert transport.hung_up
    messages = [(m["role"], m.get("content") or "") for m in session.history.messages()[1:]]
    assert messages[0][0] == "user"
    assert "goodbye" in messages[0][1]
    assert ("assistant", "Thank you for calling Luigi's. Goodbye!") in messages
    assert llm.stats["exact"] + llm.stats["fuzzy"] == 1
    assert llm.stats["tool_result"] == 1
    assert "goodbye" in reply_heard


def test_a_booking_asks_for_the_missing_slot_and_calls_the_tool_through_the_session() -> None:
    agent = load_agent(FRONT_DESK)
    stt = FakeSTT(["I would like to book a table", "four people at eight"], latency=0.01)
    llm = IntentRouterLLM(agent.intents, threshold=agent.intent_threshold)
    config = dataclasses.replace(agent.config, turn=dataclasses.replace(agent.config.turn, greeting=None))
    transport = LoopbackTransport(PCM16_16K)
    tts = FakeTTS(first_byte=0.01, ms_per_char=5.0)
    session = Session(config, transport=transport, stt=stt, llm=llm, tts=tts)

    async def call() -> None:
        words = await spoken("hello there")
        running = asyncio.get_running_loop().create_task(session.run())
        for sentences_heard in (2, 4):  # the prompt's two sentences, then the booking's two
            transport.say(words)
            async with asyncio.timeout(10):
                while len(transport.marks_played) < sentences_heard:  # noqa: ASYNC110 (polls)
                    await asyncio.sleep(0.02)
        transport.hang_up_caller()
        await running

    run(call())
    assert tts.spoken == [
        "Of course.",
        "For how many people?",
        "Booked: a table for 4 people at 8.",
        "See you then!",
    ]
    messages = session.history.messages()
    [call_message] = [m for m in messages if m.get("tool_calls")]
    assert call_message["tool_calls"][0]["function"]["name"] == "book_table"
    assert llm.stats == {"slot_prompt": 1, "fuzzy": 1, "tool_result": 1}
