"""Admission control: at most ``max_calls`` calls at once, with slots held between webhook and stream.

A Twilio call arrives twice: first the voice webhook (answered with TwiML), then, a moment
later, the Media Stream. :class:`Admission` reserves a slot at the webhook so that the stream
of a call already answered is not refused because other calls arrived in between; a
reservation whose stream never comes expires after ``reservation_s``. Calls beyond the limit
are refused at the webhook (busy message) and, for streams that come without a reservation, at
the stream (WebSocket close 1013, "try again later"). While draining, everything new is
refused. Pure: the caller passes ``now``.
"""

from __future__ import annotations

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
        self._active: set[str] = set()
        self._reserved: dict[str, float] = {}  # call id -> expiry

    @property
    def active(self) -> int:
        """Calls in progress."""
        return len(self._active)

    def load(self, now: float) -> int:
        """Calls in progress plus unexpired reservations."""
        self._expire(now)
        return len(self._active) + len(self._reserved)

    def reserve(self, call_id: str, now: float) -> bool:
        """Hold a slot for ``call_id``'s stream; False when full or draining (refuse the call)."""
        if self.draining:
            return False
        if call_id in self._reserved or call_id in self._active:
            return True
        if self.load(now) >= self.max_calls:
            return False
        self._reserved[call_id] = now + self.reservation_s
        return True

    def admit(self, call_id: str, now: float) -> bool:
        """Start ``call_id``: with its reservation, or a free slot; False when it must be refused."""
        if self.draining or call_id in self._active:
            return False
        if self._reserved.pop(call_id, None) is None and self.load(now) >= self.max_calls:
            return False
        self._active.add(call_id)
        return True

    def release(self, call_id: str) -> None:
        """``call_id`` ended (or its reservation is no longer wanted)."""
        self._active.discard(call_id)
        self._reserved.pop(call_id, None)

    def drain(self) -> None:
        """Refuse everything new from now on; reservations are dropped."""
        self.draining = True
        self._reserved.clear()

    def _expire(self, now: float) -> None:
        for call_id in [c for c, until in self._reserved.items() if until <= now]:
            del self._reserved[call_id]
