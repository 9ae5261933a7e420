"""Format conversion between providers and transports is the composed Rust path, or nothing."""

from __future__ import annotations

import numpy as np
import pytest

from voicecore.audio import Resampler, ulaw_decode, ulaw_encode
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat
from voicecore.runtime.convert import AudioConverter, choose_format, synthesize
from voicecore.runtime.loop import run
from voicecore.testing import FakeTTS


def pcm(rate: int, seconds: float = 0.3) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def test_same_format_is_a_passthrough() -> None:
    converter = AudioConverter(MULAW_8K, MULAW_8K)
    assert converter.passthrough
    data = bytes(range(256))
    assert converter.convert(data) is data
    assert converter.flush() == b""
    assert converter.delay_ms == 0.0


def test_mulaw_to_pcm16_16k_is_decode_then_resample_across_chunks() -> None:
    codes = ulaw_encode(pcm(8000))
    converter = AudioConverter(MULAW_8K, PCM16_16K)
    got = (
        b"".join(converter.convert(codes[i : i + 160]) for i in range(0, len(codes), 160)) + converter.flush()
    )
    reference = Resampler(8000, 16000)
    assert got == reference.process(ulaw_decode(codes)) + reference.flush()
    assert converter.delay_ms == pytest.approx(reference.delay / 16.0)


def test_pcm16_24k_to_mulaw_8k_for_telephony() -> None:
    audio = pcm(24000)
    converter = AudioConverter(AudioFormat("pcm16", 24000), MULAW_8K)
    got = converter.convert(audio)
    reference = Resampler(24000, 8000)
    assert got == ulaw_encode(reference.process(audio))
    converter.reset()
    assert converter.convert(audio) == got  # a reset starts the stream afresh


def test_the_wanted_format_is_chosen_when_offered_else_the_providers_first() -> None:
    assert choose_format([PCM16_16K, MULAW_8K], MULAW_8K) == MULAW_8K
    assert choose_format([PCM16_16K], MULAW_8K) == PCM16_16K


def test_a_phrase_is_synthesized_in_the_wanted_format_to_its_last_sample() -> None:
    async def spoken(tts: FakeTTS, output: AudioFormat) -> bytes:
        return b"".join([audio async for audio in synthesize(tts, "Goodbye.", output)])

    tts = FakeTTS(ms_per_char=10.0, formats=(PCM16_16K,))
    native = run(spoken(tts, PCM16_16K))
    assert len(native) == 2 * 16 * 10 * len("Goodbye.")
    phone = run(spoken(tts, MULAW_8K))  # resampled to 8 kHz and μ-law encoded, the filter's tail flushed
    assert len(phone) == len(native) // 4 + Resampler(16000, 8000).delay
