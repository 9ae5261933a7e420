from __future__ import annotations

from array import array

from hypothesis import given
from hypothesis import strategies as st

from voicecore.sansio.recording import MAX_GAP_S, StereoTimeline

RATE = 8000


def pcm(*samples: int) -> bytes:
    return array("h", samples).tobytes()


def tone(value: int, count: int) -> bytes:
    return pcm(*([value] * count))


def channels(stereo: bytes) -> tuple[list[int], list[int]]:
    samples = array("h", stereo)
    return list(samples[0::2]), list(samples[1::2])


def test_the_caller_is_left_and_the_agent_right_from_when_it_was_sent() -> None:
    timeline = StereoTimeline(RATE)
    timeline.caller_audio(pcm(1, 2, 3, 4))
    timeline.agent_audio(pcm(10, 20))  # sent at sample 4: plays from there
    timeline.caller_audio(pcm(5, 6, 7, 8))
    assert channels(timeline.take()) == ([1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 10, 20, 0, 0])


def test_agent_audio_queues_behind_what_is_still_playing() -> None:
    timeline = StereoTimeline(RATE)
    timeline.agent_audio(pcm(10, 20, 30))
    timeline.caller_audio(pcm(1))
    timeline.agent_audio(pcm(40, 50))  # sent at sample 1, plays after sample 3
    timeline.caller_audio(pcm(2, 3, 4, 5, 6, 7))
    assert channels(timeline.take())[1] == [10, 20, 30, 40, 50, 0, 0]


def test_a_clear_cuts_the_agent_audio_that_had_not_played() -> None:
    timeline = StereoTimeline(RATE)
    timeline.agent_audio(tone(9, 100))
    timeline.caller_audio(tone(1, 30))
    timeline.clear()  # the caller barged in at sample 30
    timeline.caller_audio(tone(1, 20))
    timeline.agent_audio(pcm(7, 7))  # the next reply starts at once
    timeline.caller_audio(tone(1, 10))
    assert channels(timeline.take())[1] == [9] * 30 + [0] * 20 + [7, 7] + [0] * 8


def test_a_clear_after_everything_played_changes_nothing() -> None:
    timeline = StereoTimeline(RATE)
    timeline.agent_audio(pcm(5, 5))
    timeline.caller_audio(tone(1, 4))
    timeline.clear()
    assert channels(timeline.take())[1] == [5, 5, 0, 0]


def test_lost_caller_frames_are_silence_by_their_timestamps() -> None:
    timeline = StereoTimeline(RATE)
    timeline.caller_audio(tone(1, 160), timestamp_ms=0)
    timeline.caller_audio(tone(2, 160), timestamp_ms=40)  # the frame at 20 ms was lost
    timeline.caller_audio(tone(3, 160), timestamp_ms=MAX_GAP_S * 1000 + 1000)  # a bad timestamp
    left, _ = channels(timeline.take())
    assert left == [1] * 160 + [0] * 160 + [2] * 160 + [3] * 160


@given(
    st.lists(
        st.tuples(st.sampled_from(["caller", "agent", "clear", "take"]), st.integers(0, 50)),
        max_size=40,
    )
)
def test_taking_in_pieces_gives_what_taking_once_does(steps: list[tuple[str, int]]) -> None:
    pieces, whole = StereoTimeline(RATE), StereoTimeline(RATE)
    taken = bytearray()
    for index, (kind, count) in enumerate(steps):
        for timeline in (pieces, whole):
            if kind == "caller":
                timeline.caller_audio(tone(index + 1, count))
            elif kind == "agent":
                timeline.agent_audio(tone(-(index + 1), count))
            elif kind == "clear":
                timeline.clear()
        if kind == "take":
            taken += pieces.take()
    taken += pieces.take()
    assert bytes(taken) == whole.take()
    assert pieces.now == whole.now
