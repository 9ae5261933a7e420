"""The offline providers, for real: eSpeak NG synthesis streamed out, PocketSphinx decoding it."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

pytest.importorskip("espeakng_loader")
pytest.importorskip("pocketsphinx")

from voicecore.errors import ConfigError
from voicecore.providers.base import PCM16_16K, STT, TTS, AudioChunk, AudioFormat, TranscriptUpdate
from voicecore.providers.espeak import ESPEAK_FORMAT, EspeakTTS, espeak_voice
from voicecore.providers.pocketsphinx import PocketsphinxSTT, phrase_vocabulary
from voicecore.runtime.convert import AudioConverter


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Runs an async test on a fresh event loop (the suite has no async plugin)."""

    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(test())

    return wrapper


PHRASES = ("what time do you open", "book a table for two", "can I speak to a human")


async def synthesize(*texts: str, tts: EspeakTTS | None = None) -> list[AudioChunk]:
    stream = await (tts or EspeakTTS()).open(ESPEAK_FORMAT)
    for text in texts:
        await stream.push_text(text)
    await stream.end_input()
    chunks = [chunk async for chunk in stream]
    await stream.aclose()
    return chunks


async def speech_16k(text: str) -> bytes:
    convert = AudioConverter(ESPEAK_FORMAT, PCM16_16K)
    pcm = b"".join(convert.convert(chunk.audio) for chunk in await synthesize(text))
    return pcm + convert.flush()


async def transcribe(stt: PocketsphinxSTT, pcm: bytes) -> list[TranscriptUpdate]:
    stream = await stt.open(PCM16_16K, language="en-US")

    async def caller() -> None:
        for start in range(0, len(pcm), 640):  # 20 ms frames, as the runtime sends them
            await stream.push_audio(pcm[start : start + 640])
        await stream.push_audio(bytes(8000))
        await stream.finalize()
        await stream.aclose()

    feeding = asyncio.create_task(caller())
    updates = [update async for update in stream]
    await feeding
    return updates


def test_the_providers_implement_the_protocols() -> None:
    assert isinstance(EspeakTTS(), TTS)
    assert isinstance(PocketsphinxSTT(), STT)
    assert EspeakTTS().output_formats() == (AudioFormat("pcm16", 22050),)
    assert PocketsphinxSTT().input_formats() == (PCM16_16K,)


def test_the_voice_follows_the_language() -> None:
    assert espeak_voice("en") == "en-us"
    assert espeak_voice("en-GB") == "en-gb"
    assert espeak_voice("de") == "de"


@run
async def test_espeak_streams_each_text_with_word_timings() -> None:
    chunks = await synthesize("We open at nine.", "Goodbye for now.")
    ends = [i for i, chunk in enumerate(chunks) if chunk.end_of_text]
    assert len(ends) == 2
    assert ends[-1] == len(chunks) - 1
    assert sum(len(chunk.audio) for chunk in chunks[: ends[0]]) > 22050  # about a second of speech
    assert len(chunks) > 10  # streamed in pieces, not one buffer per text
    words = [word for chunk in chunks for word in chunk.words]
    assert [word.text for word in words] == ["We", "open", "at", "nine", "Goodbye", "for", "now"]
    ends_ms = [word.end_ms for word in words]
    assert ends_ms == sorted(ends_ms)
    total_ms = sum(len(chunk.audio) for chunk in chunks) / 2 / 22.05
    assert ends_ms[-1] == pytest.approx(total_ms, abs=1)


@run
async def test_closing_an_espeak_stream_stops_it() -> None:
    stream = await EspeakTTS().open(ESPEAK_FORMAT)
    await stream.push_text("This reply is far too long to be heard out by the caller. " * 20)
    first = await anext(aiter(stream))
    assert first.audio
    await stream.aclose()
    await stream.aclose()
    assert [chunk async for chunk in stream if chunk.end_of_text] == []
    # The engine is free again for the next stream.
    assert any(chunk.end_of_text for chunk in await synthesize("Yes."))


@run
async def test_espeak_rejects_unknown_voices_and_formats() -> None:
    with pytest.raises(ConfigError, match="no voice"):
        await EspeakTTS(voice="xx-nowhere").open(ESPEAK_FORMAT)
    with pytest.raises(ConfigError, match="22050"):
        await EspeakTTS().open(PCM16_16K)


@run
async def test_pocketsphinx_rejects_what_its_model_cannot_hear() -> None:
    with pytest.raises(ConfigError, match="English"):
        await PocketsphinxSTT().open(PCM16_16K, language="fr")
    with pytest.raises(ConfigError, match="16000"):
        await PocketsphinxSTT().open(AudioFormat("pcm16", 8000), language="en")
    with pytest.raises(ConfigError, match="dictionary"):
        await PocketsphinxSTT(phrases=("zzxq",)).open(PCM16_16K, language="en")


def test_phrases_become_words() -> None:
    assert phrase_vocabulary(["Book a table, for 2!", "", "What's on?"]) == [
        ["book", "a", "table", "for"],
        ["what's", "on"],
    ]


@run
async def test_speech_round_trip_with_the_phrase_vocabulary() -> None:
    updates = await transcribe(PocketsphinxSTT(phrases=PHRASES), await speech_16k("book a table for two"))
    finals = [update for update in updates if update.final]
    assert len(finals) == 1
    assert finals[0].end_of_turn
    assert "book a table for two" in finals[0].text
    interims = [update.text for update in updates if not update.final]
    assert interims
    assert all(not update.end_of_turn for update in updates if not update.final)


@run
async def test_open_vocabulary_hears_words_and_finalize_always_answers() -> None:
    stt = PocketsphinxSTT()
    stream = await stt.open(PCM16_16K, language="en")
    pcm = await speech_16k("hello")
    await stream.push_audio(pcm)
    await stream.finalize()
    await stream.finalize()  # nothing since: an empty final, so the turn need not wait
    updates = stream.__aiter__()
    first = await anext(updates)
    while not first.final:
        first = await anext(updates)
    second = await anext(updates)
    assert first.text
    assert second == TranscriptUpdate("", final=True, end_of_turn=True)
    await stream.aclose()
    assert [update async for update in updates] == []


@run
async def test_the_phrase_grammar_hears_its_phrases_and_rejects_the_rest() -> None:
    stt = PocketsphinxSTT(phrases=("a table for four at eight please", *PHRASES), restrict="grammar")
    [final] = [u for u in await transcribe(stt, await speech_16k("can I speak to a human")) if u.final]
    assert final.text == "can i speak to a human"
    [final] = [u for u in await transcribe(stt, await speech_16k("do you deliver")) if u.final]
    assert final.text == ""


@run
async def test_word_timings_carry_whole_words() -> None:
    chunks = await synthesize("There's a car park, isn't there?")
    words = [w.text for chunk in chunks for w in chunk.words]
    assert words == ["There's", "a", "car", "park", "isn't", "there"]


@run
async def test_a_long_silence_is_dropped_but_speech_across_the_restart_is_kept() -> None:
    stt = PocketsphinxSTT(phrases=PHRASES, interim_every_ms=0)
    speech = await speech_16k("book a table for two")
    # 19.6 s of silence, then speech that runs over the 20 s mark where a wordless utterance
    # is restarted: the restart must not cut it.
    updates = await transcribe(stt, bytes(2 * 16000 * 196 // 10) + speech)
    [final] = [update for update in updates if update.final]
    assert "book a table for two" in final.text
