"""Server settings: the one place voicecore reads environment variables.

:func:`from_env` reads the ``VOICECORE_*`` variables and the providers' usual key variables
from a mapping (``os.environ`` by default, any dict in tests) and validates them all at once;
:func:`load_agent` reads an agent file. Errors are :class:`~voicecore.errors.ConfigError` with
a message that names the variable (or file and field) and says what to set.

======================== ============= =====================================================
variable                 default       meaning
======================== ============= =====================================================
VOICECORE_HOST           127.0.0.1     address to listen on (``0.0.0.0``: every interface)
VOICECORE_PORT           8765          TCP port (0: any free port, one worker only)
VOICECORE_WORKERS        1             processes sharing the port (SO_REUSEPORT)
VOICECORE_MAX_CALLS      50            concurrent calls per worker; more are refused
VOICECORE_DRAIN_TIMEOUT  30            seconds calls may run on after SIGTERM
VOICECORE_PUBLIC_URL     (request)     https://host as Twilio reaches us (behind a proxy)
VOICECORE_STT            (agent/fake)  speech-to-text provider name (over the agent file's)
VOICECORE_LLM            (agent/fake)  language-model provider name (over the agent file's)
VOICECORE_TTS            (agent/fake)  text-to-speech provider name (over the agent file's)
VOICECORE_TWILIO_RATE    (μ-law)       PCM16 rate for the session instead of μ-law 8 kHz
TWILIO_AUTH_TOKEN        (none)        validate X-Twilio-Signature (403 when it is wrong)
======================== ============= =====================================================

Provider keys (``DEEPGRAM_API_KEY``, ``OPENAI_API_KEY``, ...) are passed to the providers
that need them; a chosen provider whose key is missing is an error at start-up.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voicecore.errors import ConfigError
from voicecore.providers import registry
from voicecore.sansio.turn import TurnConfig

__all__ = ["DEMO_AGENT", "PROVIDER_KEYS", "AgentConfig", "ServeConfig", "from_env", "load_agent", "providers"]

ROLES: tuple[registry.Role, ...] = ("stt", "llm", "tts")

#: The providers' usual key variables, passed through to the provider factories.
PROVIDER_KEYS = (
    "DEEPGRAM_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ELEVENLABS_API_KEY",
    "CARTESIA_API_KEY",
    "SMALLEST_API_KEY",
    "TWILIO_ACCOUNT_SID",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """Settings of ``python -m voicecore serve`` (see the module docstring for the variables)."""

    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 1
    max_calls: int = 50
    drain_timeout: float = 30.0
    public_url: str | None = None
    stt: str | None = None
    llm: str | None = None
    tts: str | None = None
    twilio_rate: int | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    keys: Mapping[str, str] = field(default_factory=dict, repr=False)

    def validate(self) -> ServeConfig:
        """Check every setting; returns ``self``.

        Raises:
            ConfigError: The first problem found, naming the variable to fix.
        """
        if not self.host:
            raise ConfigError("VOICECORE_HOST is empty: set an address such as 127.0.0.1 or 0.0.0.0")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"VOICECORE_PORT must be 0..65535, not {self.port}")
        if self.workers < 1:
            raise ConfigError(f"VOICECORE_WORKERS must be at least 1, not {self.workers}")
        if self.workers > 1 and self.port == 0:
            raise ConfigError(
                "VOICECORE_PORT=0 (any free port) cannot be shared by several workers: set a port"
            )
        if self.max_calls < 1:
            raise ConfigError(f"VOICECORE_MAX_CALLS must be at least 1, not {self.max_calls}")
        if not self.drain_timeout >= 0:
            raise ConfigError(f"VOICECORE_DRAIN_TIMEOUT must be seconds >= 0, not {self.drain_timeout}")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ConfigError(
                    f"VOICECORE_PUBLIC_URL must be an http(s) URL with no query, like "
                    f"https://example.ngrok.app, not {self.public_url!r}"
                )
        if self.twilio_rate is not None and self.twilio_rate not in (8000, 16000, 24000, 48000):
            raise ConfigError(
                f"VOICECORE_TWILIO_RATE must be 8000, 16000, 24000 or 48000, not {self.twilio_rate}"
            )
        for role in ROLES:
            if (name := getattr(self, role)) is not None:
                registry.entry(role, name)
        return self

    def with_overrides(self, **changes: Any) -> ServeConfig:
        """A copy with the non-None ``changes`` applied (command-line options over the environment)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def providers(config: ServeConfig, agent: AgentConfig) -> dict[registry.Role, str]:
    """Which provider each role uses: the environment's choice, else the agent's, else ``fake``.

    Raises:
        ConfigError: A provider is unknown, or a key it needs is not set.
    """
    chosen: dict[registry.Role, str] = {}
    for role in ROLES:
        name = getattr(config, role) or getattr(agent, role) or "fake"
        entry = registry.entry(role, name)
        missing = [key for key in entry.keys if not config.keys.get(key)]
        if missing:
            raise ConfigError(
                f"the {role.upper()} provider {name!r} needs {' and '.join(missing)}: set it in the "
                f"environment, or choose another with VOICECORE_{role.upper()} "
                f"(one of: {', '.join(registry.names(role))})"
            )
        chosen[role] = name
    return chosen


def from_env(environ: Mapping[str, str] = os.environ) -> ServeConfig:
    """Read and validate the server settings from ``environ``.

    Raises:
        ConfigError: A variable is malformed or a provider key is missing.
    """

    def text(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    def number(name: str, kind: type[int] | type[float]) -> Any:
        value = text(name)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ConfigError(f"{name} must be {what}, not {value!r}") from None

    settings: dict[str, Any] = {
        "host": text("VOICECORE_HOST"),
        "port": number("VOICECORE_PORT", int),
        "workers": number("VOICECORE_WORKERS", int),
        "max_calls": number("VOICECORE_MAX_CALLS", int),
        "drain_timeout": number("VOICECORE_DRAIN_TIMEOUT", float),
        "public_url": text("VOICECORE_PUBLIC_URL"),
        "stt": text("VOICECORE_STT"),
        "llm": text("VOICECORE_LLM"),
        "tts": text("VOICECORE_TTS"),
        "twilio_rate": number("VOICECORE_TWILIO_RATE", int),
        "twilio_auth_token": text("TWILIO_AUTH_TOKEN"),
    }
    keys = {name: value for name in PROVIDER_KEYS if (value := text(name)) is not None}
    config = ServeConfig(keys=keys).with_overrides(**settings)
    return config.validate()


# --- agent files -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """An agent as ``serve`` runs it: what it says and which providers it prefers.

    Attributes:
        name: Shown in the banner.
        instructions: The system prompt.
        greeting: Said when a call connects (None: wait for the caller).
        language: The caller's language, for the STT.
        voice: The TTS voice (the provider's default when None).
        stt: Provider for speech-to-text (overrides ``VOICECORE_STT`` when set).
        llm: Provider for the language model (overrides ``VOICECORE_LLM`` when set).
        tts: Provider for text-to-speech (overrides ``VOICECORE_TTS`` when set).
    """

    name: str = "demo"
    instructions: str = "You are a friendly, brief voice assistant. Answer in one or two short sentences."
    greeting: str | None = "Hello! This is the voicecore demo agent. Say something."
    language: str = "en"
    voice: str | None = None
    stt: str | None = None
    llm: str | None = None
    tts: str | None = None

    def turn_config(self) -> TurnConfig:
        """Turn-taking settings for this agent."""
        return TurnConfig(greeting=self.greeting)


DEMO_AGENT = AgentConfig()

_AGENT_FIELDS = {"name", "instructions", "greeting", "language", "voice"}
_PROVIDER_FIELDS = {"stt", "llm", "tts"}


def load_agent(path: Path) -> AgentConfig:
    """Read an agent file (TOML).

    The file holds top-level ``name``, ``instructions`` (required), ``greeting``, ``language``,
    ``voice`` strings and an optional ``[providers]`` table with ``stt``, ``llm``, ``tts``.

    Raises:
        ConfigError: The file is missing or malformed, or a field is unknown or not a string;
            the message names the file and the field.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read agent file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"agent file {path} is not valid TOML: {error}") from None
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key == "providers":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: 'providers' must be a table, like [providers] stt = \"fake\"")
            for role, name in value.items():
                if role not in _PROVIDER_FIELDS:
                    raise ConfigError(f"{path}: unknown field 'providers.{role}' (known: stt, llm, tts)")
                if not isinstance(name, str):
                    raise ConfigError(f"{path}: 'providers.{role}' must be a string")
                if name not in registry.names(role):
                    choices = ", ".join(registry.names(role))
                    raise ConfigError(
                        f"{path}: 'providers.{role}' = {name!r} is not a provider (one of: {choices})"
                    )
                fields[role] = name
            continue
        if key not in _AGENT_FIELDS:
            raise ConfigError(
                f"{path}: unknown field {key!r} (known: {', '.join(sorted(_AGENT_FIELDS))}, providers)"
            )
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key!r} must be a string, not {type(value).__name__}")
        fields[key] = value
    if not fields.get("instructions", "").strip():
        raise ConfigError(f"{path}: 'instructions' is required (the agent's system prompt)")
    fields.setdefault("name", path.stem)
    fields.setdefault("greeting", None)
    return AgentConfig(**fields)
