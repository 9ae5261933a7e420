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

__all__ = ["Cut", "ItemCut", "ItemPlayback", "PlaybackLedger", "Segment", "Word", "heard_part"]


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


@dataclass(frozen=True, slots=True)
class ItemCut:
    """What a barge-in cut off a speech-to-speech model's audio.

    Attributes:
        played_ms: Per item still playing or queued, the ms of it the caller heard.
        dropped_ms: Audio that was queued but never played.
    """

    played_ms: dict[str, float]
    dropped_ms: float


class ItemPlayback:
    """Playback truth by the model's audio items, for a model that writes its own transcript.

    A speech-to-speech model streams each reply's audio in pieces as its words are still being
    written, so the runtime marks each piece, not each sentence: the echoes say how many ms of
    each item have played, and a barge-in works out the ms into the playing piece from the time
    since the last echo, as :class:`PlaybackLedger` does. The model is then told that length
    (``conversation.item.truncate``) and the words are cut in proportion (:func:`heard_part`).
    """

    def __init__(self) -> None:
        """Nothing sent, nothing playing."""
        self._pending: deque[tuple[str, str, float]] = deque()  # (mark, item id, ms)
        self._played: dict[str, float] = {}
        self._sent: dict[str, float] = {}
        self._seq = 0
        self._playing_since: float | None = None

    @property
    def idle(self) -> bool:
        """Whether every piece sent has been played."""
        return not self._pending

    def sent(self, item_id: str, duration_ms: float, now: float) -> str:
        """Record a piece of ``item_id`` sent at ``now``; returns the mark to send after it."""
        self._seq += 1
        mark = f"rt{self._seq}"
        if not self._pending:
            self._playing_since = now
        self._pending.append((mark, item_id, duration_ms))
        self._sent[item_id] = self._sent.get(item_id, 0.0) + duration_ms
        return mark

    def on_mark(self, mark: str, now: float) -> str:
        """The peer echoed ``mark`` at ``now``; returns the item whose piece it ended.

        Raises:
            ProtocolError: ``mark`` was never sent or was already echoed.
        """
        if all(pending[0] != mark for pending in self._pending):
            raise ProtocolError(f"mark {mark!r} was not sent or was already echoed", kind="mark")
        while True:
            name, item_id, duration_ms = self._pending.popleft()
            self._played[item_id] = self._played.get(item_id, 0.0) + duration_ms
            if name == mark:
                break
        self._playing_since = now if self._pending else None
        return item_id

    def played_ms(self, item_id: str) -> float:
        """Audio of ``item_id`` reported played."""
        return self._played.get(item_id, 0.0)

    def sent_ms(self, item_id: str) -> float:
        """Audio of ``item_id`` sent so far."""
        return self._sent.get(item_id, 0.0)

    def pending(self, item_id: str) -> bool:
        """Whether audio of ``item_id`` is still waiting to be played."""
        return any(pending[1] == item_id for pending in self._pending)

    def cut(self, now: float) -> ItemCut:
        """Barge-in at ``now``: drop everything unplayed; how much of each unfinished item was heard."""
        played: dict[str, float] = {}
        dropped = 0.0
        for index, (_, item_id, duration_ms) in enumerate(self._pending):
            partial = 0.0
            if index == 0 and self._playing_since is not None:
                partial = min(max(now - self._playing_since, 0.0) * 1000.0, duration_ms)
            played.setdefault(item_id, self._played.get(item_id, 0.0))
            played[item_id] += partial
            dropped += duration_ms - partial
        self._pending.clear()
        self._playing_since = None
        return ItemCut(played, dropped)

    def forget(self, item_id: str) -> None:
        """Drop what is recorded of ``item_id`` (its reply is finished)."""
        self._played.pop(item_id, None)
        self._sent.pop(item_id, None)


def heard_part(text: str, duration_ms: float, played_ms: float) -> str:
    """The whole words of ``text`` heard after ``played_ms`` of its ``duration_ms`` of speech."""
    return _played_words(Segment("", 0, text, duration_ms), played_ms)


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
