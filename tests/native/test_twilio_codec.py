"""Twilio frame codec: payload ⇄ engine PCM in one call, equal to the composed primitives."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benches.audio_quality import tone
from voicecore.audio import Resampler, TwilioFrameDecoder, TwilioFrameEncoder, ulaw_decode, ulaw_encode
from voicecore.errors import AudioFormatError, ConfigError


def media_payloads(codes: bytes) -> list[str]:
    return [base64.b64encode(codes[i : i + 160]).decode() for i in range(0, len(codes), 160)]


@pytest.mark.parametrize("quality", ["hq", "fast"])
@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_inbound_equals_ulaw_decode_then_resample(rate: int, quality: str) -> None:
    codes = bytes(np.random.default_rng(1).integers(0, 256, 1600, dtype=np.uint8))
    decoder = TwilioFrameDecoder(rate, quality=quality)
    got = b"".join(decoder.decode(p) for p in media_payloads(codes))
    assert got == Resampler(8000, rate, quality=quality).process(ulaw_decode(codes))
    assert len(got) == 1600 * rate // 8000 * 2


def test_inbound_accepts_str_and_bytes_payloads_from_a_real_message() -> None:
    message = json.dumps(
        {
            "event": "media",
            "sequenceNumber": "4",
            "streamSid": "MZ123",
            "media": {
                "track": "inbound",
                "chunk": "2",
                "timestamp": "5",
                "payload": media_payloads(b"\xff" * 160)[0],
            },
        }
    )
    payload = json.loads(message)["media"]["payload"]
    assert TwilioFrameDecoder().decode(payload) == bytes(640)
    assert TwilioFrameDecoder().decode(payload.encode()) == bytes(640)


def test_bad_payload_is_rejected_and_the_stream_goes_on() -> None:
    decoder = TwilioFrameDecoder(16000)
    reference = TwilioFrameDecoder(16000)
    good = media_payloads(ulaw_encode(tone(8000, 440, 0.02).tobytes()))[0]
    with pytest.raises(AudioFormatError, match="base64"):
        decoder.decode("@@@not-base64@@@")
    assert decoder.decode(good) == reference.decode(good)


@pytest.mark.parametrize("quality", ["hq", "fast"])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_outbound_payloads_are_20_ms_and_equal_the_composed_path(rate: int, quality: str) -> None:
    pcm = tone(rate, 440, 0.5).tobytes()
    encoder = TwilioFrameEncoder(rate, quality=quality)
    payloads: list[str] = []
    for i in range(0, len(pcm), 2 * (rate // 100)):  # 10 ms chunks
        payloads += encoder.encode(pcm[i : i + 2 * (rate // 100)])
    frames = [base64.b64decode(p) for p in payloads]
    assert all(len(f) == 160 for f in frames)
    payloads += encoder.flush()
    resampler = Resampler(rate, 8000, quality=quality)
    expected = ulaw_encode(resampler.process(pcm) + resampler.flush())
    assert b"".join(base64.b64decode(p) for p in payloads) == expected


def test_an_envelope_wraps_every_payload_until_it_is_emptied() -> None:
    pcm = tone(16000, 440, 0.05).tobytes()  # two whole frames and a flushed rest
    bare = TwilioFrameEncoder(16000)
    payloads = bare.encode(pcm) + bare.flush()
    wrapped = TwilioFrameEncoder(16000)
    wrapped.set_envelope('{"event":"media","media":{"payload":"', '"}}')
    messages = wrapped.encode(pcm) + wrapped.flush()
    assert len(messages) == 3
    assert tuple(json.loads(m)["media"]["payload"] for m in messages) == payloads
    wrapped.set_envelope("", "")
    assert wrapped.encode(pcm) == payloads[:2]


def test_partial_frame_waits_and_clear_drops_it() -> None:
    encoder = TwilioFrameEncoder(16000)
    assert encoder.encode(bytes(200)) == ()  # a tuple, empty
    assert encoder.pending_ms > 0
    encoder.clear()
    assert encoder.pending_ms == 0
    assert encoder.flush() == ()


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=8000).map(lambda b: b[: len(b) // 2 * 2]),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
)
def test_outbound_chunking_never_changes_the_payload_stream(data: bytes, cuts: list[int]) -> None:
    whole = TwilioFrameEncoder(24000)
    expected = "".join(whole.encode(data) + whole.flush())
    chunked = TwilioFrameEncoder(24000)
    got: list[str] = []
    position = 0
    for cut in sorted(c * 2 for c in cuts):
        got += chunked.encode(data[position : max(cut, position)])
        position = max(cut, position)
    got += chunked.encode(data[position:]) + chunked.flush()
    assert "".join(got) == expected


def test_errors_name_the_problem() -> None:
    with pytest.raises(AudioFormatError, match="11025"):
        TwilioFrameEncoder(11025)
    with pytest.raises(ConfigError, match="ultra"):
        TwilioFrameDecoder(quality="ultra")
    with pytest.raises(AudioFormatError, match="3 bytes"):
        TwilioFrameEncoder().encode(b"abc")
    with pytest.raises(TypeError):
        TwilioFrameDecoder().decode(12345)  # type: ignore[arg-type]
