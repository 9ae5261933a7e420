"""Hands call events to observers on a background thread, so none can delay the audio path."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

from voicecore.observers import Observer

__all__ = ["EventHub"]

logger = logging.getLogger(__name__)


class _Dispatcher:
    """One process-wide thread that delivers events to observers in order."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, observers: Sequence[Observer], event: object) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="voicecore-observers", daemon=True)
                    self._thread.start()
        self._queue.put((observers, event))

    def drain(self) -> None:
        """Block until everything submitted so far has been delivered."""
        done = threading.Event()
        self._queue.put(done)
        if self._thread is not None:
            done.wait()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            assert isinstance(item, tuple)
            observers: Sequence[Observer] = item[0]
            event: object = item[1]
            for observer in observers:
                try:
                    observer.on_event(event)
                except Exception:  # an observer's bug must not stop the others
                    name, kind = type(observer).__name__, type(event).__name__
                    logger.exception("observer %s failed on %s", name, kind)


_DISPATCHER = _Dispatcher()


class EventHub:
    """A call's observers; :meth:`publish` returns at once whatever the observers do."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        """Deliver to ``observers``, in this order, for every event published."""
        self.observers = tuple(observers)

    def publish(self, event: object) -> None:
        """Queue ``event`` for every observer (a no-op without observers)."""
        if self.observers:
            _DISPATCHER.submit(self.observers, event)

    def flush(self) -> None:
        """Block until every event published so far has been delivered (shutdown, tests)."""
        if self.observers:
            _DISPATCHER.drain()
