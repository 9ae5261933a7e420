"""voicecore's side of the side-by-side: the load generator's own agent, in a process of its own.

``python -m voicecore bench load`` without ``--target`` serves this agent in the generator's
process (:func:`voicecore.loadgen.in_process_server`: fake providers with
:class:`~voicecore.loadgen.FakeDelays`, greeting ``"Hello."``), so its CPU cannot be told apart
from the generator's. Served from here, both servers are driven the same way (``--target``) and
each one's CPU can be read from the OS (``/proc/PID/stat``) around a run.

``python -m benches.peers.voicecore_server`` prints ``voicecore peer listening on ws://...`` (a
free port on 127.0.0.1: ``in_process_server`` picks it) and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from voicecore.loadgen import FakeDelays, in_process_server
from voicecore.runtime.loop import run

#: Calls it accepts at once (the generator's own default is max(calls, 50)).
MAX_CALLS = 500


async def serve() -> None:
    """Serve until SIGTERM or SIGINT, then shut down (open calls are dropped, as in-process)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with in_process_server(FakeDelays(), MAX_CALLS) as url:
        print(f"voicecore peer listening on {url}", flush=True)
        await stop.wait()


def main() -> int:
    """Serve on voicecore's event loop (uvloop when installed, as ``voicecore serve``)."""
    run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
