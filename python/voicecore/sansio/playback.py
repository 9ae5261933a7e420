"""Playback truth: which of the agent's words the caller has actually heard.

Agent audio goes out sentence by sentence; after each sentence's audio the transport sends a
mark (Twilio ``mark``, or the browser's playback acknowledgement) and the peer echoes it once
that audio has played. :class:`PlaybackLedger` keeps the sentences in order, moves its cursor
on each echo, and on a barge-in (:meth:`PlaybackLedger.cut`) works out how far into the
current sentence playback got: from the time since the previous echo, refined by the TTS's
word timestamps when the provider sent them, or else in proportion to the characters, cut back
to a whole word. The runtime keeps only the heard text in the conversation history.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from voicecore.errors import ProtocolError

__all__ = ["Cut", "PlaybackLedger", "Segment", "Word"]


@dataclass(frozen=True, slots=True)
class Word:
    """A word of a segment and when it ends, in ms from the segment's first sample."""

    text: str
    end_ms: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of agent audio (usually a sentence) followed by a mark.

    Attributes:
        mark: The mark name sent after the segment's audio.
        turn: The reply it belongs to (0 for fixed phrases: greeting, fillers, prompts).
        text: What the audio says.
        duration_ms: Audio length.
        words: Word end times from the TTS, if it sent them.
    """

    mark: str
    turn: int
    text: str
    duration_ms: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class Cut:
    """What a barge-in cut off.

    Attributes:
        heard: Per turn, the text of that turn the caller heard (whole sentences and the
            words of the cut one that had played).
        unheard: Per turn, the text from the cut sentence's start onwards (to resume it).
        dropped_ms: Audio that was queued but never played.
    """

    heard: dict[int, str]
    unheard: dict[int, str]
    dropped_ms: float


class PlaybackLedger:
    """The agent audio in flight for one call, in order, and what of it has played."""

    def __init__(self) -> None:
        """An empty ledger: nothing sent, nothing playing."""
        self._pending: deque[Segment] = deque()
        self._heard: dict[int, list[str]] = {}
        self._seq = 0
        self._playing_since: float | None = None

    @property
    def idle(self) -> bool:
        """Whether every segment sent has been played."""
        return not self._pending

    @property
    def queued_ms(self) -> float:
        """Audio sent and not yet reported played."""
        return sum(segment.duration_ms for segment in self._pending)

    def append(
        self, turn: int, text: str, duration_ms: float, now: float, words: tuple[Word, ...] = ()
    ) -> str:
        """Record a segment about to be sent at ``now``; returns the mark to send after its audio."""
        self._seq += 1
        mark = f"{turn}.{self._seq}"
        if not self._pending:
            self._playing_since = now  # nothing ahead of it: it starts playing now
        self._pending.append(Segment(mark, turn, text, duration_ms, words))
        return mark

    def on_mark(self, mark: str, now: float) -> Segment:
        """The peer echoed ``mark`` at ``now``: its segment (and any before it) has played.

        Raises:
            ProtocolError: ``mark`` was never sent or was already echoed.
        """
        if all(segment.mark != mark for segment in self._pending):
            raise ProtocolError(f"mark {mark!r} was not sent or was already echoed", kind="mark")
        while True:
            segment = self._pending.popleft()
            self._heard.setdefault(segment.turn, []).append(segment.text)
            if segment.mark == mark:
                break
        self._playing_since = now if self._pending else None
        return segment

    def cut(self, now: float) -> Cut:
        """Barge-in at ``now``: drop everything unplayed and say what was heard of each turn."""
        heard = {turn: list(texts) for turn, texts in self._heard.items()}
        unheard: dict[int, list[str]] = {}
        dropped = 0.0
        for index, segment in enumerate(self._pending):
            played_ms = 0.0
            if index == 0 and self._playing_since is not None:
                played_ms = min(max(now - self._playing_since, 0.0) * 1000.0, segment.duration_ms)
            dropped += segment.duration_ms - played_ms
            partial = _played_words(segment, played_ms)
            if partial:
                heard.setdefault(segment.turn, []).append(partial)
            unheard.setdefault(segment.turn, []).append(segment.text)
        self._pending.clear()
        self._playing_since = None
        self._heard.clear()
        return Cut(
            heard={turn: " ".join(texts) for turn, texts in heard.items()},
            unheard={turn: " ".join(texts) for turn, texts in unheard.items()},
            dropped_ms=dropped,
        )

    def pending(self, turn: int) -> bool:
        """Whether audio of ``turn`` is still waiting to be played."""
        return any(segment.turn == turn for segment in self._pending)

    def heard(self, turn: int) -> str:
        """The text of ``turn`` whose marks have been echoed so far."""
        return " ".join(self._heard.get(turn, ()))

    def forget(self, turn: int) -> None:
        """Drop what was recorded as heard of ``turn`` (its reply is finished and committed)."""
        self._heard.pop(turn, None)


def _played_words(segment: Segment, played_ms: float) -> str:
    """The words of ``segment`` that had fully played after ``played_ms``."""
    if played_ms <= 0.0:
        return ""
    if played_ms >= segment.duration_ms:
        return segment.text
    if segment.words:
        return " ".join(word.text for word in segment.words if word.end_ms <= played_ms)
    # No timestamps: speech runs at a roughly even rate of characters; keep whole words only.
    chars = int(len(segment.text) * played_ms / segment.duration_ms)
    spoken = segment.text[:chars]
    words = spoken.split()
    mid_word = chars < len(segment.text) and not segment.text[chars].isspace() and not spoken[-1:].isspace()
    if words and mid_word:
        words.pop()  # the last word was still being said
    return " ".join(words)
