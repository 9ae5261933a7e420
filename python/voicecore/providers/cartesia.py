"""Cartesia (Sonic) text-to-speech over its WebSocket, one context per reply.

:class:`CartesiaTTS` keeps one socket per output format, opened by :meth:`CartesiaTTS.warm`
when a call starts (or by the first reply), and gives each reply a fresh context on it: a
barge-in cancels that context only, so no reply pays a handshake. The protocol lives in
:mod:`voicecore.sansio.cartesia`; this module pumps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voicecore.errors import ConfigError
from voicecore.providers._wstts import EventSocket, ReplyStream, SocketTTS
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat
from voicecore.sansio import cartesia as proto

__all__ = ["CARTESIA_URL", "DEFAULT_CARTESIA_VOICE", "CartesiaStream", "CartesiaTTS"]

CARTESIA_URL = "wss://api.cartesia.ai"
DEFAULT_CARTESIA_VOICE = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"  # the official SDK's default voice
_FORMATS = (
    MULAW_8K,
    PCM16_16K,
    AudioFormat("pcm16", 24000),
    AudioFormat("pcm16", 8000),
    AudioFormat("pcm16", 22050),
    AudioFormat("pcm16", 44100),
    AudioFormat("pcm16", 48000),
)


class CartesiaTTS(SocketTTS[AudioFormat]):
    """A :class:`~voicecore.providers.base.TTS` for Cartesia, one context per reply.

    Args:
        voice_id: The default voice (``open(voice=...)`` picks another).
        api_key: Sent as ``Authorization: Bearer``.
        model_id: ``sonic-3``, ``sonic-turbo``, ...
        language: The transcript's language.
        base_url: ``wss://api.cartesia.ai`` or a fake server's root.
        version: The ``Cartesia-Version`` header.
        max_buffer_delay_ms: How long the server may wait for more text before generating;
            0 (the default) because voicecore pushes whole sentences.
        add_timestamps: Ask for word times (the playback cursor uses them).
        generation_config: E.g. ``{"speed": 1.0, "volume": 1.0, "emotion": "neutral"}``.
        read_timeout: Seconds a reply may owe audio without any arriving before the stream
            raises :class:`~voicecore.errors.ProviderTimeoutError`.
        ping_interval: Seconds between WebSocket pings (Cartesia has no keep-alive message,
            and closes idle sockets); a socket whose pong does not come is reopened.
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    def __init__(
        self,
        *,
        voice_id: str = DEFAULT_CARTESIA_VOICE,
        api_key: str | None = None,
        model_id: str = "sonic-3",
        language: str = "en",
        base_url: str = CARTESIA_URL,
        version: str = proto.CARTESIA_VERSION,
        max_buffer_delay_ms: int = 0,
        add_timestamps: bool = True,
        generation_config: Mapping[str, Any] | None = None,
        read_timeout: float = 10.0,
        ping_interval: float = 20.0,
        connect_timeout: float = 5.0,
        name: str = "cartesia",
    ) -> None:
        if not 0 <= max_buffer_delay_ms <= 5000:
            raise ConfigError("max_buffer_delay_ms must be within 0..5000")
        super().__init__(
            headers=proto.auth_headers(api_key, version), name=name, connect_timeout=connect_timeout
        )
        self.voice_id = voice_id
        self.model_id = model_id
        self.language = language
        self.base_url = base_url
        self.max_buffer_delay_ms = max_buffer_delay_ms
        self.add_timestamps = add_timestamps
        self.generation_config = dict(generation_config or {})
        self.read_timeout = read_timeout
        self.ping_interval = ping_interval

    def output_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (Twilio's payload as is), then linear PCM."""
        return _FORMATS

    async def warm(self, audio: AudioFormat, *, voice: str | None = None) -> None:
        """Open the socket for ``audio`` now, so the first reply pays no handshake.

        One socket serves every voice (each request names its own), so ``voice`` changes nothing.
        """
        await self._socket(audio, audio)

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> CartesiaStream:
        """A fresh context on the (warm) socket for ``audio``.

        Raises:
            ConfigError: ``audio`` is not one of :meth:`output_formats`.
            ProviderStatusError: The handshake was refused (bad key or version: 4xx).
            ProviderConnectionError: The server could not be reached.
        """
        socket = await self._socket(audio, audio)
        request: dict[str, Any] = {
            "model_id": self.model_id,
            "voice": {"mode": "id", "id": voice or self.voice_id},
            "output_format": proto.output_format(audio.encoding, audio.sample_rate),
            "language": self.language,
            "add_timestamps": self.add_timestamps,
            "max_buffer_delay_ms": self.max_buffer_delay_ms,
        }
        if self.generation_config:
            request["generation_config"] = self.generation_config
        return CartesiaStream(socket, self._reply_id(), request, read_timeout=self.read_timeout)

    async def _dial(self, key: AudioFormat) -> EventSocket:
        ws = await self._connect(proto.websocket_url(self.base_url), heartbeat=self.ping_interval)
        return EventSocket(ws, proto.CartesiaProtocol(provider=self.name))


class CartesiaStream(ReplyStream):
    """One reply's context: a :class:`~voicecore.providers.base.TTSStream`.

    Each ``push_text`` is generated at once (``flush``); the chunk after which a text's audio
    is complete carries ``end_of_text``. Word timings count from the context's first audio.
    """

    def __init__(
        self, socket: EventSocket, context_id: str, request: Mapping[str, Any], *, read_timeout: float
    ) -> None:
        assert isinstance(socket.protocol, proto.CartesiaProtocol)
        self._protocol = socket.protocol
        self._protocol.open_context(context_id, request)
        super().__init__(socket, context_id, read_timeout=read_timeout)

    @property
    def context_id(self) -> str:
        """The context on the socket."""
        return self.key

    async def push_text(self, text: str) -> None:
        """Send a sentence; it is generated at once."""
        if self.closed:
            return
        await self._send_text(*self._protocol.push_text(self.key, text))

    async def end_input(self) -> None:
        """No more text; the stream ends once the audio of every pushed text has arrived."""
        if self._input_ended or self.closed:
            return
        self._input_ended = True
        await self._socket.send(self._protocol.end_input(self.key))
        self._maybe_finish()

    async def aclose(self) -> None:
        """Cancel the context (barge-in): generation stops, late chunks are dropped."""
        if not self._stop():
            return
        await self._send_last(self._protocol.cancel(self.key))
