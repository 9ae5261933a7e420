"""Server settings: the one place voicecore reads environment variables.

:func:`from_env` reads the ``VOICECORE_*`` variables and the providers' usual key variables
from a mapping (``os.environ`` by default, any dict in tests) and validates them all at once
(agent files are read by :func:`voicecore.agent.load_agent`). Errors are
:class:`~voicecore.errors.ConfigError` with a message that names the variable and says what to
set.

======================== =========== ==========================================================
variable                 default     meaning
======================== =========== ==========================================================
VOICECORE_HOST           127.0.0.1   address to listen on (``0.0.0.0``: every interface)
VOICECORE_PORT           8765        TCP port (0: any free port, one worker only)
VOICECORE_WORKERS        1           processes sharing the port (SO_REUSEPORT)
VOICECORE_MAX_CALLS      50          concurrent calls (across all workers); more are refused
VOICECORE_DRAIN_TIMEOUT  30          seconds calls may run on after SIGTERM
VOICECORE_PUBLIC_URL     (request)   ``https://host`` as Twilio reaches us (behind a proxy)
VOICECORE_STT            agent, fake speech-to-text provider (over the agent file's)
VOICECORE_LLM            agent, fake language-model provider (over the agent file's)
VOICECORE_TTS            agent, fake text-to-speech provider (over the agent file's)
VOICECORE_TWILIO_RATE    (μ-law)     PCM16 rate for the session instead of μ-law 8 kHz
TWILIO_AUTH_TOKEN        (none)      check X-Twilio-Signature (403 if wrong); enables transfers
VOICECORE_TWILIO_API_URL Twilio's    Twilio REST base URL (a local fake in tests)
VOICECORE_API_TOKEN      (none)      bearer token of ``POST /calls`` (outbound calls; off without it)
TWILIO_ACCOUNT_SID       (none)      the account that places outbound calls
VOICECORE_CALLER_ID      (none)      outbound calls' ``From`` number when a request names none
VOICECORE_LOG_FORMAT     text        ``text`` (people) or ``json`` (one object a line), with call ids
VOICECORE_AUDIT_DB       (none)      SQLite file that records every call's events (PII redacted)
VOICECORE_RECORDINGS     (none)      folder for each call's stereo WAV (caller left, agent right)
VOICECORE_REPORT_URL     (none)      endpoint that gets each finished call's report (JSON POST)
VOICECORE_REPORT_SECRET  (none)      ``whsec_...``: sign the reports (Standard Webhooks)
======================== =========== ==========================================================

Provider keys (``DEEPGRAM_API_KEY``, ``OPENAI_API_KEY``, ...) are passed to the providers
that need them; a chosen provider whose key is missing is an error at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voicecore.agent import ProviderChoice
from voicecore.errors import ConfigError
from voicecore.logs import FORMATS, LogFormat
from voicecore.providers import registry
from voicecore.sansio.outbound import E164

__all__ = ["PROVIDER_KEYS", "ROLES", "ServeConfig", "from_env", "providers"]

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
    twilio_api_url: str = "https://api.twilio.com"
    api_token: str | None = field(default=None, repr=False)
    twilio_account_sid: str | None = None
    caller_id: str | None = None
    log_format: LogFormat = "text"
    audit_db: str | None = None
    recordings: str | None = None
    report_url: str | None = None
    report_secret: str | None = field(default=None, repr=False)
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
        if urlsplit(self.twilio_api_url).scheme not in ("http", "https"):
            raise ConfigError(f"VOICECORE_TWILIO_API_URL must be an http(s) URL, not {self.twilio_api_url!r}")
        if self.twilio_rate is not None and self.twilio_rate not in (8000, 16000, 24000, 48000):
            raise ConfigError(
                f"VOICECORE_TWILIO_RATE must be 8000, 16000, 24000 or 48000, not {self.twilio_rate}"
            )
        if self.api_token is not None:
            needed = {
                "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
                "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
                "VOICECORE_PUBLIC_URL": self.public_url,
            }
            if missing := [name for name, value in needed.items() if not value]:
                raise ConfigError(
                    f"VOICECORE_API_TOKEN turns on outbound calls (POST /calls), which need "
                    f"{' and '.join(missing)}: set them, or unset VOICECORE_API_TOKEN"
                )
        if self.caller_id is not None and not E164.match(self.caller_id):
            raise ConfigError(
                f"VOICECORE_CALLER_ID must be an E.164 number like +14155550100, not {self.caller_id!r}"
            )
        if self.audit_db is not None and not Path(self.audit_db).parent.is_dir():
            raise ConfigError(
                f"VOICECORE_AUDIT_DB: the folder of {self.audit_db!r} does not exist; "
                "create it or choose another path"
            )
        if self.recordings is not None and not Path(self.recordings).is_dir():
            raise ConfigError(
                f"VOICECORE_RECORDINGS: {self.recordings!r} is not a folder; create it or choose another"
            )
        if self.report_url is not None or self.report_secret is not None:
            from voicecore.observers.report import check_report_url, check_secret

            if self.report_url is None:
                raise ConfigError("VOICECORE_REPORT_SECRET signs reports: set VOICECORE_REPORT_URL too")
            checks: list[tuple[str, Callable[[str], str], str]] = [
                ("VOICECORE_REPORT_URL", check_report_url, self.report_url)
            ]
            if self.report_secret is not None:
                checks.append(("VOICECORE_REPORT_SECRET", check_secret, self.report_secret))
            for variable, check, value in checks:
                try:
                    check(value)
                except ConfigError as error:
                    raise ConfigError(f"{variable}: {error}") from None
        if self.log_format not in FORMATS:
            raise ConfigError(f"VOICECORE_LOG_FORMAT must be text or json, not {self.log_format!r}")
        for role in ROLES:
            if (name := getattr(self, role)) is not None:
                registry.entry(role, name)
        return self

    def with_overrides(self, **changes: Any) -> ServeConfig:
        """A copy with the non-None ``changes`` applied (command-line options over the environment)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def providers(
    config: ServeConfig, agent_providers: Mapping[str, ProviderChoice] | None = None
) -> dict[registry.Role, ProviderChoice]:
    """Which provider each role uses: the environment's, else the agent file's, else the default.

    The default is the offline provider (PocketSphinx, the intent router, eSpeak NG) when the
    ``local`` extra is installed, else the in-process fake.

    Args:
        config: The server settings.
        agent_providers: The agent file's ``[providers]`` (name and options per role).

    Raises:
        ConfigError: A provider is unknown, or a key it needs is not set.
    """
    chosen: dict[registry.Role, ProviderChoice] = {}
    for role in ROLES:
        from_agent = (agent_providers or {}).get(role)
        env_name = getattr(config, role)
        if env_name is not None:
            choice = ProviderChoice(
                env_name, from_agent.options if from_agent and from_agent.name == env_name else {}
            )
        else:
            offline = registry.local_extra_missing() is None
            choice = from_agent or ProviderChoice(registry.OFFLINE[role] if offline else "fake")
        missing = [
            key
            for key in registry.required_keys(role, choice.name, choice.options)
            if not config.keys.get(key)
        ]
        if missing:
            raise ConfigError(
                f"the {role.upper()} provider {choice.name!r} needs {' and '.join(missing)}: set it in the "
                f"environment, or choose another with VOICECORE_{role.upper()} "
                f"(one of: {', '.join(registry.names(role))})"
            )
        chosen[role] = choice
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
        "twilio_api_url": text("VOICECORE_TWILIO_API_URL"),
        "api_token": text("VOICECORE_API_TOKEN"),
        "twilio_account_sid": text("TWILIO_ACCOUNT_SID"),
        "caller_id": text("VOICECORE_CALLER_ID"),
        "log_format": text("VOICECORE_LOG_FORMAT"),
        "audit_db": text("VOICECORE_AUDIT_DB"),
        "recordings": text("VOICECORE_RECORDINGS"),
        "report_url": text("VOICECORE_REPORT_URL"),
        "report_secret": text("VOICECORE_REPORT_SECRET"),
    }
    keys = {name: value for name in PROVIDER_KEYS if (value := text(name)) is not None}
    config = ServeConfig(keys=keys).with_overrides(**settings)
    return config.validate()
