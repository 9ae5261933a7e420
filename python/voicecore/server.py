"""The HTTP and WebSocket server: Twilio webhook and Media Streams, health, metrics.

Routes:
    ``POST /twilio/voice``   Twilio's voice webhook: TwiML ``<Connect><Stream>`` to
                             ``/twilio/stream`` (with the caller as ``<Parameter>``s), or a busy
                             message and ``<Hangup/>`` when the server is full or draining.
                             With ``TWILIO_AUTH_TOKEN`` set, a request whose
                             ``X-Twilio-Signature`` does not match gets 403.
    ``GET /twilio/stream``   The bidirectional Media Streams WebSocket: one
                             :class:`~voicecore.runtime.session.Session` per call over a
                             :class:`~voicecore.transports.twilio.TwilioTransport`.
    ``POST /twilio/whisper`` TwiML reading a warm transfer's summary to the person answering.
    ``GET /``                The browser page: talk to the agent with the microphone
                             (static files in ``voicecore/web``, also under ``/web/``).
    ``GET /ws``              The browser WebSocket (:mod:`voicecore.sansio.wire` documents it):
                             one session per connection over a
                             :class:`~voicecore.transports.websocket.BrowserTransport`; a full
                             or draining server sends ``end`` (``busy``) and closes with 1013;
                             a page from another origin gets 403 (the ``Origin`` header).
    ``GET /healthz``         200 while the process runs.
    ``GET /readyz``          200 while accepting calls, 503 while draining.
    ``GET /metrics``         Prometheus exposition (of all workers: :mod:`voicecore.shared_metrics`).

With an auth token, the webhook also hands the stream a per-call token (an HMAC of the call
sid) as a ``<Parameter>``, and a stream whose ``start`` does not carry it is closed (1008): only
calls whose webhook Twilio signed get an agent.

Shutdown (:meth:`VoiceServer.shutdown`): new calls are refused at once, calls in progress may
finish until the drain deadline, and those still running then are told goodbye (their audio is
cleared, the agent's TTS says a closing phrase, and the stream is closed after it has played).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge
from twilio.request_validator import RequestValidator

from voicecore.agent import ProviderChoice
from voicecore.call_info import (
    SERVER_PARAMETERS,
    TOKEN_PARAMETER,
    TWILIO_CALL_PARAMETERS,
    CallInfo,
    voicemail_for,
)
from voicecore.config import ServeConfig
from voicecore.errors import ListenError, ProtocolError, ProviderError
from voicecore.logs import CallFields, call_scope
from voicecore.observers import Observer
from voicecore.providers import registry
from voicecore.providers.base import LLM, STT, TTS, RealtimeModel
from voicecore.runtime.convert import synthesize
from voicecore.runtime.loop import EndedCalls
from voicecore.runtime.metrics import CALLER_FRAMES_RECEIVED
from voicecore.runtime.realtime_session import RealtimeSession
from voicecore.runtime.recording import RecordingTransport
from voicecore.runtime.session import Session, SessionConfig
from voicecore.sansio import outbound, twiml
from voicecore.sansio.admission import Admission
from voicecore.sansio.twilio import StreamStarted
from voicecore.sansio.variables import template_texts
from voicecore.shared_admission import SharedAdmission
from voicecore.shared_metrics import exposition
from voicecore.transports.base import CallerHungUp, MarkPlayed, Transport
from voicecore.transports.twilio import TwilioTransport
from voicecore.transports.twilio_rest import MachineDetection, TwilioCalls
from voicecore.transports.websocket import BrowserTransport, PageObserver

__all__ = ["BUSY_MESSAGE", "GOODBYE_MESSAGE", "VoiceServer", "stream_token"]

logger = logging.getLogger(__name__)

BUSY_MESSAGE = "Sorry, all our lines are busy right now. Please call again later."
GOODBYE_MESSAGE = "Sorry, we have to end this call now. Please call again. Goodbye."
#: Seconds a new stream has to send ``start``.
START_TIMEOUT = 10.0
#: Seconds for the goodbye phrase to be synthesized and played at shutdown.
GOODBYE_TIMEOUT = 8.0
#: WebSocket messages larger than this close the stream (1009); Twilio's are ~300 bytes.
MAX_WS_MESSAGE = 1 << 20
#: WebSocket close code 1013 "try again later" (not in every aiohttp's WSCloseCode).
TRY_AGAIN_LATER = 1013
#: The browser page's static files.
WEB_ROOT = Path(__file__).parent / "web"

ACTIVE_CALLS = Gauge(
    "voicecore_active_calls", "Calls in progress (in all running workers).", multiprocess_mode="livesum"
)
REFUSED_CALLS = Counter("voicecore_refused_calls", "Calls refused because the server was full or draining.")
REJECTED_REQUESTS = Counter(
    "voicecore_rejected_requests", "Requests rejected: bad signature or stream token."
)
LOST_FRAMES = Counter(
    "voicecore_caller_frames_lost", "Caller media frames missing from Twilio's chunk sequence."
)
BAD_CALLER_MESSAGES = Counter(
    "voicecore_bad_caller_messages", "Caller messages skipped as malformed or unexpected.", ["kind"]
)


def stream_token(auth_token: str, call_sid: str) -> str:
    """The per-call token the webhook gives the stream: base64url HMAC-SHA256 of the call sid."""
    digest = hmac.new(auth_token.encode(), b"voicecore-stream:" + call_sid.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


#: Why a call that outlasted the drain deadline ended (``CallClosed.reason``).
SHUTDOWN_REASON = "server shutting down"


@dataclass(eq=False)
class _Call:
    session: Session | RealtimeSession
    run: asyncio.Task[None]
    done: asyncio.Event = field(default_factory=asyncio.Event)
    say_goodbye: bool = False


class VoiceServer:
    """The aiohttp application serving one agent, with admission control and draining.

    Args:
        config: Server settings (validated).
        agent: The session settings of the agent every call talks to.
        providers: Provider per role (see :func:`voicecore.config.providers`).
        admission: The call limit shared with other workers; by default this process's own.
        observers: Observers of every call (an :class:`~voicecore.observers.AuditObserver`,
            say); the server does not close them.
    """

    def __init__(
        self,
        config: ServeConfig,
        agent: SessionConfig,
        providers: Mapping[registry.Role, ProviderChoice],
        admission: SharedAdmission | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.config = config
        self.observers = tuple(observers)
        self.agent = agent
        self.providers = dict(providers)
        self.admission: Admission | SharedAdmission = admission or Admission(config.max_calls)
        self.calls: dict[str, _Call] = {}
        #: Runs a full collection after every 50 calls that end (their reference cycles).
        self.ended_calls = EndedCalls()
        token = config.twilio_auth_token
        self._validator = RequestValidator(token) if token else None
        self._rest = TwilioCalls(token, base_url=config.twilio_api_url) if token else None
        self.app = web.Application()
        self.app.add_routes(
            [
                web.post("/twilio/voice", self._voice),
                web.get("/twilio/stream", self._stream),
                web.post("/twilio/whisper", self._whisper),
                web.post("/calls", self._place_call),
                web.get("/healthz", self._healthz),
                web.get("/readyz", self._readyz),
                web.get("/metrics", self._metrics),
                web.get("/ws", self._browser),
                web.get("/", self._page),
                web.static("/web", WEB_ROOT),
            ]
        )
        self._runner: web.AppRunner | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, *, reuse_port: bool = False) -> list[str]:
        """Listen on the configured host and port; returns the ``http://host:port`` bound.

        Raises:
            ListenError: The port is taken, needs privileges, or the host is not a local address.
        """
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        host, port = self.config.host, self.config.port
        site = web.TCPSite(self._runner, host, port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            self._runner = None
            raise ListenError.on(host, port, error) from error
        urls = []
        for address in self._runner.addresses:
            host, port = address[0], address[1]
            urls.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
        return urls

    @property
    def port(self) -> int:
        """The TCP port actually bound (after :meth:`start`)."""
        assert self._runner is not None, "start() first"
        return int(self._runner.addresses[0][1])

    async def shutdown(self, drain_timeout: float | None = None) -> None:
        """Refuse new calls, let calls finish until the deadline, say goodbye to the rest, stop."""
        deadline = self.config.drain_timeout if drain_timeout is None else drain_timeout
        self.admission.drain()
        calls = list(self.calls.values())
        if calls:
            logger.info("draining: %d call(s) in progress, up to %.0f s", len(calls), deadline)
            await _wait_all(calls, deadline)
        remaining = [call for call in self.calls.values() if not call.done.is_set()]
        if remaining:
            logger.info("ending %d call(s) that outlasted the drain deadline", len(remaining))
            for call in remaining:
                call.say_goodbye = True
                call.run.cancel(SHUTDOWN_REASON)
            await _wait_all(remaining, GOODBYE_TIMEOUT + 2.0)
        if self._runner is not None:
            await self._runner.cleanup()

    # --- Twilio webhook ---------------------------------------------------------------------

    async def _voice(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (rejected := self._check_signature(request, form)) is not None:
            return rejected
        call_sid = str(form.get("CallSid", ""))
        if not self.admission.reserve(call_sid, time.monotonic()):
            REFUSED_CALLS.inc()
            with call_scope(CallFields(call_sid, "twilio")):
                logger.info(
                    "call %s refused: %s", call_sid, "draining" if self.admission.draining else "full"
                )
            return _twiml(twiml.busy())
        # The call's own data rides in the webhook URL's query (an outbound call's, see
        # _place_call); Twilio's fields and the token are set here, never taken from it.
        parameters = {name: value for name, value in request.query.items() if name not in SERVER_PARAMETERS}
        parameters |= {name: str(form[name]) for name in TWILIO_CALL_PARAMETERS if form.get(name)}
        if self.config.twilio_auth_token:
            parameters[TOKEN_PARAMETER] = stream_token(self.config.twilio_auth_token, call_sid)
        return _twiml(twiml.connect_stream(self._base_url(request, "ws") + "/twilio/stream", parameters))

    async def _whisper(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (rejected := self._check_signature(request, form)) is not None:
            return rejected
        return _twiml(twiml.say(request.query.get("text", "")))

    def _check_signature(self, request: web.Request, form: Mapping[str, Any]) -> web.Response | None:
        """None when the request is Twilio's (or no auth token is set), else the 403 answer."""
        if self._validator is None:
            return None
        url = self._public_url(request)
        if self._validator.validate(url, form, request.headers.get("X-Twilio-Signature", "")):
            return None
        REJECTED_REQUESTS.inc()
        logger.warning("rejected a request whose X-Twilio-Signature does not match %s", request.path)
        return web.Response(status=403, text="invalid X-Twilio-Signature\n")

    def _public_url(self, request: web.Request) -> str:
        """The URL Twilio requested, as it signed it (the public one when behind a proxy)."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/") + request.path_qs
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        return f"{scheme}://{request.host}{request.path_qs}"

    def _base_url(self, request: web.Request, kind: str = "http") -> str:
        """Scheme and host as Twilio reaches us; ``kind="ws"`` gives the ``ws(s)://`` form."""
        base = self._public_url(request).removesuffix(request.path_qs)
        if kind == "ws":
            return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return base

    # --- outbound calls ---------------------------------------------------------------------

    async def _place_call(self, request: web.Request) -> web.Response:
        """``POST /calls``: dial a number; the call runs like any other once it is answered."""
        token, account = self.config.api_token, self.config.twilio_account_sid
        if token is None or account is None or self._rest is None or self.config.public_url is None:
            return _json_error(404, "outbound calls are off: set VOICECORE_API_TOKEN (see the README)")
        if not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
            REJECTED_REQUESTS.inc()
            logger.warning("rejected a POST /calls without the API token")
            response = _json_error(401, "send Authorization: Bearer <VOICECORE_API_TOKEN>")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        try:
            dial = outbound.parse_dial_request(await request.read(), default_from=self.config.caller_id)
            leaves_message = voicemail_for(dial.parameters, self.agent.turn.voicemail)
            turn = dataclasses.replace(self.agent.turn, voicemail=leaves_message)
            outbound.check_variables(dial, template_texts(self.agent.instructions, turn))
        except outbound.DialRequestError as error:
            return _json_error(400, str(error))
        if self.admission.draining or self.admission.load(time.monotonic()) >= self.config.max_calls:
            REFUSED_CALLS.inc()
            return _json_error(503, "the server is full or draining: try again later")
        # A machine gets a message only after its beep; with none to leave, the sooner known the better.
        detection: MachineDetection = "DetectMessageEnd" if leaves_message else "Enable"
        try:
            call_sid = await self._rest.create(
                account,
                to=dial.to,
                from_number=dial.from_number,
                url=outbound.webhook_url(self.config.public_url, dial.parameters),
                machine_detection=detection if dial.machine_detection else None,
                ring_timeout=dial.ring_timeout,
            )
        except ProviderError as error:
            status = 422 if error.status is not None and 400 <= error.status < 500 else 502
            logger.warning("Twilio did not place an outbound call: %s", error)
            return _json_error(status, f"the call was not placed: {error}")
        with call_scope(CallFields(call_sid, "twilio")):
            logger.info("call %s: placed (outbound)", call_sid)
        body = {"call_sid": call_sid, "to": dial.to, "from": dial.from_number}
        return web.json_response(body, status=201)

    # --- Media Streams ----------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE)
        await ws.prepare(request)
        transport = TwilioTransport(
            ws,
            engine_rate=self.config.twilio_rate,
            calls=self._rest,
            whisper_url=self._base_url(request) + "/twilio/whisper",
        )
        try:
            async with asyncio.timeout(START_TIMEOUT):
                start = await transport.start()
        except (TimeoutError, ProtocolError):
            logger.warning("a Media Stream sent no 'start' message; closing it")
            await transport.close(WSCloseCode.POLICY_VIOLATION, "expected 'start'")
            return ws
        with call_scope(CallFields(start.call_sid, "twilio", start.stream_sid)):
            if not self._authorized(start):
                REJECTED_REQUESTS.inc()
                logger.warning(
                    "call %s: stream without a valid %s parameter; closing it",
                    start.call_sid,
                    TOKEN_PARAMETER,
                )
                await transport.close(WSCloseCode.POLICY_VIOLATION, "invalid stream token")
                return ws
            if not self.admission.admit(start.call_sid, time.monotonic()):
                REFUSED_CALLS.inc()
                logger.info("call %s: stream refused (server full or draining)", start.call_sid)
                await transport.close(TRY_AGAIN_LATER, "server busy")
                return ws
            try:
                await self._run_call(transport, transport.call_info, self.observers)
            finally:
                self.admission.release(start.call_sid)
                for kind, count in transport.protocol.problems.items():
                    BAD_CALLER_MESSAGES.labels(kind=kind).inc(count)
                LOST_FRAMES.inc(transport.protocol.frames_lost)
                CALLER_FRAMES_RECEIVED.inc(transport.protocol.frames_received)
                await transport.close()
        return ws

    def _authorized(self, start: StreamStarted) -> bool:
        token = self.config.twilio_auth_token
        if not token:
            return True
        given = start.custom_parameters.get(TOKEN_PARAMETER, "")
        return hmac.compare_digest(given, stream_token(token, start.call_sid))

    # --- browser ----------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_ROOT / "index.html")

    async def _browser(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            REJECTED_REQUESTS.inc()
            logger.warning("rejected a browser WebSocket from another site's page")
            return web.Response(status=403, text="cross-origin WebSocket refused\n")
        ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE)
        await ws.prepare(request)
        transport = BrowserTransport(ws)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                started = await transport.start()
        except (TimeoutError, ProtocolError):
            logger.warning("a browser sent no valid 'start' message; closing it")
            await transport.close(WSCloseCode.POLICY_VIOLATION, "expected 'start'")
            return ws
        call_id = "WS" + uuid.uuid4().hex
        with call_scope(CallFields(call_id, "browser")):
            if not self.admission.admit(call_id, time.monotonic()):
                REFUSED_CALLS.inc()
                logger.info("call %s: browser refused (server full or draining)", call_id)
                await transport.end("busy", BUSY_MESSAGE, code=TRY_AGAIN_LATER)
                return ws
            try:
                call = CallInfo(call_id=call_id, channel="browser", parameters=started.parameters)
                await self._run_call(transport, call, (*self.observers, PageObserver(transport)))
            finally:
                self.admission.release(call_id)
                for kind, count in transport.protocol.problems.items():
                    BAD_CALLER_MESSAGES.labels(kind=kind).inc(count)
                await transport.end("shutdown" if self.admission.draining else "hangup")
        return ws

    def _same_origin(self, request: web.Request) -> bool:
        """Whether a page on another site could have opened this socket (it may not use the agent).

        Clients other than browsers send no ``Origin`` and are welcome.
        """
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        allowed = {request.host}
        if self.config.public_url:
            allowed.add(urlsplit(self.config.public_url).netloc)
        return urlsplit(origin).netloc in allowed

    # --- calls ------------------------------------------------------------------------------

    async def _run_call(
        self, transport: Transport, info: CallInfo, observers: Sequence[Observer] = ()
    ) -> None:
        call_id = info.call_id
        keys, chosen = self.config.keys, self.providers
        recording = self._recording(transport, call_id)
        llm = registry.create("llm", chosen["llm"].name, keys, chosen["llm"].options)
        tts = cast(TTS, registry.create("tts", chosen["tts"].name, keys, chosen["tts"].options))
        session: Session | RealtimeSession
        if isinstance(llm, RealtimeModel):  # it hears and speaks: the TTS only voices the fallback
            session = RealtimeSession(
                self.agent,
                transport=recording or transport,
                model=llm,
                fallback_tts=tts,
                observers=observers,
                call=info,
            )
        else:
            session = Session(
                self.agent,
                transport=recording or transport,
                stt=cast(STT, registry.create("stt", chosen["stt"].name, keys, chosen["stt"].options)),
                llm=cast(LLM, llm),
                tts=tts,
                observers=observers,
                call=info,
            )
        run = asyncio.get_running_loop().create_task(session.run(), name=f"call-{call_id}")
        call = _Call(session, run)
        self.calls[call_id] = call
        ACTIVE_CALLS.inc()
        logger.info("call %s: started (%d in progress)", call_id, self.admission.active)
        try:
            await asyncio.wait([run])
            if call.say_goodbye:
                await _say_goodbye(session, session.transport)
            elif not run.cancelled() and (error := run.exception()) is not None:
                logger.error("call %s failed", call_id, exc_info=error)
        finally:
            if not run.done():  # the handler itself was cancelled (server stopping hard)
                run.cancel(SHUTDOWN_REASON)
                await asyncio.wait([run])
            await _close_providers(session)
            if recording is not None:
                await recording.aclose()
            ACTIVE_CALLS.dec()
            del self.calls[call_id]
            call.done.set()
            logger.info("call %s: ended", call_id)
            # Soon, not now: this frame is the last to hold the session, and it returns first.
            asyncio.get_running_loop().call_soon(self.ended_calls.ended)

    def _recording(self, transport: Transport, call_id: str) -> RecordingTransport | None:
        """The call's transport, recording to ``<VOICECORE_RECORDINGS>/<call id>.wav`` when set."""
        if self.config.recordings is None:
            return None
        name = re.sub(r"[^A-Za-z0-9_-]", "_", call_id)[:64] or "call"  # the id came over the wire
        path = Path(self.config.recordings) / f"{name}.wav"
        try:
            return RecordingTransport(transport, path)
        except OSError as error:  # a call goes on unrecorded rather than not at all
            logger.warning("call %s: cannot record to %s: %s", call_id, path, error)
            return None

    # --- operations -------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.admission.draining:
            return web.Response(status=503, text="draining\n")
        return web.Response(text=f"ready: {self.admission.active}/{self.config.max_calls} calls\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _twiml(document: str) -> web.Response:
    return web.Response(text=document, content_type="text/xml")


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _wait_all(calls: list[_Call], within: float) -> None:
    waits = [asyncio.ensure_future(call.done.wait()) for call in calls]
    _, pending = await asyncio.wait(waits, timeout=within)
    for waiter in pending:
        waiter.cancel()


async def _close_providers(session: Session | RealtimeSession) -> None:
    """Close the call's providers: they were made for it, and hold connections (and keep-alives)."""
    for provider in session.providers():
        close = getattr(provider, "aclose", None)
        if close is None:
            continue
        try:
            await close()
        except Exception:
            logger.warning("closing provider %s failed", getattr(provider, "name", "?"), exc_info=True)


async def _say_goodbye(session: Session | RealtimeSession, transport: Transport) -> None:
    """Clear the call's queued audio, say :data:`GOODBYE_MESSAGE`, and wait until it has played."""
    tts = session.tts
    if tts is None:
        return
    try:
        async with asyncio.timeout(GOODBYE_TIMEOUT):
            await transport.clear()
            speech = synthesize(tts, GOODBYE_MESSAGE, transport.output_format, voice=session.config.voice)
            async for audio in speech:
                await transport.send_audio(audio)
            await transport.send_mark("goodbye")
            async for event in transport.events():
                if event == MarkPlayed("goodbye") or isinstance(event, CallerHungUp):
                    break
    except (TimeoutError, ProviderError) as error:
        logger.warning("could not say goodbye on call %s: %r", session.call_id, error)
