"""The shipped provider fakes behave as their scripts say and satisfy the provider protocols."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from voicecore.errors import ProviderStatusError
from voicecore.providers.base import (
    LLM,
    PCM16_16K,
    STT,
    TTS,
    AudioChunk,
    TextDelta,
    ToolCall,
    TranscriptUpdate,
    Usage,
)
from voicecore.testing import FakeLLM, FakeReply, FakeSTT, FakeTTS


def test_fakes_implement_the_provider_protocols() -> None:
    assert isinstance(FakeSTT(), STT)
    assert isinstance(FakeLLM(), LLM)
    assert isinstance(FakeTTS(), TTS)


def test_fake_stt_sends_an_interim_then_the_final_on_finalize() -> None:
    async def run() -> list[TranscriptUpdate]:
        stt = FakeSTT(["book a table", "for two"], latency=0.01, interim_after_bytes=640)
        stream = await stt.open(PCM16_16K, language="en")
        await stream.push_audio(b"\x00\x20" * 320)  # loud enough to count as speech
        await stream.finalize()
        updates = [await anext(aiter(stream)), await anext(aiter(stream))]
        await stream.aclose()
        return updates

    assert asyncio.run(run()) == [
        TranscriptUpdate("book", final=False),
        TranscriptUpdate("book a table", final=True, end_of_turn=True),
    ]


@pytest.mark.parametrize(("cycle", "expected"), [(True, ["yes", "no", "yes"]), (False, ["yes", "no"])])
def test_fake_stt_cycle_starts_the_script_again(cycle: bool, expected: list[str]) -> None:
    async def run() -> list[str]:
        stream = await FakeSTT(["yes", "no"], latency=0.0, cycle=cycle).open(PCM16_16K, language="en")
        finals = []
        for _ in range(3):
            await stream.push_audio(b"\x00\x20" * 320)
            await stream.finalize()
            try:
                async with asyncio.timeout(0.5):
                    finals.append((await anext(aiter(stream))).text)
            except TimeoutError:
                break  # the script ran out: no final
        await stream.aclose()
        return finals

    assert asyncio.run(run()) == expected


@pytest.mark.parametrize("record", [True, False])
def test_fakes_keep_what_they_were_sent_only_when_recording(record: bool) -> None:
    # A load server's fakes run for hours: with record=False they keep nothing per request.
    async def run() -> tuple[FakeLLM, FakeTTS, list[object]]:
        llm, tts = FakeLLM(["Hello there."], record=record), FakeTTS(first_byte=0.0, record=record)
        chunks: list[object] = []
        for _ in range(3):
            stream = await llm.complete([{"role": "user", "content": "hi"}])
            chunks += [chunk async for chunk in stream]
            speech = await tts.open(PCM16_16K)
            await speech.push_text("Hello there.")
            await speech.end_input()
            chunks += [chunk async for chunk in speech]
        return llm, tts, chunks

    llm, tts, chunks = asyncio.run(run())
    assert sum(isinstance(c, TextDelta) for c in chunks) >= 3  # it answered every request
    assert sum(isinstance(c, AudioChunk) and len(c.audio) > 0 for c in chunks) >= 3  # and spoke
    kept = 3 if record else 0
    assert (len(llm.requests), len(llm.streams), len(tts.received), len(tts.spoken)) == (kept,) * 4


def test_fake_stt_outage_is_a_retryable_error() -> None:
    async def run() -> None:
        stream = await FakeSTT(["hi"], fail_after_bytes=320).open(PCM16_16K, language="en")
        await stream.push_audio(bytes(320))
        await anext(aiter(stream))

    with pytest.raises(ProviderStatusError) as info:
        asyncio.run(run())
    assert info.value.retryable


def test_fake_llm_streams_the_script_then_tools_and_usage() -> None:
    async def run() -> tuple[list[object], FakeLLM]:
        llm = FakeLLM(
            [FakeReply("It is sunny today.", tool_calls=(("weather", '{"city": "Oslo"}'),), first_token=0)]
        )
        stream = await llm.complete([{"role": "user", "content": "weather?"}], tools=[{"type": "function"}])
        chunks = [chunk async for chunk in stream]
        return chunks, llm

    chunks, llm = asyncio.run(run())
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    assert text == "It is sunny today."
    assert [c for c in chunks if isinstance(c, ToolCall)] == [
        ToolCall("call_0", "weather", '{"city": "Oslo"}')
    ]
    assert isinstance(chunks[-1], Usage)
    assert llm.requests == [([{"role": "user", "content": "weather?"}], [{"type": "function"}])]


def test_fake_llm_keeps_its_pace_when_the_consumer_falls_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    # A virtual clock: sleeps advance it, and the consumer stalls 50 ms after the second token.
    clock = [100.0]
    arrivals: list[float] = []

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    async def run() -> None:
        monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: clock[0])
        monkeypatch.setattr(asyncio, "sleep", sleep)
        reply = FakeReply("a b c d e f", first_token=0.2, tokens_per_second=100.0)
        async for chunk in await FakeLLM([reply]).complete([]):
            if isinstance(chunk, TextDelta):
                arrivals.append(round(clock[0] - 100.0, 6))
                if len(arrivals) == 2:
                    clock[0] += 0.05

    asyncio.run(run())
    # Tokens 3-5 were due while the consumer stalled: they come at once, then the pace resumes.
    assert arrivals == [0.2, 0.21, 0.26, 0.26, 0.26, 0.26]


def test_fake_llm_fails_mid_stream_when_scripted() -> None:
    error = ProviderStatusError("overloaded", provider="fake-llm", status=529)
    seen: list[str] = []

    async def run() -> None:
        reply = FakeReply("one two three", error=error, error_after_tokens=2, first_token=0)
        async for chunk in await FakeLLM([reply]).complete([]):
            assert isinstance(chunk, TextDelta)
            seen.append(chunk.text)

    with pytest.raises(ProviderStatusError):
        asyncio.run(run())
    assert seen == ["one ", "two "]


def test_fake_tts_audio_length_follows_the_text_with_word_timings() -> None:
    async def run() -> tuple[int, list[str], list[float]]:
        tts = FakeTTS(first_byte=0, ms_per_char=50.0, chunk_ms=20)
        stream = await tts.open(PCM16_16K)
        await stream.push_text("Hello there.")
        await stream.push_text("Bye.")
        await stream.end_input()
        audio, words, ends = 0, [], []
        async for chunk in stream:
            audio += len(chunk.audio)
            words += [w.text for w in chunk.words]
            ends += [w.end_ms for w in chunk.words]
        return audio, words, ends

    audio, words, ends = asyncio.run(run())
    assert audio == 2 * 16 * int(50 * (len("Hello there.") + len("Bye.")))  # bytes at 16 kHz
    assert words == ["Hello", "there.", "Bye."]
    assert ends == sorted(ends)
    assert ends[-1] == pytest.approx(50.0 * 16)


def test_fake_tts_fails_on_scripted_text_and_rejects_formats_it_lacks() -> None:
    async def run() -> None:
        stream = await FakeTTS(fail_on=["boom"]).open(PCM16_16K)
        await stream.push_text("boom")
        await anext(aiter(stream))

    with pytest.raises(ProviderStatusError):
        asyncio.run(run())
    with pytest.raises(ProviderStatusError, match="unsupported"):
        asyncio.run(FakeTTS().open(FakeTTS().formats[0].__class__("mulaw", 8000)))


def test_the_wire_fakes_are_importable_from_voicecore_testing_on_first_use() -> None:
    """Importing voicecore.testing for the in-process fakes does not import the aiohttp servers."""
    program = (
        "import sys, voicecore.testing as t\n"
        "assert 'aiohttp' not in sys.modules and 'voicecore.fakes' not in sys.modules\n"
        "from voicecore.testing import FakeDeepgram\n"
        "import voicecore.fakes as f\n"
        "assert FakeDeepgram is f.FakeDeepgram\n"
        "assert all(getattr(t, name) is getattr(f, name) for name in f.__all__)\n"
        "assert set(f.__all__) <= set(t.__all__)\n"
        "try:\n    t.FakeNothing\nexcept AttributeError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "module 'voicecore.testing' has no attribute 'FakeNothing'"
