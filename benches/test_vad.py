"""VAD per-call cost (voicecore native vs Silero vs WebRTC VAD), the beep detector's, and the corpus scorer.

Timed, per call, in one benchmark group per rate: one 20 ms PCM16 push of a speech stream
(25 consecutive calls per round, ``STREAM_ITERATIONS``), each detector through voicecore's
Rust endpointer. Silero scores 32 ms frames, so its calls alternate between scoring zero
and one frame; the mean over a round is its cost per 20 ms. Peers are skipped when their
packages (``benches/requirements.txt``) are missing.

Correctness gate before timing: on an espeak-ng sentence each detector must report a start
(without espeak-ng the stream is ``_signals.speech``, which not every detector takes for
speech, so then only well-formed events are required).

The scorer tests pin ``benches/vad_table.py``'s metric definitions on hand-made runs; the
accuracy table itself comes from ``python -m benches.vad_table`` (minutes, not a test).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import soxr

from benches import vad_corpus, vad_table
from benches.vad_corpus import Mixture
from voicecore._core import Endpointer
from voicecore.audio import BeepDetector, Vad

from ._signals import STREAM_ITERATIONS, STREAM_ROUNDS, frames, speech


def _silero(rate: int) -> Callable[[bytes], Any]:
    pytest.importorskip("onnxruntime")
    try:
        scorer = vad_table.silero_scorer(rate)
    except Exception as exc:
        pytest.skip(f"silero-vad unavailable: {exc}")
    endpointer = Endpointer(rate, 32)
    return lambda chunk: endpointer.push(chunk, scorer)


def _webrtc(rate: int) -> Callable[[bytes], Any]:
    pytest.importorskip("webrtcvad")
    scorer = vad_table.webrtc_scorer(3)(rate)
    endpointer = Endpointer(rate, 20)
    return lambda chunk: endpointer.push(chunk, scorer)


def _espeak(rate: int) -> bytes | None:
    """A sentence between silences at ``rate``, or None without espeak-ng."""
    if not vad_corpus.have_espeak():
        return None
    x = vad_corpus.speak("Could you please check the status of my order?", "en-us", 170, 50)
    if rate != vad_corpus.RATE:
        x = soxr.resample(x, vad_corpus.RATE, rate)
    x = np.concatenate([np.zeros(rate // 2), x * 12000, np.zeros(rate)])
    return np.round(x).astype("<i2").tobytes()


def _native(rate: int) -> Callable[[bytes], Any]:
    return Vad(rate).push


IMPLS = {"voicecore": _native, "silero": _silero, "webrtcvad-3": _webrtc}


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_push_20ms(benchmark: Any, impl: str, rate: int) -> None:
    benchmark.group = f"vad push 20ms {rate // 1000}k"
    push = IMPLS[impl](rate)
    real = _espeak(rate)
    chunks = frames(real if real is not None else speech(rate, 3.0), rate)
    events = [e for chunk in chunks for e in push(chunk)]
    assert [e.kind for e in events] == ["start", "end"][: len(events)]
    if real is not None:
        assert events, f"{impl} found no speech"
    stream = iter(chunks * 1000)

    def run() -> None:
        push(next(stream))

    benchmark.extra_info.update(impl=impl, case=f"vad push 20ms {rate}")
    benchmark.pedantic(run, iterations=STREAM_ITERATIONS, rounds=STREAM_ROUNDS, warmup_rounds=2)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_beep_detector_push_20ms(benchmark: Any, rate: int) -> None:
    """The answering-machine beep detector, which a call runs only while a machine's greeting plays."""
    benchmark.group = f"beep detector push 20ms {rate // 1000}k"
    detector = BeepDetector(rate)
    chunks = frames(speech(rate, 3.0), rate)
    assert not [beep for chunk in chunks for beep in detector.push(chunk)]  # speech is no beep
    stream = iter(chunks * 1000)

    def run() -> None:
        detector.push(next(stream))

    benchmark.extra_info.update(impl="voicecore", case=f"beep push 20ms {rate}")
    benchmark.pedantic(run, iterations=STREAM_ITERATIONS, rounds=STREAM_ROUNDS, warmup_rounds=2)


# --- the scorer's metric definitions ------------------------------------------------------------


def _mixture(turns: list[tuple[int, int]], total_ms: int, snr_db: float = 20.0) -> Mixture:
    labels = np.zeros(total_ms // 10, bool)
    for a, b in turns:
        labels[a // 10 : b // 10] = True
    return Mixture(
        "m", "white", snr_db, 16000, np.zeros(total_ms * 16, np.int16), labels, turns, ["x"] * len(turns)
    )


def test_a_perfect_run_scores_one() -> None:
    m = _mixture([(1000, 2000)], 4000)
    probs = m.labels.astype(float)
    run = vad_table.Run(10, probs, [("start", 1000, 1200), ("end", 2000, 2500)], 0.0, 4.0)
    s = vad_table.score_run(m, run)
    assert (s.f1, s.f1_raw, s.fpr) == (1.0, 1.0, 0.0)
    assert (s.start_delays, s.end_delays) == ([200], [500])
    assert (s.missed, s.false_starts, s.premature) == (0, 0, 0)


def test_misses_false_starts_and_premature_ends_are_counted() -> None:
    m = _mixture([(1000, 3000), (5000, 5500)], 8000, snr_db=10)
    events = [
        ("start", 1000, 1200),
        ("end", 1800, 2300),  # ends 1.2 s before the turn does: premature
        ("start", 2100, 2300),
        ("end", 3000, 3500),
        ("start", 6500, 6700),  # noise after the second turn, which was missed
        ("end", 7000, 7500),
    ]
    s = vad_table.score_run(m, vad_table.Run(10, np.zeros(800), events, 1.0, 8.0))
    assert (s.turns, s.missed, s.turns_10db, s.missed_10db) == (2, 1, 2, 1)
    assert (s.false_starts, s.premature) == (1, 1)
    assert (s.start_delays, s.end_delays) == ([200], [500])
    assert s.cpu_per_hour == pytest.approx(450.0)
    # Endpointed frames: 1000-1800, 2100-3000 and 6500-7000; labels 1000-3000 and 5000-5500.
    tp, fp, fn = 80 + 90, 50, 30 + 50
    assert s.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_coarse_detector_frames_are_spread_on_the_10ms_grid() -> None:
    assert list(vad_table.on_label_grid(np.array([0.0, 1.0]), 32, 7)) == [0, 0, 0, 1, 1, 1, 0]


def test_draws_add_up_and_report_premature_ends_each() -> None:
    m = _mixture([(1000, 3000)], 5000, snr_db=5)
    early = vad_table.Run(10, np.zeros(500), [("start", 1000, 1200), ("end", 1800, 2300)], 1.0, 5.0)
    clean = vad_table.Run(10, np.zeros(500), [("start", 1000, 1200), ("end", 3000, 3500)], 1.0, 5.0)
    draws = [{"native": {"all": vad_table.score_run(m, run)}} for run in (early, clean, early)]
    total = vad_table.merge(draws)["native"]["all"]
    assert (total.turns, total.premature, total.cpu_s) == (3, 2, 3.0)
    assert total.end_delays == [500]  # only the draw that ended on time has an end delay
    assert vad_table.premature_per_draw(draws) == "premature ends per noise draw: native 1, 0, 1"


def test_table_shows_the_median_end_delay_per_noise_and_a_dash_where_no_turn_ended() -> None:
    m = _mixture([(1000, 3000)], 5000)
    ended = vad_table.score_run(
        m, vad_table.Run(10, np.zeros(500), [("start", 1000, 1200), ("end", 3000, 3600)], 1.0, 5.0)
    )
    open_ = vad_table.score_run(m, vad_table.Run(10, np.zeros(500), [("start", 1000, 1200)], 1.0, 5.0))
    results = {"native": {"all": ended, "white": ended, "babble": open_}}
    lines = vad_table.table(results, ["white", "babble"]).splitlines()
    i = lines.index("| end delay ms (p50) | white | babble |")
    assert lines[i + 2] == "| native | 600 | - |"


def test_draw_zero_keeps_the_corpus_seeds_and_later_draws_change_only_the_noise() -> None:
    seed = vad_corpus.VOICES["eval"].seed
    assert vad_corpus.mixture_seed("eval", 0, 2, 3, 1) == [seed, 2, 3, 1]
    seeds = {tuple(vad_corpus.mixture_seed("eval", d, 2, 3, 1)) for d in range(4)}
    assert len(seeds) == 4
    # The noise differs between draws, the speech and labels do not.
    clip = vad_corpus.Clip(
        "c", (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16), np.ones(100, bool), [(0, 1000)], ["x"]
    )
    babble = np.zeros(32000, np.float32)
    a, b = (
        vad_corpus.mix(
            clip, "pink", 5, np.random.default_rng(vad_corpus.mixture_seed("eval", d, 0, 1, 2)), babble
        )
        for d in (0, 1)
    )
    assert np.array_equal(a.labels, b.labels)
    assert a.turns == b.turns
    assert not np.array_equal(a.pcm, b.pcm)
