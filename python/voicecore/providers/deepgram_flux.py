"""Deepgram Flux speech-to-text (``/v2/listen``): the STT that ends the caller's turn itself.

:class:`DeepgramFluxSTT` opens one socket per call and pumps it through
:class:`voicecore.sansio.deepgram_flux.FluxProtocol`; phone audio goes through as μ-law 8 kHz.
Flux's turn events become :class:`~voicecore.providers.base.TranscriptUpdate` s: ``StartOfTurn``
and ``Update`` interim text (the first words serve barge-in), ``EagerEndOfTurn`` an interim
marked ``eager`` (the runtime starts a speculative reply on it), ``TurnResumed`` an interim
(its next words cancel that reply), ``EndOfTurn`` the final text with ``end_of_turn``. Use it
with the turn setting ``end_of_turn = "stt"`` so that Flux, not the VAD, ends turns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from voicecore.errors import ProviderStreamError
from voicecore.providers._live import LiveSTT, LiveSTTStream
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat, TranscriptUpdate
from voicecore.sansio import deepgram_flux as proto
from voicecore.sansio.deepgram import auth_headers

__all__ = ["DEEPGRAM_URL", "DeepgramFluxSTT", "DeepgramFluxStream"]

logger = logging.getLogger(__name__)

DEEPGRAM_URL = "wss://api.deepgram.com"
_FORMATS = (MULAW_8K, PCM16_16K, AudioFormat("pcm16", 8000), AudioFormat("pcm16", 24000))


class DeepgramFluxSTT(LiveSTT):
    """An :class:`~voicecore.providers.base.STT` for Deepgram Flux.

    Args:
        api_key: Sent as ``Authorization: Token``; None sends none.
        model: ``flux-general-en`` or ``flux-general-multi``.
        base_url: ``wss://api.deepgram.com`` or another server's root.
        eot_threshold: Confidence that ends a turn (0.5 to 0.9; None: Deepgram's 0.7).
        eager_eot_threshold: Confidence for an eager end of turn, on which a speculative reply
            starts (0.3 to 0.9; None: no eager events, no speculation).
        eot_timeout_ms: Silence that ends a turn whatever the confidence (None: 5000).
        keyterms: Words to favour (names, products).
        params: More query parameters, as Deepgram names them.
        max_reconnects: Times a stream reconnects after losing its socket mid-call, replaying
            the audio of the turn in progress (0: a lost socket ends the stream).
        replay_seconds: The most unsettled audio kept for a replay.
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    request_id_header = "dg-request-id"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "flux-general-en",
        base_url: str = DEEPGRAM_URL,
        eot_threshold: float | None = None,
        eager_eot_threshold: float | None = None,
        eot_timeout_ms: int | None = None,
        keyterms: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
        max_reconnects: int = 3,
        replay_seconds: float = 30.0,
        connect_timeout: float = 5.0,
        name: str = "deepgram-flux",
    ) -> None:
        super().__init__(
            headers=auth_headers(api_key),
            name=name,
            max_reconnects=max_reconnects,
            replay_seconds=replay_seconds,
            connect_timeout=connect_timeout,
        )
        self.model = model
        self.base_url = base_url
        self.eot_threshold = eot_threshold
        self.eager_eot_threshold = eager_eot_threshold
        self.eot_timeout_ms = eot_timeout_ms
        self.keyterms = tuple(keyterms)
        self.params = dict(params or {})
        self.url(MULAW_8K)  # thresholds out of range fail here, not on the first call

    def input_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (phone audio as is), then linear PCM."""
        return _FORMATS

    def url(self, audio: AudioFormat, language: str = "en") -> str:
        """The stream URL for ``audio`` with this provider's settings.

        A multilingual model is given the call's language as a hint (``language_hint``); an
        English one needs none.
        """
        extra = dict(self.params)
        if self.model.endswith("-multi") and language != "multi":
            extra.setdefault("language_hint", language.split("-")[0].lower())
        return proto.flux_url(
            self.base_url,
            model=self.model,
            encoding=proto.ENCODINGS[audio.encoding],
            sample_rate=audio.sample_rate,
            eot_threshold=self.eot_threshold,
            eager_eot_threshold=self.eager_eot_threshold,
            eot_timeout_ms=self.eot_timeout_ms,
            keyterms=self.keyterms,
            extra=extra,
        )

    async def open(self, audio: AudioFormat, *, language: str) -> DeepgramFluxStream:
        """Open a stream for ``audio``; ``language`` is a hint to a multilingual model (``es-ES``).

        Raises:
            ProviderStatusError: The handshake was refused (bad key: 401, bad parameters: 400).
            ProviderConnectionError: The server could not be reached.
        """
        self._check_format(audio)
        url = self.url(audio, language)
        return await self._open_stream(DeepgramFluxStream, audio, url, proto.FluxProtocol(provider=self.name))


class DeepgramFluxStream(LiveSTTStream):
    """One Flux stream (see the module doc for how turn events become updates).

    Attributes:
        turn_index: The turn in progress, as Flux counts them.
        thresholds: The end-of-turn thresholds in force after the last accepted ``Configure``.
    """

    turn_index = 0
    _interim = ""  # the last interim text sent out, so unchanged Updates are not repeated
    thresholds: Mapping[str, float] = {}

    async def configure(
        self,
        *,
        eot_threshold: float | None = None,
        eager_eot_threshold: float | None = None,
        eot_timeout_ms: int | None = None,
        keyterms: Sequence[str] | None = None,
    ) -> None:
        """Change the thresholds (or key terms) mid-call; the server answers with the ones in force.

        Raises:
            ConfigError: A threshold out of range.
            ProviderStreamError: The stream is closed.
        """
        message = proto.configure_message(
            eot_threshold=eot_threshold,
            eager_eot_threshold=eager_eot_threshold,
            eot_timeout_ms=eot_timeout_ms,
            keyterms=keyterms,
        )
        if self._closed or self._ws.closed:
            raise ProviderStreamError(
                "the stream is closed", provider=self._protocol.provider, retryable=False
            )
        await self._ws.send_str(message)

    def _on_event(self, event: object) -> None:
        match event:
            case proto.TurnInfo(kind, turn_index, text, _, end, _, confidence):
                self.turn_index = turn_index
                if kind == "EndOfTurn":
                    self._replay.settle(end)
                    self._interim = ""
                    self._ready.append(
                        TranscriptUpdate(
                            text,
                            final=True,
                            end_of_turn=True,
                            confidence=confidence,
                            audio_end=self._replay.stream_time(end),
                        )
                    )
                elif kind in ("EagerEndOfTurn", "TurnResumed") or (
                    kind in ("Update", "StartOfTurn") and text != self._interim
                ):
                    self._interim = text
                    eager = kind == "EagerEndOfTurn"
                    self._ready.append(
                        TranscriptUpdate(text, final=False, confidence=confidence, eager=eager)
                    )
            case proto.ConfigureResult(ok, thresholds, description):
                if ok:
                    self.thresholds = thresholds
                else:
                    logger.warning("%s refused a Configure: %s", self._protocol.provider, description)
            case proto.FluxWarning(code, description):
                logger.warning("%s warns %s: %s", self._protocol.provider, code, description)
