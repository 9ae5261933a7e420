"""Turn-taking for one call: when the caller's turn ends, barge-in, fillers, timeouts, idle.

:class:`TurnMachine` is fed what happened (VAD boundaries, transcripts, reply progress,
playback truth) with the current time, and answers with what to do (start or cancel a reply,
clear queued audio, say a fixed phrase, end the call). It holds no clock: the caller also
calls :meth:`TurnMachine.tick` at :meth:`TurnMachine.next_deadline`. Every behaviour is a
table of ``(event, now) -> actions``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from voicecore.errors import ConfigError

__all__ = [
    "Action",
    "BeepHeard",
    "CallEnded",
    "CallStarted",
    "CancelReply",
    "ClearPlayback",
    "CommitHeard",
    "ConfirmReply",
    "Dtmf",
    "EndCall",
    "Event",
    "FinalizeTranscript",
    "PlaybackIdle",
    "ReplyAudioStarted",
    "ReplyDone",
    "ReplyFailed",
    "ResumeReply",
    "Say",
    "SpeechEnded",
    "SpeechStarted",
    "StartReply",
    "ToolsFinished",
    "ToolsStarted",
    "Transcript",
    "TurnConfig",
    "TurnMachine",
]

EndOfTurnPolicy = Literal["vad", "stt", "both"]
SayReason = Literal["greeting", "filler", "fallback", "idle", "goodbye", "voicemail"]
EndReason = Literal["idle", "max-duration", "voicemail", "machine"]

#: Twilio's answering-machine verdicts (``AnsweredBy``) that mean a machine took the call, and
#: those of them given once its greeting has ended (``MachineDetection=DetectMessageEnd``).
MACHINE_VERDICTS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)
MESSAGE_END_VERDICTS = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other"})

#: Words that alone do not interrupt the agent (compared lower-case, punctuation stripped).
ENGLISH_BACKCHANNELS = frozenset(
    {"yeah", "yes", "yep", "ok", "okay", "uh-huh", "uhhuh", "mhm", "mm-hm", "mm", "hmm", "right"}
    | {"sure", "aha"}
)
#: Backchannels by language (ISO 639-1); :meth:`TurnConfig.for_language` picks from here.
BACKCHANNELS: dict[str, frozenset[str]] = {
    "en": ENGLISH_BACKCHANNELS,
    "es": frozenset({"sí", "si", "vale", "ajá", "aja", "claro", "ok", "mhm", "ya", "bueno"}),
    "fr": frozenset({"oui", "ouais", "d'accord", "ok", "mhm", "hm", "ah", "voilà", "bien"}),
    "de": frozenset({"ja", "genau", "okay", "ok", "mhm", "hm", "aha", "stimmt", "klar"}),
    "it": frozenset({"sì", "si", "certo", "ok", "va", "bene", "mhm", "già", "esatto"}),
    "pt": frozenset({"sim", "tá", "ok", "certo", "claro", "uhum", "mhm", "beleza"}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnConfig:
    """Turn-taking settings; times in seconds.

    Attributes:
        end_of_turn: What ends the caller's turn: the VAD's end of speech (plus the STT's final
            text, waited for up to ``final_timeout``), the STT's own endpointing, or both.
        final_timeout: After the VAD end, how long to wait for the STT before using what it has.
        barge_in_min_speech: Caller speech needed before transcribed words can interrupt.
        barge_in_min_words: Words (not backchannels) in the caller's transcript that interrupt.
        barge_in_max_speech: Continuous caller speech that interrupts even without words
            (0 disables it).
        backchannels: Words that never interrupt on their own ("yeah", "uh-huh", ...).
        false_interruption_timeout: After a barge-in, how long to wait for words before
            resuming the cut reply.
        filler_after: Latency budget: with no agent audio this long after the caller's turn
            ended, say a filler.
        turn_timeout: With no agent audio this long after the turn ended, give up on the reply
            and say ``fallback``.
        tool_filler_delay: Tools still running this long (with nothing said) get a filler.
        idle_after: Caller silence after the agent's audio finished playing before ``idle_prompt``.
        idle_prompts: Idle prompts before saying ``goodbye`` and ending the call.
        max_call_duration: The call says ``goodbye`` and ends after this long.
        greeting: Said when the call starts (None: wait for the caller).
        voicemail: Left when an answering machine takes the call (``CallStarted.answered_by``),
            after which the call ends; None hangs up on machines without a message.
        voicemail_silence: After a ``machine_start`` verdict (its greeting still playing),
            the machine's silence that says its greeting is over, if no beep was heard
            (:class:`BeepHeard` leaves the message at once).
        voicemail_wait: After a ``machine_start`` verdict, the longest wait for that silence
            before the message is left anyway.
        fillers: Phrases for fillers, used in turn so consecutive fillers differ.
        fallback: Said when a reply fails or times out.
        idle_prompt: Said when the caller stays silent.
        goodbye: Said before the call ends on its own.
        dtmf_as_input: Keypad digits up to ``#`` become a caller turn ("DTMF 123").
        speculative_after: Speculative start (None: off): once the VAD heard the end of speech
            and the interim transcript has not changed for this long, start the reply on it;
            it is confirmed when the final text matches, else restarted on the final text.
            The reply's audio waits for the confirmation, so only the LLM's head start is won.
            An STT's eager end of turn (``Transcript.eager``, Deepgram Flux) starts one at once,
            whatever this is set to (the STT's own eager threshold is the switch).
    """

    end_of_turn: EndOfTurnPolicy = "both"
    final_timeout: float = 0.8
    barge_in_min_speech: float = 0.25
    barge_in_min_words: int = 1
    barge_in_max_speech: float = 1.0
    backchannels: frozenset[str] = ENGLISH_BACKCHANNELS
    false_interruption_timeout: float = 1.5
    filler_after: float = 1.5
    turn_timeout: float = 10.0
    tool_filler_delay: float = 0.6
    idle_after: float = 8.0
    idle_prompts: int = 2
    max_call_duration: float = 3600.0
    greeting: str | None = None
    voicemail: str | None = None
    voicemail_silence: float = 1.2
    voicemail_wait: float = 30.0
    fillers: tuple[str, ...] = ("One moment.", "Let me check that.", "Just a second.")
    fallback: str = "Sorry, could you repeat that?"
    idle_prompt: str = "Are you still there?"
    goodbye: str = "Thank you for calling. Goodbye."
    dtmf_as_input: bool = False
    speculative_after: float | None = None

    def for_language(self, language: str) -> TurnConfig:
        """These settings with ``language``'s backchannels, unless backchannels were customised."""
        if self.backchannels is not ENGLISH_BACKCHANNELS:
            return self
        chosen = BACKCHANNELS.get(language.split("-")[0].lower(), ENGLISH_BACKCHANNELS)
        return dataclasses.replace(self, backchannels=chosen)

    def __post_init__(self) -> None:
        if self.end_of_turn not in ("vad", "stt", "both"):
            raise ConfigError(f"end_of_turn must be 'vad', 'stt' or 'both', not {self.end_of_turn!r}")
        for name in (
            "final_timeout",
            "barge_in_min_speech",
            "barge_in_max_speech",
            "false_interruption_timeout",
            "filler_after",
            "turn_timeout",
            "tool_filler_delay",
            "idle_after",
            "max_call_duration",
            "voicemail_silence",
            "voicemail_wait",
        ):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
        if self.turn_timeout <= self.filler_after:
            raise ConfigError(
                f"turn_timeout ({self.turn_timeout}) must exceed filler_after ({self.filler_after})"
            )
        if self.speculative_after is not None and not (
            self.speculative_after >= 0 and math.isfinite(self.speculative_after)
        ):
            raise ConfigError(
                f"speculative_after must be None or seconds >= 0, not {self.speculative_after!r}"
            )
        if self.barge_in_min_words < 0 or self.idle_prompts < 0:
            raise ConfigError("barge_in_min_words and idle_prompts must be >= 0")
        if not self.fillers:
            raise ConfigError("fillers must hold at least one phrase")


# --- events in --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The call is connected; ``answered_by`` is answering-machine detection's verdict, if any."""

    answered_by: str | None = None


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over (hang-up, transport closed)."""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The VAD decided the caller started speaking."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The VAD decided the caller stopped speaking."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """Caller text from the STT: interim (replaced by the next) or final (appended).

    ``end_of_turn`` is the STT's own endpointing (Deepgram ``speech_final``/``UtteranceEnd``).
    ``eager`` marks an interim the STT thinks probably ends the turn (Deepgram Flux
    ``EagerEndOfTurn``): a speculative reply starts on it at once, confirmed by the final text;
    a later interim with other words (the caller resumed) cancels it.
    """

    text: str
    final: bool
    end_of_turn: bool = False
    eager: bool = False


@dataclass(frozen=True, slots=True)
class ReplyAudioStarted:
    """The first audio of reply ``turn`` went out to the caller."""

    turn: int


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """Reply ``turn`` is fully generated (its audio may still be playing)."""

    turn: int


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """Reply ``turn`` failed (a provider error that retries and failover did not fix)."""

    turn: int
    reason: str


@dataclass(frozen=True, slots=True)
class ToolsStarted:
    """Reply ``turn`` is running tools; ``spoke_content`` when the LLM said something first."""

    turn: int
    spoke_content: bool


@dataclass(frozen=True, slots=True)
class ToolsFinished:
    """The tools of reply ``turn`` returned."""

    turn: int


@dataclass(frozen=True, slots=True)
class PlaybackIdle:
    """All agent audio sent so far has been played to the caller (playback truth)."""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """The caller pressed a key."""

    digit: str


@dataclass(frozen=True, slots=True)
class BeepHeard:
    """An answering machine's beep ended (:class:`voicecore.audio.BeepDetector`): it records now."""


Event = (
    CallStarted
    | CallEnded
    | SpeechStarted
    | SpeechEnded
    | Transcript
    | ReplyAudioStarted
    | ReplyDone
    | ReplyFailed
    | ToolsStarted
    | ToolsFinished
    | PlaybackIdle
    | Dtmf
    | BeepHeard
)

# --- actions out ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinalizeTranscript:
    """Ask the STT for its final text now (the VAD heard the end of speech)."""


@dataclass(frozen=True, slots=True)
class StartReply:
    """Start reply ``turn`` to the caller's ``text``.

    ``replaces`` names a reply cancelled because the caller kept talking before hearing it;
    ``text`` then includes what they said for it.
    """

    turn: int
    text: str
    replaces: int | None = None
    speculative: bool = False


@dataclass(frozen=True, slots=True)
class ConfirmReply:
    """The caller's final text matches speculative reply ``turn``: its audio may play."""

    turn: int


@dataclass(frozen=True, slots=True)
class CancelReply:
    """Stop reply ``turn`` now: its LLM, TTS and tools."""

    turn: int
    reason: Literal["barge-in", "continued", "timeout", "failed", "ended", "speculation-missed"]


@dataclass(frozen=True, slots=True)
class ClearPlayback:
    """Drop all queued agent audio at once (Twilio ``clear``, ``PlayoutBuffer.clear``)."""


@dataclass(frozen=True, slots=True)
class CommitHeard:
    """Keep in the history only the part of reply ``turn`` the caller heard."""

    turn: int


@dataclass(frozen=True, slots=True)
class ResumeReply:
    """The barge-in on reply ``turn`` was a false alarm: say its cut sentence and the rest."""

    turn: int


@dataclass(frozen=True, slots=True)
class Say:
    """Speak a fixed phrase (no LLM)."""

    text: str
    reason: SayReason


@dataclass(frozen=True, slots=True)
class EndCall:
    """Hang up once the audio already queued has played."""

    reason: EndReason


Action = (
    FinalizeTranscript
    | StartReply
    | ConfirmReply
    | CancelReply
    | ClearPlayback
    | CommitHeard
    | ResumeReply
    | Say
    | EndCall
)


# --- the machine ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Caller:
    """The caller's turn in progress."""

    speaking: bool = False
    speech_started: float | None = None
    vad_ended: bool = False
    finals: list[str] = field(default_factory=list)
    interim: str = ""
    #: When the interim text last changed.
    interim_since: float = 0.0
    #: Until when to wait for the STT's final text after the VAD end (None: not waiting).
    final_due: float | None = None
    #: The STT delivered its final text after the VAD end, or we stopped waiting for it.
    final_settled: bool = False
    stt_end_of_turn: bool = False
    #: The STT's early end-of-turn guess holds for the current text.
    eager: bool = False

    def text(self) -> str:
        return " ".join(part for part in (*self.finals, self.interim) if part).strip()


@dataclass(slots=True)
class _Reply:
    """The agent's reply in progress."""

    turn: int
    text: str
    turn_ended: float
    audio_started: bool = False
    done: bool = False
    filler_said: bool = False
    tools_since: float | None = None
    speculative: bool = False
    #: Started on the STT's eager end of turn (not on the VAD and a stable interim).
    eager: bool = False


class TurnMachine:
    """The turn-taking state of one call. Feed :meth:`handle`; call :meth:`tick` at deadlines."""

    def __init__(self, config: TurnConfig | None = None) -> None:
        """Create the machine for a call that has not started yet."""
        self.config = config or TurnConfig()
        self._caller = _Caller()
        self._reply: _Reply | None = None
        self._turns = 0
        self._agent_audible = False
        # Reply cut by a barge-in that may prove false, and since when the caller is silent.
        self._barge_in: tuple[int | None, float | None] | None = None
        self._replaced: int | None = None
        self._idle_since: float | None = None
        self._idle_count = 0
        self._call_deadline: float | None = None
        self._ended = False
        self._filler_index = 0
        self._digits = ""
        # Waiting for an answering machine's greeting to end: since when it is quiet (None
        # while it speaks) and the latest moment to leave the message anyway.
        self._machine_quiet_since: float | None = None
        self._machine_deadline: float | None = None

    @property
    def agent_audible(self) -> bool:
        """Whether agent audio is queued or playing (as far as playback reports go)."""
        return self._agent_audible

    @property
    def awaiting_beep(self) -> bool:
        """Whether an answering machine's greeting is playing: its beep would start the message."""
        return self._machine_deadline is not None

    @property
    def reply_turn(self) -> int | None:
        """The reply in progress, if any."""
        return self._reply.turn if self._reply else None

    def say_fallback(self) -> Say:
        """The fallback phrase as an action (for failures outside a reply, e.g. recognition)."""
        return self._say(self.config.fallback, "fallback")

    def handle(self, event: Event, now: float) -> list[Action]:
        """Apply ``event`` that happened at ``now``; returns the actions to carry out, in order."""
        if self._ended:
            return []
        if self._machine_deadline is not None:
            return self._on_machine_event(event, now)
        actions: list[Action] = []
        match event:
            case CallStarted(answered_by):
                self._call_deadline = now + self.config.max_call_duration
                if answered_by in MACHINE_VERDICTS:
                    actions += self._on_machine(answered_by, now)
                elif self.config.greeting:
                    actions.append(self._say(self.config.greeting, "greeting"))
                else:
                    self._idle_since = now
            case CallEnded():
                if self._reply:
                    actions.append(CancelReply(self._reply.turn, "ended"))
                self._ended = True
            case SpeechStarted():
                self._on_speech_started(now)
            case SpeechEnded():
                caller = self._caller
                caller.speaking = False
                caller.vad_ended = True
                caller.final_settled = False
                caller.final_due = now + self.config.final_timeout
                if self._barge_in is not None:
                    self._barge_in = (self._barge_in[0], now)
                actions.append(FinalizeTranscript())
            case Transcript():
                self._on_transcript(event, now, actions)
            case ReplyAudioStarted(turn) if self._reply and self._reply.turn == turn:
                self._reply.audio_started = True
                self._agent_audible = True
                self._idle_since = None
            case ReplyDone(turn) if self._reply and self._reply.turn == turn:
                self._reply.done = True
                if not self._reply.audio_started:  # nothing to say (e.g. only a tool call)
                    self._reply = None
            case ReplyFailed(turn) if self._reply and self._reply.turn == turn:
                self._reply = None
                actions.append(self._say(self.config.fallback, "fallback"))
            case ToolsStarted(turn, spoke) if self._reply and self._reply.turn == turn:
                self._reply.tools_since = None if spoke else now
            case ToolsFinished(turn) if self._reply and self._reply.turn == turn:
                self._reply.tools_since = None
            case PlaybackIdle():
                self._agent_audible = False
                if self._reply and self._reply.done:
                    self._reply = None
                if self._reply is None and not self._caller.speaking:
                    self._idle_since = now
            case Dtmf(digit):
                self._on_dtmf(digit, now, actions)
            case _:
                pass  # progress of a reply that was already cancelled
        self._end_turn_if_ready(now, actions)
        return actions

    def tick(self, now: float) -> list[Action]:
        """Fire whatever deadlines have passed at ``now``."""
        if self._ended:
            return []
        actions: list[Action] = []
        config, caller, reply = self.config, self._caller, self._reply
        if self._machine_deadline is not None:
            quiet_since = self._machine_quiet_since
            quiet = quiet_since is not None and now - quiet_since >= config.voicemail_silence
            return self._leave_voicemail() if quiet or now >= self._machine_deadline else []
        if self._call_deadline is not None and now >= self._call_deadline:
            self._call_deadline = None
            return self._goodbye("max-duration")
        if self._barge_in is not None:
            turn, quiet_since = self._barge_in
            if quiet_since is not None and now - quiet_since >= config.false_interruption_timeout:
                self._barge_in = None
                if turn is not None and not caller.text():
                    actions.append(ResumeReply(turn))
                    self._agent_audible = True
        if caller.final_due is not None and now >= caller.final_due:
            caller.final_due = None
            caller.final_settled = True
        if reply and not reply.audio_started:
            waited = now - reply.turn_ended
            if waited >= config.turn_timeout:
                self._reply = None
                actions.append(CancelReply(reply.turn, "timeout"))
                if not caller.speaking:  # a caller who is talking again is starting a new turn
                    actions.append(self._say(config.fallback, "fallback"))
            elif waited >= config.filler_after and not reply.filler_said and not caller.speaking:
                reply.filler_said = True
                actions.append(self._say(self._next_filler(), "filler"))
        reply = self._reply
        tools_since = reply.tools_since if reply is not None else None
        if (
            reply
            and tools_since is not None
            and not caller.speaking
            and now - tools_since >= config.tool_filler_delay
        ):
            reply.tools_since = None
            reply.filler_said = True
            actions.append(self._say(self._next_filler(), "filler"))
        if self._idle_since is not None and now - self._idle_since >= config.idle_after:
            self._idle_since = None
            self._idle_count += 1
            if self._idle_count > config.idle_prompts:
                return actions + self._goodbye("idle")
            actions.append(self._say(config.idle_prompt, "idle"))
        # Last, so that whatever the steps above made audible (a filler, a fallback) is covered.
        barge_in_due = self._barge_in_due()
        if barge_in_due is not None and now >= barge_in_due:
            self._do_barge_in(now, actions)
        self._end_turn_if_ready(now, actions)
        return actions

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has something to decide, or None."""
        if self._ended:
            return None
        config, caller, reply = self.config, self._caller, self._reply
        if self._machine_deadline is not None:
            if self._machine_quiet_since is None:
                return self._machine_deadline
            return min(self._machine_deadline, self._machine_quiet_since + config.voicemail_silence)
        deadlines = [self._call_deadline, self._barge_in_due(), caller.final_due, self._speculate_due()]
        if self._barge_in is not None and self._barge_in[1] is not None:
            deadlines.append(self._barge_in[1] + config.false_interruption_timeout)
        # Fillers never talk over the caller: their deadlines wait while the caller speaks.
        if reply and not reply.audio_started:
            filler_due = not reply.filler_said and not caller.speaking
            budget = config.filler_after if filler_due else config.turn_timeout
            deadlines.append(reply.turn_ended + budget)
        if reply and reply.tools_since is not None and not caller.speaking:
            deadlines.append(reply.tools_since + config.tool_filler_delay)
        if self._idle_since is not None:
            deadlines.append(self._idle_since + config.idle_after)
        return min((d for d in deadlines if d is not None), default=None)

    # --- caller side ----------------------------------------------------------------------

    def _on_speech_started(self, now: float) -> None:
        caller = self._caller
        caller.speaking = True
        caller.speech_started = now
        caller.vad_ended = False
        caller.final_due = None
        self._idle_since = None
        self._idle_count = 0
        if self._barge_in is not None:
            self._barge_in = (self._barge_in[0], None)  # the silence clock restarts at SpeechEnded

    def _barge_in_due(self) -> float | None:
        """When the caller's speech interrupts the audible agent, if it can.

        After ``barge_in_min_speech`` once enough words were heard (or none are required),
        else after ``barge_in_max_speech`` of speech alone.
        """
        config, caller = self.config, self._caller
        if not (self._agent_audible and caller.speaking and caller.speech_started is not None):
            return None
        words_heard = self._meaningful_words(caller.text()) >= config.barge_in_min_words
        if config.barge_in_min_words == 0 or words_heard:
            return caller.speech_started + config.barge_in_min_speech
        if config.barge_in_max_speech > 0:
            return caller.speech_started + config.barge_in_max_speech
        return None

    def _on_transcript(self, event: Transcript, now: float, actions: list[Action]) -> None:
        caller, config = self._caller, self.config
        text = event.text.strip()
        if event.final:
            if text:
                caller.finals.append(text)
            caller.interim = ""
            if caller.vad_ended:
                caller.final_settled = True
                caller.final_due = None
        else:
            if text != caller.interim:
                caller.interim_since = now
            caller.interim = text
        if event.end_of_turn:
            caller.stt_end_of_turn = True
        caller.eager = event.eager and not event.final
        if text:
            self._idle_since = None
        words = self._meaningful_words(caller.text())
        if self._agent_audible and words >= max(config.barge_in_min_words, 1):
            started = caller.speech_started if caller.speech_started is not None else now
            if now - started >= config.barge_in_min_speech or not caller.speaking:
                self._do_barge_in(now, actions)
        if words and self._barge_in is not None:
            self._barge_in = None  # the caller did say something: a real interruption
        reply = self._reply
        # New words before the reply was heard mean the caller went on (for a speculative
        # reply, only once they speak again: its final text is not "more"; for an eager one,
        # once an interim says other words than it was started on).
        if reply and not reply.audio_started and words:
            if reply.speculative and reply.eager:
                went_on = not event.final and _normalised(caller.text()) != _normalised(reply.text)
            else:
                went_on = caller.speaking or not reply.speculative
            if went_on:
                self._continue_turn(reply, actions)

    def _continue_turn(self, reply: _Reply, actions: list[Action]) -> None:
        """The caller kept talking before hearing reply ``reply``: drop it and answer it all."""
        actions.append(CancelReply(reply.turn, "continued"))
        if not reply.speculative:  # a speculative reply's text is still the caller's own
            self._caller.finals.insert(0, reply.text)
            self._replaced = reply.turn
        self._reply = None

    def _meaningful_words(self, text: str) -> int:
        words = [w.strip(".,!?;:\"'").lower() for w in text.split()]
        return sum(1 for w in words if w and w not in self.config.backchannels)

    def _do_barge_in(self, now: float, actions: list[Action]) -> None:
        reply = self._reply
        actions.append(ClearPlayback())
        self._agent_audible = False
        if reply is not None and not reply.audio_started:
            self._continue_turn(reply, actions)  # only a filler was cut: nothing of the reply heard
            reply = None
        turn: int | None = None
        if reply is not None:
            turn = reply.turn
            if not reply.done:
                actions.append(CancelReply(reply.turn, "barge-in"))
            actions.append(CommitHeard(reply.turn))
            self._reply = None
        self._barge_in = (turn, None if self._caller.speaking else now)

    def _end_turn_if_ready(self, now: float, actions: list[Action]) -> None:
        caller, config = self._caller, self.config
        text = caller.text()
        vad_done = caller.vad_ended and not caller.speaking
        if text and self._agent_audible and not self._meaningful_words(text):
            if vad_done:
                self._caller = _Caller()  # a backchannel while the agent speaks: not a turn
            return
        if not text:
            return
        reply = self._reply
        if reply is not None and not reply.speculative:
            return
        stt_waited = vad_done and caller.final_settled
        match config.end_of_turn:
            case "vad":
                ready = stt_waited
            case "stt":
                ready = caller.stt_end_of_turn
            case _:
                ready = vad_done and (caller.stt_end_of_turn or stt_waited)
        if ready and reply is not None:  # a speculative reply meets the final text
            if _normalised(reply.text) == _normalised(text):
                reply.speculative = False
                self._caller = _Caller()
                actions.append(ConfirmReply(reply.turn))
                return
            actions.append(CancelReply(reply.turn, "speculation-missed"))
            self._reply = None
            self._start_reply(text, now, actions)
        elif ready:
            self._start_reply(text, now, actions)
        elif reply is None and (due := self._speculate_due()) is not None and now >= due:
            self._start_reply(text, now, actions, speculative=True)
            assert self._reply is not None
            self._reply.eager = caller.eager

    def _speculate_due(self) -> float | None:
        """When a stable (or eager) interim transcript may start a speculative reply, if one may."""
        caller, after = self._caller, self.config.speculative_after
        if caller.eager and caller.interim and self._reply is None and not self._agent_audible:
            return caller.interim_since  # the STT itself thinks the turn ended: at once
        if after is None or self._reply is not None or not caller.interim or caller.finals:
            return None
        if not caller.vad_ended or caller.speaking or self._agent_audible:
            return None
        return caller.interim_since + after

    def _start_reply(
        self, text: str, now: float, actions: list[Action], *, speculative: bool = False
    ) -> None:
        self._turns += 1
        replaces, self._replaced = self._replaced, None
        self._reply = _Reply(turn=self._turns, text=text, turn_ended=now, speculative=speculative)
        if not speculative:  # a speculative reply still waits for the caller's final text
            self._caller = _Caller()
        self._barge_in = None
        self._idle_since = None
        actions.append(StartReply(self._turns, text, replaces, speculative))

    def _on_dtmf(self, digit: str, now: float, actions: list[Action]) -> None:
        if not self.config.dtmf_as_input:
            return
        if digit == "#":
            digits, self._digits = self._digits, ""
            if digits and self._reply is None:
                self._start_reply(f"DTMF {digits}", now, actions)
        elif digit in "0123456789*":
            self._digits += digit

    # --- agent side -----------------------------------------------------------------------

    def _say(self, text: str, reason: SayReason) -> Say:
        self._agent_audible = True
        self._idle_since = None
        return Say(text, reason)

    def _next_filler(self) -> str:
        fillers = self.config.fillers
        text = fillers[self._filler_index % len(fillers)]
        self._filler_index += 1
        return text

    def _on_machine(self, verdict: str, now: float) -> list[Action]:
        """A machine answered: leave the message (now, or once its greeting ends) or hang up."""
        if verdict == "fax" or not self.config.voicemail:
            self._ended = True
            return [EndCall("machine")]
        if verdict in MESSAGE_END_VERDICTS:
            return self._leave_voicemail()
        self._machine_quiet_since = now  # its greeting may be over already: silence counts from now
        self._machine_deadline = now + self.config.voicemail_wait
        return []

    def _on_machine_event(self, event: Event, now: float) -> list[Action]:
        """While a machine's greeting plays, only its beep, speech and silence matter."""
        match event:
            case BeepHeard():
                return self._leave_voicemail()
            case SpeechStarted():
                self._machine_quiet_since = None
            case SpeechEnded():
                self._machine_quiet_since = now
            case CallEnded():
                self._ended = True
            case _:
                pass  # nobody to answer
        return []

    def _leave_voicemail(self) -> list[Action]:
        """Say the voicemail message and hang up after it; nothing the machine plays interrupts it."""
        assert self.config.voicemail
        self._machine_deadline = self._machine_quiet_since = None
        self._ended = True
        return [self._say(self.config.voicemail, "voicemail"), EndCall("voicemail")]

    def _goodbye(self, reason: Literal["idle", "max-duration"]) -> list[Action]:
        actions: list[Action] = []
        if self._reply:
            actions.append(CancelReply(self._reply.turn, "ended"))
            self._reply = None
        if self._agent_audible:
            actions.append(ClearPlayback())
        actions += [self._say(self.config.goodbye, "goodbye"), EndCall(reason)]
        self._ended = True
        return actions


def _normalised(text: str) -> str:
    """Text compared for speculation: lower case, words only."""
    return " ".join(word.strip(".,!?;:\"'").lower() for word in text.split())
