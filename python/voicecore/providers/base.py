"""The provider interfaces: typed protocols of async streams with explicit ``aclose()``.

A provider says which audio it accepts or produces (:class:`AudioFormat`) so the runtime
converts at most once, in Rust. Streams end when their iterator ends; ``aclose()`` stops one
early (barge-in) and is safe to call twice. Failures raise
:class:`~voicecore.errors.ProviderError`, whose ``retryable`` flag is all the runtime looks
at to decide between retrying, failing over and the fallback phrase.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from voicecore.errors import ConfigError
from voicecore.tools import ToolCall

__all__ = [
    "LLM",
    "STT",
    "TTS",
    "AudioChunk",
    "AudioFormat",
    "LLMStream",
    "RealtimeConnection",
    "RealtimeModel",
    "STTStream",
    "TTSStream",
    "TextDelta",
    "ToolCall",
    "TranscriptUpdate",
    "Usage",
    "WarmLLM",
    "WarmTTS",
    "WordTiming",
]

Encoding = Literal["pcm16", "mulaw", "alaw"]
_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """Mono audio as it crosses a provider or transport boundary."""

    encoding: Encoding
    sample_rate: int

    def __post_init__(self) -> None:
        if self.encoding not in ("pcm16", "mulaw", "alaw"):
            raise ConfigError(f"encoding must be 'pcm16', 'mulaw' or 'alaw', not {self.encoding!r}")
        if self.sample_rate not in _RATES:
            raise ConfigError(f"sample_rate must be one of {_RATES}, not {self.sample_rate}")
        if self.encoding != "pcm16" and self.sample_rate != 8000:
            raise ConfigError(f"G.711 ({self.encoding}) is 8000 Hz only, not {self.sample_rate}")

    @property
    def bytes_per_second(self) -> int:
        """Bytes of audio per second in this format."""
        return self.sample_rate * (2 if self.encoding == "pcm16" else 1)


PCM16_16K = AudioFormat("pcm16", 16000)
MULAW_8K = AudioFormat("mulaw", 8000)


# --- speech to text ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptUpdate:
    """Caller text from an STT stream.

    Attributes:
        text: The words; an interim result is replaced by the next, a final one is kept.
        final: Whether this text is settled.
        end_of_turn: The provider's own endpointing says the caller finished their turn.
        confidence: The provider's confidence, when it sends one.
        eager: An interim that the provider thinks probably ends the turn (Deepgram Flux
            ``EagerEndOfTurn``): the runtime may start a speculative reply on it.
        audio_end: For a final text, where it ends in seconds since the stream's first audio
            byte, when the provider says: the audio before it is transcribed for good (a
            failover replays only what comes after).
    """

    text: str
    final: bool
    end_of_turn: bool = False
    confidence: float | None = None
    eager: bool = False
    audio_end: float | None = None


@runtime_checkable
class STTStream(Protocol):
    """One streaming recognition session (one call)."""

    async def push_audio(self, audio: bytes) -> None:
        """Send caller audio in the format the stream was opened with."""
        ...

    async def finalize(self) -> None:
        """Ask for the final text of the audio sent so far (the VAD heard the end of speech)."""
        ...

    def __aiter__(self) -> AsyncIterator[TranscriptUpdate]:
        """Transcript updates until the stream closes."""
        ...

    async def aclose(self) -> None:
        """Close the stream; safe to call more than once."""
        ...


@runtime_checkable
class STT(Protocol):
    """A speech-to-text provider."""

    @property
    def name(self) -> str:
        """The provider's name (for logs, metrics and errors)."""
        ...

    def input_formats(self) -> Sequence[AudioFormat]:
        """Formats it accepts, best first (μ-law 8 kHz first means telephony needs no conversion)."""
        ...

    async def open(self, audio: AudioFormat, *, language: str) -> STTStream:
        """Open a stream for audio in ``audio`` (one of ``input_formats()``)."""
        ...


# --- language model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply text."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for the request, when the provider reports them.

    ``prompt_tokens`` counts every input token; ``cached_tokens`` the part read from the
    provider's prompt cache and ``cache_write_tokens`` the part written to it (Anthropic bills
    both differently; OpenAI caches without writes to report).
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0


LLMChunk = TextDelta | ToolCall | Usage


@runtime_checkable
class LLMStream(Protocol):
    """One streamed completion; closing it cancels the request."""

    request_id: str | None

    def __aiter__(self) -> AsyncIterator[LLMChunk]:
        """Text deltas as they arrive, then whole tool calls, then usage."""
        ...

    async def aclose(self) -> None:
        """Stop the completion (closes the HTTP stream); safe to call more than once."""
        ...


@runtime_checkable
class LLM(Protocol):
    """A chat-completion provider."""

    @property
    def name(self) -> str:
        """The provider's name (for logs, metrics and errors)."""
        ...

    async def complete(
        self, messages: Sequence[dict[str, Any]], *, tools: Sequence[dict[str, Any]] = ()
    ) -> LLMStream:
        """Start a streamed completion of ``messages`` (OpenAI chat shape) with ``tools``."""
        ...


@runtime_checkable
class WarmLLM(Protocol):
    """An LLM that can open its connection ahead of the first request (the session does so at call start)."""

    async def warm(self) -> None:
        """Open a pooled connection now, so the first turn pays no handshake.

        Raises:
            ProviderError: The server cannot be reached or refused the key (the session logs it
                and the turn fails over or falls back as it would have).
        """
        ...


# --- text to speech ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WordTiming:
    """When a word ends, in ms from the start of the stream's audio."""

    text: str
    end_ms: float


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Synthesized audio in the stream's format.

    Attributes:
        audio: The samples (may be empty on a chunk that only ends a text).
        words: Word timings, when the provider sends them.
        end_of_text: The audio for one ``push_text`` call ends with this chunk (the runtime
            sends a playback mark here, so it knows which sentence the caller heard).
    """

    audio: bytes
    words: tuple[WordTiming, ...] = field(default=())
    end_of_text: bool = False


@runtime_checkable
class TTSStream(Protocol):
    """One reply's synthesis: text in sentence by sentence, audio out as it is made."""

    async def push_text(self, text: str) -> None:
        """Add text (a sentence, already made speakable)."""
        ...

    async def end_input(self) -> None:
        """No more text: the stream ends once the audio for what was pushed is out."""
        ...

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        """Audio chunks until all pushed text is spoken."""
        ...

    async def aclose(self) -> None:
        """Stop at once (barge-in); safe to call more than once."""
        ...


@runtime_checkable
class TTS(Protocol):
    """A text-to-speech provider."""

    @property
    def name(self) -> str:
        """The provider's name (for logs, metrics and errors)."""
        ...

    def output_formats(self) -> Sequence[AudioFormat]:
        """Formats it can produce, best first."""
        ...

    async def open(self, audio: AudioFormat, *, voice: str | None = None) -> TTSStream:
        """Open a synthesis stream producing ``audio`` (one of ``output_formats()``)."""
        ...


@runtime_checkable
class WarmTTS(Protocol):
    """A TTS that can open its connection ahead of the first reply (the session does so at call start).

    An :meth:`TTS.open` made while :meth:`warm` is still in flight must wait for it and use the
    connection it opens, not open a second one.
    """

    async def warm(self, audio: AudioFormat, *, voice: str | None = None) -> None:
        """Open the connection for ``audio`` and ``voice`` now, so the first reply pays no handshake.

        Raises:
            ProviderError: The server cannot be reached or refused the key.
        """
        ...


# --- speech to speech ---------------------------------------------------------------------------


@runtime_checkable
class RealtimeConnection(Protocol):
    """One configured socket to a speech-to-speech model, for one call."""

    request_id: str | None

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send a client event (dropped if the socket is lost: iterating reports the loss)."""
        ...

    async def send_audio(self, audio: bytes) -> None:
        """Append caller audio, in the session's format."""
        ...

    def __aiter__(self) -> AsyncIterator[Any]:
        """The server's events (:data:`voicecore.sansio.openai_realtime.RealtimeEvent`).

        Raises:
            ProviderError: The socket was lost.
        """
        ...

    async def aclose(self) -> None:
        """Close the socket."""
        ...


@runtime_checkable
class RealtimeModel(Protocol):
    """A speech-to-speech model: it hears the caller and speaks, in place of the STT, LLM and TTS."""

    @property
    def name(self) -> str:
        """The provider's name (for logs, metrics, usage and errors)."""
        ...

    def audio_format(self, transport_format: AudioFormat) -> AudioFormat:
        """The format to exchange with a call whose transport uses ``transport_format``."""
        ...

    def settings(
        self,
        *,
        instructions: str,
        tools: Sequence[Mapping[str, Any]],
        audio_format: AudioFormat,
        language: str | None = None,
        voice: str | None = None,
    ) -> Any:
        """The session settings for one call."""
        ...

    async def connect(self, settings: Any) -> RealtimeConnection:
        """Open a connection configured with ``settings``.

        Raises:
            ProviderError: It could not be opened or the settings were refused.
        """
        ...
