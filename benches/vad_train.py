"""Train the native VAD's two models and write ``rust/core/src/vad/weights.rs``.

The detector averages a perceptron with two small tanh hidden layers and a GRU
(``benches/vad_gru.py``, weight ``GRU_WEIGHT``), both over the features that the Rust
core computes (``voicecore._core.vad_features``: the very code that runs at inference, so
training and inference cannot drift apart). Training data is the ``train`` split of
``benches/vad_corpus.py`` (voices, texts and seeds disjoint from the ``eval`` split that
``benches/vad_table.py`` scores), each clip mixed several times with a random noise
(the evaluation kinds plus telephony and random tones, steady or gated and often starting
after quiet or digital silence, noise bursts after quiet or digital silence, and
near-silence; babble, tones and bursts twice as often as the others)
at a random SNR between -5 and 30 dB and a random gain, and about a third of the mixes
through the telephone channel. Targets are the 10 ms clean-speech labels.

numpy only: mini-batch Adam on the binary cross-entropy (the GRU's with a term against long
dropouts inside turns), fixed seeds, a few minutes on one core. Regenerate the committed
weights with::

    OPENBLAS_NUM_THREADS=1 python -m benches.vad_train   # writes rust/core/src/vad/weights.rs
    maturin develop --release                            # rebuild the extension with them

(the committed weights were made with one BLAS thread; with more, matrix products may sum
in another order and the weights differ in their last bits)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benches import vad_corpus, vad_gru
from benches.adam import Adam
from voicecore._core import vad_features

HIDDEN1 = 24
HIDDEN2 = 12
# The GRU's share of the detector's probability: the perceptron keeps hold of speech buried in
# noise, the GRU tells the caller from other talkers.
GRU_WEIGHT = 0.3
# Babble (other talkers, labelled non-speech), tones and bursts after silence are the hardest
# kinds: they are drawn twice as often.
TRAIN_NOISES = (
    "white",
    "pink",
    "brown",
    "hum",
    "babble",
    "babble",
    "tone",
    "tone",
    "bursts",
    "bursts",
    "quiet",
)
WEIGHTS_RS = Path(__file__).resolve().parent.parent / "rust" / "core" / "src" / "vad" / "weights.rs"


def features(pcm: np.ndarray, rate: int) -> np.ndarray:
    """The model inputs of each whole 10 ms frame, ``(frames, inputs)``."""
    raw = np.frombuffer(vad_features(pcm.astype("<i2").tobytes(), rate), dtype="<f4")
    frames = len(pcm) // (rate // 100)
    return raw.reshape(frames, -1)


def dataset(mixes_per_clip: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Features and labels of the train split, each clip in several random noises, and each
    mix's in-turn mask (its frames inside a turn, hesitation pauses included)."""
    rng = np.random.default_rng(seed)
    track = vad_corpus.babble("train")
    xs, ys, in_turn = [], [], []
    for clip in vad_corpus.load_clips("train"):
        for _ in range(mixes_per_clip):
            kind = str(rng.choice(TRAIN_NOISES))
            # Tones and bursts may be far louder than the speech: loudness alone is no evidence.
            snr = float(rng.uniform(-15 if kind in ("tone", "bursts") else -5, 30))
            if kind == "quiet":
                kind, snr = "white", float(rng.uniform(40, 60))
            m = vad_corpus.mix(clip, kind, snr, rng, track, telephone=rng.random() < 0.3)
            gain = 10 ** (rng.uniform(-20, 14) / 20)
            pcm = np.clip(np.round(m.pcm.astype(np.float64) * gain), -32768, 32767).astype(np.int16)
            x = features(pcm, m.rate)
            n = min(len(x), len(m.labels))
            xs.append(x[:n])
            ys.append(m.labels[:n].astype(np.float32))
            centres = np.arange(n) * vad_corpus.FRAME_MS + vad_corpus.FRAME_MS // 2
            inside = np.zeros(n, bool)
            for a, b in m.turns:
                inside |= (centres >= a) & (centres < b)
            in_turn.append(inside)
    return np.concatenate(xs), np.concatenate(ys), in_turn


class Mlp:
    """inputs → tanh(HIDDEN1) → tanh(HIDDEN2) → sigmoid, trained with Adam."""

    def __init__(self, inputs: int, rng: np.random.Generator) -> None:
        def init(fan_in: int, fan_out: int) -> np.ndarray:
            return rng.normal(0, 1 / np.sqrt(fan_in), size=(fan_in, fan_out)).astype(np.float32)

        self.params = {
            "w1": init(inputs, HIDDEN1),
            "b1": np.zeros(HIDDEN1, np.float32),
            "w2": init(HIDDEN1, HIDDEN2),
            "b2": np.zeros(HIDDEN2, np.float32),
            "w3": init(HIDDEN2, 1),
            "b3": np.zeros(1, np.float32),
        }
        self.optimizer = Adam(self.params)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.params
        h1 = np.tanh(x @ p["w1"] + p["b1"])
        h2 = np.tanh(h1 @ p["w2"] + p["b2"])
        logit = (h2 @ p["w3"] + p["b3"])[:, 0]
        return h1, h2, logit

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-self.forward(x)[2])))

    def step(self, x: np.ndarray, y: np.ndarray, lr: float, weight_decay: float = 1e-5) -> float:
        p = self.params
        h1, h2, logit = self.forward(x)
        prob = 1 / (1 + np.exp(-logit))
        loss = float(np.mean(np.logaddexp(0, logit) - y * logit))
        d_logit = ((prob - y) / len(y))[:, None].astype(np.float32)
        grads = {"w3": h2.T @ d_logit, "b3": d_logit.sum(0)}
        d_h2 = (d_logit @ p["w3"].T) * (1 - h2**2)
        grads |= {"w2": h1.T @ d_h2, "b2": d_h2.sum(0)}
        d_h1 = (d_h2 @ p["w2"].T) * (1 - h1**2)
        grads |= {"w1": x.T @ d_h1, "b1": d_h1.sum(0)}
        self.optimizer.step(grads, lr, weight_decay)
        return loss


def f1(prob: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> float:
    pred, truth = prob >= threshold, y > 0.5
    tp = np.sum(pred & truth)
    return float(2 * tp / max(1, 2 * tp + np.sum(pred & ~truth) + np.sum(~pred & truth)))


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> tuple[Mlp, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = x.mean(0)
    scale = 1 / np.maximum(x.std(0), 1e-3)
    xn = ((x - mean) * scale).astype(np.float32)
    held = rng.random(len(xn)) < 0.1
    x_train, y_train, x_held, y_held = xn[~held], y[~held], xn[held], y[held]
    model = Mlp(x.shape[1], rng)
    batch = 512
    for epoch in range(epochs):
        lr = 3e-3 * (0.5 ** (epoch / max(1, epochs // 3)))
        order = rng.permutation(len(x_train))
        losses = [
            model.step(x_train[order[i : i + batch]], y_train[order[i : i + batch]], lr)
            for i in range(0, len(order), batch)
        ]
        held_f1 = f1(model.predict(x_held), y_held)
        print(
            f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}, held-out frame F1 {held_f1:.4f}",
            flush=True,
        )
    return model, mean.astype(np.float32), scale.astype(np.float32)


def _array(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v):.6e}" for v in values) + "]"


def _matrix(rows: np.ndarray) -> str:
    return "[\n" + "".join(f"    {_array(r)},\n" for r in rows) + "]"


def _gru_weights(gru: vad_gru.Gru) -> str:
    """The GRU's arrays; each gate matrix holds the update, reset and candidate gates side by side."""
    p, g = gru.params, vad_gru.UNITS
    return (
        f"pub const GRU_WEIGHT: f32 = {GRU_WEIGHT};\n"
        f"pub const GRU_HIDDEN: usize = {vad_gru.HIDDEN};\n"
        f"pub const GRU_UNITS: usize = {g};\n"
        "pub const GRU_GATES: usize = 3 * GRU_UNITS;\n"
        f"pub static GRU_W1: [[f32; GRU_HIDDEN]; INPUTS] = {_matrix(p['w1'])};\n"
        f"pub static GRU_B1: [f32; GRU_HIDDEN] = {_array(p['b1'])};\n"
        f"pub static GRU_WX: [[f32; GRU_GATES]; GRU_HIDDEN] = {_matrix(p['wx'])};\n"
        f"pub static GRU_BX: [f32; GRU_GATES] = {_array(p['bx'])};\n"
        f"pub static GRU_UH: [[f32; GRU_GATES]; GRU_UNITS] = {_matrix(p['uh'])};\n"
        f"pub static GRU_BH: [f32; GRU_GATES] = {_array(p['bh'])};\n"
        f"pub static GRU_W3_STATE: [f32; GRU_UNITS] = {_array(p['w3'][:g, 0])};\n"
        f"pub static GRU_W3_HIDDEN: [f32; GRU_HIDDEN] = {_array(p['w3'][g:, 0])};\n"
        f"pub const GRU_B3: f32 = {float(p['b3'][0]):.6e};\n"
    )


def write_weights(
    model: Mlp, gru: vad_gru.Gru, mean: np.ndarray, scale: np.ndarray, path: Path, note: str
) -> None:
    p = model.params
    path.write_text(
        "//! Native VAD model weights, generated by `python -m benches.vad_train`: do not edit.\n"
        f"//! {note}\n"
        "#![allow(clippy::unreadable_literal, clippy::excessive_precision)]\n\n"
        "use super::features::INPUTS;\n\n"
        f"pub const HIDDEN1: usize = {HIDDEN1};\n"
        f"pub const HIDDEN2: usize = {HIDDEN2};\n"
        f"pub static MEAN: [f32; INPUTS] = {_array(mean)};\n"
        f"pub static SCALE: [f32; INPUTS] = {_array(scale)};\n"
        f"pub static W1: [[f32; HIDDEN1]; INPUTS] = {_matrix(p['w1'])};\n"
        f"pub static B1: [f32; HIDDEN1] = {_array(p['b1'])};\n"
        f"pub static W2: [[f32; HIDDEN2]; HIDDEN1] = {_matrix(p['w2'])};\n"
        f"pub static B2: [f32; HIDDEN2] = {_array(p['b2'])};\n"
        f"pub static W3: [f32; HIDDEN2] = {_array(p['w3'][:, 0])};\n"
        f"pub const B3: f32 = {float(p['b3'][0]):.6e};\n" + _gru_weights(gru)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mixes", type=int, default=12, help="noisy versions of each training clip")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=WEIGHTS_RS)
    args = parser.parse_args()
    x, y, in_turn = dataset(args.mixes, args.seed)
    print(
        f"{len(x)} frames ({len(x) / 360000:.2f} h), {x.shape[1]} inputs, {y.mean():.1%} speech", flush=True
    )
    model, mean, scale = train(x, y, args.epochs, args.seed)
    xn = ((x - mean) * scale).astype(np.float32)
    ends = np.cumsum([len(t) for t in in_turn])
    streams = [
        vad_gru.Stream(xn[end - len(t) : end], y[end - len(t) : end], t)
        for t, end in zip(in_turn, ends, strict=True)
    ]
    gru = vad_gru.train(streams, args.seed)
    note = (
        f"train split, {args.mixes} mixes per clip, seed {args.seed}; perceptron {args.epochs} epochs, "
        f"GRU {vad_gru.EPOCHS}."
    )
    write_weights(model, gru, mean, scale, args.out, note)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
