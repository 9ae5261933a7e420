"""The SIMD level the kernels use, and ``VOICECORE_SIMD``, which lowers it.

Each level runs in a subprocess (the setting is read once per process): G.711 and the
Twilio codec's base64 stay exact at every level, and the resampler's samples differ from
the highest level's by at most one unit of rounding, with the same length and delay.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from voicecore import audio

LEVELS = ("portable", "avx2", "avx512")

# Runs in the subprocess: what the kernels produce at the level the environment asks for.
PROBE = r"""
import json, sys
import numpy as np
from voicecore import audio

every_int16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
every_code = bytes(range(256))
result = {
    "level": audio.simd_level(),
    "detected": audio.simd_detected(),
    "g711": {
        "ulaw_encode": audio.ulaw_encode(every_int16).hex(),
        "alaw_encode": audio.alaw_encode(every_int16).hex(),
        "ulaw_decode": audio.ulaw_decode(every_code).hex(),
        "alaw_decode": audio.alaw_decode(every_code).hex(),
    },
    "pairs": {},
}
rng = np.random.default_rng(7)
for fi, fo in [(8000, 16000), (16000, 8000), (24000, 8000), (44100, 8000), (48000, 8000), (22050, 24000)]:
    t = np.arange(fi) / fi
    x = (12000 * np.sin(2 * np.pi * 440 * t) + 8000 * np.sin(2 * np.pi * 3100 * t)
         + rng.normal(0, 900, fi)).astype("<i2")
    r = audio.Resampler(fi, fo)
    step = fi // 50
    y = b"".join(r.process(x[i:i + step].tobytes()) for i in range(0, fi, step)) + r.flush()
    result["pairs"][f"{fi}->{fo}"] = {"delay": r.delay, "out": y.hex()}
encoder = audio.TwilioFrameEncoder(rate=8000)
speech = (rng.normal(0, 4000, 8000)).astype("<i2").tobytes()
result["payloads"] = encoder.encode(speech)
decoder = audio.TwilioFrameDecoder(rate=8000)
result["decoded"] = b"".join(decoder.decode(p) for p in result["payloads"]).hex()
result["speech"] = speech.hex()
json.dump(result, sys.stdout)
"""


def _python(args: list[str], setting: str | None) -> subprocess.CompletedProcess[str]:
    """Runs this interpreter with ``args``, ``VOICECORE_SIMD`` set to ``setting`` (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "VOICECORE_SIMD"}
    if setting is not None:
        env["VOICECORE_SIMD"] = setting
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


@functools.cache
def _probe(setting: str | None) -> dict[str, Any]:
    """What ``PROBE`` reports in a fresh process at ``setting`` (one process per setting)."""
    report: dict[str, Any] = json.loads(_python(["-W", "error::RuntimeWarning", "-c", PROBE], setting).stdout)
    return report


@pytest.fixture(scope="module")
def native() -> dict[str, Any]:
    return _probe(None)


def test_the_kernels_use_at_most_what_the_cpu_supports() -> None:
    assert audio.simd_level() in LEVELS
    assert audio.simd_detected() in LEVELS
    assert LEVELS.index(audio.simd_level()) <= LEVELS.index(audio.simd_detected())


@pytest.mark.parametrize("setting", [*LEVELS, "native", "AVX2"])
def test_a_setting_lowers_the_level_and_never_raises_it(setting: str, native: dict[str, Any]) -> None:
    probed = _probe(setting)
    detected = native["detected"]
    assert probed["detected"] == detected
    if setting == "native":
        assert probed["level"] == detected
    else:
        asked = LEVELS.index(setting.lower())
        assert probed["level"] == LEVELS[min(asked, LEVELS.index(detected))]


@pytest.mark.parametrize("setting", ["portable", "avx2"])
def test_g711_and_base64_stay_exact_at_every_level(setting: str, audioop: ModuleType) -> None:
    probed = _probe(setting)
    every_int16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
    every_code = bytes(range(256))
    g711 = {name: bytes.fromhex(value) for name, value in probed["g711"].items()}
    assert g711["ulaw_encode"] == audioop.lin2ulaw(every_int16, 2)
    assert g711["alaw_encode"] == audioop.lin2alaw(every_int16, 2)
    assert g711["ulaw_decode"] == audioop.ulaw2lin(every_code, 2)
    assert g711["alaw_decode"] == audioop.alaw2lin(every_code, 2)
    speech = bytes.fromhex(probed["speech"])
    codes = audioop.lin2ulaw(speech, 2)
    assert probed["payloads"] == [
        base64.b64encode(codes[i : i + 160]).decode() for i in range(0, len(codes), 160)
    ]
    assert bytes.fromhex(probed["decoded"]) == audioop.ulaw2lin(codes, 2)


@pytest.mark.parametrize("setting", ["portable", "avx2"])
def test_resampled_samples_differ_by_rounding_at_most(setting: str, native: dict[str, Any]) -> None:
    probed = _probe(setting)
    for pair, expected in native["pairs"].items():
        got = probed["pairs"][pair]
        assert got["delay"] == expected["delay"], pair
        ours = np.frombuffer(bytes.fromhex(got["out"]), "<i2").astype(np.int32)
        reference = np.frombuffer(bytes.fromhex(expected["out"]), "<i2").astype(np.int32)
        assert len(ours) == len(reference), pair
        differ = ours != reference
        assert np.abs(ours - reference).max(initial=0) <= 1, pair
        assert differ.mean() < 0.01, f"{pair}: {differ.sum()} of {len(ours)} samples differ"


def test_an_unknown_setting_warns_at_import_and_keeps_the_cpus_level(native: dict[str, Any]) -> None:
    done = _python(["-c", "from voicecore import audio; print(audio.simd_level())"], "sse4")
    assert done.stdout.strip() == native["detected"]
    assert "RuntimeWarning" in done.stderr
    assert 'VOICECORE_SIMD="sse4" is not a SIMD level' in done.stderr
    for name in ("portable", "avx2", "avx512", "native"):
        assert name in done.stderr
