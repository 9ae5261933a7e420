"""Provider interface types: formats validate, errors classify themselves as retryable or not."""

from __future__ import annotations

import pytest

from voicecore.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    ProviderTimeoutError,
)
from voicecore.providers.anthropic import AnthropicLLM
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat, WarmLLM, WarmTTS
from voicecore.providers.cartesia import CartesiaTTS
from voicecore.providers.elevenlabs import ElevenLabsTTS
from voicecore.providers.failover import FailoverLLM, FailoverTTS
from voicecore.providers.openai import OpenAILLM
from voicecore.providers.smallest import SmallestTTS
from voicecore.testing import FakeLLM, FakeTTS


def test_formats_know_their_byte_rate() -> None:
    assert PCM16_16K.bytes_per_second == 32000
    assert MULAW_8K.bytes_per_second == 8000


@pytest.mark.parametrize(
    ("encoding", "rate", "message"),
    [("opus", 48000, "encoding"), ("pcm16", 11025, "sample_rate"), ("mulaw", 16000, "8000 Hz only")],
)
def test_bad_formats_say_what_is_wrong(encoding: str, rate: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AudioFormat(encoding, rate)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (404, False),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_status_errors_are_retryable_like_the_http_rules(status: int, retryable: bool) -> None:
    error = ProviderStatusError("boom", provider="openai", status=status)
    assert error.retryable is retryable
    assert error.status == status
    assert str(error) == "openai: boom"


def test_connection_and_timeout_errors_are_retryable() -> None:
    for error in (ProviderConnectionError("reset", provider="x"), ProviderTimeoutError("slow", provider="x")):
        assert isinstance(error, ProviderError)
        assert error.retryable
        assert error.status is None


def test_the_network_adapters_can_be_warmed_and_the_in_process_fakes_need_not() -> None:
    llms = [OpenAILLM(model="m"), AnthropicLLM(), FailoverLLM([OpenAILLM(model="m")])]
    ttss = [ElevenLabsTTS(voice_id="v"), CartesiaTTS(), SmallestTTS(), FailoverTTS([CartesiaTTS()])]
    assert all(isinstance(llm, WarmLLM) for llm in llms)
    assert all(isinstance(tts, WarmTTS) for tts in ttss)
    assert not isinstance(FakeLLM(), WarmLLM)
    assert not isinstance(FakeTTS(), WarmTTS)
