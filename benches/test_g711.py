"""G.711 μ-law / A-law encode and decode: voicecore vs CPython's ``audioop``.

Each case is measured for both implementations in the same run and the same
benchmark group ("g711 <op> <size>"), on the same 8 kHz speech-like input: one 20 ms
frame (160 samples, what a telephony leg handles per packet) and one 1 s buffer.
Both are called the same way (``fn(data)`` / ``fn(data, 2)``) from the benchmark loop, the
same number of times per timed round, and every result is compared with audioop's before its
time is reported.
"""

from __future__ import annotations

import audioop
from collections.abc import Callable
from typing import Any

import pytest

from voicecore import audio

from ._signals import frames, speech

RATE = 8000
OPS = ("ulaw_encode", "ulaw_decode", "alaw_encode", "alaw_decode")
ORACLE: dict[str, Callable[[bytes, int], bytes]] = {
    "ulaw_encode": audioop.lin2ulaw,
    "ulaw_decode": audioop.ulaw2lin,
    "alaw_encode": audioop.lin2alaw,
    "alaw_decode": audioop.alaw2lin,
}
SIZES = {"20ms": lambda: frames(speech(RATE), RATE)[20], "1s": lambda: speech(RATE)}
# Calls per timed round, the same for both sides: pytest-benchmark's own calibration may pick
# 1 call for one side and 100 for the other, and a lone ~100 ns call is mostly timer overhead.
ITERATIONS = {"20ms": 200, "1s": 10}
ROUNDS = 300


def _input(op: str, size: str) -> bytes:
    pcm = SIZES[size]()
    if op.endswith("decode"):
        return (audioop.lin2ulaw if op.startswith("ulaw") else audioop.lin2alaw)(pcm, 2)
    return pcm


def _cases() -> list[Any]:
    return [
        pytest.param(
            op, size, impl, id=f"{op}-{size}-{impl}", marks=pytest.mark.benchmark(group=f"g711 {op} {size}")
        )
        for op in OPS
        for size in SIZES
        for impl in ("voicecore", "audioop")
    ]


@pytest.mark.parametrize(("op", "size", "impl"), _cases())
def test_g711(benchmark: Any, op: str, size: str, impl: str) -> None:
    data = _input(op, size)
    expected = ORACLE[op](data, 2)
    benchmark.extra_info.update(impl=impl, case=f"{op} {size}", bytes_in=len(data))
    # Both are called straight from the benchmark loop with positional arguments.
    func, args = (getattr(audio, op), (data,)) if impl == "voicecore" else (ORACLE[op], (data, 2))
    result = benchmark.pedantic(func, args, iterations=ITERATIONS[size], rounds=ROUNDS, warmup_rounds=3)
    assert result == expected
