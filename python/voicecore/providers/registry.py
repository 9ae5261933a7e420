"""Providers by name, per role: how ``serve`` turns ``VOICECORE_STT=...`` into an object.

Each entry is a factory called once per call with the provider keys from
:mod:`voicecore.config` and the options the agent file gives the provider (model, voice, base
URL, ...), plus the key variables it needs (checked at start-up, so a missing key
is an error before the first call, not during it). The in-process fakes (``fake``, from
:mod:`voicecore.testing`) make the built-in demo agent work with no network; the real
adapters register under their own names: ``deepgram``, ``deepgram-flux`` and ``smallest``
(STT), ``openai``, ``anthropic`` and ``openai-compatible`` (LLM: vLLM, llama.cpp, Ollama, ... by
``base_url``; ``openai-realtime``, a speech-to-speech model that then hears and speaks the
whole call, the TTS only voicing the fallback phrase), ``elevenlabs``, ``cartesia`` and
``smallest`` (TTS). ``failover`` (every
role) is an ordered list of other providers, each a name or a table with its own options (an
LLM list may be hedged)::

    stt = { name = "failover", providers = ["deepgram", { name = "smallest" }], cooldown = 30 }

Unknown options are refused with the list of the ones a provider takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from voicecore.errors import ConfigError
from voicecore.providers.base import LLM, STT, TTS, RealtimeModel
from voicecore.sansio import openai_realtime as realtime

__all__ = [
    "OFFLINE",
    "PROVIDERS",
    "ProviderEntry",
    "Role",
    "create",
    "local_extra_missing",
    "names",
    "register",
    "required_keys",
]

Role = Literal["stt", "llm", "tts"]
Factory = Callable[[Mapping[str, str], Mapping[str, Any]], STT | LLM | TTS | RealtimeModel]


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """A provider that ``serve`` can use for one role.

    Attributes:
        role: ``"stt"``, ``"llm"`` or ``"tts"``.
        name: What ``VOICECORE_<ROLE>`` is set to in order to choose it.
        factory: Makes the provider for one call, given the provider keys and its options.
        keys: Environment variables it needs (e.g. ``DEEPGRAM_API_KEY``).
        description: One line for the start-up banner.
        keys_for: The variables it needs given its options, when they depend on them (a
            failover list needs its members' keys); overrides ``keys``.
        speech_to_speech: An LLM that hears and speaks the call itself (the STT goes unused
            and the TTS only voices the fallback phrase).
    """

    role: Role
    name: str
    factory: Factory
    keys: tuple[str, ...] = ()
    description: str = ""
    keys_for: Callable[[Role, Mapping[str, Any]], tuple[str, ...]] | None = None
    speech_to_speech: bool = False


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


def required_keys(role: Role, name: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    """The key variables provider ``name`` needs with ``options`` (checked at start-up).

    Raises:
        ConfigError: No such provider, or options that name none.
    """
    found = entry(role, name)
    return found.keys_for(role, options) if found.keys_for is not None else found.keys


def create(
    role: Role, name: str, keys: Mapping[str, str], options: Mapping[str, Any]
) -> STT | LLM | TTS | RealtimeModel:
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


# --- the real adapters -----------------------------------------------------------------------


def _options(options: Mapping[str, Any], allowed: frozenset[str], provider: str) -> dict[str, Any]:
    """The agent file's options for ``provider``, refusing names it does not take."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed))
        raise ConfigError(f"{provider} does not take the option(s) {', '.join(unknown)}; it takes: {takes}")
    return dict(options)


_DEEPGRAM_OPTIONS = frozenset(
    {"model", "base_url", "endpointing_ms", "utterance_end_ms", "smart_format", "params"}
)
_FLUX_OPTIONS = frozenset(
    {"model", "base_url", "eot_threshold", "eager_eot_threshold", "eot_timeout_ms", "keyterms", "params"}
)
_SMALLEST_STT_OPTIONS = frozenset({"model", "base_url", "params"})
_OPENAI_OPTIONS = frozenset({"model", "base_url", "options", "headers", "read_timeout", "name"})
_ANTHROPIC_OPTIONS = frozenset(
    {"model", "base_url", "max_tokens", "cache", "options", "headers", "read_timeout", "name"}
)
_ELEVENLABS_OPTIONS = frozenset(
    {"voice_id", "model_id", "base_url", "voice_settings", "generation_config", "params"}
)
_CARTESIA_OPTIONS = frozenset(
    {
        "voice_id",
        "model_id",
        "language",
        "base_url",
        "version",
        "max_buffer_delay_ms",
        "add_timestamps",
        "generation_config",
    }
)
_SMALLEST_OPTIONS = frozenset(
    {
        "voice_id",
        "model",
        "language",
        "base_url",
        "speed",
        "word_timestamps",
        "complete_backoff_ms",
        "params",
        "idle_timeout",
    }
)
_REALTIME_OPTIONS = frozenset(
    {"model", "base_url", "voice", "headers", "connect_timeout", "name", *realtime.PROVIDER_SETTINGS}
)
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_ELEVENLABS_VOICE = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", ElevenLabs' long-standing default voice


def _deepgram(keys: Mapping[str, str], options: Mapping[str, Any]) -> STT:
    from voicecore.providers.deepgram import DeepgramSTT

    return DeepgramSTT(
        api_key=keys.get("DEEPGRAM_API_KEY"), **_options(options, _DEEPGRAM_OPTIONS, "deepgram")
    )


def _deepgram_flux(keys: Mapping[str, str], options: Mapping[str, Any]) -> STT:
    from voicecore.providers.deepgram_flux import DeepgramFluxSTT

    return DeepgramFluxSTT(
        api_key=keys.get("DEEPGRAM_API_KEY"), **_options(options, _FLUX_OPTIONS, "deepgram-flux")
    )


def _smallest_stt(keys: Mapping[str, str], options: Mapping[str, Any]) -> STT:
    from voicecore.providers.smallest_pulse import SmallestPulseSTT

    return SmallestPulseSTT(
        api_key=keys.get("SMALLEST_API_KEY"), **_options(options, _SMALLEST_STT_OPTIONS, "smallest")
    )


def _openai(keys: Mapping[str, str], options: Mapping[str, Any]) -> LLM:
    from voicecore.providers.openai import OPENAI_BASE_URL, OpenAILLM

    settings = _options(options, _OPENAI_OPTIONS, "openai")
    settings.setdefault("model", DEFAULT_OPENAI_MODEL)
    settings.setdefault("base_url", keys.get("OPENAI_BASE_URL") or OPENAI_BASE_URL)
    return OpenAILLM(api_key=keys.get("OPENAI_API_KEY"), **settings)


def _openai_compatible(keys: Mapping[str, str], options: Mapping[str, Any]) -> LLM:
    from voicecore.providers.openai import OpenAILLM

    settings = _options(options, _OPENAI_OPTIONS, "openai-compatible")
    missing = [name for name in ("base_url", "model") if name not in settings]
    if missing:
        raise ConfigError(
            f"openai-compatible needs the option(s) {', '.join(missing)} (e.g. http://HOST:8000/v1)"
        )
    settings.setdefault("name", "openai-compatible")
    return OpenAILLM(api_key=keys.get("OPENAI_API_KEY") or None, **settings)


def _openai_realtime(keys: Mapping[str, str], options: Mapping[str, Any]) -> RealtimeModel:
    from voicecore.providers.openai_realtime import OpenAIRealtime

    settings = _options(options, _REALTIME_OPTIONS, "openai-realtime")
    return OpenAIRealtime(api_key=keys.get("OPENAI_API_KEY"), **settings)


def _anthropic(keys: Mapping[str, str], options: Mapping[str, Any]) -> LLM:
    from voicecore.providers.anthropic import AnthropicLLM

    return AnthropicLLM(
        api_key=keys.get("ANTHROPIC_API_KEY"), **_options(options, _ANTHROPIC_OPTIONS, "anthropic")
    )


def _elevenlabs(keys: Mapping[str, str], options: Mapping[str, Any]) -> TTS:
    from voicecore.providers.elevenlabs import ElevenLabsTTS

    settings = _options(options, _ELEVENLABS_OPTIONS, "elevenlabs")
    settings.setdefault("voice_id", DEFAULT_ELEVENLABS_VOICE)
    return ElevenLabsTTS(api_key=keys.get("ELEVENLABS_API_KEY"), **settings)


def _cartesia(keys: Mapping[str, str], options: Mapping[str, Any]) -> TTS:
    from voicecore.providers.cartesia import CartesiaTTS

    settings = _options(options, _CARTESIA_OPTIONS, "cartesia")
    return CartesiaTTS(api_key=keys.get("CARTESIA_API_KEY"), **settings)


def _smallest(keys: Mapping[str, str], options: Mapping[str, Any]) -> TTS:
    from voicecore.providers.smallest import SmallestTTS

    settings = _options(options, _SMALLEST_OPTIONS, "smallest")
    return SmallestTTS(api_key=keys.get("SMALLEST_API_KEY"), **settings)


register(
    ProviderEntry(
        "stt",
        "deepgram",
        _deepgram,
        keys=("DEEPGRAM_API_KEY",),
        description="Deepgram live (nova-3), μ-law passthrough",
    )
)
register(
    ProviderEntry(
        "stt",
        "deepgram-flux",
        _deepgram_flux,
        keys=("DEEPGRAM_API_KEY",),
        description="Deepgram Flux: it ends turns itself (use end_of_turn = 'stt'), μ-law passthrough",
    )
)
register(
    ProviderEntry(
        "stt",
        "smallest",
        _smallest_stt,
        keys=("SMALLEST_API_KEY",),
        description="Smallest AI Pulse streaming, μ-law passthrough",
    )
)
register(
    ProviderEntry(
        "llm",
        "openai",
        _openai,
        keys=("OPENAI_API_KEY",),
        description=f"OpenAI chat completions ({DEFAULT_OPENAI_MODEL})",
    )
)
register(
    ProviderEntry(
        "llm",
        "openai-realtime",
        _openai_realtime,
        keys=("OPENAI_API_KEY",),
        description="OpenAI Realtime speech to speech: hears and speaks the whole call, μ-law passthrough",
        speech_to_speech=True,
    )
)
register(
    ProviderEntry(
        "llm",
        "anthropic",
        _anthropic,
        keys=("ANTHROPIC_API_KEY",),
        description="Anthropic Messages API (Claude), prompt caching on",
    )
)
register(
    ProviderEntry(
        "llm",
        "openai-compatible",
        _openai_compatible,
        description="vLLM, llama.cpp, Ollama or another compatible server (options: base_url, model)",
    )
)
register(
    ProviderEntry(
        "tts",
        "elevenlabs",
        _elevenlabs,
        keys=("ELEVENLABS_API_KEY",),
        description="ElevenLabs multi-context WebSocket",
    )
)
register(
    ProviderEntry(
        "tts",
        "cartesia",
        _cartesia,
        keys=("CARTESIA_API_KEY",),
        description="Cartesia Sonic WebSocket, one context per reply, μ-law passthrough",
    )
)
register(
    ProviderEntry(
        "tts",
        "smallest",
        _smallest,
        keys=("SMALLEST_API_KEY",),
        description="Smallest AI Lightning WebSocket, μ-law passthrough",
    )
)


# --- failover lists --------------------------------------------------------------------------

FAILOVER = "failover"
#: The failover options of each role (besides ``providers``), as the Failover* classes name them.
_FAILOVER_OPTIONS: dict[Role, frozenset[str]] = {
    "stt": frozenset({"providers", "cooldown", "stall_timeout", "replay_seconds"}),
    "llm": frozenset({"providers", "cooldown", "first_token_timeout", "hedge_after"}),
    "tts": frozenset({"providers", "cooldown", "first_audio_timeout"}),
}


def _members(role: Role, options: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The failover list's providers: (name, options), in order of preference."""
    members = options.get("providers")
    if not isinstance(members, Sequence) or isinstance(members, str) or not members:
        raise ConfigError(
            f"{role} failover needs providers = [...]: the names (or {{ name = ..., options }} tables) "
            "of the providers to try, most preferred first"
        )
    result: list[tuple[str, dict[str, Any]]] = []
    for member in members:
        settings = {"name": member} if isinstance(member, str) else dict(member)
        name = settings.pop("name", None)
        if not isinstance(name, str) or name == FAILOVER:
            raise ConfigError(f"{role} failover: each provider needs a name (not another failover)")
        entry(role, name)
        result.append((name, settings))
    return result


def _failover_keys(role: Role, options: Mapping[str, Any]) -> tuple[str, ...]:
    members = _members(role, options)
    return tuple(dict.fromkeys(k for name, settings in members for k in required_keys(role, name, settings)))


def _failover(role: Role) -> Factory:
    def factory(keys: Mapping[str, str], options: Mapping[str, Any]) -> STT | LLM | TTS:
        from voicecore.providers import failover

        settings = _options(options, _FAILOVER_OPTIONS[role], f"{role} failover")
        members = [create(role, name, keys, member) for name, member in _members(role, settings)]
        if any(isinstance(member, RealtimeModel) for member in members):
            raise ConfigError(f"{role} failover cannot hold a speech-to-speech model: choose it alone")
        del settings["providers"]
        if role == "stt":
            return failover.FailoverSTT([cast(STT, m) for m in members], **settings)
        if role == "llm":
            return failover.FailoverLLM([cast(LLM, m) for m in members], **settings)
        return failover.FailoverTTS([cast(TTS, m) for m in members], **settings)

    return factory


for _role in ("stt", "llm", "tts"):
    register(
        ProviderEntry(
            _role,
            FAILOVER,
            _failover(_role),
            description="the first of its providers that works, moving on mid-call when one fails",
            keys_for=_failover_keys,
        )
    )


# --- the offline providers (the `local` extra) ---------------------------------------------------


def local_extra_missing() -> str | None:
    """Why the offline providers cannot run here, or None when the ``local`` extra is installed."""
    import importlib.util

    missing = [name for name in ("espeakng_loader", "pocketsphinx") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: pip install 'voicecore[local]'"
    return None


def _pocketsphinx(keys: Mapping[str, str], options: Mapping[str, Any]) -> STT:
    from voicecore.providers.pocketsphinx import PocketsphinxSTT

    del keys
    settings = _options(options, frozenset({"phrases", "restrict", "interim_every_ms"}), "pocketsphinx")
    return PocketsphinxSTT(**settings)


def _espeak(keys: Mapping[str, str], options: Mapping[str, Any]) -> TTS:
    from voicecore.providers.espeak import EspeakTTS

    del keys
    return EspeakTTS(**_options(options, frozenset({"language", "voice", "words_per_minute"}), "espeak"))


def _intents(keys: Mapping[str, str], options: Mapping[str, Any]) -> LLM:
    from voicecore.providers.router import IntentRouterLLM

    settings = _options(options, frozenset({"intents", "threshold", "model"}), "intents")
    fallback: LLM | None = None
    if base_url := keys.get("OPENAI_BASE_URL"):  # a local llama.cpp / Ollama server, for example
        fallback = _openai_compatible(keys, {"base_url": base_url, "model": settings.get("model", "default")})
    return IntentRouterLLM(settings.get("intents", ()), fallback, threshold=settings.get("threshold", 0.65))


register(
    ProviderEntry(
        "stt", "pocketsphinx", _pocketsphinx, description="PocketSphinx, offline (voicecore[local])"
    )
)
register(
    ProviderEntry(
        "llm",
        "intents",
        _intents,
        description="the agent's intents, offline; the rest to OPENAI_BASE_URL if set",
    )
)
register(ProviderEntry("tts", "espeak", _espeak, description="eSpeak NG, offline (voicecore[local])"))

#: What each role uses when neither the environment nor the agent file chooses: the offline
#: providers when the ``local`` extra is installed, else the in-process fakes.
OFFLINE: dict[Role, str] = {"stt": "pocketsphinx", "llm": "intents", "tts": "espeak"}
