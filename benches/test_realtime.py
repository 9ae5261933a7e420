"""A phone call with a speech-to-speech model: voicecore vs Pipecat's ``OpenAIRealtimeLLMService``.

What is timed, per call, for both sides (same input, same benchmark group):

* inbound ("realtime inbound 20ms"): one Twilio ``media`` message as Twilio sends it (base64 of
  160 μ-law bytes) → the ``input_audio_buffer.append`` text frame for the model.
  voicecore: msgspec decodes the message, the payload is decoded and sent on as μ-law
  (``audio/pcmu``: the session's format on a phone call) by ``append_audio``. Pipecat:
  ``TwilioFrameSerializer.deserialize`` (μ-law → PCM16 at the pipeline's 16 kHz), then what
  ``OpenAIRealtimeLLMService._send_user_audio`` does: its soxr stream resampler to 24 kHz (the
  only format it configures), base64, ``InputAudioBufferAppendEvent(...).model_dump()`` and
  ``_ws_send``'s ``json.dumps``.
* outbound ("realtime outbound 100ms delta"): one ``response.output_audio.delta`` text frame
  carrying 100 ms of the model's audio → Twilio ``media`` message(s). voicecore: ``parse_event``
  (msgspec + base64) and ``TwilioProtocol``'s μ-law passthrough (one payload, framed by
  ``MediaFramer``). Pipecat: ``events.parse_server_event`` (pydantic), base64 decoding of the
  24 kHz PCM, ``OutputAudioRawFrame`` and ``TwilioFrameSerializer.serialize`` (24 kHz → 8 kHz
  μ-law, base64, JSON).

The difference is mostly a design choice, which is the point: voicecore asks the model for
G.711 on a phone call, so neither direction is transcoded or resampled. Correctness gates run
first on the very objects timed: every frame must be valid JSON of the right type, and
voicecore's must carry exactly the input's bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from importlib import metadata
from typing import Any

import msgspec
import pytest

from voicecore.sansio import openai_realtime as rt
from voicecore.sansio.twilio import MediaFramer

from ._signals import STREAM_ITERATIONS, STREAM_ROUNDS, speech
from .test_twilio import (
    PIPECAT_MISSING,
    STREAM_SID,
    _InEvent,
    _pipecat_serializer,
    _run_sync,
    inbound_messages,
)

MODEL_RATE = 24000  # Pipecat's realtime service speaks PCM16 at 24 kHz only
DELTA_MS = 100


def audio_delta(audio: bytes) -> str:
    """A ``response.output_audio.delta`` event as the API sends it."""
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": "event_CD2mWSPykQvaAGG2nnTkf",
            "response_id": "resp_CD2mVqArDAtmwWjq0oL4x",
            "item_id": "item_CD2mVYdFYBAz6ilB48m0E",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(audio).decode("ascii"),
        },
        separators=(",", ":"),
    )


# --- voicecore -----------------------------------------------------------------------------------


def voicecore_inbound() -> Callable[[str], str | None]:
    """Twilio message → append event, μ-law kept (a closure, like the Pipecat side's)."""
    decode_json = msgspec.json.Decoder(_InEvent).decode

    def inbound(message: str) -> str | None:
        event = decode_json(message)
        if event.event != "media" or event.media is None:
            return None
        return rt.append_audio(binascii.a2b_base64(event.media.payload))

    return inbound


def voicecore_outbound() -> Callable[[str], list[str]]:
    """Audio delta → Twilio media message: the μ-law goes through as one payload."""
    framer = MediaFramer(STREAM_SID)

    def outbound(text: str) -> list[str]:
        event = rt.parse_event(text)
        assert isinstance(event, rt.AgentAudio)
        return framer([binascii.b2a_base64(event.audio, newline=False).decode("ascii")])

    return outbound


# --- pipecat ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pipecat() -> dict[str, Any]:
    """Pipecat's Twilio serializer, its realtime events and stream resampler; skips without pipecat-ai."""
    twilio = pytest.importorskip("pipecat.serializers.twilio", reason=PIPECAT_MISSING)
    events = pytest.importorskip("pipecat.services.openai.realtime.events", reason=PIPECAT_MISSING)
    from pipecat.audio.utils import create_stream_resampler
    from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame

    return {
        "serializer_cls": twilio.TwilioFrameSerializer,
        "InputAudioRawFrame": InputAudioRawFrame,
        "OutputAudioRawFrame": OutputAudioRawFrame,
        "events": events,
        "resampler": create_stream_resampler,
        "version": metadata.version("pipecat-ai"),
    }


def pipecat_inbound(pc: dict[str, Any]) -> Callable[[str], str | None]:
    serializer = _pipecat_serializer(pc, 16000, MODEL_RATE)
    resampler = pc["resampler"]()
    append = pc["events"].InputAudioBufferAppendEvent
    input_frame_cls = pc["InputAudioRawFrame"]

    def inbound(message: str) -> str | None:
        frame = _run_sync(serializer.deserialize(message))
        if not isinstance(frame, input_frame_cls):
            return None
        audio = _run_sync(resampler.resample(frame.audio, frame.sample_rate, MODEL_RATE))
        if not audio:
            return None
        payload = base64.b64encode(audio).decode("utf-8")
        return json.dumps(append(audio=payload).model_dump(exclude_none=True))

    return inbound


def pipecat_outbound(pc: dict[str, Any]) -> Callable[[str], list[str]]:
    serializer = _pipecat_serializer(pc, 16000, MODEL_RATE)
    parse = pc["events"].parse_server_event
    output_frame_cls = pc["OutputAudioRawFrame"]

    def outbound(text: str) -> list[str]:
        event = parse(text)
        frame = output_frame_cls(audio=base64.b64decode(event.delta), sample_rate=MODEL_RATE, num_channels=1)
        payload = _run_sync(serializer.serialize(frame))
        return [payload] if payload else []

    return outbound


# --- benchmarks -----------------------------------------------------------------------------------


def _bench_inbound(benchmark: Any, impl: str, inbound: Callable[[str], str | None]) -> None:
    _, messages = inbound_messages()
    appended = [frame for frame in map(inbound, messages) if frame is not None]
    sent = b"".join(base64.b64decode(json.loads(frame)["audio"]) for frame in appended)
    assert all(json.loads(frame)["type"] == "input_audio_buffer.append" for frame in appended)
    if impl == "voicecore":  # the caller's μ-law, byte for byte
        assert sent == b"".join(base64.b64decode(json.loads(m)["media"]["payload"]) for m in messages)
    else:  # PCM16 at 24 kHz: the second of speech, less what soxr's stream holds back
        assert 0.8 < len(sent) / 2 / MODEL_RATE <= 1.0
    benchmark.extra_info.update(impl=impl, case="realtime inbound 20ms")
    benchmark.pedantic(
        inbound, (messages[20],), iterations=STREAM_ITERATIONS, rounds=STREAM_ROUNDS, warmup_rounds=2
    )


def _bench_outbound(benchmark: Any, impl: str, outbound: Callable[[str], list[str]], delta: str) -> None:
    out = [message for _ in range(3) for message in outbound(delta)][-1:]  # soxr's stream fills first
    assert out
    for message in out:
        parsed = json.loads(message)
        assert parsed["event"] == "media"
        assert parsed["streamSid"] == STREAM_SID
    if impl == "voicecore":
        payload = b"".join(base64.b64decode(json.loads(m)["media"]["payload"]) for m in out)
        assert payload == base64.b64decode(json.loads(delta)["delta"])
    benchmark.extra_info.update(impl=impl, case=f"realtime outbound {DELTA_MS}ms delta")
    benchmark.pedantic(
        outbound, (delta,), iterations=STREAM_ITERATIONS, rounds=STREAM_ROUNDS, warmup_rounds=2
    )


def _model_audio(encoding: str) -> bytes:
    """100 ms of the model's speech, as the session asked for it."""
    if encoding == "mulaw":
        import audioop

        return audioop.lin2ulaw(speech(8000)[: 2 * 8 * DELTA_MS], 2)
    return speech(MODEL_RATE)[: 2 * MODEL_RATE * DELTA_MS // 1000]


@pytest.mark.benchmark(group="realtime inbound 20ms")
def test_realtime_inbound_voicecore(benchmark: Any) -> None:
    _bench_inbound(benchmark, "voicecore", voicecore_inbound())


@pytest.mark.benchmark(group="realtime inbound 20ms")
def test_realtime_inbound_pipecat(pipecat: dict[str, Any], benchmark: Any) -> None:
    benchmark.extra_info["pipecat_version"] = pipecat["version"]
    _bench_inbound(benchmark, "pipecat", pipecat_inbound(pipecat))


@pytest.mark.benchmark(group=f"realtime outbound {DELTA_MS}ms delta")
def test_realtime_outbound_voicecore(benchmark: Any) -> None:
    _bench_outbound(benchmark, "voicecore", voicecore_outbound(), audio_delta(_model_audio("mulaw")))


@pytest.mark.benchmark(group=f"realtime outbound {DELTA_MS}ms delta")
def test_realtime_outbound_pipecat(pipecat: dict[str, Any], benchmark: Any) -> None:
    benchmark.extra_info["pipecat_version"] = pipecat["version"]
    _bench_outbound(benchmark, "pipecat", pipecat_outbound(pipecat), audio_delta(_model_audio("pcm16")))
