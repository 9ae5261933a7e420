"""The newer STT adapters and the failover lists are registered for `serve`."""

from __future__ import annotations

import pytest

from voicecore.agent import ProviderChoice
from voicecore.config import from_env, providers
from voicecore.errors import ConfigError
from voicecore.providers import registry
from voicecore.providers.deepgram import DeepgramSTT
from voicecore.providers.deepgram_flux import DeepgramFluxSTT
from voicecore.providers.failover import FailoverLLM, FailoverSTT, FailoverTTS
from voicecore.providers.smallest_pulse import SmallestPulseSTT

FAILOVER_STT = {
    "providers": ["deepgram", {"name": "smallest", "params": {"keywords": "Luigi:2"}}],
    "cooldown": 10,
    "stall_timeout": 2.5,
}


def test_flux_and_pulse_are_registered_with_their_keys_and_options() -> None:
    assert {"deepgram-flux", "smallest", "failover"} <= set(registry.names("stt"))
    assert registry.entry("stt", "deepgram-flux").keys == ("DEEPGRAM_API_KEY",)
    assert registry.entry("stt", "smallest").keys == ("SMALLEST_API_KEY",)
    flux = registry.create(
        "stt",
        "deepgram-flux",
        {"DEEPGRAM_API_KEY": "dg"},
        {"eager_eot_threshold": 0.5, "keyterms": ["Luigi"]},
    )
    assert isinstance(flux, DeepgramFluxSTT)
    assert (flux.eager_eot_threshold, flux.keyterms, flux.model) == (0.5, ("Luigi",), "flux-general-en")
    pulse = registry.create("stt", "smallest", {"SMALLEST_API_KEY": "sm"}, {"base_url": "ws://127.0.0.1:1"})
    assert isinstance(pulse, SmallestPulseSTT)
    assert pulse.base_url == "ws://127.0.0.1:1"
    with pytest.raises(ConfigError, match=r"smallest does not take the option\(s\) voice_id"):
        registry.create("stt", "smallest", {}, {"voice_id": "x"})


def test_a_failover_list_builds_its_members_in_order_with_their_options() -> None:
    stt = registry.create(
        "stt", "failover", {"DEEPGRAM_API_KEY": "dg", "SMALLEST_API_KEY": "sm"}, FAILOVER_STT
    )
    assert isinstance(stt, FailoverSTT)
    first, second = stt.providers
    assert isinstance(first, DeepgramSTT)
    assert isinstance(second, SmallestPulseSTT)
    assert second.params == {"keywords": "Luigi:2"}
    assert (stt.breaker.cooldown, stt.stall_timeout) == (10, 2.5)
    llm = registry.create("llm", "failover", {}, {"providers": ["fake", "fake"], "first_token_timeout": 1})
    assert isinstance(llm, FailoverLLM)
    assert llm.first_token_timeout == 1
    tts = registry.create("tts", "failover", {}, {"providers": ["fake"]})
    assert isinstance(tts, FailoverTTS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "stt failover needs providers"),
        ({"providers": "deepgram"}, "stt failover needs providers"),
        ({"providers": [{"name": "failover"}]}, "not another failover"),
        ({"providers": ["nope"]}, "unknown STT provider 'nope'"),
        ({"providers": ["fake"], "first_token_timeout": 1}, r"stt failover does not take the option\(s\)"),
    ],
)
def test_bad_failover_lists_say_what_to_fix(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        registry.create("stt", "failover", {}, options)


def test_start_up_checks_the_keys_of_every_member() -> None:
    assert registry.required_keys("stt", "failover", FAILOVER_STT) == ("DEEPGRAM_API_KEY", "SMALLEST_API_KEY")
    agent = {"stt": ProviderChoice("failover", FAILOVER_STT)}
    with pytest.raises(ConfigError, match="needs SMALLEST_API_KEY"):
        providers(from_env({"DEEPGRAM_API_KEY": "dg"}), agent)
    chosen = providers(from_env({"DEEPGRAM_API_KEY": "dg", "SMALLEST_API_KEY": "sm"}), agent)
    assert chosen["stt"] == ProviderChoice("failover", FAILOVER_STT)
