"""Defining an agent: a Python class, or a declarative TOML/YAML file.

In Python, subclass :class:`Agent`, set ``instructions`` (and a ``greeting``) and add
:func:`~voicecore.tools.function_tool` methods. In a file, the same fields plus the provider
for each role and tools given by Python import path or as HTTP webhooks::

    instructions = "You book tables at Luigi's."
    greeting = "Luigi's, how can I help?"
    voicemail = "This is Luigi's about your booking. Please call us back."  # for outbound calls
    language = "en"
    timezone = "Europe/Rome"     # of {{now}}, {{now.date}}, ...

    [providers]
    stt = "deepgram"
    llm = { name = "openai", model = "gpt-4o-mini" }
    tts = "elevenlabs"

    [turn]
    filler_after = 1.2
    fillers = ["One moment.", "Let me see."]

    [[tools]]
    python = "luigis.tools:book_table"

    [[tools]]
    name = "opening_hours"
    description = "Today's opening hours."
    url = "https://luigis.example/api/hours"

    [prices.deepgram]            # US dollars, to estimate each call's cost (voicecore.usage)
    stt_per_minute = 0.0077

    [prices.openai]
    input_per_mtok = 0.15
    cached_input_per_mtok = 0.075
    output_per_mtok = 0.60

    [prices.elevenlabs]
    tts_per_kchar = 0.05

    [[intents]]                  # answered without the LLM (voicecore.intents)
    name = "book_table"
    examples = ["i would like to book a table", "a table for two at eight please"]
    tool = "book_table"
    reply = "{result}"
    slots = [{ name = "people", kind = "people", prompt = "For how many people?" }]

Instructions and phrases may name call variables, filled in as each call starts: the call's
own parameters (``greeting = "Hi {{first_name|there}}, this is Luigi's."``) and built-ins such
as ``{{call.from}}`` and ``{{now.date}}`` (:mod:`voicecore.sansio.variables`).

Validation errors name the file and the field.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import msgspec

from voicecore.errors import ConfigError
from voicecore.intents import Intent, Slot
from voicecore.runtime.session import SessionConfig
from voicecore.sansio.turn import TurnConfig
from voicecore.tools import Tool, Toolbox, function_tool
from voicecore.usage import Prices
from voicecore.webhook import webhook_tool

__all__ = ["Agent", "AgentDefinition", "ProviderChoice", "load_agent"]


class Agent:
    """Base class of agents defined in Python.

    Attributes:
        instructions: The system prompt: who the agent is and what it may do.
        greeting: Said when a call starts (None: wait for the caller).
        voicemail: Left on an answering machine, after its beep (None: hang up on machines);
            a call's own ``voicemail`` parameter replaces it.
        language: The callers' language (STT, TTS voice, backchannels).
        timezone: The IANA time zone of the ``{{now...}}`` call variables.
        voice: TTS voice (the provider's default when None).
        turn: Turn-taking settings (budgets, fillers, barge-in); defaults when None.
        prices: Provider name → prices, to estimate each call's cost.
    """

    instructions: ClassVar[str] = ""
    greeting: ClassVar[str | None] = None
    voicemail: ClassVar[str | None] = None
    language: ClassVar[str] = "en"
    timezone: ClassVar[str] = "UTC"
    voice: ClassVar[str | None] = None
    turn: ClassVar[TurnConfig | None] = None
    prices: ClassVar[Mapping[str, Prices]] = {}

    def session_config(self) -> SessionConfig:
        """The session settings for a call with this agent, its tool methods included.

        Raises:
            ConfigError: ``instructions`` is empty, ``timezone`` unknown, or a text names a
                built-in variable that does not exist.
        """
        name = type(self).__name__
        if not self.instructions.strip():
            raise ConfigError(f"{name}.instructions is empty: say who the agent is and what it does")
        turn = self.turn or TurnConfig()
        if self.greeting is not None:
            turn = dataclasses.replace(turn, greeting=self.greeting)
        if self.voicemail is not None:
            turn = dataclasses.replace(turn, voicemail=self.voicemail)
        try:
            return SessionConfig(
                instructions=self.instructions,
                turn=turn,
                language=self.language,
                voice=self.voice,
                tools=Toolbox.from_object(self),
                prices=dict(self.prices),
                timezone=self.timezone,
            )
        except ConfigError as error:
            raise ConfigError(f"{name}.{error}") from error


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """Which provider plays a role, with its options (model, voice, base URL, ...)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentDefinition:
    """An agent read from a file: its session settings and the provider for each role.

    Attributes:
        config: The session settings.
        providers: The provider for each role named in the file.
        source: The file.
        intents: Requests answered without the LLM (:class:`voicecore.intents.IntentRouter`).
        intent_threshold: The similarity an intent needs to match.
    """

    config: SessionConfig
    providers: Mapping[str, ProviderChoice]
    source: Path
    intents: tuple[Intent, ...] = ()
    intent_threshold: float = 0.65


# --- the file format --------------------------------------------------------------------------

_ROLES = ("stt", "llm", "tts")


class _Tool(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    python: str | None = None
    name: str | None = None
    description: str | None = None
    url: str | None = None
    method: str = "POST"
    headers: dict[str, str] = {}
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})
    timeout: float | None = None


class _Turn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    end_of_turn: str | None = None
    final_timeout: float | None = None
    barge_in_min_speech: float | None = None
    barge_in_min_words: int | None = None
    barge_in_max_speech: float | None = None
    backchannels: list[str] | None = None
    false_interruption_timeout: float | None = None
    filler_after: float | None = None
    turn_timeout: float | None = None
    tool_filler_delay: float | None = None
    idle_after: float | None = None
    idle_prompts: int | None = None
    max_call_duration: float | None = None
    voicemail_silence: float | None = None
    voicemail_wait: float | None = None
    fillers: list[str] | None = None
    fallback: str | None = None
    idle_prompt: str | None = None
    goodbye: str | None = None
    dtmf_as_input: bool | None = None


class _Slot(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    kind: str = "text"
    pattern: str | None = None
    prompt: str | None = None


class _Intent(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    examples: list[str]
    reply: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = {}
    slots: list[_Slot] = []
    description: str | None = None


class _Prices(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    stt_per_minute: float = 0.0
    input_per_mtok: float = 0.0
    cached_input_per_mtok: float | None = None
    output_per_mtok: float = 0.0
    tts_per_kchar: float = 0.0


class _File(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    instructions: str
    greeting: str | None = None
    voicemail: str | None = None
    language: str = "en"
    timezone: str = "UTC"
    voice: str | None = None
    providers: dict[str, str | dict[str, Any]] = {}
    turn: _Turn = msgspec.field(default_factory=_Turn)
    tools: list[_Tool] = []
    max_tool_steps: int = 4
    history_tokens: int = 8000
    call_control: bool = True
    intents: list[_Intent] = []
    intent_threshold: float = 0.65
    prices: dict[str, Any] = {}  # converted per provider, so that errors can name it


def load_agent(path: str | Path) -> AgentDefinition:
    """Read and validate an agent file (``.toml``, or ``.yaml``/``.yml`` with PyYAML installed).

    Raises:
        ConfigError: The file cannot be read or parsed, or a field is missing, unknown or of
            the wrong type; the message names the file and the field.
    """
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as error:
        raise ConfigError(f"{source}: cannot read the agent file ({error.strerror})") from error
    try:
        spec = _decode(source, raw)
    except msgspec.ValidationError as error:
        raise ConfigError(f"{source}: {_field_message(error)}") from error
    except msgspec.DecodeError as error:
        raise ConfigError(f"{source}: not valid {source.suffix.lstrip('.').upper()}: {error}") from error
    try:
        return _definition(spec, source)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from error


def _decode(source: Path, raw: bytes) -> _File:
    suffix = source.suffix.lower()
    if suffix == ".toml":
        return msgspec.toml.decode(raw, type=_File)
    if suffix in (".yaml", ".yml"):
        try:
            return msgspec.yaml.decode(raw, type=_File)
        except ImportError as error:
            raise ConfigError(
                f"{source}: YAML agent files need PyYAML (pip install pyyaml), or use TOML"
            ) from error
    raise ConfigError(f"{source}: agent files are .toml, .yaml or .yml, not {suffix or 'extensionless'}")


def _field_message(error: msgspec.ValidationError) -> str:
    """Msgspec says "... - at `$.turn.filler_after`"; name the field the way the file does."""
    message = str(error)
    if " - at `$." in message:
        text, _, where = message.partition(" - at `$.")
        return f"{where.rstrip('`')}: {text}"
    return message


def _definition(spec: _File, source: Path) -> AgentDefinition:
    if not spec.instructions.strip():
        raise ConfigError("instructions: must say who the agent is and what it does")
    overrides = {k: v for k, v in msgspec.structs.asdict(spec.turn).items() if v is not None}
    for key in ("backchannels",):
        if key in overrides:
            overrides[key] = frozenset(w.lower() for w in overrides[key])
    if "fillers" in overrides:
        overrides["fillers"] = tuple(overrides["fillers"])
    try:
        turn = TurnConfig(greeting=spec.greeting, voicemail=spec.voicemail, **overrides)
    except ConfigError as error:
        raise ConfigError(f"turn: {error}") from error
    tools = [_tool(tool, index) for index, tool in enumerate(spec.tools)]
    providers = {}
    for role, choice in spec.providers.items():
        if role not in _ROLES:
            raise ConfigError(f"providers.{role}: unknown role; the roles are {', '.join(_ROLES)}")
        if isinstance(choice, str):
            providers[role] = ProviderChoice(choice)
        else:
            options = dict(choice)
            name = options.pop("name", None)
            if not isinstance(name, str) or not name:
                raise ConfigError(f"providers.{role}.name: missing; give the provider's name")
            providers[role] = ProviderChoice(name, options)
    config = SessionConfig(
        instructions=spec.instructions,
        turn=turn,
        language=spec.language,
        voice=spec.voice,
        tools=Toolbox(tools),
        max_tool_steps=spec.max_tool_steps,
        history_tokens=spec.history_tokens,
        call_control=spec.call_control,
        prices=_prices(spec.prices),
        timezone=spec.timezone,
    )
    intents = tuple(_intent(intent, index) for index, intent in enumerate(spec.intents))
    return AgentDefinition(config, providers, source, intents, spec.intent_threshold)


def _prices(spec: Mapping[str, Any]) -> dict[str, Prices]:
    prices = {}
    for provider, table in spec.items():
        try:
            entry = msgspec.convert(table, _Prices)
            prices[provider] = Prices(**msgspec.structs.asdict(entry))
        except msgspec.ValidationError as error:
            text, _, where = str(error).partition(" - at `$")
            raise ConfigError(f"prices.{provider}{where.rstrip('`')}: {text}") from error
        except ConfigError as error:
            raise ConfigError(f"prices.{provider}.{error}") from error
    return prices


def _intent(spec: _Intent, index: int) -> Intent:
    where = f"intents[{index}]"
    try:
        slots = []
        for slot in spec.slots:
            if slot.kind not in ("number", "people", "time", "text"):
                raise ConfigError(f"slot {slot.name!r}: kind must be number, people, time or text")
            slots.append(Slot(slot.name, slot.kind, slot.pattern, slot.prompt))  # type: ignore[arg-type]
        return Intent(
            name=spec.name,
            examples=tuple(spec.examples),
            reply=spec.reply,
            tool=spec.tool,
            arguments=dict(spec.arguments),
            slots=tuple(slots),
            description=spec.description,
        )
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from error


def _tool(spec: _Tool, index: int) -> Tool:
    where = f"tools[{index}]"
    if (spec.python is None) == (spec.url is None):
        raise ConfigError(f"{where}: give exactly one of `python` (an import path) or `url` (a webhook)")
    if spec.python is not None:
        return _imported_tool(spec.python, where)
    if not spec.name or not spec.description:
        raise ConfigError(f"{where}: a webhook tool needs `name` and `description`")
    assert spec.url is not None
    return webhook_tool(
        name=spec.name,
        description=spec.description,
        url=spec.url,
        method=spec.method,
        headers=spec.headers,
        parameters=spec.parameters,
        timeout=spec.timeout,
    )


def _imported_tool(path: str, where: str) -> Tool:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{where}.python: {path!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"{where}.python: cannot import {module_name!r} ({error})") from error
    target = getattr(module, attribute, None)
    if target is None:
        raise ConfigError(f"{where}.python: {module_name!r} has no {attribute!r}")
    if isinstance(target, Tool):
        return target
    if callable(target):
        return function_tool(target)
    raise ConfigError(f"{where}.python: {path!r} is not a function or a tool")
