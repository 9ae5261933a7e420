from __future__ import annotations

import pytest

from voicecore.call_info import CallInfo


@pytest.mark.parametrize(
    ("direction", "expected", "remote"),
    [
        ("inbound", "inbound", "+14155550100"),
        ("outbound-api", "outbound", "+14155550199"),
        ("outbound-dial", "outbound", "+14155550199"),
    ],
)
def test_a_twilio_stream_describes_the_call(direction: str, expected: str, remote: str) -> None:
    parameters = {
        "From": "+14155550100",
        "To": "+14155550199",
        "Direction": direction,
        "CallerName": "ADA LOVELACE",
        "AnsweredBy": "human",
        "voicecore_token": "secret",
        "appointment": "Tuesday 3pm",
    }
    call = CallInfo.from_twilio("CA1", parameters)
    assert call == CallInfo(
        call_id="CA1",
        channel="twilio",
        direction=expected,  # type: ignore[arg-type]
        from_number="+14155550100",
        to_number="+14155550199",
        caller_name="ADA LOVELACE",
        answered_by="human",
        parameters={"appointment": "Tuesday 3pm"},
    )
    assert call.remote_number == remote


def test_a_stream_with_no_parameters_is_an_inbound_call_of_unknown_numbers() -> None:
    call = CallInfo.from_twilio("CA1", {})
    assert (call.direction, call.from_number, call.to_number, call.remote_number) == (
        "inbound",
        None,
        None,
        None,
    )
    assert call.parameters == {}
