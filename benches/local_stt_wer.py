"""Word error rate, intent accuracy and real-time factor of the offline STT on espeak-ng speech.

The front-desk demo agent's callers are played by espeak-ng (several voices): the
paraphrases of ``benches/intent_router.py`` (written for the benchmarks, not copies of the
agent's examples; some out of domain), recognized by
:class:`voicecore.providers.pocketsphinx.PocketsphinxSTT`:

* **open**: PocketSphinx's general English model;
* **ngram**: restricted to a trigram model of the agent's intent examples;
* **grammar**: restricted to a grammar of the intent examples themselves.

Each recording is heard **clean** (16 kHz) and over a **phone** line: white noise at 20 dB
SNR, a 300-3400 Hz band-pass, 8 kHz mu-law encode and decode (``voicecore.audio``) and back
to 16 kHz with :class:`voicecore.audio.Resampler`.

* **WER**: word error rate over the in-domain sentences, both sides normalized with
  :func:`voicecore.intents.normalize` (numbers as digits);
* **intent accuracy**: the transcript routed by the agent's :class:`IntentRouter` gets the
  sentence's intent (out-of-domain sentences: no intent), over all sentences;
* **RTF**: wall time from the first 20 ms frame to the final text over the audio's duration,
  with the process pinned to one CPU core (< 1: faster than real time).

Audio goes through the provider as the runtime sends it (20 ms frames, then ``finalize()``),
one stream per voice as in a call (PocketSphinx's cepstral normalization adapts over a call).

Run ``python -m benches.local_stt_wer`` (``--quick``: one voice, three sentences; ``--all``:
every paraphrase rather than every other one).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benches.intent_router import PARAPHRASES, front_desk_intents
from voicecore.audio import Resampler, ulaw_decode, ulaw_encode
from voicecore.intents import IntentRouter, normalize
from voicecore.providers.base import PCM16_16K
from voicecore.providers.pocketsphinx import PocketsphinxSTT

SENTENCES: tuple[tuple[str, str | None], ...] = PARAPHRASES
"""What the callers say, with the intent each asks for."""

VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland")
SNR_DB = 20.0


def speak(text: str, voice: str) -> bytes:
    """``text`` said by espeak-ng's ``voice``, as 16 kHz PCM16."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate, frames = reader.getframerate(), reader.readframes(reader.getnframes())
    resampler = Resampler(rate, 16000)
    return resampler.process(frames) + resampler.flush()


def phone_line(pcm: bytes, *, seed: int = 0) -> bytes:
    """``pcm`` (16 kHz) with 20 dB SNR noise, band-passed to 300-3400 Hz, through 8 kHz μ-law."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    power = np.mean(samples**2) if samples.size else 0.0
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (SNR_DB / 10)), samples.size)
    spectrum = np.fft.rfft(samples + noise)
    freqs = np.fft.rfftfreq(samples.size, 1 / 16000)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    banded = np.clip(np.fft.irfft(spectrum, samples.size), -32768, 32767).astype("<i2").tobytes()
    down, up = Resampler(16000, 8000), Resampler(8000, 16000)
    narrow = down.process(banded) + down.flush()
    wide = ulaw_decode(ulaw_encode(narrow))
    return up.process(wide) + up.flush()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words): the word-level Levenshtein distance and the reference length."""
    ref, hyp = reference.split(), hypothesis.split()
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1], len(ref)


async def recognize(stt: PocketsphinxSTT, recordings: Sequence[bytes]) -> list[tuple[str, float]]:
    """Final texts of ``recordings`` said one after the other in one call, with decoding times.

    One stream serves them all, as in a call: PocketSphinx's cepstral mean normalization
    adapts over the call, so the first utterance is recognized worst.
    """
    stream = await stt.open(PCM16_16K, language="en")
    updates = aiter(stream)
    results = []
    for pcm in recordings:
        started = time.perf_counter()
        for start in range(0, len(pcm), 640):
            await stream.push_audio(pcm[start : start + 640])
        await stream.finalize()
        while not (update := await anext(updates)).final:
            pass
        results.append((update.text, time.perf_counter() - started))
    await stream.aclose()
    return results


@dataclass
class Score:
    """Accumulated errors and timing for one (model, line) condition."""

    edits: int = 0
    words: int = 0
    decode_s: float = 0.0
    audio_s: float = 0.0
    sentences: int = 0
    intents_right: int = 0

    @property
    def wer(self) -> float:
        """Word error rate."""
        return self.edits / max(self.words, 1)

    @property
    def intent_accuracy(self) -> float:
        """Share of sentences whose transcript routes to the right intent (or to none)."""
        return self.intents_right / max(self.sentences, 1)

    @property
    def rtf(self) -> float:
        """Decoding time over audio time."""
        return self.decode_s / max(self.audio_s, 1e-9)


def phrases() -> list[str]:
    """The front-desk agent's intent examples: what the restricted models are built from."""
    return [example for intent in front_desk_intents() for example in intent.examples]


def evaluate(
    sentences: Sequence[tuple[str, str | None]], voices: Sequence[str], *, verbose: bool = False
) -> dict[tuple[str, str], Score]:
    """Score every sentence, voice, model and line; keyed by (model, line)."""
    examples = phrases()
    models = {
        "open": PocketsphinxSTT(interim_every_ms=0),
        "ngram": PocketsphinxSTT(phrases=examples, interim_every_ms=0),
        "grammar": PocketsphinxSTT(phrases=examples, restrict="grammar", interim_every_ms=0),
    }
    router = IntentRouter(front_desk_intents())
    scores = {(model, line): Score() for model in models for line in ("clean", "phone")}
    for voice in voices:
        clean = [speak(text, voice) for text, _ in sentences]
        lines = {"clean": clean, "phone": [phone_line(pcm, seed=i) for i, pcm in enumerate(clean)]}
        for line, recordings in lines.items():
            for model, stt in models.items():
                results = asyncio.run(recognize(stt, recordings))
                score = scores[model, line]
                for (sentence, intent), pcm, (text, elapsed) in zip(
                    sentences, recordings, results, strict=True
                ):
                    if intent is not None:
                        edits, words = word_errors(normalize(sentence), normalize(text))
                        score.edits += edits
                        score.words += words
                    match = router.match(text)
                    score.intents_right += (match.intent.name if match else None) == intent
                    score.decode_s += elapsed
                    score.audio_s += len(pcm) / PCM16_16K.bytes_per_second
                    score.sentences += 1
                    if verbose:
                        print(f"{voice:14} {line:5} {model:7} {sentence!r} -> {text!r}")
    return scores


def table(scores: dict[tuple[str, str], Score]) -> str:
    """The scores as a Markdown table."""
    rows = [
        "| model | line | WER (in domain) | intent accuracy | RTF (1 core) |",
        "|---|---|---|---|---|",
    ]
    for (model, line), score in scores.items():
        rows.append(f"| {model} | {line} | {score.wer:.1%} | {score.intent_accuracy:.1%} | {score.rtf:.3f} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the WER/RTF table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one voice, three sentences")
    parser.add_argument("--all", action="store_true", help="every paraphrase (default: every other one)")
    parser.add_argument("--verbose", action="store_true", help="print every transcript")
    parser.add_argument("--core", type=int, default=None, help="CPU core to pin to (default: the first)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        core = args.core if args.core is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
    sentences, voices = SENTENCES if args.all else SENTENCES[::2], VOICES
    if args.quick:
        sentences, voices = SENTENCES[:3], VOICES[:1]
    started = time.perf_counter()
    scores = evaluate(sentences, voices, verbose=args.verbose)
    print(table(scores))
    print(
        f"\n{len(sentences)} sentences x {len(voices)} voices ({', '.join(voices)}); "
        f"{time.perf_counter() - started:.0f} s in all"
    )


if __name__ == "__main__":
    main()
