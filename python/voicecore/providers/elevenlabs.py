"""ElevenLabs text-to-speech over the multi-context WebSocket (``multi-stream-input``).

:class:`ElevenLabsTTS` keeps one socket per voice and output format, opened by
:meth:`ElevenLabsTTS.warm` when a call starts (or by the first reply), and gives each reply
its own *context* on it: a barge-in closes that context only, so the next reply pays no
handshake. The protocol lives in :mod:`voicecore.sansio.elevenlabs`; this module pumps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voicecore.errors import ConfigError
from voicecore.providers._wstts import EventSocket, ReplyStream, SocketTTS
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat
from voicecore.sansio import elevenlabs as proto

__all__ = ["ELEVENLABS_URL", "ElevenLabsStream", "ElevenLabsTTS"]

ELEVENLABS_URL = "wss://api.elevenlabs.io"
_FORMATS = (MULAW_8K, PCM16_16K, AudioFormat("pcm16", 24000), AudioFormat("pcm16", 8000))


class ElevenLabsTTS(SocketTTS[tuple[str, AudioFormat]]):
    """A :class:`~voicecore.providers.base.TTS` for ElevenLabs, one context per reply.

    Args:
        voice_id: The default voice (``open(voice=...)`` picks another).
        api_key: Sent as ``xi-api-key``.
        model_id: ``eleven_flash_v2_5`` (lowest latency), ``eleven_turbo_v2_5``, ...
        base_url: ``wss://api.elevenlabs.io`` or a fake server's root.
        voice_settings: ``stability``, ``similarity_boost``, ``speed``, ... for every context.
        generation_config: E.g. ``{"chunk_length_schedule": [50, 120, 160, 250]}``.
        params: More query parameters (``language_code``, ``inactivity_timeout``, ...).
        keepalive_interval: Seconds between keep-alives (the server's inactivity timeout is
            20 s unless ``inactivity_timeout`` says otherwise).
        read_timeout: Seconds a context may owe audio without sending any before the
            stream raises :class:`~voicecore.errors.ProviderTimeoutError`.
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    def __init__(
        self,
        *,
        voice_id: str,
        api_key: str | None = None,
        model_id: str = "eleven_flash_v2_5",
        base_url: str = ELEVENLABS_URL,
        voice_settings: Mapping[str, Any] | None = None,
        generation_config: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        keepalive_interval: float = 10.0,
        read_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        name: str = "elevenlabs",
    ) -> None:
        if keepalive_interval <= 0:
            raise ConfigError("keepalive_interval must be positive")
        super().__init__(headers=proto.auth_headers(api_key), name=name, connect_timeout=connect_timeout)
        self.voice_id = voice_id
        self.model_id = model_id
        self.base_url = base_url
        self.voice_settings = dict(voice_settings or {})
        self.generation_config = dict(generation_config or {})
        self.params = dict(params or {})
        self.keepalive_interval = keepalive_interval
        self.read_timeout = read_timeout

    def output_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (Twilio's payload as is), then linear PCM."""
        return _FORMATS

    async def warm(self, audio: AudioFormat, *, voice: str | None = None) -> None:
        """Open the socket for ``audio`` and ``voice`` now, so the first reply pays no handshake."""
        await self._socket(audio, (voice or self.voice_id, audio))

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> ElevenLabsStream:
        """A new context on the (warm) socket for ``audio`` and ``voice``.

        Raises:
            ConfigError: ``audio`` is not one of :meth:`output_formats`.
            ProviderStatusError: The handshake was refused.
            ProviderConnectionError: The server could not be reached.
        """
        socket = await self._socket(audio, (voice or self.voice_id, audio))
        assert isinstance(socket.protocol, proto.MultiContextProtocol)
        context_id = self._reply_id()
        init = socket.protocol.open_context(
            context_id, voice_settings=self.voice_settings, generation_config=self.generation_config
        )
        stream = ElevenLabsStream(socket, context_id, read_timeout=self.read_timeout)
        await socket.send(init)
        return stream

    async def _dial(self, key: tuple[str, AudioFormat]) -> EventSocket:
        voice, audio = key
        url = proto.multi_stream_url(
            self.base_url,
            voice,
            model_id=self.model_id,
            output_format=proto.output_format_name(audio.encoding, audio.sample_rate),
            extra=self.params,
        )
        ws = await self._connect(url)
        protocol = proto.MultiContextProtocol(bytes_per_ms=audio.bytes_per_second / 1000, provider=self.name)
        return EventSocket(ws, protocol, keepalive=(self.keepalive_interval, protocol.keep_alives))

    def _last_message(self, socket: EventSocket) -> str | None:
        """``close_socket``: the server finishes and closes."""
        assert isinstance(socket.protocol, proto.MultiContextProtocol)
        return socket.protocol.close_socket()


class ElevenLabsStream(ReplyStream):
    """One reply's context: a :class:`~voicecore.providers.base.TTSStream`.

    Each ``push_text`` is sent with ``flush`` (the runtime pushes whole sentences); after the
    chunk that completes a text's audio comes an ``end_of_text`` mark. Word timings count
    from the context's first audio.
    """

    def __init__(self, socket: EventSocket, context_id: str, *, read_timeout: float) -> None:
        assert isinstance(socket.protocol, proto.MultiContextProtocol)
        self._protocol = socket.protocol
        super().__init__(socket, context_id, read_timeout=read_timeout)

    @property
    def context_id(self) -> str:
        """The context on the socket."""
        return self.key

    async def push_text(self, text: str) -> None:
        """Send a sentence; it is synthesized at once."""
        if self.closed:
            return
        message = self._protocol.send_text(self.key, text)
        # Nothing to say: still end the text, so playback marks stay in step.
        await self._send_text(message, 1 if message is None else 0)

    async def aclose(self) -> None:
        """Close the context (``close_context``): generation stops, late audio is dropped."""
        if not self._stop():
            return
        await self._send_last(self._protocol.close_context(self.key))
