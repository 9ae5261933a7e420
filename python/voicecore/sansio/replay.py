"""The caller audio a streaming STT has not settled yet, kept to send again, sans I/O.

Streaming STTs do not acknowledge audio, but a final result covers its window for good. A
stream (or a failover between providers) keeps everything after the last settled point, so a
new connection can be sent exactly the audio the old one may not have transcribed.
"""

from __future__ import annotations

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """The unsettled tail of a stream's audio, bounded; what overflows it is counted as a gap.

    Positions are seconds of the current connection's audio: a new connection's times start
    at 0 again, at the first replayed byte.

    Args:
        bytes_per_second: Of the stream's audio format.
        sample_width: Bytes per sample (cuts never split a sample).
        capacity_seconds: The most audio kept.
    """

    def __init__(
        self, *, bytes_per_second: int, sample_width: int = 1, capacity_seconds: float = 30.0
    ) -> None:
        self.bytes_per_second = bytes_per_second
        self.sample_width = sample_width
        self.capacity = int(capacity_seconds * bytes_per_second) // sample_width * sample_width
        self._buffer = bytearray()
        self._start = 0  # absolute offset of _buffer[0] in the call's audio
        self._origin = 0  # absolute offset where the current connection's time 0 lies
        self._settled = 0  # absolute offset up to which a final result covered the audio
        self.dropped = 0
        """Bytes that overflowed the buffer before they were settled (lost on a reconnect)."""
        self.replay_gap = 0
        """Bytes that a replay could not send: overflowed and never settled (lost for good)."""

    @property
    def pending(self) -> int:
        """Bytes kept for a replay."""
        return len(self._buffer)

    @property
    def gap_seconds(self) -> float:
        """Seconds of audio lost to overflow."""
        return self.dropped / self.bytes_per_second

    @property
    def position(self) -> float:
        """Seconds of audio pushed on the current connection (where the next push starts)."""
        return (self._start + len(self._buffer) - self._origin) / self.bytes_per_second

    def stream_time(self, seconds: float) -> float:
        """``seconds`` of the current connection's audio as seconds since the first byte pushed."""
        return self._origin / self.bytes_per_second + seconds

    def push(self, audio: bytes) -> None:
        """Audio about to be sent."""
        self._buffer += audio
        excess = len(self._buffer) - self.capacity
        if excess > 0:
            excess = -(-excess // self.sample_width) * self.sample_width
            del self._buffer[:excess]
            self._start += excess
            self.dropped += excess

    def settle(self, until_seconds: float) -> None:
        """A final result covers the current connection's audio up to ``until_seconds``."""
        absolute = (
            self._origin + int(until_seconds * self.bytes_per_second) // self.sample_width * self.sample_width
        )
        self._settled = max(self._settled, absolute)
        cut = min(max(absolute - self._start, 0), len(self._buffer))
        del self._buffer[:cut]
        self._start += cut

    def replay(self) -> bytes:
        """The audio to send first on a new connection, whose time 0 it becomes.

        Audio that overflowed since the last settled point cannot be replayed: it is added to
        :attr:`replay_gap` (and counts as settled, so a later replay does not count it again).
        """
        self.replay_gap += max(self._start - self._settled, 0)
        self._settled = max(self._settled, self._start)
        self._origin = self._start
        return bytes(self._buffer)

    @property
    def replay_gap_seconds(self) -> float:
        """Seconds of caller audio no replay could send (see :meth:`replay`)."""
        return self.replay_gap / self.bytes_per_second
