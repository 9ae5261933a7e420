"""What a phone hears of the agent's audio: a real-time playout buffer, its underruns and late frames.

Twilio plays the media it receives in real time from the first frame of an answer on; a frame
that arrives after the audio before it has finished playing leaves a gap of silence inside the
answer. :class:`PlayoutMeter` replays the arrival times of one call's agent audio through that
model. It is pure (the caller passes the times), so it can be tested without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PlayoutMeter"]


@dataclass
class PlayoutMeter:
    """One call's received agent audio, played in real time, answer by answer.

    An answer runs from its first audio to :meth:`end_answer` (the caller's next speech ended,
    or a ``clear`` dropped it); between those, the buffer running dry is an underrun.

    Attributes:
        frames: Media messages received.
        answers: Answers started (first audio after the previous one ended).
        underruns: Times the buffer ran dry inside an answer and then got more audio.
        underrun_seconds: Silence those gaps added, in all.
        late_frames: Frames that arrived after the moment they should have started playing if the
            answer had played without a gap from its first frame on (so every frame after an
            underrun that does not catch up again is late too).
    """

    frames: int = 0
    answers: int = 0
    underruns: int = 0
    underrun_seconds: float = 0.0
    late_frames: int = 0
    _start: float | None = None
    _queued: float = 0.0
    _until: float = 0.0

    def audio(self, now: float, seconds: float) -> None:
        """``seconds`` of agent audio arrived at ``now``."""
        self.frames += 1
        if self._start is None:
            self.answers += 1
            self._start, self._queued, self._until = now, 0.0, now
        else:
            if now > self._start + self._queued:
                self.late_frames += 1
            if now > self._until:
                self.underruns += 1
                self.underrun_seconds += now - self._until
        self._queued += seconds
        self._until = max(self._until, now) + seconds

    def end_answer(self) -> None:
        """The answer is over: the next audio starts a new one (a gap before it is no underrun)."""
        self._start = None

    def merge(self, other: PlayoutMeter) -> None:
        """Add ``other`` 's counts to these (the totals of a run)."""
        self.frames += other.frames
        self.answers += other.answers
        self.underruns += other.underruns
        self.underrun_seconds += other.underrun_seconds
        self.late_frames += other.late_frames
