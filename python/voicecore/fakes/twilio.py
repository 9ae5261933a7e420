"""A fake of Twilio's REST Calls resource: placing calls, updating and hanging up live ones.

It checks HTTP Basic auth (the account SID as user, the auth token as password) when given a
token. ``POST .../Calls/{CallSid}.json`` records each update's form (``Twiml`` for a transfer,
``Status=completed`` for a hang-up) and answers with the call resource's JSON, as Twilio does;
``status`` makes every update fail with Twilio's error body instead.

``POST .../Calls.json`` places a call: it checks ``To``, ``From`` and ``Url`` as Twilio does
(errors 21211, 21212, 21205), answers ``201`` with the queued call, and then plays the network
and the callee: it requests ``Url`` the way Twilio's voice webhook does (the call's form
fields, ``Direction=outbound-api``, ``AnsweredBy`` when machine detection was asked for,
signed with ``X-Twilio-Signature``), reads the TwiML, and opens the ``<Connect><Stream>`` with
its ``<Parameter>`` s as the callee (:class:`voicecore.caller.TwilioCaller`).
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from dataclasses import dataclass, field
from xml.etree import ElementTree

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from voicecore.caller import TwilioCaller
from voicecore.fakes.server import LocalServer

__all__ = ["CallUpdate", "FakeTwilioAPI", "PlacedCall"]

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


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
    """Serves ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` and ``.../Calls/{CallSid}.json``.

    Args:
        auth_token: The account's auth token clients must authenticate with (None: any);
            it also signs the webhook requests of placed calls.
        status: Answer every update with this error status (None: succeed).
        answer: Whether placed calls are answered (their webhook requested, their stream opened).
        answered_by: Who answers calls placed with machine detection: ``human``, ``machine``,
            ``fax`` or ``unknown``; the webhook's ``AnsweredBy`` is Twilio's verdict for the
            call's mode (a machine is ``machine_start`` with ``Enable``, ``machine_end_beep``
            with ``DetectMessageEnd``, whose webhook waits for the beep).

    Attributes:
        updates: The updates received, in order.
        placed: The calls placed, in order.
    """

    def __init__(
        self,
        *,
        auth_token: str | None = None,
        status: int | None = None,
        answer: bool = True,
        answered_by: str = "human",
    ) -> None:
        super().__init__()
        self.auth_token = auth_token
        self.status = status
        self.answer = answer
        self.answered_by = answered_by
        self.updates: list[CallUpdate] = []
        self.placed: list[PlacedCall] = []
        self._answering: set[asyncio.Task[None]] = set()
        self.app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._create)
        self.app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._update)

    async def __aexit__(self, *exc: object) -> None:
        for task in self._answering:
            task.cancel()
        await asyncio.gather(*self._answering, return_exceptions=True)
        for call in self.placed:
            if call.callee is not None:
                await call.callee.hang_up()
        await super().__aexit__(*exc)

    def _authorized(self, request: web.Request, account: str) -> bool:
        if self.auth_token is None:
            return True
        expected = base64.b64encode(f"{account}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {expected}"

    async def _create(self, request: web.Request) -> web.Response:
        self.record_peer(request)
        account = request.match_info["account"]
        if not self._authorized(request, account):
            return _error(401, 20003, "Authentication Error - invalid username")
        form = {name: str(value) for name, value in (await request.post()).items()}
        to, from_number, url = form.get("To", ""), form.get("From", ""), form.get("Url", "")
        if not _E164.match(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _E164.match(from_number):
            return _error(400, 21212, f"Invalid 'From' Phone Number: {from_number}")
        if not url.startswith(("http://", "https://")):
            return _error(400, 21205, f"Url is not a valid URL: {url}")
        call = PlacedCall("CA" + uuid.uuid4().hex, account, form)
        self.placed.append(call)
        if self.answer:
            task = asyncio.get_running_loop().create_task(self._dial_through(call))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)
        resource = {
            "sid": call.sid,
            "account_sid": account,
            "to": to,
            "from": from_number,
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account}/Calls/{call.sid}.json",
        }
        return web.json_response(resource, status=201)

    async def _dial_through(self, call: PlacedCall) -> None:
        """Answer: request the call's webhook as Twilio does and open the stream its TwiML names."""
        form = {
            "AccountSid": call.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "From": call.form["From"],
            "To": call.form["To"],
        }
        if mode := call.form.get("MachineDetection"):
            form["AnsweredBy"] = _verdict(self.answered_by, mode)
        url = call.form["Url"]
        headers = {}
        if self.auth_token is not None:
            signature = RequestValidator(self.auth_token).compute_signature(url, form)
            headers["X-Twilio-Signature"] = str(signature)
        async with aiohttp.ClientSession() as http, http.post(url, data=form, headers=headers) as response:
            call.webhook_status = response.status
            call.twiml = await response.text()
        stream = (
            ElementTree.fromstring(call.twiml).find("./Connect/Stream")
            if call.webhook_status == 200
            else None
        )
        if stream is None:
            return
        parameters = {str(p.get("name")): str(p.get("value")) for p in stream.findall("Parameter")}
        callee = TwilioCaller(
            str(stream.get("url")), call_sid=call.sid, account_sid=call.account_sid, parameters=parameters
        )
        await callee.__aenter__()
        call.callee = callee
        call.answered.set()

    async def _update(self, request: web.Request) -> web.Response:
        self.record_peer(request)
        account, call = request.match_info["account"], request.match_info["call"]
        auth = request.headers.get("Authorization", "")
        if not self._authorized(request, account):
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


@dataclass(eq=False)
class PlacedCall:
    """One call placed through the fake.

    Attributes:
        sid: Its CallSid.
        account_sid: The account that placed it.
        form: The creation request's form fields (``To``, ``From``, ``Url``, ``MachineDetection``, ...).
        webhook_status: The status the webhook answered with, once requested.
        twiml: The TwiML the webhook answered with.
        callee: The person who answered, on the stream (once it opened).
        answered: Set once the stream is open.
    """

    sid: str
    account_sid: str
    form: dict[str, str]
    webhook_status: int | None = None
    twiml: str | None = None
    callee: TwilioCaller | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)


def _verdict(answered_by: str, mode: str) -> str:
    """Twilio's ``AnsweredBy`` for who answered, under machine detection ``mode``."""
    if answered_by != "machine":
        return answered_by
    return "machine_end_beep" if mode == "DetectMessageEnd" else "machine_start"


def _error(status: int, code: int, message: str) -> web.Response:
    """Twilio's REST error body."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return web.json_response(body | {"status": status}, status=status)
