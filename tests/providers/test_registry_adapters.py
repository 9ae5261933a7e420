"""The real adapters are registered for `serve`: names, required keys, options passed through."""

from __future__ import annotations

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
