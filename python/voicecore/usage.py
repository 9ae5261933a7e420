"""What a call used of each provider, and what that cost by a price table.

A :class:`UsageMeter` is fed by the session where usage is billed: seconds of audio pushed
to the STT, the token counts an LLM stream reports (its ``Usage`` chunk), characters of text
pushed to the TTS. Each is kept per provider name, since failover may spread a call over
several. :meth:`UsageMeter.report` turns the counts into a :class:`CallUsage`, with a cost
for every provider that has :class:`Prices`. Pure: no clock, no I/O.

Token counts follow the OpenAI convention: ``prompt_tokens`` includes ``cached_tokens``
(the part of the prompt served from the provider's cache, usually billed lower).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from voicecore.errors import ConfigError

__all__ = ["CallUsage", "Prices", "ProviderUsage", "UsageMeter"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """One provider's prices in US dollars (0 for what it does not sell).

    Attributes:
        stt_per_minute: Per minute of audio sent for recognition.
        input_per_mtok: Per million prompt tokens not served from cache.
        cached_input_per_mtok: Per million cached prompt tokens (None: as ``input_per_mtok``).
        output_per_mtok: Per million completion tokens.
        tts_per_kchar: Per thousand characters sent for synthesis.

    Raises:
        ConfigError: A price is negative, infinite or not a number.
    """

    stt_per_minute: float = 0.0
    input_per_mtok: float = 0.0
    cached_input_per_mtok: float | None = None
    output_per_mtok: float = 0.0
    tts_per_kchar: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None and item.name == "cached_input_per_mtok":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
                raise ConfigError(f"{item.name}: must be a price in dollars (a number >= 0), not {value!r}")

    def cost(self, usage: ProviderUsage) -> float:
        """What ``usage`` costs at these prices."""
        cached = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return (
            usage.stt_seconds / 60.0 * self.stt_per_minute
            + (usage.prompt_tokens - usage.cached_tokens) / 1e6 * self.input_per_mtok
            + usage.cached_tokens / 1e6 * cached
            + usage.completion_tokens / 1e6 * self.output_per_mtok
            + usage.tts_characters / 1e3 * self.tts_per_kchar
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderUsage:
    """What a call used of one provider.

    Attributes:
        provider: The provider's name (as in its errors, metrics and the price table).
        stt_seconds: Seconds of audio sent to it for recognition.
        prompt_tokens: Prompt tokens it reported (cached ones included).
        cached_tokens: The part of ``prompt_tokens`` it served from cache.
        completion_tokens: Completion tokens it reported.
        tts_characters: Characters of text sent to it for synthesis (spoken or cut off).
        cost_usd: The estimated cost (None: the price table has no entry for it).
    """

    provider: str
    stt_seconds: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    tts_characters: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallUsage:
    """A call's usage per provider and its estimated cost.

    Attributes:
        providers: One entry per provider the call used, in order of first use.
        cost_usd: The sum of the priced providers' costs.
        unpriced: Providers with usage but no prices (``cost_usd`` leaves them out).
    """

    providers: tuple[ProviderUsage, ...] = ()
    cost_usd: float = 0.0
    unpriced: tuple[str, ...] = ()


@dataclass(slots=True)
class _Counts:
    stt_seconds: float = 0.0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    tts_characters: int = 0


class UsageMeter:
    """Counts one call's usage per provider as it happens."""

    def __init__(self) -> None:
        self._counts: dict[str, _Counts] = {}

    def _of(self, provider: str) -> _Counts:
        if (counts := self._counts.get(provider)) is None:
            counts = self._counts[provider] = _Counts()
        return counts

    def add_stt_audio(self, provider: str, seconds: float) -> None:
        """``seconds`` of audio were sent to STT ``provider``."""
        self._of(provider).stt_seconds += seconds

    def add_llm_tokens(self, provider: str, *, prompt: int, completion: int, cached: int = 0) -> None:
        """LLM ``provider`` reported the token counts of one completion."""
        counts = self._of(provider)
        counts.prompt_tokens += prompt
        counts.completion_tokens += completion
        counts.cached_tokens += cached

    def add_tts_text(self, provider: str, characters: int) -> None:
        """``characters`` of text were sent to TTS ``provider``."""
        self._of(provider).tts_characters += characters

    def report(self, prices: Mapping[str, Prices]) -> CallUsage:
        """The usage so far, priced by ``prices`` (provider name → prices)."""
        providers, unpriced, total = [], [], 0.0
        for name, counts in self._counts.items():
            usage = ProviderUsage(
                provider=name,
                stt_seconds=counts.stt_seconds,
                prompt_tokens=counts.prompt_tokens,
                cached_tokens=counts.cached_tokens,
                completion_tokens=counts.completion_tokens,
                tts_characters=counts.tts_characters,
            )
            if (price := prices.get(name)) is not None:
                cost = price.cost(usage)
                total += cost
                usage = replace(usage, cost_usd=cost)
            else:
                unpriced.append(name)
            providers.append(usage)
        return CallUsage(providers=tuple(providers), cost_usd=total, unpriced=tuple(unpriced))
