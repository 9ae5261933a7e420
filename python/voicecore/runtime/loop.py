"""Which event loop runs voicecore: uvloop when it is installed, stock asyncio otherwise.

``VOICECORE_LOOP=asyncio`` forces the stock loop (asyncio debug mode should run on it: uvloop
has known crashes finalising async generators in debug mode).
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal, TypeVar

from voicecore.errors import ConfigError

__all__ = [
    "FULL_COLLECTION_AFTER_CALLS",
    "FULL_COLLECTION_EVERY",
    "EndedCalls",
    "loop_factory",
    "loop_name",
    "run",
    "settle_heap",
]

T = TypeVar("T")
LoopName = Literal["uvloop", "asyncio"]

#: Collections of the middle generation between two full ones, once a server is ready (Python's
#: default is 10). A full collection walks every live object (40 ms at 300 calls) and stalls
#: every call at once; young cycles are still collected as often as before.
FULL_COLLECTION_EVERY = 100
#: Calls that end between the full collections a server runs itself (:class:`EndedCalls`).
FULL_COLLECTION_AFTER_CALLS = 50


def loop_name(environ: Mapping[str, str] = os.environ) -> LoopName:
    """The loop to use: ``VOICECORE_LOOP`` if set, else uvloop when importable."""
    wanted = environ.get("VOICECORE_LOOP", "").strip().lower()
    if wanted not in ("", "uvloop", "asyncio"):
        raise ConfigError(f"VOICECORE_LOOP must be 'uvloop' or 'asyncio', not {wanted!r}")
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if wanted == "uvloop":
            message = "VOICECORE_LOOP=uvloop but uvloop is not installed (pip install uvloop)"
            raise ConfigError(message) from None
        return "asyncio"
    return "uvloop"


def loop_factory(name: LoopName) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of new event loops of kind ``name``."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], *, loop: LoopName | None = None) -> T:
    """Run ``main`` to completion on a fresh loop of kind ``loop`` (chosen by :func:`loop_name`)."""
    with asyncio.Runner(loop_factory=loop_factory(loop or loop_name())) as runner:
        return runner.run(main)


def settle_heap() -> None:
    """Exempt everything alive now from garbage collection and make full collections rare.

    A server calls it once it is ready for calls: full collections then walk only what calls
    create, which halved their pauses at 300 calls (60 -> 35 ms), and come a tenth as often
    (:data:`FULL_COLLECTION_EVERY`), so fewer turns meet one. Objects freed later are still
    freed; only cycles among the frozen ones are never looked for.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


class EndedCalls:
    """Runs a full collection after every ``every`` calls that end.

    With full collections rare (:func:`settle_heap`), the reference cycles a finished call
    leaves behind (a provider client's connection objects, say) waited many minutes for one,
    and a server's memory grew with the calls it had placed: at 50 calls of three minutes,
    no full collection ran in the first quarter hour. One collection per ``every`` ended calls
    bounds that garbage, at one pause (about 10 ms at 300 calls) per ``every`` calls.
    """

    def __init__(self, every: int = FULL_COLLECTION_AFTER_CALLS) -> None:
        if every < 1:
            raise ConfigError(f"EndedCalls needs every >= 1, not {every}")
        self.every = every
        self.collections = 0
        self._since = 0

    def ended(self) -> bool:
        """A call ended; returns whether this one ran a full collection."""
        self._since += 1
        if self._since < self.every:
            return False
        self._since = 0
        self.collections += 1
        gc.collect()
        return True
