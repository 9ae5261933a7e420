"""Twilio's REST call-update endpoint: give a live call new TwiML (used for transfers).

One authenticated form POST to ``/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``
with ``Twiml=...``; Twilio then leaves the ``<Connect><Stream>`` (ending the Media Stream) and
runs the new TwiML. The base URL is configurable so tests (and staging) can point it at a
local fake of the API.
"""

from __future__ import annotations

import base64
import logging

import aiohttp

from voicecore.errors import ProviderConnectionError, ProviderStatusError, ProviderTimeoutError

__all__ = ["TWILIO_API_URL", "TwilioCalls"]

logger = logging.getLogger(__name__)

TWILIO_API_URL = "https://api.twilio.com"


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

    async def _post(self, account_sid: str, call_sid: str, form: dict[str, str]) -> None:
        url = f"{self.base_url}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"
        credentials = base64.b64encode(f"{account_sid}:{self._auth_token}".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http,
                http.post(url, data=form, headers=headers) as response,
            ):
                if response.status >= 400:
                    detail = (await response.text())[:200]
                    raise ProviderStatusError(
                        f"call update answered {response.status}: {detail}",
                        provider="twilio",
                        status=response.status,
                    )
        except TimeoutError:
            raise ProviderTimeoutError(f"call update took over {self.timeout} s", provider="twilio") from None
        except aiohttp.ClientError as error:
            raise ProviderConnectionError(f"call update failed: {error}", provider="twilio") from error
