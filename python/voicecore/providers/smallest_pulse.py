"""Smallest AI Pulse live speech-to-text over its WebSocket (``/waves/v1/stt/live``).

:class:`SmallestPulseSTT` opens one socket per call and pumps it through
:class:`voicecore.sansio.smallest_pulse.PulseProtocol`. Telephony audio goes through untouched
(μ-law 8 kHz is first in ``input_formats()``). The VAD's end of speech sends ``finalize``, whose
``is_final`` answer is the turn's text; Pulse has no end-of-turn signal of its own, so use it
with the turn setting ``end_of_turn = "vad"`` or ``"both"`` (the default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from voicecore.providers._live import LiveSTT, LiveSTTStream
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat, TranscriptUpdate
from voicecore.sansio import smallest_pulse as proto

__all__ = ["SMALLEST_URL", "PulseStream", "SmallestPulseSTT"]

SMALLEST_URL = "wss://api.smallest.ai"
_FORMATS = (
    MULAW_8K,
    PCM16_16K,
    AudioFormat("pcm16", 8000),
    AudioFormat("pcm16", 24000),
    AudioFormat("pcm16", 48000),
    AudioFormat("alaw", 8000),
)


class SmallestPulseSTT(LiveSTT):
    """An :class:`~voicecore.providers.base.STT` for Smallest AI's Pulse streaming model.

    Args:
        api_key: Sent as ``Authorization: Bearer``; None sends none.
        base_url: ``wss://api.smallest.ai`` (``wss://api.us.smallest.ai`` for zh, ja, ko) or a fake.
        model: ``pulse`` (the only model that streams).
        params: More query parameters, as Smallest names them (``keywords``, ``eou_timeout_ms``,
            ``redact_pii``, ...).
        max_reconnects: Times a stream reconnects after losing its socket mid-call, replaying
            the audio no final transcript had covered (0: a lost socket ends the stream).
        replay_seconds: The most unsettled audio kept for a replay.
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = SMALLEST_URL,
        model: str = "pulse",
        params: Mapping[str, str] | None = None,
        max_reconnects: int = 3,
        replay_seconds: float = 30.0,
        connect_timeout: float = 5.0,
        name: str = "smallest",
    ) -> None:
        super().__init__(
            headers=proto.auth_headers(api_key),
            name=name,
            max_reconnects=max_reconnects,
            replay_seconds=replay_seconds,
            connect_timeout=connect_timeout,
        )
        self.base_url = base_url
        self.model = model
        self.params = dict(params or {})

    def input_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (phone audio as is), then linear PCM (Pulse does not resample)."""
        return _FORMATS

    async def open(self, audio: AudioFormat, *, language: str) -> PulseStream:
        """Open a live stream for ``audio`` in ``language`` (``en``, ``multi-asian``; ``en-US`` is ``en``).

        Raises:
            ProviderStatusError: The handshake was refused (bad key: 401, bad parameters: 400).
            ProviderConnectionError: The server could not be reached.
        """
        self._check_format(audio)
        url = proto.pulse_url(
            self.base_url,
            language=_pulse_language(language),
            encoding=proto.ENCODINGS[audio.encoding],
            sample_rate=audio.sample_rate,
            model=self.model,
            extra=self.params,
        )
        return await self._open_stream(PulseStream, audio, url, proto.PulseProtocol(provider=self.name))


def _pulse_language(language: str) -> str:
    """Pulse's name for ``language``: ``en-US`` is ``en``; its own names (``multi-asian``) stay."""
    primary, _, region = language.partition("-")
    return primary.lower() if len(primary) == 2 and len(region) == 2 else language


class PulseStream(LiveSTTStream):
    """One Pulse stream: interim and final transcripts out as updates (see the module doc).

    A final transcript settles the replay buffer at its last word's end, or, answering a
    ``finalize`` without word times, at the audio sent before that ``finalize``.

    Attributes:
        speech_started: Audio time (s) of the last ``speech_started``, if any came.
        speech_ended: Audio time (s) of the last ``speech_ended``, if any came.
    """

    speech_started: float | None = None
    speech_ended: float | None = None
    _finalized_at: float | None = None  # audio position of the last finalize on this socket

    async def finalize(self) -> None:
        """Ask for the final text of what was sent (the answer is marked ``from_finalize``)."""
        self._finalized_at = self._replay.position
        await super().finalize()

    async def _reconnect_and_replay(self) -> None:
        self._finalized_at = None  # a finalize sent on the old socket is not answered on the new
        await super()._reconnect_and_replay()

    def _on_event(self, event: object) -> None:
        match event:
            case proto.Transcription(text, is_final, _, from_finalize, end, confidence):
                settled = None
                if is_final:
                    settled = end if end is not None else self._finalized_at if from_finalize else None
                    if settled is not None:
                        self._replay.settle(settled)
                        settled = self._replay.stream_time(settled)
                if text or is_final:
                    self._ready.append(
                        TranscriptUpdate(text, final=is_final, confidence=confidence, audio_end=settled)
                    )
            case proto.SpeechStarted(timestamp):
                self.speech_started = timestamp
            case proto.SpeechEnded(timestamp):
                self.speech_ended = timestamp
