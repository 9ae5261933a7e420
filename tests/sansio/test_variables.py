"""Call variables: what counts as a placeholder, how each call fills them in, what is refused."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicecore.call_info import CallInfo
from voicecore.errors import ConfigError
from voicecore.sansio.turn import TurnConfig
from voicecore.sansio.variables import (
    BUILT_INS,
    Placeholder,
    call_variables,
    check_templates,
    missing_parameters,
    personalize,
    placeholders,
    render,
    template_texts,
)

NOW = datetime(2026, 11, 25, 14, 3, tzinfo=ZoneInfo("Europe/Rome"))


def test_placeholders_take_names_defaults_and_spaces() -> None:
    text = "Hi {{ first_name | there }}, your {{appointment.time}} with {{doctor|}} on {{now.date}}."
    assert list(placeholders(text)) == [
        Placeholder("first_name", "there"),
        Placeholder("appointment.time", None),
        Placeholder("doctor", ""),
        Placeholder("now.date", None),
    ]


@pytest.mark.parametrize(
    "text",
    [
        'Answer in JSON like {"slots": {"day": "monday"}}.',
        "Single {braces} and {{ unclosed",
        "{{not a name}} {{}} {{a|b|c}} {{ {x} }}",
        "{{-x}} {{.x}} {{x y}} {{x}y}}",
    ],
)
def test_text_that_is_no_placeholder_is_left_as_written(text: str) -> None:
    assert render(text, {"x": "X", "a": "A", "not": "N"}).text == text


@given(st.text())
def test_text_without_double_braces_never_changes(text: str) -> None:
    text = text.replace("{{", "{")
    assert render(text, {"a": "b"}).text == text


def test_values_are_inserted_as_they_are_not_rendered_again() -> None:
    assert render("{{x}}", {"x": "{{y}}", "y": "secret"}).text == "{{y}}"


def test_render_fills_values_then_defaults_and_reports_what_is_missing() -> None:
    rendered = render(
        "Hi {{name|there}}, about {{topic}} and {{topic}} at {{time}}.", {"topic": "your order", "name": ""}
    )
    assert rendered.text == "Hi there, about your order and your order at ."
    assert rendered.missing == ("time",)


def test_a_twilio_calls_variables_are_its_parameters_and_the_built_ins() -> None:
    call = CallInfo(
        call_id="CA123",
        channel="twilio",
        direction="outbound",
        from_number="+14155550100",
        to_number="+393331234567",
        parameters={"first_name": "Ana", "now.date": "forged", "call.id": "forged"},
    )
    variables = call_variables(call, NOW)
    assert variables == {
        "first_name": "Ana",
        "call.id": "CA123",
        "call.channel": "twilio",
        "call.direction": "outbound",
        "call.from": "+14155550100",
        "call.to": "+393331234567",
        "call.remote_number": "+393331234567",
        "now": "Wednesday 2026-11-25 14:03 (Europe/Rome)",
        "now.date": "2026-11-25",
        "now.weekday": "Wednesday",
        "now.time": "14:03",
        "now.timezone": "Europe/Rome",
    }
    assert set(variables) - {"first_name"} <= set(BUILT_INS)


def test_what_a_channel_does_not_know_is_missing_not_invented() -> None:
    variables = call_variables(CallInfo(call_id="WS1", channel="browser"), NOW)
    rendered = render("Calling from {{call.from|the web}}; name {{call.caller_name}}.", variables)
    assert rendered.text == "Calling from the web; name ."
    assert rendered.missing == ("call.caller_name",)


def test_check_templates_refuses_unknown_built_ins_by_field() -> None:
    check_templates({"greeting": "{{call.from}} {{now}} {{nowhere}} {{caller.number}}"})
    with pytest.raises(ConfigError, match=r"turn\.goodbye: \{\{call\.number\}\} is no built-in.*call\.from"):
        check_templates({"instructions": "fine", "turn.goodbye": "Bye {{call.number}}"})
    with pytest.raises(ConfigError, match=r"now\.day"):
        check_templates({"instructions": "Today is {{now.day}}"})


def test_missing_parameters_lists_each_name_once_with_its_fields() -> None:
    texts = {
        "instructions": "The patient is {{first_name}} {{last_name|}}; today is {{now.date}}.",
        "greeting": "Hi {{first_name}}, about {{appointment}}?",
        "voicemail": "Call back, {{first_name}}.",
    }
    missing = missing_parameters(texts, {"appointment": "Tuesday", "unused": "x"})
    assert missing == {"first_name": ["instructions", "greeting", "voicemail"]}
    assert missing_parameters(texts, {"first_name": "Ana", "appointment": "Tuesday"}) == {}
    empty = missing_parameters(texts, {"first_name": "", "appointment": "Tuesday"})
    assert empty == {"first_name": ["instructions", "greeting", "voicemail"]}


def test_template_texts_name_every_phrase_the_agent_can_say() -> None:
    turn = TurnConfig(greeting="Hi", voicemail="Call us", fillers=("One moment.", "Hm."))
    assert template_texts("Be brief.", turn) == {
        "instructions": "Be brief.",
        "greeting": "Hi",
        "voicemail": "Call us",
        "turn.fallback": turn.fallback,
        "turn.idle_prompt": turn.idle_prompt,
        "turn.goodbye": turn.goodbye,
        "turn.fillers[0]": "One moment.",
        "turn.fillers[1]": "Hm.",
    }
    assert "greeting" not in template_texts("x", TurnConfig())  # None: nothing to fill in


def test_personalize_fills_every_phrase_and_drops_one_that_renders_blank() -> None:
    turn = TurnConfig(
        greeting="{{greeting}}",
        voicemail="{{first_name}}, call {{call.from}} back.",
        goodbye="Bye {{first_name|now}}.",
        fillers=("One moment, {{first_name}}.",),
        idle_after=5.0,
    )
    variables = call_variables(
        CallInfo(call_id="CA1", from_number="+14155550100", parameters={"first_name": "Ana"}), NOW
    )
    instructions, personal, lacking = personalize("Today is {{now.weekday}}. {{notes}}", turn, variables)
    assert instructions == "Today is Wednesday. "
    assert personal.greeting is None  # nothing to say: the agent waits for the caller
    assert personal.voicemail == "Ana, call +14155550100 back."
    assert personal.goodbye == "Bye Ana."
    assert personal.fillers == ("One moment, Ana.",)
    assert personal.idle_after == 5.0  # the rest of the settings are untouched
    assert lacking == {"instructions": ("notes",), "greeting": ("greeting",)}
