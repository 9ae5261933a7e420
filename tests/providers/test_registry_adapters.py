"""The real adapters are registered for `serve`: names, required keys, options passed through."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicecore.errors import ConfigError
from voicecore.providers import registry
from voicecore.providers.cartesia import CartesiaTTS
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.openai import OPENAI_BASE_URL, OpenAILLM
from voicecore.providers.smallest import SmallestTTS


def test_names_and_required_keys() -> None:
    assert {"deepgram"} <= set(registry.names("stt"))
    assert {"openai", "openai-compatible"} <= set(registry.names("llm"))
    assert {"elevenlabs", "cartesia", "smallest"} <= set(registry.names("tts"))
    assert registry.entry("stt", "deepgram").keys == ("DEEPGRAM_API_KEY",)
    assert registry.entry("llm", "openai").keys == ("OPENAI_API_KEY",)
    assert registry.entry("llm", "openai-compatible").keys == ()
    assert registry.entry("tts", "elevenlabs").keys == ("ELEVENLABS_API_KEY",)
    assert registry.entry("tts", "cartesia").keys == ("CARTESIA_API_KEY",)
    assert registry.entry("tts", "smallest").keys == ("SMALLEST_API_KEY",)


def test_factories_pass_keys_and_options() -> None:
    stt = registry.create("stt", "deepgram", {"DEEPGRAM_API_KEY": "dg"}, {"model": "nova-2-phonecall"})
    assert isinstance(stt, DeepgramSTT)
    assert stt.model == "nova-2-phonecall"
    llm = registry.create("llm", "openai", {"OPENAI_API_KEY": "sk"}, {})
    assert isinstance(llm, OpenAILLM)
    assert (llm.model, llm.base_url) == (registry.DEFAULT_OPENAI_MODEL, OPENAI_BASE_URL)
    via_env = registry.create("llm", "openai", {"OPENAI_BASE_URL": "http://proxy/v1"}, {"model": "m"})
    assert isinstance(via_env, OpenAILLM)
    assert via_env.base_url == "http://proxy/v1"
    local = registry.create(
        "llm", "openai-compatible", {}, {"base_url": "http://h:8000/v1", "model": "llama"}
    )
    assert isinstance(local, OpenAILLM)
    assert (local.name, local.model) == ("openai-compatible", "llama")
    tts = registry.create(
        "tts", "elevenlabs", {"ELEVENLABS_API_KEY": "xi"}, {"model_id": "eleven_turbo_v2_5"}
    )
    assert isinstance(tts, ElevenLabsTTS)
    assert (tts.voice_id, tts.model_id) == (registry.DEFAULT_ELEVENLABS_VOICE, "eleven_turbo_v2_5")
    cartesia = registry.create(
        "tts", "cartesia", {"CARTESIA_API_KEY": "ck"}, {"voice_id": "v1", "max_buffer_delay_ms": 100}
    )
    assert isinstance(cartesia, CartesiaTTS)
    assert (cartesia.voice_id, cartesia.max_buffer_delay_ms) == ("v1", 100)
    assert cartesia._headers["Authorization"] == "Bearer ck"
    smallest = registry.create("tts", "smallest", {"SMALLEST_API_KEY": "sk"}, {"model": "lightning_v3.1_pro"})
    assert isinstance(smallest, SmallestTTS)
    assert smallest._fields["model"] == "lightning_v3.1_pro"
    assert smallest._headers == {"Authorization": "Bearer sk"}


def test_bad_options_say_what_is_accepted() -> None:
    with pytest.raises(
        ConfigError, match=r"deepgram does not take the option\(s\) voice; it takes: base_url"
    ):
        registry.create("stt", "deepgram", {}, {"voice": "x"})
    with pytest.raises(
        ConfigError, match=r"cartesia does not take the option\(s\) voice; it takes: add_timestamps"
    ):
        registry.create("tts", "cartesia", {}, {"voice": "x"})
    with pytest.raises(ConfigError, match="needs the option"):
        registry.create("llm", "openai-compatible", {}, {"model": "m"})


def test_anthropic_is_registered_with_its_key_and_options() -> None:
    from voicecore.providers.anthropic import ANTHROPIC_BASE_URL, DEFAULT_ANTHROPIC_MODEL, AnthropicLLM

    assert registry.entry("llm", "anthropic").keys == ("ANTHROPIC_API_KEY",)
    llm = registry.create("llm", "anthropic", {"ANTHROPIC_API_KEY": "sk-ant"}, {})
    assert isinstance(llm, AnthropicLLM)
    assert (llm.model, llm.base_url, llm.cache) == (DEFAULT_ANTHROPIC_MODEL, ANTHROPIC_BASE_URL, "history")
    tuned = registry.create(
        "llm", "anthropic", {}, {"model": "claude-sonnet-4-5", "max_tokens": 300, "cache": "prefix"}
    )
    assert isinstance(tuned, AnthropicLLM)
    assert (tuned.model, tuned.max_tokens, tuned.cache) == ("claude-sonnet-4-5", 300, "prefix")
    with pytest.raises(ConfigError, match="anthropic does not take the option"):
        registry.create("llm", "anthropic", {}, {"voice": "x"})


def test_a_hedged_failover_list_from_an_agent_file(tmp_path: Path) -> None:
    from voicecore.agent import load_agent
    from voicecore.providers.anthropic import AnthropicLLM
    from voicecore.providers.failover import FailoverLLM

    path = tmp_path / "agent.toml"
    path.write_text(
        'instructions = "Be brief."\n'
        "[providers.llm]\n"
        'name = "failover"\n'
        "hedge_after = 0.8\n"
        "cooldown = 10\n"
        'providers = ["anthropic", { name = "openai", model = "gpt-4.1-mini" }]\n'
    )
    choice = load_agent(path).providers["llm"]
    keys = {"ANTHROPIC_API_KEY": "sk-ant", "OPENAI_API_KEY": "sk"}
    llm = registry.create("llm", choice.name, keys, choice.options)
    assert isinstance(llm, FailoverLLM)
    assert (llm.hedge_after, llm.breaker.cooldown) == (0.8, 10)
    first, second = llm.providers
    assert isinstance(first, AnthropicLLM)
    assert isinstance(second, OpenAILLM)
    assert second.model == "gpt-4.1-mini"
    # Start-up checks every member's key.
    assert registry.required_keys("llm", choice.name, choice.options) == (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
    )
    with pytest.raises(ConfigError, match="failover needs providers"):
        registry.create("llm", "failover", keys, {"hedge_after": 0})
    with pytest.raises(ConfigError, match="hedge_after"):
        registry.create("llm", "failover", keys, {"providers": ["anthropic"], "hedge_after": -1})
