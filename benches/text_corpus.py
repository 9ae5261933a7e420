"""Deterministic text inputs for the sentence-splitter tests and benchmarks.

* :func:`golden_cases`: pySBD's 48 English "Golden Rules", read from the peer-test folder next
  to the repository (``../shared/peer-tests/pysbd_golden_rules_en.json``); never copied in.
* :func:`random_pieces`: a text cut into 1-6 character tokens with a fixed seed.
* :func:`llm_tokens`: text cut the way an LLM streams it (a word with its leading space, or a
  punctuation run, per token: about 4 characters, like BPE tokens of English).
* :data:`REPLIES`: assistant-style replies (abbreviations, numbers, a list, markdown) that
  make the benchmark's token stream; :data:`OPENERS`: replies with a long first sentence.
* :func:`release_lags`: how many characters past each sentence's end a splitter needed.
"""

from __future__ import annotations

import json
import random
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

GOLDEN_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "peer-tests" / "pysbd_golden_rules_en.json"
)
GOLDEN_MISSING = f"pySBD golden rules not found at {GOLDEN_PATH} (peer-test data lives outside the repo)"


@dataclass(frozen=True)
class GoldenCase:
    """One golden rule: the text and pySBD's expected sentences."""

    id: str
    text: str
    sentences: list[str]
    upstream_xfail: bool


def golden_cases() -> list[GoldenCase] | None:
    """The 48 English golden rules, or ``None`` when the peer-test data is absent."""
    if not GOLDEN_PATH.is_file():
        return None
    data = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
    return [
        GoldenCase(c["id"], c["text"], list(c["sentences"]), bool(c["upstream_xfail"])) for c in data["cases"]
    ]


def random_pieces(text: str, seed: int | str, low: int = 1, high: int = 6) -> list[str]:
    """``text`` cut into tokens of ``low``..``high`` characters, reproducibly."""
    rng = random.Random(seed)
    pieces = []
    i = 0
    while i < len(text):
        n = rng.randint(low, high)
        pieces.append(text[i : i + n])
        i += n
    return pieces


_TOKEN = re.compile(r"\s*[^\W_]+|\s*[^\w\s]+|\s*_+|\s+")


def llm_tokens(text: str) -> list[str]:
    """``text`` as an LLM streams it: a word or a punctuation run with its leading whitespace."""
    tokens = _TOKEN.findall(text)
    assert "".join(tokens) == text
    return tokens


REPLIES = [
    "Sure! Dr. Smith's clinic opens at 9:30 a.m. on weekdays. The visit costs $45.50, "
    "i.e. about 20% less than last year. You can book online at https://clinic.example.com/book "
    "or e-mail front.desk@clinic.example.com. Would you like me to do that for you?",
    "Here is what I found:\n\n1. The U.S. version (v2.1.3) ships on Jan. 5.\n"
    "2. The E.U. one follows in March.\n3. Prices start at €19.99.\n\n"
    "Let me know if you need anything else... I'm happy to help!",
    "Well, that depends. Mr. and Mrs. Lee booked the 7 p.m. slot, vs. the 8 p.m. one you "
    "asked about. J. R. R. Tolkien fans meet on St. Patrick's Day, etc. Shall I check?",
    "## Summary\n- Your order **#4512** shipped today.\n- It should arrive by Friday.\n\n"
    "The tracking number is 1Z999AA10123456784. Is there anything else I can help with?",
    "Absolutely. First, preheat the oven to 180 °C. Then mix 2.5 cups of flour with 1 cup of "
    "sugar; add 3 eggs, one at a time. Bake for 35-40 minutes, until a toothpick comes out clean. "
    "Enjoy!",
]

# Replies whose first sentence is long, as LLM answers often open: where first-chunk mode
# (release the first clause at a comma) can save time to first audio.
OPENERS = [
    "Based on what you have told me so far, the best option would be the annual plan, which "
    "saves you about 15% compared with paying monthly. Want me to switch you over?",
    "If you can wait until next Tuesday, I can get you a window seat on the 8:40 a.m. flight, "
    "and the fare drops to $212. Should I hold it?",
    "Thanks for waiting, I have checked your account and everything looks fine on our side. "
    "The delay was caused by your bank.",
    "Unfortunately, the store on Main St. closes at 6 p.m. today, so you would need to go "
    "tomorrow morning. It opens at 9.",
    "To reset your password, open the app, tap Settings, then Security, and choose Reset "
    "Password. You will get an e-mail within a minute.",
    "Good question: the warranty covers parts and labour for two years, but it does not cover "
    "accidental damage. You can add that for $4.99 a month.",
]


def release_lags(
    push: Callable[[str], list[str]], flush: Callable[[], list[str]], text: str
) -> tuple[list[str], list[int]]:
    """Feeds ``text`` one character at a time; returns the sentences and, for every sentence
    released before the end of the text, how many characters were fed past its last character.
    """
    sentences: list[str] = []
    lags: list[int] = []
    cursor = 0
    for fed, ch in enumerate(text, start=1):
        for sentence in push(ch):
            start = text.index(sentence, cursor)
            cursor = start + len(sentence)
            sentences.append(sentence)
            lags.append(fed - cursor)
    sentences += flush()
    return sentences, lags


def median_lag(lags: Iterable[int]) -> float:
    """The median of ``lags``."""
    return float(statistics.median(list(lags)))
