"""Playback truth: marks move the cursor; a barge-in keeps exactly the words that played."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.errors import ProtocolError
from voicecore.sansio.playback import ItemPlayback, PlaybackLedger, Word, heard_part


def test_marks_move_the_cursor_in_order() -> None:
    ledger = PlaybackLedger()
    first = ledger.append(1, "It is sunny.", 900.0, now=0.0)
    second = ledger.append(1, "Highs of twenty.", 1200.0, now=0.1)
    assert not ledger.idle
    assert ledger.queued_ms == 2100.0
    assert ledger.on_mark(first, now=0.9).text == "It is sunny."
    assert ledger.heard(1) == "It is sunny."
    ledger.on_mark(second, now=2.1)
    assert ledger.idle
    assert ledger.heard(1) == "It is sunny. Highs of twenty."


def test_a_later_mark_implies_the_earlier_ones_played() -> None:
    ledger = PlaybackLedger()
    ledger.append(1, "One.", 300.0, now=0.0)
    last = ledger.append(1, "Two.", 300.0, now=0.0)
    ledger.on_mark(last, now=0.6)
    assert ledger.heard(1) == "One. Two."
    assert ledger.idle


def test_unknown_and_repeated_marks_are_protocol_errors() -> None:
    ledger = PlaybackLedger()
    mark = ledger.append(1, "Hi.", 200.0, now=0.0)
    with pytest.raises(ProtocolError, match="nope") as info:
        ledger.on_mark("nope", now=0.1)
    assert info.value.kind == "mark"
    ledger.on_mark(mark, now=0.2)
    with pytest.raises(ProtocolError):
        ledger.on_mark(mark, now=0.3)


def test_cut_uses_word_timestamps_for_the_sentence_playing() -> None:
    ledger = PlaybackLedger()
    first = ledger.append(1, "Sure.", 400.0, now=0.0)
    words = (
        Word("Your", 200.0),
        Word("flight", 450.0),
        Word("leaves", 800.0),
        Word("at", 900.0),
        Word("nine.", 1300.0),
    )
    ledger.append(1, "Your flight leaves at nine.", 1300.0, now=0.0, words=words)
    ledger.append(1, "Anything else?", 800.0, now=0.0)
    ledger.on_mark(first, now=0.4)
    cut = ledger.cut(now=0.4 + 0.85)  # 850 ms into the second sentence
    assert cut.heard == {1: "Sure. Your flight leaves"}
    assert cut.unheard == {1: "Your flight leaves at nine. Anything else?"}
    assert cut.dropped_ms == pytest.approx((1300.0 - 850.0) + 800.0)
    assert ledger.idle


def test_cut_without_timestamps_keeps_whole_words_in_proportion() -> None:
    ledger = PlaybackLedger()
    ledger.append(2, "abcd efgh ijkl mnop", 1900.0, now=10.0)  # 19 characters, 100 ms each
    assert ledger.cut(now=10.0 + 1.05).heard == {2: "abcd efgh"}  # 10 chars: "abcd efgh " ends a word


@pytest.mark.parametrize(
    ("elapsed", "heard"),
    [(0.0, ""), (0.3, ""), (0.45, "abcd"), (0.95, "abcd efgh"), (5.0, "abcd efgh ijkl mnop")],
)
def test_partial_words_are_never_kept(elapsed: float, heard: str) -> None:
    ledger = PlaybackLedger()
    ledger.append(2, "abcd efgh ijkl mnop", 1900.0, now=0.0)
    assert ledger.cut(now=elapsed).heard.get(2, "") == heard


def test_playback_of_a_segment_starts_when_the_one_before_it_is_echoed() -> None:
    ledger = PlaybackLedger()
    first = ledger.append(1, "One two three.", 1000.0, now=0.0)
    ledger.append(1, "Four five six.", 1000.0, now=0.0)
    ledger.on_mark(first, now=3.0)  # the first sentence played late (jitter buffer)
    assert ledger.cut(now=3.1).heard == {1: "One two three."}


def test_cut_reports_every_turn_it_touches() -> None:
    ledger = PlaybackLedger()
    ledger.append(0, "One moment.", 600.0, now=0.0)  # a filler
    ledger.append(3, "Found it.", 600.0, now=0.0)
    cut = ledger.cut(now=1.0)
    assert cut.heard == {0: "One moment."}
    assert cut.unheard == {0: "One moment.", 3: "Found it."}


@given(
    st.lists(
        st.tuples(st.text(alphabet="ab ", min_size=1, max_size=30), st.floats(50.0, 3000.0)),
        min_size=1,
        max_size=6,
    ),
    st.floats(0.0, 20.0),
)
def test_heard_text_is_always_a_word_prefix_of_what_was_sent(
    segments: list[tuple[str, float]], elapsed: float
) -> None:
    ledger = PlaybackLedger()
    for text, duration in segments:
        ledger.append(1, text, duration, now=0.0)
    cut = ledger.cut(now=elapsed)
    sent = " ".join(text for text, _ in segments).split()
    heard = cut.heard.get(1, "").split()
    assert heard == sent[: len(heard)]
    assert 0.0 <= cut.dropped_ms <= sum(d for _, d in segments) + 1e-6


# --- ItemPlayback: a speech-to-speech model's audio, marked piece by piece ----------------------


def test_item_marks_say_how_much_of_each_item_played() -> None:
    playback = ItemPlayback()
    first = playback.sent("a", 100.0, now=0.0)
    second = playback.sent("a", 100.0, now=0.0)
    third = playback.sent("b", 50.0, now=0.0)
    assert not playback.idle
    assert playback.on_mark(first, now=0.1) == "a"
    assert playback.played_ms("a") == 100.0
    assert playback.pending("a")
    assert playback.on_mark(third, now=0.25) == "b"  # a later echo covers the pieces before it
    assert playback.played_ms("a") == 200.0
    assert playback.played_ms("b") == 50.0
    assert playback.idle
    assert playback.sent_ms("a") == 200.0
    with pytest.raises(ProtocolError):
        playback.on_mark(second, now=0.3)


def test_an_item_cut_is_heard_up_to_the_time_since_the_last_echo() -> None:
    playback = ItemPlayback()
    first = playback.sent("a", 200.0, now=0.0)
    playback.sent("a", 200.0, now=0.05)
    playback.sent("b", 300.0, now=0.05)
    playback.on_mark(first, now=0.2)
    cut = playback.cut(now=0.35)  # 150 ms into a's second piece
    assert cut.played_ms == {"a": pytest.approx(350.0), "b": 0.0}
    assert cut.dropped_ms == pytest.approx(50.0 + 300.0)
    assert playback.idle


def test_a_cut_while_idle_drops_nothing() -> None:
    cut = ItemPlayback().cut(now=1.0)
    assert cut.played_ms == {}
    assert cut.dropped_ms == 0.0


@given(st.lists(st.floats(1.0, 500.0), min_size=1, max_size=20), st.floats(0.0, 20.0))
def test_a_cut_accounts_for_every_ms_sent(pieces: list[float], at: float) -> None:
    playback = ItemPlayback()
    for index, ms in enumerate(pieces):
        playback.sent(f"item{index % 3}", ms, now=0.0)
    cut = playback.cut(now=at)
    assert sum(cut.played_ms.values()) + cut.dropped_ms == pytest.approx(sum(pieces))
    assert sum(cut.played_ms.values()) <= min(at * 1000.0, pieces[0]) + 1e-6


def test_heard_part_keeps_whole_words_in_proportion() -> None:
    text = "one two three four"
    assert heard_part(text, 1000.0, 0.0) == ""
    assert heard_part(text, 1000.0, 1000.0) == text
    assert heard_part(text, 1000.0, 500.0) == "one two"
    assert heard_part(text, 1000.0, 350.0) == "one"  # "two" was still being said
