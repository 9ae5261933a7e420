"""Outbound calls: the ``POST /calls`` request, checked, and the webhook URL that carries its data.

A request names whom to call and may carry the call's own parameters (an appointment, an
account); they travel in the voice webhook's query string, which Twilio signs and sends back
when the callee answers, so any worker can pick the call up and the session's
:class:`~voicecore.call_info.CallInfo` holds them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

import msgspec

from voicecore.call_info import MAX_PARAMETERS, parameter_problem
from voicecore.sansio.variables import missing_parameters

__all__ = ["DialRequest", "DialRequestError", "check_variables", "parse_dial_request", "webhook_url"]

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
#: Seconds Twilio lets the callee's phone ring (its own bounds).
RING_TIMEOUT_RANGE = (5, 600)


class DialRequestError(ValueError):
    """A ``POST /calls`` body that cannot be dialled; the message says what to change."""


@dataclass(frozen=True, slots=True)
class DialRequest:
    """One outbound call to place.

    Attributes:
        to: The number to call (E.164).
        from_number: The caller ID (E.164): one of the account's numbers.
        parameters: The call's own data, for the agent and its tools.
        machine_detection: Ask Twilio whether a person or a machine answered (``AnsweredBy``).
        ring_timeout: Seconds to let the phone ring (Twilio's default 60 when None).
    """

    to: str
    from_number: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    machine_detection: bool = False
    ring_timeout: int | None = None


class _Body(msgspec.Struct, forbid_unknown_fields=True, rename={"from_": "from"}):
    to: str
    from_: str | None = None
    parameters: dict[str, str] = {}
    machine_detection: bool = False
    ring_timeout: int | None = None


def parse_dial_request(body: bytes, *, default_from: str | None) -> DialRequest:
    """The call a ``POST /calls`` JSON body asks for.

    Args:
        body: ``{"to": "+1...", "from": "+1...", "parameters": {...}, "machine_detection": false,
            "ring_timeout": 30}``; only ``to`` is required when ``default_from`` is set.
        default_from: The caller ID when the body names none (``VOICECORE_CALLER_ID``).

    Raises:
        DialRequestError: The body is not such an object, or a field is invalid.
    """
    try:
        request = msgspec.json.decode(body, type=_Body)
    except msgspec.DecodeError as error:
        raise DialRequestError(
            f'the body must be a JSON object like {{"to": "+14155550100"}}: {error}'
        ) from None
    if not E164.match(request.to):
        raise DialRequestError(f"'to' must be an E.164 number like +14155550100, not {request.to!r}")
    caller_id = request.from_ or default_from
    if caller_id is None:
        raise DialRequestError("give 'from' (one of the account's numbers), or set VOICECORE_CALLER_ID")
    if not E164.match(caller_id):
        raise DialRequestError(f"'from' must be an E.164 number like +14155550100, not {caller_id!r}")
    _check_parameters(request.parameters)
    low, high = RING_TIMEOUT_RANGE
    if request.ring_timeout is not None and not low <= request.ring_timeout <= high:
        raise DialRequestError(f"'ring_timeout' must be {low} to {high} seconds, not {request.ring_timeout}")
    return DialRequest(
        request.to, caller_id, dict(request.parameters), request.machine_detection, request.ring_timeout
    )


def _check_parameters(parameters: Mapping[str, str]) -> None:
    if len(parameters) > MAX_PARAMETERS:
        raise DialRequestError(f"at most {MAX_PARAMETERS} parameters, not {len(parameters)}")
    for name, value in parameters.items():
        if problem := parameter_problem(name, value):
            raise DialRequestError(problem)


def check_variables(dial: DialRequest, texts: Mapping[str, str]) -> None:
    """Refuse a call whose parameters lack a variable the agent's ``texts`` name without a default.

    Raises:
        DialRequestError: Names each missing parameter and the fields that use it.
    """
    missing = missing_parameters(texts, dial.parameters)
    if missing:
        uses = "; ".join(f"{name} (in {', '.join(fields)})" for name, fields in missing.items())
        example = next(iter(missing))
        raise DialRequestError(
            f"the agent needs parameters this call lacks: {uses}; give them in 'parameters', "
            f"or give the agent a default like {{{{{example}|...}}}}"
        )


def webhook_url(public_url: str, parameters: Mapping[str, str]) -> str:
    """The voice webhook's URL for a call carrying ``parameters`` (its query string)."""
    base = public_url.rstrip("/") + "/twilio/voice"
    return f"{base}?{urlencode(parameters)}" if parameters else base
