"""Providers by name, per role: how ``serve`` turns ``VOICECORE_STT=...`` into an object.

Each entry is a factory called once per call with the provider keys from
:mod:`voicecore.config` and the options the agent file gives the provider (model, voice, base
URL, ...), plus the key variables it needs (checked at start-up, so a missing key
is an error before the first call, not during it). Only the in-process fakes are registered
so far (``fake``, from :mod:`voicecore.testing`): they make the built-in demo agent work with
no network. The real adapters (Deepgram, OpenAI-compatible LLMs, ElevenLabs, ...) register
here under their own names as they land; nothing else in the server changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from voicecore.errors import ConfigError
from voicecore.providers.base import LLM, STT, TTS

__all__ = ["PROVIDERS", "ProviderEntry", "Role", "create", "names", "register"]

Role = Literal["stt", "llm", "tts"]
Factory = Callable[[Mapping[str, str], Mapping[str, Any]], STT | LLM | TTS]


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """A provider that ``serve`` can use for one role.

    Attributes:
        role: ``"stt"``, ``"llm"`` or ``"tts"``.
        name: What ``VOICECORE_<ROLE>`` is set to in order to choose it.
        factory: Makes the provider for one call, given the provider keys and its options.
        keys: Environment variables it needs (e.g. ``DEEPGRAM_API_KEY``).
        description: One line for the start-up banner.
    """

    role: Role
    name: str
    factory: Factory
    keys: tuple[str, ...] = ()
    description: str = ""


PROVIDERS: dict[tuple[Role, str], ProviderEntry] = {}


def register(entry: ProviderEntry) -> None:
    """Add (or replace) a provider under ``(entry.role, entry.name)``."""
    PROVIDERS[(entry.role, entry.name)] = entry


def names(role: Role) -> list[str]:
    """Registered names for ``role``, sorted."""
    return sorted(name for (r, name) in PROVIDERS if r == role)


def entry(role: Role, name: str) -> ProviderEntry:
    """The entry for ``name`` in ``role``.

    Raises:
        ConfigError: No such provider; the message lists the ones there are.
    """
    try:
        return PROVIDERS[(role, name)]
    except KeyError:
        choices = ", ".join(names(role)) or "none"
        raise ConfigError(
            f"unknown {role.upper()} provider {name!r}: set VOICECORE_{role.upper()} to one of: {choices}"
        ) from None


def create(role: Role, name: str, keys: Mapping[str, str], options: Mapping[str, Any]) -> STT | LLM | TTS:
    """Make provider ``name`` for ``role`` (one call's worth)."""
    return entry(role, name).factory(keys, options)


# --- the built-in fakes ----------------------------------------------------------------------

DEMO_REPLY = (
    "I heard you. This is the voicecore demo agent running on built-in fake providers, "
    "so I cannot understand words yet. Configure real speech and language providers to talk to me."
)


def _fake_stt(keys: Mapping[str, str], options: Mapping[str, Any]) -> STT:
    from voicecore.testing import FakeSTT

    del keys, options
    return FakeSTT(["(caller speech)"] * 1000, interim_after_bytes=0)


def _fake_llm(keys: Mapping[str, str], options: Mapping[str, Any]) -> LLM:
    from voicecore.testing import FakeLLM

    del keys, options
    return FakeLLM([DEMO_REPLY])


def _fake_tts(keys: Mapping[str, str], options: Mapping[str, Any]) -> TTS:
    from voicecore.testing import FakeTTS

    del keys, options
    return FakeTTS(first_byte=0.05, realtime_factor=4.0)


register(
    ProviderEntry(
        "stt", "fake", _fake_stt, description="in-process fake: every utterance is '(caller speech)'"
    )
)
register(ProviderEntry("llm", "fake", _fake_llm, description="in-process fake: one scripted demo reply"))
register(
    ProviderEntry("tts", "fake", _fake_tts, description="in-process fake: a quiet tone as long as the text")
)
