"""Admission control: at most ``max_calls`` calls at once, with slots held between webhook and stream.

A Twilio call arrives twice: first the voice webhook (answered with TwiML), then, a moment
later, the Media Stream. :class:`Admission` reserves a slot at the webhook so that the stream
of a call already answered is not refused because other calls arrived in between; a
reservation whose stream never comes expires after ``reservation_s``. Calls beyond the limit
are refused at the webhook (busy message) and, for streams that come without a reservation, at
the stream (WebSocket close 1013, "try again later"). While draining, everything new is
refused. Pure: the caller passes ``now``.

Each call and reservation is held by an ``owner`` (a worker process's id), and the state can be
written out and read back (:meth:`Admission.state`, :meth:`Admission.restore`): that is how
``serve --workers N`` shares one limit (:mod:`voicecore.shared_admission`), and how the slots
of a worker that died are given back (:meth:`Admission.release_owner`).
"""

from __future__ import annotations

from typing import Any

from voicecore.errors import ConfigError

__all__ = ["Admission"]


class Admission:
    """Counts calls in progress and reserved slots against a limit.

    Args:
        max_calls: Calls allowed at once (in progress plus reserved).
        reservation_s: How long a webhook's reservation waits for its stream.
    """

    def __init__(self, max_calls: int, *, reservation_s: float = 15.0) -> None:
        if max_calls < 1:
            raise ConfigError(f"max_calls must be at least 1, not {max_calls}")
        self.max_calls = max_calls
        self.reservation_s = reservation_s
        self.draining = False
        self._active: dict[str, int] = {}  # call id -> owner
        self._reserved: dict[str, tuple[float, int]] = {}  # call id -> (expiry, owner)

    def state(self) -> dict[str, Any]:
        """The calls and reservations, as JSON-ready data for :meth:`restore`."""
        return {"active": dict(self._active), "reserved": {k: list(v) for k, v in self._reserved.items()}}

    @classmethod
    def restore(cls, max_calls: int, state: dict[str, Any], *, reservation_s: float = 15.0) -> Admission:
        """An admission holding ``state`` (from :meth:`state`)."""
        admission = cls(max_calls, reservation_s=reservation_s)
        admission._active = {str(k): int(v) for k, v in state.get("active", {}).items()}
        admission._reserved = {str(k): (float(v[0]), int(v[1])) for k, v in state.get("reserved", {}).items()}
        return admission

    def owners(self) -> set[int]:
        """The owners holding a call or a reservation."""
        return {*self._active.values(), *(owner for _, owner in self._reserved.values())}

    def release_owner(self, owner: int) -> None:
        """Give back every call and reservation ``owner`` holds (it is gone)."""
        self._active = {k: v for k, v in self._active.items() if v != owner}
        self._reserved = {k: v for k, v in self._reserved.items() if v[1] != owner}

    @property
    def active(self) -> int:
        """Calls in progress."""
        return len(self._active)

    def load(self, now: float) -> int:
        """Calls in progress plus unexpired reservations."""
        self._expire(now)
        return len(self._active) + len(self._reserved)

    def reserve(self, call_id: str, now: float, owner: int = 0) -> bool:
        """Hold a slot for ``call_id``'s stream; False when full or draining (refuse the call)."""
        if self.draining:
            return False
        if call_id in self._reserved or call_id in self._active:
            return True
        if self.load(now) >= self.max_calls:
            return False
        self._reserved[call_id] = (now + self.reservation_s, owner)
        return True

    def admit(self, call_id: str, now: float, owner: int = 0) -> bool:
        """Start ``call_id``: with its reservation, or a free slot; False when it must be refused."""
        if self.draining or call_id in self._active:
            return False
        if self._reserved.pop(call_id, None) is None and self.load(now) >= self.max_calls:
            return False
        self._active[call_id] = owner
        return True

    def release(self, call_id: str) -> None:
        """``call_id`` ended (or its reservation is no longer wanted)."""
        self._active.pop(call_id, None)
        self._reserved.pop(call_id, None)

    def drain(self) -> None:
        """Refuse everything new from now on; reservations are dropped."""
        self.draining = True
        self._reserved.clear()

    def _expire(self, now: float) -> None:
        for call_id in [c for c, (until, _) in self._reserved.items() if until <= now]:
            del self._reserved[call_id]
