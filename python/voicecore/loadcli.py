"""``voicecore bench load`` and ``voicecore bench server``: the load generator's command line.

``bench load`` builds the servers to load (:func:`servers`: the load-test agent spawned pinned to
``--server-cpu`` by default, or ``--in-process``, or ``--target URL``, plus any ``--peer`` /
``--server-cmd`` to compare), pins itself to ``--generator-cpu``, runs one load, a ramp or a soak
against each, prints the table and writes the results folder. ``bench server`` is the process
it spawns (:func:`voicecore.loadserver.serve`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from voicecore.loadserver import FakeDelays

if TYPE_CHECKING:  # the load generator is imported when it runs, not with the command line
    from voicecore import loadgen

__all__ = ["BENCH_LOAD", "BENCH_SERVER", "PEERS", "add_bench_load", "add_bench_server", "servers"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
EXIT_USAGE = 2
#: The parsers ``bench load`` and ``bench server`` are routed to.
BENCH_LOAD = "bench-load"
BENCH_SERVER = "bench-server"


def _pipecat(port: int, calls: int) -> list[str]:
    del calls
    return [sys.executable, "-m", "benches.peers.pipecat_server", "--host", "127.0.0.1", "--port", str(port)]


#: Peer servers ``--peer`` runs (from a source checkout: they live in ``benches/peers``), by name:
#: the command for a port and a call count. Each serves Twilio Media Streams at /twilio/stream
#: on fakes with the same delays as the load-test agent (:class:`FakeDelays`).
PEERS: dict[str, Callable[[int, int], list[str]]] = {"pipecat": _pipecat}


def add_bench_load(subparsers: Subparsers, prog: str) -> None:
    """Register ``bench load`` (reached as ``bench load``; not listed as a command of its own)."""
    parser = subparsers.add_parser(
        BENCH_LOAD,
        prog=f"{prog} bench load",
        description=(
            "Load generator: N concurrent simulated callers speaking the Twilio Media Streams "
            "protocol in real time (media every 20 ms, marks echoed after playback), each taking "
            "turns for --duration seconds: espeak-ng speech, then silence while the agent answers, "
            "every K-th turn a barge-in. Measures end of speech -> first agent audio (p50/p95/p99), "
            "barge-in speech -> clear, failed turns, frames sent vs processed by the server, "
            "underruns and late frames of the agent's audio as a phone plays it, and the server's "
            "CPU and RSS per call. By default the server is 'python -m voicecore bench server' "
            "(the agent on fake providers with fixed delays, so added latency = measured minus those "
            "delays and the 500 ms endpointing silence) in a process of its own pinned with taskset "
            "to --server-cpu, and this generator pinned to --generator-cpu. Writes report.md, "
            "report.json and PNG plots to --results. Needs espeak-ng. Exit status 1 when a turn or "
            "call failed."
        ),
    )
    parser.add_argument("--calls", type=int, default=1, help="concurrent callers (default: %(default)s)")
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds each caller keeps starting turns (at least one turn; default: %(default)s)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--target",
        metavar="URL",
        default=None,
        help="load a server that is already running: its Media Streams URL, e.g. "
        "ws://127.0.0.1:8765/twilio/stream (no known delays: no added latency)",
    )
    where.add_argument(
        "--in-process",
        action="store_true",
        help="serve the load-test agent in this process (its CPU then counts the generator too)",
    )
    parser.add_argument(
        "--server-pid",
        metavar="PID",
        type=int,
        default=None,
        help="with --target: measure this process's CPU and RSS",
    )
    parser.add_argument(
        "--server-cpu",
        metavar="CPU",
        type=int,
        default=0,
        help="core the spawned servers run on (default: %(default)s)",
    )
    parser.add_argument(
        "--generator-cpu",
        metavar="CPU",
        type=int,
        default=1,
        help="core this generator runs on (default: %(default)s)",
    )
    parser.add_argument(
        "--peer",
        action="append",
        choices=sorted(PEERS),
        default=[],
        help="also load this peer server (spawned and pinned the same way); from a source checkout",
    )
    parser.add_argument(
        "--server-cmd",
        metavar="CMD",
        default=None,
        help="also load the server this command starts (spawned and pinned the same way; '{port}' in it "
        "is replaced by a free port; it must print a line with 'listening' once it takes calls, and "
        "serve fakes with the same delays)",
    )
    parser.add_argument(
        "--server-profile",
        metavar="DIR",
        type=Path,
        default=None,
        help="run the spawned voicecore servers under cProfile, stats in DIR/server-N-calls.prof",
    )
    parser.add_argument(
        "--barge-in-every",
        metavar="K",
        type=int,
        default=3,
        help="every K-th turn the caller talks over the answer (0: never; default: %(default)s)",
    )
    parser.add_argument(
        "--answer-within",
        metavar="S",
        type=float,
        default=5.0,
        help="seconds a turn waits for agent audio before it counts as failed (default: %(default)s)",
    )
    parser.add_argument(
        "--stagger",
        metavar="S",
        type=float,
        default=1.0,
        help="callers start spread over S seconds; their turns stay that far apart (default: %(default)s)",
    )
    parser.add_argument(
        "--results",
        metavar="DIR",
        type=Path,
        default=None,
        help="where report.md, report.json and the plots go (default: results/<UTC time> here)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--ramp",
        action="store_true",
        help="run 1, 2, 5, 10, 20, 50, then every 50 calls from 100 (from --calls up to --max-calls) "
        "until p95 added latency exceeds --limit-ms or a turn fails; report the largest count that held",
    )
    mode.add_argument(
        "--soak",
        metavar="MINUTES",
        type=float,
        default=None,
        help="hold --calls calls for this long (instead of --duration); report the server's RSS slope",
    )
    parser.add_argument(
        "--call-seconds",
        metavar="S",
        type=float,
        default=None,
        help="each caller hangs up after S seconds of turns and dials again (a soak then covers "
        "calls ending and starting, where per-call state would leak; default: one call per caller)",
    )
    parser.add_argument(
        "--max-calls", type=int, default=500, help="where --ramp stops (default: %(default)s)"
    )
    parser.add_argument(
        "--limit-ms",
        type=float,
        default=50.0,
        help="--ramp's limit on p95 added latency (default: %(default)s); against --target only "
        "failed turns count",
    )
    parser.set_defaults(handler=_run_bench_load)


def add_bench_server(subparsers: Subparsers, prog: str) -> None:
    """Register ``bench server``: the load-test agent in a process of its own."""
    parser = subparsers.add_parser(
        BENCH_SERVER,
        prog=f"{prog} bench server",
        description=(
            "Serve the load-test agent (fake providers with the fixed delays 'bench load' subtracts) "
            "on 127.0.0.1 until SIGTERM or Ctrl-C; prints 'listening on ws://...' once it takes calls."
        ),
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free one)")
    parser.add_argument(
        "--max-calls", type=int, default=500, help="calls it admits at once (default: %(default)s)"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        type=Path,
        default=None,
        help="run under cProfile; write its stats to FILE",
    )
    parser.add_argument(
        "--loop-lag",
        metavar="FILE",
        type=Path,
        default=None,
        help="write how late each 10 ms timer of its event loop woke to FILE (JSON [[time, seconds], ...])",
    )
    parser.set_defaults(handler=_run_bench_server)


def _run_bench_server(args: argparse.Namespace, extra: list[str]) -> int:
    from voicecore import loadserver

    loadserver.serve(
        args.port,
        delays=FakeDelays(),
        max_calls=args.max_calls,
        out=sys.stdout,
        profile=args.profile,
        loop_lag=args.loop_lag,
    )
    return 0


def servers(args: argparse.Namespace) -> tuple[list[loadgen.ServerFactory], bool]:
    """The servers ``args`` ask for, and whether any is spawned (then the cores are pinned)."""
    from voicecore import loadgen, loadproc

    delays = FakeDelays()
    pin = loadproc.can_pin(args.server_cpu, args.generator_cpu)
    cpu = args.server_cpu if pin else None
    chosen: list[loadgen.ServerFactory] = []
    if args.target is not None:
        chosen.append(loadgen.external(args.target, args.server_pid))
    elif args.in_process:
        chosen.append(loadgen.in_process(delays))
    else:
        profile = str(args.server_profile) if args.server_profile is not None else None
        command = loadgen.voicecore_server_command(profile)
        chosen.append(loadgen.spawned_server("voicecore", command, cpu=cpu, delays=delays))
    for name in args.peer:
        chosen.append(loadgen.spawned_server(name, PEERS[name], cpu=cpu, delays=delays))
    if args.server_cmd is not None:
        words = shlex.split(args.server_cmd)

        def command_line(port: int, calls: int) -> list[str]:
            return [word.replace("{port}", str(port)) for word in words]

        chosen.append(loadgen.spawned_server("server-cmd", command_line, cpu=cpu, delays=delays))
    spawns = (args.target is None and not args.in_process) or bool(args.peer) or args.server_cmd is not None
    return chosen, spawns and pin


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.calls < 1 or args.max_calls < args.calls:
        return "--calls must be >= 1 (and <= --max-calls)"
    if args.duration < 0 or args.barge_in_every < 0 or args.stagger < 0:
        return "--duration, --barge-in-every and --stagger must be >= 0"
    if args.soak is not None and args.soak <= 0:
        return "--soak must be > 0 minutes"
    if args.call_seconds is not None and args.call_seconds <= 0:
        return "--call-seconds must be > 0"
    if args.server_pid is not None and args.target is None:
        return "--server-pid goes with --target"
    return None


def _run_bench_load(args: argparse.Namespace, extra: list[str]) -> int:
    """Runs the load generator against every server asked for; prints and writes the results."""
    import aiohttp

    from voicecore import loadgen, loadproc
    from voicecore.errors import ConfigError, ServerProcessError
    from voicecore.loadresults import write_results
    from voicecore.runtime.loop import run, settle_heap

    problem = _usage_problem(args)
    if problem is not None:
        print(f"voicecore bench load: {problem}", file=sys.stderr)
        return EXIT_USAGE
    chosen, pinned = servers(args)
    if pinned:
        loadproc.pin_self(args.generator_cpu)
        print(
            f"voicecore bench load: servers pinned to core {args.server_cpu}, this generator to core "
            f"{args.generator_cpu}",
            file=sys.stderr,
        )
    else:
        print("voicecore bench load: not pinning (fewer than 2 usable cores or no taskset)", file=sys.stderr)
    options: dict[str, Any] = {
        "duration": args.duration,
        "barge_in_every": args.barge_in_every,
        "answer_within": args.answer_within,
        "stagger": args.stagger,
        "call_seconds": args.call_seconds,
        "progress": sys.stderr,
    }
    if args.soak is not None:
        options.update(duration=args.soak * 60, soak=True, rss_every=5.0)
    limit = args.limit_ms / 1000
    reports: list[loadgen.LoadReport] = []
    held: dict[str, int | None] = {}
    settle_heap()  # the generator's own full collections would stall every caller's clock
    try:
        steps = loadgen.ramp_steps(args.calls, args.max_calls)
        for index, server in enumerate(chosen):
            if args.ramp:
                # Peers run the call counts the first server reached, so the curves line up.
                runs, best = run(
                    loadgen.run_ramp(
                        steps,
                        limit=limit,
                        on_run=_said_held(limit),
                        every_step=index > 0,
                        server=server,
                        **options,
                    )
                )
                held[runs[0].target] = best
                reports += runs
                if index == 0:
                    steps = [report.calls for report in runs]
            else:
                reports.append(run(loadgen.run_load(args.calls, server=server, **options)))
    except (ConfigError, ServerProcessError) as error:
        print(f"voicecore bench load: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (aiohttp.ClientError, OSError) as error:
        print(f"voicecore bench load: cannot reach the server: {error}", file=sys.stderr)
        return 1
    text = _report_text(reports, held if args.ramp else None, args)
    print(text, end="")
    folder = (
        args.results
        if args.results is not None
        else Path("results") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    written, skipped = write_results(folder, reports, text, held if args.ramp else None)
    if skipped is not None:
        print(f"voicecore bench load: {skipped}", file=sys.stderr)
    print(f"\nwrote {', '.join(str(path) for path in written)}")
    for report in reports:
        for problem in report.call_errors[:10]:
            print(f"voicecore bench load: {report.target}: {problem}", file=sys.stderr)
    if args.ramp:
        return 0 if all(best is not None for best in held.values()) else 1
    return 1 if any(report.failed or report.call_errors for report in reports) else 0


def _said_held(limit: float) -> Callable[[loadgen.LoadReport], None]:
    from voicecore import loadgen

    def progress(report: loadgen.LoadReport) -> None:
        verdict = "held" if loadgen.held(report, limit) else "did not hold"
        print(f"{report.target}, {report.calls} call(s): {verdict}", file=sys.stderr, flush=True)

    return progress


def _report_text(
    reports: list[loadgen.LoadReport], held: dict[str, int | None] | None, args: argparse.Namespace
) -> str:
    """The notes (once per server), the table and, for a ramp, what held."""
    from voicecore import loadgen

    parts = []
    seen: set[str] = set()
    for report in reports:
        if report.target not in seen:
            seen.add(report.target)
            parts.append(loadgen.notes(report))
    parts.append(loadgen.table(reports))
    for server, best in (held or {}).items():
        parts.append(
            f"\n{server}: largest call count that held (p95 added latency <= {args.limit_ms:g} ms, no "
            f"failed turn): {best if best is not None else 'none'}"
            + (" (the ramp stopped at --max-calls)" if best == args.max_calls else "")
            + "\n"
        )
    for report in reports:
        if report.soak:
            summary = report.summary()
            slope = summary.get("rss_slope_mib_per_hour")
            late = summary.get("rss_slope_last_half_mib_per_hour")
            parts.append(
                f"\n{report.target} soak: {report.calls} calls for {report.duration / 60:g} min "
                f"({report.dials} placed); server RSS "
                + (
                    f"slope {slope:+.1f} MiB/h ({late:+.1f} over the last half)"
                    if slope is not None and late is not None
                    else "slope unknown (no pid)"
                )
                + f"; lost frames {report.frames_lost if report.frames_lost is not None else 'n/a'}; "
                f"failed turns {report.failed}\n"
            )
    return "\n".join(parts)
