"""Settings from a given environment mapping and agent files; errors say what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicecore.config import DEMO_AGENT, AgentConfig, ServeConfig, from_env, load_agent, providers
from voicecore.errors import ConfigError
from voicecore.providers import registry


def test_defaults_are_safe() -> None:
    config = from_env({})
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 8765, 1)
    assert config.twilio_auth_token is None
    assert config.twilio_rate is None
    assert providers(config, DEMO_AGENT) == {"stt": "fake", "llm": "fake", "tts": "fake"}


def test_variables_are_read_and_keys_kept_out_of_repr() -> None:
    config = from_env(
        {
            "VOICECORE_HOST": "0.0.0.0",
            "VOICECORE_PORT": "9000",
            "VOICECORE_WORKERS": "4",
            "VOICECORE_MAX_CALLS": "10",
            "VOICECORE_DRAIN_TIMEOUT": "2.5",
            "VOICECORE_PUBLIC_URL": "https://voice.example.com",
            "VOICECORE_TWILIO_RATE": "16000",
            "TWILIO_AUTH_TOKEN": "secret-token",
            "OPENAI_API_KEY": "sk-secret",
            "UNRELATED": "x",
        }
    )
    assert (config.host, config.port, config.workers, config.max_calls) == ("0.0.0.0", 9000, 4, 10)
    assert config.drain_timeout == 2.5
    assert config.public_url == "https://voice.example.com"
    assert config.twilio_rate == 16000
    assert config.twilio_auth_token == "secret-token"
    assert config.keys == {"OPENAI_API_KEY": "sk-secret"}
    assert "secret" not in repr(config)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"VOICECORE_PORT": "eighty"}, "VOICECORE_PORT must be a whole number, not 'eighty'"),
        ({"VOICECORE_PORT": "70000"}, "VOICECORE_PORT must be 0..65535"),
        ({"VOICECORE_WORKERS": "0"}, "VOICECORE_WORKERS must be at least 1"),
        ({"VOICECORE_WORKERS": "2", "VOICECORE_PORT": "0"}, "cannot be shared by several workers"),
        ({"VOICECORE_MAX_CALLS": "0"}, "VOICECORE_MAX_CALLS must be at least 1"),
        ({"VOICECORE_DRAIN_TIMEOUT": "-1"}, "VOICECORE_DRAIN_TIMEOUT must be seconds >= 0"),
        ({"VOICECORE_PUBLIC_URL": "voice.example.com"}, "VOICECORE_PUBLIC_URL must be an http(s) URL"),
        ({"VOICECORE_PUBLIC_URL": "https://x.com/?a=1"}, "with no query"),
        ({"VOICECORE_TWILIO_RATE": "11025"}, "VOICECORE_TWILIO_RATE must be"),
        ({"VOICECORE_STT": "nosuch"}, "set VOICECORE_STT to one of: fake"),
    ],
)
def test_bad_settings_say_what_to_fix(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_env(environ)
    assert message in str(error.value)


def test_a_provider_without_its_key_is_an_error_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.ProviderEntry("stt", "keyed", lambda keys: None, keys=("DEEPGRAM_API_KEY",))  # type: ignore[arg-type,return-value]
    monkeypatch.setitem(registry.PROVIDERS, ("stt", "keyed"), entry)
    config = from_env({"VOICECORE_STT": "keyed"})
    with pytest.raises(ConfigError, match="'keyed' needs DEEPGRAM_API_KEY: set it in the environment"):
        providers(config, DEMO_AGENT)
    config = from_env({"VOICECORE_STT": "keyed", "DEEPGRAM_API_KEY": "k"})
    assert providers(config, DEMO_AGENT)["stt"] == "keyed"


def test_environment_overrides_the_agent_file_which_overrides_the_default() -> None:
    agent = AgentConfig(instructions="x", llm="fake")
    assert providers(ServeConfig(), agent)["llm"] == "fake"
    with pytest.raises(ConfigError, match="unknown LLM provider 'other'"):
        providers(ServeConfig(llm="other"), agent)


def test_agent_file(tmp_path: Path) -> None:
    path = tmp_path / "dentist.toml"
    path.write_text(
        'instructions = "You book dental appointments."\n'
        'greeting = "Smile Dental, how can I help?"\n'
        'language = "en"\n'
        "[providers]\n"
        'tts = "fake"\n'
    )
    agent = load_agent(path)
    assert agent == AgentConfig(
        name="dentist",
        instructions="You book dental appointments.",
        greeting="Smile Dental, how can I help?",
        tts="fake",
    )
    assert agent.turn_config().greeting == "Smile Dental, how can I help?"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('greeting = "hi"\n', "'instructions' is required"),
        ('instructions = "x"\nprompt = "y"\n', "unknown field 'prompt'"),
        ("instructions = 5\n", "'instructions' must be a string, not int"),
        ('instructions = "x"\nproviders = "fake"\n', "'providers' must be a table"),
        ('instructions = "x"\n[providers]\nasr = "fake"\n', "unknown field 'providers.asr'"),
        (
            'instructions = "x"\n[providers]\nstt = "nosuch"\n',
            "'providers.stt' = 'nosuch' is not a provider (one of: fake)",
        ),
        ("instructions = \n", "is not valid TOML"),
    ],
)
def test_agent_file_errors_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_agent(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_missing_agent_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read agent file"):
        load_agent(tmp_path / "none.toml")
