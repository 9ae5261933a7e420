"""``python -m voicecore fakes``: the provider fakes as servers, scripted from a file.

Every fake is one entry of :data:`FAKES`: its name (also its section in the script file), its
port offset (``--port-base`` + offset, so a load test can point at stable URLs), the struct
its script section is read into, how to start it from that, and the agent-file or
environment setting that points voicecore at it. A script file (TOML or JSON) has one
optional section per fake::

    [deepgram]                       # STT: what the caller says, and when it is final
    utterances = ["I'd like a table for two.", { text = "At eight.", audio_bytes = 8000 }]
    final_delay = 0.15               # seconds from the utterance's last audio to its final

    [openai]                         # LLM: one reply per request (the last one repeats)
    replies = ["Sure, for when?", { text = "Booked.", status = 503 }]
    first_token_delay = 0.3          # seconds before the first token, for every reply
    tokens_per_second = 40

    [elevenlabs]                     # TTS: 10 ms of audio per character of text
    first_audio_delay = 0.1

    [twilio]                         # REST call updates (transfers, hang-ups)
    status = 500                     # fault: every update fails with this status

    [anthropic]                      # LLM (Messages API): one reply per request
    replies = ["Sure.", { text = "Busy.", status = 529 }]
    first_token = 0.3                # seconds before the first token, for every reply

    [cartesia]                       # TTS: 10 ms of audio per character of text
    first_audio_delay = 0.1

    [smallest-tts]                   # TTS (Lightning): 10 ms of audio per character
    chunk_delay = 0.02

    [smallest-stt]                   # STT (Pulse): what the caller says
    utterances = ["Hello there."]

    [openai-realtime]                # speech-to-speech: what the caller says, and the replies
    heard = ["What's the weather?", { text = "In Paris.", audio_ms = 800, gap_ms = 300 }]
    replies = [{ tool_calls = [["get_weather", '{"city": "Paris"}']] }, "Sunny and warm."]
    first_audio_delay = 0.2          # seconds before a reply's first audio, for every reply

Faults per fake are the fake's own options: a reply's ``status``, ``stream_error_after``,
``stall_after``, ``drop_after`` (:class:`voicecore.fakes.openai.Reply`,
:class:`voicecore.fakes.anthropic.MessageReply`); Deepgram's and Pulse's ``close_after_bytes``
with ``close_code`` and ``close_reason`` (Pulse's ``error_message`` too); the TTS fakes'
``stall``, Cartesia's and Smallest's ``handshake_status`` and ``disconnect_after``; the
Realtime fake's ``drop_after_responses`` and a reply's ``fail``
(:class:`voicecore.fakes.openai_realtime.RealtimeReply`). The Deepgram fake serves both
``deepgram`` (``/v1/listen``) and ``deepgram-flux`` (``/v2/listen``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec

from voicecore.errors import ConfigError
from voicecore.fakes.anthropic import FakeAnthropic, MessageReply
from voicecore.fakes.cartesia import FakeCartesia
from voicecore.fakes.deepgram import FakeDeepgram, Utterance
from voicecore.fakes.elevenlabs import FakeElevenLabs
from voicecore.fakes.openai import FakeChatServer, Flavor, Reply
from voicecore.fakes.openai_realtime import FakeRealtime, Heard, RealtimeReply
from voicecore.fakes.server import LocalServer
from voicecore.fakes.smallest import FakeSmallestTTS
from voicecore.fakes.smallest_pulse import FakePulse
from voicecore.fakes.twilio import FakeTwilioAPI

__all__ = ["FAKES", "Fake", "add_arguments", "build", "main", "run", "serve"]

#: Exit status for a bad option, script or port (as argparse uses).
EXIT_USAGE = 2

Seconds = Annotated[float, msgspec.Meta(ge=0)]


@dataclass(frozen=True, slots=True)
class Fake:
    """One fake the command can run.

    Attributes:
        name: Its name on the command line and its section in the script file.
        offset: Its port is ``--port-base`` + ``offset`` (keep offsets unique and stable).
        script: The struct its script section is read into (defaults: a working demo).
        start: Makes the (not yet started) server from its script section.
        url: The URL to print for the started server.
        use: How to point voicecore at the started server (agent-file or environment setting).
    """

    name: str
    offset: int
    script: type[msgspec.Struct]
    start: Callable[[Any], LocalServer]
    url: Callable[[Any], str]
    use: Callable[[Any], str]


def _items(
    entries: Sequence[str | dict[str, Any]], kind: type[Any], where: str, **defaults: Any
) -> list[Any]:
    """Script entries as ``kind`` dataclasses (a str is the first field); errors name the entry."""
    known = {item.name for item in dataclasses.fields(kind)}
    converted = []
    for index, entry in enumerate(entries):
        at = f"{where}[{index}]"
        if isinstance(entry, str):
            entry = {dataclasses.fields(kind)[0].name: entry}
        if unknown := sorted(set(entry) - known):
            raise ConfigError(
                f"{at}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        try:
            converted.append(msgspec.convert(defaults | entry, kind))
        except msgspec.ValidationError as error:
            text, _, field = str(error).partition(" - at `$")
            raise ConfigError(f"{at}{field.rstrip('`')}: {text}") from None
    return converted


def _key_note(variable: str, key: str | None) -> str:
    return f"{variable}={key}" if key is not None else f"{variable}: any value"


# --- the fakes ---------------------------------------------------------------------------------


class DeepgramScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[deepgram]`` section (see :class:`voicecore.fakes.deepgram.FakeDeepgram`)."""

    utterances: list[str | dict[str, Any]] = msgspec.field(default_factory=lambda: ["Hello there."])
    final_delay: Seconds = 0.0
    api_key: str | None = None
    close_after_bytes: int | None = None
    close_code: int = 1011
    close_reason: str = "NET-0000"


def _deepgram(script: DeepgramScript) -> FakeDeepgram:
    return FakeDeepgram(
        _items(script.utterances, Utterance, "deepgram.utterances"),
        api_key=script.api_key,
        close_after_bytes=script.close_after_bytes,
        close_with=(script.close_code, script.close_reason),
        final_delay=script.final_delay,
    )


class OpenAIScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[openai]`` section: replies as :class:`voicecore.fakes.openai.Reply` fields."""

    replies: list[str | dict[str, Any]] = msgspec.field(
        default_factory=lambda: ["Hello! This is a fake language model."]
    )
    flavor: Flavor = "openai"
    api_key: str | None = None
    first_token_delay: Seconds = 0.0
    tokens_per_second: Annotated[float, msgspec.Meta(ge=0)] = 0.0


def _openai(script: OpenAIScript) -> FakeChatServer:
    replies = _items(
        script.replies,
        Reply,
        "openai.replies",
        first_token_delay=script.first_token_delay,
        tokens_per_second=script.tokens_per_second,
    )
    return FakeChatServer(replies, flavor=script.flavor, api_key=script.api_key)


def _openai_use(server: FakeChatServer) -> str:
    key = "" if server.api_key is None else f"  ({_key_note('OPENAI_API_KEY', server.api_key)})"
    return (
        f'[providers] llm = {{ name = "openai-compatible", model = "fake", base_url = "{server.base_url}" }}'
        + key
    )


class ElevenLabsScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[elevenlabs]`` section (see :class:`voicecore.fakes.elevenlabs.FakeElevenLabs`)."""

    first_audio_delay: Seconds = 0.0
    chunk_chars: Annotated[int, msgspec.Meta(ge=1)] = 4
    stall: bool = False
    api_key: str | None = None


def _elevenlabs(script: ElevenLabsScript) -> FakeElevenLabs:
    return FakeElevenLabs(
        api_key=script.api_key,
        stall=script.stall,
        chunk_chars=script.chunk_chars,
        first_audio_delay=script.first_audio_delay,
    )


class TwilioScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[twilio]`` section (see :class:`voicecore.fakes.twilio.FakeTwilioAPI`)."""

    auth_token: str | None = None
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] | None = None


def _twilio(script: TwilioScript) -> FakeTwilioAPI:
    return FakeTwilioAPI(auth_token=script.auth_token, status=script.status)


class AnthropicScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[anthropic]`` section: replies as :class:`voicecore.fakes.anthropic.MessageReply` fields."""

    replies: list[str | dict[str, Any]] = msgspec.field(
        default_factory=lambda: ["Hello! This is a fake Claude."]
    )
    api_key: str | None = None
    first_token: Seconds = 0.0
    tokens_per_second: Annotated[float, msgspec.Meta(ge=0)] = 0.0


def _anthropic(script: AnthropicScript) -> FakeAnthropic:
    replies = _items(
        script.replies,
        MessageReply,
        "anthropic.replies",
        first_token=script.first_token,
        tokens_per_second=script.tokens_per_second,
    )
    return FakeAnthropic(replies, api_key=script.api_key)


class SocketTTSScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[cartesia]`` and ``[smallest-tts]`` sections (the TTS socket fakes take the same options).

    See :class:`voicecore.fakes.cartesia.FakeCartesia` and :class:`voicecore.fakes.smallest.FakeSmallestTTS`.
    """

    first_audio_delay: Seconds = 0.0
    chunk_delay: Seconds = 0.0
    chunk_chars: Annotated[int, msgspec.Meta(ge=1)] = 4
    stall: bool = False
    disconnect_after: Annotated[int, msgspec.Meta(ge=1)] | None = None
    handshake_status: Annotated[int, msgspec.Meta(ge=400, le=599)] | None = None
    api_key: str | None = None


def _socket_tts(kind: type[FakeCartesia] | type[FakeSmallestTTS]) -> Callable[[SocketTTSScript], LocalServer]:
    def start(script: SocketTTSScript) -> LocalServer:
        return kind(**msgspec.structs.asdict(script))

    return start


class PulseScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[smallest-stt]`` section (see :class:`voicecore.fakes.smallest_pulse.FakePulse`)."""

    utterances: list[str | dict[str, Any]] = msgspec.field(default_factory=lambda: ["Hello there."])
    api_key: str | None = None
    close_after_bytes: int | None = None
    close_code: int = 1011
    close_reason: str = "internal error"
    error_message: str | None = None


def _pulse(script: PulseScript) -> FakePulse:
    return FakePulse(
        _items(script.utterances, Utterance, "smallest-stt.utterances"),
        api_key=script.api_key,
        close_after_bytes=script.close_after_bytes,
        close_with=(script.close_code, script.close_reason),
        error_message=script.error_message,
    )


class RealtimeScript(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[openai-realtime]`` section (see :class:`voicecore.fakes.openai_realtime.FakeRealtime`).

    ``heard`` entries are :class:`~voicecore.fakes.openai_realtime.Heard` fields, ``replies``
    entries :class:`~voicecore.fakes.openai_realtime.RealtimeReply` fields; ``first_audio_delay``
    and ``chunk_delay`` are every reply's unless the reply sets its own.
    """

    heard: list[str | dict[str, Any]] = msgspec.field(default_factory=lambda: ["Hello there."])
    replies: list[str | dict[str, Any]] = msgspec.field(
        default_factory=lambda: ["Hello! This is a fake realtime model."]
    )
    api_key: str | None = None
    ms_per_character: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    chunk_ms: Annotated[int, msgspec.Meta(ge=1)] = 100
    first_audio_delay: Seconds = 0.0
    chunk_delay: Seconds = 0.0
    transcription_delay: Seconds = 0.0
    drop_after_responses: Annotated[int, msgspec.Meta(ge=1)] | None = None


def _realtime(script: RealtimeScript) -> FakeRealtime:
    replies = _items(
        script.replies,
        RealtimeReply,
        "openai-realtime.replies",
        first_audio_delay=script.first_audio_delay,
        chunk_delay=script.chunk_delay,
    )
    return FakeRealtime(
        _items(script.heard, Heard, "openai-realtime.heard"),
        replies,
        api_key=script.api_key,
        ms_per_character=script.ms_per_character,
        chunk_ms=script.chunk_ms,
        transcription_delay=script.transcription_delay,
        drop_after_responses=script.drop_after_responses,
    )


def _use(role: str, provider: str, url: str, variable: str, key: str | None, *, also: str = "") -> str:
    """The agent-file line pointing ``role`` at a fake (``also``: a note after it), and the key it wants."""
    line = f'[providers] {role} = {{ name = "{provider}", base_url = "{url}" }}'
    return f"{line}{also}  ({_key_note(variable, key)})"


#: The fakes ``python -m voicecore fakes`` runs, in the order it prints them.
FAKES: tuple[Fake, ...] = (
    Fake(
        "deepgram",
        0,
        DeepgramScript,
        _deepgram,
        lambda s: s.ws_url,
        lambda s: _use(
            "stt", "deepgram", s.ws_url, "DEEPGRAM_API_KEY", s.api_key, also=', or name = "deepgram-flux"'
        ),
    ),
    Fake("openai", 1, OpenAIScript, _openai, lambda s: s.base_url, _openai_use),
    Fake(
        "elevenlabs",
        2,
        ElevenLabsScript,
        _elevenlabs,
        lambda s: s.ws_url,
        lambda s: _use("tts", "elevenlabs", s.ws_url, "ELEVENLABS_API_KEY", s.api_key),
    ),
    Fake(
        "twilio",
        3,
        TwilioScript,
        _twilio,
        lambda s: s.http_url,
        lambda s: f"VOICECORE_TWILIO_API_URL={s.http_url}  ({_key_note('TWILIO_AUTH_TOKEN', s.auth_token)})",
    ),
    Fake(
        "anthropic",
        4,
        AnthropicScript,
        _anthropic,
        lambda s: s.base_url,
        lambda s: _use("llm", "anthropic", s.base_url, "ANTHROPIC_API_KEY", s.api_key),
    ),
    Fake(
        "cartesia",
        5,
        SocketTTSScript,
        _socket_tts(FakeCartesia),
        lambda s: s.ws_url,
        lambda s: _use("tts", "cartesia", s.ws_url, "CARTESIA_API_KEY", s.api_key),
    ),
    Fake(
        "smallest-tts",
        6,
        SocketTTSScript,
        _socket_tts(FakeSmallestTTS),
        lambda s: s.ws_url,
        lambda s: _use("tts", "smallest", s.ws_url, "SMALLEST_API_KEY", s.api_key),
    ),
    Fake(
        "smallest-stt",
        7,
        PulseScript,
        _pulse,
        lambda s: s.ws_url,
        lambda s: _use("stt", "smallest", s.ws_url, "SMALLEST_API_KEY", s.api_key),
    ),
    Fake(
        "openai-realtime",
        8,
        RealtimeScript,
        _realtime,
        lambda s: s.ws_url,
        lambda s: _use("llm", "openai-realtime", s.ws_url, "OPENAI_API_KEY", s.api_key),
    ),
)


# --- the script file ---------------------------------------------------------------------------


def build(path: Path | None, fakes: Sequence[Fake] = FAKES) -> list[tuple[Fake, LocalServer]]:
    """Each of ``fakes`` made from its section of script ``path`` (TOML or JSON; None: defaults).

    Raises:
        ConfigError: The file cannot be read or parsed, names no known fake, or a field is
            unknown or of the wrong type; the message names the file and the field.
    """
    sections: dict[str, Any] = {}
    if path is not None:
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise ConfigError(f"{path}: cannot read the script ({error.strerror})") from error
        suffix, table = path.suffix.lower(), dict[str, dict[str, Any]]
        if suffix not in (".toml", ".json"):
            raise ConfigError(f"{path}: a script is .toml or .json, not {suffix or 'extensionless'}")
        try:
            if suffix == ".toml":
                sections = msgspec.toml.decode(raw, type=table)
            else:
                sections = msgspec.json.decode(raw, type=table)
        except msgspec.DecodeError as error:
            raise ConfigError(f"{path}: not a table of fakes: {error}") from error
    names = [fake.name for fake in fakes]
    if unknown := sorted(set(sections) - set(names)):
        raise ConfigError(f"{path}: unknown fake(s) {', '.join(unknown)}; the fakes are {', '.join(names)}")
    servers = []
    for fake in fakes:
        try:
            servers.append((fake, fake.start(msgspec.convert(sections.get(fake.name, {}), fake.script))))
        except msgspec.ValidationError as error:
            text, _, field = str(error).partition(" - at `$")
            raise ConfigError(f"{path}: {fake.name}{field.rstrip('`')}: {text}") from None
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
    return servers


# --- serving -----------------------------------------------------------------------------------


async def serve(
    servers: Sequence[tuple[Fake, LocalServer]],
    *,
    host: str = "127.0.0.1",
    port_base: int = 0,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the fakes' ``servers`` on ``host``, print a line per fake, serve until ``stop`` is set.

    Raises:
        ConfigError: A port is taken.
    """
    stop = stop or asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        for fake, server in servers:
            server.host = host
            server.port = port_base + fake.offset if port_base else 0
            try:
                await stack.enter_async_context(server)
            except OSError as error:
                raise ConfigError(
                    f"the {fake.name} fake cannot listen on {host}:{server.port} ({error.strerror}): "
                    "choose another --port-base"
                ) from error
            print(f"{fake.name:<15} {fake.url(server):<28} {fake.use(server)}", flush=True)
        print("ready: Ctrl-C or SIGTERM stops the fakes", flush=True)
        await stop.wait()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (shared by ``voicecore fakes`` and ``python -m voicecore.fakes``)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port-base",
        type=int,
        default=0,
        metavar="PORT",
        help="fixed ports: "
        + ", ".join(f"{fake.name} PORT+{fake.offset}" for fake in FAKES)
        + " (default: any free ports)",
    )
    parser.add_argument(
        "--script",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML or JSON: what each fake says, its delays and faults (see voicecore.fakes.command)",
    )
    parser.add_argument(
        "--only",
        default=None,
        metavar="NAMES",
        help=f"comma-separated fakes to run (default: all of {','.join(f.name for f in FAKES)})",
    )


def run(args: argparse.Namespace, prog: str) -> int:
    """Run the fakes as ``args`` say until SIGINT or SIGTERM; the exit status."""
    try:
        chosen = _chosen(args.only)
        if not 0 <= args.port_base <= 65535 - max(f.offset for f in chosen):
            raise ConfigError(f"--port-base must leave room for the fakes' ports, not {args.port_base}")
        servers = build(args.script, chosen)
        asyncio.run(_until_signalled(servers, args.host, args.port_base))
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    print("stopped", flush=True)
    return 0


def _chosen(only: str | None) -> list[Fake]:
    if only is None:
        return list(FAKES)
    by_name = {fake.name: fake for fake in FAKES}
    names = [name.strip() for name in only.split(",") if name.strip()]
    if not names or any(name not in by_name for name in names):
        raise ConfigError(f"--only takes names among {', '.join(by_name)}, not {only!r}")
    return [by_name[name] for name in names]


async def _until_signalled(servers: Sequence[tuple[Fake, LocalServer]], host: str, port_base: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(servers, host=host, port_base=port_base, stop=stop)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m voicecore.fakes``: the same as ``python -m voicecore fakes``."""
    parser = argparse.ArgumentParser(prog="python -m voicecore.fakes", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv), parser.prog)
