"""The end-of-call report without I/O: events in, one report per call out; the retry policy."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest

from voicecore import events as ev
from voicecore.call_info import CallInfo
from voicecore.sansio.call_report import ReportBuilder, encode, retry_delay
from voicecore.usage import CallUsage, ProviderUsage

WALL = 1_795_000_000.0 - 100.0  # Unix time = event time + WALL


def a_call(call_id: str = "CA1", opened: float = 100.0) -> list[object]:
    info = CallInfo(
        call_id=call_id,
        channel="twilio",
        direction="inbound",
        from_number="+14155550100",
        to_number="+14155550199",
        parameters={"account": "42", "email": "ana@example.com"},
    )
    return [
        ev.CallOpened(call_id=call_id, at=opened, call=info),
        ev.AgentSaid(
            call_id=call_id, at=opened + 1.0, turn=0, text="Luigi's, how can I help?", complete=True
        ),
        ev.CallerSaid(call_id=call_id, at=opened + 2.0, text="a table for", final=False),
        ev.CallerSaid(
            call_id=call_id,
            at=opened + 2.5,
            text="A table for two, my card is 4111 1111 1111 1111",
            final=True,
        ),
        ev.ToolCalled(call_id=call_id, at=opened + 3.0, turn=1, name="book", arguments='{"people": 2}'),
        ev.ToolCalled(call_id=call_id, at=opened + 3.0, turn=1, name="hours", arguments="{}"),
        ev.ToolReturned(
            call_id=call_id, at=opened + 3.2, turn=1, name="hours", content="12-23", is_error=False
        ),
        ev.ToolReturned(call_id=call_id, at=opened + 3.4, turn=1, name="book", content="full", is_error=True),
        ev.TurnTimings(call_id=call_id, at=opened + 4.0, turn=1, stt_final=0.08, first_audio_played=0.6123),
        ev.AgentSaid(call_id=call_id, at=opened + 5.0, turn=1, text="Sorry, we are", complete=False),
        ev.BargedIn(call_id=call_id, at=opened + 5.0, turn=1, dropped_ms=800.0),
        ev.CallerPressed(call_id=call_id, at=opened + 6.0, digit="0"),
    ]


USAGE = CallUsage(
    providers=(ProviderUsage(provider="deepgram", stt_seconds=9.5, cost_usd=0.0012),), cost_usd=0.0012
)


def test_a_calls_events_become_one_report_when_it_closes() -> None:
    builder = ReportBuilder()
    assert all(builder.add(event, WALL) is None for event in a_call())
    assert builder.open_calls == 1
    report = builder.add(ev.CallClosed(call_id="CA1", at=130.25, reason="caller hung up", usage=USAGE), WALL)
    assert report is not None
    assert builder.open_calls == 0
    body = json.loads(encode(report))
    assert body["type"] == "call.ended"
    assert body["call_id"] == "CA1"
    assert body["call"]["from_number"] == "+14155550100"
    assert body["call"]["parameters"] == {"account": "42", "email": "ana@example.com"}
    assert body["started_at"] == "2026-11-18T11:06:40.000Z"
    assert body["ended_at"] == "2026-11-18T11:07:10.250Z"
    assert body["duration_s"] == 30.25
    assert body["reason"] == "caller hung up"
    assert body["transcript"] == [
        {"role": "agent", "text": "Luigi's, how can I help?", "at": 1.0, "turn": 0, "complete": True},
        {"role": "caller", "text": "A table for two, my card is 4111 1111 1111 1111", "at": 2.5},
        {"role": "agent", "text": "Sorry, we are", "at": 5.0, "turn": 1, "complete": False},
        {"role": "keypad", "text": "0", "at": 6.0},
    ]
    assert body["tools"] == [
        {
            "turn": 1,
            "name": "book",
            "arguments": '{"people": 2}',
            "at": 3.0,
            "result": "full",
            "is_error": True,
        },
        {"turn": 1, "name": "hours", "arguments": "{}", "at": 3.0, "result": "12-23", "is_error": False},
    ]
    assert body["barge_ins"] == 1
    assert body["turns"] == [
        {
            "turn": 1,
            "ms": {
                "stt_final": 80.0,
                "llm_first_token": None,
                "first_sentence": None,
                "tts_first_byte": None,
                "first_audio_sent": None,
                "first_audio_played": 612.3,
            },
        }
    ]
    assert body["usage"]["cost_usd"] == 0.0012
    assert body["usage"]["providers"][0]["provider"] == "deepgram"


def test_calls_interleave_and_each_gets_its_own_report() -> None:
    builder = ReportBuilder()
    first, second = a_call("CA1", 100.0), a_call("CA2", 101.0)
    for pair in zip(first, second, strict=True):
        for event in pair:
            assert builder.add(event, WALL) is None
    closed_second = builder.add(ev.CallClosed(call_id="CA2", at=111.0, reason="agent ended the call"), WALL)
    assert closed_second is not None
    assert closed_second.call_id == "CA2"
    assert closed_second.duration_s == 10.0
    assert len(closed_second.transcript) == 4
    assert builder.open_calls == 1


def test_a_redacting_builder_hides_pii_in_texts_numbers_and_parameters() -> None:
    builder = ReportBuilder(redact=True)
    for event in a_call():
        builder.add(event, WALL)
    report = builder.add(ev.CallClosed(call_id="CA1", at=130.0, reason="caller hung up"), WALL)
    body = encode(report).decode() if report is not None else ""
    assert "4111" not in body
    assert "ana@example.com" not in body
    assert "+14155550100" not in body
    assert '"account":"42"' in body  # not PII: kept


def test_a_call_seen_only_from_its_middle_still_reports_and_strays_are_ignored() -> None:
    builder = ReportBuilder()
    assert builder.add(object(), WALL) is None
    builder.add(ev.CallerSaid(call_id="CA7", at=50.0, text="hello", final=True), WALL)
    report = builder.add(ev.CallClosed(call_id="CA7", at=52.0, reason="caller hung up"), WALL)
    assert report is not None
    assert report.call is None
    assert report.duration_s == 2.0
    assert [entry.text for entry in report.transcript] == ["hello"]


def test_calls_that_never_close_are_dropped_oldest_first_past_the_limit() -> None:
    builder = ReportBuilder(max_open=2)
    for n in range(3):
        builder.add(ev.CallerSaid(call_id=f"CA{n}", at=float(n), text="hi", final=True), WALL)
    assert builder.open_calls == 2
    report = builder.add(ev.CallClosed(call_id="CA0", at=9.0, reason="x"), WALL)
    assert report is not None
    assert report.transcript == []  # its events were dropped with it


@pytest.mark.parametrize(
    ("attempts", "status", "retry_after", "delay"),
    [
        (1, 200, None, None),
        (1, 204, None, None),
        (1, 400, None, None),
        (1, 401, None, None),
        (1, 404, None, None),
        (1, 302, None, None),
        (1, None, None, 1.0),
        (2, None, None, 2.0),
        (4, 503, None, 8.0),
        (10, 500, None, 60.0),
        (1, 429, "5", 5.0),
        (3, 429, "1", 4.0),
        (1, 503, "3600", 60.0),
        (1, 408, "soon", 1.0),
        (1, 425, None, 1.0),
    ],
)
def test_retry_policy(
    attempts: int, status: int | None, retry_after: str | None, delay: float | None
) -> None:
    assert retry_delay(attempts, status, retry_after) == delay


def test_retry_after_may_be_an_http_date() -> None:
    now = 1_795_000_000.0
    assert retry_delay(1, 503, formatdate(now + 12, usegmt=True), now=now) == 12.0
    assert retry_delay(1, 503, formatdate(now - 30, usegmt=True), now=now) == 1.0
