from __future__ import annotations

import pytest

from voicecore.call_info import CallInfo, parameter_problem


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


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("first_name", "Ana", None),
        ("a.b-c_9", "x" * 300, None),
        ("nowhere", "x", None),
        ("", "x", "use 1-64 letters"),
        ("a" * 65, "x", "use 1-64 letters"),
        ("first name", "x", "use 1-64 letters"),
        ("To", "+1555", "is set by the server"),
        ("now", "x", "name built-in variables"),
        ("now.date", "x", "name built-in variables"),
        ("call.anything", "x", "name built-in variables"),
        ("notes", "x" * 396, "at most 400 characters"),
    ],
)
def test_a_parameter_problem_says_what_to_change(name: str, value: str, problem: str | None) -> None:
    found = parameter_problem(name, value)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
