"""Score VADs on the development corpus through one endpointer and print the comparison table.

Every detector runs through voicecore's Rust endpointer with the same settings
(threshold 0.5, ``start_ms`` 200, ``stop_ms`` 500), fed 20 ms chunks as a telephony
stream would be:

* ``native``: voicecore's own detector (:class:`voicecore.audio.Vad`), whose endpointer adds
  the noise hold (up to 400 ms more before an end in a turn that began out of noise);
* ``silero``: Silero VAD v6 through onnxruntime on one thread (32 ms frames), plain
  endpointer (the ``silero`` backend's); ``silero+hold``: the same probabilities through the
  endpointer with native's noise hold, the like-for-like comparison;
* ``webrtc-0`` … ``webrtc-3``: WebRTC VAD (``webrtcvad-wheels``) modes 0-3, 20 ms frames,
  its yes/no decision used as probability 1/0.

Metrics (``benches/vad_corpus.py`` describes labels and turns):

* **F1**: frame F1 of the endpointed speech segments against the 10 ms labels; **F1 raw**:
  of the detector's own frames with probability >= threshold;
* **FPR**: share of non-speech frames marked as speech by the endpointed output, counting
  only frames outside every turn and its ``stop_ms`` + 100 ms hang-over;
* **start/end delay**: median time from a turn's true start (end) to the decision of the
  endpointer's start (end) event (negative when the segment that covers the turn was
  already open before it: noise taken for speech);
* **missed**: turns no endpointed segment overlaps (at >= 10 dB SNR / at all SNRs);
* **false starts**: endpointed segments that overlap no turn;
* **premature ends**: end events placed inside a turn, more than 150 ms before its end;
* **CPU**: process CPU seconds per hour of audio for the streaming pass (chunking,
  scoring and endpointing; the Python loop included).

Run ``python -m benches.vad_table`` (needs espeak-ng for the corpus; Silero and WebRTC VAD
come from ``benches/requirements.txt`` and are skipped when missing). ``--draws N`` scores N
noise draws of the same speech (draw 0 is the default corpus) and adds them up, with each
detector's premature ends per draw: counts of a few in 1512 turns vary from draw to draw, so a
rule tuned on one draw needs another to be judged on.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from benches import vad_corpus
from voicecore._core import Endpointer, NativeVad

THRESHOLD = 0.5
START_MS = 200
STOP_MS = 500
PREROLL_MS = 300
CHUNK_MS = 20
PREMATURE_MARGIN_MS = 150


@dataclass
class Run:
    """One detector on one mixture: per-detector-frame probabilities, events and CPU time."""

    frame_ms: int
    probs: np.ndarray
    events: list[tuple[str, int, int]]
    cpu_s: float
    audio_s: float


Scorer = Callable[[bytes], float]


def _chunks(pcm: np.ndarray, rate: int) -> list[bytes]:
    data = pcm.astype("<i2").tobytes()
    step = rate * CHUNK_MS // 1000 * 2
    return [data[i : i + step] for i in range(0, len(data), step)]


def run_native(m: vad_corpus.Mixture) -> Run:
    chunks = _chunks(m.pcm, m.rate)
    vad = NativeVad(m.rate, threshold=THRESHOLD, start_ms=START_MS, stop_ms=STOP_MS, preroll_ms=PREROLL_MS)
    t0 = time.process_time()
    events = [e for chunk in chunks for e in vad.push(chunk)]
    cpu = time.process_time() - t0
    # A second, untimed pass reads each 10 ms frame's probability.
    probe = NativeVad(m.rate, threshold=THRESHOLD, start_ms=START_MS, stop_ms=STOP_MS, preroll_ms=PREROLL_MS)
    data = m.pcm.astype("<i2").tobytes()
    step = m.rate // 100 * 2
    probs = []
    for i in range(0, len(data) - step + 1, step):
        probe.push(data[i : i + step])
        probs.append(probe.probability)
    return Run(
        10, np.array(probs), [(e.kind, e.at_ms, e.decided_ms) for e in events], cpu, len(m.pcm) / m.rate
    )


def run_scorer(
    m: vad_corpus.Mixture, frame_ms: int, make_scorer: Callable[[int], Scorer], noise_hold: bool = False
) -> Run:
    chunks = _chunks(m.pcm, m.rate)
    endpointer = Endpointer(
        m.rate,
        frame_ms,
        threshold=THRESHOLD,
        start_ms=START_MS,
        stop_ms=STOP_MS,
        preroll_ms=PREROLL_MS,
        noise_hold=noise_hold,
    )
    probs: list[float] = []
    t0 = time.process_time()
    scorer = make_scorer(m.rate)

    def score(frame: bytes) -> float:
        p = scorer(frame)
        probs.append(p)
        return p

    events = [e for chunk in chunks for e in endpointer.push(chunk, score)]
    cpu = time.process_time() - t0
    return Run(
        frame_ms, np.array(probs), [(e.kind, e.at_ms, e.decided_ms) for e in events], cpu, len(m.pcm) / m.rate
    )


def silero_scorer(rate: int) -> Scorer:
    from voicecore.vad import SileroScorer

    return SileroScorer(rate)


def webrtc_scorer(mode: int) -> Callable[[int], Scorer]:
    import webrtcvad

    def make(rate: int) -> Scorer:
        vad = webrtcvad.Vad(mode)
        return lambda frame: 1.0 if vad.is_speech(frame, rate) else 0.0

    return make


def available_detectors() -> dict[str, Callable[[vad_corpus.Mixture], Run]]:
    """Every detector whose packages are installed, by name."""
    detectors: dict[str, Callable[[vad_corpus.Mixture], Run]] = {"native": run_native}
    try:
        silero_scorer(16000)
        detectors["silero"] = lambda m: run_scorer(m, 32, silero_scorer)
        detectors["silero+hold"] = lambda m: run_scorer(m, 32, silero_scorer, noise_hold=True)
    except Exception:
        pass
    try:
        for mode in range(4):
            detectors[f"webrtc-{mode}"] = lambda m, mode=mode: run_scorer(m, 20, webrtc_scorer(mode))
    except ImportError:
        pass
    return detectors


@dataclass
class Score:
    """Counts and lists accumulated over mixtures."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    raw_tp: int = 0
    raw_fp: int = 0
    raw_fn: int = 0
    quiet_frames: int = 0
    quiet_false: int = 0
    turns: int = 0
    missed: int = 0
    turns_10db: int = 0
    missed_10db: int = 0
    false_starts: int = 0
    premature: int = 0
    start_delays: list[int] = field(default_factory=list)
    end_delays: list[int] = field(default_factory=list)
    cpu_s: float = 0.0
    audio_s: float = 0.0

    def add(self, other: Score) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    @staticmethod
    def _f1(tp: int, fp: int, fn: int) -> float:
        return 2 * tp / max(1, 2 * tp + fp + fn)

    @property
    def f1(self) -> float:
        return self._f1(self.tp, self.fp, self.fn)

    @property
    def f1_raw(self) -> float:
        return self._f1(self.raw_tp, self.raw_fp, self.raw_fn)

    @property
    def fpr(self) -> float:
        return self.quiet_false / max(1, self.quiet_frames)

    @property
    def cpu_per_hour(self) -> float:
        return self.cpu_s / max(1e-9, self.audio_s) * 3600


def on_label_grid(probs: np.ndarray, frame_ms: int, n: int) -> np.ndarray:
    """Each 10 ms label frame gets the probability of the detector frame holding its centre."""
    idx = (np.arange(n) * 10 + 5) // frame_ms
    out = np.zeros(n)
    ok = idx < len(probs)
    out[ok] = probs[idx[ok]]
    return out


def segments(events: Iterable[tuple[str, int, int]], total_ms: int) -> list[tuple[int, int, int, int | None]]:
    """``(start_at, start_decided, end_at, end_decided)`` per endpointed segment."""
    out: list[tuple[int, int, int, int | None]] = []
    start: tuple[int, int] | None = None
    for kind, at, decided in events:
        if kind == "start":
            start = (at, decided)
        elif start is not None:
            out.append((start[0], start[1], at, decided))
            start = None
    if start is not None:
        out.append((start[0], start[1], total_ms, None))
    return out


def score_run(m: vad_corpus.Mixture, run: Run) -> Score:
    """Scores one run against the mixture's labels and turns."""
    s = Score(cpu_s=run.cpu_s, audio_s=run.audio_s)
    labels = m.labels.astype(bool)
    n = len(labels)
    total_ms = n * 10
    segs = segments(run.events, total_ms)
    centres = np.arange(n) * 10 + 5
    mask = np.zeros(n, bool)
    for a, _, b, _ in segs:
        mask |= (centres >= a) & (centres < b)
    raw = on_label_grid(run.probs, run.frame_ms, n) >= THRESHOLD
    s.tp, s.fp, s.fn = int(np.sum(mask & labels)), int(np.sum(mask & ~labels)), int(np.sum(~mask & labels))
    s.raw_tp, s.raw_fp, s.raw_fn = (
        int(np.sum(raw & labels)),
        int(np.sum(raw & ~labels)),
        int(np.sum(~raw & labels)),
    )
    quiet = np.ones(n, bool)
    for ts, te in m.turns:
        quiet &= ~((centres >= ts) & (centres < te + STOP_MS + 100))
    s.quiet_frames, s.quiet_false = int(quiet.sum()), int(np.sum(quiet & mask))
    for ts, te in m.turns:
        s.turns += 1
        s.turns_10db += m.snr_db >= 10
        overlapping = [g for g in segs if g[0] < te and g[2] > ts]
        if not overlapping:
            s.missed += 1
            s.missed_10db += m.snr_db >= 10
            continue
        s.start_delays.append(overlapping[0][1] - ts)
        last = overlapping[-1]
        if last[3] is not None and last[2] >= te - PREMATURE_MARGIN_MS:
            s.end_delays.append(last[3] - te)
        s.premature += sum(
            1 for g in overlapping if g[3] is not None and ts < g[2] < te - PREMATURE_MARGIN_MS
        )
    s.false_starts = sum(1 for g in segs if not any(g[0] < te and g[2] > ts for ts, te in m.turns))
    return s


Results = dict[str, dict[str, Score]]


def evaluate(
    detectors: dict[str, Callable[[vad_corpus.Mixture], Run]],
    mixtures: Iterable[vad_corpus.Mixture],
    progress: bool = False,
) -> Results:
    """``{detector: {noise kind or "all": Score}}``."""
    results: Results = {name: defaultdict(Score) for name in detectors}
    for i, m in enumerate(mixtures):
        for name, detector in detectors.items():
            s = score_run(m, detector(m))
            results[name][m.noise].add(s)
            results[name]["all"].add(s)
        if progress and i % 24 == 23:
            print(f"  … {i + 1} mixtures", flush=True)
    return results


def merge(draws: list[Results]) -> Results:
    """The scores of several noise draws added up, per detector and noise kind."""
    total: Results = {}
    for results in draws:
        for name, by_noise in results.items():
            merged = total.setdefault(name, defaultdict(Score))
            for kind, score in by_noise.items():
                merged[kind].add(score)
    return total


def premature_per_draw(draws: list[Results]) -> str:
    """One line: each detector's premature ends in each draw, e.g. ``native 3, 1, 2``."""
    names = list(draws[0]) if draws else []
    counts = [", ".join(str(d[name]["all"].premature) for d in draws) for name in names]
    return "premature ends per noise draw: " + "; ".join(
        f"{n} {c}" for n, c in zip(names, counts, strict=True)
    )


def _median(values: list[int]) -> str:
    return f"{np.median(values):.0f}" if values else "-"


def table(results: dict[str, dict[str, Score]], noises: Iterable[str]) -> str:
    """The three markdown tables: overall metrics, then F1 and the median end delay per noise
    type ("-" where no turn's last segment ended: other talkers kept it open to the clip's end)."""
    lines = [
        "| detector | F1 | F1 raw | FPR | start delay ms (p50) | end delay ms (p50) "
        "| missed turns ≥10 dB · all | false starts | premature ends | CPU s per audio hour |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, by_noise in results.items():
        s = by_noise["all"]
        lines.append(
            f"| {name} | {s.f1:.3f} | {s.f1_raw:.3f} | {s.fpr:.3f} | {_median(s.start_delays)} "
            f"| {_median(s.end_delays)} | {s.missed_10db}/{s.turns_10db} · {s.missed}/{s.turns} "
            f"| {s.false_starts} | {s.premature} | {s.cpu_per_hour:.2f} |"
        )
    noises = list(noises)
    lines += [
        "",
        "| F1 (endpointed) | " + " | ".join(noises) + " |",
        "|---|" + "---|" * len(noises),
    ]
    for name, by_noise in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{by_noise[k].f1:.4f}" for k in noises) + " |")
    lines += [
        "",
        "| end delay ms (p50) | " + " | ".join(noises) + " |",
        "|---|" + "---|" * len(noises),
    ]
    for name, by_noise in results.items():
        lines.append(f"| {name} | " + " | ".join(_median(by_noise[k].end_delays) for k in noises) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--detectors", default="", help="comma-separated subset (default: all available)")
    parser.add_argument("--split", default="eval", choices=sorted(vad_corpus.VOICES))
    parser.add_argument("--clips", type=int, default=0, help="use only the first N clean clips (0: all)")
    parser.add_argument(
        "--draws",
        type=int,
        default=1,
        help="score N noise draws of the corpus (draw 0 first) and add them up",
    )
    args = parser.parse_args()
    detectors = available_detectors()
    if args.detectors:
        wanted = args.detectors.split(",")
        detectors = {k: v for k, v in detectors.items() if k in wanted}
    clips = vad_corpus.load_clips(args.split)
    if args.clips:
        clips = clips[: args.clips]
    draws = max(1, args.draws)
    n = len(clips) * len(vad_corpus.NOISES) * len(vad_corpus.SNRS) * draws
    seconds = sum(len(c.pcm) for c in clips) / vad_corpus.RATE * n / max(1, len(clips))
    print(
        f"{n} mixtures ({draws} noise draw{'s' if draws > 1 else ''}), {seconds / 3600:.2f} h of audio; "
        f"detectors: {', '.join(detectors)}",
        flush=True,
    )
    per_draw = [
        evaluate(detectors, vad_corpus.mixtures(args.split, clips=clips, draw=d), progress=True)
        for d in range(draws)
    ]
    print(table(merge(per_draw), vad_corpus.NOISES))
    if draws > 1:
        print("\n" + premature_per_draw(per_draw))


if __name__ == "__main__":
    main()
