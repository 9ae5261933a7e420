"""The TwiML documents the server answers with, built by Twilio's own library (escaping included).

Pure functions from values to XML text: the voice webhook's ``<Connect><Stream>``, the busy
answer, and the transfer that replaces a call's TwiML (``<Dial>``, with an optional whisper
that reads a summary to whoever answers before the caller is connected).
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

__all__ = ["busy", "connect_stream", "say", "transfer"]

#: Twilio's limit on a ``<Parameter>`` (name and value together).
MAX_PARAMETER_CHARS = 500


def connect_stream(url: str, parameters: Mapping[str, str]) -> str:
    """``<Connect><Stream url>`` with ``parameters`` as ``<Parameter>`` elements.

    Values are cut so that each name and value stay under Twilio's 500-character limit.
    """
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value[: max(MAX_PARAMETER_CHARS - 1 - len(name), 0)])
    response.append(connect)
    return str(response)


def busy() -> str:
    """Reject the call with a busy signal (the server is full or shutting down).

    The call is never answered, so the caller is not billed and hears what a busy line
    sounds like; the calls in progress are not disturbed.
    """
    response = VoiceResponse()
    response.reject(reason="busy")
    return str(response)


def say(message: str) -> str:
    """Say ``message`` (and nothing else: for a whisper to the person taking a transfer)."""
    response = VoiceResponse()
    response.say(message)
    return str(response)


def transfer(to: str, *, whisper_url: str | None = None) -> str:
    """Connect the caller to ``to`` (E.164 number or ``sip:`` address).

    Args:
        to: Where to transfer.
        whisper_url: TwiML URL run on the answering side before the caller is connected (a warm
            transfer's summary), or ``None`` for a cold transfer.
    """
    response = VoiceResponse()
    dial = Dial()
    options = {} if whisper_url is None else {"url": whisper_url}
    if to.startswith("sip:"):
        dial.sip(to, **options)
    else:
        dial.number(to, **options)
    response.append(dial)
    return str(response)
