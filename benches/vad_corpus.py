"""The VAD development corpus: espeak-ng speech in generated noise, with 10 ms labels.

Clean clips are synthesized with espeak-ng (several voices, languages and speeds; short
backchannels, sentences, long turns and turns with a hesitation pause), resampled to
16 kHz and cached under ``$VOICECORE_CACHE`` (default ``~/.cache/voicecore``); nothing
generated is committed. :func:`mixtures` then adds noise at a given SNR on the fly:

* ``white``, ``pink``, ``brown``: Gaussian noise with a flat, 1/f or 1/f² power spectrum;
* ``hum``: 50 or 60 Hz mains hum with 15 harmonics;
* ``babble``: six simultaneous talkers (other voices and texts);
* ``telephone``: pink noise, then a 300-3400 Hz band-pass and μ-law at 8 kHz.

Labels mark each 10 ms frame whose clean-speech energy is within 40 dB of the clip's
loudest frame; a *turn* spans one synthesized turn from its first to its last speech
frame. The ``eval`` and ``train`` splits use different voices, texts and seeds, so the
native model (``benches/vad_train.py``) is never scored on what it was trained on.

Run ``python -m benches.vad_corpus`` to build the corpus and print its size (needs the
espeak-ng program: ``apt-get install espeak-ng``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from voicecore.audio import ulaw_decode, ulaw_encode

VERSION = 3
RATE = 16000
FRAME_MS = 10
NOISES = ("white", "pink", "brown", "hum", "babble", "telephone")
SNRS = (20, 10, 5, 0)
# Added to a split's seed for each further noise draw of the same corpus (see mixture_seed).
DRAW_SEED_STEP = 1000

BACKCHANNELS = {
    "en": ["yes", "uh-huh", "okay", "right", "mm-hmm", "yeah", "sure", "no"],
    "de": ["ja", "genau", "okay", "nein"],
    "fr": ["oui", "d'accord", "non", "voilà"],
    "es": ["sí", "vale", "claro", "no"],
    "it": ["sì", "certo", "va bene", "no"],
    "nl": ["ja", "goed", "nee", "prima"],
    "pt": ["sim", "claro", "não", "certo"],
    "pl": ["tak", "dobrze", "nie"],
    "sv": ["ja", "okej", "nej"],
}

TEXTS = {
    "eval": {
        "en": [
            "I would like to book a table for four people on Friday evening.",
            "Can you tell me when my package is going to arrive?",
            "The weather has been surprisingly warm for this time of year.",
            "My account number starts with seven two nine and ends with four.",
            "Please cancel the appointment I made for next Tuesday afternoon.",
            "We drove along the coast for hours and stopped at a small fishing village.",
            "Could you repeat the last part, I did not quite catch it.",
            "The invoice should have been sent to the billing department last month.",
            "If the train is late again I will have to take a taxi to the airport.",
            "Honestly I think the second option is cheaper in the long run.",
        ],
        "de": [
            "Ich möchte gerne meinen Vertrag zum Ende des Monats kündigen.",
            "Können Sie mir bitte sagen, wann der nächste Zug nach Berlin fährt?",
            "Das Paket ist leider immer noch nicht angekommen.",
        ],
        "fr": [
            "Je voudrais changer l'adresse de livraison de ma commande.",
            "Est-ce que vous êtes ouverts le dimanche matin?",
            "Le rendez-vous de jeudi ne me convient plus du tout.",
        ],
        "es": [
            "Quisiera saber el saldo de mi cuenta corriente, por favor.",
            "El técnico vino ayer pero el problema sigue igual.",
            "¿A qué hora cierra la farmacia los sábados?",
        ],
        "it": [
            "Vorrei prenotare una camera doppia per tre notti.",
            "Il volo è stato cancellato e nessuno ci ha avvisato.",
        ],
    },
    "train": {
        "en": [
            "Good morning, I am calling about the broken heater in my apartment.",
            "There is a problem with the last payment on my credit card.",
            "She said the meeting had been moved to the big room upstairs.",
            "How many days does it usually take to process a refund?",
            "I have been waiting on hold for almost twenty minutes now.",
            "The children played in the garden until it got dark outside.",
            "Would it be possible to upgrade my plan without a new contract?",
            "Our flight leaves at six fifteen so we need to be there by four.",
            "Yesterday the printer on the third floor stopped working again.",
            "I think my password expired because it does not let me log in.",
            "Send the documents by email and I will sign them tonight.",
            "The doctor told me to come back in two weeks for another test.",
            "What is the fastest way to get from the station to the museum?",
            "Let me check my calendar and get back to you this afternoon.",
        ],
        "nl": [
            "Ik wil graag een afspraak maken voor volgende week woensdag.",
            "De rekening klopt niet, er staat een bedrag dubbel op.",
            "Hoe laat vertrekt de laatste bus naar het centrum?",
        ],
        "pt": [
            "Eu gostaria de falar com alguém sobre a minha fatura.",
            "O restaurante estava cheio, então fomos para outro lugar.",
            "Quanto tempo demora a entrega para o interior?",
        ],
        "pl": [
            "Chciałbym zmienić termin mojej wizyty u lekarza.",
            "Paczka miała przyjść wczoraj, ale nikt jej nie przyniósł.",
        ],
        "sv": [
            "Jag skulle vilja boka om min resa till nästa vecka.",
            "Kan du skicka kvittot till min e-postadress?",
        ],
        "de": [
            "Wir haben gestern lange im Park gesessen und geredet.",
            "Bitte rufen Sie mich morgen Vormittag zurück.",
        ],
        "es": [
            "Necesito cambiar la fecha de mi vuelo de regreso.",
            "La conexión a internet se corta cada pocos minutos.",
        ],
    },
}


@dataclass(frozen=True)
class Split:
    """How one split is synthesized: voices per language, variants, speeds, size, seed."""

    languages: dict[str, list[str]]
    variants: list[str]
    speeds: list[int]
    babble: list[str]
    clips: int
    seed: int


# espeak-ng voices, variants, speeds, texts and seeds are disjoint between the splits.
VOICES = {
    "eval": Split(
        languages={"en": ["en-us", "en-gb"], "de": ["de"], "fr": ["fr-fr"], "es": ["es"], "it": ["it"]},
        variants=["m1", "f2", "m3", "f4", "m6"],
        speeds=[140, 170, 205],
        babble=["ru", "hi", "tr", "fi", "hu", "ro"],
        clips=8,
        seed=1001,
    ),
    "train": Split(
        languages={
            "en": ["en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-scotland"],
            "nl": ["nl"],
            "pt": ["pt-br"],
            "pl": ["pl"],
            "sv": ["sv"],
            "de": ["de"],
            "es": ["es-419"],
        },
        variants=["m2", "f1", "m4", "f3", "m5", "f5", "m7", "klatt"],
        speeds=[125, 150, 185, 220],
        babble=["cs", "el", "da", "id", "vi", "ru-lv"],
        clips=24,
        seed=2002,
    ),
}


@dataclass(frozen=True)
class Clip:
    """One clean clip: PCM16 at 16 kHz, 10 ms speech labels and turn spans in ms."""

    name: str
    pcm: np.ndarray
    labels: np.ndarray
    turns: list[tuple[int, int]]
    kinds: list[str]


@dataclass(frozen=True)
class Mixture:
    """A clip mixed with noise: ``pcm`` at ``rate`` (16000, or 8000 for telephone)."""

    name: str
    noise: str
    snr_db: float
    rate: int
    pcm: np.ndarray
    labels: np.ndarray
    turns: list[tuple[int, int]]
    kinds: list[str]


def cache_dir() -> Path:
    """Where generated audio is cached (never inside the repository)."""
    root = Path(os.environ.get("VOICECORE_CACHE", Path.home() / ".cache" / "voicecore"))
    return root / f"vad-corpus-v{VERSION}"


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng speech as float32 at 16 kHz."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return np.asarray(soxr.resample(x, rate, RATE), dtype=np.float32)


def trim(x: np.ndarray) -> np.ndarray:
    """``x`` without espeak-ng's leading and trailing silence (20 ms margins kept)."""
    db = frame_db(x)
    active = np.flatnonzero(db > db.max() - 45.0)
    hop = RATE * FRAME_MS // 1000
    return x[max(0, (active[0] - 2) * hop) : (active[-1] + 3) * hop]


def frame_db(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Mean-square level of each whole 10 ms frame, in dB."""
    hop = rate * FRAME_MS // 1000
    frames = x[: len(x) // hop * hop].astype(np.float64).reshape(-1, hop)
    return np.asarray(10 * np.log10(np.mean(frames**2, axis=1) + 1e-12))


def _synth_clip(split: str, index: int, rng: np.random.Generator) -> Clip:
    cfg = VOICES[split]
    languages = cfg.languages
    # English every other clip, the other languages in turn.
    others = sorted(set(languages) - {"en"})
    lang = "en" if index % 2 == 0 else others[(index // 2) % len(others)]
    voice = f"{rng.choice(languages[lang])}+{rng.choice(cfg.variants)}"
    speed = int(rng.choice(cfg.speeds))
    pitch = int(rng.integers(30, 70))
    texts = TEXTS[split][lang]
    pieces = [np.zeros(int(RATE * rng.uniform(1.0, 2.0)), np.float32)]
    spans: list[tuple[int, int]] = []
    kinds: list[str] = []
    position = len(pieces[0])

    def say(text: str) -> np.ndarray:
        return trim(speak(text, voice, speed, pitch))

    def pause() -> np.ndarray:
        # Hesitations and breaths between sentences: always shorter than stop_ms=500.
        return np.zeros(int(RATE * rng.uniform(0.18, 0.38)), np.float32)

    for turn in range(int(rng.integers(7, 10))):
        kind = ["backchannel", "sentence", "long", "hesitation"][
            turn % 4 if turn < 4 else int(rng.integers(4))
        ]
        if kind == "backchannel":
            audio = say(str(rng.choice(BACKCHANNELS[lang])))
        elif kind == "sentence":
            audio = say(str(rng.choice(texts)))
        elif kind == "long":
            picks = rng.choice(len(texts), size=min(3, len(texts)), replace=False)
            parts = [say(texts[i]) for i in picks]
            audio = np.concatenate([x for part in parts for x in (part, pause())][:-1])
        else:
            words = str(rng.choice(texts)).split()
            cut = max(2, len(words) // 2)
            audio = np.concatenate([say(" ".join(words[:cut])), pause(), say(" ".join(words[cut:]))])
        spans.append((position, position + len(audio)))
        kinds.append(kind)
        gap = np.zeros(int(RATE * rng.uniform(1.3, 2.6)), np.float32)
        pieces += [audio, gap]
        position += len(audio) + len(gap)
    clean = np.concatenate(pieces)
    db = frame_db(clean)
    labels = db > max(db.max() - 40.0, -80.0)
    turns = []
    hop = RATE * FRAME_MS // 1000
    for start, end in spans:
        idx = np.flatnonzero(labels[start // hop : end // hop]) + start // hop
        turns.append((int(idx[0]) * FRAME_MS, (int(idx[-1]) + 1) * FRAME_MS))
    # Speech level: a random active level between -32 and -18 dBFS.
    active = clean[: len(labels) * hop].reshape(-1, hop)[labels]
    level = 10 ** (rng.uniform(-32, -18) / 20) / np.sqrt(np.mean(active**2))
    pcm = np.clip(np.round(clean * level * 32768), -32768, 32767).astype(np.int16)
    return Clip(f"{split}{index:02d}-{lang}-{voice}-s{speed}", pcm, labels, turns, kinds)


def _synth_babble(split: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Six talkers at once, each a stream of utterances in voices not used for speech."""
    cfg = VOICES[split]
    all_texts = [t for texts in TEXTS[split].values() for t in texts]
    n = int(seconds * RATE)
    mix = np.zeros(n, np.float32)
    for talker in range(6):
        voice = f"{cfg.babble[talker]}+{rng.choice(['m1', 'f1', 'm2', 'f2', 'm3'])}"
        stream: list[np.ndarray] = []
        length = 0
        while length < n:
            audio = speak(
                str(rng.choice(all_texts)), voice, int(rng.integers(140, 200)), int(rng.integers(30, 70))
            )
            audio = audio / (np.sqrt(np.mean(audio**2)) + 1e-9)
            stream += [audio, np.zeros(int(RATE * rng.uniform(0.05, 0.4)), np.float32)]
            length += len(audio) + len(stream[-1])
        track = np.concatenate(stream)
        shift = int(rng.integers(len(track)))
        mix += np.roll(track, shift)[:n]
    return mix


def load_clips(split: str = "eval") -> list[Clip]:
    """The clean clips of a split, synthesized once and then read from the cache."""
    folder = cache_dir() / split
    index_file = folder / "index.json"
    if not index_file.exists():
        if not have_espeak():
            raise RuntimeError("the VAD corpus needs espeak-ng: apt-get install espeak-ng")
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(VOICES[split].seed)
        names = []
        for i in range(VOICES[split].clips):
            clip = _synth_clip(split, i, rng)
            np.savez(folder / f"{i:02d}.npz", pcm=clip.pcm, labels=clip.labels)
            names.append({"name": clip.name, "turns": clip.turns, "kinds": clip.kinds})
        np.save(folder / "babble.npy", _synth_babble(split, 60.0, rng))
        index_file.write_text(json.dumps(names))
    meta = json.loads(index_file.read_text())
    out = []
    for i, m in enumerate(meta):
        data = np.load(folder / f"{i:02d}.npz")
        turns = [(int(a), int(b)) for a, b in m["turns"]]
        out.append(Clip(m["name"], data["pcm"], data["labels"], turns, list(m["kinds"])))
    return out


def babble(split: str) -> np.ndarray:
    load_clips(split)
    return np.asarray(np.load(cache_dir() / split / "babble.npy"))


def _shaped(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power falls as 1/f**exponent (above 20 Hz)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum *= np.maximum(f, 20.0) ** (-exponent / 2)
    return np.fft.irfft(spectrum, n)


def _hum(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / RATE
    f0 = float(rng.choice([50.0, 60.0]))
    x = sum(k**-0.8 * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 16)) * (
        1 + 0.05 * np.sin(2 * np.pi * 0.3 * t)
    )
    return np.asarray(x + 0.003 * rng.standard_normal(n))


def _band_pass(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Zero-phase FFT band-pass with 100 Hz raised-cosine skirts."""
    spectrum = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    gain = np.clip((f - (low - 100)) / 100, 0, 1) * np.clip(((high + 100) - f) / 100, 0, 1)
    return np.fft.irfft(spectrum * (0.5 - 0.5 * np.cos(np.pi * gain)), len(x))


def noise(kind: str, n: int, rng: np.random.Generator, babble_track: np.ndarray | None = None) -> np.ndarray:
    """``n`` samples of noise ``kind`` at 16 kHz (unit-free; the mixer sets the level)."""
    if kind == "white":
        return rng.standard_normal(n)
    if kind in ("pink", "telephone"):
        return _shaped(n, 1.0, rng)
    if kind == "brown":
        return _shaped(n, 2.0, rng)
    if kind == "hum":
        return _hum(n, rng)
    if kind == "babble":
        assert babble_track is not None
        reps = -(-n // len(babble_track))
        start = int(rng.integers(len(babble_track)))
        return np.asarray(np.tile(babble_track, reps + 1)[start : start + n], dtype=np.float64)
    if kind == "tone":
        # Training only: telephony tones (dial, ringback, busy, DTMF) or one or two random
        # tones, steady or gated (beeps), starting after a stretch of faint noise or digital
        # silence as often as from the first sample.
        t = np.arange(n) / RATE
        pick = int(rng.integers(4))
        if pick == 0:
            freqs = [(350.0, 440.0), (440.0, 480.0), (480.0, 620.0)][int(rng.integers(3))]
        elif pick == 1:
            freqs = (float(rng.choice([697, 770, 852, 941])), float(rng.choice([1209, 1336, 1477])))
        else:
            freqs = tuple(rng.uniform(150, 3500, size=int(rng.integers(1, 3))))
        x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) for f in freqs)
        if rng.random() < 0.5:
            period = rng.uniform(0.15, 6.0)
            x = x * ((t % period) < period * rng.uniform(0.1, 0.8))
        if rng.random() < 0.5:
            x = x * (t >= rng.uniform(0.2, 4.0))
        return np.asarray(x + 0.003 * rng.standard_normal(n) * (rng.random() < 0.5))
    if kind == "bursts":
        # Training only: bursts of coloured noise (50 ms to 1.5 s) in a quiet background,
        # half the time digital silence.
        x = 0.01 * rng.standard_normal(n) * (rng.random() < 0.5)
        position = int(rng.integers(RATE // 2))
        while position < n:
            length = int(RATE * rng.uniform(0.05, 1.5))
            burst = _shaped(length, float(rng.choice([0.0, 1.0, 2.0])), rng)
            x[position : position + length] += burst[: n - position] / (np.std(burst) + 1e-9)
            position += length + int(RATE * rng.uniform(0.3, 3.0))
        return x
    raise ValueError(f"unknown noise kind {kind!r}")


def mix(
    clip: Clip,
    kind: str,
    snr_db: float,
    rng: np.random.Generator,
    babble_track: np.ndarray | None,
    telephone: bool = False,
) -> Mixture:
    """``clip`` plus noise ``kind`` at ``snr_db`` (speech power over speech frames vs noise power).

    The ``telephone`` kind is pink noise through the telephone channel; ``telephone=True``
    puts any other kind through that channel too.
    """
    speech = clip.pcm.astype(np.float64) / 32768
    hop = RATE * FRAME_MS // 1000
    active = speech[: len(clip.labels) * hop].reshape(-1, hop)[clip.labels]
    p_speech = float(np.mean(active**2))
    n = noise(kind, len(speech), rng, babble_track)
    n *= np.sqrt(p_speech / 10 ** (snr_db / 10) / (np.mean(n**2) + 1e-20))
    x = speech + n
    rate = RATE
    telephone = telephone or kind == "telephone"
    if telephone:
        x = np.asarray(soxr.resample(_band_pass(x, 300, 3400), RATE, 8000))
        rate = 8000
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
    if telephone:
        pcm = np.frombuffer(ulaw_decode(ulaw_encode(pcm.tobytes())), dtype="<i2").copy()
    return Mixture(clip.name, kind, snr_db, rate, pcm, clip.labels, clip.turns, clip.kinds)


def mixture_seed(split: str, draw: int, clip: int, noise: int, snr: int) -> list[int]:
    """The noise seed of one mixture: draw 0 is the corpus the tables quote, each later draw
    the same speech in fresh noise (rare events such as premature ends vary from draw to draw)."""
    return [VOICES[split].seed + DRAW_SEED_STEP * draw, clip, noise, snr]


def mixtures(
    split: str = "eval",
    noises: tuple[str, ...] = NOISES,
    snrs: tuple[int, ...] = SNRS,
    clips: list[Clip] | None = None,
    draw: int = 0,
) -> Iterator[Mixture]:
    """Every clean clip of ``split`` (or ``clips``) in every noise at every SNR, seeded by
    :func:`mixture_seed`."""
    track = babble(split)
    for ci, clip in enumerate(clips if clips is not None else load_clips(split)):
        for ni, kind in enumerate(noises):
            for si, snr in enumerate(snrs):
                rng = np.random.default_rng(mixture_seed(split, draw, ci, ni, si))
                yield mix(clip, kind, snr, rng, track)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=sorted(VOICES), default="eval")
    args = parser.parse_args()
    cs = load_clips(args.split)
    seconds = sum(len(c.pcm) for c in cs) / RATE
    turns = sum(len(c.turns) for c in cs)
    speech = sum(int(c.labels.sum()) for c in cs) * FRAME_MS / 1000
    print(f"{args.split}: {len(cs)} clean clips, {seconds:.0f} s, {turns} turns, {speech:.0f} s of speech")
    print(f"cached in {cache_dir() / args.split}")
    for c in cs:
        print(f"  {c.name}: {len(c.pcm) / RATE:.1f} s, turns {', '.join(c.kinds)}")


if __name__ == "__main__":
    main()
