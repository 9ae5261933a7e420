"""The audit trail: every event of every call, durably in SQLite.

:class:`AuditObserver` writes each event it receives as one row of::

    events(id INTEGER PRIMARY KEY, call_id TEXT, at REAL, kind TEXT, payload TEXT)

``kind`` is the event's class name; ``call_id`` and ``at`` are the event's attributes of
those names (NULL when it has none); ``payload`` is the JSON of ``dataclasses.asdict(event)``
with PII redacted by :func:`voicecore.redact.redact_obj` unless ``redact=False``.

Durability: :meth:`AuditObserver.on_event` only puts the event on a queue, so a slow disk
never delays audio. A background thread turns events into rows and commits them in batches
at least every ``flush_interval`` seconds (a crash loses at most about that much), in WAL
mode with ``synchronous=FULL`` so a commit survives power loss too. :meth:`~AuditObserver.close`
drains the queue and commits everything, so a clean shutdown loses nothing. The writer
thread reads the monotonic clock for the flush deadline; nothing else here does.

The queue is bounded (``max_queue``): if the disk stalls long enough to fill it, new events
are dropped and counted in :attr:`AuditObserver.dropped` rather than growing memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from voicecore.errors import ConfigError
from voicecore.redact import redact as redact_text
from voicecore.redact import redact_obj

__all__ = ["AuditObserver"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    call_id TEXT,
    at REAL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_call_id ON events (call_id);
"""
_INSERT = "INSERT INTO events (call_id, at, kind, payload) VALUES (?, ?, ?, ?)"

_STOP = object()  # queued by close(): write what is pending, then end the thread

Row = tuple[str | None, float | None, str, str]


class AuditObserver:
    """Writes every event it receives to an SQLite database, from a background thread.

    Args:
        path: The database file; created with its table if missing, appended to if not.
        redact: Redact PII (cards, SSNs, phone numbers, e-mail addresses) in payloads.
        flush_interval: Longest time in seconds between an event's arrival and its commit.
        max_queue: Most events waiting to be written; more are dropped and counted.

    Raises:
        ConfigError: The database cannot be opened or set up, or an argument is invalid.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        redact: bool = True,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
    ) -> None:
        if not isinstance(flush_interval, int | float) or not (0 < flush_interval < math.inf):
            raise ConfigError(f"flush_interval must be a positive number of seconds, not {flush_interval!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ConfigError(f"max_queue must be a positive integer, not {max_queue!r}")
        self.path = os.fspath(path)
        self.redact = redact
        self.flush_interval = float(flush_interval)
        try:
            # Used only by the writer thread once __init__ returns.
            self._conn = sqlite3.connect(self.path, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the audit database {self.path!r}: {exc}") from exc
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        self._closed = False
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="voicecore-audit", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Events not recorded because the queue was full or the observer was closed."""
        return self._dropped

    def on_event(self, event: object) -> None:
        """Queue an event for writing; returns at once and never raises.

        The event is serialised later, in the writer thread, so it must not change after
        it is handed over (events are frozen dataclasses).

        Args:
            event: A dataclass instance (a mapping is recorded as is, anything else by its
                ``repr``).
        """
        if self._closed:
            self._drop()
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._drop()

    def close(self) -> None:
        """Write every queued event, commit, and close the database. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        while self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:  # the writer is busy; it will make room
                continue
        self._thread.join()

    async def aclose(self) -> None:
        """:meth:`close` from async code, in a worker thread so the loop keeps running."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> AuditObserver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _drop(self) -> None:
        with self._lock:
            self._dropped += 1
            first = self._dropped == 1
        if first:
            logger.warning("audit: dropping events (queue full or observer closed); see .dropped")

    # --- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        pending: list[Row] = []
        deadline: float | None = None
        stopping = False
        while not stopping:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                items = [self._queue.get(timeout=timeout)]
            except queue.Empty:
                items = []
            while True:  # take whatever else is already queued: one commit for the lot
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if item is _STOP:
                    stopping = True
                else:
                    pending.append(self._row(item))
                    if deadline is None:
                        deadline = time.monotonic() + self.flush_interval
            if pending and (stopping or (deadline is not None and time.monotonic() >= deadline)):
                if self._write(pending):
                    pending = []
                    deadline = None
                else:  # try again after another interval, keeping the rows
                    deadline = time.monotonic() + self.flush_interval
        if pending and not self._write(pending):
            logger.error("audit: %d events could not be written at close", len(pending))
        self._conn.close()

    def _row(self, event: object) -> Row:
        call_id = getattr(event, "call_id", None)
        at = getattr(event, "at", None)
        if isinstance(at, bool) or not isinstance(at, int | float):
            at = None
        try:
            payload = self._payload(event)
        except Exception as exc:  # a broken event must not stop the writer
            logger.warning(
                "audit: cannot serialise a %s event (%s)", type(event).__name__, type(exc).__name__
            )
            payload = '{"error":"event could not be serialised"}'
        return (
            None if call_id is None else str(call_id),
            None if at is None else float(at),
            type(event).__name__,
            payload,
        )

    def _payload(self, event: object) -> str:
        data: Any
        if dataclasses.is_dataclass(event) and not isinstance(event, type):
            data = dataclasses.asdict(event)
        elif isinstance(event, Mapping):
            data = dict(event)
        else:
            data = {"repr": repr(event)}
        if self.redact:
            data = redact_obj(data)
        return msgspec.json.encode(data, enc_hook=self._fallback).decode()

    def _fallback(self, value: object) -> str:
        """JSON for a value msgspec cannot encode: its str, redacted like the rest."""
        text = str(value)
        return redact_text(text) if self.redact else text

    def _write(self, rows: list[Row]) -> bool:
        try:
            with self._conn:  # commits, or rolls back on error
                self._conn.executemany(_INSERT, rows)
        except sqlite3.Error as exc:
            logger.warning("audit: writing %d events failed (%s); will retry", len(rows), exc)
            return False
        return True
