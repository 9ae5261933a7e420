from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.redact import luhn_valid, redact, redact_obj

# (text, redacted)
POSITIVES = [
    # cards: grouped, dashed, bare, spoken digit by digit, 13 to 19 digits
    ("card 4111 1111 1111 1111 please", "card [CARD] please"),
    ("4111-1111-1111-1111", "[CARD]"),
    ("my card is 5500005555555559.", "my card is [CARD]."),
    ("amex 3782 822463 10005", "amex [CARD]"),
    ("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "[CARD]"),
    ("4222222222222", "[CARD]"),  # 13 digits
    ("6011 0000 0000 0000 001", "[CARD]"),  # 19 digits
    # a card followed by a year: the year is not part of the card
    ("4111 1111 1111 1111 2025", "[CARD] 2025"),
    ("ref 12 4111111111111111", "ref 12 [CARD]"),
    # SSNs
    ("ssn 123-45-6789", "ssn [SSN]"),
    ("ssn 123 45 6789", "ssn [SSN]"),
    ("ssn 123456789!", "ssn [SSN]!"),
    ("it's 078-05-1120, ok", "it's [SSN], ok"),
    # phones, E.164 and national
    ("+14155552671", "[PHONE]"),
    ("call +1 415 555 2671 now", "call [PHONE] now"),
    ("+1-415-555-2671", "[PHONE]"),
    ("+1 (415) 555-2671", "[PHONE]"),
    ("+44 20 7946 0958", "[PHONE]"),
    ("+44 (0)20 7946 0958", "[PHONE]"),
    ("(415) 555-2671", "[PHONE]"),
    ("(415)555-2671", "[PHONE]"),
    ("415-555-2671", "[PHONE]"),
    ("415.555.2671.", "[PHONE]."),
    ("415 555 2671", "[PHONE]"),
    ("4155552671", "[PHONE]"),
    ("1-800-555-0199", "[PHONE]"),
    ("020 7946 0958", "[PHONE]"),
    ("07700 900123", "[PHONE]"),
    ("01 23 45 67 89", "[PHONE]"),
    ("030.1234.5678", "[PHONE]"),
    # e-mail
    ("mail jane.doe+vc@example.co.uk today", "mail [EMAIL] today"),
    ("J_O@sub.example.com", "[EMAIL]"),
    # several kinds at once
    (
        "Jane (jane@x.io, 415-555-2671) paid with 4111111111111111, SSN 123-45-6789.",
        "Jane ([EMAIL], [PHONE]) paid with [CARD], SSN [SSN].",
    ),
]

NEGATIVES = [
    "order 1234 5678 9012 3456",  # card-shaped, fails Luhn
    "order 4111111111111112",  # one digit off
    "411111111111",  # 12 digits
    "12345678901234567890",  # 20 digits
    "666-12-3456",  # invalid SSN area
    "000-12-3456",
    "912-34-5678",
    "123-00-4567",  # invalid group
    "123-45-0000",  # invalid serial
    "12-345-6789",  # wrong grouping
    "123-45-67890",
    "on 2024-01-15",
    "on 01/15/2024",
    "on 15.01.2024",
    "2024-01-15 10:30",
    "at 10:30:45",
    "$1,299.99",
    "EUR 1.234.567,89",
    "v3.11.7",
    "10.0.19041.1234",
    "192.168.100.200",
    "room 42",
    "code 2024",
    "12345",
    "pin 1234 and 5678",
    "007",
    "0.123456789",
    "1700000000.5",
    "+12345",  # too short for E.164
    "(123) 456-7890",  # NANP area codes never start with 1
    "123-456-7890",
    "415-155-2671",  # nor exchange codes
    "user at example dot com",
    "@handle",
    "a@b",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_redacts(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_near_misses_alone(text: str) -> None:
    assert redact(text) == text


@given(st.text(alphabet=st.characters(blacklist_categories=["Nd"], blacklist_characters="@")))
def test_text_without_digits_or_at_is_unchanged(text: str) -> None:
    assert redact(text) == text


@given(st.text(alphabet="0123456789 -.()+@abc"))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_non_ascii_digits_are_not_read_as_numbers() -> None:
    arabic = "٤١١١١١١١١١١١١١١١"  # Arabic-Indic digits
    assert redact(arabic) == arabic


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("0", True),
        ("1", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_redact_obj_walks_nested_values() -> None:
    value = {
        "text": "call 415-555-2671",
        "items": ["a@b.co", ("123-45-6789", 7)],
        "card": 4111111111111111,
        "count": 3,
        "ok": True,
        "ratio": 0.5,
        "none": None,
        "raw": b"4111111111111111",
        "415-555-2671": "key kept",
    }
    assert redact_obj(value) == {
        "text": "call [PHONE]",
        "items": ["[EMAIL]", ("[SSN]", 7)],
        "card": "[CARD]",
        "count": 3,
        "ok": True,
        "ratio": 0.5,
        "none": None,
        "raw": b"4111111111111111",
        "415-555-2671": "key kept",
    }


def test_redact_obj_does_not_modify_its_input() -> None:
    value = {"a": ["jane@example.com"]}
    redact_obj(value)
    assert value == {"a": ["jane@example.com"]}


def test_voicecore_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    from voicecore.redact import install_log_redaction

    install_log_redaction()
    try:
        with caplog.at_level(logging.WARNING, logger="voicecore.test"):
            logging.getLogger("voicecore.test").warning("tool failed for %s", "card 4111 1111 1111 1111")
        assert "4111" not in caplog.text
        assert "[CARD]" in caplog.text
    finally:
        install_log_redaction(enabled=False)
    with caplog.at_level(logging.WARNING, logger="voicecore.test"):
        logging.getLogger("voicecore.test").warning("call %s", "+1 415 555 0123")
    assert "555 0123" in caplog.text  # switched off: left as it is


@pytest.mark.parametrize(
    "identifier",
    ["MZ0123456789abcdef0123456789abcdef", "CA4155550123", "order_4111111111111111", "id4111111111111111x"],
)
def test_digit_runs_inside_identifiers_are_not_pii(identifier: str) -> None:
    assert redact(f"stream {identifier} started") == f"stream {identifier} started"
