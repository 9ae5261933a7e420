"""Streaming sentence splitters behind one push/flush interface: voicecore and its peers.

* ``voicecore``: :class:`voicecore.text.SentenceSplitter` (Rust), called directly.
* ``pipecat``: Pipecat's ``SimpleTextAggregator`` (pipecat-ai 1.x), the default text
  aggregator of its TTS services: ``aggregate(token)`` is an async generator that appends the
  token character by character and, after terminal punctuation and a non-space character,
  asks ``match_endofsentence`` (the ``sentencex`` segmenter) whether a sentence ended. Its
  coroutines never suspend, so each call is driven with ``coro.send(None)`` (what ``await``
  does inside Pipecat's running task) and checked not to suspend.
* ``pysbd``: re-running ``pysbd.Segmenter(language="en", clean=False)`` on the accumulated
  text after every token and returning every segment but the last (pySBD is not incremental;
  this is how it is used on a stream). ``clean=False`` keeps the text intact, so the returned
  segments are exact slices.

Each factory returns a :class:`Splitter`; the peer ones raise ``ImportError`` when the peer
is not installed (the benchmarks skip then).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from voicecore.text import SentenceSplitter


@dataclass
class Splitter:
    """A streaming splitter: ``push(token) -> sentences``, ``flush() -> rest``."""

    name: str
    version: str
    push: Callable[[str], list[str]]
    flush: Callable[[], list[str]]


def voicecore_splitter(**kwargs: Any) -> Splitter:
    """voicecore's Rust splitter (keyword arguments go to :class:`SentenceSplitter`)."""
    s = SentenceSplitter(**kwargs)
    return Splitter("voicecore", metadata.version("voicecore"), s.push, s.flush)


def _run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs a coroutine that must complete without suspending; returns its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("the coroutine suspended; it cannot be timed without an event loop")


def pipecat_splitter() -> Splitter:
    """Pipecat's ``SimpleTextAggregator`` in sentence mode."""
    from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

    agg = SimpleTextAggregator()

    async def aggregate(token: str) -> list[str]:
        return [a.text async for a in agg.aggregate(token)]

    async def flush() -> list[str]:
        rest = await agg.flush()
        return [rest.text.strip()] if rest is not None and rest.text.strip() else []

    def push(token: str) -> list[str]:
        return [t.strip() for t in _run_sync(aggregate(token)) if t.strip()]

    return Splitter("pipecat", metadata.version("pipecat-ai"), push, lambda: _run_sync(flush()))


def pysbd_splitter() -> Splitter:
    """pySBD re-run on the accumulated text after every token."""
    import pysbd

    seg = pysbd.Segmenter(language="en", clean=False)
    buf = ""

    def push(token: str) -> list[str]:
        nonlocal buf
        buf += token
        parts = seg.segment(buf)
        if len(parts) < 2:
            return []
        done = parts[:-1]
        buf = buf[sum(len(p) for p in done) :]
        return [p.strip() for p in done if p.strip()]

    def flush() -> list[str]:
        nonlocal buf
        rest, buf = buf.strip(), ""
        return [rest] if rest else []

    return Splitter("pysbd", metadata.version("pysbd"), push, flush)


FACTORIES: dict[str, Callable[[], Splitter]] = {
    "voicecore": voicecore_splitter,
    "pipecat": pipecat_splitter,
    "pysbd": pysbd_splitter,
}


def run(splitter: Splitter, tokens: list[str]) -> list[str]:
    """All sentences of a token stream, flush included."""
    out: list[str] = []
    for token in tokens:
        out += splitter.push(token)
    return out + splitter.flush()
