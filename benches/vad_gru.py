"""The native VAD's recurrent half: a GRU trained in numpy by stateful truncated back-propagation.

The detector averages two models over the same inputs (``benches/vad_train.py`` writes both):
the perceptron, which sees 130 ms of context, and this one, which carries a state through the
whole stream: inputs → tanh(``HIDDEN``) → GRU(``UNITS``) → logistic output over the GRU state
and the tanh layer. It tells a caller from other talkers far better than the perceptron, and
the average keeps the perceptron's hold on speech buried in noise.

Training runs ``LANES`` streams side by side, each a random sequence of whole training mixes,
``STEPS`` frames per update, with the state carried from step to step and reset at each mix.
Beside each frame's cross-entropy, every ``WINDOW``-frame window lying wholly inside a turn
(hesitation pauses included) adds ``softplus(MARGIN - max logit in the window)``: no 450 ms
of a turn should pass without one frame the endpointer takes for speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from benches.adam import Adam

HIDDEN = 24
UNITS = 16
LANES = 16
STEPS = 50
EPOCHS = 15
WINDOW = 45
WINDOW_STRIDE = 5
WINDOW_WEIGHT = 1.0
MARGIN = 0.5


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-x)))


@dataclass
class Stream:
    """Normalised inputs ``(frames, inputs)``, 0/1 labels and the in-turn mask of one mix."""

    x: np.ndarray
    y: np.ndarray
    in_turn: np.ndarray


class Gru:
    """inputs → tanh(HIDDEN) → GRU(UNITS) → sigmoid over [state, tanh layer], trained with Adam."""

    def __init__(self, inputs: int, rng: np.random.Generator) -> None:
        def init(fan_in: int, fan_out: int) -> np.ndarray:
            return rng.normal(0, 1 / np.sqrt(fan_in), size=(fan_in, fan_out)).astype(np.float32)

        g = UNITS
        self.params = {
            "w1": init(inputs, HIDDEN),
            "b1": np.zeros(HIDDEN, np.float32),
            "wx": init(HIDDEN, 3 * g),  # update, reset and candidate gates, from the tanh layer
            "bx": np.zeros(3 * g, np.float32),
            "uh": init(g, 3 * g),  # the same gates, from the previous state
            "bh": np.zeros(3 * g, np.float32),
            "w3": init(g + HIDDEN, 1),
            "b3": np.zeros(1, np.float32),
        }
        self.params["bx"][:g] = 1.0  # the update gate starts out keeping the state
        self.optimizer = Adam(self.params)

    def forward(
        self, x: np.ndarray, h: np.ndarray, keep: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Logits ``(B, T)`` of ``x`` ``(B, T, inputs)`` from state ``h`` ``(B, UNITS)``; ``keep``
        ``(B, T)`` is 0 where the state resets before a frame. Returns the last state and a cache."""
        p, g = self.params, UNITS
        lanes, steps, _ = x.shape
        a = np.tanh(x @ p["w1"] + p["b1"])
        xp = a @ p["wx"] + p["bx"]
        shape = (lanes, steps, g)
        hs, hprev, zs, rs, ns, qs = (np.empty(shape, x.dtype) for _ in range(6))
        for t in range(steps):
            h = h * keep[:, t, None]
            hprev[:, t] = h
            hu = h @ p["uh"] + p["bh"]
            z = _sigmoid(xp[:, t, :g] + hu[:, :g])
            r = _sigmoid(xp[:, t, g : 2 * g] + hu[:, g : 2 * g])
            q = hu[:, 2 * g :]
            n = np.tanh(xp[:, t, 2 * g :] + r * q)
            h = (1 - z) * n + z * h
            hs[:, t], zs[:, t], rs[:, t], ns[:, t], qs[:, t] = h, z, r, n, q
        feat = np.concatenate([hs, a], 2)
        logit = (feat @ p["w3"])[..., 0] + p["b3"][0]
        return logit, h, (a, hprev, zs, rs, ns, qs, feat)

    def gradients(
        self,
        x: np.ndarray,
        y: np.ndarray,
        valid: np.ndarray,
        h: np.ndarray,
        keep: np.ndarray,
        in_turn: np.ndarray,
    ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """Loss, last state and gradients of one step of the lanes (``valid`` masks padding)."""
        logit, h_out, cache = self.forward(x, h, keep)
        prob = _sigmoid(logit)
        count = max(float(valid.sum()), 1.0)
        loss = float(np.sum(valid * (np.logaddexp(0, logit) - y * logit)) / count)
        d_logit = (valid * (prob - y) / count).astype(np.float32)
        if in_turn.shape[1] >= WINDOW:
            windows = sliding_window_view(logit, WINDOW, axis=1)[:, ::WINDOW_STRIDE]
            inside = sliding_window_view(in_turn, WINDOW, axis=1)[:, ::WINDOW_STRIDE].all(2)
            if inside.any():
                best = windows.argmax(2)
                top = np.take_along_axis(windows, best[..., None], 2)[..., 0]
                lane, window = np.nonzero(inside)
                v = top[lane, window]
                loss += WINDOW_WEIGHT * float(np.mean(np.logaddexp(0, MARGIN - v)))
                grad = (WINDOW_WEIGHT * -_sigmoid(MARGIN - v) / len(lane)).astype(np.float32)
                np.add.at(d_logit, (lane, window * WINDOW_STRIDE + best[lane, window]), grad)
        return loss, h_out, self._backward(x, keep, cache, d_logit)

    def _backward(
        self, x: np.ndarray, keep: np.ndarray, cache: tuple[np.ndarray, ...], d_logit: np.ndarray
    ) -> dict[str, np.ndarray]:
        p, g = self.params, UNITS
        a, hprev, zs, rs, ns, qs, feat = cache
        lanes, steps, _ = x.shape
        n_all = lanes * steps
        grads = {
            "w3": feat.reshape(n_all, -1).T @ d_logit.reshape(n_all, 1),
            "b3": np.array([d_logit.sum()], np.float32),
        }
        d_feat = d_logit[..., None] * p["w3"][:, 0]
        d_hs = d_feat[..., :g]
        d_a = d_feat[..., g:].copy()
        d_xp = np.empty((lanes, steps, 3 * g), np.float32)
        d_uh = np.zeros(p["uh"].shape, np.float32)
        d_bh = np.zeros(p["bh"].shape, np.float32)
        d_h = np.zeros((lanes, g), np.float32)
        uh_t = p["uh"].T
        for t in range(steps - 1, -1, -1):
            d_h = d_h + d_hs[:, t]
            z, r, n, q, hp = zs[:, t], rs[:, t], ns[:, t], qs[:, t], hprev[:, t]
            d_n = d_h * (1 - z)
            d_z = d_h * (hp - n)
            d_hp = d_h * z
            d_pn = d_n * (1 - n * n)
            d_pz = d_z * z * (1 - z)
            d_pr = d_pn * q * r * (1 - r)
            d_hu = np.concatenate([d_pz, d_pr, d_pn * r], 1)
            d_xp[:, t, :g] = d_pz
            d_xp[:, t, g : 2 * g] = d_pr
            d_xp[:, t, 2 * g :] = d_pn
            d_uh += hp.T @ d_hu
            d_bh += d_hu.sum(0)
            d_h = (d_hp + d_hu @ uh_t) * keep[:, t, None]
        d_xp2 = d_xp.reshape(n_all, -1)
        grads["wx"] = a.reshape(n_all, -1).T @ d_xp2
        grads["bx"] = d_xp2.sum(0)
        grads["uh"] = d_uh
        grads["bh"] = d_bh
        d_a = (d_a + d_xp @ p["wx"].T) * (1 - a * a)
        d_a2 = d_a.reshape(n_all, -1)
        grads["w1"] = x.reshape(n_all, -1).T @ d_a2
        grads["b1"] = d_a2.sum(0)
        return grads


def _lanes(streams: list[Stream], order: np.ndarray) -> tuple[np.ndarray, ...]:
    """The streams in ``order`` dealt to ``LANES`` lanes (each to the shortest so far), padded to
    whole steps: inputs, labels, valid-frame mask, state-keep mask and in-turn mask."""
    fill = np.zeros(LANES, int)
    dealt: list[list[int]] = [[] for _ in range(LANES)]
    for i in order:
        lane = int(np.argmin(fill))
        dealt[lane].append(int(i))
        fill[lane] += len(streams[i].y)
    length = -(-int(fill.max()) // STEPS) * STEPS
    inputs = streams[0].x.shape[1]
    x = np.zeros((LANES, length, inputs), np.float32)
    y = np.zeros((LANES, length), np.float32)
    valid = np.zeros((LANES, length), np.float32)
    keep = np.ones((LANES, length), np.float32)
    in_turn = np.zeros((LANES, length), bool)
    for lane, indices in enumerate(dealt):
        at = 0
        for i in indices:
            s = streams[i]
            n = len(s.y)
            x[lane, at : at + n], y[lane, at : at + n] = s.x, s.y
            valid[lane, at : at + n], in_turn[lane, at : at + n] = 1, s.in_turn
            keep[lane, at] = 0
            at += n
    return x, y, valid, keep, in_turn


def train(streams: list[Stream], seed: int, epochs: int = EPOCHS) -> Gru:
    """A GRU trained on ``streams``; the learning rate halves every third of the epochs."""
    rng = np.random.default_rng(seed)
    model = Gru(streams[0].x.shape[1], rng)
    for epoch in range(epochs):
        lr = 3e-3 * (0.5 ** (epoch / max(1, epochs // 3)))
        x, y, valid, keep, in_turn = _lanes(streams, rng.permutation(len(streams)))
        h = np.zeros((LANES, UNITS), np.float32)
        losses = []
        for c in range(0, x.shape[1], STEPS):
            part = slice(c, c + STEPS)
            loss, h, grads = model.gradients(
                x[:, part], y[:, part], valid[:, part], h, keep[:, part], in_turn[:, part]
            )
            model.optimizer.step(grads, lr, weight_decay=1e-5)
            losses.append(loss)
        print(f"GRU epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}", flush=True)
    return model
