"""Smoke test of the offline STT benchmark: one sentence, one voice, every condition."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pocketsphinx")
if shutil.which("espeak-ng") is None:
    pytest.skip("the benchmark speaks with the espeak-ng program", allow_module_level=True)

from benches.local_stt_wer import SENTENCES, VOICES, evaluate, phone_line, phrases, speak, table, word_errors
from voicecore.intents import normalize


def test_word_errors_count_edits_against_the_reference() -> None:
    assert word_errors("book a table for two", "book a table for two") == (0, 5)
    assert word_errors("book a table for two", "book the table two please") == (3, 5)
    assert word_errors("open", "") == (1, 1)


def test_the_phone_line_keeps_the_length_and_the_speech() -> None:
    clean = speak("hello", "en-us")
    phone = phone_line(clean)
    assert abs(len(phone) - len(clean)) <= 640  # the two resamplers' tails: a few ms
    assert phone != clean


def test_one_sentence_is_scored_in_every_condition() -> None:
    assert "what are your opening hours" in phrases()
    text, intent = SENTENCES[0]
    assert intent is not None
    scores = evaluate(SENTENCES[:1], VOICES[:1])
    assert set(scores) == {(m, line) for m in ("open", "ngram", "grammar") for line in ("clean", "phone")}
    for score in scores.values():
        assert score.words == len(normalize(text).split())
        assert score.sentences == 1
        assert score.audio_s > 0.5
        assert 0 <= score.wer <= 2
    assert table(scores).count("\n| ") == 6
