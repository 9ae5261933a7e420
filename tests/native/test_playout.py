from __future__ import annotations

import array
import gc
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicecore.audio import ClearReport, PlayoutBuffer
from voicecore.errors import AudioFormatError, ConfigError, PlayoutOverflowError, VoicecoreError

RATES_AND_FRAME_SAMPLES = [(8000, 160), (16000, 320), (22050, 441), (24000, 480), (44100, 882), (48000, 960)]


def pcm(n: int, start: int = 0) -> bytes:
    """n distinct-ish samples, so misordered or duplicated audio shows up."""
    return ((np.arange(n, dtype=np.int64) + start) % 65536 - 32768).astype("<i2").tobytes()


def drain(buf: PlayoutBuffer, pad: bool = False) -> tuple[bytes, list[str]]:
    audio = bytearray()
    marks: list[str] = []
    while True:
        frame, passed = buf.read_frame(pad)
        marks += passed
        if frame is None:
            return bytes(audio), marks
        audio += frame


# --- construction --------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "frame_samples"), RATES_AND_FRAME_SAMPLES)
def test_frame_size_at_each_rate(rate: int, frame_samples: int) -> None:
    buf = PlayoutBuffer(rate)
    assert (buf.sample_rate, buf.frame_ms, buf.capacity_ms) == (rate, 20, 60000)
    assert buf.frame_bytes == 2 * frame_samples
    buf.push(pcm(frame_samples * 3 + 1))
    frame, marks = buf.read_frame()
    assert frame == pcm(frame_samples * 3 + 1)[: 2 * frame_samples]
    assert marks == []
    assert buf.played_samples == frame_samples
    assert buf.played_ms == pytest.approx(20.0)
    assert buf.queued_samples == len(buf) == 2 * frame_samples + 1
    assert buf.queued_ms == pytest.approx((2 * frame_samples + 1) * 1000 / rate)


@pytest.mark.parametrize(
    ("args", "exc", "message"),
    [
        ((11025,), AudioFormatError, "unsupported sample rate 11025 Hz"),
        ((0,), AudioFormatError, "unsupported sample rate 0 Hz"),
        ((-16000,), AudioFormatError, "unsupported sample rate -16000 Hz"),
        ((16000, 0), ConfigError, "frame_ms must be between 1 and 1000"),
        ((16000, 1001, 2000), ConfigError, "frame_ms must be between 1 and 1000"),
        ((16000, -20), ConfigError, "frame_ms must be a positive number"),
        ((22050, 10), ConfigError, "not a whole number of samples at 22050 Hz"),
        ((44100, 5), ConfigError, "multiple of 10 ms"),
        ((16000, 20, 19), ConfigError, "raise capacity_ms to at least 20"),
        ((16000, 20, -1), ConfigError, "capacity_ms must be a positive number"),
        ((16000, 20, 2**40), ConfigError, "capacity_ms is too large"),
    ],
)
def test_bad_constructor_arguments_name_the_problem(
    args: tuple[int, ...], exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=message):
        PlayoutBuffer(*args)


def test_constructor_keywords_and_boundaries() -> None:
    buf = PlayoutBuffer(sample_rate=8000, frame_ms=10, capacity_ms=10)
    assert (buf.frame_bytes, buf.capacity_ms) == (160, 10)
    assert PlayoutBuffer(48000, frame_ms=1000, capacity_ms=1000).frame_bytes == 96000
    assert PlayoutBuffer(22050, frame_ms=20).frame_bytes == 882


# --- input types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrap",
    [
        bytes,
        bytearray,
        memoryview,
        lambda b: np.frombuffer(b, dtype="<i2"),
        lambda b: np.frombuffer(b, dtype=np.uint8),
        lambda b: array.array("h", b),
    ],
    ids=["bytes", "bytearray", "memoryview", "numpy-int16", "numpy-uint8", "array-h"],
)
def test_accepts_bytes_like_inputs(wrap: object) -> None:
    data = pcm(500, start=-1234)
    buf = PlayoutBuffer(8000)
    buf.push(wrap(data), mark="m")  # type: ignore[operator]
    audio, marks = drain(buf, pad=True)
    assert audio[: len(data)] == data
    assert audio[len(data) :] == bytes(len(audio) - len(data))
    assert marks == ["m"]


def test_rejects_odd_length_and_appends_nothing() -> None:
    buf = PlayoutBuffer(8000)
    buf.push(pcm(10))
    with pytest.raises(AudioFormatError, match="odd length"):
        buf.push(b"\x00" * 321, mark="lost")
    assert buf.queued_samples == 10
    assert buf.read_frame(pad=True)[1] == []


def test_rejects_wrong_buffer_formats() -> None:
    buf = PlayoutBuffer(8000)
    with pytest.raises(AudioFormatError, match="format"):
        buf.push(np.zeros(160, dtype=np.float32))
    with pytest.raises(AudioFormatError, match="C-contiguous"):
        buf.push(np.zeros(320, dtype=np.int16)[::2])
    with pytest.raises(TypeError, match="bytes-like"):
        buf.push("not audio")  # type: ignore[arg-type]
    assert buf.queued_samples == 0


def test_large_push_takes_the_gil_free_path() -> None:
    data = pcm(16000 * 5)  # 160 kB, above the detach threshold
    buf = PlayoutBuffer(16000)
    buf.push(data, mark="end")
    assert drain(buf) == (data, ["end"])


# --- marks ---------------------------------------------------------------------------------


def test_marks_pass_exactly_when_the_audio_before_them_is_read() -> None:
    buf = PlayoutBuffer(8000)  # 160-sample frames
    buf.push(pcm(160), mark="a")  # at 160
    buf.push(pcm(100), mark="b")  # at 260
    buf.mark("c")  # at 260
    buf.push(pcm(61), mark="d")  # at 321
    assert buf.read_frame()[1] == ["a"]
    assert buf.read_frame()[1] == ["b", "c"]
    frame, marks = buf.read_frame()
    assert (frame, marks) == (None, [])
    frame, marks = buf.read_frame(pad=True)
    assert frame is not None
    assert marks == ["d"]


def test_mark_on_empty_buffer_passes_on_next_read_even_without_a_frame() -> None:
    buf = PlayoutBuffer(8000)
    buf.mark("start")
    assert buf.read_frame() == (None, ["start"])
    assert buf.read_frame() == (None, [])
    assert buf.underruns == 2


def test_push_with_empty_audio_places_only_the_mark() -> None:
    buf = PlayoutBuffer(8000)
    buf.push(pcm(160))
    buf.push(b"", mark="here")
    assert buf.queued_samples == 160
    assert buf.read_frame()[1] == ["here"]


def test_marks_are_arbitrary_strings_and_may_repeat() -> None:
    buf = PlayoutBuffer(8000)
    for name in ["", "réponse 🎙", "x", "x"]:
        buf.push(pcm(80), mark=name)
    assert drain(buf)[1] == ["", "réponse 🎙", "x", "x"]


# --- pad and underruns ---------------------------------------------------------------------


def test_pad_returns_partial_audio_then_silence_not_counted_as_played() -> None:
    buf = PlayoutBuffer(16000)
    data = pcm(100, start=7)
    buf.push(data)
    frame, _ = buf.read_frame(pad=True)
    assert frame is not None
    assert len(frame) == buf.frame_bytes == 640
    assert frame == data + bytes(640 - 200)
    assert buf.played_samples == 100
    assert buf.played_ms == pytest.approx(6.25)
    assert buf.queued_samples == 0
    assert buf.underruns == 0


def test_without_pad_partial_audio_stays_queued() -> None:
    buf = PlayoutBuffer(16000)
    buf.push(pcm(100))
    assert buf.read_frame() == (None, [])
    assert buf.queued_samples == 100
    assert buf.underruns == 1


def test_underruns_count_reads_that_returned_no_frame() -> None:
    buf = PlayoutBuffer(8000)
    assert buf.read_frame(pad=True) == (None, [])  # empty: nothing to pad
    assert buf.read_frame() == (None, [])
    buf.push(pcm(10))
    buf.read_frame()  # partial, unpadded: underrun
    assert buf.underruns == 3
    buf.read_frame(pad=True)  # partial, padded: a frame
    buf.push(pcm(160))
    buf.read_frame()  # a full frame
    assert buf.underruns == 3


# --- overflow ------------------------------------------------------------------------------


def test_overflow_raises_and_loses_nothing_already_queued() -> None:
    buf = PlayoutBuffer(8000, capacity_ms=100)  # 800 samples
    first = pcm(700)
    buf.push(first, mark="kept")
    with pytest.raises(
        PlayoutOverflowError, match=r"appending 12\.6 ms to 87\.5 ms queued exceeds the 100\.0 ms"
    ) as info:
        buf.push(pcm(101), mark="lost")
    assert isinstance(info.value, BufferError)
    assert isinstance(info.value, VoicecoreError)
    assert buf.queued_samples == 700
    buf.push(pcm(100, start=700))  # exactly full is fine
    with pytest.raises(PlayoutOverflowError):
        buf.push(pcm(1))
    assert drain(buf) == (first + pcm(100, start=700), ["kept"])


def test_clear_makes_room_after_overflow() -> None:
    buf = PlayoutBuffer(8000, capacity_ms=20)
    buf.push(pcm(160))
    with pytest.raises(PlayoutOverflowError):
        buf.push(pcm(1))
    buf.clear()
    buf.push(pcm(160))
    assert buf.queued_samples == 160


# --- clear and reset -----------------------------------------------------------------------


def test_clear_reports_exactly_the_dropped_audio_and_unreached_marks() -> None:
    buf = PlayoutBuffer(16000)
    buf.push(pcm(400), mark="a")
    buf.push(pcm(400), mark="b")
    buf.mark("c")
    assert buf.read_frame()[1] == []
    report = buf.clear()
    assert isinstance(report, ClearReport)
    assert report.dropped_samples == 480
    assert report.dropped_ms == pytest.approx(30.0)
    assert report.dropped_marks == ["a", "b", "c"]
    assert report.passed_marks == []
    assert buf.generation == 1
    assert (buf.queued_samples, buf.queued_ms) == (0, 0.0)
    assert buf.played_samples == 320, "the caller heard one frame"
    assert buf.played_ms == pytest.approx(20.0)
    assert buf.read_frame() == (None, []), "dropped marks are never reported again"


def test_clear_reports_reached_but_unreported_marks_as_passed() -> None:
    buf = PlayoutBuffer(8000)
    buf.push(pcm(160))
    buf.read_frame()
    buf.mark("reached")
    buf.push(pcm(20), mark="unreached")
    report = buf.clear()
    assert (report.passed_marks, report.dropped_marks) == (["reached"], ["unreached"])
    assert report.dropped_samples == 20
    assert report.dropped_ms == pytest.approx(2.5)


def test_clear_on_empty_buffer_and_buffer_keeps_working() -> None:
    buf = PlayoutBuffer(8000)
    report = buf.clear()
    assert (report.dropped_samples, report.dropped_ms, report.dropped_marks, report.passed_marks) == (
        0,
        0.0,
        [],
        [],
    )
    buf.push(pcm(160), mark="after")
    assert buf.read_frame() == (pcm(160), ["after"])
    assert buf.generation == 1


def test_clear_report_is_frozen_and_has_a_useful_repr() -> None:
    buf = PlayoutBuffer(8000)
    buf.push(pcm(40), mark="it's")
    report = buf.clear()
    assert repr(report) == (
        'ClearReport(dropped_ms=5.0, dropped_samples=40, dropped_marks=["it\'s"], passed_marks=[])'
    )
    with pytest.raises(AttributeError):
        report.dropped_ms = 1.0  # type: ignore[misc]
    report.dropped_marks.append("x")  # a copy: the report itself does not change
    assert report.dropped_marks == ["it's"]
    with pytest.raises(TypeError):
        ClearReport()


def test_reset_returns_to_the_constructed_state() -> None:
    buf = PlayoutBuffer(8000, frame_ms=10, capacity_ms=500)
    buf.push(pcm(200), mark="gone")
    buf.read_frame()
    buf.read_frame()
    buf.read_frame()
    buf.clear()
    buf.mark("also gone")
    buf.reset()
    assert (buf.played_samples, buf.queued_samples, buf.underruns, buf.generation) == (0, 0, 0, 0)
    assert (buf.sample_rate, buf.frame_ms, buf.capacity_ms) == (8000, 10, 500)
    assert buf.read_frame() == (None, [])


def test_repr_shows_configuration_and_state() -> None:
    buf = PlayoutBuffer(8000)
    buf.push(pcm(80))
    assert repr(buf) == (
        "PlayoutBuffer(sample_rate=8000, frame_ms=20, capacity_ms=60000, queued_ms=10.0, "
        "played_ms=0.0, generation=0)"
    )


# --- properties ----------------------------------------------------------------------------


def take_reached(pending: list[tuple[int, str]], position: int) -> list[str]:
    """Pops the marks at or before `position` (a byte offset into all pushed audio)."""
    reached = [name for pos, name in pending if pos <= position]
    del pending[: len(reached)]
    return reached


@settings(max_examples=200, deadline=None)
@given(
    rate_frame=st.sampled_from(RATES_AND_FRAME_SAMPLES),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.integers(0, 2000), st.booleans()),
            st.tuples(st.just("mark"), st.just(0), st.just(False)),
            st.tuples(st.just("read"), st.just(0), st.booleans()),
            st.tuples(st.just("clear"), st.just(0), st.just(False)),
        ),
        max_size=60,
    ),
)
def test_matches_a_model_and_every_mark_is_reported_once(
    rate_frame: tuple[int, int], ops: list[tuple[str, int, bool]]
) -> None:
    rate, frame_samples = rate_frame
    frame_bytes = 2 * frame_samples
    buf = PlayoutBuffer(rate)
    pushed = bytearray()  # every byte ever pushed
    read_pos = 0  # byte offset into `pushed` consumed by reads and clears
    heard = bytearray()  # real audio returned by reads
    pending: list[tuple[int, str]] = []
    placed: list[str] = []
    reported: list[str] = []
    for i, (kind, n, flag) in enumerate(ops):
        if kind == "push":
            data = pcm(n, start=len(pushed) // 2)
            name = f"m{i}" if flag else None
            buf.push(data, mark=name)
            pushed += data
            if name is not None:
                pending.append((len(pushed), name))
                placed.append(name)
        elif kind == "mark":
            buf.mark(f"k{i}")
            pending.append((len(pushed), f"k{i}"))
            placed.append(f"k{i}")
        elif kind == "read":
            queued = len(pushed) - read_pos
            frame, marks = buf.read_frame(pad=flag)
            assert (frame is not None) == (queued >= frame_bytes or (flag and queued > 0))
            if frame is not None:
                audio = min(frame_bytes, queued)
                assert frame == pushed[read_pos : read_pos + audio] + bytes(frame_bytes - audio)
                heard += frame[:audio]
                read_pos += audio
            assert marks == take_reached(pending, read_pos)
            reported += marks
        else:
            report = buf.clear()
            assert report.dropped_samples * 2 == len(pushed) - read_pos
            assert report.dropped_ms == pytest.approx(report.dropped_samples * 1000 / rate)
            assert report.passed_marks == take_reached(pending, read_pos)
            assert report.dropped_marks == [name for _, name in pending]
            reported += report.passed_marks + report.dropped_marks
            pending.clear()
            read_pos = len(pushed)
        assert buf.played_samples * 2 == len(heard)
        assert buf.queued_samples * 2 == len(pushed) - read_pos
    final = buf.clear()
    reported += final.passed_marks + final.dropped_marks
    assert reported == placed, "every mark is reported exactly once, in order"
    if "clear" not in [kind for kind, _, _ in ops]:
        assert heard == pushed[: len(heard)]


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.tuples(st.integers(0, 1500), st.booleans()), max_size=40))
def test_full_frames_concatenate_to_the_input(chunks: list[tuple[int, bool]]) -> None:
    buf = PlayoutBuffer(8000)
    pushed = bytearray()
    pending: list[tuple[int, str]] = []
    for i, (n, with_mark) in enumerate(chunks):
        data = pcm(n, start=len(pushed) // 2)
        buf.push(data, mark=f"m{i}" if with_mark else None)
        pushed += data
        if with_mark:
            pending.append((len(pushed), f"m{i}"))
    out = bytearray()
    while True:
        frame, marks = buf.read_frame()
        out += frame or b""
        assert marks == take_reached(pending, len(out))
        if frame is None:
            break
    full = len(pushed) // 320 * 320
    assert out == pushed[:full]
    report = buf.clear()
    assert report.dropped_samples * 2 == len(pushed) - full
    assert report.dropped_marks == [name for _, name in pending]
    assert all(pos > full for pos, _ in pending)


# --- memory --------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_memory_stays_flat_over_many_push_read_cycles() -> None:
    buf = PlayoutBuffer(16000)
    frame = pcm(320)
    for _ in range(1000):  # warm up: the deque reaches its steady-state allocation
        buf.push(frame, mark="m")
        buf.read_frame()
    gc.collect()
    tracemalloc.start()
    rss_before = _rss_bytes()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(100_000):
        buf.push(frame, mark="m")
        buf.read_frame()
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = _rss_bytes() - rss_before
    assert after - before < 64 * 1024, f"Python allocations grew by {after - before} bytes"
    assert rss_growth < 2 * 1024 * 1024, f"RSS grew by {rss_growth} bytes"
    assert buf.played_samples == 101_000 * 320


def test_idle_buffers_are_cheap() -> None:
    """No sample memory is allocated up front, so many idle 60 s buffers cost little."""
    rss_before = _rss_bytes()
    buffers = [PlayoutBuffer(48000, capacity_ms=60000) for _ in range(200)]
    growth = _rss_bytes() - rss_before
    # Preallocating 60 s at 48 kHz would be 5.76 MB each, over 1 GB for 200.
    assert growth < 8 * 1024 * 1024, f"200 idle buffers grew RSS by {growth} bytes"
    assert all(b.queued_samples == 0 for b in buffers)
