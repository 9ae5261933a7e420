"""Twilio Media Streams frame paths: voicecore vs Pipecat's ``TwilioFrameSerializer``.

What is timed, per call, for both sides (same input, same benchmark group):

* inbound ("twilio inbound 8k->16k"): one Twilio ``media`` text message, exactly as
  Twilio sends it (JSON with ``streamSid``, ``sequenceNumber`` and a ``media`` object
  whose ``payload`` is base64 of 160 μ-law bytes = 20 ms at 8 kHz) → PCM16 at 16 kHz.
* outbound ("twilio outbound 16k 20ms", "... 24k 20ms", "... 44.1k 20ms", "... 48k 20ms"):
  20 ms of PCM16 at the pipeline's output rate (16 kHz; 24, 44.1 and 48 kHz, TTS rates the
  engine may run at) → the JSON ``media`` message string(s) to send back:
  ``{"event":"media","streamSid":...,"media":{"payload":...}}``.

voicecore side: ``msgspec.json`` for the JSON framing (a typed struct decoder inbound; outbound,
``MediaFramer``, as ``TwilioProtocol`` uses it: msgspec encodes the message around the payload
once per stream and the encoder splices each base64 payload into that text), and the Rust
codec (``voicecore.audio.TwilioFrameDecoder`` / ``TwilioFrameEncoder``: base64 + G.711 +
streaming resampling in one call, state kept across calls). The encoder emits complete
20 ms messages only and keeps the remainder, so one call returns a list of messages.

Pipecat side (pipecat-ai, version recorded in ``extra_info``), driven the way its own
WebSocket transports (``pipecat.transports.websocket.fastapi``) drive it:

* construction: ``TwilioFrameSerializer(stream_sid, call_sid, account_sid, auth_token)``
  with default ``InputParams`` (``auto_hang_up=True``, which *requires* the call SID,
  account SID and a credential; dummies here, as hang-up only runs on End/CancelFrame;
  ``twilio_sample_rate=8000``; the stream resamplers are soxr ``ResampleStream`` at
  Pipecat's default "VHQ" quality, cleared after 0.2 s of inactivity, which never happens
  in a paced call or in this loop).
* setup: the transport's ``setup()`` awaits ``serializer.setup(FrameProcessorSetup)`` with
  the pipeline's ``audio_in_sample_rate`` (16 kHz here), which becomes the rate of
  inbound frames; that is all ``TwilioFrameSerializer.setup`` reads. (Pipecat 0.0.x took
  the ``StartFrame`` instead; ``_pipecat_setup_arg`` handles both.)
* inbound: the input transport's receive loop does ``frame = await
  serializer.deserialize(message)`` for each text message and pushes the resulting
  ``InputAudioRawFrame`` (its ``.audio`` is the PCM we compare).
* outbound: the output transport's ``write_audio_frame`` wraps each chunk in a new
  ``OutputAudioRawFrame(audio, sample_rate=<output rate>, num_channels=1)`` and does
  ``payload = await serializer.serialize(frame)``; both steps are timed here. (Pipecat's
  output transport hands it 40 ms chunks by default, ``audio_out_10ms_chunks=4``; we use
  20 ms, Twilio's own frame size, for both sides.)

No event loop is involved: none of these coroutines ever suspends (no I/O on the media
path; the resampler's ``async def resample`` is synchronous inside), so each call is
driven to completion with ``coro.send(None)``, which is what ``await`` does inside
Pipecat's already-running task: create the coroutine, run it, take ``StopIteration.value``.
``_run_sync`` verifies this on every single call: if a coroutine ever suspended, it
raises instead of reporting a time.

Each timed round is 25 consecutive calls (``STREAM_ITERATIONS``, 500 ms of audio): Pipecat's
soxr stream returns audio only every 4-7 frames, so single-call rounds would make the
median show the cheap calls that merely buffer. Event-loop scheduling would add cost Pipecat does not
pay per frame in production, so it is deliberately left out.

Correctness gates (before timing, on the very objects that are timed): 1 s of speech
through each path must match a one-shot VHQ soxr resampling of the same audio
(inbound >= 40 dB SNR; outbound, after base64 + μ-law decoding, >= 25 dB, the μ-law
quantisation floor for speech at this level being ~35 dB), every message must be valid
JSON of the right shape, and voicecore payloads must be exactly 160 μ-law bytes.
"""

from __future__ import annotations

import audioop
import base64
import inspect
import json
from collections.abc import Callable, Coroutine, Sequence
from importlib import metadata
from typing import Any

import msgspec
import pytest

from voicecore import audio
from voicecore.sansio.twilio import MediaFramer

from ._signals import STREAM_ITERATIONS, STREAM_ROUNDS, assert_resampled_well, burstiness, frames, speech

STREAM_SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
TWILIO_RATE = 8000
INBOUND_RATE = 16000
OUTBOUND_RATES = (16000, 24000, 44100, 48000)
PAYLOAD_BYTES = 160  # 20 ms of μ-law at 8 kHz
PIPECAT_MISSING = "pipecat-ai is not installed (pip install -r benches/requirements.txt)"


# --- inputs ------------------------------------------------------------------------------------


def twilio_media_message(ulaw: bytes, seq: int) -> str:
    """A Twilio Media Streams inbound ``media`` message, as Twilio sends it."""
    return json.dumps(
        {
            "event": "media",
            "streamSid": STREAM_SID,
            "sequenceNumber": str(seq + 2),
            "media": {
                "track": "inbound",
                "chunk": str(seq + 1),
                "timestamp": str(20 * seq + 5),
                "payload": base64.b64encode(ulaw).decode("ascii"),
            },
        },
        separators=(",", ":"),
    )


def inbound_messages() -> tuple[bytes, list[str]]:
    """1 s of 8 kHz μ-law speech (as linear PCM, for the reference) and its 50 messages."""
    ulaw = [audioop.lin2ulaw(f, 2) for f in frames(speech(TWILIO_RATE), TWILIO_RATE)]
    pcm = audioop.ulaw2lin(b"".join(ulaw), 2)
    return pcm, [twilio_media_message(u, i) for i, u in enumerate(ulaw)]


def check_outbound(messages: list[str], src: bytes, rate: int, *, exact_frames: bool) -> None:
    """Asserts that ``messages`` are well-formed media messages carrying ``src`` at 8 kHz."""
    ulaw = bytearray()
    for message in messages:
        parsed = json.loads(message)
        assert parsed["event"] == "media"
        assert parsed["streamSid"] == STREAM_SID
        payload = base64.b64decode(parsed["media"]["payload"], validate=True)
        if exact_frames:
            assert len(payload) == PAYLOAD_BYTES
        ulaw += payload
    got = audioop.ulaw2lin(bytes(ulaw), 2)
    assert_resampled_well(got, src, rate, TWILIO_RATE, min_snr_db=25.0, max_held=TWILIO_RATE // 4)


# --- voicecore: msgspec framing + the Rust codec -----------------------------------------------


# gc=False: strings only, so never part of a cycle; saves the garbage collector's bookkeeping.
class _InMedia(msgspec.Struct, gc=False):
    payload: str


class _InEvent(msgspec.Struct, gc=False):
    event: str
    media: _InMedia | None = None


def voicecore_inbound(rate: int, quality: str = "hq") -> Callable[[str], bytes | None]:
    """Twilio message → PCM16 at ``rate``: msgspec JSON decoding + ``TwilioFrameDecoder``.

    A closure, like the Pipecat side's, so both pay the same Python call overhead.
    """
    decode_audio = audio.TwilioFrameDecoder(rate=rate, quality=quality).decode
    decode_json = msgspec.json.Decoder(_InEvent).decode

    def inbound(message: str) -> bytes | None:
        event = decode_json(message)
        if event.event != "media" or event.media is None:
            return None
        return decode_audio(event.media.payload)

    return inbound


def voicecore_outbound(rate: int, stream_sid: str, quality: str = "hq") -> Callable[[bytes], Sequence[str]]:
    """PCM16 at ``rate`` → Twilio media messages: ``TwilioFrameEncoder`` in ``MediaFramer``'s envelope.

    This is how ``TwilioProtocol`` sends: msgspec encodes the message around the payload once
    per stream (``MediaFramer``), and the encoder writes each payload into a copy of it.
    """
    encoder = audio.TwilioFrameEncoder(rate=rate, quality=quality)
    framer = MediaFramer(stream_sid)
    encoder.set_envelope(framer.head, framer.tail)
    return encoder.encode


# --- pipecat ----------------------------------------------------------------------------------


def _run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs a coroutine that never suspends to completion, as ``await`` would; fails if it suspends."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the coroutine suspended: it needs an event loop, so coro.send(None) is not valid")


def _pipecat_setup_arg(serializer_cls: type, in_rate: int, out_rate: int) -> Any:
    """What Pipecat's transport passes to ``serializer.setup`` (pipeline audio rates)."""
    (_self, param) = list(inspect.signature(serializer_cls.setup).parameters.values())
    if "StartFrame" in str(param.annotation):  # pipecat 0.0.x
        from pipecat.frames.frames import StartFrame

        return StartFrame(audio_in_sample_rate=in_rate, audio_out_sample_rate=out_rate)
    import asyncio

    from pipecat.clocks.system_clock import SystemClock
    from pipecat.processors.frame_processor import FrameProcessorSetup
    from pipecat.utils.asyncio.task_manager import TaskManager

    loop = asyncio.new_event_loop()  # TaskManager wants one; the serializer never touches it
    try:
        return FrameProcessorSetup(
            clock=SystemClock(),
            task_manager=TaskManager(loop=loop),
            pipeline_worker=None,  # type: ignore[arg-type]  # only read by processors that need it
            audio_in_sample_rate=in_rate,
            audio_out_sample_rate=out_rate,
        )
    finally:
        loop.close()


@pytest.fixture(scope="session")
def pipecat() -> dict[str, Any]:
    """Pipecat's Twilio serializer and frame classes; skips when pipecat-ai is not installed."""
    twilio = pytest.importorskip("pipecat.serializers.twilio", reason=PIPECAT_MISSING)
    from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame

    return {
        "serializer_cls": twilio.TwilioFrameSerializer,
        "InputAudioRawFrame": InputAudioRawFrame,
        "OutputAudioRawFrame": OutputAudioRawFrame,
        "version": metadata.version("pipecat-ai"),
    }


def _pipecat_serializer(pc: dict[str, Any], in_rate: int, out_rate: int) -> Any:
    serializer = pc["serializer_cls"](
        STREAM_SID,
        call_sid="CA00000000000000000000000000000000",
        account_sid="AC00000000000000000000000000000000",
        auth_token="not-used-no-end-frame-is-sent",
    )
    _run_sync(serializer.setup(_pipecat_setup_arg(pc["serializer_cls"], in_rate, out_rate)))
    return serializer


def pipecat_inbound(pc: dict[str, Any], rate: int) -> Callable[[str], bytes | None]:
    serializer = _pipecat_serializer(pc, rate, 24000)
    input_frame_cls = pc["InputAudioRawFrame"]

    def inbound(message: str) -> bytes | None:
        frame = _run_sync(serializer.deserialize(message))
        if not isinstance(frame, input_frame_cls):
            return None
        assert frame.sample_rate == rate
        return bytes(frame.audio)

    return inbound


def pipecat_outbound(pc: dict[str, Any], rate: int) -> Callable[[bytes], list[str]]:
    serializer = _pipecat_serializer(pc, INBOUND_RATE, rate)
    output_frame_cls = pc["OutputAudioRawFrame"]

    def outbound(pcm: bytes) -> list[str]:
        frame = output_frame_cls(audio=pcm, sample_rate=rate, num_channels=1)
        payload = _run_sync(serializer.serialize(frame))
        return [payload] if payload else []

    return outbound


# --- benchmarks -------------------------------------------------------------------------------

# Each group pairs Pipecat with one voicecore resampler profile: "hq" (the default, >= 90 dB
# rejection) and "fast" (~70 dB, still ~30 dB below the μ-law quantisation noise it feeds).
QUALITIES = ("hq", "fast")


def outbound_case(rate: int) -> str:
    """The case name of the outbound path from ``rate`` (``twilio outbound 44.1k 20ms``)."""
    return f"twilio outbound {rate / 1000:g}k 20ms"


def group_name(case: str, quality: str) -> str:
    """The benchmark group of ``case`` at voicecore's ``quality`` (Pipecat is timed beside each)."""
    return case if quality == "hq" else f"{case}, voicecore fast"


def _inbound_params() -> list[Any]:
    case = "twilio inbound 8k->16k"
    return [pytest.param(q, id=q, marks=pytest.mark.benchmark(group=group_name(case, q))) for q in QUALITIES]


def _bench_inbound(benchmark: Any, impl: str, inbound: Callable[[str], bytes | None]) -> None:
    ref_pcm, messages = inbound_messages()
    decoded = [inbound(m) or b"" for m in messages]
    assert_resampled_well(
        b"".join(decoded), ref_pcm, TWILIO_RATE, INBOUND_RATE, min_snr_db=30.0, max_held=INBOUND_RATE // 4
    )
    benchmark.extra_info.update(impl=impl, case="twilio inbound 8k->16k", **burstiness(decoded, INBOUND_RATE))
    out = benchmark.pedantic(
        inbound, (messages[20],), iterations=STREAM_ITERATIONS, rounds=STREAM_ROUNDS, warmup_rounds=2
    )
    # None: no audio came out of this message (Pipecat then emits no frame).
    assert out is None or len(out) % 2 == 0


@pytest.mark.parametrize("quality", _inbound_params())
def test_twilio_inbound_voicecore(benchmark: Any, quality: str) -> None:
    benchmark.extra_info["quality"] = quality
    _bench_inbound(benchmark, "voicecore", voicecore_inbound(INBOUND_RATE, quality))


@pytest.mark.parametrize("quality", _inbound_params())
def test_twilio_inbound_pipecat(pipecat: dict[str, Any], benchmark: Any, quality: str) -> None:
    del quality  # Pipecat has one profile; it is timed again beside each voicecore profile.
    benchmark.extra_info["pipecat_version"] = pipecat["version"]
    _bench_inbound(benchmark, "pipecat", pipecat_inbound(pipecat, INBOUND_RATE))


def _outbound_params() -> list[Any]:
    return [
        pytest.param(
            rate,
            quality,
            id=f"{rate / 1000:g}k-{quality}",
            marks=pytest.mark.benchmark(group=group_name(outbound_case(rate), quality)),
        )
        for rate in OUTBOUND_RATES
        for quality in QUALITIES
    ]


def _bench_outbound(benchmark: Any, impl: str, rate: int, outbound: Callable[[bytes], Sequence[str]]) -> None:
    src = speech(rate)
    per_call = [outbound(f) for f in frames(src, rate)]
    check_outbound([m for ms in per_call for m in ms], src, rate, exact_frames=impl == "voicecore")
    benchmark.extra_info.update(
        impl=impl,
        case=outbound_case(rate),
        empty_calls=round(sum(1 for ms in per_call if not ms) / len(per_call), 3),
    )
    chunk = frames(src, rate)[20]
    out = benchmark.pedantic(
        outbound, (chunk,), iterations=STREAM_ITERATIONS, rounds=STREAM_ROUNDS, warmup_rounds=2
    )
    assert isinstance(out, (list, tuple))  # Pipecat's messages come in a list, voicecore's in a tuple
    assert all(isinstance(m, str) for m in out)


@pytest.mark.parametrize(("rate", "quality"), _outbound_params())
def test_twilio_outbound_voicecore(benchmark: Any, rate: int, quality: str) -> None:
    benchmark.extra_info["quality"] = quality
    _bench_outbound(benchmark, "voicecore", rate, voicecore_outbound(rate, STREAM_SID, quality))


@pytest.mark.parametrize(("rate", "quality"), _outbound_params())
def test_twilio_outbound_pipecat(pipecat: dict[str, Any], benchmark: Any, rate: int, quality: str) -> None:
    del quality  # Pipecat has one profile; it is timed again beside each voicecore profile.
    benchmark.extra_info["pipecat_version"] = pipecat["version"]
    _bench_outbound(benchmark, "pipecat", rate, pipecat_outbound(pipecat, rate))
