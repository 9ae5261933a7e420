"""The browser protocol without sockets: frames in, events and frames out."""

from __future__ import annotations

import json

import pytest

from voicecore import events as ev
from voicecore.errors import ProtocolError
from voicecore.sansio import wire
from voicecore.sansio.call_events import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed


def started(rate: int = 16000) -> wire.WireProtocol:
    protocol = wire.WireProtocol()
    protocol.receive_text(json.dumps({"type": "start", "sample_rate": rate}))
    assert protocol.events_received() == [wire.Started(rate)]
    return protocol


def sent(protocol: wire.WireProtocol) -> list[object]:
    return [d if isinstance(d, bytes) else json.loads(d) for d in protocol.data_to_send()]


def test_audio_at_16k_passes_through_and_other_rates_are_resampled_to_16k() -> None:
    protocol = started()
    protocol.receive_bytes(b"\x01\x00" * 320)
    assert protocol.events_received() == [CallerAudio(b"\x01\x00" * 320)]
    protocol = started(48000)
    total = 0
    for _ in range(50):  # one second
        protocol.receive_bytes(bytes(960 * 2))
        total += sum(len(e.audio) for e in protocol.events_received() if isinstance(e, CallerAudio))
    assert abs(total - 32000) <= 64  # a second at 16 kHz, less the filter delay


def test_marks_are_reported_when_acknowledged_in_order_and_a_clear_swallows_late_acks() -> None:
    protocol = started()
    protocol.send_audio(b"\0\0" * 10)
    protocol.send_mark("a")
    protocol.send_mark("b")
    protocol.send_mark("c")
    assert sent(protocol) == [b"\0\0" * 10, {"type": "mark", "name": "a"}, {"type": "mark", "name": "b"},
                              {"type": "mark", "name": "c"}]  # fmt: skip
    protocol.receive_text('{"type": "played", "mark": "a"}')
    assert protocol.events_received() == [MarkPlayed("a")]
    protocol.receive_text('{"type": "played", "mark": "c"}')  # out of order
    protocol.receive_text('{"type": "played", "mark": "a"}')  # repeated
    assert protocol.events_received() == []
    assert protocol.problems["unknown-mark"] == 2
    protocol.send_clear()
    assert sent(protocol) == [{"type": "clear"}]
    protocol.receive_text('{"type": "played", "mark": "b"}')  # crossed the clear on the wire
    assert protocol.events_received() == []
    assert protocol.cleared_marks == 1
    assert protocol.outstanding_marks == ()


def test_session_events_become_transcripts_and_turn_latency() -> None:
    protocol = started()
    protocol.send_event(ev.CallerSaid(call_id="x", at=0.0, text="hello", final=False))
    protocol.send_event(ev.AgentSaid(call_id="x", at=0.0, turn=2, text="Hi.", complete=False))
    protocol.send_event(ev.TurnTimings(call_id="x", at=0.0, turn=2, stt_final=0.1234, first_audio_played=0.5))
    protocol.send_event(ev.BargedIn(call_id="x", at=0.0, turn=2, dropped_ms=10.0))  # not shown
    protocol.send_end("transfer", "put through")
    caller, agent, turn, end = sent(protocol)
    assert caller == {"type": "transcript", "role": "caller", "text": "hello", "final": False}
    assert agent == {
        "type": "transcript",
        "role": "agent",
        "text": "Hi.",
        "final": True,
        "turn": 2,
        "complete": False,
    }
    assert turn == {
        "type": "turn",
        "turn": 2,
        "ms": {
            "stt_final": 123.4,
            "llm_first_token": None,
            "first_sentence": None,
            "tts_first_byte": None,
            "first_audio_sent": None,
            "first_audio_played": 500.0,
        },
    }
    assert end == {"type": "end", "reason": "transfer", "message": "put through"}


def test_dtmf_and_stop() -> None:
    protocol = started()
    protocol.receive_text('{"type": "dtmf", "digit": "5"}')
    protocol.receive_text('{"type": "dtmf", "digit": "55"}')
    protocol.receive_text('{"type": "stop"}')
    protocol.receive_text('{"type": "dtmf", "digit": "1"}')
    assert protocol.events_received() == [DtmfPressed("5"), CallerHungUp()]
    assert protocol.problems == {"invalid": 1, "after-stop": 1}


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ("not json", "invalid-json"),
        ("[1, 2]", "invalid-json"),
        ('{"type": "dance"}', "unknown-type"),
        ('{"type": "played"}', "invalid"),
        ('{"type": "start", "sample_rate": "fast"}', "invalid"),
        ('{"type": "start", "parameters": ["a"]}', "invalid"),
        ('{"type": "start", "sample_rate": 16000}', "repeated-start"),
        ('{"type": "played", "mark": "nope"}', "unknown-mark"),
        (b"\x01\x02\x03", "odd-audio"),
        ("x" * 5000, "oversized"),
    ],
)
def test_bad_input_is_counted_and_skipped(frame: str | bytes, kind: str) -> None:
    protocol = started()
    if isinstance(frame, bytes):
        protocol.receive_bytes(frame)
    else:
        protocol.receive_text(frame)
    assert protocol.events_received() == []
    assert protocol.problems == {kind: 1}


def test_start_may_carry_the_calls_parameters_and_a_bad_one_is_dropped_alone() -> None:
    protocol = wire.WireProtocol()
    parameters = {
        "first_name": "Ana",
        "plan": "gold",
        "age": 41,
        "call.from": "+1999",
        "a b": "x",
        "notes": "n" * 400,
        "From": "+1555",
    }
    protocol.receive_text(json.dumps({"type": "start", "sample_rate": 16000, "parameters": parameters}))
    assert protocol.events_received() == [wire.Started(16000, {"first_name": "Ana", "plan": "gold"})]
    assert protocol.problems == {"invalid-parameter": 5}
    too_many = {f"p{n}": "x" for n in range(21)}
    protocol = wire.WireProtocol()
    protocol.receive_text(json.dumps({"type": "start", "parameters": too_many}))
    assert protocol.events_received() == [wire.Started(16000, {})]
    assert protocol.problems == {"invalid-parameter": 1}


def test_nothing_is_accepted_or_sent_before_start() -> None:
    protocol = wire.WireProtocol()
    protocol.receive_text('{"type": "start", "sample_rate": 12345}')
    protocol.receive_bytes(b"\0\0")
    protocol.receive_text('{"type": "played", "mark": "a"}')
    assert protocol.events_received() == []
    assert protocol.problems == {"invalid": 1, "before-start": 2}
    with pytest.raises(ProtocolError):
        protocol.send_audio(b"\0\0")
