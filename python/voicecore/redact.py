"""PII redaction for logs and the audit trail.

:func:`redact` replaces personal data in free text with typed placeholders:

==============  ============  ==================================================================
placeholder     what          how it is recognised
==============  ============  ==================================================================
``[EMAIL]``     e-mail        ``local@domain.tld``
``[PHONE]``     phone number  E.164 with a leading ``+`` (spaces, dots, dashes, parentheses
                              allowed, 7-15 digits); North American national numbers
                              (``(415) 555-2671``, ``415.555.2671``, ``1-800-555-0199``,
                              ``4155552671``); trunk-prefixed national numbers of 10-11 digits
                              (``020 7946 0958``, ``01 23 45 67 89``)
``[CARD]``      card number   13-19 digits, optionally grouped with single spaces or dashes,
                              that pass the Luhn check (so most order numbers are left alone)
``[SSN]``       US SSN        ``123-45-6789``, ``123 45 6789``, ``123456789``; never an area of
                              000, 666 or 900-999, a group of 00 or a serial of 0000
==============  ============  ==================================================================

Numbers are only taken whole: a phone number or SSN is never carved out of a longer run of
digit groups, so prices, dates, times, version numbers and short numbers survive. Text with
neither a digit nor ``@`` is returned unchanged. The patterns are compiled once at import and
are safe to use from any thread.

:func:`redact_obj` applies :func:`redact` to every string (and integer) inside nested dicts,
lists and tuples, which is how event payloads are cleaned before they are written anywhere.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CARD",
    "EMAIL",
    "PHONE",
    "SSN",
    "install_log_redaction",
    "luhn_valid",
    "redact",
    "redact_obj",
]

CARD = "[CARD]"
SSN = "[SSN]"
PHONE = "[PHONE]"
EMAIL = "[EMAIL]"

# Not preceded by a word character (a digit run glued to letters is an id such as a Twilio
# sid, not a number someone said), nor by a digit and one separator: the match starts a run.
_RUN_START = r"(?<!\w)(?<!\d[ .\-])"
# Not followed by one separator and a digit, nor by a word character: the match ends a run.
_RUN_END = r"(?![ .\-]?\d)(?!\w)"

# ASCII only: \d must not match other scripts' digits, which luhn_valid cannot read.
_A = re.ASCII

_ANY_DIGIT_RE = re.compile(r"\d", _A)

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", _A)

# E.164: a '+', a non-zero country code digit, then 6-14 more digits, each may be preceded
# by up to two separators ("+1 (415) 555-2671", "+44 20 7946 0958").
_INTL_PHONE_RE = re.compile(r"(?<![\w+])\+[1-9](?:[ .\-()]{0,2}\d){6,14}" + _RUN_END, _A)

# A run of digit groups joined by single spaces or dashes; cards are found inside it.
_DIGIT_RUN_RE = re.compile(r"(?<!\w)\d+(?:[ \-]\d+)*(?!\w)", _A)
_GROUP_SPLIT_RE = re.compile(r"[ \-]")

_SSN_RE = re.compile(
    _RUN_START + r"(?!000|666|9\d\d)\d{3}(?P<sep>[ \-]?)(?!00)\d{2}(?P=sep)(?!0000)\d{4}" + _RUN_END, _A
)

_NATIONAL_PHONE_RE = re.compile(
    _RUN_START
    + r"(?:"
    # North American: optional trunk 1, area and exchange codes never start with 0 or 1.
    + r"(?:1[ .\-]?)?(?:\([2-9]\d\d\)[ .\-]?|[2-9]\d\d[ .\-]?)[2-9]\d\d[ .\-]?\d{4}"
    + r"|"
    # Trunk prefix 0 (most of Europe and elsewhere): 0, area code, then groups of digits.
    + r"(?:\(0\d{1,4}\)|0\d{1,4})(?:[ .\-]?\d{2,8}){1,4}"
    + r")"
    + _RUN_END,
    _A,
)


def luhn_valid(digits: str) -> bool:
    """Whether a string of decimal digits passes the Luhn (mod 10) check.

    Args:
        digits: ASCII digits only, most significant first.

    Returns:
        True when the checksum is a multiple of 10.
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _redact_cards(match: re.Match[str]) -> str:
    run = match.group()
    groups = _GROUP_SPLIT_RE.split(run)
    seps = _GROUP_SPLIT_RE.findall(run)
    # Find windows of whole consecutive groups holding 13-19 digits that pass Luhn, longest
    # first from the left, so "4111 1111 1111 1111 2025" keeps the trailing year.
    out: list[str] = []
    i = 0
    while i < len(groups):
        best = 0
        digits = ""
        for j in range(i, len(groups)):
            digits += groups[j]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                best = j + 1
        if best:
            out.append(CARD)
            i = best
        else:
            out.append(groups[i])
            i += 1
        if i < len(groups):
            out.append(seps[i - 1])
    return "".join(out)


def _redact_national_phone(match: re.Match[str]) -> str:
    text = match.group()
    if text.startswith(("0", "(0")):
        count = sum(ch.isdigit() for ch in text)
        if not 10 <= count <= 11:
            return text
    return PHONE


def redact(text: str) -> str:
    """Replace card numbers, SSNs, phone numbers and e-mail addresses with placeholders.

    Args:
        text: Any text, e.g. a transcript, a tool argument or a log message.

    Returns:
        The text with each recognised item replaced by ``[CARD]``, ``[SSN]``, ``[PHONE]`` or
        ``[EMAIL]``; the same string when nothing was found.
    """
    has_at = "@" in text
    if not has_at and _ANY_DIGIT_RE.search(text) is None:
        return text
    if has_at:
        text = _EMAIL_RE.sub(EMAIL, text)
    text = _INTL_PHONE_RE.sub(PHONE, text)
    text = _DIGIT_RUN_RE.sub(_redact_cards, text)
    text = _SSN_RE.sub(SSN, text)
    return _NATIONAL_PHONE_RE.sub(_redact_national_phone, text)


def redact_obj(value: Any) -> Any:
    """Redact every string inside a JSON-like value.

    Dicts, lists and tuples are rebuilt with their items redacted (dict keys are field
    names and are kept as they are); strings go through :func:`redact`; integers whose
    digits would be redacted (a card or phone number stored as a number) become the
    placeholder string. Everything else is returned unchanged.

    Args:
        value: A string, number, dict, list, tuple or any nesting of them.

    Returns:
        A redacted copy; the input is not modified.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_obj(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_obj(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_obj(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        redacted = redact(text)
        return value if redacted == text else redacted
    return value


class _RedactingRecords:
    """A log-record factory that redacts the messages of one logger tree's records."""

    def __init__(self, base: Callable[..., logging.LogRecord], prefix: str) -> None:
        self.base = base
        self.prefix = prefix

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        if record.name == self.prefix or record.name.startswith(self.prefix + "."):
            message = record.getMessage()
            redacted = redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return record


def install_log_redaction(logger_name: str = "voicecore", *, enabled: bool = True) -> None:
    """Redact PII in the log records of ``logger_name`` and its children.

    ``enabled=False`` undoes it.

    It wraps the process's log-record factory, so the message is redacted when the record is
    made, before any filter or handler (ours or the application's) sees it.
    """
    factory = logging.getLogRecordFactory()
    while isinstance(factory, _RedactingRecords) and factory.prefix == logger_name:
        factory = factory.base
    logging.setLogRecordFactory(_RedactingRecords(factory, logger_name) if enabled else factory)
