"""Call variables: ``{{name}}`` in an agent's texts, filled in from each call's data as it starts.

An agent's instructions and fixed phrases (greeting, voicemail message, goodbye, ...) may name
the call's own parameters, ``{{first_name}}``, with a default after a bar for calls without
it, ``{{first_name|there}}``, and the built-ins :data:`BUILT_INS` (``{{call.from}}``,
``{{now.date}}``). Anything else, JSON and single braces included, is left as written, so
instructions need no escaping.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from voicecore.call_info import CallInfo, is_reserved
from voicecore.errors import ConfigError
from voicecore.sansio.turn import TurnConfig

__all__ = [
    "BUILT_INS",
    "Placeholder",
    "Rendered",
    "call_variables",
    "check_templates",
    "missing_parameters",
    "personalize",
    "placeholders",
    "render",
    "template_texts",
]

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(?:\|([^{}|]*))?\}\}")

#: The variables every call has (those a channel does not know render as missing).
BUILT_INS: dict[str, str] = {
    "call.id": "the call's id (Twilio's CallSid)",
    "call.channel": "twilio or browser",
    "call.direction": "inbound or outbound",
    "call.from": "the calling number (E.164)",
    "call.to": "the called number (E.164)",
    "call.remote_number": "the other party's number: the caller's, or the callee's on an outbound call",
    "call.caller_name": "the caller's name from caller ID",
    "now": "the call's start, e.g. Wednesday 2026-11-25 14:03 (Europe/Rome)",
    "now.date": "2026-11-25",
    "now.weekday": "Wednesday",
    "now.time": "14:03 (24-hour)",
    "now.timezone": "the agent's time zone, e.g. Europe/Rome",
}


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{{name}}`` or ``{{name|default}}`` in a text."""

    name: str
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A text with its placeholders filled in, and the variables it named that the call lacks."""

    text: str
    missing: tuple[str, ...] = ()


def placeholders(text: str) -> Iterator[Placeholder]:
    """The placeholders in ``text``, in order."""
    for match in PLACEHOLDER.finditer(text):
        default = match.group(2)
        yield Placeholder(match.group(1), None if default is None else default.strip())


#: The turn's phrases that may be unset (not said), and those always set; with the fillers,
#: every phrase the agent says. Named in messages as the agent file names them.
_OPTIONAL_PHRASES = ("greeting", "voicemail")
_PHRASES = ("fallback", "idle_prompt", "goodbye")


def _field(phrase: str) -> str:
    return phrase if phrase in _OPTIONAL_PHRASES else f"turn.{phrase}"


def template_texts(instructions: str, turn: TurnConfig) -> dict[str, str]:
    """Every text of an agent that may hold placeholders, by the name of its field."""
    texts = {"instructions": instructions}
    for phrase in (*_OPTIONAL_PHRASES, *_PHRASES):
        if (text := getattr(turn, phrase)) is not None:
            texts[_field(phrase)] = text
    texts |= {f"turn.fillers[{index}]": filler for index, filler in enumerate(turn.fillers)}
    return texts


def check_templates(texts: Mapping[str, str]) -> None:
    """Refuse placeholders that look like built-ins but are none (a typo would render as nothing).

    Raises:
        ConfigError: A placeholder names an unknown ``call.``/``now`` variable; the message
            names the field and lists the built-ins.
    """
    for where, text in texts.items():
        for placeholder in placeholders(text):
            if is_reserved(placeholder.name) and placeholder.name not in BUILT_INS:
                raise ConfigError(
                    f"{where}: {{{{{placeholder.name}}}}} is no built-in variable; "
                    f"the built-ins are {', '.join(BUILT_INS)}"
                )


def missing_parameters(texts: Mapping[str, str], parameters: Mapping[str, str]) -> dict[str, list[str]]:
    """Variables without a default that ``parameters`` lack, each with the fields that use it.

    Built-ins are never missing here: the call itself supplies them.
    """
    missing: dict[str, list[str]] = {}
    for where, text in texts.items():
        for placeholder in placeholders(text):
            name = placeholder.name
            if placeholder.default is None and not is_reserved(name) and not parameters.get(name):
                fields = missing.setdefault(name, [])
                if where not in fields:
                    fields.append(where)
    return missing


def call_variables(call: CallInfo, now: datetime) -> dict[str, str]:
    """The variables of ``call``, started at ``now`` (an aware time in the agent's zone).

    The call's own parameters, then the built-ins the call has (those it lacks stay missing).
    """
    zone = str(now.tzinfo) if now.tzinfo is not None else "UTC"
    built_ins = {
        "call.id": call.call_id,
        "call.channel": call.channel,
        "call.direction": call.direction,
        "call.from": call.from_number,
        "call.to": call.to_number,
        "call.remote_number": call.remote_number,
        "call.caller_name": call.caller_name,
        "now": f"{now:%A %Y-%m-%d %H:%M} ({zone})",
        "now.date": f"{now:%Y-%m-%d}",
        "now.weekday": f"{now:%A}",
        "now.time": f"{now:%H:%M}",
        "now.timezone": zone,
    }
    own = {name: value for name, value in call.parameters.items() if not is_reserved(name)}
    return own | {name: value for name, value in built_ins.items() if value}


def render(text: str, variables: Mapping[str, str]) -> Rendered:
    """``text`` with each placeholder replaced by its variable, else its default, else nothing."""
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = variables.get(name)
        if value:
            return value
        if default is not None:
            return default.strip()
        if name not in missing:
            missing.append(name)
        return ""

    if "{{" not in text:
        return Rendered(text)
    return Rendered(PLACEHOLDER.sub(fill, text), tuple(missing))


def personalize(
    instructions: str, turn: TurnConfig, variables: Mapping[str, str]
) -> tuple[str, TurnConfig, dict[str, tuple[str, ...]]]:
    """The agent's instructions and turn settings for one call, and what each text lacked.

    Returns:
        The instructions, the turn settings with every phrase filled in, and field name →
        the variables it named that the call has no value for (rendered as nothing).
    """
    lacking: dict[str, tuple[str, ...]] = {}

    def fill(where: str, text: str) -> str:
        rendered = render(text, variables)
        if rendered.missing:
            lacking[where] = rendered.missing
        return rendered.text

    def fill_optional(where: str, text: str | None) -> str | None:
        """A phrase that renders blank is not said at all."""
        return None if text is None else fill(where, text).strip() or None

    changes: dict[str, Any] = {
        phrase: fill_optional(_field(phrase), getattr(turn, phrase)) for phrase in _OPTIONAL_PHRASES
    }
    changes |= {phrase: fill(_field(phrase), getattr(turn, phrase)) for phrase in _PHRASES}
    changes["fillers"] = tuple(fill(f"turn.fillers[{i}]", text) for i, text in enumerate(turn.fillers))
    return fill("instructions", instructions), dataclasses.replace(turn, **changes), lacking
