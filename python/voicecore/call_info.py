"""What is known about a call when it starts: who called whom, over what, with which data.

The transport learns it (Twilio's ``start`` message carries the parameters the webhook put in
the TwiML); the session holds it as ``Session.call``; a tool that declares a parameter
annotated :class:`CallInfo` receives it, so tools can act on the caller's number or on the
data an outbound call was placed with, and the LLM never sees or fills that parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CallInfo", "Direction", "voicemail_for"]

Direction = Literal["inbound", "outbound"]

#: The webhook's form fields ``serve`` passes on to the stream as parameters.
TWILIO_CALL_PARAMETERS = ("From", "To", "CallerName", "Direction", "AnsweredBy")
#: The ``<Parameter>`` carrying ``serve``'s per-call stream token.
TOKEN_PARAMETER = "voicecore_token"
#: The call parameter that replaces the agent's voicemail message for this call.
VOICEMAIL_PARAMETER = "voicemail"
#: Stream parameters the server sets itself; the rest are the call's own data.
SERVER_PARAMETERS = (*TWILIO_CALL_PARAMETERS, TOKEN_PARAMETER)


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
