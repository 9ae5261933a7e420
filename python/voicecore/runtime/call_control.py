"""Built-in call-control tools: ``end_call`` and ``transfer_call``.

The LLM calls them like any tool; the session carries the request out once the caller has
heard the reply it belongs to (playback truth), so a goodbye is never cut off. The transport
does the telephony part (hang-up, or a cold or warm transfer with a summary for the human).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voicecore.tools import Tool, function_tool

__all__ = ["CallControl", "ControlRequest"]


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """What the agent asked to happen to the call once its reply has played."""

    action: Literal["end", "transfer"]
    reason: str = ""
    to: str = ""
    summary: str | None = None


class CallControl:
    """Holds the latest call-control request of one call and offers the tools that make it."""

    def __init__(self) -> None:
        """No request yet."""
        self.request: ControlRequest | None = None

    def tools(self) -> list[Tool]:
        """The two tools, bound to this call."""
        return [self.end_call, self.transfer_call]

    @function_tool
    def end_call(self, reason: str) -> str:
        """End the call after your current message has been heard. Say goodbye first.

        Args:
            reason: Why the call ends, in a few words (for the call log).
        """
        self.request = ControlRequest("end", reason=reason)
        return "The call will end once your message has been heard."

    @function_tool
    def transfer_call(self, to: str, summary: str = "", warm: bool = False) -> str:
        """Transfer the caller to a person or number after your current message has been heard.

        Args:
            to: Where to transfer: a phone number in E.164 form or a SIP address.
            summary: For a warm transfer, what the person taking the call should know.
            warm: Whether to pass the summary on (warm) or just connect the call (cold).
        """
        self.request = ControlRequest("transfer", to=to, summary=summary if warm else None)
        return f"The caller will be transferred to {to} once your message has been heard."
