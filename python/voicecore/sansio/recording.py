"""A call's two sides on one timeline, as the caller heard them: the stereo of a recording.

The caller's audio is the clock: it arrives in real time, 20 ms a frame, and a frame the
network lost is a gap of silence (placed by its media timestamp when the protocol gives one).
Agent audio plays from the moment it is sent, or after the audio queued before it; a
``clear`` (barge-in) cuts what had not played yet. So every sample before the caller's latest
is final, and :meth:`StereoTimeline.take` hands those out as interleaved stereo PCM16: the
caller left, the agent right.
"""

from __future__ import annotations

import sys
from array import array

__all__ = ["MAX_GAP_S", "StereoTimeline"]

#: The longest run of lost caller frames filled with silence, in seconds.
MAX_GAP_S = 5


class StereoTimeline:
    """Caller and agent PCM16 (mono, one sample rate) laid out on the caller's media clock.

    Args:
        sample_rate: The rate of both tracks.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._caller = array("h")
        self._agent = array("h")
        self._taken = 0  # samples already handed out by take()
        self._agent_end = 0  # where the queued agent audio ends, in samples since the start

    @property
    def now(self) -> int:
        """Samples of the call so far (the caller's clock)."""
        return self._taken + len(self._caller)

    @property
    def pending(self) -> int:
        """Samples final but not yet taken."""
        return len(self._caller)

    def caller_audio(self, pcm: bytes, timestamp_ms: int | None = None) -> None:
        """Caller audio, starting at ``timestamp_ms`` on the media clock when known.

        A gap before it (frames the network lost) becomes silence, up to :data:`MAX_GAP_S`;
        a timestamp further ahead is taken for a bad one and ignored.
        """
        if timestamp_ms is not None:
            gap = timestamp_ms * self.sample_rate // 1000 - self.now
            if 0 < gap <= MAX_GAP_S * self.sample_rate:
                self._caller.extend(array("h", bytes(2 * gap)))
        self._caller.extend(_samples(pcm))

    def agent_audio(self, pcm: bytes) -> None:
        """Agent audio sent now: it plays once everything queued before it has played."""
        start = max(self.now, self._agent_end)
        position = start - self._taken
        if position > len(self._agent):
            self._agent.extend(array("h", bytes(2 * (position - len(self._agent)))))
        self._agent.extend(_samples(pcm))
        self._agent_end = start + len(pcm) // 2

    def clear(self) -> None:
        """The queued agent audio was dropped (barge-in): what had not played yet never will."""
        if self._agent_end > self.now:
            del self._agent[len(self._caller) :]
            self._agent_end = self.now

    def take(self) -> bytes:
        """Interleaved stereo PCM16 of everything final (up to :attr:`now`), once; then dropped here."""
        count = len(self._caller)
        if len(self._agent) < count:
            self._agent.extend(array("h", bytes(2 * (count - len(self._agent)))))
        stereo = array("h", bytes(4 * count))
        stereo[0::2] = self._caller
        stereo[1::2] = self._agent[:count]
        del self._caller[:]
        del self._agent[:count]
        self._taken += count
        data = stereo.tobytes()
        return data if sys.byteorder == "little" else _swapped(stereo)


def _samples(pcm: bytes) -> array[int]:
    """PCM16 little-endian bytes as native samples."""
    samples = array("h", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder != "little":
        samples.byteswap()
    return samples


def _swapped(samples: array[int]) -> bytes:
    swapped = array("h", samples)
    swapped.byteswap()
    return swapped.tobytes()
