"""The replay buffer's positions, stream times and replay gaps, sans I/O."""

from __future__ import annotations

import pytest

from voicecore.sansio.replay import ReplayBuffer


def test_positions_and_stream_times_follow_the_connection_whose_time_zero_is_the_replay() -> None:
    buffer = ReplayBuffer(bytes_per_second=8000)
    buffer.push(b"a" * 4000)
    assert buffer.position == pytest.approx(0.5)
    buffer.settle(0.25)  # a final covers the first 2000 bytes
    assert buffer.replay() == b"a" * 2000  # the new connection starts at byte 2000 of the call
    assert buffer.position == pytest.approx(0.25)
    assert buffer.stream_time(0.1) == pytest.approx(0.35), "seconds since the first byte ever pushed"
    buffer.push(b"b" * 800)
    buffer.settle(0.3)  # the new connection's 0.3 s is the call's 0.55 s (byte 4400 of 4800)
    assert buffer.replay() == b"b" * 400
    assert buffer.replay_gap == 0


def test_a_replay_counts_what_overflowed_unsettled_once() -> None:
    buffer = ReplayBuffer(bytes_per_second=8000, capacity_seconds=0.1)  # 800 bytes
    buffer.push(b"x" * 3000)
    buffer.settle(0.05)  # covers 400 bytes, all of them already overflowed
    assert buffer.replay() == b"x" * 800
    assert buffer.replay_gap == 3000 - 800 - 400
    assert buffer.replay_gap_seconds == pytest.approx(1800 / 8000)
    assert buffer.replay() == b"x" * 800
    assert buffer.replay_gap == 1800, "a second replay does not count the same loss again"
    buffer.settle(0.1)  # the second connection transcribed all it was sent
    buffer.push(b"y" * 100)
    assert buffer.replay() == b"y" * 100
    assert buffer.replay_gap == 1800
