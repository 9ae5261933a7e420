"""The Twilio Media Streams protocol, driven by strings alone: no loop, no socket."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.audio import TwilioFrameDecoder, ulaw_decode
from voicecore.errors import ProtocolError
from voicecore.sansio.call_events import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed
from voicecore.sansio.twilio import MediaFramer, StreamStarted, TwilioProtocol

SID = "MZ0123456789abcdef0123456789abcdef"
CALL = "CA0123456789abcdef0123456789abcdef"


def msg(event: str, **fields: Any) -> str:
    return json.dumps({"event": event, **fields})


CONNECTED = msg("connected", protocol="Call", version="1.0.0")
START = msg(
    "start",
    sequenceNumber="1",
    streamSid=SID,
    start={
        "accountSid": "AC1",
        "streamSid": SID,
        "callSid": CALL,
        "tracks": ["inbound"],
        "customParameters": {"from": "+14155550100", "lang": "en"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
)


def media(payload: bytes | str, sid: str = SID, chunk: int = 1) -> str:
    text = payload if isinstance(payload, str) else base64.b64encode(payload).decode()
    return msg(
        "media",
        sequenceNumber=str(chunk + 1),
        streamSid=sid,
        media={"track": "inbound", "chunk": str(chunk), "timestamp": str(20 * chunk), "payload": text},
    )


def mark(name: str, sid: str = SID) -> str:
    return msg("mark", sequenceNumber="9", streamSid=sid, mark={"name": name})


def started(**kwargs: Any) -> TwilioProtocol:
    protocol = TwilioProtocol(**kwargs)
    protocol.receive_text(CONNECTED)
    protocol.receive_text(START)
    protocol.events_received()
    return protocol


def sent(protocol: TwilioProtocol) -> list[dict[str, Any]]:
    return [json.loads(text) for text in protocol.data_to_send()]


def test_a_whole_stream_in_order() -> None:
    protocol = TwilioProtocol()
    frame = bytes(range(160))
    for text in (
        CONNECTED,
        START,
        media(frame),
        msg("dtmf", streamSid=SID, sequenceNumber="3", dtmf={"track": "inbound_track", "digit": "7"}),
        msg("stop", sequenceNumber="4", streamSid=SID, stop={"accountSid": "AC1", "callSid": CALL}),
    ):
        protocol.receive_text(text)
    start, audio, dtmf, stop = protocol.events_received()
    assert start == StreamStarted(
        stream_sid=SID,
        call_sid=CALL,
        account_sid="AC1",
        custom_parameters={"from": "+14155550100", "lang": "en"},
    )
    assert audio == CallerAudio(frame, 20)  # μ-law passthrough: the bytes as sent
    assert dtmf == DtmfPressed("7")
    assert stop == CallerHungUp()
    assert (protocol.stream_sid, protocol.call_sid, protocol.stopped) == (SID, CALL, True)
    assert not protocol.problems
    assert protocol.events_received() == []


def test_pcm_mode_decodes_through_the_rust_codec() -> None:
    protocol = started(engine_rate=16000)
    reference = TwilioFrameDecoder(16000)
    frames = [bytes((i * 7 + n) % 256 for i in range(160)) for n in range(3)]
    for n, frame in enumerate(frames):
        protocol.receive_text(media(frame, chunk=n + 1))
    events = protocol.events_received()
    expected = [reference.decode(base64.b64encode(f)) for f in frames]
    assert [e.audio for e in events if isinstance(e, CallerAudio)] == expected
    assert all(len(audio) == 640 for audio in expected)  # 20 ms of PCM16 at 16 kHz


def test_outbound_messages_have_twilios_shapes() -> None:
    protocol = started()
    audio = bytes(range(200))
    protocol.send_audio(audio)
    protocol.send_mark("1.1")
    protocol.send_clear()
    media_out, mark_out, clear_out = sent(protocol)
    payload = base64.b64encode(audio).decode()
    assert media_out == {"event": "media", "streamSid": SID, "media": {"payload": payload}}
    assert mark_out == {"event": "mark", "streamSid": SID, "mark": {"name": "1.1"}}
    assert clear_out == {"event": "clear", "streamSid": SID}
    assert protocol.data_to_send() == []
    protocol.send_audio(b"")
    assert protocol.data_to_send() == []


@given(sid=st.text(max_size=40), payloads=st.lists(st.binary(max_size=200), max_size=4))
def test_media_framer_gives_each_payloads_json_whatever_the_sid(sid: str, payloads: list[bytes]) -> None:
    texts = [base64.b64encode(p).decode() for p in payloads]
    messages = MediaFramer(sid)(texts)
    assert [json.loads(m) for m in messages] == [
        {"event": "media", "streamSid": sid, "media": {"payload": t}} for t in texts
    ]


@pytest.mark.parametrize("engine_rate", [None, 16000])
def test_send_audio_before_start_is_a_protocol_error(engine_rate: int | None) -> None:
    protocol = TwilioProtocol(engine_rate=engine_rate)
    with pytest.raises(ProtocolError, match="before its 'start'"):
        protocol.send_audio(b"\xff" * 640)


@given(sid=st.text(min_size=1, max_size=40))
def test_pcm_mode_messages_carry_the_streams_sid_whatever_it_is(sid: str) -> None:
    """The Rust encoder splices payloads into the message msgspec encoded for this stream."""
    start = json.loads(START)
    start["streamSid"] = start["start"]["streamSid"] = sid
    protocol = TwilioProtocol(engine_rate=16000)
    protocol.receive_text(json.dumps(start))
    protocol.send_audio(bytes(640))
    (frame,) = sent(protocol)
    silence = base64.b64encode(b"\xff" * 160).decode()
    assert frame == {"event": "media", "streamSid": sid, "media": {"payload": silence}}


def test_pcm_mode_sends_20ms_frames_and_flushes_before_a_mark() -> None:
    protocol = started(engine_rate=16000)
    protocol.send_audio(bytes(640 * 2 + 100))  # two whole 20 ms frames and a bit
    frames = sent(protocol)
    assert [len(base64.b64decode(f["media"]["payload"])) for f in frames] == [160, 160]
    protocol.send_mark("1.1")
    *tail, mark_out = sent(protocol)
    assert mark_out["event"] == "mark"
    # The rest of the audio precedes the mark: 100 bytes at 16 kHz are 25 samples at 8 kHz.
    assert tail
    assert all(f["event"] == "media" for f in tail)
    rest = b"".join(base64.b64decode(f["media"]["payload"]) for f in tail)
    assert len(rest) >= 25
    assert set(rest[:10]) == {0xFF}  # μ-law silence


def test_marks_are_reported_once_played_and_swallowed_after_a_clear() -> None:
    protocol = started()
    for name in ("1.1", "1.2", "1.3"):
        protocol.send_audio(b"\xff" * 160)
        protocol.send_mark(name)
    protocol.receive_text(mark("1.1"))
    assert protocol.events_received() == [MarkPlayed("1.1")]
    assert protocol.outstanding_marks == ("1.2", "1.3")
    protocol.send_clear()
    assert protocol.outstanding_marks == ()
    protocol.send_audio(b"\xff" * 160)
    protocol.send_mark("2.4")
    # Twilio answers the clear by echoing every mark it still held, then plays on.
    protocol.receive_text(mark("1.2"))
    protocol.receive_text(mark("1.3"))
    protocol.receive_text(mark("2.4"))
    assert protocol.events_received() == [MarkPlayed("2.4")]
    assert protocol.cleared_marks == 2
    assert not protocol.problems


def test_a_mark_echo_that_was_never_sent_or_echoed_twice_is_skipped() -> None:
    protocol = started()
    protocol.send_mark("a")
    protocol.receive_text(mark("a"))
    protocol.receive_text(mark("a"))
    protocol.receive_text(mark("never"))
    assert protocol.events_received() == [MarkPlayed("a")]
    assert protocol.problems["unknown-mark"] == 2


def test_repeated_mark_names_are_counted_one_echo_each() -> None:
    protocol = started()
    protocol.send_mark("same")
    protocol.send_mark("same")
    protocol.send_clear()
    protocol.send_mark("same")
    for _ in range(3):
        protocol.receive_text(mark("same"))
    assert protocol.events_received() == [MarkPlayed("same")]
    assert protocol.cleared_marks == 2


def test_send_before_start_is_a_protocol_error() -> None:
    protocol = TwilioProtocol()
    with pytest.raises(ProtocolError, match="before its 'start'"):
        protocol.send_mark("x")


BAD_MESSAGES = [
    ("not json", "invalid-json"),
    ("[1, 2]", "invalid-json"),
    ('{"event": "media", "streamSid": "' + SID + '"', "invalid-json"),  # truncated
    (msg("hello", streamSid=SID), "unknown-event"),
    (msg("media", streamSid=SID), "invalid"),  # no media object
    (msg("media", streamSid=SID, media={"payload": 5}), "invalid"),
    (msg("mark", streamSid=SID, mark={}), "invalid"),
    (media("!!!not base64!!!"), "bad-base64"),
    (media("AAE"), "bad-base64"),  # bad padding
    (media(b"\x00" * 160, sid="MZother"), "wrong-stream"),
    (mark("x", sid="MZother"), "wrong-stream"),
    (START, "repeated-start"),
    (CONNECTED, "late-connected"),
    ("x" * 70_000, "oversized"),
]


@pytest.mark.parametrize(("text", "kind"), BAD_MESSAGES)
def test_bad_messages_are_counted_and_skipped(text: str, kind: str) -> None:
    protocol = started()
    protocol.receive_text(text)
    assert protocol.events_received() == []
    assert dict(protocol.problems) == {kind: 1}
    protocol.receive_text(media(b"\x01" * 160))  # the stream goes on
    assert protocol.events_received() == [CallerAudio(b"\x01" * 160, 20)]


def test_bad_base64_in_pcm_mode_leaves_the_stream_usable() -> None:
    protocol = started(engine_rate=16000)
    protocol.receive_text(media("@@@"))
    protocol.receive_text(media(b"\xff" * 160))
    (event,) = protocol.events_received()
    assert isinstance(event, CallerAudio)
    assert len(event.audio) == 640
    assert protocol.problems == {"bad-base64": 1}


def test_messages_before_start_and_after_stop_are_skipped() -> None:
    protocol = TwilioProtocol()
    protocol.receive_text(media(b"\x00" * 160))
    protocol.receive_text(msg("start", streamSid=SID, start={"streamSid": "", "callSid": ""}))
    assert protocol.events_received() == []
    assert protocol.problems == {"before-start": 1, "invalid": 1}
    protocol.receive_text(START)
    protocol.receive_text(msg("stop", streamSid=SID))
    protocol.receive_text(media(b"\x00" * 160))
    assert [type(e) for e in protocol.events_received()] == [StreamStarted, CallerHungUp]
    assert protocol.problems["after-stop"] == 1


def test_binary_messages_are_skipped() -> None:
    protocol = started()
    protocol.receive_bytes(b"\x00\x01")
    assert protocol.events_received() == []
    assert protocol.problems == {"binary": 1}


def test_each_kind_of_problem_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    protocol = started()
    with caplog.at_level(logging.WARNING, logger="voicecore.sansio.twilio"):
        for _ in range(5):
            protocol.receive_text("garbage")
            protocol.receive_bytes(b"\x00")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(w.startswith("Twilio stream MZ") and "skipped" in w for w in warnings)
    assert protocol.problems == {"invalid-json": 5, "binary": 5}


def test_unexpected_media_format_is_noted_but_the_stream_starts() -> None:
    protocol = TwilioProtocol()
    start = json.loads(START)
    start["start"]["mediaFormat"] = {"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1}
    protocol.receive_text(json.dumps(start))
    (event,) = protocol.events_received()
    assert isinstance(event, StreamStarted)
    assert event.encoding == "audio/x-alaw"
    assert protocol.problems == {"media-format": 1}


def test_media_audio_is_mulaw_the_caller_sent() -> None:
    protocol = started()
    frame = bytes([0x00, 0x7F, 0x80, 0xFF] * 40)
    protocol.receive_text(media(frame))
    (event,) = protocol.events_received()
    assert isinstance(event, CallerAudio)
    assert ulaw_decode(event.audio) == ulaw_decode(frame)


@given(st.text(max_size=300))
def test_any_text_is_survived(text: str) -> None:
    protocol = started()
    protocol.receive_text(text)
    protocol.events_received()


@given(st.sampled_from([CONNECTED, START, media(b"\x10" * 160), mark("m")]), st.integers(0, 400))
def test_truncated_messages_are_survived(text: str, cut: int) -> None:
    protocol = started(engine_rate=16000)
    protocol.send_mark("m")
    protocol.receive_text(text[:cut])
    protocol.events_received()


def test_gaps_in_the_media_chunk_numbers_are_counted_as_lost_frames() -> None:
    protocol = started()
    for chunk in (1, 2, 5, 6, 4, 9):  # 3-4 and 7-8 missing; the late 4 arrives out of order
        protocol.receive_text(media(b"\xff" * 160, chunk=chunk))
    assert len(protocol.events_received()) == 6
    assert protocol.frames_lost == 4


def test_frames_received_counts_the_media_frames_decoded_not_the_bad_ones() -> None:
    protocol = started()
    for chunk in (1, 2, 3):
        protocol.receive_text(media(b"\xff" * 160, chunk=chunk))
    protocol.receive_text(media("not base64!", chunk=4))
    protocol.receive_text(media(b"\xff" * 160, sid="MZ-other", chunk=5))
    assert len(protocol.events_received()) == 3
    assert protocol.frames_received == 3
