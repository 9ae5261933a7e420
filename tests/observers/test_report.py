"""The report webhook over real HTTP on 127.0.0.1: signed, retried, refused, flushed at close."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from standardwebhooks import Webhook

from voicecore import events as ev
from voicecore.errors import ConfigError
from voicecore.observers.report import CallReportObserver, check_secret

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP endpoint that answers each POST with the next scripted (status, headers)."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, within: float = 10.0) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, within), self.received


@contextmanager
def receiving(*script: tuple[int, dict[str, str]]) -> Iterator[Receiver]:
    receiver = Receiver(list(script))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, headers = receiver.script.pop(0) if receiver.script else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with receiver.arrived:
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.notify_all()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/calls"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield receiver
        finally:
            server.shutdown()


def one_call(observer: CallReportObserver, call_id: str = "CA1") -> None:
    start = time.monotonic()
    observer.on_event(ev.CallOpened(call_id=call_id, at=start))
    observer.on_event(ev.CallerSaid(call_id=call_id, at=start + 0.5, text="hello there", final=True))
    observer.on_event(ev.AgentSaid(call_id=call_id, at=start + 1.0, turn=1, text="Hi!", complete=True))
    observer.on_event(ev.CallClosed(call_id=call_id, at=start + 2.0, reason="caller hung up"))


def verify_by_hand(received: Received) -> dict[str, object]:
    """The Standard Webhooks check, written from the spec: base64 HMAC-SHA256 of id.timestamp.body."""
    message_id, stamp = received.headers["webhook-id"], received.headers["webhook-timestamp"]
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{message_id}.{stamp}.".encode() + received.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert received.headers["webhook-signature"] == expected
    assert abs(int(stamp) - time.time()) < 60
    body = json.loads(received.body)
    assert isinstance(body, dict)
    return body


def test_a_finished_call_is_posted_once_signed_the_standard_webhooks_way() -> None:
    with receiving() as receiver:
        observer = CallReportObserver(receiver.url, secret=SECRET, headers={"Authorization": "Bearer t"})
        one_call(observer)
        receiver.wait_for(1)
        observer.close()
    [received] = receiver.received
    body = verify_by_hand(received)
    assert Webhook(SECRET).verify(received.body, received.headers) == body  # and as its library does
    assert received.headers["content-type"] == "application/json"
    assert received.headers["authorization"] == "Bearer t"
    assert received.headers["user-agent"].startswith("voicecore/")
    assert body["call_id"] == "CA1"
    assert body["reason"] == "caller hung up"
    assert body["duration_s"] == 2.0
    assert [(line["role"], line["text"]) for line in body["transcript"]] == [  # type: ignore[index]
        ("caller", "hello there"),
        ("agent", "Hi!"),
    ]


def test_failures_are_retried_with_the_same_id_until_delivered() -> None:
    script = [(503, {}), (429, {"Retry-After": "0"}), (500, {}), (200, {})]
    with receiving(*script) as receiver:
        observer = CallReportObserver(receiver.url, secret=SECRET, backoff=0.01)
        one_call(observer)
        receiver.wait_for(4)
        observer.close()
    ids = {received.headers["webhook-id"] for received in receiver.received}
    assert len(ids) == 1  # one message, so the receiver can drop duplicates
    bodies = {received.body for received in receiver.received}
    assert len(bodies) == 1
    for received in receiver.received:
        verify_by_hand(received)  # each attempt signed afresh


@pytest.mark.parametrize(
    ("status", "headers"), [(400, {}), (404, {}), (301, {"Location": "https://elsewhere"})]
)
def test_a_refusal_is_logged_and_not_repeated(
    status: int, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with receiving((status, headers), (200, {})) as receiver, caplog.at_level(logging.ERROR):
        observer = CallReportObserver(receiver.url, backoff=0.01)
        one_call(observer)
        receiver.wait_for(1)
        time.sleep(0.2)
        observer.close()
    assert len(receiver.received) == 1
    assert f"refused it (HTTP {status}" in caplog.text
    assert "webhook-signature" not in receiver.received[0].headers  # no secret: unsigned


def test_an_unreachable_endpoint_loses_the_report_after_its_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with caplog.at_level(logging.WARNING):
        observer = CallReportObserver(f"http://127.0.0.1:{port}/", attempts=3, backoff=0.01)
        one_call(observer)
        deadline = time.monotonic() + 10
        while "report lost" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        observer.close()
    assert caplog.text.count("retrying in") == 2
    assert "call CA1: report lost (no answer:" in caplog.text
    assert "attempt 3)" in caplog.text


def test_close_makes_a_last_attempt_at_what_waits_for_its_retry() -> None:
    with receiving((503, {}), (200, {})) as receiver:
        observer = CallReportObserver(receiver.url, backoff=60.0)
        one_call(observer, "CA1")
        receiver.wait_for(1)  # failed; the retry is a minute away
        one_call(observer, "CA2")
        started = time.monotonic()
        observer.close()
        assert time.monotonic() - started < 5
    calls = [json.loads(received.body)["call_id"] for received in receiver.received]
    assert sorted(calls[1:]) == ["CA1", "CA2"]
    assert calls[0] == "CA1"


def test_settings_are_checked() -> None:
    assert check_secret(SECRET) == SECRET
    with pytest.raises(ConfigError, match=r"must start with 'whsec_'.*make one with"):
        check_secret("hunter2")
    with pytest.raises(ConfigError, match="not base64"):
        check_secret("whsec_not*base64!")
    with pytest.raises(ConfigError, match="24 to 64 bytes, not 3"):
        check_secret("whsec_" + base64.b64encode(b"abc").decode())
    with pytest.raises(ConfigError, match="http\\(s\\) URL"):
        CallReportObserver("ftp://crm.example/hook")
    with pytest.raises(ConfigError, match="attempts"):
        CallReportObserver("https://crm.example/hook", attempts=0)
