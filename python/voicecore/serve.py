"""``python -m voicecore serve``: settings checked up front, a banner, one or N worker processes.

:func:`prepare` reads the environment (:func:`voicecore.config.from_env`), applies the
command-line options, loads the agent and resolves its providers, so every mistake is
reported before a socket is opened. :func:`serve` runs the server on the event loop that
:mod:`voicecore.runtime.loop` chooses (uvloop when installed) until SIGTERM or SIGINT, then
drains (see :meth:`voicecore.server.VoiceServer.shutdown`). With ``workers > 1`` the parent
starts that many processes which share the port through SO_REUSEPORT and one call limit
(:mod:`voicecore.shared_admission`) and one set of metrics (:mod:`voicecore.shared_metrics`),
and forwards SIGTERM to them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from voicecore import __version__, logs, shared_metrics
from voicecore.agent import AgentDefinition, ProviderChoice, load_agent
from voicecore.agents import FRONT_DESK
from voicecore.config import ROLES, ServeConfig, from_env, providers
from voicecore.demo import DemoAgent
from voicecore.errors import ListenError
from voicecore.observers import Observer
from voicecore.providers import registry
from voicecore.runtime import loop
from voicecore.runtime.observe import EventHub
from voicecore.runtime.session import SessionConfig

if TYPE_CHECKING:
    from voicecore.server import VoiceServer

__all__ = ["Prepared", "banner", "prepare", "serve"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Everything ``serve`` needs, validated.

    Attributes:
        config: Server settings.
        agent: The agent's session settings.
        agent_name: Where the agent came from (a file, or the built-in demo).
        providers: Provider per role.
        agent_file: The agent file (None: the demo), so worker processes can load it again.
        options: The command-line options, likewise.
    """

    config: ServeConfig
    agent: SessionConfig
    agent_name: str
    providers: Mapping[registry.Role, ProviderChoice]
    agent_file: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def prepare(
    agent_file: Path | None = None, environ: Mapping[str, str] = os.environ, **options: Any
) -> Prepared:
    """Settings from ``environ`` with ``options`` (host, port, workers) over them, and the agent.

    Raises:
        ConfigError: Anything that would stop the server from working, with what to fix.
    """
    config = from_env(environ).with_overrides(**options).validate()
    if agent_file is None and registry.local_extra_missing() is not None:
        agent = DemoAgent().session_config()
        return Prepared(config, agent, "built-in demo agent", providers(config, {}), agent_file, options)
    definition = load_agent(agent_file or FRONT_DESK)
    name = str(agent_file) if agent_file else "built-in front-desk agent (offline)"
    chosen = _with_agent_data(providers(config, dict(definition.providers)), definition)
    return Prepared(config, definition.config, name, chosen, agent_file, options)


def _with_agent_data(
    chosen: dict[registry.Role, ProviderChoice], definition: AgentDefinition
) -> dict[registry.Role, ProviderChoice]:
    """Give the offline providers what they need from the agent: its intents and their phrases."""
    result = dict(chosen)
    llm, stt = result["llm"], result["stt"]
    if llm.name == "intents":
        extra = {"intents": definition.intents, "threshold": definition.intent_threshold}
        result["llm"] = ProviderChoice(llm.name, {**extra, **llm.options})
    phrases = [example for intent in definition.intents for example in intent.examples]
    if stt.name == "pocketsphinx" and phrases and "phrases" not in stt.options:
        result["stt"] = ProviderChoice(stt.name, {**stt.options, "phrases": phrases})
    return result


def banner(prepared: Prepared, urls: list[str]) -> str:
    """What ``serve`` prints once it listens: where, with which agent and providers."""
    config = prepared.config
    base = urls[0] if urls else f"http://{config.host}:{config.port}"
    ws_base = base.replace("http://", "ws://", 1)
    workers = f"{config.workers} worker{'s' if config.workers > 1 else ''}"
    lines = [
        f"voicecore {__version__} serving {prepared.agent_name} on {', '.join(urls) or base}",
        f"  {workers}, event loop {loop.loop_name()}, up to {config.max_calls} concurrent calls"
        + (" in all" if config.workers > 1 else ""),
        f"  talk to it in a browser: open {base}/ (WebSocket protocol: {ws_base}/ws)",
        f"  Twilio voice webhook: POST {base}/twilio/voice",
        f"  Twilio Media Streams: {ws_base}/twilio/stream",
        f"  operations: {base}/healthz, /readyz, /metrics",
        "  providers:",
    ]
    for role in ROLES:
        choice = prepared.providers[role]
        description = registry.entry(role, choice.name).description
        lines.append(f"    {role}: {choice.name}" + (f" ({description})" if description else ""))
    if registry.entry("llm", prepared.providers["llm"].name).speech_to_speech:
        lines.append("  the llm hears and speaks the call itself: the stt is unused, the tts only")
        lines.append("  says the fallback phrase while the model cannot be reached")
    if any(prepared.providers[role].name == "fake" for role in ROLES):
        lines.append("  note: 'fake' providers are in-process stand-ins (no network); choose real ones with")
        lines.append("        VOICECORE_STT / VOICECORE_LLM / VOICECORE_TTS and their keys:")
        for role in ROLES:
            others = [name for name in registry.names(role) if name != "fake"]
            if others:
                lines.append(f"        {role}: {', '.join(others)}")
    if not config.twilio_auth_token:
        lines.append(
            "  TWILIO_AUTH_TOKEN is not set: webhook signatures are not checked and transfers are off"
        )
    lines.append(f"  Talk to it: python -m voicecore call --url {ws_base}/twilio/stream --say 'Hello'")
    lines.append("  Phone calls: expose it over HTTPS (e.g. ngrok), set VOICECORE_PUBLIC_URL to that")
    lines.append("  address and point a Twilio number's voice webhook at <public URL>/twilio/voice.")
    lines.append("  Ctrl-C stops it (calls in progress may finish first).")
    return "\n".join(lines) + "\n"


def serve(prepared: Prepared, *, out: TextIO = sys.stdout) -> int:
    """Run the server until SIGTERM or SIGINT; returns the exit status.

    Raises:
        ListenError: It cannot listen on the configured host and port.
    """
    if prepared.config.workers > 1:
        return _run_workers(prepared, out)
    logs.configure(prepared.config.log_format)
    return loop.run(_serve(prepared, out, reuse_port=False))


async def _serve(
    prepared: Prepared, out: TextIO, *, reuse_port: bool, quiet: bool = False, calls_file: Path | None = None
) -> int:
    from voicecore.server import VoiceServer  # aiohttp and twilio load only when serving
    from voicecore.shared_admission import SharedAdmission

    config = prepared.config
    shared = SharedAdmission(calls_file, config.max_calls) if calls_file is not None else None
    observers = _observers(config)
    server = VoiceServer(config, prepared.agent, prepared.providers, shared, observers=observers)
    try:
        return await _run_server(server, prepared, out, reuse_port=reuse_port, quiet=quiet)
    finally:
        await asyncio.to_thread(EventHub(observers).flush)  # the last calls' events, delivered
        for observer in observers:
            await asyncio.to_thread(observer.close)


def _observers(config: ServeConfig) -> list[Observer]:
    """The observers the settings ask for: the audit database, the report webhook."""
    from voicecore.observers.audit import AuditObserver
    from voicecore.observers.report import CallReportObserver

    observers: list[Observer] = []
    if config.audit_db is not None:
        observers.append(AuditObserver(config.audit_db))
    if config.report_url is not None:
        observers.append(CallReportObserver(config.report_url, secret=config.report_secret))
    return observers


async def _run_server(
    server: VoiceServer, prepared: Prepared, out: TextIO, *, reuse_port: bool, quiet: bool
) -> int:
    urls = await server.start(reuse_port=reuse_port)
    loop.settle_heap()
    if not quiet:
        print(banner(prepared, urls), end="", file=out, flush=True)
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, stop.set)
    await stop.wait()
    logger.info("stopping: refusing new calls, draining calls in progress")
    await server.shutdown()
    return 0


def _run_workers(prepared: Prepared, out: TextIO) -> int:
    from voicecore import shared_admission

    _check_port_can_be_shared(prepared.config.host, prepared.config.port)
    calls_file = shared_admission.create()
    try:
        with shared_metrics.folder() as metrics:
            return _supervise(prepared, out, calls_file, metrics)
    finally:
        calls_file.unlink(missing_ok=True)


def _supervise(prepared: Prepared, out: TextIO, calls_file: Path, metrics: Path) -> int:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker,
            args=(prepared.agent_file, dict(prepared.options), index, calls_file),
            name=f"voicecore-worker-{index}",
        )
        for index in range(prepared.config.workers)
    ]
    with shared_metrics.inherited(metrics):  # before the workers import prometheus_client
        for process in processes:
            process.start()
    print(
        banner(prepared, [f"http://{prepared.config.host}:{prepared.config.port}"]),
        end="",
        file=out,
        flush=True,
    )

    def forward(signum: int, frame: object) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    running = {process.sentinel: process for process in processes}
    while running:
        for sentinel in multiprocessing.connection.wait(list(running)):
            exited = running.pop(cast(int, sentinel))
            exited.join()
            if exited.pid is not None:
                shared_metrics.worker_exited(metrics, exited.pid)
    return max((process.exitcode or 0) for process in processes)


def _check_port_can_be_shared(host: str, port: int) -> None:
    """Bind the port as the workers will (SO_REUSEPORT) and let go, so a taken port fails once, here."""
    try:
        socket.create_server((host, port), reuse_port=True).close()
    except OSError as error:
        raise ListenError.on(host, port, error) from error


def _worker(agent_file: Path | None, options: dict[str, Any], index: int, calls_file: Path) -> None:
    # A fresh process (spawn): load the agent again rather than pickling its tools.
    prepared = prepare(agent_file, **options)
    logs.configure(prepared.config.log_format, worker=index)
    try:
        status = loop.run(_serve(prepared, sys.stdout, reuse_port=True, quiet=True, calls_file=calls_file))
    except ListenError as error:
        print(f"voicecore serve (worker {index}): {error}", file=sys.stderr, flush=True)
        status = 1
    sys.exit(status)
