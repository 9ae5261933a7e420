"""One call with a speech-to-speech model (the OpenAI Realtime API) in place of STT, LLM and TTS.

The model hears the caller, ends their turns and speaks; the session keeps what the classic
:class:`~voicecore.runtime.session.Session` keeps around it: playback truth (each piece of the
model's audio is marked; a barge-in clears the transport and tells the model how much of its
reply was heard, ``conversation.item.truncate``), tools and call control, the greeting, DTMF,
idle prompts and the call's time limit, the observers' events and usage, and resilience (a lost
socket is reconnected and the conversation restored from the heard transcript; while the model
cannot be reached the caller hears the fallback phrase through ``fallback_tts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicecore import events as ev
from voicecore.call_info import CallInfo
from voicecore.errors import ProtocolError, ProviderError
from voicecore.history import History
from voicecore.logs import install_call_fields
from voicecore.observers import Observer
from voicecore.providers.base import TTS, RealtimeModel
from voicecore.redact import install_log_redaction
from voicecore.runtime.call_control import CallControl
from voicecore.runtime.convert import AudioConverter, synthesize
from voicecore.runtime.metrics import (
    BARGE_IN_TO_SILENCE,
    BARGE_INS,
    CALLS,
    TurnClock,
    count_outbound_answer,
    count_provider_error,
    count_usage,
)
from voicecore.runtime.observe import EventHub
from voicecore.runtime.session import SessionConfig, personal_config
from voicecore.sansio import openai_realtime as rt
from voicecore.sansio.playback import ItemPlayback, heard_part
from voicecore.sansio.turn import MACHINE_VERDICTS, MESSAGE_END_VERDICTS
from voicecore.tools import Toolbox, ToolCall, invoke_all
from voicecore.transports.base import CallerAudio, CallerHungUp, DtmfPressed, MarkPlayed, Transport
from voicecore.usage import UsageMeter

__all__ = ["RealtimeSession", "say_exactly"]

logger = logging.getLogger(__name__)

#: Seconds between reconnection attempts (doubling), and their cap.
_RECONNECT_BACKOFF = 0.2
_RECONNECT_BACKOFF_CAP = 2.0
#: Keypad digits wait this long for more before they go to the model as one entry.
_DTMF_PAUSE = 2.0


def say_exactly(text: str) -> str:
    """Per-response instructions that make the model say ``text`` word for word."""
    return f'Say exactly this to the caller, word for word, and nothing else: "{text}"'


#: Purposes of the fixed phrases the model is asked to say; their responses are turn 0.
_PHRASES = frozenset({"greeting", "voicemail", "idle", "goodbye"})


@dataclass(slots=True)
class _Item:
    """One audio item of the model's: its response, whose turn it is and what it says."""

    response_id: str
    turn: int
    transcript: str = ""
    done: bool = False  # its response ended
    told: bool = False  # AgentSaid published


@dataclass(slots=True)
class _Response:
    turn: int
    calls: list[ToolCall] = field(default_factory=list)


class RealtimeSession:
    """One call between a transport and a speech-to-speech model.

    Args:
        config: The agent: instructions, voice, language, tools, turn phrases (greeting,
            goodbye, fallback, idle prompt, voicemail) and limits (``max_call_duration``,
            ``idle_after``, ``idle_prompts``), prices, time zone.
        transport: The caller's side.
        model: The speech-to-speech model.
        fallback_tts: Speaks the fallback phrase while the model cannot be reached (and the
            server's goodbye at shutdown); None: the caller hears silence then.
        observers: Receive the call's events.
        call_id: The call's id (the call info's, or a fresh one, when None).
        call: Who is on the line.
        max_reconnects: Consecutive failed connections after which the call ends.
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        transport: Transport,
        model: RealtimeModel,
        fallback_tts: TTS | None = None,
        observers: Sequence[Observer] = (),
        call_id: str | None = None,
        call: CallInfo | None = None,
        max_reconnects: int = 3,
    ) -> None:
        self.config = config
        install_call_fields()
        install_log_redaction(enabled=config.redact_logs)
        self.call_id = call_id or (call.call_id if call is not None else "") or uuid.uuid4().hex
        self.call = call if call is not None else CallInfo(call_id=self.call_id)
        self.transport, self.model, self.tts = transport, model, fallback_tts
        self.events = EventHub(observers)
        self.usage = UsageMeter()
        self.control = CallControl()
        tools = [*(config.tools or ()), *(self.control.tools() if config.call_control else ())]
        self.toolbox = Toolbox(tools)
        self.instructions, self.turn_config = personal_config(config, self.call)
        self.history = History(self.instructions, max_tokens=config.history_tokens)
        self.max_reconnects = max_reconnects
        self.playback = ItemPlayback()
        self.format = model.audio_format(transport.input_format)
        self._to_model = AudioConverter(transport.input_format, self.format)
        self._from_model = AudioConverter(self.format, transport.output_format)
        self._out_bytes_per_ms = transport.output_format.bytes_per_second / 1000.0
        self._connection: Any = None
        self._items: dict[str, _Item] = {}
        self._responses: dict[str, _Response] = {}
        self._active: str | None = None  # the response in progress
        self._cut: set[str] = set()  # responses a barge-in cut off: their late audio is dropped
        self._requested: dict[str, str] = {}  # response.create event id -> purpose, until it starts
        self._requests = 0
        self._turns = 0
        self._clock: TurnClock | None = None
        self._clock_turn: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finished = asyncio.Event()
        self._wake = asyncio.Event()
        self._end_reason = "caller hung up"
        self._hang_up_after_playback = False
        self._hanging_up = False
        self._apologized = False  # the fallback phrase was said in the current outage
        self._unanswered = False  # a lost connection owed the caller a response
        self._digits = ""
        self._dtmf_timer: asyncio.TimerHandle | None = None
        self._idle_deadline: float | None = None
        self._idle_count = 0
        self._machine = False  # an answering machine took the call: only the voicemail is said

    def providers(self) -> tuple[object, ...]:
        """The providers made for this call (closed by whoever made them)."""
        return (self.model, self.tts) if self.tts is not None else (self.model,)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Carry out the call until the caller hangs up or the agent ends it.

        ``task.cancel("why")`` ends it too, with ``why`` as :class:`~voicecore.events.CallClosed`'s reason.
        """
        loop = asyncio.get_running_loop()
        self._now: Callable[[], float] = loop.time
        CALLS.inc()
        if self.call.direction == "outbound":
            count_outbound_answer(self.call.answered_by)
        self._publish(ev.CallOpened, call=self.call)
        try:
            self._spawn(self._inbound(), "inbound")
            self._spawn(self._model_events(), "model")
            self._spawn(self._timers(), "timers")
            await self._finished.wait()
        except asyncio.CancelledError as cancelled:
            self._end_reason = str(cancelled.args[0]) if cancelled.args else "cancelled"
            raise
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._dtmf_timer is not None:
                self._dtmf_timer.cancel()
            if self._connection is not None:
                await self._connection.aclose()
            self._tell_unheard()
            usage = self.usage.report(self.config.prices)
            count_usage(usage, priced=bool(self.config.prices))
            self._publish(ev.CallClosed, reason=self._end_reason, usage=usage)

    def _settings(self) -> Any:
        return self.model.settings(
            instructions=self.instructions,
            tools=self.toolbox.schemas(),
            audio_format=self.format,
            language=self.config.language,
            voice=self.config.voice,
        )

    async def _start(self) -> None:
        """Greet the caller, or leave a voicemail (or hang up) when a machine answered."""
        turn = self.turn_config
        verdict = self.call.answered_by
        if verdict in MACHINE_VERDICTS:
            self._machine = True
            if verdict == "fax" or not turn.voicemail:
                self._end("agent ended the call (machine)")
                return
            if verdict not in MESSAGE_END_VERDICTS:
                await asyncio.sleep(turn.voicemail_silence)  # let its greeting end
            await self._say(turn.voicemail, "voicemail")
            self._end_after_playback("agent ended the call (voicemail)")
        elif turn.greeting:
            self.history.add_assistant(turn.greeting)
            await self._say(turn.greeting, "greeting")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"realtime-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("realtime session task %s failed", task.get_name(), exc_info=error)
            self._end_reason = "error"
            self._finished.set()

    def _publish(self, event_type: Any, **fields: Any) -> None:
        if self.events.observers:
            self.events.publish(event_type(call_id=self.call_id, at=self._now(), **fields))

    async def _send(self, event: Mapping[str, Any]) -> None:
        if self._connection is not None:
            await self._connection.send(event)

    async def _request(self, purpose: str, instructions: str | None = None) -> None:
        """Ask the model for a response; until it starts, the call does not count as quiet."""
        self._requests += 1
        event_id = f"voicecore_{purpose}_{self._requests}"
        self._requested[event_id] = purpose
        await self._send(rt.create_response(instructions, purpose=purpose, event_id=event_id))

    async def _say(self, text: str, purpose: str) -> None:
        """Have the model say a fixed phrase (greeting, voicemail, idle prompt, goodbye)."""
        if self._active is not None:  # the goodbye at the time limit cuts the reply in progress
            await self._send(rt.cancel_response())
            await self._barge_in()
        await self._request(purpose, say_exactly(text))

    def _quiet(self) -> bool:
        """Nothing is being said, about to be said, or still playing."""
        return self._active is None and not self._requested and self.playback.idle

    def _end(self, reason: str) -> None:
        self._end_reason = reason
        if not self._hanging_up:
            self._hanging_up = True
            self._spawn(self._hang_up(), "hang-up")

    def _end_after_playback(self, reason: str) -> None:
        """Hang up once the model's response is over and the caller heard all of it."""
        self._end_reason = reason
        self._hang_up_after_playback = True
        self._hang_up_if_heard()

    def _hang_up_if_heard(self) -> None:
        if self._hang_up_after_playback and self._quiet():
            self._end(self._end_reason)

    async def _hang_up(self) -> None:
        await self.transport.hang_up()
        self._finished.set()

    # --- the caller's side ------------------------------------------------------------------

    async def _inbound(self) -> None:
        async for event in self.transport.events():
            match event:
                case CallerAudio(audio):
                    connection = self._connection
                    if connection is not None and not self._machine:
                        await connection.send_audio(self._to_model.convert(audio))
                case MarkPlayed(name):
                    self._on_mark(name)
                case DtmfPressed(digit):
                    self._publish(ev.CallerPressed, digit=digit)
                    self._on_digit(digit)
                case CallerHungUp():
                    break
        if not self._hanging_up:
            self._finished.set()

    def _on_mark(self, name: str) -> None:
        try:
            item_id = self.playback.on_mark(name, self._now())
        except ProtocolError:
            logger.warning("ignoring an unknown or repeated playback mark")
            return
        item = self._items.get(item_id)
        if item is not None and self._clock is not None and self._clock_turn == item.turn:
            self._clock.reached("first_audio_played", time.perf_counter())
            self._close_clock()
        if item is not None and item.done and not item.told and not self.playback.pending(item_id):
            self._tell(item_id, item)
        if self.playback.idle:
            self._after_playback()

    def _after_playback(self) -> None:
        """Everything sent has played: start counting the caller's silence; hang up if asked to."""
        if self._quiet():
            self._idle_deadline = self._now() + self.turn_config.idle_after
            self._wake.set()
        self._hang_up_if_heard()
        self._carry_out_control()

    def _on_digit(self, digit: str) -> None:
        """Keypad digits go to the model as one entry: at ``#``, or after a pause."""
        if self._dtmf_timer is not None:
            self._dtmf_timer.cancel()
            self._dtmf_timer = None
        if digit != "#":
            self._digits += digit
            loop = asyncio.get_running_loop()
            self._dtmf_timer = loop.call_later(_DTMF_PAUSE, self._on_digit, "#")
            return
        digits, self._digits = self._digits, ""
        if digits:
            text = f"(The caller pressed {digits} on the keypad.)"
            self.history.add_user(text)
            self._spawn(self._send_turn(text), "dtmf")

    async def _send_turn(self, text: str) -> None:
        await self._send(rt.message_item("user", text))
        if self._active is None:
            await self._request("keypad")

    # --- the model's side -------------------------------------------------------------------

    async def _model_events(self) -> None:
        """Connect, act on the model's events, and reconnect (restoring the conversation) when lost."""
        failures = 0
        started = False
        while True:
            try:
                if self._connection is None:
                    await self._connect(restore=started)
                    if not started:
                        started = True
                        self._spawn(self._start(), "start")
                async for event in self._connection:
                    failures = 0
                    self._apologized = False
                    await self._on_event(event)
                return  # the connection ended normally: the call is closing
            except ProviderError as error:
                count_provider_error(error)
                failures = failures + 1 if error.retryable else self.max_reconnects + 1
                logger.warning("the realtime model failed (%s); reconnecting (attempt %d)", error, failures)
            interrupted = self._active is not None or bool(self._requested)
            await self._drop_connection()
            if failures > self.max_reconnects:
                await self._apologize()
                self._end_after_playback("error: the realtime model could not be reached")
                return
            if interrupted or failures > 1 or not started:
                self._spawn(self._apologize(), "fallback")
            await asyncio.sleep(min(_RECONNECT_BACKOFF * 2 ** (failures - 1), _RECONNECT_BACKOFF_CAP))

    async def _connect(self, *, restore: bool) -> None:
        """Open a configured connection; on a reconnect, restore the heard conversation and answer."""
        connection = await self.model.connect(self._settings())
        if restore:
            for message in self.history.messages():
                if message["role"] in ("user", "assistant") and message.get("content"):
                    await connection.send(rt.message_item(message["role"], str(message["content"])))
        self._connection = connection
        if restore and self._unanswered:
            self._unanswered = False
            await self._request("resume")

    async def _drop_connection(self) -> None:
        """Forget a failed connection; a response it had in progress is owed to the caller."""
        self._unanswered = self._active is not None or bool(self._requested)
        self._active = None
        self._requested.clear()
        old, self._connection = self._connection, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.aclose()

    async def _apologize(self) -> None:
        """Say the fallback phrase (once per outage) through the fallback TTS."""
        tts = self.tts
        if tts is None or self._apologized:
            return
        self._apologized = True
        try:
            async for audio in synthesize(tts, self.turn_config.fallback, self.transport.output_format):
                await self._play("fallback", audio)
            self._publish(ev.AgentSaid, turn=0, text=self.turn_config.fallback, complete=True)
        except ProviderError as error:
            logger.error("could not say the fallback phrase either: %s", error)

    async def _play(self, item_id: str, audio: bytes) -> None:
        """Send a piece of agent audio and the mark that reports it played."""
        if not audio:
            return
        mark = self.playback.sent(item_id, len(audio) / self._out_bytes_per_ms, self._now())
        await self.transport.send_audio(audio)
        await self.transport.send_mark(mark)

    async def _on_event(self, event: rt.RealtimeEvent) -> None:
        match event:
            case rt.AgentAudio(response_id, item_id, audio):
                await self._on_audio(response_id, item_id, audio)
            case rt.AgentTranscript(response_id, item_id, text, final):
                item = self._item(response_id, item_id)
                item.transcript = text if final else item.transcript + text
            case rt.SpeechStarted():
                self._idle_deadline = None
                self._idle_count = 0
                await self._barge_in()
            case rt.SpeechStopped():
                self._close_clock()
                self._clock = TurnClock(self.call_id, self._turns + 1, time.perf_counter())
                self._clock_turn = None
            case rt.CallerTranscript(_, text, True):
                if text:
                    self.history.add_user(text)
                    self._publish(ev.CallerSaid, text=text, final=True)
            case rt.ResponseStarted(response_id, purpose):
                self._on_response_started(response_id, purpose)
            case rt.FunctionCall(response_id, _, call_id, name, arguments):
                response = self._responses.get(response_id)
                if response is not None:
                    response.calls.append(ToolCall(call_id, name, arguments))
                    self._publish(ev.ToolCalled, turn=response.turn, name=name, arguments=arguments)
            case rt.ResponseDone():
                self._on_response_done(event)
            case rt.RealtimeError(kind, code, message, event_id):
                if event_id is not None and self._requested.pop(event_id, None) is not None:
                    self._hang_up_if_heard()
                logger.warning("the realtime model refused an event: %s (%s: %s)", message, kind, code)
            case _:
                pass

    def _on_response_started(self, response_id: str, purpose: str | None) -> None:
        self._active = response_id
        self._idle_deadline = None
        for event_id, requested in list(self._requested.items()):
            if requested == purpose:
                del self._requested[event_id]
                break
        if purpose in _PHRASES:
            turn = 0
        elif purpose is not None and purpose.startswith("turn-"):
            turn = int(purpose.removeprefix("turn-"))  # the answer to a tool round's results
        else:
            self._turns += 1
            turn = self._turns
            if self._clock is not None and self._clock_turn is None:
                self._clock_turn = turn
        self._responses[response_id] = _Response(turn)

    def _item(self, response_id: str, item_id: str) -> _Item:
        item = self._items.get(item_id)
        if item is None:
            response = self._responses.get(response_id)
            turn = response.turn if response is not None else 0
            item = self._items[item_id] = _Item(response_id, turn)
        return item

    async def _on_audio(self, response_id: str, item_id: str, audio: bytes) -> None:
        if response_id in self._cut:
            return  # the rest of a response the caller interrupted
        item = self._item(response_id, item_id)
        clock = self._clock if item.turn and self._clock_turn == item.turn else None
        if clock is not None:
            now = time.perf_counter()
            clock.reached("llm_first_token", now)
            clock.reached("tts_first_byte", now)
        await self._play(item_id, self._from_model.convert(audio))
        if clock is not None:
            clock.reached("first_audio_sent", time.perf_counter())

    async def _barge_in(self) -> None:
        """The caller spoke over the agent: clear its audio and tell the model what was heard.

        The model cancels its own response (``interrupt_response``); the items it had sent audio
        for are truncated to what played, so its conversation holds only what the caller heard.
        """
        if self._active is not None:
            self._cut.add(self._active)
        if self.playback.idle:
            return
        decided = self._now()
        BARGE_INS.inc()
        cut = self.playback.cut(decided)
        await self.transport.clear()
        BARGE_IN_TO_SILENCE.observe(self._now() - decided)
        self._from_model.reset()
        turn = None
        for item_id, played_ms in cut.played_ms.items():
            item = self._items.get(item_id)
            if item is None or item.told:
                continue  # the fallback phrase
            turn = item.turn
            heard = heard_part(item.transcript, self.playback.sent_ms(item_id), played_ms)
            if heard and item.turn:
                self.history.add_assistant(heard)
            item.told = True
            self._publish(ev.AgentSaid, turn=item.turn, text=heard, complete=False)
            await self._send(rt.truncate(item_id, int(played_ms)))
        self._publish(ev.BargedIn, turn=turn, dropped_ms=cut.dropped_ms)

    def _on_response_done(self, done: rt.ResponseDone) -> None:
        response = self._responses.pop(done.response_id, None)
        if self._active == done.response_id:
            self._active = None
        was_cut = done.response_id in self._cut
        self._cut.discard(done.response_id)
        if done.usage is not None:
            usage = done.usage
            self.usage.add_llm_tokens(
                self.model.name,
                prompt=usage.prompt_tokens,
                completion=usage.completion_tokens,
                cached=usage.cached_tokens,
            )
        if response is None:
            return
        for item_id, item in self._items.items():
            if item.response_id == done.response_id and not item.done:
                item.done = True
                if was_cut:
                    item.told = True  # what was heard of it was told at the barge-in; the rest never played
                elif not item.told and not self.playback.pending(item_id):
                    self._tell(item_id, item)
        self._items = {item_id: item for item_id, item in self._items.items() if not item.told}
        if done.status == "failed":
            error = ProviderError(
                done.error or "the response failed", provider=self.model.name, retryable=True
            )
            count_provider_error(error)
            logger.warning("a realtime response failed: %s", error)
            self._spawn(self._apologize_now(), "fallback")
        elif response.calls and done.status == "completed":
            self._spawn(self._run_tools(response), f"tools-{response.turn}")
        if self.playback.idle:
            self._after_playback()

    async def _apologize_now(self) -> None:
        self._apologized = False
        await self._apologize()

    async def _run_tools(self, response: _Response) -> None:
        """Run a response's tool calls, hand back their results, and ask for the reply to them."""
        results = await invoke_all(response.calls, self.toolbox, call=self.call)
        for result in results:
            self._publish(
                ev.ToolReturned,
                turn=response.turn,
                name=result.name,
                content=result.content,
                is_error=result.is_error,
            )
            await self._send(rt.function_output(result.call_id, result.content))
        if self.control.request is None:
            await self._request(f"turn-{response.turn}")
        self._carry_out_control()

    def _carry_out_control(self) -> None:
        """Hang up or transfer once the agent asked to and everything it said has played."""
        request = self.control.request
        if request is None or not self._quiet() or self._hanging_up:
            return
        self.control.request = None
        self._hanging_up = True
        if request.action == "end":
            self._end_reason = f"agent ended the call ({request.reason})"
            self._spawn(self._hang_up(), "hang-up")
        else:
            self._end_reason = "transferred"
            self._spawn(self._transfer(request.to, request.summary), "transfer")

    async def _transfer(self, to: str, summary: str | None) -> None:
        await self.transport.transfer(to, summary)
        self._finished.set()

    def _tell(self, item_id: str, item: _Item) -> None:
        """Item ``item_id`` was said and all of it played: the caller heard it."""
        item.told = True
        if item.turn:
            self.history.add_assistant(item.transcript)
        self._publish(ev.AgentSaid, turn=item.turn, text=item.transcript, complete=True)
        self.playback.forget(item_id)

    def _tell_unheard(self) -> None:
        """At the end of the call: what the caller heard of items still playing."""
        for item_id, item in self._items.items():
            if not item.told and item.transcript and self.playback.sent_ms(item_id):
                sent, played = self.playback.sent_ms(item_id), self.playback.played_ms(item_id)
                heard = heard_part(item.transcript, sent, played)
                item.told = True
                self._publish(ev.AgentSaid, turn=item.turn, text=heard, complete=heard == item.transcript)

    def _close_clock(self) -> None:
        if self._clock is not None and self._clock_turn is not None:
            timings = self._clock.timings(time.perf_counter())
            if self.events.observers:
                self.events.publish(timings)
        self._clock = None
        self._clock_turn = None

    async def _timers(self) -> None:
        """The call's time limit, and prompts when the caller stays silent."""
        turn = self.turn_config
        ends_at = self._now() + turn.max_call_duration
        while True:
            now = self._now()
            if now >= ends_at:
                await self._say(turn.goodbye, "goodbye")
                self._end_after_playback("agent ended the call (max-duration)")
                return
            idle = self._idle_deadline
            if idle is not None and now >= idle and not self._machine and not self._hanging_up:
                self._idle_deadline = None
                self._idle_count += 1
                if self._idle_count > turn.idle_prompts:
                    await self._say(turn.goodbye, "goodbye")
                    self._end_after_playback("agent ended the call (idle)")
                    return
                await self._say(turn.idle_prompt, "idle")
            self._wake.clear()
            wake = min(ends_at, self._idle_deadline if self._idle_deadline is not None else ends_at)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wake - now, 0.0)):
                    await self._wake.wait()
