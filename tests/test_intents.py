"""Intent matching: normalization, exact and fuzzy matches, slots, and the fallback sentence."""

from __future__ import annotations

import pytest

from voicecore.errors import ConfigError
from voicecore.intents import Intent, IntentRouter, Slot, normalize, render

HOURS = Intent(
    name="opening_hours",
    examples=("what are your opening hours", "when do you open", "what time do you close"),
    reply="We open at noon.",
    description="opening hours",
)
BOOK = Intent(
    name="book_table",
    examples=("i would like to book a table", "a table for two at seven please", "can i make a reservation"),
    tool="book_table",
    reply="{result}",
    slots=(
        Slot("people", "people", prompt="For how many people?"),
        Slot("time", "time", prompt="At what time?"),
    ),
    description="booking a table",
)
HUMAN = Intent(
    name="human",
    examples=("can i speak to a person", "put me through to a human"),
    tool="transfer_call",
    arguments={"to": "+15550100"},
    reply="Putting you through.",
)


@pytest.fixture
def router() -> IntentRouter:
    return IntentRouter([HOURS, BOOK, HUMAN])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We'd like a table for Twenty-Five, at 7:30!", "we would like a table for 25 at 7:30"),
        ("  WHEN do you   open? ", "when do you open"),
        ("seven thirty", "7 30"),
        ("I can't", "i can not"),
        ("", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_an_example_said_differently_is_an_exact_match(router: IntentRouter) -> None:
    match = router.match("When do you OPEN?")
    assert match is not None
    assert match.intent is HOURS
    assert match.exact
    assert match.score == 1.0


def test_numbers_match_as_a_class_and_fill_slots(router: IntentRouter) -> None:
    match = router.match("A table for four at eight please.")
    assert match is not None
    assert match.intent is BOOK
    assert match.exact
    assert match.slots == {"people": 4, "time": "8:00"}
    assert match.missing == ()


def test_a_paraphrase_is_a_fuzzy_match(router: IntentRouter) -> None:
    match = router.match("I'd like to reserve a table for six people at 7:30 pm")
    assert match is not None
    assert match.intent is BOOK
    assert not match.exact
    assert router.threshold <= match.score < 1
    assert match.slots == {"people": 6, "time": "7:30 pm"}


def test_missing_slots_with_prompts_are_listed_in_order(router: IntentRouter) -> None:
    match = router.match("I would like to book a table")
    assert match is not None
    assert [slot.name for slot in match.missing] == ["people", "time"]


@pytest.mark.parametrize("text", ["do you deliver", "what's the weather like", "", "?!"])
def test_unrelated_text_matches_nothing(router: IntentRouter, text: str) -> None:
    assert router.match(text) is None


def test_the_threshold_decides_fuzzy_matches() -> None:
    text = "what are the hours"
    assert IntentRouter([HOURS, BOOK], threshold=0.5).match(text) is not None
    assert IntentRouter([HOURS, BOOK], threshold=0.99).match(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at 7", "7:00"),
        ("7:45 am", "7:45 am"),
        ("seven thirty pm", "7:30 pm"),
        ("at noon", "12:00"),
        ("hi", None),
    ],
)
def test_time_slots(text: str, expected: str | None) -> None:
    assert Slot("time", "time").extract(normalize(text)) == expected


def test_pattern_and_number_slots() -> None:
    assert Slot("name", pattern=r"my name is (\w+)").extract("my name is ada") == "ada"
    assert Slot("count", "number").extract("about 12 of them") == 12
    assert Slot("people", "people").extract("for 3 at 7") == 3
    assert Slot("people", "people").extract("for 7:30") is None


def test_capabilities_list_the_intents(router: IntentRouter) -> None:
    assert router.capabilities() == (
        "Sorry, I didn't catch that. I can help with opening hours, booking a table or human."
    )


def test_render_fills_known_names_and_blanks_others() -> None:
    assert render("A table for {people} at {time}.", {"people": 2}) == "A table for 2 at ."


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "examples": ()}, "examples"),
        ({"name": "x", "examples": ("hi",)}, "reply, a tool"),
        ({"name": "bad name", "examples": ("hi",), "reply": "yo"}, "letters"),
        ({"name": "x", "examples": ("hi",), "reply": "{nope}"}, "unknown slots"),
    ],
)
def test_bad_intents_say_why(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Intent(**kwargs)  # type: ignore[arg-type]


def test_bad_routers_and_slots_say_why() -> None:
    with pytest.raises(ConfigError, match="unique"):
        IntentRouter([HOURS, HOURS])
    with pytest.raises(ConfigError, match="threshold"):
        IntentRouter([HOURS], threshold=0)
    with pytest.raises(ConfigError, match="pattern"):
        Slot("free")
    with pytest.raises(ConfigError, match="bad pattern"):
        Slot("x", pattern="(")
