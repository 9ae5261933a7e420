"""The load test's server as a process: spawned pinned to a core, and measured from ``/proc``.

:func:`spawned` starts a server command under ``taskset -c CPU``, waits for the line that says
it is listening and yields its pid and stream URL; it stops the process (SIGTERM, then SIGKILL)
afterwards. :func:`cpu_seconds` and :func:`rss_mib` read what Linux counts for any pid; the
parsers under them (:func:`parse_stat_cpu`, :func:`parse_status_rss`) are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from voicecore.errors import ServerProcessError

__all__ = [
    "Spawned",
    "can_pin",
    "cpu_seconds",
    "free_port",
    "parse_schedstat_wait",
    "parse_stat_cpu",
    "parse_status_rss",
    "pin_self",
    "rss_mib",
    "run_queue_wait",
    "sample_rss",
    "spawned",
]

_WS_URL = re.compile(r"wss?://\S+")


def parse_stat_cpu(stat: str, ticks_per_second: int) -> float:
    """User plus system CPU seconds from the text of ``/proc/PID/stat``.

    The command name (field 2) is in parentheses and may hold spaces, so the fields are counted
    from its closing parenthesis: utime and stime are fields 14 and 15.
    """
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def parse_status_rss(status: str) -> float:
    """Resident set size (MiB) from the text of ``/proc/PID/status`` (its ``VmRSS`` line, in kB).

    Raises:
        ValueError: No ``VmRSS`` line (a zombie process has none).
    """
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError("no VmRSS line in /proc/PID/status")


def parse_schedstat_wait(schedstat: str) -> float:
    """Seconds spent runnable but waiting for a CPU, from the text of ``/proc/PID/schedstat``.

    Its fields are time on a CPU, time waiting on a run queue (both nanoseconds) and timeslices.
    A pinned server that waits is sharing its core with other work.
    """
    return int(schedstat.split()[1]) / 1e9


def run_queue_wait(pid: int) -> float | None:
    """Seconds the main thread of ``pid`` waited for a CPU (None: no schedstat in this kernel)."""
    try:
        return parse_schedstat_wait(Path(f"/proc/{pid}/schedstat").read_text(encoding="ascii"))
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pid: int) -> float:
    """CPU seconds ``pid`` has used (user + system)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return parse_stat_cpu(stat, os.sysconf("SC_CLK_TCK"))


def rss_mib(pid: int) -> float:
    """``pid`` 's resident set size in MiB."""
    return parse_status_rss(Path(f"/proc/{pid}/status").read_text(encoding="ascii"))


async def sample_rss(pid: int, every: float, out: list[tuple[float, float]]) -> None:
    """Append ``(loop time, RSS MiB)`` of ``pid`` to ``out`` every ``every`` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        with contextlib.suppress(OSError, ValueError):  # the process may be gone
            out.append((loop.time(), rss_mib(pid)))
        await asyncio.sleep(every)


def can_pin(*cpus: int) -> bool:
    """Whether this machine has at least two cores this process may use, ``cpus`` among them."""
    allowed = os.sched_getaffinity(0)
    return len(allowed) >= 2 and set(cpus) <= allowed and shutil.which("taskset") is not None


def pin_self(cpu: int) -> None:
    """Run this process on core ``cpu`` only."""
    os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Spawned:
    """A server process that said it is listening.

    Attributes:
        pid: Its process id (``taskset`` execs the command, so this is the server itself).
        url: The first ``ws://`` URL on its listening line (None: the line had none).
    """

    pid: int
    url: str | None


@contextlib.asynccontextmanager
async def spawned(
    argv: Sequence[str],
    *,
    cpu: int | None,
    ready: str = "listening",
    within: float = 60.0,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Spawned]:
    """Start ``argv`` (under ``taskset -c cpu`` unless ``cpu`` is None), wait for a ``ready`` line.

    Its output is read all along (so it never blocks on a full pipe); the last lines are kept
    for the error message when it exits early.

    Raises:
        ServerProcessError: It exited, or printed no line containing ``ready`` within ``within`` s.
    """
    command = [*(["taskset", "-c", str(cpu)] if cpu is not None else []), *argv]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert process.stdout is not None
    stdout = process.stdout
    tail: deque[str] = deque(maxlen=20)

    async def listening() -> str | None:
        while line := (await stdout.readline()).decode(errors="replace"):
            tail.append(line.rstrip())
            if ready in line:
                return line
        return None

    async def drain() -> None:
        while line := await stdout.readline():
            tail.append(line.decode(errors="replace").rstrip())

    drainer: asyncio.Task[None] | None = None
    try:
        try:
            line = await asyncio.wait_for(listening(), within)
        except TimeoutError:
            line = None
        if line is None:
            output = "\n".join(tail) or "(no output)"
            raise ServerProcessError(
                f"the server command {' '.join(command)!r} did not print a line with {ready!r} "
                f"within {within:g} s; its last output:\n{output}"
            )
        drainer = asyncio.get_running_loop().create_task(drain())
        match = _WS_URL.search(line)
        yield Spawned(process.pid, match.group(0) if match else None)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
