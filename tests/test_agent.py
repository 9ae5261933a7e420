"""Agents defined in Python or in TOML/YAML files; errors name the file and the field."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from voicecore.agent import Agent, ProviderChoice, load_agent
from voicecore.call_info import CallInfo
from voicecore.errors import ConfigError
from voicecore.sansio.turn import TurnConfig
from voicecore.tools import function_tool, invoke
from voicecore.usage import Prices
from voicecore.webhook import webhook_tool


class Luigi(Agent):
    instructions = "You book tables at Luigi's."
    greeting = "Luigi's, how can I help?"
    voicemail = "This is Luigi's about your table. Please call us back."
    turn = TurnConfig(filler_after=1.0, turn_timeout=5.0)

    @function_tool
    def opening_hours(self, day: str) -> str:
        """Opening hours on a day.

        Args:
            day: The weekday.
        """
        return f"{day}: 12-23"


def test_python_agent_gives_its_settings_and_bound_tools() -> None:
    config = Luigi().session_config()
    assert config.instructions == "You book tables at Luigi's."
    assert config.turn.greeting == "Luigi's, how can I help?"
    assert config.turn.voicemail == "This is Luigi's about your table. Please call us back."
    assert config.turn.filler_after == 1.0
    assert config.tools is not None
    assert [tool.name for tool in config.tools] == ["opening_hours"]
    assert config.tools["opening_hours"].fn(day="Monday") == "Monday: 12-23"


def test_an_agents_variables_and_time_zone_are_checked_when_it_is_made() -> None:
    class Clinic(Agent):
        instructions = "You remind {{first_name}} on {{now.date}}."
        greeting = "Hi {{first_name|there}}."
        timezone = "Europe/Rome"

    assert Clinic().session_config().timezone == "Europe/Rome"
    assert Clinic().session_config().instructions == "You remind {{first_name}} on {{now.date}}."

    class Typo(Clinic):
        instructions = "Today is {{now.today}}."

    with pytest.raises(ConfigError, match=r"^Typo\.instructions: \{\{now\.today\}\} is no built-in"):
        Typo().session_config()

    class Nowhere(Clinic):
        timezone = "Europe/Atlantis"

    with pytest.raises(ConfigError, match=r"^Nowhere\.timezone: 'Europe/Atlantis'"):
        Nowhere().session_config()


def test_python_agent_without_instructions_is_rejected() -> None:
    class Empty(Agent):
        pass

    with pytest.raises(ConfigError, match=r"Empty\.instructions"):
        Empty().session_config()


GOOD = """
instructions = "You book tables at Luigi's."
greeting = "Luigi's, how can I help?"
voicemail = "Sono Luigi's, per il suo tavolo. Ci richiami."
language = "it"

[providers]
stt = "deepgram"
llm = { name = "openai", model = "gpt-4o-mini", base_url = "http://127.0.0.1:8000/v1" }

[turn]
filler_after = 1.2
fillers = ["Un momento.", "Vediamo."]
backchannels = ["Sì", "ok"]
voicemail_silence = 1.5

[[tools]]
python = "tests.agents.sample_tools:book_table"

[[tools]]
python = "tests.agents.sample_tools:plain_function"

[[tools]]
name = "opening_hours"
description = "Today's opening hours."
url = "https://luigis.example/api/hours"
method = "GET"
"""


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_agent_file(tmp_path: Path) -> None:
    definition = load_agent(write(tmp_path, GOOD))
    config = definition.config
    assert config.turn.greeting == "Luigi's, how can I help?"
    assert config.turn.filler_after == 1.2
    assert (config.turn.voicemail, config.turn.voicemail_silence) == (
        "Sono Luigi's, per il suo tavolo. Ci richiami.",
        1.5,
    )
    assert config.turn.fillers == ("Un momento.", "Vediamo.")
    assert config.turn.backchannels == frozenset({"sì", "ok"})
    assert config.language == "it"
    assert config.tools is not None
    assert [tool.name for tool in config.tools] == ["book_table", "plain_function", "opening_hours"]
    assert definition.providers == {
        "stt": ProviderChoice("deepgram"),
        "llm": ProviderChoice("openai", {"model": "gpt-4o-mini", "base_url": "http://127.0.0.1:8000/v1"}),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('greeting = "hi"\n', r"instructions"),
        ('instructions = "x"\n[turn]\nfiler_after = 1\n', r"turn.*filer_after"),
        ('instructions = "x"\n[turn]\nfiller_after = "soon"\n', r"turn\.filler_after.*float"),
        ('instructions = "x"\n[turn]\nfiller_after = 20\n', r"turn:.*turn_timeout"),
        ('instructions = "x"\n[providers]\nasr = "deepgram"\n', r"providers\.asr.*roles"),
        ('instructions = "x"\n[providers]\nllm = { model = "m" }\n', r"providers\.llm\.name"),
        ('instructions = "x"\n[[tools]]\npython = "os:path"\nurl = "http://x"\n', r"tools\[0\].*exactly one"),
        ('instructions = "x"\n[[tools]]\npython = "no_such_module_xyz:f"\n', r"tools\[0\]\.python.*import"),
        ('instructions = "x"\n[[tools]]\nurl = "http://x"\n', r"tools\[0\].*name"),
        ('instructions = "x"\n[[tools]]\nname = "t"\ndescription = "d"\nurl = "ftp://x"\n', r"http"),
        ("instructions = [\n", r"not valid TOML"),
        (
            'instructions = "x"\n[prices.openai]\ninput_per_mtok = -1\n',
            r"prices\.openai\.input_per_mtok.*>= 0",
        ),
        ('instructions = "x"\n[prices.openai]\noutput_per_mtok = inf\n', r"prices\.openai\.output_per_mtok"),
        (
            'instructions = "x"\n[prices.openai]\ninput_per_mtok = "cheap"\n',
            r"prices\.openai\.input_per_mtok.*float",
        ),
        (
            'instructions = "x"\n[prices.deepgram]\nper_minute = 1\n',
            r"prices\.deepgram:.*unknown field `per_minute`",
        ),
        ('instructions = "x"\nprices = { deepgram = 3 }\n', r"prices\.deepgram:.*object"),
        ('instructions = "x"\ntimezone = "Mars/Olympus"\n', r"timezone: 'Mars/Olympus' is no IANA time zone"),
        (
            'instructions = "x"\ngreeting = "Hi {{call.number}}"\n',
            r"greeting: \{\{call\.number\}\} is no built-in",
        ),
        (
            'instructions = "x"\n[turn]\nfillers = ["a", "{{now.hour}}"]\n',
            r"turn\.fillers\[1\]: \{\{now\.hour",
        ),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_agent(path)
    assert str(path) in str(info.value)


def test_prices_of_an_agent_file_reach_the_session_config(tmp_path: Path) -> None:
    text = (
        'instructions = "x"\n[prices.deepgram]\nstt_per_minute = 0.0077\n'
        "[prices.openai]\ninput_per_mtok = 0.15\ncached_input_per_mtok = 0.075\noutput_per_mtok = 1\n"
    )
    prices = load_agent(write(tmp_path, text)).config.prices
    assert prices == {
        "deepgram": Prices(stt_per_minute=0.0077),
        "openai": Prices(input_per_mtok=0.15, cached_input_per_mtok=0.075, output_per_mtok=1.0),
    }


def test_unreadable_and_unknown_kinds_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_agent(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"\.toml, \.yaml or \.yml"):
        load_agent(write(tmp_path, "{}", "agent.json"))


def test_yaml_agent_file(tmp_path: Path) -> None:
    pytest.importorskip("yaml", reason="YAML agent files need PyYAML")
    text = "instructions: You help.\ngreeting: Hello!\nturn:\n  idle_after: 5\n"
    config = load_agent(write(tmp_path, text, "agent.yaml")).config
    assert config.turn.greeting == "Hello!"
    assert config.turn.idle_after == 5


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = 500 if body.get("fail") else 200
        self.send_response(status)
        self.end_headers()
        call = {name: value for name, value in self.headers.items() if name.startswith("X-Voicecore-")}
        answer = {"got": body, "auth": self.headers.get("Authorization"), "call": call}
        self.wfile.write(json.dumps(answer).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_tool_posts_arguments_and_returns_the_body(echo_server: str) -> None:
    tool = webhook_tool(
        name="lookup",
        description="Look up an order.",
        url=echo_server,
        headers={"Authorization": "Bearer s3cret"},
        parameters={
            "type": "object",
            "properties": {"order": {"type": "string"}, "fail": {"type": "boolean"}},
        },
    )
    call = CallInfo(call_id="CA1", channel="twilio", from_number="+14155550100", parameters={"ref": "7"})
    ok = asyncio.run(invoke(tool, '{"order": "42"}', call=call))
    assert json.loads(ok.content) == {
        "got": {"order": "42"},
        "auth": "Bearer s3cret",
        "call": {
            "X-Voicecore-Call-Id": "CA1",
            "X-Voicecore-Channel": "twilio",
            "X-Voicecore-Direction": "inbound",
            "X-Voicecore-From": "+14155550100",
            "X-Voicecore-Call-Parameters": '{"ref": "7"}',
        },
    }
    outside = asyncio.run(invoke(tool, '{"order": "42"}'))  # outside a call
    assert json.loads(outside.content)["call"] == {
        "X-Voicecore-Call-Id": "",
        "X-Voicecore-Channel": "unknown",
        "X-Voicecore-Direction": "inbound",
    }
    failed = asyncio.run(invoke(tool, '{"order": "42", "fail": true}'))
    assert failed.content.startswith("Error: the service answered 500")
