from __future__ import annotations

import array
import functools
import itertools
import math
import shutil
from collections.abc import Callable

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from voicecore._core import Endpointer, NativeVad, vad_features
from voicecore.audio import Vad, VadEvent
from voicecore.errors import AudioFormatError, ConfigError
from voicecore.vad import SILERO_FRAME_MS


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


@functools.cache
def vowels(rate: int, seconds: float, f0: float = 120.0) -> np.ndarray:
    """A synthetic voiced utterance: a glottal pulse train with a pitch glide through three
    formant resonators (700, 1200, 2600 Hz) and a 4 Hz syllable envelope; peak 1.0."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    phase = np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.3 * t)) / rate)
    source = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    out = np.zeros(n)
    for fc, bw in [(700, 110), (1200, 120), (2600, 160)]:
        r, theta = math.exp(-math.pi * bw / rate), 2 * math.pi * fc / rate
        a1, a2 = -2 * r * math.cos(theta), r * r
        y = np.zeros(n)
        y1 = y2 = 0.0
        for i, s in enumerate(source):
            y0 = s - a1 * y1 - a2 * y2
            y[i], y2, y1 = y0, y1, y0
        out += y
    out *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return out / np.abs(out).max()


def utterance(rate: int, before: float = 1.0, speech: float = 1.5, after: float = 2.0) -> bytes:
    """Quiet, then the synthetic utterance at about -16 dBFS, then quiet; faint noise throughout."""
    x = np.concatenate(
        [np.zeros(int(rate * before)), 6000 * vowels(rate, speech), np.zeros(int(rate * after))]
    )
    return pcm(x + np.random.default_rng(1).normal(0, 20, len(x)))


def as_tuples(events: list[VadEvent]) -> list[tuple[str, int, int]]:
    return [(e.kind, e.at_ms, e.decided_ms) for e in events]


def scripted(probs: list[float]) -> Callable[[bytes], float]:
    it = iter(probs)
    return lambda _frame: next(it)


def frames_pcm(n_frames: int, frame_samples: int) -> bytes:
    """Frame i holds the value i in every sample, so pre-roll slices are easy to check."""
    return np.repeat(np.arange(n_frames, dtype="<i2"), frame_samples).tobytes()


# --- the endpointer, driven by scripted probabilities: exact timing ---------------------------


def test_start_and_end_are_exact_with_pre_roll() -> None:
    probs = [0.0] * 100 + [0.9] * 100 + [0.0] * 100
    audio = frames_pcm(300, 160)
    ep = Endpointer(16000, 10)
    events = ep.push(audio, scripted(probs))
    assert as_tuples(events) == [("start", 1000, 1200), ("end", 2000, 2500)]
    # 300 ms of pre-roll before the onset, up to the decision: 500 ms of audio.
    assert events[0].audio == audio[700 * 32 : 1200 * 32]
    assert events[1].audio == b""
    assert not ep.in_speech
    assert ep.probability == 0.0


def test_each_event_comes_from_the_push_that_decides_it() -> None:
    probs = [0.0] * 100 + [0.9] * 100 + [0.0] * 100
    score = scripted(probs)
    ep = Endpointer(16000, 10)
    decided_at = {}
    for i in range(300):
        for event in ep.push(bytes(320), score):
            decided_at[event.kind] = i
        assert ep.in_speech == (119 <= i < 249)
    # Frame 119 ends at 1200 ms (start decided), frame 249 at 2500 ms (end decided).
    assert decided_at == {"start": 119, "end": 249}


def test_scorer_sees_each_whole_frame_once_in_order() -> None:
    seen: list[bytes] = []

    def score(frame: bytes) -> float:
        seen.append(frame)
        return 0.0

    audio = frames_pcm(10, 256)
    ep = Endpointer(8000, 32)
    ep.push(audio[:100], score)
    assert seen == []
    ep.push(audio[100:1500], score)
    ep.push(audio[1500:], score)
    assert seen == [audio[i * 512 : (i + 1) * 512] for i in range(10)]


def test_short_blips_and_short_pauses_are_ignored() -> None:
    # 150 ms blips never start; once speaking, a 400 ms pause does not end the turn.
    probs = [0.9] * 15 + [0.0] * 30 + [0.9] * 15 + [0.0] * 30 + [0.9] * 30 + [0.0] * 40 + [0.9] * 30
    ep = Endpointer(16000, 10)
    assert as_tuples(ep.push(bytes(320 * len(probs)), scripted(probs))) == [("start", 900, 1100)]
    assert ep.in_speech


def test_noise_hold_waits_longer_after_a_turn_that_began_out_of_noise() -> None:
    # 3 s at 0.23 before the onset: the hold adds 1000 ms * (0.23 - 0.03) = 200 ms; after 3 s
    # of silence nothing is added; without the option the floor is ignored.
    noisy = [0.23] * 300 + [0.9] * 100 + [0.0] * 80
    quiet = [0.0] * 300 + [0.9] * 100 + [0.0] * 80
    pcm = bytes(320 * len(noisy))
    held = Endpointer(16000, 10, noise_hold=True)
    assert as_tuples(held.push(pcm, scripted(noisy))) == [("start", 3000, 3200), ("end", 4000, 4700)]
    assert as_tuples(Endpointer(16000, 10, noise_hold=True).push(pcm, scripted(quiet)))[1] == (
        "end",
        4000,
        4500,
    )
    assert as_tuples(Endpointer(16000, 10).push(pcm, scripted(noisy)))[1] == ("end", 4000, 4500)


def test_hysteresis_uses_threshold_minus_0_15_while_speaking() -> None:
    probs = [0.8] * 25 + [0.5] * 100 + [0.2] * 50
    ep = Endpointer(16000, 10, threshold=0.6)
    events = ep.push(bytes(320 * len(probs)), scripted(probs))
    assert as_tuples(events) == [("start", 0, 200), ("end", 1250, 1750)]


def test_probabilities_are_clamped_and_nan_is_silence() -> None:
    ep = Endpointer(16000, 10)
    ep.push(bytes(320), lambda _f: 5.0)
    assert ep.probability == 1.0
    ep.push(bytes(320), lambda _f: -1.0)
    assert ep.probability == 0.0
    ep.push(bytes(320), lambda _f: float("nan"))
    assert ep.probability == 0.0


def test_a_failing_scorer_propagates_and_resets_the_stream() -> None:
    ep = Endpointer(16000, 10, start_ms=10)

    def boom(_frame: bytes) -> float:
        raise RuntimeError("model crashed")

    ep.push(bytes(320), lambda _f: 0.9)
    assert ep.in_speech
    with pytest.raises(RuntimeError, match="model crashed"):
        ep.push(bytes(320), boom)
    assert not ep.in_speech
    # Stream time restarted: the next onset is at 0 ms.
    assert as_tuples(ep.push(bytes(320), lambda _f: 0.9)) == [("start", 0, 10)]


def test_a_non_numeric_score_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Endpointer(16000, 10).push(bytes(320), lambda _f: "yes")  # type: ignore[arg-type,return-value]


# --- the native detector on synthetic signals ----------------------------------------------------


def test_silence_gives_no_events() -> None:
    vad = Vad()
    assert vad.push(bytes(16000 * 2 * 5)) == []
    assert not vad.in_speech
    assert 0.0 <= vad.probability < 0.1


def test_steady_noise_gives_no_events() -> None:
    rng = np.random.default_rng(3)
    for level in (30, 300, 3000):
        assert Vad().push(pcm(rng.normal(0, level, 16000 * 5))) == []


def test_noise_bursts_give_no_events() -> None:
    rng = np.random.default_rng(2)
    x = np.zeros(16000 * 6)
    for start in (1.0, 2.5, 4.0):
        x[int(start * 16000) : int((start + 0.3) * 16000)] = rng.normal(0, 3000, 4800)
    assert Vad().push(pcm(x)) == []


def tones(rate: int, seconds: float, *freqs: float, amplitude: float = 8000) -> np.ndarray:
    """Equal-amplitude sines summed, ``amplitude`` peak each (before summing)."""
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * sum(np.sin(2 * np.pi * f * t) for f in freqs)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize(
    "freqs",
    [(440.0,), (1000.0,), (350.0, 440.0), (941.0, 1336.0)],
    ids=["440 Hz", "1 kHz beep", "dial tone", "DTMF 0"],
)
def test_a_steady_tone_after_digital_silence_is_not_speech(rate: int, freqs: tuple[float, ...]) -> None:
    x = np.concatenate([np.zeros(rate), tones(rate, 4.0, *freqs, amplitude=8000 / len(freqs))])
    vad = Vad(rate)
    assert vad.push(pcm(x)) == []
    assert vad.probability < 0.5


@pytest.mark.parametrize("rate", [8000, 16000])
def test_gated_tones_are_not_speech(rate: int) -> None:
    # Busy signal (480 + 620 Hz, 0.5 s on, 0.5 s off) and DTMF digits (100 ms on, 100 ms off).
    on_off = [tones(rate, 0.5, 480, 620, amplitude=4000), np.zeros(rate // 2)]
    busy = np.concatenate([np.zeros(rate), *on_off * 4])
    digits = [(697, 1209), (770, 1336), (852, 1477), (941, 1336)] * 3
    presses = [x for f in digits for x in (tones(rate, 0.1, *f, amplitude=4000), np.zeros(rate // 10))]
    dtmf = np.concatenate([np.zeros(rate), *presses])
    assert Vad(rate).push(pcm(busy)) == []
    assert Vad(rate).push(pcm(dtmf)) == []


def test_speech_after_a_tone_is_still_found() -> None:
    # A 1 kHz beep (voicemail style), a short gap, then the synthetic utterance.
    rate = 16000
    speech = np.frombuffer(utterance(rate, before=0.5, speech=1.5, after=1.0), dtype="<i2").astype(float)
    x = np.concatenate([np.zeros(rate), tones(rate, 1.0, 1000), speech])
    events = Vad().push(pcm(x))
    assert [e.kind for e in events] == ["start", "end"]
    # The utterance spans 2500-4000 ms.
    assert 2490 <= events[0].at_ms <= 2540
    assert 3980 <= events[1].at_ms <= 4060


@pytest.mark.parametrize("rate", [8000, 16000])
def test_synthetic_speech_is_found_with_its_boundaries(rate: int) -> None:
    vad = Vad(rate)
    events = vad.push(utterance(rate))
    assert [e.kind for e in events] == ["start", "end"]
    start, end = events
    # The utterance spans 1000-2500 ms.
    assert 990 <= start.at_ms <= 1040
    # start_ms of speech frames, plus any short dips the onset tolerates.
    assert 200 <= start.decided_ms - start.at_ms <= 300
    assert 2480 <= end.at_ms <= 2560
    assert end.decided_ms == end.at_ms + 500
    assert not vad.in_speech


def test_start_event_carries_the_pre_roll_audio() -> None:
    audio = utterance(16000)
    start = Vad(preroll_ms=250).push(audio)[0]
    assert start.audio == audio[(start.at_ms - 250) * 32 : start.decided_ms * 32]
    early = utterance(16000, before=0.1)
    start = Vad(preroll_ms=250).push(early)[0]
    assert start.audio == early[: start.decided_ms * 32]


def test_reset_restarts_stream_time() -> None:
    audio = utterance(16000)
    vad = Vad()
    first = vad.push(audio)
    vad.push(audio[: len(audio) // 3])
    vad.reset()
    assert not vad.in_speech
    assert vad.probability == 0.0
    assert vad.push(audio) == first


@settings(max_examples=25)
@given(cuts=st.lists(st.integers(0, 200_000), max_size=30), rate=st.sampled_from([8000, 16000]))
def test_any_chunking_gives_the_same_events(cuts: list[int], rate: int) -> None:
    audio = utterance(rate, speech=1.2, after=1.0)
    whole = Vad(rate)
    expected = whole.push(audio)
    assert len(expected) == 2
    vad = Vad(rate)
    got: list[VadEvent] = []
    bounds = sorted({c - c % 2 for c in cuts if c < len(audio)} | {0, len(audio)})
    for a, b in itertools.pairwise(bounds):
        got += vad.push(audio[a:b])
    assert got == expected
    assert vad.probability == whole.probability


def test_bytes_like_inputs_are_equivalent() -> None:
    audio = utterance(16000, speech=1.0, after=1.0)
    samples = np.frombuffer(audio, dtype="<i2")
    expected = as_tuples(Vad().push(audio))
    for view in (bytearray(audio), memoryview(audio), samples, array.array("h", samples.tolist())):
        assert as_tuples(Vad().push(view)) == expected


@settings(max_examples=40)
@given(data=st.binary(max_size=40_000))
def test_garbage_audio_gives_well_formed_events(data: bytes) -> None:
    vad = Vad(8000, start_ms=10, stop_ms=10)
    data = data[: len(data) // 2 * 2]
    events = vad.push(data * 3)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "end"] * (len(kinds) // 2) + ["start"] * (len(kinds) % 2)
    assert vad.in_speech == (len(kinds) % 2 == 1)
    times = [t for e in events for t in (e.at_ms, e.decided_ms)]
    assert all(e.at_ms < e.decided_ms for e in events)
    assert [e.at_ms for e in events] == sorted(e.at_ms for e in events)
    assert all(0 <= t <= len(data) * 3 // 16 for t in times)
    assert 0.0 <= vad.probability <= 1.0


# --- bad input and bad settings ------------------------------------------------------------------


def test_odd_length_is_rejected_and_consumes_nothing() -> None:
    audio = utterance(16000, speech=1.0, after=1.0)
    vad = Vad()
    with pytest.raises(AudioFormatError, match="odd length"):
        vad.push(b"\x00\x01\x02")
    assert as_tuples(vad.push(audio)) == as_tuples(Vad().push(audio))


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        ("not audio", TypeError),
        (12345, TypeError),
        (np.zeros(160, dtype=np.float32), AudioFormatError),
        (np.zeros(160, dtype=">i2"), AudioFormatError),
        (np.zeros((160, 2), dtype="<i2")[:, 0], AudioFormatError),
    ],
)
def test_non_pcm_input_is_rejected(value: object, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        Vad().push(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": 44100}, "sample_rate 8000 or 16000 Hz, got 44100"),
        ({"sample_rate": -1}, "sample_rate 8000 or 16000 Hz, got -1"),
        ({"threshold": 0.0}, "threshold must be a probability strictly between 0 and 1"),
        ({"threshold": 1.0}, "threshold must be a probability strictly between 0 and 1"),
        ({"threshold": float("nan")}, "threshold must be a probability"),
        ({"stop_ms": 5}, "stop_ms=5 is below one 10 ms frame; use at least 10 ms"),
        ({"start_ms": 0}, "start_ms=0 is below one 10 ms frame"),
        ({"start_ms": -200}, "start_ms must be a non-negative number of milliseconds"),
        ({"preroll_ms": -1}, "preroll_ms must be a non-negative number of milliseconds"),
        ({"preroll_ms": 60_001}, "preroll_ms=60001 is above the 60000 ms limit"),
        ({"backend": "webrtc"}, "unknown Vad backend 'webrtc'; choose 'native' (default) or 'silero'"),
    ],
)
def test_bad_settings_say_what_to_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        Vad(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_endpointer_frame_must_cover_stop_ms() -> None:
    with pytest.raises(ConfigError, match="stop_ms=20 is below one 32 ms frame"):
        Endpointer(16000, 32, stop_ms=20)
    with pytest.raises(ConfigError, match="frame_ms must be between 1 and 1000"):
        Endpointer(16000, 0)


def test_settings_and_repr() -> None:
    vad = Vad(8000, threshold=0.6, start_ms=150, stop_ms=700, preroll_ms=400)
    assert (vad.sample_rate, vad.threshold, vad.start_ms, vad.stop_ms, vad.preroll_ms) == (
        8000,
        0.6,
        150,
        700,
        400,
    )
    assert (vad.backend, vad.frame_ms) == ("native", 10)
    assert repr(vad) == (
        "Vad(sample_rate=8000, threshold=0.6, start_ms=150, stop_ms=700, preroll_ms=400, backend='native')"
    )
    event = Endpointer(16000, 10, start_ms=10).push(bytes(320), lambda _f: 1.0)[0]
    assert repr(event) == 'VadEvent(kind="start", at_ms=0, decided_ms=10, audio=<320 bytes>)'
    with pytest.raises(AttributeError):
        event.kind = "end"  # type: ignore[misc]


def test_native_defaults() -> None:
    native = NativeVad()
    assert (native.sample_rate, native.frame_ms, native.threshold) == (16000, 10, 0.5)
    assert (native.start_ms, native.stop_ms, native.preroll_ms) == (200, 500, 300)


def test_features_have_one_row_per_whole_frame() -> None:
    rows = np.frombuffer(vad_features(bytes(2 * 1605), 16000), dtype="<f4")
    assert rows.size % 10 == 0
    assert np.all(np.isfinite(rows))
    with pytest.raises(ConfigError):
        vad_features(b"", 11025)


# --- real speech (espeak-ng) and the Silero backend -----------------------------------------------


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_sentence_is_one_turn() -> None:
    from benches.vad_corpus import speak

    speech = speak("Hello there, could you tell me the time please?", "en-us", 170, 50)
    x = np.concatenate([np.zeros(16000), speech * 12000, np.zeros(16000)])
    noisy = x + np.random.default_rng(5).normal(0, 100, len(x))
    events = Vad().push(pcm(noisy))
    assert [e.kind for e in events] == ["start", "end"]
    active = np.flatnonzero(np.abs(x) > 300)
    onset_ms, offset_ms = active[0] / 16, active[-1] / 16
    assert onset_ms - 40 <= events[0].at_ms <= onset_ms + 60
    assert offset_ms - 150 <= events[1].at_ms <= offset_ms + 100


def _silero_or_skip() -> None:
    pytest.importorskip("onnxruntime")
    from voicecore.vad import silero_model_path

    try:
        if not silero_model_path().exists():
            pytest.skip("silero-vad's model file is missing")
    except ImportError:
        pytest.skip("silero-vad is not installed")


@pytest.mark.parametrize("rate", [8000, 16000])
def test_silero_backend_finds_speech(rate: int) -> None:
    _silero_or_skip()
    from benches.vad_corpus import speak

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    speech = speak("Hello there, could you tell me the time please?", "en-us", 170, 50)
    if rate == 8000:
        speech = soxr.resample(speech, 16000, 8000)
    x = np.concatenate([np.zeros(rate), speech * 12000, np.zeros(rate)])
    vad = Vad(rate, backend="silero")
    assert (vad.backend, vad.frame_ms) == ("silero", SILERO_FRAME_MS)
    audio = pcm(x)
    events = vad.push(audio)
    assert [e.kind for e in events] == ["start", "end"]
    assert all(e.at_ms % 32 == 0 for e in events)
    # Same events from 20 ms chunks, after a reset.
    vad.reset()
    chunked = [e for i in range(0, len(audio), rate // 25) for e in vad.push(audio[i : i + rate // 25])]
    assert chunked == events


def test_silero_without_its_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    import voicecore.vad

    def missing() -> None:
        raise ImportError("silero-vad is not installed")

    monkeypatch.setattr(voicecore.vad, "silero_model_path", missing)
    with pytest.raises(ConfigError, match="pip install --no-deps silero-vad"):
        Vad(backend="silero")
