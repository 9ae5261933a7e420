"""Smallest AI Lightning text-to-speech over its WebSocket (``/waves/v1/tts/live``).

:class:`SmallestTTS` keeps one socket per output format, opened by :meth:`SmallestTTS.warm`
when a call starts (or by the first reply), sends each pushed sentence as its own request
and keeps the socket from idling out. Lightning has no cancel message, so a barge-in drops
the reply's late audio, and if some of its requests are still being generated it swaps the
socket for a fresh one in the background: closing the old one stops that work, and the next
reply neither waits behind it nor pays a handshake. The protocol lives in
:mod:`voicecore.sansio.smallest`; this module pumps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from voicecore.errors import ConfigError, ProviderError
from voicecore.providers._wstts import EventSocket, ReplyStream, SocketTTS
from voicecore.providers.base import MULAW_8K, PCM16_16K, AudioFormat
from voicecore.sansio import smallest as proto

__all__ = ["DEFAULT_SMALLEST_VOICE", "SMALLEST_URL", "SmallestStream", "SmallestTTS"]


SMALLEST_URL = "wss://api.smallest.ai"
# An English voice of the base queue, whose voices send word timestamps (the SDK names meher,
# devansh, kartik, maithili, liam and avery); others send none.
DEFAULT_SMALLEST_VOICE = "avery"
_FORMATS = (
    MULAW_8K,
    PCM16_16K,
    AudioFormat("pcm16", 24000),
    AudioFormat("pcm16", 8000),
    AudioFormat("pcm16", 44100),
)


class SmallestTTS(SocketTTS[tuple[str, AudioFormat]]):
    """A :class:`~voicecore.providers.base.TTS` for Smallest AI Lightning, one request per sentence.

    Args:
        voice_id: The default voice (``open(voice=...)`` picks another).
        api_key: Sent as ``Authorization: Bearer``.
        model: ``lightning_v3.1`` or ``lightning_v3.1_pro``.
        language: ``en``, ``hi``, ``auto``, ...
        base_url: ``wss://api.smallest.ai`` (``wss://api.us.smallest.ai`` in the US) or a fake's root.
        speed: Speaking speed, 0.5 to 2.0 (None: the server's).
        word_timestamps: Ask for word times (voices without them send none).
        complete_backoff_ms: How long the server waits after a request's last audio before
            ``complete``, which ends the sentence; 0 ends it at once.
        params: More request fields (``number_pronunciation_language``, ...).
        idle_timeout: The server's idle timeout in seconds (``?timeout=``; None: 60).
        keepalive_interval: Seconds between keep-alives while idle (below the idle timeout).
        read_timeout: Seconds a reply may owe audio without any arriving before the stream
            raises :class:`~voicecore.errors.ProviderTimeoutError`.
        connect_timeout: Seconds for the WebSocket handshake.
        name: The provider's name in errors and logs.
    """

    def __init__(
        self,
        *,
        voice_id: str = DEFAULT_SMALLEST_VOICE,
        api_key: str | None = None,
        model: str = "lightning_v3.1",
        language: str = "en",
        base_url: str = SMALLEST_URL,
        speed: float | None = None,
        word_timestamps: bool = True,
        complete_backoff_ms: int = 0,
        params: dict[str, Any] | None = None,
        idle_timeout: int | None = None,
        keepalive_interval: float = 20.0,
        read_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        name: str = "smallest",
    ) -> None:
        if keepalive_interval <= 0 or keepalive_interval >= (idle_timeout or 60):
            raise ConfigError(
                "keepalive_interval must be positive and below the idle timeout (60 s by default)"
            )
        if not 0 <= complete_backoff_ms <= 10000:
            raise ConfigError("complete_backoff_ms must be within 0..10000")
        super().__init__(headers=proto.auth_headers(api_key), name=name, connect_timeout=connect_timeout)
        self.voice_id = voice_id
        self.base_url = base_url
        self.keepalive_interval = keepalive_interval
        self.read_timeout = read_timeout
        self._fields: dict[str, Any] = {
            "model": model,
            "language": language,
            "word_timestamps": word_timestamps,
            "complete_backoff_ms": complete_backoff_ms,
            **({"speed": speed} if speed is not None else {}),
            **(params or {}),
        }
        self._url = proto.tts_url(base_url, timeout=idle_timeout)
        self._opening: dict[tuple[str, AudioFormat], asyncio.Task[EventSocket]] = {}

    def output_formats(self) -> Sequence[AudioFormat]:
        """μ-law 8 kHz first (Twilio's payload as is), then linear PCM."""
        return _FORMATS

    async def warm(self, audio: AudioFormat, *, voice: str | None = None) -> None:
        """Open the socket for ``audio`` now, so the first reply pays no handshake."""
        await self._socket(audio, (voice or self.voice_id, audio))

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> SmallestStream:
        """A new reply on the (warm) socket for ``audio`` and ``voice``.

        Raises:
            ConfigError: ``audio`` is not one of :meth:`output_formats`.
            ProviderStatusError: The handshake was refused (bad key: 401).
            ProviderConnectionError: The server could not be reached.
        """
        key = (voice or self.voice_id, audio)
        socket = await self._socket(audio, key)
        return SmallestStream(self, key, socket, self._reply_id(), read_timeout=self.read_timeout)

    async def _reopen(self, key: tuple[str, AudioFormat]) -> EventSocket:
        """The successor opened after a barge-in (see :meth:`_replace`), else a new socket."""
        if (opening := self._opening.pop(key, None)) is not None:
            with contextlib.suppress(ProviderError):  # it failed: dial again below
                socket = await opening
                if socket.alive:
                    return socket
        return await self._dial(key)

    async def _dial(self, key: tuple[str, AudioFormat]) -> EventSocket:
        voice, audio = key
        ws = await self._connect(self._url)
        request = {
            "voice_id": voice,
            **self._fields,
            "sample_rate": audio.sample_rate,
            "output_format": proto.output_format(audio.encoding, audio.sample_rate),
        }
        protocol = proto.LightningProtocol(
            request=request, bytes_per_ms=audio.bytes_per_second / 1000, provider=self.name
        )
        return EventSocket(ws, protocol, keepalive=(self.keepalive_interval, protocol.keep_alive))

    async def _replace(self, key: tuple[str, AudioFormat], socket: EventSocket) -> None:
        """Close ``socket`` (the server stops generating for it) and open its successor in the background."""
        async with self._lock:
            if self._sockets.get(key) is not socket or any(
                not stream.closed for stream in socket.receivers.values()
            ):  # another reply still needs it
                return
            del self._sockets[key]
            self._opening[key] = asyncio.get_running_loop().create_task(
                self._dial(key), name=f"{self.name}-redial"
            )
        await socket.close()

    async def aclose(self) -> None:
        """Close every socket (successors being opened too) and the client session; safe to call twice."""
        opening, self._opening = list(self._opening.values()), {}
        for task in opening:
            with contextlib.suppress(ProviderError):
                await (await task).close()
        await super().aclose()


class SmallestStream(ReplyStream):
    """One reply: a :class:`~voicecore.providers.base.TTSStream`.

    Each ``push_text`` is one request; its audio ends at its ``complete``, where the stream
    marks ``end_of_text``. Word timings count from the reply's first audio.
    """

    def __init__(
        self,
        tts: SmallestTTS,
        socket_key: tuple[str, AudioFormat],
        socket: EventSocket,
        key: str,
        *,
        read_timeout: float,
    ) -> None:
        assert isinstance(socket.protocol, proto.LightningProtocol)
        self._tts = tts
        self._socket_key = socket_key
        self._protocol = socket.protocol
        self._protocol.open_reply(key)
        super().__init__(socket, key, read_timeout=read_timeout)

    async def push_text(self, text: str) -> None:
        """Send a sentence as its own request."""
        if self.closed:
            return
        await self._send_text(*self._protocol.push_text(self.key, text))

    async def aclose(self) -> None:
        """Stop (barge-in): late audio is dropped.

        Lightning has no cancel message, so while requests of the reply are still generating
        the socket is replaced (see :class:`SmallestTTS`).
        """
        if not self._stop():
            return
        if self._protocol.drop(self.key) and self._socket.alive:
            await self._tts._replace(self._socket_key, self._socket)
