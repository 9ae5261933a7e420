"""Late caller frames and gaps in the agent's audio, on a clock the test controls."""

from __future__ import annotations

import pytest

from voicecore.sansio.frame_timing import ArrivalMeter, PlayoutClock


def test_a_constant_network_delay_is_not_lateness() -> None:
    meter = ArrivalMeter()
    for n in range(100):
        assert meter.frame(5.0 + 0.3 + n * 0.02, 0.02, timestamp_s=n * 0.02) is None
    assert meter.late_frames == 0


def test_frames_held_back_by_a_stall_are_late_by_what_they_waited() -> None:
    meter = ArrivalMeter()
    for n in range(10):
        meter.frame(n * 0.02, 0.02, timestamp_s=n * 0.02)
    # Frames 10..24 were held until 0.5 s, then came at once.
    late = [meter.frame(0.5, 0.02, timestamp_s=n * 0.02) for n in range(10, 25)]
    assert late[0] == pytest.approx(0.3)
    assert [x for x in late if x is not None] == pytest.approx([0.5 - n * 0.02 for n in range(10, 20)])
    assert late[10:] == [None] * 5  # 100 ms or less behind: not late
    assert meter.late_frames == 10


def test_without_timestamps_the_audio_received_is_the_media_clock() -> None:
    meter = ArrivalMeter()
    meter.frame(0.0, 0.02)
    meter.frame(0.02, 0.02)
    assert meter.frame(0.3, 0.02) == pytest.approx(0.26)  # the third frame belongs at 0.04 s
    assert meter.frame(0.3, 0.5) == pytest.approx(0.24)
    assert meter.frame(0.6, 0.02) is None  # belongs at 0.56 s: 40 ms behind, not late


def test_an_earlier_frame_than_the_first_moves_the_reference() -> None:
    meter = ArrivalMeter()
    meter.frame(1.0, 0.02, timestamp_s=0.0)  # the first frame was itself 200 ms late
    meter.frame(0.82, 0.02, timestamp_s=0.02)  # clock jitter aside, impossible; it sets the reference
    assert meter.frame(1.0, 0.02, timestamp_s=0.04) == pytest.approx(0.16)


def test_audio_sent_ahead_of_playback_never_underruns() -> None:
    clock = PlayoutClock()
    for n in range(50):
        assert clock.sent(n * 0.01, 0.04) == 0.0  # four times faster than it plays
    assert clock.underruns == 0


def test_audio_sent_after_the_previous_audio_played_is_an_underrun() -> None:
    clock = PlayoutClock()
    assert clock.sent(0.0, 0.5) == 0.0  # plays until 0.5
    assert clock.sent(0.3, 0.2) == 0.0  # queued behind it: plays until 0.7
    assert clock.sent(0.71, 0.1) == 0.0  # 10 ms gap: under one frame, not counted
    assert clock.sent(1.0, 0.1) == pytest.approx(0.19)  # the caller heard 190 ms of nothing
    assert (clock.underruns, clock.underrun_s) == (1, pytest.approx(0.19))


def test_a_mark_played_late_moves_the_model_so_a_late_far_end_hides_no_gap() -> None:
    clock = PlayoutClock()
    clock.sent(0.0, 0.5)
    first = clock.mark()
    clock.sent(0.1, 0.5)
    second = clock.mark()
    assert clock.expected_end == pytest.approx(1.0)
    assert first is not None
    assert second is not None
    clock.confirm(first, 0.7)  # the far end played the first part 200 ms later than modelled
    assert clock.expected_end == pytest.approx(1.2)
    clock.confirm(second, 1.2)  # the same delay, already counted: the model stays
    assert clock.expected_end == pytest.approx(1.2)
    assert clock.sent(1.1, 0.2) == 0.0  # queued in time after all
    third = clock.mark()
    assert third is not None
    clock.confirm(third, 1.3)  # a mark played earlier than modelled never moves it back
    assert clock.expected_end == pytest.approx(1.4)
    assert clock.sent(1.6, 0.1) == pytest.approx(0.2)
