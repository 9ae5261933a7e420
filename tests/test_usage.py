"""Usage per provider and its cost by a price table (voicecore.usage), without a call."""

from __future__ import annotations

import math

import pytest

from voicecore.errors import ConfigError
from voicecore.usage import CallUsage, Prices, ProviderUsage, UsageMeter


def test_usage_is_kept_per_provider_in_order_of_first_use() -> None:
    meter = UsageMeter()
    meter.add_stt_audio("deepgram", 0.5)
    meter.add_llm_tokens("openai", prompt=1000, completion=20, cached=400)
    meter.add_stt_audio("deepgram", 1.25)
    meter.add_llm_tokens("groq", prompt=900, completion=10)  # a failover stand-in
    meter.add_llm_tokens("openai", prompt=1100, completion=30, cached=1000)
    meter.add_tts_text("elevenlabs", 42)
    meter.add_tts_text("elevenlabs", 8)
    usage = meter.report({})
    assert usage == CallUsage(
        providers=(
            ProviderUsage(provider="deepgram", stt_seconds=1.75),
            ProviderUsage(provider="openai", prompt_tokens=2100, cached_tokens=1400, completion_tokens=50),
            ProviderUsage(provider="groq", prompt_tokens=900, completion_tokens=10),
            ProviderUsage(provider="elevenlabs", tts_characters=50),
        ),
        cost_usd=0.0,
        unpriced=("deepgram", "openai", "groq", "elevenlabs"),
    )


def test_cost_applies_each_price_to_its_unit() -> None:
    meter = UsageMeter()
    meter.add_stt_audio("deepgram", 90.0)  # 1.5 minutes
    meter.add_llm_tokens("openai", prompt=3_000_000, completion=500_000, cached=1_000_000)
    meter.add_tts_text("elevenlabs", 2500)
    meter.add_tts_text("espeak", 100)  # no price: left out of the sum, and named
    prices = {
        "deepgram": Prices(stt_per_minute=0.01),
        "openai": Prices(input_per_mtok=2.0, cached_input_per_mtok=0.5, output_per_mtok=8.0),
        "elevenlabs": Prices(tts_per_kchar=0.3),
    }
    usage = meter.report(prices)
    costs = {entry.provider: entry.cost_usd for entry in usage.providers}
    assert costs["deepgram"] == pytest.approx(1.5 * 0.01)
    assert costs["openai"] == pytest.approx(2 * 2.0 + 1 * 0.5 + 0.5 * 8.0)
    assert costs["elevenlabs"] == pytest.approx(2.5 * 0.3)
    assert costs["espeak"] is None
    assert usage.cost_usd == pytest.approx(0.015 + 8.5 + 0.75)
    assert usage.unpriced == ("espeak",)


def test_cached_tokens_cost_the_input_price_unless_priced_apart() -> None:
    usage = ProviderUsage(provider="openai", prompt_tokens=1_000_000, cached_tokens=600_000)
    assert Prices(input_per_mtok=1.0).cost(usage) == pytest.approx(1.0)
    assert Prices(input_per_mtok=1.0, cached_input_per_mtok=0.25).cost(usage) == pytest.approx(0.4 + 0.15)
    assert Prices(input_per_mtok=1.0, cached_input_per_mtok=0.0).cost(usage) == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stt_per_minute", -0.01),
        ("input_per_mtok", math.inf),
        ("output_per_mtok", math.nan),
        ("tts_per_kchar", "0.3"),
        ("cached_input_per_mtok", -1.0),
        ("stt_per_minute", True),
    ],
)
def test_a_bad_price_is_refused_naming_its_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: must be a price"):
        Prices(**{field: value})  # type: ignore[arg-type]
