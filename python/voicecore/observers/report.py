"""The end-of-call report webhook: one signed JSON POST per finished call, retried until delivered.

:class:`CallReportObserver` gathers each call's events
(:class:`~voicecore.sansio.call_report.ReportBuilder`) and, when the call closes, POSTs its
:class:`~voicecore.sansio.call_report.CallReport` to ``url`` from a thread of its own, so a
slow or unreachable endpoint never delays a call or the other observers.

With a ``secret`` every POST is signed as `Standard Webhooks <https://www.standardwebhooks.com>`_
sign them (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), so the receiver can
check it with any Standard Webhooks library; ``webhook-id`` is the same on every attempt, so
it can also drop a report it already has.

Delivery: network errors, timeouts and 408/425/429/5xx answers are tried again after 1, 2, 4,
... s (at most 60 s, or what ``Retry-After`` asks), up to ``attempts`` times; any other
answer (4xx, a redirect) is a refusal, logged and not repeated. :meth:`~CallReportObserver.close`
makes one last attempt at every report still pending, within ``close_timeout``.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import logging
import math
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPException
from urllib.parse import urlsplit

from prometheus_client import Counter
from standardwebhooks import Webhook

from voicecore import __version__
from voicecore.errors import ConfigError
from voicecore.sansio.call_report import CallReport, ReportBuilder, encode, retry_delay

__all__ = ["CallReportObserver", "check_report_url", "check_secret"]

logger = logging.getLogger(__name__)

REPORTS = Counter(
    "voicecore_call_reports",
    "End-of-call reports by outcome (delivered; refused: a 4xx or redirect; lost: out of attempts).",
    ["outcome"],
)
REPORT_ATTEMPTS = Counter("voicecore_call_report_attempts", "POSTs of end-of-call reports, retries included.")

_STOP = object()  # queued by close(): take what is queued, make a last attempt at the rest, end


def check_report_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL.

    Raises:
        ConfigError: It is not.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"the report URL must be an http(s) URL like https://crm.example/calls, not {url!r}"
        )
    return url


def check_secret(secret: str) -> str:
    """``secret`` if it is a Standard Webhooks secret: ``whsec_`` and 24-64 bytes in base64.

    Raises:
        ConfigError: It is not; the message says how to make one.
    """
    make = (
        'make one with: python -c "import base64, secrets; '
        "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
    )
    if not secret.startswith("whsec_"):
        raise ConfigError(f"the report secret must start with 'whsec_' (Standard Webhooks); {make}")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"the report secret is not base64 after 'whsec_'; {make}") from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(f"the report secret must hold 24 to 64 bytes, not {len(key)}; {make}")
    return secret


@dataclass(slots=True)
class _Delivery:
    """One report on its way: its body, its id (the same on every attempt), attempts so far."""

    call_id: str
    body: bytes
    message_id: str
    attempts: int = 0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured: say so rather than POST elsewhere."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class CallReportObserver:
    """POSTs each finished call's report to ``url``; see the module docstring.

    Args:
        url: The endpoint (http or https).
        secret: A Standard Webhooks secret (``whsec_...``) to sign with; None sends unsigned.
        redact: Redact PII in the transcript, tool data, numbers and parameters.
        headers: More headers for every POST (an ``Authorization``, say).
        timeout: Seconds one POST may take.
        attempts: POSTs per report before it is given up as lost.
        backoff: Seconds before the first retry (doubling after each).
        close_timeout: Seconds :meth:`close` spends on what is still pending.
        max_queue: Events waiting to be gathered; more are dropped and counted.
        max_pending: Reports waiting for delivery; past it the oldest is given up.

    Raises:
        ConfigError: The URL, the secret or a number is invalid.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        redact: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        attempts: int = 8,
        backoff: float = 1.0,
        close_timeout: float = 10.0,
        max_queue: int = 100_000,
        max_pending: int = 1_000,
    ) -> None:
        self.url = check_report_url(url)
        self._signer = Webhook(check_secret(secret)) if secret is not None else None
        for name, value in (("timeout", timeout), ("backoff", backoff), ("close_timeout", close_timeout)):
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be finite seconds >= 0, not {value!r}")
        if attempts < 1 or max_queue < 1 or max_pending < 1:
            raise ConfigError("attempts, max_queue and max_pending must be at least 1")
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": f"voicecore/{__version__}",
            **(headers or {}),
        }
        self.timeout, self.attempts, self.backoff = timeout, attempts, backoff
        self.close_timeout, self.max_pending = close_timeout, max_pending
        #: Events dropped because the queue was full.
        self.dropped = 0
        self._builder = ReportBuilder(redact=redact)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._opener = urllib.request.build_opener(_NoRedirects())
        self._pending: list[tuple[float, int, _Delivery]] = []  # (due, order, delivery): a heap
        self._order = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="voicecore-call-reports", daemon=True)
        self._thread.start()

    # --- the observer's side -------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        """Queue ``event`` for the delivery thread; never blocks."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                logger.error(
                    "call reports: the event queue is full; dropping events (reports will miss them)"
                )

    def close(self) -> None:
        """Deliver what can be delivered within ``close_timeout``, then stop; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    # --- the delivery thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._deliver_due()
            wait = max(self._pending[0][0] - time.monotonic(), 0.0) if self._pending else None
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            if item is _STOP:
                break
            self._take(item)
        while True:  # events queued before close(), then one last attempt at everything pending
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            self._take(item)
        self._deliver_all_before(time.monotonic() + self.close_timeout)

    def _take(self, event: object) -> None:
        try:
            report = self._builder.add(event, time.time() - time.monotonic())
        except Exception:  # a malformed event must not stop the thread
            logger.exception("call reports: could not take a %s", type(event).__name__)
            return
        if report is not None:
            self._schedule(self._delivery(report), time.monotonic())

    def _delivery(self, report: CallReport) -> _Delivery:
        return _Delivery(report.call_id, encode(report), f"msg_{uuid.uuid4().hex}")

    def _schedule(self, delivery: _Delivery, due: float) -> None:
        heapq.heappush(self._pending, (due, next(self._order), delivery))
        if len(self._pending) > self.max_pending:
            oldest = min(self._pending, key=lambda entry: entry[1])
            self._pending.remove(oldest)
            heapq.heapify(self._pending)
            self._lost(oldest[2], f"more than {self.max_pending} reports were waiting")

    def _deliver_due(self) -> None:
        while self._pending and self._pending[0][0] <= time.monotonic():
            _, _, delivery = heapq.heappop(self._pending)
            self._attempt(delivery, final=False)

    def _deliver_all_before(self, deadline: float) -> None:
        for _, _, delivery in sorted(self._pending):
            if time.monotonic() >= deadline:
                self._lost(delivery, "the server stopped before it could be delivered")
                continue
            self._attempt(delivery, final=True, deadline=deadline)
        self._pending.clear()

    def _attempt(self, delivery: _Delivery, *, final: bool, deadline: float | None = None) -> None:
        delivery.attempts += 1
        timeout = (
            self.timeout if deadline is None else max(min(self.timeout, deadline - time.monotonic()), 0.1)
        )
        status, retry_after, problem = self._post(delivery, timeout)
        if status is not None and 200 <= status < 300:
            REPORTS.labels(outcome="delivered").inc()
            logger.debug("call %s: report delivered (attempt %d)", delivery.call_id, delivery.attempts)
            return
        delay = retry_delay(delivery.attempts, status, retry_after, now=time.time(), backoff=self.backoff)
        if delay is None:
            REPORTS.labels(outcome="refused").inc()
            logger.error(
                "call %s: the report endpoint refused it (%s); not retried", delivery.call_id, problem
            )
        elif final or delivery.attempts >= self.attempts:
            self._lost(delivery, f"{problem}, attempt {delivery.attempts}")
        else:
            logger.warning(
                "call %s: report not delivered (%s); retrying in %.1f s", delivery.call_id, problem, delay
            )
            self._schedule(delivery, time.monotonic() + delay)

    def _lost(self, delivery: _Delivery, why: str) -> None:
        REPORTS.labels(outcome="lost").inc()
        logger.error("call %s: report lost (%s)", delivery.call_id, why)

    def _post(self, delivery: _Delivery, timeout: float) -> tuple[int | None, str | None, str]:
        """POST one attempt: (status or None, its Retry-After, what happened, for the log)."""
        REPORT_ATTEMPTS.inc()
        headers = dict(self.headers)
        if self._signer is not None:
            now = datetime.now(UTC)
            headers["webhook-id"] = delivery.message_id
            headers["webhook-timestamp"] = str(math.floor(now.timestamp()))
            headers["webhook-signature"] = self._signer.sign(delivery.message_id, now, delivery.body.decode())
        request = urllib.request.Request(self.url, data=delivery.body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read()
                return response.status, None, f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            with error:
                where = f" to {error.headers.get('Location')}" if 300 <= error.code < 400 else ""
                return error.code, error.headers.get("Retry-After"), f"HTTP {error.code}{where}"
        except (urllib.error.URLError, HTTPException, OSError) as error:
            reason = getattr(error, "reason", error)
            return None, None, f"no answer: {reason}"
