"""Smoke test of the offline STT benchmark: one sentence, one voice, every condition."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pocketsphinx")
if shutil.which("espeak-ng") is None:
    pytest.skip("the benchmark speaks with the espeak-ng program", allow_module_level=True)

from benches.local_stt_wer import PHRASES, SENTENCES, VOICES, evaluate, phone_line, speak, table, word_errors


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
    assert set(SENTENCES[0].split()) <= {w for p in PHRASES for w in p.split()}
    scores = evaluate(SENTENCES[:1], VOICES[:1])
    assert set(scores) == {(m, line) for m in ("open", "phrases") for line in ("clean", "phone")}
    for score in scores.values():
        assert score.words == len(SENTENCES[0].split())
        assert score.audio_s > 0.5
        assert 0 <= score.wer <= 2
    assert table(scores).count("\n| ") == 4
