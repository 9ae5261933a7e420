"""A fake of Twilio's REST call-update endpoint (``POST .../Calls/{CallSid}.json``).

It checks HTTP Basic auth (the account SID as user, the auth token as password) when given a
token, records each update's form (``Twiml`` for a transfer, ``Status=completed`` for a hang-up)
and answers with the call resource's JSON, as Twilio does; ``status`` makes every update fail
with Twilio's error body instead.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from aiohttp import web

from voicecore.fakes.server import LocalServer

__all__ = ["CallUpdate", "FakeTwilioAPI"]


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """One update received: its path, ``Authorization`` header and form fields."""

    path: str
    account_sid: str
    call_sid: str
    auth: str
    twiml: str
    status: str


class FakeTwilioAPI(LocalServer):
    """Serves ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``.

    Args:
        auth_token: The account's auth token clients must authenticate with (None: any).
        status: Answer every update with this error status (None: succeed).

    Attributes:
        updates: The updates received, in order.
    """

    def __init__(self, *, auth_token: str | None = None, status: int | None = None) -> None:
        super().__init__()
        self.auth_token = auth_token
        self.status = status
        self.updates: list[CallUpdate] = []
        self.app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._update)

    async def _update(self, request: web.Request) -> web.Response:
        self.record_peer(request)
        account, call = request.match_info["account"], request.match_info["call"]
        auth = request.headers.get("Authorization", "")
        if self.auth_token is not None:
            expected = base64.b64encode(f"{account}:{self.auth_token}".encode()).decode()
            if auth != f"Basic {expected}":
                return _error(401, 20003, "Authentication Error - invalid username")
        form = await request.post()
        update = CallUpdate(
            request.path, account, call, auth, str(form.get("Twiml", "")), str(form.get("Status", ""))
        )
        self.updates.append(update)
        if self.status is not None:
            return _error(self.status, 20500, "scripted failure")
        state = "completed" if update.status == "completed" else "in-progress"
        return web.json_response({"sid": call, "account_sid": account, "status": state})


def _error(status: int, code: int, message: str) -> web.Response:
    """Twilio's REST error body."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return web.json_response(body | {"status": status}, status=status)
