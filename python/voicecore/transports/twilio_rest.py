"""Twilio's REST Calls resource: place a call, give a live call new TwiML, hang one up.

Each is one authenticated form POST: to ``/2010-04-01/Accounts/{AccountSid}/Calls.json`` to
place an outbound call (Twilio requests its ``Url``, our voice webhook, once the callee
answers), and to ``.../Calls/{CallSid}.json`` with ``Twiml=...`` (Twilio then leaves the
``<Connect><Stream>``, ending the Media Stream, and runs the new TwiML) or ``Status=completed``.
The base URL is configurable so tests (and staging) can point it at a local fake of the API.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Literal

import aiohttp

from voicecore.errors import ProviderConnectionError, ProviderStatusError, ProviderTimeoutError

__all__ = ["TWILIO_API_URL", "MachineDetection", "TwilioCalls"]

logger = logging.getLogger(__name__)

TWILIO_API_URL = "https://api.twilio.com"

#: Twilio's answering-machine detection modes (the ``MachineDetection`` parameter).
MachineDetection = Literal["Enable", "DetectMessageEnd"]


class TwilioCalls:
    """Updates calls of the account that owns them, authenticated with its auth token.

    Args:
        auth_token: The account's auth token (``TWILIO_AUTH_TOKEN``).
        base_url: The API's base URL (Twilio's own unless testing).
        timeout: Seconds for one update.
    """

    def __init__(self, auth_token: str, *, base_url: str = TWILIO_API_URL, timeout: float = 10.0) -> None:
        self._auth_token = auth_token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    async def update(self, account_sid: str, call_sid: str, twiml: str) -> None:
        """Replace the TwiML of live call ``call_sid``.

        Raises:
            ProviderStatusError: Twilio answered with an error status.
            ProviderConnectionError: The API could not be reached.
            ProviderTimeoutError: No answer within ``timeout``.
        """
        await self._post(account_sid, call_sid, {"Twiml": twiml})

    async def hang_up(self, account_sid: str, call_sid: str) -> None:
        """End live call ``call_sid`` (``Status=completed``); raises as :meth:`update` does."""
        await self._post(account_sid, call_sid, {"Status": "completed"})

    async def create(
        self,
        account_sid: str,
        *,
        to: str,
        from_number: str,
        url: str,
        machine_detection: MachineDetection | None = None,
        ring_timeout: int | None = None,
    ) -> str:
        """Place a call from ``from_number`` to ``to``; Twilio requests ``url`` when it is answered.

        With ``machine_detection``, the webhook request says who answered (``AnsweredBy``):
        ``"Enable"`` as soon as Twilio knows, ``"DetectMessageEnd"`` once a machine's greeting
        has ended (its beep), which is when a message should start.

        Returns:
            The new call's CallSid.

        Raises:
            ProviderStatusError: Twilio refused (the message is Twilio's, e.g. an invalid number).
            ProviderConnectionError: The API could not be reached.
            ProviderTimeoutError: No answer within ``timeout``.
        """
        form = {"To": to, "From": from_number, "Url": url, "Method": "POST"}
        if machine_detection is not None:
            form["MachineDetection"] = machine_detection
        if ring_timeout is not None:
            form["Timeout"] = str(ring_timeout)
        resource = await self._post(account_sid, None, form)
        sid = resource.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProviderStatusError(
                "Twilio placed the call but named no 'sid'", provider="twilio", status=502
            )
        return sid

    async def _post(self, account_sid: str, call_sid: str | None, form: dict[str, str]) -> dict[str, object]:
        """POST ``form`` to the Calls list (``call_sid`` None) or one call; returns the call resource."""
        what = "call update" if call_sid is not None else "call creation"
        calls = f"{self.base_url}/2010-04-01/Accounts/{account_sid}/Calls"
        url = f"{calls}/{call_sid}.json" if call_sid is not None else f"{calls}.json"
        credentials = base64.b64encode(f"{account_sid}:{self._auth_token}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http,
                http.post(url, data=form, headers=headers) as response,
            ):
                text = await response.text()
                if response.status >= 400:
                    raise ProviderStatusError(
                        f"{what} answered {response.status}: {_twilio_message(text)}",
                        provider="twilio",
                        status=response.status,
                    )
        except TimeoutError:
            raise ProviderTimeoutError(f"{what} took over {self.timeout} s", provider="twilio") from None
        except aiohttp.ClientError as error:
            raise ProviderConnectionError(f"{what} failed: {error}", provider="twilio") from error
        try:
            resource = json.loads(text)
        except ValueError:
            return {}
        return resource if isinstance(resource, dict) else {}


def _twilio_message(text: str) -> str:
    """Twilio's error ``message`` and ``code`` from an error body, else the body's start."""
    try:
        error = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        return f"{error['message']} (Twilio error {code})" if code else str(error["message"])
    return text[:200]
