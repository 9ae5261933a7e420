"""Deepgram live speech-to-text over its WebSocket (``/v1/listen``).

:class:`DeepgramSTT` opens one socket per call and pumps it through
:class:`voicecore.sansio.deepgram.ListenProtocol`. Telephony audio goes through untouched:
``input_formats()`` lists μ-law 8 kHz first, so a Twilio call streams its own bytes with
``encoding=mulaw&sample_rate=8000``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from voicecore.errors import ConfigError
from voicecore.providers._live import LiveSTT, LiveSTTStream
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat, TranscriptUpdate
from voicecore.sansio import deepgram as proto

__all__ = ["DEEPGRAM_URL", "DeepgramSTT", "DeepgramStream"]

DEEPGRAM_URL = "wss://api.deepgram.com"
_FORMATS = (
    MULAW_8K,
    PCM16_16K,
    AudioFormat("pcm16", 8000),
    AudioFormat("pcm16", 24000),
    AudioFormat("alaw", 8000),
)


class DeepgramSTT(LiveSTT):
    """An :class:`~voicecore.providers.base.STT` for Deepgram's live API (Nova models).

    Args:
        api_key: Sent as ``Authorization: Token``; None sends none (a self-hosted server).
        model: ``nova-3``, ``nova-2-phonecall``, ...
        base_url: ``wss://api.deepgram.com`` or a self-hosted server's root.
        endpointing_ms: Silence after which a result is ``speech_final`` (None: off).
        utterance_end_ms: Gap after the last word for an ``UtteranceEnd`` (None: off).
        smart_format: Punctuation and number formatting.
        params: More query parameters, as Deepgram names them (``keyterm``, ``redact``, ...).
        keepalive_interval: Seconds without audio before a ``KeepAlive`` is sent.
        max_reconnects: Times a stream reconnects after losing its socket mid-call, replaying
            the audio no final result had covered (0: a lost socket ends the stream).
        replay_seconds: The most unsettled audio kept for a replay (older audio is a gap).
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    request_id_header = "dg-request-id"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "nova-3",
        base_url: str = DEEPGRAM_URL,
        endpointing_ms: int | None = 300,
        utterance_end_ms: int | None = 1000,
        smart_format: bool = True,
        params: Mapping[str, str] | None = None,
        keepalive_interval: float = 4.0,
        max_reconnects: int = 3,
        replay_seconds: float = 30.0,
        connect_timeout: float = 5.0,
        name: str = "deepgram",
    ) -> None:
        if keepalive_interval <= 0 or keepalive_interval >= 10:
            raise ConfigError(
                "keepalive_interval must be between 0 and 10 s (Deepgram closes after 10 s idle)"
            )
        super().__init__(
            headers=proto.auth_headers(api_key),
            name=name,
            max_reconnects=max_reconnects,
            replay_seconds=replay_seconds,
            connect_timeout=connect_timeout,
        )
        self.model = model
        self.base_url = base_url
        self.endpointing_ms = endpointing_ms
        self.utterance_end_ms = utterance_end_ms
        self.smart_format = smart_format
        self.params = dict(params or {})
        self.keepalive_interval = keepalive_interval

    def input_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (phone audio as is), then linear PCM."""
        return _FORMATS

    async def open(self, audio: AudioFormat, *, language: str) -> DeepgramStream:
        """Open a live stream for ``audio`` in ``language`` (``en``, ``en-US``, ``multi``, ...).

        Raises:
            ProviderStatusError: The handshake was refused (bad key: 401, bad parameters: 400).
            ProviderConnectionError: The server could not be reached.
        """
        self._check_format(audio)
        url = proto.listen_url(
            self.base_url,
            model=self.model,
            encoding=proto.ENCODINGS[audio.encoding],
            sample_rate=audio.sample_rate,
            language=language,
            endpointing_ms=self.endpointing_ms,
            utterance_end_ms=self.utterance_end_ms,
            smart_format=self.smart_format,
            extra=self.params,
        )
        protocol = proto.ListenProtocol(provider=self.name, keepalive_interval=self.keepalive_interval)
        return await self._open_stream(DeepgramStream, audio, url, protocol)


class DeepgramStream(LiveSTTStream):
    """One live stream: an :class:`~voicecore.providers.base.STTStream`.

    Interim results come out as non-final updates, final ones as final updates
    (``end_of_turn`` when Deepgram's endpointing marked them ``speech_final``), and an
    ``UtteranceEnd`` as an empty final update with ``end_of_turn``. A lost socket is replaced
    and replayed (see :class:`~voicecore.providers._live.LiveSTTStream`).

    Attributes:
        speech_started: Audio time (s) of the last ``SpeechStarted``, if any came.
        metadata: The ``Metadata`` summary, once the server has sent it.
    """

    speech_started: float | None = None
    metadata: proto.Metadata | None = None

    def _on_event(self, event: object) -> None:
        match event:
            case proto.Results(text, is_final, speech_final, _, confidence, start, duration):
                end: float | None = None
                if is_final:
                    self._replay.settle(start + duration)
                    end = self._replay.stream_time(start + duration)
                self._ready.append(
                    TranscriptUpdate(
                        text, final=is_final, end_of_turn=speech_final, confidence=confidence, audio_end=end
                    )
                )
            case proto.UtteranceEnd():
                self._ready.append(TranscriptUpdate("", final=True, end_of_turn=True))
            case proto.SpeechStarted(timestamp):
                self.speech_started = timestamp
            case proto.Metadata():
                self.metadata = event
