from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.text import SentenceSplitter, speakable


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "**Bold** and __strong__ and *it* and _em_ and ~~gone~~.",
            "Bold and strong and it and em and gone.",
        ),
        ("***Both*** at once", "Both at once"),
        ("# Title", "Title"),
        ("### Deep heading ###", "Deep heading"),
        ("- one\n- two\n* three\n+ four\n\u2022 five", "one two three four five"),
        ("  - indented bullet", "indented bullet"),
        ("1. First\n2. Second", "1. First 2. Second"),
        ("Read [the guide](https://example.com/guide) first.", "Read the guide first."),
        ("A ![diagram](img/d.png) here", "A diagram here"),
        ("Type `ls -la` then ``a ` b``.", "Type ls -la then a ` b."),
        ("Run this:\n```bash\nrm -rf /tmp/x\necho done\n```\nThen wait.", "Run this: Then wait."),
        ("~~~\ncode\n~~~\nafter", "after"),
        ("Unclosed fence\n```\nsecret code", "Unclosed fence"),
        ("Above\n\n***\n\nBelow", "Above Below"),
        ("Nice work \U0001f389\U0001f44d\U0001f3fd!", "Nice work !"),
        (
            "I \u2764\ufe0f it \U0001f1fa\U0001f1f8 and \U0001f468\u200d\U0001f469\u200d\U0001f467 too",
            "I it and too",
        ),
        ("Press 1\ufe0f\u20e3 now", "Press 1 now"),
        ("  spaced \t out\n\nlines  ", "spaced out lines"),
        ("## **Summary**\n- Your order **#4512** shipped.", "Summary Your order #4512 shipped."),
    ],
)
def test_removes_markup_code_and_emoji(text: str, expected: str) -> None:
    assert speakable(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2 * 3 * 4 = 24",
        "snake_case_name stays",
        "5*3 is fifteen",
        "Dr. Smith paid $4.50 (10%) at 10:30 a.m.!",
        "Copyright \u00a9 2024 Acme\u2122, \u00abquoted\u00bb \u2014 done\u2026",
        "C# and F# are languages; #hashtag too",
        "a - b, c -- d",
        "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e\u0964",
        "\u4f60\u597d\uff0c\u4e16\u754c\u3002",
        "\u0915\u094d\u200d\u0937 joins with a zero-width joiner",
        "[not a link] and (parens)",
        "unclosed `tick and [bracket and **star",
    ],
)
def test_changes_nothing_else(text: str) -> None:
    assert speakable(text) == text


def test_sentences_from_the_splitter_become_speakable() -> None:
    reply = "## Plan\n- **Call** Dr. Lee \U0001f4de\n- Book [the room](https://x.org)\n\nThat's all!"
    s = SentenceSplitter()
    sentences = s.push(reply) + s.flush()
    assert [speakable(x) for x in sentences] == ["Plan", "Call Dr. Lee", "Book the room", "That's all!"]


def test_code_blocks_are_split_whole_and_spoken_as_nothing() -> None:
    reply = "Run this:\n```bash\necho 'Done. Next'\n```\nThat's it."
    s = SentenceSplitter(max_chars=10)
    spoken = [speakable(x) for x in s.push(reply) + s.flush()]
    assert spoken == ["Run this:", "", "That's it."]


@given(st.text(max_size=300))
def test_output_is_trimmed_single_spaced_and_never_longer(text: str) -> None:
    out = speakable(text)
    assert out == out.strip()
    assert "  " not in out
    assert not any(c in out for c in "\n\t\r")
    assert len(out) <= len(text)


@given(st.text(alphabet=st.characters(categories=["L", "Nd"]) | st.sampled_from(" ,.?!;:'"), max_size=200))
def test_plain_prose_is_unchanged_up_to_whitespace(text: str) -> None:
    assert speakable(text) == " ".join(text.split())
