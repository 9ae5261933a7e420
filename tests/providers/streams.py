"""Helpers the provider tests share: speaking to a TTS stream, reading an STT stream or SDK socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from voicecore.providers.base import AudioChunk, STTStream, TranscriptUpdate, TTSStream


async def speak(stream: TTSStream, *texts: str) -> list[AudioChunk]:
    for text in texts:
        await stream.push_text(text)
    await stream.end_input()
    return [chunk async for chunk in stream]


def by_text(chunks: list[AudioChunk]) -> list[bytes]:
    """The audio between end_of_text marks: one entry per pushed text."""
    spoken, current = [], b""
    for chunk in chunks:
        current += chunk.audio
        if chunk.end_of_text:
            spoken.append(current)
            current = b""
    assert current == b"", "no audio after the last text ended"
    return spoken


class _Closable(Protocol):
    async def aclose(self) -> None: ...


_Stream = TypeVar("_Stream", bound=STTStream)


async def read_while_feeding(
    stt: _Closable,
    stream: _Stream,
    feed: Callable[[_Stream], Awaitable[None]],
    *,
    expect: int = 0,
    finals: int = 0,
) -> list[TranscriptUpdate]:
    """Feed ``stream``, read until ``expect`` updates (or ``finals`` final ones) came, close both."""
    updates: list[TranscriptUpdate] = []
    enough = asyncio.Event()

    async def read() -> None:
        async for update in stream:
            updates.append(update)
            if len(updates) >= expect and sum(u.final for u in updates) >= finals:
                enough.set()

    reader = asyncio.create_task(read())
    try:
        await feed(stream)
        if expect or finals:
            await asyncio.wait_for(enough.wait(), 5)
    finally:
        await stream.aclose()
        try:
            await asyncio.wait_for(reader, 5)
        finally:
            await stt.aclose()
    return updates


async def drain(socket: Any) -> list[dict[str, Any]]:
    """Every raw JSON message on an official SDK's live socket until the server closes it."""
    messages: list[dict[str, Any]] = []
    while True:
        try:
            raw = await socket._websocket.recv()
        except Exception:  # the socket closed
            return messages
        messages.append(json.loads(raw))
