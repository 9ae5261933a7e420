"""Observers: components that watch a call's events off the hot path.

The runtime hands every event (a dataclass such as a transcript update, a tool call or a
barge-in) to each observer's :meth:`Observer.on_event` from the thread that produced it.
That call sits on the audio path, so an observer only records or enqueues the event there
and does its slow work (disk, network) elsewhere. :meth:`Observer.close` finishes that
work at shutdown and may block; from async code run it with ``asyncio.to_thread``.

Built in: :class:`voicecore.observers.audit.AuditObserver`, which writes every event to
SQLite.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Observer"]


@runtime_checkable
class Observer(Protocol):
    """Something that watches events; see the module docstring for the rules."""

    def on_event(self, event: object) -> None:
        """Take one event. Must return at once: never block, never raise.

        Args:
            event: The event, usually a frozen dataclass.
        """

    def close(self) -> None:
        """Finish all pending work and release resources; may block, safe to call twice."""
