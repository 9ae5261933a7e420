"""What is known about a call when it starts: who called whom, over what, with which data.

The transport learns it (Twilio's ``start`` message carries the parameters the webhook put in
the TwiML); the session holds it as ``Session.call``; a tool that declares a parameter
annotated :class:`CallInfo` receives it, so tools can act on the caller's number or on the
data an outbound call was placed with, and the LLM never sees or fills that parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CallInfo", "Direction", "is_reserved", "parameter_problem", "voicemail_for"]

Direction = Literal["inbound", "outbound"]

#: The webhook's form fields ``serve`` passes on to the stream as parameters.
TWILIO_CALL_PARAMETERS = ("From", "To", "CallerName", "Direction", "AnsweredBy")
#: The ``<Parameter>`` carrying ``serve``'s per-call stream token.
TOKEN_PARAMETER = "voicecore_token"
#: The call parameter that replaces the agent's voicemail message for this call.
VOICEMAIL_PARAMETER = "voicemail"
#: Stream parameters the server sets itself; the rest are the call's own data.
SERVER_PARAMETERS = (*TWILIO_CALL_PARAMETERS, TOKEN_PARAMETER)
#: Twilio limits each <Parameter>'s name and value together to 500 characters.
MAX_PARAMETER_CHARS = 400
MAX_PARAMETERS = 20
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def is_reserved(name: str) -> bool:
    """Whether a parameter called ``name`` would shadow a built-in call variable (``now``, ``call.*``)."""
    return name == "now" or name.startswith(("call.", "now."))


def parameter_problem(name: str, value: str) -> str | None:
    """What is wrong with a call parameter a client gave (None: nothing), said so they can fix it."""
    if not _PARAMETER_NAME.match(name):
        return f"parameter name {name!r}: use 1-64 letters, digits, '_', '.' or '-'"
    if name in SERVER_PARAMETERS:
        return f"parameter name {name!r} is set by the server; choose another"
    if is_reserved(name):
        return f"parameter name {name!r}: 'now', 'now.*' and 'call.*' name built-in variables; choose another"
    if len(name) + len(value) > MAX_PARAMETER_CHARS:
        return f"parameter {name!r}: name and value together must be at most {MAX_PARAMETER_CHARS} characters"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo:
    """One call's identity and data, fixed for its whole life.

    Attributes:
        call_id: The call's id (Twilio's CallSid; ``WS...`` for a browser).
        channel: Where the call came in: ``"twilio"``, ``"browser"`` or a transport's own name.
        direction: ``"inbound"`` (they called) or ``"outbound"`` (the agent dialled).
        from_number: The calling number (E.164), when the channel has one.
        to_number: The called number (E.164), when the channel has one.
        caller_name: The caller's name from caller ID, when the carrier gives it.
        answered_by: Answering-machine detection's verdict on an outbound call
            (``human``, ``machine_start``, ``fax``, ``unknown``; None when not asked for).
        parameters: The call's own data: the parameters an outbound call was placed with,
            or those the webhook's URL carried.
    """

    call_id: str
    channel: str = "unknown"
    direction: Direction = "inbound"
    from_number: str | None = None
    to_number: str | None = None
    caller_name: str | None = None
    answered_by: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def remote_number(self) -> str | None:
        """The other party's number: the caller's on an inbound call, the callee's on an outbound one."""
        return self.from_number if self.direction == "inbound" else self.to_number

    @classmethod
    def from_twilio(cls, call_sid: str, parameters: Mapping[str, str]) -> CallInfo:
        """The call described by a Media Stream's ``customParameters`` (as ``serve``'s webhook sets them).

        ``Direction`` is Twilio's (``inbound``, ``outbound-api``, ``outbound-dial``); the
        :data:`SERVER_PARAMETERS` (the stream token among them) are left out of :attr:`parameters`.
        """
        own = {name: value for name, value in parameters.items() if name not in SERVER_PARAMETERS}
        direction: Direction = (
            "outbound" if parameters.get("Direction", "inbound").startswith("outbound") else "inbound"
        )
        return cls(
            call_id=call_sid,
            channel="twilio",
            direction=direction,
            from_number=parameters.get("From") or None,
            to_number=parameters.get("To") or None,
            caller_name=parameters.get("CallerName") or None,
            answered_by=parameters.get("AnsweredBy") or None,
            parameters=own,
        )


def voicemail_for(parameters: Mapping[str, str], default: str | None) -> str | None:
    """A call's answering-machine message: its own ``voicemail`` parameter, else ``default``."""
    return parameters.get(VOICEMAIL_PARAMETER, "").strip() or default
