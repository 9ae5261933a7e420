"""The intents section of agent files, and the built-in front-desk demo agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from voicecore.agent import load_agent
from voicecore.agents import FRONT_DESK
from voicecore.agents.front_desk import book_table
from voicecore.errors import ConfigError
from voicecore.intents import IntentRouter
from voicecore.tools import invoke


def test_the_demo_agent_loads_with_its_intents_and_tool() -> None:
    agent = load_agent(FRONT_DESK)
    names = [intent.name for intent in agent.intents]
    assert names == ["opening_hours", "location", "book_table", "vegetarian", "human", "goodbye"]
    assert agent.intent_threshold == 0.65
    assert agent.config.tools is not None
    assert [tool.name for tool in agent.config.tools] == ["book_table"]
    booking = agent.intents[2]
    assert booking.tool == "book_table"
    assert [slot.name for slot in booking.slots] == ["people", "time"]
    assert agent.intents[4].arguments == {"to": "+15550100", "summary": "The caller asked for a person."}


def test_the_demo_agents_intents_route_its_callers() -> None:
    agent = load_agent(FRONT_DESK)
    router = IntentRouter(agent.intents, threshold=agent.intent_threshold)
    for text, name in [
        ("when are you open", "opening_hours"),
        ("where are you located", "location"),
        ("a table for 2 at 7 please", "book_table"),
        ("can I talk to a real person", "human"),
        ("thanks bye", "goodbye"),
    ]:
        match = router.match(text)
        assert match is not None, text
        assert match.intent.name == name


def test_the_booking_tool_answers_in_words() -> None:
    assert book_table.fn(2, "7:30") == "Booked: a table for 2 people at 7:30. See you then!"
    assert book_table.fn(1, "12:00") == "Booked: a table for one person at 12. See you then!"
    assert "between noon and ten" in book_table.fn(2, "9:00 am")
    assert "between one and twelve" in book_table.fn(40, "7:00")
    assert "didn't understand" in book_table.fn(2, "soon")
    result = asyncio.run(invoke(book_table, '{"people": 4, "time": "8:00"}'))
    assert result.content == "Booked: a table for 4 people at 8. See you then!"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text('instructions = "x"\n' + body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[intents]]\nname = "a"\nexamples = ["hi"]\n', r"intents\[0\]: intent 'a': give a reply"),
        ('[[intents]]\nname = "a"\nexamples = ["hi"]\nreply = "x"\ncolour = 1\n', "colour"),
        (
            '[[intents]]\nname = "a"\nexamples = ["hi"]\nreply = "x"\n'
            'slots = [{ name = "n", kind = "age" }]\n',
            r"intents\[0\]: slot 'n': kind",
        ),
    ],
)
def test_bad_intents_in_a_file_name_the_file_and_the_intent(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        load_agent(write(tmp_path, body))
    assert "agent.toml" in str(error.value)


def test_files_without_intents_have_none(tmp_path: Path) -> None:
    assert load_agent(write(tmp_path, "")).intents == ()
