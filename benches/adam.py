"""Adam over a dict of float32 arrays, shared by the VAD models' numpy trainers."""

from __future__ import annotations

import numpy as np


class Adam:
    """Adam (β 0.9 / 0.999) with the weight decay added to each gradient; updates in place."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.params = params
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray], lr: float, weight_decay: float) -> None:
        p = self.params
        self.t += 1
        for k, grad in grads.items():
            grad = grad + weight_decay * p[k]
            self.m[k] = 0.9 * self.m[k] + 0.1 * grad
            self.v[k] = 0.999 * self.v[k] + 0.001 * grad * grad
            m_hat = self.m[k] / (1 - 0.9**self.t)
            v_hat = self.v[k] / (1 - 0.999**self.t)
            p[k] -= (lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)
