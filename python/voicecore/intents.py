"""Intents: answer frequent requests from example phrases, without a language model.

Pure matching logic, no I/O and no clock: :class:`IntentRouter` takes a caller's final text
and returns a :class:`Match` (or None). :class:`voicecore.providers.router.IntentRouterLLM`
puts it behind the ``LLM`` protocol.

Matching, on text normalized to lowercase words with numbers (digits or words) turned
into digits:

1. **exact**: the text equals one of an intent's examples (numbers compared as a class,
   so "a table for 4" is an exact "a table for 2");
2. **fuzzy**: the best of a character-level similarity (:class:`difflib.SequenceMatcher`)
   and a token-set score, in which each word weighs by how specific it is to one intent
   (words found in every intent's examples count little); the best intent wins if its
   score reaches ``threshold``.

Slots are pulled from the text by kind (``number``, ``people``, ``time``) or by a regular
expression, for the reply template (``"A table for {people} at {time}."``) and the tool
call's arguments.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Literal

from voicecore.errors import ConfigError

__all__ = ["Intent", "IntentRouter", "Match", "Slot", "normalize", "render"]

SlotKind = Literal["number", "people", "time", "text"]

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
_WORD_RE = re.compile(r"[a-z0-9]+(?:[':][a-z0-9]+)*")
_NUMBER_RE = re.compile(r"\b\d+\b")


_CONTRACTIONS = (
    ("can't", "can not"),
    ("won't", "will not"),
    ("n't", " not"),
    ("'re", " are"),
    ("'m", " am"),
    ("'ll", " will"),
    ("'d", " would"),
    ("'ve", " have"),
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ed", "es", "s")


def normalize(text: str) -> str:
    """Lowercase words separated by single spaces; number words become digits.

    >>> normalize("We'd like a table for Twenty-Five, at 7:30!")
    'we would like a table for 25 at 7:30'
    """
    text = text.lower().replace("-", " ").replace("\u2019", "'")
    for short, long in _CONTRACTIONS:
        text = text.replace(short, long)
    words = _WORD_RE.findall(text)
    out: list[str] = []
    for word in words:
        if word in _UNITS and not (word == "oh" and not out):
            value = _UNITS[word]
            if out and out[-1].isdigit() and int(out[-1]) in _TENS.values() and 0 < value < 10:
                out[-1] = str(int(out[-1]) + value)  # twenty five -> 25
                continue
            out.append(str(value))
        elif word in _TENS:
            out.append(str(_TENS[word]))
        else:
            out.append(word)
    return " ".join(out)


def _stem(word: str) -> str:
    """A crude stem, enough to make "reservation", "reserved" and "reserve" one word."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def _tokens(shaped: str) -> frozenset[str]:
    return frozenset(_stem(word) for word in shaped.split())


def _shape(normalized: str) -> str:
    """Numbers replaced by ``#``: the form examples and texts are compared in."""
    return _NUMBER_RE.sub("#", normalized)


@dataclass(frozen=True, slots=True)
class Slot:
    """A value the caller gives with a request.

    Attributes:
        name: The placeholder in the reply template and the tool argument's name.
        kind: ``people`` (a number after "for" or before "people"/"guests"), ``time``
            ("at 7", "7:30", "seven thirty pm", "noon"), ``number`` (the first number) or
            ``text`` (needs ``pattern``).
        pattern: A regular expression whose first group is the value, searched in the
            normalized text (lowercase, numbers as digits); overrides ``kind``.
        prompt: What to ask when the caller did not give it (None: the slot is optional).
    """

    name: str
    kind: SlotKind = "text"
    pattern: str | None = None
    prompt: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ConfigError(f"slot name {self.name!r} must be an identifier")
        if self.kind == "text" and self.pattern is None:
            raise ConfigError(f"slot {self.name!r}: a text slot needs a pattern")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ConfigError(f"slot {self.name!r}: bad pattern: {error}") from error

    def extract(self, normalized: str) -> str | int | None:
        """The slot's value in ``normalized`` text, or None."""
        if self.pattern is not None:
            found = re.search(self.pattern, normalized)
            return found.group(1) if found and found.groups() else (found.group(0) if found else None)
        if self.kind == "people":
            found = _PEOPLE_RE.search(normalized)
            return int(found.group(1) or found.group(2)) if found else None
        if self.kind == "time":
            return _time(normalized)
        found = _NUMBER_RE.search(normalized)
        return int(found.group(0)) if found else None


_PEOPLE_RE = re.compile(r"\bfor (\d+)\b(?! ?(?::|am|pm|o'clock))|\b(\d+) (?:people|persons|guests|of us)\b")
_TIME_RES = (
    re.compile(r"\b(\d{1,2}):(\d{2})\s*(am|pm)?\b"),
    re.compile(r"\bat (\d{1,2})(?: (\d{2}))?(?: (am|pm|o'clock))?\b"),
    re.compile(r"\b(\d{1,2})(?: (\d{2}))? (am|pm|o'clock)\b"),
)


def _time(normalized: str) -> str | None:
    """A time of day as ``H:MM`` (with am/pm when said), or ``12:00`` for noon."""
    if re.search(r"\bnoon\b|\bmidday\b", normalized):
        return "12:00"
    for pattern in _TIME_RES:
        if found := pattern.search(normalized):
            hour, minute, suffix = int(found.group(1)), int(found.group(2) or 0), found.group(3)
            if hour > 23 or minute > 59:
                continue
            tail = f" {suffix}" if suffix in ("am", "pm") else ""
            return f"{hour}:{minute:02d}{tail}"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """Something callers often ask, with how to answer it.

    Attributes:
        name: Identifies the intent (metrics, transcripts, tool call ids).
        examples: Ways callers say it; the more varied the better.
        reply: What to say, a template over the slots (``{people}``) and, when the intent
            calls a tool, ``{result}`` (the tool's answer). None: the tool's answer is said.
        tool: A tool to call with the slots as arguments before replying.
        arguments: Fixed arguments of the tool call (the slots are added to them).
        slots: Values to pull from the caller's words.
        description: How the fallback "I can help with ..." names it (default: the name).
    """

    name: str
    examples: tuple[str, ...]
    reply: str | None = None
    tool: str | None = None
    arguments: Mapping[str, object] = field(default_factory=dict)
    slots: tuple[Slot, ...] = ()
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.examples or not all(normalize(e) for e in self.examples):
            raise ConfigError(f"intent {self.name!r}: give examples with words in them")
        if self.reply is None and self.tool is None:
            raise ConfigError(f"intent {self.name!r}: give a reply, a tool, or both")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.name):
            raise ConfigError(f"intent name {self.name!r}: letters, digits, _ and - only")
        placeholders = set(re.findall(r"{(\w+)}", self.reply or ""))
        unknown = placeholders - {s.name for s in self.slots} - ({"result"} if self.tool else set())
        if unknown:
            raise ConfigError(f"intent {self.name!r}: the reply uses unknown slots {sorted(unknown)}")


@dataclass(frozen=True, slots=True)
class Match:
    """An intent matched to a caller's text.

    Attributes:
        intent: The intent.
        score: 1.0 for an exact match, else the similarity (>= the router's threshold).
        exact: Whether it was an exact match of an example.
        slots: The values found, by slot name.
        missing: Slots with a prompt that the text did not give, in declaration order.
    """

    intent: Intent
    score: float
    exact: bool
    slots: Mapping[str, str | int] = field(default_factory=dict)
    missing: tuple[Slot, ...] = ()


class IntentRouter:
    """Matches caller text to intents (see the module docstring)."""

    def __init__(self, intents: Sequence[Intent], *, threshold: float = 0.65) -> None:
        """Index the intents' examples.

        Raises:
            ConfigError: No intents, duplicate names, or a threshold outside (0, 1].
        """
        if not 0 < threshold <= 1:
            raise ConfigError(f"threshold must be within (0, 1], not {threshold}")
        names = [intent.name for intent in intents]
        if len(set(names)) != len(names):
            raise ConfigError(f"intent names must be unique: {names}")
        self.intents = tuple(intents)
        self.threshold = threshold
        self._exact: dict[str, Intent] = {}
        self._examples: list[tuple[Intent, str, frozenset[str]]] = []
        self._vocabulary: dict[str, frozenset[str]] = {}
        document_frequency: Counter[str] = Counter()
        for intent in self.intents:
            words: set[str] = set()
            for example in intent.examples:
                shaped = _shape(normalize(example))
                self._exact.setdefault(shaped, intent)
                tokens = _tokens(shaped)
                self._examples.append((intent, shaped, tokens))
                words |= tokens
            self._vocabulary[intent.name] = frozenset(words)
            document_frequency.update(words)
        count = max(len(self.intents), 1)
        # Smoothed inverse document frequency over intents: a word every intent uses weighs
        # little, a word unique to one intent (or unknown to all) weighs most.
        self._weights = {w: math.log(1 + count / n) for w, n in document_frequency.items()}
        self._unknown_weight = math.log(1 + count)

    def match(self, text: str) -> Match | None:
        """The intent ``text`` asks for, or None when no intent scores ``threshold``."""
        normalized = normalize(text)
        shaped = _shape(normalized)
        if not shaped:
            return None
        if (intent := self._exact.get(shaped)) is not None:
            return self._match(intent, 1.0, True, normalized)
        scores = self.scores(shaped)
        name, score = max(scores.items(), key=lambda item: item[1])
        if score < self.threshold:
            return None
        intent = next(i for i in self.intents if i.name == name)
        return self._match(intent, score, False, normalized)

    def scores(self, text: str) -> dict[str, float]:
        """Each intent's similarity to ``text`` (0..1; see the module docstring)."""
        shaped = _shape(normalize(text))
        tokens = _tokens(shaped)
        weight, unknown = self._weights.get, self._unknown_weight
        mass = sum(weight(w, unknown) for w in tokens)
        best: dict[str, float] = {}
        for intent, example, example_tokens in self._examples:
            shared = sum(weight(w, unknown) for w in tokens & example_tokens)
            total = mass + sum(weight(w, unknown) for w in example_tokens)
            dice = 2 * shared / total if total else 0.0
            # Share of the caller's words (by weight) this intent's examples use at all.
            covered = sum(weight(w, unknown) for w in tokens & self._vocabulary[intent.name])
            token_score = (dice + covered / mass) / 2 if mass else 0.0
            score = max(token_score, best.get(intent.name, 0.0))
            matcher = SequenceMatcher(None, shaped, example, autojunk=False)
            if matcher.real_quick_ratio() > score and matcher.quick_ratio() > score:
                score = max(score, matcher.ratio())
            best[intent.name] = score
        return best

    @staticmethod
    def _match(intent: Intent, score: float, exact: bool, normalized: str) -> Match:
        slots: dict[str, str | int] = {}
        for slot in intent.slots:
            if (value := slot.extract(normalized)) is not None:
                slots[slot.name] = value
        missing = tuple(s for s in intent.slots if s.prompt is not None and s.name not in slots)
        return Match(intent, score, exact, slots, missing)

    def capabilities(self) -> str:
        """A polite sentence listing what the intents can do."""
        things = [intent.description or intent.name.replace("_", " ") for intent in self.intents]
        if not things:
            return "Sorry, I can't help with that."
        listed = things[0] if len(things) == 1 else f"{', '.join(things[:-1])} or {things[-1]}"
        return f"Sorry, I didn't catch that. I can help with {listed}."


def render(template: str, values: Mapping[str, object]) -> str:
    """``template`` with ``{name}`` replaced by ``values`` (unknown names left empty)."""
    return re.sub(r"{(\w+)}", lambda m: str(values.get(m.group(1), "")), template).strip()
