"""Call recording: a transport that writes what both sides heard to a stereo WAV file.

:class:`RecordingTransport` wraps any :class:`~voicecore.transports.base.Transport`: the
caller's audio (left) and the agent's (right) go through
:class:`~voicecore.sansio.recording.StereoTimeline`, which lays the agent's audio out as it
played and cuts it at a barge-in, so the file is the call as the caller heard it. Both tracks
are PCM16 at the caller's sample rate (μ-law decoded, the agent's audio resampled once in
Rust). The file is written in pieces from a worker thread, never on the event loop, and
closed by :meth:`RecordingTransport.aclose`.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from voicecore.providers.base import AudioFormat
from voicecore.runtime.convert import AudioConverter
from voicecore.sansio.call_events import CallerAudio
from voicecore.sansio.recording import StereoTimeline
from voicecore.transports.base import Transport, TransportEvent

__all__ = ["RecordingTransport"]

logger = logging.getLogger(__name__)

#: Seconds of audio gathered before a piece is handed to the writer thread.
WRITE_EVERY_S = 5.0


class RecordingTransport:
    """``transport``, recording the call to ``path`` (a stereo WAV: caller left, agent right).

    Other attributes (``protocol``, ``call_info``, ...) are the wrapped transport's.

    Args:
        transport: The call's transport, started (its formats are known and stay as they are).
        path: The WAV file to write; its folder must exist.
    """

    def __init__(self, transport: Transport, path: str | Path) -> None:
        self.transport = transport
        self.path = Path(path)
        self.input_format: AudioFormat = transport.input_format
        self.output_format: AudioFormat = transport.output_format
        rate = transport.input_format.sample_rate
        self._pcm = AudioFormat("pcm16", rate)
        self._caller = AudioConverter(transport.input_format, self._pcm)
        self._agent = AudioConverter(transport.output_format, self._pcm)
        self._timeline = StereoTimeline(rate)
        self._piece = int(WRITE_EVERY_S * rate)
        self._writer: asyncio.Task[None] | None = None
        file = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed by aclose)
        file.setnchannels(2)
        file.setsampwidth(2)
        file.setframerate(rate)
        self._file: wave.Wave_write | None = file

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    async def events(self) -> AsyncIterator[TransportEvent]:
        """The wrapped transport's events; caller audio is recorded on the way."""
        async for event in self.transport.events():
            if isinstance(event, CallerAudio):
                self._timeline.caller_audio(self._caller.convert(event.audio), event.timestamp_ms)
                if self._timeline.pending >= self._piece:
                    self._write(self._timeline.take())
            yield event

    async def send_audio(self, audio: bytes) -> None:
        """Record agent audio as it will play, then send it."""
        self._timeline.agent_audio(self._agent.convert(audio))
        await self.transport.send_audio(audio)

    async def send_mark(self, name: str) -> None:
        """Send a mark (not recorded)."""
        await self.transport.send_mark(name)

    async def clear(self) -> None:
        """Cut the recorded agent audio that had not played yet, then clear."""
        self._timeline.clear()
        await self.transport.clear()

    async def hang_up(self) -> None:
        """Hang up through the wrapped transport."""
        await self.transport.hang_up()

    async def transfer(self, to: str, summary: str | None) -> None:
        """Transfer through the wrapped transport."""
        await self.transport.transfer(to, summary)

    async def aclose(self) -> None:
        """Write what is left and close the file (the call is over; safe to call twice)."""
        if self._file is None:
            return
        self._write(self._timeline.take())
        if self._writer is not None:
            await self._writer
        file, self._file = self._file, None
        await asyncio.to_thread(file.close)
        logger.info("recorded the call to %s", self.path)

    def _write(self, stereo: bytes) -> None:
        """Hand ``stereo`` to the writer thread, after the pieces before it."""
        if not stereo or self._file is None:
            return
        previous, file = self._writer, self._file

        async def write() -> None:
            if previous is not None:
                await previous
            try:
                await asyncio.to_thread(file.writeframes, stereo)
            except OSError as error:  # a full disk must not end the call
                logger.warning("recording to %s failed: %s", self.path, error)

        self._writer = asyncio.get_running_loop().create_task(write())
