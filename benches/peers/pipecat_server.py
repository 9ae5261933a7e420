"""The load generator's Pipecat peer: a Twilio bot built as Pipecat's examples build one, on fakes.

``python -m benches.peers.pipecat_server --port 8766`` serves ``ws://127.0.0.1:8766/twilio/stream``
for ``python -m voicecore bench load --target ...``. Each call runs the pipeline of Pipecat's
Twilio example (``twilio-chatbot/inbound/bot.py``): ``parse_telephony_websocket`` reads
``connected``/``start``, then ``FastAPIWebsocketTransport`` + ``TwilioFrameSerializer`` (no REST
credentials, so ``auto_hang_up`` off) → STT → user aggregator (Silero VAD) → LLM → TTS →
output → assistant aggregator, with 8 kHz in and out, metrics on, and the greeting
``"Hello."`` spoken on connect.

The three services subclass Pipecat's ``STTService`` / ``LLMService`` / ``TTSService`` the way
its streaming providers do (Deepgram, OpenAI, Cartesia) and wrap voicecore's own benchmark fakes
(:mod:`voicecore.testing`) with the delays of :class:`voicecore.loadgen.FakeDelays`, so both
servers wait on exactly the same providers and the difference is the frameworks:

* STT: audio streamed in; the first word of the next utterance as an interim after
  ``interim_after`` of loud audio; the final text ``stt`` after the VAD's
  ``VADUserStoppedSpeakingFrame`` (Deepgram's ``Finalize`` point), marked finalized.
* LLM: :data:`~voicecore.loadgen.REPLY`, first token after ``llm_first_token``, then
  ``llm_tokens_per_second``.
* TTS: one synthesis stream per reply (Cartesia's context), first audio ``tts_first_byte``
  after its first sentence, audio as long as the text, word timestamps for the context.

Turn-taking is set to match voicecore's benchmark agent: the VAD decides the end of speech
after ``endpointing`` (500 ms) of silence and the turn ends when the final text arrives
(``SpeechTimeoutUserTurnStopStrategy`` with no extra wait, instead of Pipecat's default Smart
Turn model), and a barge-in needs a transcribed word (``--barge-in word``: Pipecat's
transcription start strategy alone) as voicecore's turn machine does; ``--barge-in vad`` keeps
Pipecat's default start strategies, which interrupt on the VAD's speech start.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncGenerator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_start import BaseUserTurnStartStrategy, TranscriptionUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

from voicecore.loadserver import GREETING, INSTRUCTIONS, REPLY, UTTERANCE, FakeDelays
from voicecore.providers.base import AudioFormat, STTStream, TextDelta, TTSStream
from voicecore.testing import FakeLLM, FakeReply, FakeSTT, FakeTTS

#: Twilio's audio rate; the pipeline runs at it both ways, as Pipecat's Twilio examples do.
RATE = 8000
#: Where the load generator (and Twilio's TwiML) points the stream.
STREAM_PATH = "/twilio/stream"


class FakeSTTService(STTService):
    """Streaming STT on voicecore's ``FakeSTT``: audio in as it comes, finalized on the VAD's stop."""

    def __init__(self, delays: FakeDelays, **kwargs: Any) -> None:
        super().__init__(
            ttfs_p99_latency=delays.stt, settings=STTSettings(model=None, language=None), **kwargs
        )
        self._delays = delays
        self._stream: STTStream | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, frame: StartFrame) -> None:
        """Open the recognition stream at the pipeline's input rate (Deepgram connects here)."""
        await super().start(frame)
        audio = AudioFormat("pcm16", self.sample_rate)
        loud_bytes = round(self._delays.interim_after * audio.bytes_per_second)
        fake = FakeSTT(
            [UTTERANCE] * 10_000, latency=self._delays.stt, interim_after_bytes=loud_bytes, formats=(audio,)
        )
        self._stream = await fake.open(audio, language="en")
        self._reader = self.create_task(self._read(self._stream), name="fake-stt-results")

    async def stop(self, frame: EndFrame) -> None:
        """Close the stream when the pipeline ends."""
        await super().stop(frame)
        await self._close()

    async def cancel(self, frame: CancelFrame) -> None:
        """Close the stream when the pipeline is cancelled (the caller hung up)."""
        await super().cancel(frame)
        await self._close()

    async def _close(self) -> None:
        if self._reader is not None:
            await self.cancel_task(self._reader)
            self._reader = None
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Send the audio on; results come from the reader task, as with a WebSocket STT."""
        if self._stream is not None:
            await self._stream.push_audio(audio)
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Finalize once the VAD decides the caller stopped, as Deepgram's service does."""
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame) and self._stream is not None:
            self.request_finalize()
            await self._stream.finalize()

    async def _read(self, stream: STTStream) -> None:
        async for update in stream:
            if update.final:
                self.confirm_finalize()
                await self.push_frame(TranscriptionFrame(update.text, self._user_id, time_now_iso8601()))
            else:
                await self.push_frame(
                    InterimTranscriptionFrame(update.text, self._user_id, time_now_iso8601())
                )


class FakeLLMService(LLMService[Any]):
    """Streaming LLM on voicecore's ``FakeLLM``: OpenAI's service with the completion call replaced."""

    def __init__(self, delays: FakeDelays, **kwargs: Any) -> None:
        settings = LLMSettings(
            model=None,
            system_instruction=INSTRUCTIONS,
            temperature=None,
            max_tokens=None,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            filter_incomplete_user_turns=None,
            user_turn_completion_config=None,
        )
        super().__init__(settings=settings, **kwargs)
        reply = FakeReply(
            REPLY, first_token=delays.llm_first_token, tokens_per_second=delays.llm_tokens_per_second
        )
        self._fake = FakeLLM([reply], record=False)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Answer each context frame with a streamed reply between response start and end frames."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        try:
            await self.push_frame(LLMFullResponseStartFrame())
            await self.start_processing_metrics()
            await self._complete(frame.context)
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())

    async def _complete(self, context: LLMContext) -> None:
        await self.start_ttfb_metrics()
        params = await self.get_llm_adapter().get_llm_invocation_params(
            context, system_instruction=INSTRUCTIONS, convert_developer_to_user=False
        )
        stream = await self._fake.complete(list(params["messages"]))
        try:
            async for chunk in stream:
                if isinstance(chunk, TextDelta):
                    await self.stop_ttfb_metrics()
                    await self._push_llm_text(chunk.text)
        finally:
            await stream.aclose()


class FakeTTSService(TTSService):
    """Streaming TTS on voicecore's ``FakeTTS``, one synthesis stream per audio context (as Cartesia)."""

    def __init__(self, delays: FakeDelays, **kwargs: Any) -> None:
        settings = TTSSettings(model=None, voice=None, language=None)
        super().__init__(push_text_frames=False, push_start_frame=True, settings=settings, **kwargs)
        self._delays = delays
        self._fake: FakeTTS | None = None
        self._streams: dict[str, tuple[TTSStream, asyncio.Task[None]]] = {}

    async def start(self, frame: StartFrame) -> None:
        """Make the fake once the output rate is known."""
        await super().start(frame)
        audio = AudioFormat("pcm16", self.sample_rate)
        self._fake = FakeTTS(
            first_byte=self._delays.tts_first_byte,
            ms_per_char=self._delays.tts_ms_per_char,
            formats=(audio,),
            record=False,
        )

    async def stop(self, frame: EndFrame) -> None:
        """Close every open stream."""
        await super().stop(frame)
        await self._close_all()

    async def cancel(self, frame: CancelFrame) -> None:
        """Close every open stream."""
        await super().cancel(frame)
        await self._close_all()

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Send a sentence to the context's stream; its audio comes from the stream's reader task."""
        assert self._fake is not None, "run_tts before start"
        if context_id not in self._streams:
            stream = await self._fake.open(AudioFormat("pcm16", self.sample_rate))
            reader = self.create_task(self._read(context_id, stream), name=f"fake-tts-{context_id}")
            self._streams[context_id] = (stream, reader)
        await self._streams[context_id][0].push_text(text)
        await self.start_tts_usage_metrics(text)
        yield None

    async def flush_audio(self, context_id: str | None = None) -> None:
        """The reply's text is complete: end the stream's input (Cartesia's ``continue: false``)."""
        entry = self._streams.get(context_id or self.get_active_audio_context_id() or "")
        if entry is not None:
            await entry[0].end_input()

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: drop the context's stream (Cartesia sends ``cancel``)."""
        await self.stop_all_metrics()
        await self._close(context_id)
        await super().on_audio_context_interrupted(context_id)

    async def _read(self, context_id: str, stream: TTSStream) -> None:
        spoken_ms = 0.0  # word timings are end times; Pipecat takes start times
        async for chunk in stream:
            words = []
            for word in chunk.words:
                words.append((word.text, spoken_ms / 1000))
                spoken_ms = word.end_ms
            if words:
                await self.add_word_timestamps(words, context_id)
            audio = TTSAudioRawFrame(chunk.audio, self.sample_rate, 1, context_id=context_id)
            await self.append_to_audio_context(context_id, audio)
        await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
        await self.remove_audio_context(context_id)
        self._streams.pop(context_id, None)
        await stream.aclose()

    async def _close(self, context_id: str) -> None:
        entry = self._streams.pop(context_id, None)
        if entry is not None:
            stream, reader = entry
            await self.cancel_task(reader)
            await stream.aclose()

    async def _close_all(self) -> None:
        for context_id in list(self._streams):
            await self._close(context_id)


async def run_call(websocket: WebSocket, delays: FakeDelays, barge_in: str) -> None:
    """One call: the Twilio example's pipeline on the fakes, until the caller hangs up."""
    try:
        provider, call_data = await parse_telephony_websocket(websocket)
    except ValueError as error:  # closed before its first message
        logger.warning(f"no call: {error}")
        return
    if provider != "twilio":
        logger.warning(f"not a Twilio Media Stream (detected {provider!r}); closing it")
        await websocket.close(code=1008)
        return
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer
        ),
    )
    start: list[BaseUserTurnStartStrategy] | None = None  # None: Pipecat's defaults (VAD first)
    if barge_in == "word":
        start = [TranscriptionUserTurnStartStrategy()]
    strategies = UserTurnStrategies(
        start=start, stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)]
    )
    vad = SileroVADAnalyzer(params=VADParams(stop_secs=delays.endpointing))
    context = LLMContext()
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=vad, user_turn_strategies=strategies)
    )
    pipeline = Pipeline(
        [
            transport.input(),
            FakeSTTService(delays),
            user_aggregator,
            FakeLLMService(delays),
            FakeTTSService(delays),
            transport.output(),
            assistant_aggregator,
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=RATE,
            audio_out_sample_rate=RATE,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
    )

    @transport.event_handler("on_client_connected")
    async def greet(transport: FastAPIWebsocketTransport, client: WebSocket) -> None:
        await worker.queue_frames([TTSSpeakFrame(GREETING)])

    @transport.event_handler("on_client_disconnected")
    async def hang_up(transport: FastAPIWebsocketTransport, client: WebSocket) -> None:
        await worker.cancel()

    # As the example: uvicorn owns the signals; collect garbage after each call.
    runner = WorkerRunner(handle_sigint=False, force_gc=True)
    await runner.add_workers(worker)
    await runner.run()


def make_app(delays: FakeDelays, barge_in: str) -> FastAPI:
    """The FastAPI app: the Media Streams WebSocket and nothing else (no TwiML webhook needed)."""
    app = FastAPI()

    @app.websocket(STREAM_PATH)
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_call(websocket, delays, barge_in)

    return app


class _Server(uvicorn.Server):
    """uvicorn's server, except that a signal only stops it.

    uvicorn re-raises a captured SIGTERM/SIGINT once it has shut down, so the process would
    end by the signal (exit -15, or a KeyboardInterrupt) instead of returning 0.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Shut down gracefully: stop accepting, close the calls, return from ``run``."""
        self.should_exit = True


def serve(host: str, port: int, barge_in: str) -> None:
    """Serve on uvicorn's default loop (uvloop when installed) until SIGTERM or SIGINT."""
    config = uvicorn.Config(
        make_app(FakeDelays(), barge_in),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    # Bound and listening before the line is printed: a caller that reads it can connect at once
    # (the backlog holds it until uvicorn accepts), and port 0 is resolved to the real port.
    sock = config.bind_socket()
    sock.listen(config.backlog)
    print(f"pipecat peer listening on ws://{host}:{sock.getsockname()[1]}{STREAM_PATH}", flush=True)
    _Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m benches.peers.pipecat_server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8766, help="TCP port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--barge-in",
        choices=("word", "vad"),
        default="word",
        help="what interrupts the bot: a transcribed word, as voicecore (default), or Pipecat's "
        "default start strategies (VAD speech start first)",
    )
    parser.add_argument(
        "--log-level", default="WARNING", help="loguru level for Pipecat's logs (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level=args.log_level.upper())
    serve(args.host, args.port, args.barge_in)
    return 0


if __name__ == "__main__":
    sys.exit(main())
