"""One timer for every simulated caller's 20 ms media frames, instead of a sleep per caller.

Hundreds of callers each sleeping 20 ms between frames cost the load generator a timer, a task
wake-up and a coroutine step per frame; :class:`FramePacer` wakes every ``FRAME_SECONDS /
SLOTS`` seconds and calls the senders whose slot is due, so the cost is one wake-up per slot for
all of them. A sender joins the slot that comes next when it registers, so callers that start at
different moments keep different phases, as real calls do (the server does not get every
caller's frame in the same instant). The schedule is absolute: a late wake-up is caught up on
the next one, never drifts.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable

__all__ = ["FRAME_SECONDS", "SLOTS", "FramePacer", "pacer"]

#: Seconds between one caller's media frames (20 ms of audio each).
FRAME_SECONDS = 0.02
#: Phases per frame period: senders are spread over this many wake-ups.
SLOTS = 4

#: A sender: called once per frame period with the time its frame was due (loop time).
Sender = Callable[[float], Awaitable[None]]


class FramePacer:
    """Calls each registered sender every :data:`FRAME_SECONDS`, from one task on the running loop.

    A sender is awaited in turn; it should not block (an aiohttp ``send_str`` returns at once
    unless the socket is flow-controlled). One that raises is dropped and the exception logged
    by asyncio's handler, the others go on.
    """

    def __init__(self) -> None:
        self._slots: list[dict[int, Sender]] = [{} for _ in range(SLOTS)]
        self._next_id = 0
        self._task: asyncio.Task[None] | None = None
        self._slot = 0  # the slot the next wake-up serves

    def add(self, sender: Sender) -> int:
        """Start calling ``sender`` from the next slot on; returns its handle for :meth:`remove`."""
        self._next_id += 1
        self._slots[self._slot][self._next_id] = sender
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="frame-pacer")
        return self._next_id

    def remove(self, handle: int) -> None:
        """Stop calling the sender registered as ``handle`` (no-op if already removed)."""
        for slot in self._slots:
            slot.pop(handle, None)

    @property
    def senders(self) -> int:
        """Senders registered."""
        return sum(len(slot) for slot in self._slots)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        step = FRAME_SECONDS / SLOTS
        due = loop.time()
        while self.senders:
            slot = self._slots[self._slot]
            self._slot = (self._slot + 1) % SLOTS
            for handle, sender in list(slot.items()):
                if handle not in slot:
                    continue  # removed by an earlier sender of this slot
                try:
                    await sender(due)
                except Exception as error:  # one broken caller must not stop the rest
                    slot.pop(handle, None)
                    loop.call_exception_handler({"message": "a paced sender failed", "exception": error})
            due += step
            await asyncio.sleep(max(due - loop.time(), 0.0))


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FramePacer] = weakref.WeakKeyDictionary()


def pacer() -> FramePacer:
    """The running loop's pacer (one per loop, made on first use)."""
    loop = asyncio.get_running_loop()
    found = _pacers.get(loop)
    if found is None:
        found = _pacers[loop] = FramePacer()
    return found
