"""Settings from a given environment mapping and agent files; errors say what to set."""

from __future__ import annotations

import pytest

from voicecore.agent import ProviderChoice
from voicecore.config import ServeConfig, from_env, providers
from voicecore.errors import ConfigError
from voicecore.providers import registry


def test_defaults_are_safe() -> None:
    config = from_env({})
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 8765, 1)
    assert config.twilio_auth_token is None
    assert config.twilio_rate is None
    assert providers(config) == {role: ProviderChoice(name) for role, name in default_providers().items()}


def default_providers() -> dict[str, str]:
    """What each role defaults to here: the offline providers when the local extra is installed."""
    if registry.local_extra_missing() is None:
        return dict(registry.OFFLINE)
    return dict.fromkeys(("stt", "llm", "tts"), "fake")


def test_the_default_is_offline_exactly_when_the_local_extra_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "local_extra_missing", lambda: "pocketsphinx not installed")
    assert providers(from_env({})) == dict.fromkeys(("stt", "llm", "tts"), ProviderChoice("fake"))
    monkeypatch.setattr(registry, "local_extra_missing", lambda: None)
    assert providers(from_env({})) == {role: ProviderChoice(name) for role, name in registry.OFFLINE.items()}


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
            "VOICECORE_LOG_FORMAT": "json",
            "TWILIO_AUTH_TOKEN": "secret-token",
            "VOICECORE_REPORT_URL": "https://crm.example/hooks/calls",
            "VOICECORE_REPORT_SECRET": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
            "OPENAI_API_KEY": "sk-secret",
            "UNRELATED": "x",
        }
    )
    assert (config.host, config.port, config.workers, config.max_calls) == ("0.0.0.0", 9000, 4, 10)
    assert config.drain_timeout == 2.5
    assert config.public_url == "https://voice.example.com"
    assert config.twilio_rate == 16000
    assert config.log_format == "json"
    assert config.twilio_auth_token == "secret-token"
    assert config.report_url == "https://crm.example/hooks/calls"
    assert config.report_secret == "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
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
        ({"VOICECORE_TWILIO_API_URL": "api.twilio.com"}, "VOICECORE_TWILIO_API_URL must be an http(s) URL"),
        ({"VOICECORE_LOG_FORMAT": "xml"}, "VOICECORE_LOG_FORMAT must be text or json, not 'xml'"),
        ({"VOICECORE_REPORT_URL": "crm.example"}, "VOICECORE_REPORT_URL: the report URL must be an http(s)"),
        (
            {"VOICECORE_REPORT_SECRET": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            "set VOICECORE_REPORT_URL too",
        ),
        (
            {"VOICECORE_REPORT_URL": "https://crm.example", "VOICECORE_REPORT_SECRET": "hunter2"},
            "VOICECORE_REPORT_SECRET: the report secret must start with 'whsec_'",
        ),
        ({"VOICECORE_STT": "nosuch"}, "set VOICECORE_STT to one of: deepgram, deepgram-flux, failover, fake"),
    ],
)
def test_bad_settings_say_what_to_fix(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        from_env(environ)
    assert message in str(error.value)


def test_a_provider_without_its_key_is_an_error_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = registry.ProviderEntry("stt", "keyed", lambda keys, options: None, keys=("DEEPGRAM_API_KEY",))  # type: ignore[arg-type,return-value]
    monkeypatch.setitem(registry.PROVIDERS, ("stt", "keyed"), entry)
    config = from_env({"VOICECORE_STT": "keyed"})
    with pytest.raises(ConfigError, match="'keyed' needs DEEPGRAM_API_KEY: set it in the environment"):
        providers(config)
    config = from_env({"VOICECORE_STT": "keyed", "DEEPGRAM_API_KEY": "k"})
    assert providers(config)["stt"] == ProviderChoice("keyed")


def test_environment_overrides_the_agent_file_which_overrides_the_default() -> None:
    agent = {"llm": ProviderChoice("fake", {"model": "m"}), "tts": ProviderChoice("fake", {"voice": "v"})}
    chosen = providers(ServeConfig(tts="fake"), agent)
    assert chosen["stt"] == ProviderChoice(default_providers()["stt"])
    assert chosen["llm"] == ProviderChoice("fake", {"model": "m"})
    assert chosen["tts"] == ProviderChoice("fake", {"voice": "v"})  # same name: the file's options stay
    with pytest.raises(ConfigError, match="unknown LLM provider 'other'"):
        providers(ServeConfig(llm="other"), agent)
    with pytest.raises(ConfigError, match="unknown STT provider 'nosuch'"):
        providers(ServeConfig(), {"stt": ProviderChoice("nosuch")})
