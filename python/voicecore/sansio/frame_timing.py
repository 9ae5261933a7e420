"""Audio that comes too late, both ways: caller frames behind their media clock, agent audio gaps.

:class:`ArrivalMeter` compares when each caller frame arrives with where it sits on the
stream's media clock (Twilio's ``media.timestamp``, or, for transports without one, the
duration of the audio received before it). The least-delayed frame so far is the reference:
a frame's lateness is how much longer it took than that one, so a constant network delay
counts as nothing and a stall (the network, or a busy event loop) counts for every frame it
held back.

:class:`PlayoutClock` models when the agent's audio sent so far finishes playing, from what
was sent (the far end plays it at real-time rate), and marks confirm it: a mark played later
than modelled means the far end plays later than the audio was sent (network, jitter buffer),
so everything after it ends later too. Audio handed over after the modelled end, within one
reply, means the caller heard a gap: an underrun (the TTS or the LLM fell behind).

Pure: the caller passes ``now`` (seconds, any monotonic clock).
"""

from __future__ import annotations

__all__ = ["LATE_AFTER_S", "UNDERRUN_AFTER_S", "ArrivalMeter", "PlayoutClock"]

#: A caller frame this much later than the least-delayed one counts as late.
LATE_AFTER_S = 0.1
#: A gap in the agent's audio shorter than this (one 20 ms frame) is not counted.
UNDERRUN_AFTER_S = 0.02


class ArrivalMeter:
    """Lateness of one stream's caller frames.

    Args:
        late_after: Lateness (seconds) from which a frame counts as late.
    """

    def __init__(self, late_after: float = LATE_AFTER_S) -> None:
        self.late_after = late_after
        self.late_frames = 0
        self._media_s = 0.0  # the media clock after the last frame
        self._reference: float | None = None  # smallest arrival minus media time seen

    def frame(self, now: float, duration_s: float, timestamp_s: float | None = None) -> float | None:
        """Note a frame of ``duration_s`` arriving at ``now``; its lateness if late, else None.

        Args:
            now: When it arrived.
            duration_s: How much audio it holds.
            timestamp_s: Its place on the media clock, if the transport says (Twilio does);
                otherwise the audio received before it.
        """
        media = self._media_s if timestamp_s is None else timestamp_s
        self._media_s = media + duration_s
        offset = now - media
        if self._reference is None or offset < self._reference:
            self._reference = offset
            return None
        lateness = offset - self._reference
        if lateness <= self.late_after:
            return None
        self.late_frames += 1
        return lateness


class PlayoutClock:
    """Underruns in one reply's audio, from when each piece was handed to the transport.

    Args:
        underrun_after: Gaps (seconds) from which an underrun is counted.
    """

    def __init__(self, underrun_after: float = UNDERRUN_AFTER_S) -> None:
        self.underrun_after = underrun_after
        self.underruns = 0
        self.underrun_s = 0.0
        self._until: float | None = None  # when the audio sent so far has played
        self._late = 0.0  # how much later than sent the far end plays, as marks showed

    @property
    def expected_end(self) -> float | None:
        """When the audio sent so far is modelled to have played (None before any)."""
        return self._until

    def mark(self) -> float | None:
        """For a mark sent now: where the audio before it ends, to hand to :meth:`confirm`."""
        return None if self._until is None else self._until - self._late

    def confirm(self, mark: float, now: float) -> None:
        """The mark :meth:`mark` described was played at ``now``; later than modelled moves the model."""
        delay = now - (mark + self._late)
        if self._until is not None and delay > 0:
            self._until += delay
            self._late += delay

    def sent(self, now: float, duration_s: float) -> float:
        """Note ``duration_s`` of audio sent at ``now``; the gap before it (0.0: none)."""
        if self._until is None:
            self._until = now + duration_s
            return 0.0
        gap = now - self._until
        self._until = max(self._until, now) + duration_s
        if gap < self.underrun_after:
            return 0.0
        self.underruns += 1
        self.underrun_s += gap
        return gap
