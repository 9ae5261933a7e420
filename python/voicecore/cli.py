"""The ``voicecore`` command line (``python -m voicecore`` / the ``voicecore`` script).

Subcommands:
    serve   Serve an agent over Twilio Media Streams (HTTP webhook + WebSocket).
    call    Play a caller against a server over the Twilio protocol, in real time.
    dial    Have a running server place an outbound call (``POST /calls``).
    fakes   Run the providers' fake servers (scripted, on fixed ports if asked) for demos and
            load tests.
    bench   Run the benchmarks in ``benches/`` (pytest-benchmark) and print voicecore-vs-peer
            tables (``bench`` or ``bench micro``), or the load generator (``bench load``) and
            its server (``bench server``).

Each subcommand is one ``_add_<name>(subparsers)`` function that registers its parser and
sets ``handler`` to a ``_run_<name>(args, extra) -> int`` function; add new ones (``serve``)
to ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from voicecore import __version__
from voicecore.loadcli import BENCH_LOAD, BENCH_SERVER

if TYPE_CHECKING:
    from voicecore.caller import TwilioCaller

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace, list[str]], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
# Exit status for usage errors, as argparse uses.
EXIT_USAGE = 2


def _add_bench(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the benchmarks and print voicecore-vs-peer tables",
        description=(
            "Run the pytest-benchmark suite (python -m pytest DIR --benchmark-enable --benchmark-only) "
            "and summarise it per group: mean and median time per call of voicecore and of its peer "
            "(audioop, soxr, pipecat), and how many times faster voicecore is. Arguments not listed "
            "here are passed to pytest (e.g. -k g711, --benchmark-min-rounds=50); put them after "
            "'--' if they could be mistaken for bench options. 'bench micro' is the same; "
            "'bench load' runs the load generator instead (see 'bench load --help')."
        ),
    )
    parser.add_argument(
        "--benches",
        metavar="DIR",
        type=Path,
        default=None,
        help="benchmark directory (default: ./benches in the current directory)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        type=Path,
        default=None,
        help="keep pytest-benchmark's full JSON report in FILE (default: a temporary file)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    parser.set_defaults(handler=_run_bench, accepts_extra=True)


def _run_bench(args: argparse.Namespace, extra: list[str]) -> int:
    """Runs pytest-benchmark in a subprocess, then prints the summary of its JSON report."""
    from voicecore.benchreport import render

    benches: Path = args.benches if args.benches is not None else Path.cwd() / "benches"
    if not benches.is_dir():
        print(
            f"voicecore bench: no benchmark directory at {benches}; the benchmarks ship with the "
            "source checkout, not the wheel: run from a voicecore source checkout or pass --benches DIR",
            file=sys.stderr,
        )
        return EXIT_USAGE

    extra = [arg for arg in extra if arg != "--"]
    with tempfile.TemporaryDirectory(prefix="voicecore-bench-") as tmp:
        json_path: Path = args.json if args.json is not None else Path(tmp) / "benchmark.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            str(benches),
            "--benchmark-enable",
            "--benchmark-only",
            f"--benchmark-json={json_path}",
            "-q",
            *extra,
        ]
        print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
        status = subprocess.run(cmd, check=False).returncode
        if not json_path.is_file():
            print(f"voicecore bench: pytest exited with {status} and wrote no report", file=sys.stderr)
            return status or 1
        report = json.loads(json_path.read_text(encoding="utf-8"))
    print()
    print(render(report, markdown=args.markdown), end="")
    if status != 0:
        print(f"\nvoicecore bench: pytest exited with {status}; see its output above", file=sys.stderr)
    return status


def _add_serve(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve an agent to phone callers (Twilio Media Streams)",
        description=(
            "Serve an agent: Twilio's voice webhook at POST /twilio/voice and its Media Streams at "
            "/twilio/stream, plus /healthz, /readyz and /metrics. Settings come from VOICECORE_* "
            "environment variables and the providers' key variables (see voicecore.config); the "
            "options below override them. SIGTERM or Ctrl-C stops taking calls and lets calls in "
            "progress finish (up to VOICECORE_DRAIN_TIMEOUT seconds)."
        ),
    )
    parser.add_argument(
        "--agent",
        metavar="FILE",
        type=Path,
        default=None,
        help="agent file (.toml, .yaml); default: the built-in demo agent",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: 8765; 0: any free port)")
    parser.add_argument("--workers", type=int, default=None, help="processes sharing the port (default: 1)")
    parser.add_argument(
        "--max-calls",
        type=int,
        default=None,
        help="concurrent calls, across all workers; more are refused (default: 50)",
    )
    parser.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace, extra: list[str]) -> int:
    """Checks every setting, then serves until stopped."""
    from voicecore.errors import ConfigError, ListenError
    from voicecore.serve import prepare, serve

    try:
        prepared = prepare(
            args.agent, host=args.host, port=args.port, workers=args.workers, max_calls=args.max_calls
        )
    except ConfigError as error:
        print(f"voicecore serve: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return serve(prepared)
    except ListenError as error:
        print(f"voicecore serve: {error}", file=sys.stderr)
        return 1


def _add_call(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "call",
        help="play a caller against a server over the Twilio protocol",
        description=(
            "Call a voicecore server the way Twilio does (Media Streams over a WebSocket), in real "
            "time: wait for the greeting, say each --wav / --say in turn and wait for each reply, "
            "then hang up. Prints each turn's latency as the caller hears it (end of speech to the "
            "agent's first audio), what the caller said and what the agent said, and can record "
            "what the caller heard. The Twilio protocol carries audio only: the agent's words are "
            "recognised here with PocketSphinx when the local extra is installed "
            "(pip install 'voicecore[local]'); listen to --out for the exact audio."
        ),
    )
    parser.add_argument(
        "--url",
        default="ws://127.0.0.1:8765/twilio/stream",
        help="the server's Media Streams URL (default: %(default)s)",
    )
    parser.add_argument(
        "--wav", metavar="FILE", type=Path, action="append", default=[], help="caller speech (16-bit WAV)"
    )
    parser.add_argument(
        "--say", metavar="TEXT", action="append", default=[], help="caller speech made with espeak-ng"
    )
    parser.add_argument(
        "--out", metavar="FILE", type=Path, default=None, help="write what the caller heard (WAV)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=1.5,
        help="seconds of agent silence that end a reply (default: %(default)s)",
    )
    parser.add_argument(
        "--barge-in",
        metavar="SECONDS",
        type=float,
        default=None,
        help="talk over every answer but the last this many seconds into it (the next --say/--wav "
        "interrupts; the summary shows when the agent's clear came)",
    )
    _add_param(parser)
    parser.set_defaults(handler=_run_call)


def _run_call(args: argparse.Namespace, extra: list[str]) -> int:
    """Loads the caller's speech, places the call, prints what it heard."""
    import asyncio

    import aiohttp

    from voicecore import caller
    from voicecore.errors import AudioFormatError, ConfigError

    if args.barge_in is not None and args.barge_in < 0:
        print("voicecore call: --barge-in takes seconds >= 0", file=sys.stderr)
        return EXIT_USAGE
    parameters = _parameters(args.param, "call")
    if parameters is None:
        return EXIT_USAGE
    said = [f"(wav: {path.name})" for path in args.wav] + list(args.say)
    try:
        utterances = [caller.ulaw_from_wav(path.read_bytes()) for path in args.wav]
        utterances += [caller.espeak(text) for text in args.say]
    except (OSError, AudioFormatError, ConfigError) as error:
        print(f"voicecore call: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        call = asyncio.run(
            caller.simulate(
                args.url, utterances, settle=args.settle, barge_in=args.barge_in, parameters=parameters
            )
        )
    except aiohttp.WSServerHandshakeError as error:
        print(
            f"voicecore call: {args.url} answered HTTP {error.status} but is not a Media Streams "
            "WebSocket; a voicecore server's is ws://HOST:PORT/twilio/stream",
            file=sys.stderr,
        )
        return 1
    except (aiohttp.ClientError, OSError) as error:
        print(
            f"voicecore call: cannot reach {args.url}: {error}; is `python -m voicecore serve` running?",
            file=sys.stderr,
        )
        return 1
    words = _agent_words(call)
    print(caller.summary(call, said, words), end="")
    if words is None:
        print(
            "the agent's words are not shown: the Twilio protocol carries only audio; "
            "pip install 'voicecore[local]' to recognise them with PocketSphinx, or listen to --out"
        )
    if args.out is not None:
        caller.write_wav(args.out, bytes(call.played))
        print(f"wrote what the caller heard to {args.out}")
    return 0


def _agent_words(call: TwilioCaller) -> list[str] | None:
    """The greeting's and each answer's words, recognised offline; None without the local extra."""
    import asyncio

    from voicecore import caller
    from voicecore.providers import registry

    if registry.local_extra_missing() is not None:
        return None
    from voicecore.providers.pocketsphinx import PocketsphinxSTT

    stt = PocketsphinxSTT(interim_every_ms=0)

    async def recognise_all() -> list[str]:
        heard = [call.greeting, *(turn.heard for turn in call.turns)]
        return [await caller.recognise(stt, bytes(audio)) for audio in heard]

    return asyncio.run(recognise_all())


def _add_fakes(subparsers: Subparsers) -> None:
    from voicecore.fakes import command

    parser = subparsers.add_parser(
        "fakes",
        help="run the providers' fake servers for demos and load tests",
        description=(
            f"Run the fake provider servers ({', '.join(fake.name for fake in command.FAKES)}), each "
            "speaking its provider's wire protocol, until Ctrl-C or SIGTERM. Prints one line "
            "per fake: its URL and the agent-file or environment setting that points voicecore at it. "
            "A --script file (TOML or JSON) says what each fake says, its delays and its faults; the "
            "format is in voicecore.fakes.command."
        ),
    )
    command.add_arguments(parser)
    parser.set_defaults(handler=_run_fakes)


def _run_fakes(args: argparse.Namespace, extra: list[str]) -> int:
    from voicecore.fakes import command

    return command.run(args, f"{_prog()} fakes")


def _add_bench_load(subparsers: Subparsers) -> None:
    from voicecore.loadcli import add_bench_load, add_bench_server

    add_bench_load(subparsers, _prog())
    add_bench_server(subparsers, _prog())


def _add_dial(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "dial",
        help="have a running server call a number (outbound)",
        description=(
            "Ask a running `voicecore serve` to place an outbound call through Twilio (POST /calls); "
            "once answered, the call runs like an inbound one. The server needs VOICECORE_API_TOKEN, "
            "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and VOICECORE_PUBLIC_URL; this command sends "
            "VOICECORE_API_TOKEN from its own environment."
        ),
    )
    parser.add_argument("to", help="the number to call, E.164 (+14155550100)")
    parser.add_argument(
        "--from", dest="from_number", default=None, help="caller ID (default: VOICECORE_CALLER_ID)"
    )
    _add_param(parser)
    parser.add_argument(
        "--machine-detection", action="store_true", help="ask Twilio whether a person or a machine answered"
    )
    parser.add_argument(
        "--server",
        default="http://127.0.0.1:8765",
        help="the server's address (default: http://127.0.0.1:8765)",
    )
    parser.set_defaults(handler=_run_dial)


def _add_param(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="the call's own data for the agent ({{NAME}} in its texts) and its tools (repeatable)",
    )


def _parameters(items: list[str], command: str) -> dict[str, str] | None:
    """``--param NAME=VALUE`` items as a dict; None (after saying why) when one is malformed."""
    parameters: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            print(f"voicecore {command}: --param takes NAME=VALUE, not {item!r}", file=sys.stderr)
            return None
        parameters[name] = value
    return parameters


def _run_dial(args: argparse.Namespace, extra: list[str]) -> int:
    """Posts the call to the server and prints its CallSid (or the server's reason)."""
    import urllib.error
    import urllib.request

    parameters = _parameters(args.param, "dial")
    if parameters is None:
        return EXIT_USAGE
    body: dict[str, object] = {
        "to": args.to,
        "parameters": parameters,
        "machine_detection": args.machine_detection,
    }
    if args.from_number:
        body["from"] = args.from_number
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {os.environ.get('VOICECORE_API_TOKEN', '')}",
    }
    url = args.server.rstrip("/") + "/calls"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            detail = error.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, KeyError, TypeError):  # not our JSON error: as sent
            detail = json.loads(detail)["error"]
        print(f"voicecore dial: the server answered {error.code}: {detail}", file=sys.stderr)
        return 1
    except OSError as error:
        print(
            f"voicecore dial: cannot reach {url}: {error}; is `python -m voicecore serve` running?",
            file=sys.stderr,
        )
        return 1
    print(f"placed call {answer['call_sid']} to {answer['to']} from {answer['from']}")
    return 0


_SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_serve,
    _add_call,
    _add_dial,
    _add_fakes,
    _add_bench,
    _add_bench_load,
)


def _route(argv: list[str]) -> list[str]:
    """``bench micro ...`` is ``bench ...``; ``bench load`` / ``bench server`` go to the load generator's.

    (``bench`` passes unknown arguments on to pytest, so it cannot have argparse subcommands.)
    """
    routes = {"micro": "bench", "load": BENCH_LOAD, "server": BENCH_SERVER}
    if len(argv) >= 2 and argv[0] == "bench" and argv[1] in routes:
        return [routes[argv[1]], *argv[2:]]
    return argv


def _prog() -> str:
    return "voicecore" if os.path.basename(sys.argv[0]) == "voicecore" else "python -m voicecore"


def build_parser() -> argparse.ArgumentParser:
    """Builds the ``voicecore`` argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="voicecore: a low-latency voice-agent engine with a Rust audio core.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(_route(list(sys.argv[1:] if argv is None else argv)))
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler: Handler = args.handler
    return handler(args, extra)
