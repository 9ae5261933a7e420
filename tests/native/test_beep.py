"""The answering-machine beep detector: beeps found at their end, speech and noise never taken for one."""

from __future__ import annotations

import shutil
import subprocess
import wave
from functools import cache
from io import BytesIO

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.audio import Beep, BeepDetector, Resampler, ulaw_decode, ulaw_encode
from voicecore.errors import AudioFormatError, ConfigError


def tone(rate: int, hz: float, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def phone_line(x: np.ndarray, rate: int, snr_db: float, seed: int = 0) -> bytes:
    """``x`` with white noise ``snr_db`` below the beep's level, through μ-law at 8 kHz."""
    noise = np.random.default_rng(seed).normal(0.0, 8000 / np.sqrt(2) / 10 ** (snr_db / 20), x.size)
    audio = pcm(x + noise)
    return ulaw_decode(ulaw_encode(audio)) if rate == 8000 else audio


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("hz", [440.0, 850.0, 1000.0, 1400.0, 2000.0])
def test_a_beep_10_db_above_line_noise_is_reported_at_its_end(rate: int, hz: float) -> None:
    signal = np.concatenate([np.zeros(rate), tone(rate, hz, 0.5), np.zeros(rate // 2)])
    beeps = BeepDetector(rate).push(phone_line(signal, rate, snr_db=10.0))
    assert len(beeps) == 1
    (beep,) = beeps
    assert abs(beep.start_ms - 1000) <= 20
    assert abs(beep.end_ms - 1500) <= 20
    assert beep.frequency_hz == pytest.approx(hz, rel=0.01)


@cache
def espeak(text: str, voice: str, speed: int) -> tuple[bytes, int]:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], check=True, capture_output=True
    ).stdout
    with wave.open(BytesIO(wav)) as reader:
        return reader.readframes(reader.getnframes()), reader.getframerate()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng for speech")
@pytest.mark.parametrize("voice", ["en-us", "en-gb", "en-us+f3", "en-gb-scotland", "fr"])
def test_greetings_and_drawn_out_vowels_are_not_beeps(voice: str) -> None:
    texts = [
        "You have reached the Smiths. We can't come to the phone. Please leave a message after the tone.",
        "Hello? Mmmmm, ooooh, aaaah, hiiiii, sooooo well.",
    ]
    for text in texts:
        for speed in (175, 80):
            audio, source_rate = espeak(text, voice, speed)
            for rate in (8000, 16000):
                resampler = Resampler(source_rate, rate)
                speech = resampler.process(audio) + resampler.flush()
                if rate == 8000:
                    speech = ulaw_decode(ulaw_encode(speech))
                assert BeepDetector(rate).push(speech + bytes(rate)) == [], (text, speed, rate)


def test_noise_dtmf_hum_blips_and_quiet_tones_are_not_beeps() -> None:
    rate = 8000
    rng = np.random.default_rng(3)
    cases = {
        "noise": rng.normal(0, 3000, rate * 2),
        "dtmf": tone(rate, 770, 0.5, 5000) + tone(rate, 1336, 0.5, 5000),
        "hum": tone(rate, 120, 1.0),
        "blip": tone(rate, 1000, 0.06),
        "quiet": tone(rate, 1000, 0.5, 150),
    }
    for name, signal in cases.items():
        assert BeepDetector(rate).push(pcm(np.concatenate([signal, np.zeros(rate)]))) == [], name


@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_any_chunking_finds_the_same_beeps(cuts: list[int]) -> None:
    signal = np.concatenate([np.zeros(3000), tone(8000, 1000, 0.3), np.zeros(2000), tone(8000, 600, 0.4)])
    audio = phone_line(np.concatenate([signal, np.zeros(800)]), 8000, snr_db=30.0)
    whole = BeepDetector().push(audio)
    assert len(whole) == 2
    detector, got, at = BeepDetector(), [], 0
    for cut in cuts:
        got += detector.push(audio[at : at + 2 * cut])
        at += 2 * cut
    got += detector.push(audio[at:])
    assert got == whole


def test_inputs_settings_and_reset() -> None:
    audio = np.concatenate([tone(16000, 1000, 0.3), np.zeros(1600)]).astype(np.int16)
    detector = BeepDetector(16000, min_ms=200)
    (beep,) = detector.push(audio)  # a numpy int16 array, as bytes
    assert isinstance(beep, Beep)
    assert "Beep(start_ms=0" in repr(beep)
    detector.reset()
    assert detector.push(memoryview(audio.tobytes())) == [beep]
    assert BeepDetector(16000, min_ms=400).push(audio) == []  # shorter than min_ms
    with pytest.raises(AudioFormatError, match="odd"):
        detector.push(b"\x00\x01\x02")
    with pytest.raises(ConfigError, match="8000 or 16000"):
        BeepDetector(24000)
    with pytest.raises(ConfigError, match="min_ms"):
        BeepDetector(8000, min_ms=5)
