"""The GRU trainer's gradients against finite differences, and its state handling."""

from __future__ import annotations

import numpy as np
import pytest

from benches import vad_gru


def _model_and_batch(seed: int = 0) -> tuple[vad_gru.Gru, tuple[np.ndarray, ...]]:
    rng = np.random.default_rng(seed)
    model = vad_gru.Gru(5, rng)
    for k, v in model.params.items():
        model.params[k] = (v + rng.normal(0, 0.3, v.shape)).astype(np.float64)
    lanes, steps = 2, vad_gru.WINDOW + 5
    x = rng.normal(size=(lanes, steps, 5))
    y = (rng.random((lanes, steps)) < 0.5).astype(np.float64)
    valid = np.ones((lanes, steps))
    valid[1, -3:] = 0  # padding
    keep = np.ones((lanes, steps))
    keep[0, 7] = 0  # a new mix starts at frame 7 of lane 0
    in_turn = np.ones((lanes, steps), bool)  # every window counts
    h0 = rng.normal(0, 0.3, (lanes, vad_gru.UNITS))
    return model, (x, y, valid, h0, keep, in_turn)


def test_gradients_match_finite_differences() -> None:
    model, batch = _model_and_batch()
    _, _, grads = model.gradients(*batch)
    rng = np.random.default_rng(1)
    for name, param in model.params.items():
        for _ in range(3):
            idx = tuple(int(rng.integers(0, n)) for n in param.shape)
            saved = param[idx]
            param[idx] = saved + 1e-6
            up = model.gradients(*batch)[0]
            param[idx] = saved - 1e-6
            down = model.gradients(*batch)[0]
            param[idx] = saved
            assert grads[name][idx] == pytest.approx((up - down) / 2e-6, rel=2e-3, abs=1e-6), name


def test_a_reset_frame_forgets_the_state_and_padding_adds_no_loss() -> None:
    model, (x, y, valid, h0, keep, in_turn) = _model_and_batch()
    logits, _, _ = model.forward(x, h0, keep)
    # Lane 0 resets before frame 7: from there on the initial state no longer matters.
    other, _, _ = model.forward(x, h0 * 5, keep)
    assert np.allclose(logits[0, 7:], other[0, 7:])
    assert not np.allclose(logits[1, :7], other[1, :7])
    y2 = y.copy()
    y2[1, -3:] = 1 - y2[1, -3:]  # labels under padding
    assert (
        model.gradients(x, y2, valid, h0, keep, in_turn)[0]
        == model.gradients(x, y, valid, h0, keep, in_turn)[0]
    )
