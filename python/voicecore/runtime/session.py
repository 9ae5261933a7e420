"""One call: pumps caller audio, transcripts and replies through the turn machine.

The :class:`Session` owns the clock and the tasks; every decision comes from
:class:`~voicecore.sansio.turn.TurnMachine` (what to do) and
:class:`~voicecore.sansio.playback.PlaybackLedger` (what the caller heard). Each reply is one
task: LLM tokens → Rust sentence splitter → ``speakable`` → TTS → transport, sentence by
sentence; cancelling the task (barge-in) closes its LLM and TTS streams at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voicecore import events as ev
from voicecore.audio import BeepDetector, Vad
from voicecore.call_info import CallInfo, voicemail_for
from voicecore.errors import ConfigError, ProtocolError, ProviderError
from voicecore.history import History
from voicecore.logs import install_call_fields
from voicecore.observers import Observer
from voicecore.providers.base import (
    LLM,
    STT,
    TTS,
    AudioFormat,
    TextDelta,
    TTSStream,
    Usage,
    WarmLLM,
    WarmTTS,
)
from voicecore.redact import install_log_redaction
from voicecore.runtime.call_control import CallControl
from voicecore.runtime.convert import AudioConverter, choose_format
from voicecore.runtime.metrics import (
    AGENT_UNDERRUN_SECONDS,
    AGENT_UNDERRUNS,
    BARGE_IN_TO_SILENCE,
    BARGE_INS,
    CALLER_FRAME_LATENESS,
    CALLS,
    TurnClock,
    count_outbound_answer,
    count_provider_error,
    count_usage,
)
from voicecore.runtime.observe import EventHub
from voicecore.sansio import turn as t
from voicecore.sansio.frame_timing import ArrivalMeter, PlayoutClock
from voicecore.sansio.playback import Cut, PlaybackLedger, Word
from voicecore.sansio.variables import call_variables, check_templates, personalize, template_texts
from voicecore.text import SentenceSplitter, speakable
from voicecore.tools import Toolbox, ToolCall, invoke_all
from voicecore.transports.base import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed, Transport
from voicecore.usage import Prices, UsageMeter

__all__ = ["Session", "SessionConfig"]

logger = logging.getLogger(__name__)

#: After this many STT failures in a row the caller hears the fallback phrase (the agent
#: cannot hear them); recognition keeps reconnecting.
_STT_FAILURES_BEFORE_APOLOGY = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """What an agent says and how it behaves, for one call.

    Attributes:
        instructions: The system prompt.
        turn: Turn-taking settings (greeting, fillers, budgets, barge-in).
        language: The caller's language, for the STT.
        voice: The TTS voice (provider default when None).
        tools: Tools the LLM may call.
        max_tool_steps: LLM rounds with tool calls allowed per reply.
        history_tokens: Token budget of the conversation sent to the LLM.
        retries: Attempts after a retryable provider error before the fallback phrase.
        call_control: Offer the LLM the built-in ``end_call`` and ``transfer_call`` tools.
        redact_logs: Redact PII (cards, SSNs, phones, e-mails) in voicecore's log records.
        vad_threshold: Speech probability threshold of the VAD (its default when None).
        prices: Provider name → prices, to estimate each call's cost (:mod:`voicecore.usage`).
        timezone: The IANA time zone of the ``{{now...}}`` call variables (``Europe/Rome``).

    ``instructions`` and the turn's phrases may name call variables (``{{first_name}}``,
    ``{{now.date}}``: :mod:`voicecore.sansio.variables`), filled in as each call starts.
    """

    instructions: str
    turn: t.TurnConfig = field(default_factory=t.TurnConfig)
    language: str = "en"
    voice: str | None = None
    tools: Toolbox | None = None
    max_tool_steps: int = 4
    history_tokens: int = 8000
    retries: int = 1
    call_control: bool = True
    redact_logs: bool = True
    vad_threshold: float | None = None
    prices: Mapping[str, Prices] = field(default_factory=dict)
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        check_templates(template_texts(self.instructions, self.turn))
        time_zone(self.timezone)


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        ConfigError: No such zone in this machine's time-zone database.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigError(
            f"timezone: {name!r} is no IANA time zone (like 'Europe/Rome' or 'America/New_York'); "
            "if it is one, install the time-zone database: pip install tzdata"
        ) from error


class Session:
    """One call between a transport and the STT, LLM and TTS providers."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        transport: Transport,
        stt: STT,
        llm: LLM,
        tts: TTS,
        observers: Sequence[Observer] = (),
        call_id: str | None = None,
        call: CallInfo | None = None,
    ) -> None:
        """Prepare a session; :meth:`run` carries out the call.

        ``call`` says who is on the line (tools with a ``CallInfo`` parameter receive it);
        without it the call is known only by ``call_id`` (a fresh id when None too).
        """
        self.config = config
        install_call_fields()
        install_log_redaction(enabled=config.redact_logs)
        self.call_id = call_id or (call.call_id if call is not None else "") or uuid.uuid4().hex
        self.call = call if call is not None else CallInfo(call_id=self.call_id)
        self.events = EventHub(observers)
        self.usage = UsageMeter()
        self._clocks: dict[int, TurnClock] = {}
        self._unplayed: dict[int, str] = {}  # finished replies whose audio is still playing
        self._confirmations: dict[int, asyncio.Event] = {}  # speculative replies not yet confirmed
        self._speech_end: float | None = None
        self._end_reason = "caller hung up"
        self.control = CallControl()
        tools = [*(config.tools or ()), *(self.control.tools() if config.call_control else ())]
        self.toolbox = Toolbox(tools)
        self.transport, self.stt, self.llm, self.tts = transport, stt, llm, tts
        instructions, turn = personal_config(config, self.call)
        self.history = History(instructions, max_tokens=config.history_tokens)
        self.machine = t.TurnMachine(turn)
        self.ledger = PlaybackLedger()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._warming: set[asyncio.Task[None]] = set()  # the providers' warm-ups (see _warm_up)
        self._replies: dict[int, asyncio.Task[None]] = {}
        self._pending_user: dict[int, str] = {}
        self._done_replies: set[int] = set()
        self._last_cut: Cut | None = None
        self._wake = asyncio.Event()
        self._finished = asyncio.Event()
        self._hang_up_when_idle = False
        self._hanging_up = False
        self._phrases = 0  # fixed phrases (greeting, goodbye, voicemail) still being spoken
        # Sentences whose audio is going out but whose mark is not sent yet (the ledger learns of
        # a sentence only at its mark): while any is, the agent is audible though the ledger is idle.
        self._unmarked = 0
        self._streaming = 0  # TTS pumps that may still send audio (a reply between sentences)
        inbound = transport.input_format
        vad_rate = 8000 if inbound.sample_rate == 8000 else 16000
        self._vad_format = AudioFormat("pcm16", vad_rate)
        self._to_vad = AudioConverter(inbound, self._vad_format)
        self._vad = (
            Vad(vad_rate) if config.vad_threshold is None else Vad(vad_rate, threshold=config.vad_threshold)
        )
        self._beeps: BeepDetector | None = None  # made only while a machine's greeting plays
        self._stt_format = choose_format(stt.input_formats(), inbound)
        self._to_stt = AudioConverter(inbound, self._stt_format)
        self._tts_format = choose_format(tts.output_formats(), transport.output_format)
        self._stt_stream: Any = None
        self.arrivals = ArrivalMeter()
        self._mark_ends: dict[str, tuple[PlayoutClock, float]] = {}  # mark -> its reply's clock, end
        self._inbound_bytes_per_s = float(inbound.bytes_per_second)

    def providers(self) -> tuple[object, ...]:
        """The providers made for this call (closed by whoever made them)."""
        return (self.stt, self.llm, self.tts)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Carry out the call until the caller hangs up or the agent ends it.

        Cancelling the task ends it too; ``task.cancel("why")`` makes ``why`` the reason
        :class:`~voicecore.events.CallClosed` gives.
        """
        loop = asyncio.get_running_loop()
        self._now: Callable[[], float] = loop.time
        self._warm_up()
        try:
            self._stt_stream = await self.stt.open(self._stt_format, language=self.config.language)
        except BaseException:
            await self._stop_warming()
            raise
        CALLS.inc()
        if self.call.direction == "outbound":
            count_outbound_answer(self.call.answered_by)
        self._publish(ev.CallOpened, call=self.call)
        try:
            self._spawn(self._inbound(), "inbound")
            self._spawn(self._transcripts(), "transcripts")
            self._spawn(self._timers(), "timers")
            self._handle(t.CallStarted(answered_by=self.call.answered_by))
            if self.machine.awaiting_beep:
                self._beeps = BeepDetector(self._vad_format.sample_rate)
            await self._finished.wait()
        except asyncio.CancelledError as cancelled:  # stopped from outside: its message says why
            self._end_reason = str(cancelled.args[0]) if cancelled.args else "cancelled"
            raise
        finally:
            self._handle(t.CallEnded())
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._stop_warming()
            if self._stt_stream is not None:
                with contextlib.suppress(ProviderError):
                    await self._stt_stream.aclose()
            usage = self.usage.report(self.config.prices)
            count_usage(usage, priced=bool(self.config.prices))
            self._publish(ev.CallClosed, reason=self._end_reason, usage=usage)

    def _warm_up(self) -> None:
        """Open the LLM's and the TTS's connections in the background, so no turn pays a handshake.

        The call does not wait for them: a TTS ``open()`` waits for its own warm-up in flight
        (see :class:`~voicecore.providers.base.WarmTTS`), and a warm-up that fails is logged
        and leaves the turn to fail over or fall back as it would have.
        """
        loop = asyncio.get_running_loop()
        if isinstance(self.llm, WarmLLM):
            self._warming.add(loop.create_task(self._warm(self.llm.name, self.llm.warm()), name="warm-llm"))
        if isinstance(self.tts, WarmTTS):
            warm = self.tts.warm(self._tts_format, voice=self.config.voice)
            self._warming.add(loop.create_task(self._warm(self.tts.name, warm), name="warm-tts"))

    async def _warm(self, provider: str, warm: Coroutine[Any, Any, None]) -> None:
        try:
            await warm
        except ProviderError as error:
            logger.warning("warming %s failed (its first turn will try again): %s", provider, error)
        except Exception:  # a provider's bug must not end the call: its turn meets it again
            logger.warning("warming %s failed", provider, exc_info=True)

    async def _stop_warming(self) -> None:
        """Cancel the warm-ups still running (the call is over) and wait for them to end."""
        for task in self._warming:
            task.cancel()
        await asyncio.gather(*self._warming, return_exceptions=True)
        self._warming.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"session-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _playback_idle(self) -> bool:
        """Nothing is playing or about to: every sentence sent has played and no reply is streaming.

        A reply whose next sentence is still being written stays audible across the gap, so
        speech over that sentence's audio still interrupts it.
        """
        return self.ledger.idle and not self._unmarked and not self._streaming

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("session task %s failed", task.get_name(), exc_info=error)
            self._end_reason = "error"
            self._finished.set()

    def _publish(self, event_type: Any, **fields: Any) -> None:
        """Hand an observer event to the hub (returns at once)."""
        if self.events.observers:
            self.events.publish(event_type(call_id=self.call_id, at=self._now(), **fields))

    def _stage(self, turn: int, stage: str) -> None:
        if (clock := self._clocks.get(turn)) is not None:
            clock.reached(stage, time.perf_counter())  # finer than uvloop's 1 ms loop clock

    def _close_clock(self, turn: int) -> None:
        if (clock := self._clocks.pop(turn, None)) is not None:
            timings = clock.timings(time.perf_counter())
            if self.events.observers:
                self.events.publish(timings)

    # --- the turn machine -------------------------------------------------------------------

    def _handle(self, event: t.Event) -> None:
        self._apply(self.machine.handle(event, self._now()))

    def _apply(self, actions: Sequence[t.Action]) -> None:
        for action in actions:
            match action:
                case t.FinalizeTranscript():
                    if self._stt_stream is not None:
                        self._spawn(self._finalize_stt(self._stt_stream), "stt-finalize")
                case t.StartReply(turn, text, _, speculative):
                    if speculative:  # its audio waits for ConfirmReply
                        self._confirmations[turn] = asyncio.Event()
                    now = time.perf_counter()
                    clock = TurnClock(
                        self.call_id, turn, self._speech_end if self._speech_end is not None else now
                    )
                    if not speculative:
                        clock.reached("stt_final", now)
                    self._clocks[turn] = clock
                    self._pending_user[turn] = text
                    self._replies[turn] = self._spawn(self._reply(turn, text), f"reply-{turn}")
                case t.ConfirmReply(turn):
                    self._stage(turn, "stt_final")
                    if (confirmation := self._confirmations.pop(turn, None)) is not None:
                        confirmation.set()
                case t.CancelReply(turn, reason):
                    if (task := self._replies.pop(turn, None)) is not None:
                        task.cancel()
                    self._close_clock(turn)
                    self._confirmations.pop(turn, None)
                    if reason in ("continued", "speculation-missed"):
                        self._pending_user.pop(turn, None)
                case t.ClearPlayback():
                    BARGE_INS.inc()
                    self._mark_ends.clear()  # the marks sent so far are discarded, never played
                    self._last_cut = self.ledger.cut(self._now())
                    self._spawn(self._clear(self._now()), "clear")
                    cut_turn = max(self._last_cut.unheard, default=None)
                    self._publish(ev.BargedIn, turn=cut_turn, dropped_ms=self._last_cut.dropped_ms)
                case t.CommitHeard(turn):
                    self._commit_heard(turn)
                case t.ResumeReply(turn):
                    cut = self._last_cut
                    if cut is not None and (unheard := cut.unheard.get(turn, "")):
                        self._spawn(self._resume(turn, cut.heard.get(turn, ""), unheard), f"resume-{turn}")
                case t.Say(text, reason):
                    if reason == "greeting":
                        self.history.add_assistant(text)
                    self._phrases += 1
                    self._spawn(self._say(text), f"say-{reason}")
                case t.EndCall(reason):
                    self._hang_up_when_idle = True
                    self._end_reason = f"agent ended the call ({reason})"
                    self._hang_up_if_heard()
        self._wake.set()

    def _hang_up_if_heard(self) -> None:
        """Hang up once the agent asked to and everything it said before has played (or failed)."""
        if self._hang_up_when_idle and not self._hanging_up and not self._phrases and self._playback_idle():
            self._hanging_up = True
            self._spawn(self._hang_up(), "hang-up")

    async def _hang_up(self) -> None:
        await self.transport.hang_up()
        self._finished.set()

    async def _carry_out_control(self) -> bool:
        """Hang up or transfer if the agent asked to and its reply has been heard."""
        request = self.control.request
        if request is None or self._replies or not self.ledger.idle:
            return False
        self.control.request = None
        if request.action == "end":
            self._end_reason = f"agent ended the call ({request.reason})"
            await self.transport.hang_up()
        else:
            self._end_reason = "transferred"
            await self.transport.transfer(request.to, request.summary)
        self._finished.set()
        return True

    def _played(self, turn: int) -> None:
        """Reply ``turn`` was generated and all of it has played: the caller heard it all."""
        self._publish(ev.AgentSaid, turn=turn, text=self._unplayed.pop(turn), complete=True)

    async def _finalize_stt(self, stream: Any) -> None:
        try:
            await stream.finalize()
        except ProviderError as error:
            logger.warning("could not ask speech recognition for its final text: %s", error)

    async def _clear(self, decided: float) -> None:
        await self.transport.clear()
        BARGE_IN_TO_SILENCE.observe(self._now() - decided)

    def _commit_user(self, turn: int) -> None:
        if (text := self._pending_user.pop(turn, None)) is not None:
            self.history.add_user(text)

    def _commit_heard(self, turn: int) -> None:
        """After a barge-in, the history keeps only the part of ``turn`` the caller heard."""
        self._commit_user(turn)
        heard = self._last_cut.heard.get(turn, "") if self._last_cut else ""
        if turn in self._done_replies:
            self.history.replace_last_assistant(heard)
        elif heard:
            self.history.add_assistant(heard)
        self._unplayed.pop(turn, None)
        self._publish(ev.AgentSaid, turn=turn, text=heard, complete=False)

    async def _timers(self) -> None:
        while True:
            deadline = self.machine.next_deadline()
            self._wake.clear()
            delay = None if deadline is None else max(deadline - self._now(), 0.0)
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                self._apply(self.machine.tick(self._now()))

    # --- caller side ------------------------------------------------------------------------

    async def _inbound(self) -> None:
        async for event in self.transport.events():
            match event:
                case CallerAudio(audio, timestamp_ms):
                    timestamp = None if timestamp_ms is None else timestamp_ms / 1000.0
                    duration = len(audio) / self._inbound_bytes_per_s
                    if (late := self.arrivals.frame(self._now(), duration, timestamp)) is not None:
                        CALLER_FRAME_LATENESS.observe(late)
                    vad_audio = self._to_vad.convert(audio)
                    if self._beeps is not None and self.machine.awaiting_beep and self._beeps.push(vad_audio):
                        self._handle(t.BeepHeard())
                    for vad_event in self._vad.push(vad_audio):
                        if vad_event.kind == "start":
                            self._handle(t.SpeechStarted())
                        else:
                            self._speech_end = time.perf_counter()
                            self._handle(t.SpeechEnded())
                    stream = self._stt_stream
                    if stream is not None:  # None while it is being reopened
                        converted = self._to_stt.convert(audio)
                        try:
                            await stream.push_audio(converted)
                        except ProviderError as error:
                            logger.warning("sending audio to speech recognition failed: %s", error)
                        else:
                            seconds = len(converted) / self._stt_format.bytes_per_second
                            self.usage.add_stt_audio(_serving(stream, self.stt.name), seconds)
                case MarkPlayed(name):
                    if (mark_end := self._mark_ends.pop(name, None)) is not None:
                        mark_end[0].confirm(mark_end[1], self._now())
                    try:
                        segment = self.ledger.on_mark(name, self._now())
                    except ProtocolError:
                        logger.warning("ignoring an unknown or repeated playback mark")
                        continue
                    if segment.turn in self._clocks:
                        self._stage(segment.turn, "first_audio_played")
                        self._close_clock(segment.turn)
                    if segment.turn in self._unplayed and not self.ledger.pending(segment.turn):
                        self._played(segment.turn)
                    if self._playback_idle():
                        self._handle(t.PlaybackIdle())
                        self._hang_up_if_heard()
                        if await self._carry_out_control():
                            return
                case DtmfPressed(digit):
                    self._publish(ev.CallerPressed, digit=digit)
                    self._handle(t.Dtmf(digit))
                case CallerHungUp():
                    break
        if not self._hanging_up:  # else the hang-up ends the call once the transport has hung up
            self._finished.set()

    async def _transcripts(self) -> None:
        """Transcripts into the turn machine; a failed STT stream is reopened, never fatal."""
        failures = 0
        while True:
            try:
                async for update in self._stt_stream:
                    failures = 0
                    if update.text:
                        self._publish(ev.CallerSaid, text=update.text, final=update.final)
                    self._handle(t.Transcript(update.text, update.final, update.end_of_turn, update.eager))
                return  # the stream ended: the call is closing
            except ProviderError as error:
                count_provider_error(error)
                failures += 1
                logger.warning("speech recognition failed (%s); reconnecting (attempt %d)", error, failures)
                if failures == _STT_FAILURES_BEFORE_APOLOGY:
                    self._apply([self.machine.say_fallback()])
                await asyncio.sleep(min(0.1 * 2 ** (failures - 1), 2.0))
                await self._reopen_stt()

    async def _reopen_stt(self) -> None:
        """Replace the STT stream (after a failure); audio in between is dropped."""
        old, self._stt_stream = self._stt_stream, None
        with contextlib.suppress(Exception):
            await old.aclose()
        try:
            self._stt_stream = await self.stt.open(self._stt_format, language=self.config.language)
        except ProviderError as error:
            self._stt_stream = old  # iterating it fails again, which retries with a longer pause
            logger.warning("could not reopen speech recognition: %s", error)

    # --- agent side -------------------------------------------------------------------------

    async def _reply(self, turn: int, text: str) -> None:
        """LLM → splitter → TTS for reply ``turn``, with tool rounds and retries."""
        config, toolbox = self.config, self.toolbox
        messages = [*self.history.messages(), {"role": "user", "content": text}]
        spoken_all: list[str] = []
        try:
            for _step in range(config.max_tool_steps + 1):
                spoken, calls = await self._llm_round(turn, messages, toolbox, spoke_before=bool(spoken_all))
                spoken_all += spoken
                if not calls:
                    break
                self._commit_user(turn)
                self.history.add_assistant(" ".join(spoken), tool_calls=[_openai_call(c) for c in calls])
                self._handle(t.ToolsStarted(turn, spoke_content=bool(spoken_all)))
                for call in calls:
                    self._publish(ev.ToolCalled, turn=turn, name=call.name, arguments=call.arguments)
                results = await invoke_all(calls, toolbox, call=self.call)
                self._handle(t.ToolsFinished(turn))
                for result in results:
                    self.history.add_tool_result(result.call_id, result.content)
                    self._publish(
                        ev.ToolReturned,
                        turn=turn,
                        name=result.name,
                        content=result.content,
                        is_error=result.is_error,
                    )
                messages = self.history.messages()
        except ProviderError as error:
            count_provider_error(error)
            logger.warning("reply %d failed: %s", turn, error)
            self._commit_user(turn)
            self._replies.pop(turn, None)
            self._close_clock(turn)
            self._handle(t.ReplyFailed(turn, str(error)))
            return
        self._commit_user(turn)
        self.history.add_assistant(" ".join(spoken_all))
        self._unplayed[turn] = " ".join(spoken_all)
        self._done_replies.add(turn)
        if not self.ledger.pending(turn):
            self._played(turn)
        self._replies.pop(turn, None)
        self._handle(t.ReplyDone(turn))
        if self.ledger.idle and await self._carry_out_control():
            self._finished.set()

    async def _llm_round(
        self, turn: int, messages: list[dict[str, Any]], toolbox: Toolbox, *, spoke_before: bool
    ) -> tuple[list[str], list[ToolCall]]:
        """One completion, spoken as it streams; retried while nothing has been said."""
        for attempt in range(self.config.retries + 1):
            spoken: list[str] = []
            calls: list[ToolCall] = []
            try:
                stream = await self.llm.complete(messages, tools=toolbox.schemas())
                # Request ids are not PII; they tie a turn to the provider's logs (or name the
                # intent that answered it, for the intent router).
                logger.info(
                    "call %s turn %d: %s request %s", self.call_id, turn, self.llm.name, stream.request_id
                )
                async with _Speaker(self, turn) as speaker:
                    # The first sentence goes to the TTS without waiting a token gap for its
                    # end to be confirmed: that gap would add to every reply's first audio.
                    splitter = SentenceSplitter(eager_first_end=True)
                    try:
                        async for chunk in stream:
                            self._stage(turn, "llm_first_token")
                            if isinstance(chunk, TextDelta):
                                for sentence in splitter.push(chunk.text):
                                    spoken += await speaker.say(sentence)
                            elif isinstance(chunk, ToolCall):
                                calls.append(chunk)
                            elif isinstance(chunk, Usage):
                                self.usage.add_llm_tokens(
                                    _serving(stream, self.llm.name),
                                    prompt=chunk.prompt_tokens,
                                    completion=chunk.completion_tokens,
                                    cached=chunk.cached_tokens,
                                )
                        for sentence in splitter.flush():
                            spoken += await speaker.say(sentence)
                    finally:
                        await stream.aclose()
                return spoken, calls
            except ProviderError as error:
                if not error.retryable or spoken or spoke_before or attempt == self.config.retries:
                    raise
                count_provider_error(error)  # retried here; a final failure is counted by _reply
                logger.info("retrying reply %d after %s", turn, error)
        raise AssertionError("unreachable")

    async def _say(self, text: str) -> None:
        """Say one of the turn machine's phrases; a hang-up it asked for waits until it has played."""
        try:
            await self._speak(text, turn=0)
        finally:
            self._phrases -= 1
            self._hang_up_if_heard()

    async def _speak(self, text: str, *, turn: int) -> None:
        """Say a fixed phrase (greeting, filler, fallback, resumed text) through the TTS."""
        try:
            splitter = SentenceSplitter()
            async with _Speaker(self, turn) as speaker:
                for sentence in [*splitter.push(text), *splitter.flush()]:
                    await speaker.say(sentence)  # one mark per sentence: playback truth stays fine
            if turn == 0:
                self._publish(ev.AgentSaid, turn=0, text=text, complete=True)
        except ProviderError as error:
            logger.error("could not say a %d-character phrase: %s", len(text), error)

    async def _resume(self, turn: int, heard: str, unheard: str) -> None:
        """Say the cut part of reply ``turn`` again; the history then holds the whole reply."""
        await self._speak(unheard, turn=turn)
        whole = _join_resumed(heard, unheard)
        if heard:
            self.history.replace_last_assistant(whole)
        else:
            self.history.add_assistant(whole)

    async def _send_audio(self, audio: bytes) -> None:
        if audio:
            await self.transport.send_audio(audio)


class _Speaker:
    """One TTS stream for a reply (or phrase): sentences in, audio and marks out, in order.

    The characters pushed are counted as usage when the stream closes, for the provider
    serving it then (after a failover, the stand-in that spoke them). A barge-in does not
    take them back: what was sent to the provider is what it bills.
    """

    def __init__(self, session: Session, turn: int) -> None:
        self.session = session
        self.turn = turn
        self.stream: TTSStream | None = None
        self.texts: deque[str] = deque()
        self.characters = 0  # text pushed to the stream, for usage
        self.pump: asyncio.Task[None] | None = None
        self.convert = AudioConverter(session._tts_format, session.transport.output_format)
        self.playout = PlayoutClock()

    async def __aenter__(self) -> _Speaker:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.stream is None:
            return
        try:
            if exc_type is None:
                await self.stream.end_input()
                if self.pump is not None:
                    await self.pump
        finally:
            if self.pump is not None and not self.pump.done():
                self.pump.cancel()
            session = self.session
            session.usage.add_tts_text(_serving(self.stream, session.tts.name), self.characters)
            await self.stream.aclose()

    async def say(self, sentence: str) -> list[str]:
        """Queue a sentence for synthesis; returns it as spoken (empty if nothing to say)."""
        text = speakable(sentence)
        if not text:
            return []
        self.session._stage(self.turn, "first_sentence")
        if (confirmation := self.session._confirmations.get(self.turn)) is not None:
            await confirmation.wait()  # a speculative reply speaks only once the final text agrees
        if self.stream is None:
            session = self.session
            self.stream = await session.tts.open(session._tts_format, voice=session.config.voice)
            self.pump = asyncio.get_running_loop().create_task(self._pump(), name=f"tts-{self.turn}")
        self.texts.append(text)
        await self.stream.push_text(text)
        self.characters += len(text)
        return [sentence]

    async def _pump(self) -> None:
        """Send the stream's audio as it comes, and a mark after each sentence's audio."""
        session, stream = self.session, self.stream
        assert stream is not None
        bytes_per_ms = session.transport.output_format.bytes_per_second / 1000.0
        started = False
        stream_ms = 0.0  # audio sent before the current sentence (word times count from 0)
        segment_ms, segment_start, words = 0.0, None, []
        session._streaming += 1
        try:
            async for chunk in stream:
                session._stage(self.turn, "tts_first_byte")
                audio = self.convert.convert(chunk.audio)
                if chunk.end_of_text:
                    audio += self.convert.flush()
                if audio:
                    if segment_start is None:
                        segment_start = session._now()
                        session._unmarked += 1
                    if gap := self.playout.sent(session._now(), len(audio) / bytes_per_ms / 1000.0):
                        AGENT_UNDERRUNS.inc()
                        AGENT_UNDERRUN_SECONDS.inc(gap)
                    await session._send_audio(audio)
                    session._stage(self.turn, "first_audio_sent")
                    segment_ms += len(audio) / bytes_per_ms
                    if not started:
                        started = True
                        if self.turn:
                            session._handle(t.ReplyAudioStarted(self.turn))
                words += [Word(w.text, w.end_ms - stream_ms) for w in chunk.words]
                if chunk.end_of_text and self.texts:
                    start = segment_start if segment_start is not None else session._now()
                    mark = session.ledger.append(
                        self.turn, self.texts.popleft(), segment_ms, start, tuple(words)
                    )
                    if segment_start is not None:
                        session._unmarked -= 1  # the ledger has it now
                    if (end := self.playout.mark()) is not None:
                        session._mark_ends[mark] = (self.playout, end)
                    stream_ms += segment_ms
                    segment_ms, segment_start, words = 0.0, None, []
                    await session.transport.send_mark(mark)
        finally:
            session._streaming -= 1
            if segment_start is not None:  # cancelled, failed, or audio after the last sentence
                session._unmarked -= 1
        if session._playback_idle():
            session._handle(t.PlaybackIdle())  # everything sent had played before the stream ended


def _join_resumed(heard: str, unheard: str) -> str:
    """``heard`` followed by ``unheard``, without the cut sentence's heard words twice."""
    words, rest = heard.split(), unheard.split()
    for overlap in range(min(len(words), len(rest)), 0, -1):
        if words[-overlap:] == rest[:overlap]:
            words = words[:-overlap]
            break
    return " ".join([*words, *rest])


def personal_config(config: SessionConfig, call: CallInfo) -> tuple[str, t.TurnConfig]:
    """The call's instructions and turn settings, its variables filled in.

    The turn gets the language's backchannels, and the call's own voicemail message if it has one.
    """
    turn = config.turn.for_language(config.language)
    turn = dataclasses.replace(turn, voicemail=voicemail_for(call.parameters, turn.voicemail))
    now = datetime.now(time_zone(config.timezone))
    instructions, turn, lacking = personalize(config.instructions, turn, call_variables(call, now))
    for where, names in lacking.items():
        logger.warning("%s names call variables this call lacks (left blank): %s", where, ", ".join(names))
    return instructions, turn


def _serving(stream: object, provider: str) -> str:
    """The name of the provider behind ``stream``: a failover stream's current one, else ``provider``."""
    serving = getattr(stream, "provider", None)
    return serving if isinstance(serving, str) else provider


def _openai_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
