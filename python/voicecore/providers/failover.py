"""Fail over between providers within one turn, before the caller hears anything.

:class:`FailoverLLM` is an :class:`~voicecore.providers.base.LLM` over an ordered list of
them. A retryable :class:`~voicecore.errors.ProviderError` (an error status worth retrying,
a dropped connection, an error event) or no first chunk within ``first_token_timeout`` moves
the same request to the next provider, as long as nothing has come out of the stream yet;
the failed provider is then skipped for a cool-down
(:class:`voicecore.sansio.failover.CircuitBreaker`). Once output has started an error
propagates as it is: text the caller may have heard cannot be taken back.

:class:`FailoverTTS` does the same for speech: a stream that fails, or sends no audio within
``first_audio_timeout`` of its first text, is replaced by the next provider's, to which every
text pushed so far is pushed again; once a chunk has come out, errors propagate.

:class:`FailoverSTT` keeps a call's recognition going: a stream that fails to open, dies
mid-call beyond its own reconnects, or stalls (no transcript within ``stall_timeout`` of a
``finalize()`` while words were pending) is replaced mid-call by the next provider's, which is
first sent the caller audio no final transcript had covered yet (from a bounded
:class:`~voicecore.sansio.replay.ReplayBuffer`), so no caller speech is lost; audio older than
the buffer is counted in ``voicecore_stt_gap_seconds_total`` and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from voicecore.errors import ConfigError, ProviderError, ProviderStreamError, ProviderTimeoutError
from voicecore.providers.base import (
    LLM,
    STT,
    TTS,
    AudioChunk,
    AudioFormat,
    LLMChunk,
    LLMStream,
    STTStream,
    TranscriptUpdate,
    TTSStream,
    WarmLLM,
    WarmTTS,
)
from voicecore.runtime.metrics import STT_FAILOVERS, count_stt_gap
from voicecore.sansio.failover import CircuitBreaker
from voicecore.sansio.replay import ReplayBuffer

__all__ = [
    "FailoverLLM",
    "FailoverSTT",
    "FailoverSTTStream",
    "FailoverStream",
    "FailoverTTS",
    "FailoverTTSStream",
]

logger = logging.getLogger(__name__)


class FailoverLLM:
    """Tries its providers in order of preference, within the same turn.

    Hedging (``hedge_after``) trades tokens for time to the first word: when the provider
    serving a turn has not produced its first chunk ``hedge_after`` seconds after it was
    asked, the next provider is asked too, and the first to produce a chunk serves the turn;
    the other's stream is closed, which cancels its request. A failure on one side leaves
    the turn to the other. ``hedge_after=0`` asks every provider at once (two, usually) on every turn.

    Args:
        providers: The LLMs, most preferred first.
        cooldown: Seconds a failed provider is skipped by later turns.
        first_token_timeout: Seconds a provider has to produce its first chunk before the
            turn moves on (None: wait as long as the provider's own timeouts allow).
        hedge_after: Seconds before the next provider is asked as well (None: only after a
            failure).
        name: The name in errors and logs.
    """

    def __init__(
        self,
        providers: Sequence[LLM],
        *,
        cooldown: float = 30.0,
        first_token_timeout: float | None = 3.0,
        hedge_after: float | None = None,
        name: str | None = None,
    ) -> None:
        if first_token_timeout is not None and first_token_timeout <= 0:
            raise ConfigError("first_token_timeout must be positive (or None)")
        if hedge_after is not None and hedge_after < 0:
            raise ConfigError("hedge_after must be zero or more seconds (or None)")
        self.providers = list(providers)
        self.breaker = CircuitBreaker(len(self.providers), cooldown=cooldown)
        self.first_token_timeout = first_token_timeout
        self.hedge_after = hedge_after
        self.name = name or "failover(" + ",".join(p.name for p in self.providers) + ")"

    async def complete(
        self, messages: Sequence[dict[str, Any]], *, tools: Sequence[dict[str, Any]] = ()
    ) -> FailoverStream:
        """Start the completion on the first provider that answers; see the module doc.

        Raises:
            ProviderError: A final error, or the last provider's error when all failed.
        """
        stream = FailoverStream(self, messages, tools)
        await stream._start()
        return stream

    async def warm(self) -> None:
        """Open every provider's connection now, side by side, so a fallback or hedge pays no handshake.

        A provider that cannot be warmed is logged and left to fail (and be skipped) on its turn.
        """
        await _warm_all(self.name, [(p.name, p.warm()) for p in self.providers if isinstance(p, WarmLLM)])

    async def aclose(self) -> None:
        """Close every provider (their connection pools); safe to call more than once."""
        await _close_all(self.providers)


@dataclass
class _Attempt:
    """One provider asked for the turn: its stream and first chunk, or why it failed."""

    index: int
    stream: LLMStream | None = None
    first: LLMChunk | None = None
    ended: bool = False
    error: ProviderError | None = None


class FailoverStream:
    """The stream of whichever provider answered.

    Attributes:
        provider: The name of the provider serving the stream.
        request_id: That provider's request id.
    """

    def __init__(
        self, owner: FailoverLLM, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> None:
        self._owner = owner
        self._messages = messages
        self._tools = tools
        self._now = asyncio.get_running_loop().time
        self._queue: list[int] = owner.breaker.order(self._now())
        self._index = -1
        self._stream: LLMStream | None = None
        self._first: LLMChunk | None = None
        self._done = False
        self.provider: str | None = None
        self.request_id: str | None = None

    async def _start(self) -> None:
        """Ask providers in turn (and with hedging, side by side) until one yields a first chunk.

        A provider's retryable failure starts the next one unless another is still running;
        a final failure stops asking more, but one already running may still win. Losers'
        streams are closed.
        """
        owner = self._owner
        running: dict[asyncio.Task[_Attempt], int] = {}
        failure: ProviderError | None = None
        final = False
        hedge_at = 0.0
        try:
            while True:
                if not running:
                    if failure is not None and (final or not self._queue):
                        raise failure
                    hedge_at = self._launch(running)
                may_hedge = owner.hedge_after is not None and self._queue and not final
                if may_hedge and self._now() >= hedge_at:
                    logger.info(
                        "%s: no first token within %g s; asking %s too",
                        owner.providers[next(iter(running.values()))].name,
                        owner.hedge_after,
                        owner.providers[self._queue[0]].name,
                    )
                    hedge_at = self._launch(running)
                    continue
                timeout = hedge_at - self._now() if may_hedge else None
                done, _ = await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=running.__getitem__):  # in order of preference
                    del running[task]
                    attempt = task.result()
                    if attempt.error is None:
                        self._serve(attempt)
                        return
                    if attempt.stream is not None:
                        await attempt.stream.aclose()
                    error = failure = attempt.error
                    provider = owner.providers[attempt.index].name
                    if not error.retryable:
                        final = True
                        continue
                    owner.breaker.failed(attempt.index, self._now())
                    if self._queue and not final:
                        following = owner.providers[self._queue[0]].name
                        logger.warning(
                            "%s failed before any output (%s); trying %s", provider, error, following
                        )
        finally:
            await self._close_losers(running)

    def _launch(self, running: dict[asyncio.Task[_Attempt], int]) -> float:
        """Ask the next provider in the queue; returns when the next one may be asked as well."""
        index = self._queue.pop(0)
        task = asyncio.ensure_future(self._attempt(index))
        running[task] = index
        return self._now() + (self._owner.hedge_after or 0.0)

    async def _attempt(self, index: int) -> _Attempt:
        """Start provider ``index`` and read its first chunk (its stream is closed if cancelled)."""
        attempt = _Attempt(index)
        provider = self._owner.providers[index]
        timeout = self._owner.first_token_timeout
        try:
            async with asyncio.timeout(timeout):
                attempt.stream = await provider.complete(self._messages, tools=self._tools)
                try:
                    attempt.first = await anext(aiter(attempt.stream))
                except StopAsyncIteration:
                    attempt.ended = True
        except ProviderError as error:
            attempt.error = error
        except TimeoutError:
            attempt.error = ProviderTimeoutError(
                f"no first token within {timeout:g} s", provider=provider.name
            )
        except asyncio.CancelledError:  # a hedge lost (or the turn was cancelled): cancel its request
            if attempt.stream is not None:
                await attempt.stream.aclose()
            raise
        return attempt

    def _serve(self, attempt: _Attempt) -> None:
        """Serve the turn from ``attempt``'s stream."""
        self._index = attempt.index
        self._stream = attempt.stream
        self._first = attempt.first
        self._done = attempt.ended
        self._owner.breaker.succeeded(attempt.index)
        self.provider = self._owner.providers[attempt.index].name
        self.request_id = getattr(self._stream, "request_id", None)

    async def _close_losers(self, running: dict[asyncio.Task[_Attempt], int]) -> None:
        """Cancel the attempts still running and close any stream one of them had opened."""
        for task in running:
            task.cancel()
        for outcome in await asyncio.gather(*running, return_exceptions=True):
            if isinstance(outcome, _Attempt) and outcome.stream is not None:
                await outcome.stream.aclose()

    def __aiter__(self) -> AsyncIterator[LLMChunk]:
        return self

    async def __anext__(self) -> LLMChunk:
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        if self._done or self._stream is None:
            raise StopAsyncIteration
        try:
            return await anext(aiter(self._stream))
        except ProviderError as error:
            if error.retryable:  # too late for this turn, but later turns skip the provider
                self._owner.breaker.failed(self._index, self._now())
            raise

    async def aclose(self) -> None:
        """Close the serving provider's stream; safe to call more than once."""
        self._done = True
        self._first = None
        if self._stream is not None:
            await self._stream.aclose()


class FailoverTTS:
    """Speaks with the first of its TTS providers that produces audio in time.

    Voices are per provider: ``open(voice=...)`` goes to the first provider in the list only;
    give the others their voice in their own settings.

    Args:
        providers: The TTSs, most preferred first.
        cooldown: Seconds a failed provider is skipped by later replies.
        first_audio_timeout: Seconds from a stream's first text to its first audio before the
            reply moves on.
        name: The name in errors and logs.

    Raises:
        ConfigError: The providers have no output format in common.
    """

    def __init__(
        self,
        providers: Sequence[TTS],
        *,
        cooldown: float = 30.0,
        first_audio_timeout: float = 2.0,
        name: str | None = None,
    ) -> None:
        if first_audio_timeout <= 0:
            raise ConfigError("first_audio_timeout must be positive")
        self.providers = list(providers)
        self.breaker = CircuitBreaker(len(self.providers), cooldown=cooldown)
        self.first_audio_timeout = first_audio_timeout
        self.name = name or "failover(" + ",".join(p.name for p in self.providers) + ")"
        common = [
            f
            for f in self.providers[0].output_formats()
            if all(f in p.output_formats() for p in self.providers)
        ]
        if not common:
            raise ConfigError(f"{self.name}: the providers share no output format, so one could not stand in")
        self._formats = tuple(common)

    def output_formats(self) -> Sequence[AudioFormat]:
        """The formats every provider can produce, in the first provider's order."""
        return self._formats

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> FailoverTTSStream:
        """A stream on the first available provider; see the class doc.

        Raises:
            ProviderError: A final error, or the last provider's error when none could open.
        """
        stream = FailoverTTSStream(self, audio, voice)
        await stream._open_next()
        return stream

    async def warm(self, audio: AudioFormat, *, voice: str | None = None) -> None:
        """Open every provider's connection for ``audio`` now, side by side, so a stand-in pays no handshake.

        ``voice`` goes to the first provider only, as in :meth:`open`. A provider that cannot be
        warmed is logged and left to fail (and be skipped) on its reply.
        """
        warmable = [(i, p) for i, p in enumerate(self.providers) if isinstance(p, WarmTTS)]
        await _warm_all(
            self.name, [(p.name, p.warm(audio, voice=voice if i == 0 else None)) for i, p in warmable]
        )

    async def aclose(self) -> None:
        """Close every provider (their connection pools); safe to call more than once."""
        await _close_all(self.providers)


class FailoverTTSStream:
    """One reply's speech on whichever provider is serving it.

    Attributes:
        provider: The name of the provider serving the stream.
    """

    def __init__(self, owner: FailoverTTS, audio: AudioFormat, voice: str | None) -> None:
        self._owner = owner
        self._audio = audio
        self._voice = voice
        loop = asyncio.get_running_loop()
        self._now = loop.time
        self._queue = owner.breaker.order(self._now())
        self._index = -1
        self._stream: TTSStream | None = None
        self._texts: list[str] = []
        self._first_text_at: float | None = None
        self._text_pushed = asyncio.Event()
        self._ended = False
        self._started = False  # a chunk came out: no switching any more
        self._closed = False
        self._generation = 0  # which stream is serving; a switch is done once per failure
        self._switching = asyncio.Lock()
        self.provider: str | None = None

    async def _open_next(self) -> None:
        """Open the next provider's stream and push it everything pushed so far."""
        owner = self._owner
        while True:
            self._index = self._queue.pop(0)
            provider = owner.providers[self._index]
            try:
                voice = self._voice if self._index == 0 else None
                self._stream = await provider.open(self._audio, voice=voice)
                for text in self._texts:
                    await self._stream.push_text(text)
                if self._ended:
                    await self._stream.end_input()
                if self._texts:  # the stand-in's own deadline starts now
                    self._first_text_at = self._now()
            except ProviderError as error:
                if not await self._give_up_on(error):
                    continue
                raise
            self.provider = provider.name
            self._generation += 1
            return

    async def _switch(self, error: ProviderError, generation: int) -> None:
        """Replace the stream of ``generation`` after ``error``, unless another task already did."""
        async with self._switching:
            if generation != self._generation:
                return
            if self._started or await self._give_up_on(error):
                raise error
            await self._open_next()

    async def _give_up_on(self, error: ProviderError) -> bool:
        """Close the failed stream; whether ``error`` must propagate (else try the next)."""
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None
        if not error.retryable or not self._queue:
            return True
        self._owner.breaker.failed(self._index, self._now())
        following = self._owner.providers[self._queue[0]].name
        logger.warning(
            "%s failed before any audio (%s); trying %s",
            self._owner.providers[self._index].name,
            error,
            following,
        )
        return False

    async def push_text(self, text: str) -> None:
        """Add a sentence (kept, to give to a stand-in provider before any audio)."""
        if not self._started:
            self._texts.append(text)
            if self._first_text_at is None:
                self._first_text_at = self._now()
                self._text_pushed.set()
        if self._stream is None:
            raise ProviderStreamError(
                "every TTS provider failed for this reply", provider=self._owner.name, retryable=False
            )
        generation = self._generation
        try:
            await self._stream.push_text(text)
        except ProviderError as error:
            await self._switch(error, generation)

    async def end_input(self) -> None:
        """No more text."""
        self._ended = True
        if self._stream is not None:
            await self._stream.end_input()

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        return self

    async def __anext__(self) -> AudioChunk:
        if self._closed or self._stream is None:
            raise StopAsyncIteration
        if self._started:
            return await anext(aiter(self._stream))
        while True:
            generation = self._generation
            try:
                chunk = await self._first_chunk()
            except ProviderError as error:
                failure = error
            except TimeoutError:
                failure = ProviderTimeoutError(
                    f"no audio within {self._owner.first_audio_timeout:g} s of the first text",
                    provider=self._owner.providers[self._index].name,
                )
            else:
                self._started = True
                self._owner.breaker.succeeded(self._index)
                return chunk
            await self._switch(failure, generation)

    async def _first_chunk(self) -> AudioChunk:
        """The current stream's first chunk, due ``first_audio_timeout`` after the first text."""
        assert self._stream is not None
        first = asyncio.ensure_future(anext(aiter(self._stream)))
        try:
            if self._first_text_at is None:
                pushed = asyncio.ensure_future(self._text_pushed.wait())
                try:
                    await asyncio.wait({first, pushed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    pushed.cancel()
            if not first.done():
                assert self._first_text_at is not None
                remaining = self._first_text_at + self._owner.first_audio_timeout - self._now()
                async with asyncio.timeout(max(remaining, 0.0)):
                    return await asyncio.shield(first)
            return first.result()
        finally:
            if not first.done():
                first.cancel()

    async def aclose(self) -> None:
        """Close the serving provider's stream (barge-in); safe to call more than once."""
        self._closed = True
        if self._stream is not None:
            await self._stream.aclose()


_REPLAY_CHUNK_SECONDS = 0.5  # replayed audio goes out in pieces this long


async def _warm_all(name: str, warm_ups: Sequence[tuple[str, Coroutine[Any, Any, None]]]) -> None:
    """Run the providers' warm-ups side by side, logging each :class:`ProviderError` (not raising it)."""
    outcomes = await asyncio.gather(*(warm for _, warm in warm_ups), return_exceptions=True)
    for (provider, _), outcome in zip(warm_ups, outcomes, strict=True):
        if isinstance(outcome, ProviderError):
            logger.warning("%s: warming %s failed: %s", name, provider, outcome)
        elif isinstance(outcome, BaseException):
            raise outcome


async def _close_all(providers: Sequence[object]) -> None:
    """``aclose()`` each provider that has one (a failing close does not stop the others)."""
    for provider in providers:
        if (close := getattr(provider, "aclose", None)) is not None:
            try:
                await close()
            except Exception:
                logger.warning("closing %s failed", getattr(provider, "name", provider), exc_info=True)


class FailoverSTT:
    """Recognises a call's speech with the first of its STT providers that works, mid-call too.

    Any provider error moves the call on (not only retryable ones: the next provider has its own
    settings and limits, and a call must keep hearing its caller).

    Args:
        providers: The STTs, most preferred first.
        cooldown: Seconds a failed provider is skipped.
        stall_timeout: Seconds after a ``finalize()`` (with words pending) within which a
            transcript must come, else the provider is taken as stalled (None: never). With
            Deepgram Flux in the list, keep its ``eot_timeout_ms`` below this.
        replay_seconds: The most unsettled caller audio kept for a replay.
        name: The name in errors and logs.

    Raises:
        ConfigError: The providers have no input format in common.
    """

    def __init__(
        self,
        providers: Sequence[STT],
        *,
        cooldown: float = 30.0,
        stall_timeout: float | None = 3.0,
        replay_seconds: float = 30.0,
        name: str | None = None,
    ) -> None:
        if stall_timeout is not None and stall_timeout <= 0:
            raise ConfigError("stall_timeout must be positive (or None)")
        if replay_seconds <= 0:
            raise ConfigError("replay_seconds must be positive")
        self.providers = list(providers)
        self.breaker = CircuitBreaker(len(self.providers), cooldown=cooldown)
        self.stall_timeout = stall_timeout
        self.replay_seconds = replay_seconds
        self.name = name or "failover(" + ",".join(p.name for p in self.providers) + ")"
        common = [
            f
            for f in self.providers[0].input_formats()
            if all(f in p.input_formats() for p in self.providers)
        ]
        if not common:
            raise ConfigError(f"{self.name}: the providers share no input format, so one could not stand in")
        self._formats = tuple(common)

    def input_formats(self) -> Sequence[AudioFormat]:
        """The formats every provider accepts, in the first provider's order."""
        return self._formats

    async def open(self, audio: AudioFormat, *, language: str) -> FailoverSTTStream:
        """A stream on the first provider that opens; see the class doc.

        Raises:
            ProviderError: The last provider's error when none could open.
        """
        stream = FailoverSTTStream(self, audio, language)
        await stream._open(stream._candidates(), None)
        return stream

    async def aclose(self) -> None:
        """Close every provider (their connection pools); safe to call more than once."""
        await _close_all(self.providers)


class FailoverSTTStream:
    """One call's recognition on whichever provider is serving it.

    Attributes:
        provider: The name of the provider serving the stream.
        switches: How many times the stream moved to another provider.
    """

    def __init__(self, owner: FailoverSTT, audio: AudioFormat, language: str) -> None:
        self._owner = owner
        self._audio = audio
        self._language = language
        self._now = asyncio.get_running_loop().time
        self._replay = ReplayBuffer(
            bytes_per_second=audio.bytes_per_second,
            sample_width=2 if audio.encoding == "pcm16" else 1,
            capacity_seconds=owner.replay_seconds,
        )
        self._lock = asyncio.Lock()  # live audio never overtakes a replay
        self._stream: STTStream | None = None
        self._index = -1
        self._pending: asyncio.Future[TranscriptUpdate] | None = None  # the serving stream's next update
        self._words_pending = False  # an interim came since the last final
        self._finalized_at: float | None = None  # replay position of the last finalize()
        self._stall_due: float | None = None
        self._rearmed = asyncio.Event()  # finalize() set a new stall deadline
        self._closed = False
        self.provider: str | None = None
        self.switches = 0

    def _candidates(self) -> list[int]:
        """Providers to try, available ones first; the serving one (if any) last of all."""
        order = [i for i in self._owner.breaker.order(self._now()) if i != self._index]
        rest = [i for i in range(len(self._owner.providers)) if i not in order and i != self._index]
        return order + rest + ([self._index] if self._index >= 0 else [])

    async def _open(self, candidates: list[int], failure: ProviderError | None) -> None:
        """Open the first of ``candidates`` that opens and replay the unsettled audio to it."""
        owner = self._owner
        for index in candidates:
            provider = owner.providers[index]
            try:
                stream = await provider.open(self._audio, language=self._language)
            except ProviderError as error:
                logger.warning("%s could not open (%s)", provider.name, error)
                owner.breaker.failed(index, self._now())
                failure = error
                continue
            try:
                await self._install(stream, index)
            except ProviderError as error:
                logger.warning("%s failed while being sent the replay (%s)", provider.name, error)
                with contextlib.suppress(ProviderError):
                    await stream.aclose()
                owner.breaker.failed(index, self._now())
                failure = error
                continue
            return
        assert failure is not None
        raise failure

    async def _install(self, stream: STTStream, index: int) -> None:
        """Send ``stream`` the unsettled audio, then make it the serving stream (live audio waits)."""
        async with self._lock:
            lost = self._replay.replay_gap_seconds
            replay = self._replay.replay()
            if (gap := self._replay.replay_gap_seconds - lost) > 0 and self.provider is not None:
                logger.warning("%.2f s of caller audio was too old to replay after %s", gap, self.provider)
                count_stt_gap(self.provider, gap)
            step = max(int(self._audio.bytes_per_second * _REPLAY_CHUNK_SECONDS), 1)
            for start in range(0, len(replay), step):
                await stream.push_audio(replay[start : start + step])
            self._stream, self._index = stream, index
            self.provider = self._owner.providers[index].name
            self._words_pending = False
            self._finalized_at = self._stall_due = None

    async def _switch(self, failure: ProviderError, reason: Literal["error", "stall"]) -> None:
        """Move the call off the serving provider after ``failure`` (audio meanwhile is kept)."""
        failed = self._owner.providers[self._index].name
        STT_FAILOVERS.labels(provider=failed, reason=reason).inc()
        self._owner.breaker.failed(self._index, self._now())
        old, self._stream = self._stream, None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if old is not None:
            with contextlib.suppress(ProviderError):
                await old.aclose()
        candidates = self._candidates()
        logger.warning(
            "speech recognition by %s failed (%s); moving the call to %s with %.2f s of audio to replay",
            failed,
            failure,
            self._owner.providers[candidates[0]].name,
            self._replay.pending / self._audio.bytes_per_second,
        )
        await self._open(candidates, failure)
        self.switches += 1

    async def push_audio(self, audio: bytes) -> None:
        """Send caller audio (kept until a final transcript covers it)."""
        if self._closed or not audio:
            return
        async with self._lock:
            self._replay.push(audio)
            if self._stream is not None:
                try:
                    await self._stream.push_audio(audio)
                except ProviderError as error:  # the iterator sees the loss and moves on
                    logger.warning("sending audio to %s failed: %s", self.provider, error)

    async def finalize(self) -> None:
        """Ask for the final text; with words pending, it must come within ``stall_timeout``."""
        self._finalized_at = self._replay.position
        timeout = self._owner.stall_timeout
        if self._words_pending and timeout is not None and self._stall_due is None:
            self._stall_due = self._now() + timeout
            self._rearmed.set()
        if self._stream is not None:
            try:
                await self._stream.finalize()
            except ProviderError as error:
                logger.warning("could not ask %s for its final text: %s", self.provider, error)

    def __aiter__(self) -> AsyncIterator[TranscriptUpdate]:
        return self

    async def __anext__(self) -> TranscriptUpdate:
        while True:
            if self._closed or self._stream is None:
                raise StopAsyncIteration
            reason: Literal["error", "stall"] = "error"
            try:
                update = await self._next()
            except ProviderError as error:
                failure = error
            except TimeoutError:
                timeout = self._owner.stall_timeout
                failure = ProviderTimeoutError(
                    f"no transcript within {timeout:g} s of the end of speech", provider=self.provider or ""
                )
                reason = "stall"
            else:
                self._on_update(update)
                return update
            if self._closed:
                raise StopAsyncIteration
            await self._switch(failure, reason)

    def _on_update(self, update: TranscriptUpdate) -> None:
        self._owner.breaker.succeeded(self._index)
        self._stall_due = None
        if not update.final:
            self._words_pending = self._words_pending or bool(update.text)
            return
        self._words_pending = False
        # The serving stream's time 0 is the first replayed byte, the replay buffer's too. A
        # provider that does not say where its final ends: it covers what preceded finalize().
        settled = update.audio_end if update.audio_end is not None else self._finalized_at
        if settled is not None:
            self._replay.settle(settled)

    async def _next(self) -> TranscriptUpdate:
        """The serving stream's next update, or TimeoutError once the stall deadline passes."""
        assert self._stream is not None
        while True:
            if self._pending is None:
                self._pending = asyncio.ensure_future(anext(aiter(self._stream)))
            self._rearmed.clear()
            rearmed = asyncio.ensure_future(self._rearmed.wait())
            timeout = None if self._stall_due is None else max(self._stall_due - self._now(), 0.0)
            waiting: set[asyncio.Future[Any]] = {self._pending, rearmed}
            try:
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                rearmed.cancel()
            if self._pending in done:
                pending, self._pending = self._pending, None
                return pending.result()
            if not done:
                raise TimeoutError

    async def aclose(self) -> None:
        """Close the serving provider's stream; safe to call more than once."""
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._stream is not None:
            await self._stream.aclose()
