"""Deepgram Flux (``/v2/listen``), turn-based live transcription, sans I/O.

Flux decides when the caller's turn ends. The client sends audio as binary frames and JSON
text messages (``CloseStream``; ``Configure`` to change the end-of-turn thresholds mid-call).
The server answers ``Connected``, then ``TurnInfo`` events for the turn in progress:
``StartOfTurn`` (first words), ``Update`` (about every 0.25 s of audio), ``EagerEndOfTurn``
(the turn probably ended: only with ``eager_eot_threshold``), ``TurnResumed`` (it did not),
``EndOfTurn`` (its transcript equals the preceding eager one); each carries the whole turn's
transcript so far. ``ConfigureSuccess`` / ``ConfigureFailure`` answer a ``Configure``;
``Error`` is fatal. After ``CloseStream`` the server closes without a status code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import msgspec

from voicecore.errors import ConfigError, ProviderError, ProviderStreamError
from voicecore.sansio.deepgram import CLOSE_STREAM, close_error
from voicecore.sansio.jsonmsg import json_object
from voicecore.sansio.livestt import PlainAudioProtocol

__all__ = [
    "TURN_EVENTS",
    "ConfigureResult",
    "Connected",
    "FluxEvent",
    "FluxProtocol",
    "FluxWarning",
    "TurnInfo",
    "configure_message",
    "flux_url",
]

ENCODINGS = {"pcm16": "linear16", "mulaw": "mulaw", "alaw": "alaw"}
TURN_EVENTS = ("Update", "StartOfTurn", "EagerEndOfTurn", "TurnResumed", "EndOfTurn")
#: Error codes worth a new connection (the others are the request's own fault).
_RETRYABLE_ERRORS = ("INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT")


@dataclass(frozen=True, slots=True)
class Connected:
    """The stream is open; ``request_id`` names it."""

    request_id: str | None


@dataclass(frozen=True, slots=True)
class TurnInfo:
    """The state of turn ``turn_index``: one of :data:`TURN_EVENTS`, with its text so far.

    Attributes:
        event: ``Update``, ``StartOfTurn``, ``EagerEndOfTurn``, ``TurnResumed`` or ``EndOfTurn``.
        turn_index: The turn (counts up after each ``EndOfTurn``).
        transcript: Everything said in the turn so far.
        start: Start of the transcribed audio window, in seconds of the stream's audio.
        end: End of that window.
        end_of_turn_confidence: How sure Flux is that no more speech comes in this turn.
        confidence: The mean confidence of the transcript's words (None without words).
    """

    event: str
    turn_index: int
    transcript: str
    start: float
    end: float
    end_of_turn_confidence: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class ConfigureResult:
    """The answer to a ``Configure``: the thresholds in force, or why it was refused."""

    ok: bool
    thresholds: Mapping[str, float]
    description: str = ""


@dataclass(frozen=True, slots=True)
class FluxWarning:
    """A non-fatal warning from the server (logged)."""

    code: str
    description: str


FluxEvent = Connected | TurnInfo | ConfigureResult | FluxWarning


def _check_thresholds(
    eot_threshold: float | None, eager_eot_threshold: float | None, eot_timeout_ms: int | None
) -> None:
    if eot_threshold is not None and not 0.5 <= eot_threshold <= 0.9:
        raise ConfigError(f"eot_threshold must be 0.5 to 0.9, not {eot_threshold}")
    if eager_eot_threshold is not None and not 0.3 <= eager_eot_threshold <= 0.9:
        raise ConfigError(f"eager_eot_threshold must be 0.3 to 0.9, not {eager_eot_threshold}")
    if eager_eot_threshold is not None and eot_threshold is not None and eager_eot_threshold > eot_threshold:
        raise ConfigError("eager_eot_threshold must not exceed eot_threshold (eager means earlier)")
    if eot_timeout_ms is not None and eot_timeout_ms <= 0:
        raise ConfigError(f"eot_timeout_ms must be positive, not {eot_timeout_ms}")


def flux_url(
    base_url: str,
    *,
    model: str,
    encoding: str,
    sample_rate: int,
    eot_threshold: float | None = None,
    eager_eot_threshold: float | None = None,
    eot_timeout_ms: int | None = None,
    keyterms: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
) -> str:
    """The ``/v2/listen`` URL with its query, as Deepgram names the parameters.

    Args:
        base_url: ``wss://api.deepgram.com`` or a fake server.
        model: ``flux-general-en`` or ``flux-general-multi``.
        encoding: ``linear16``, ``mulaw`` or ``alaw`` (see ``ENCODINGS``).
        sample_rate: Hz of the audio sent.
        eot_threshold: Confidence for ``EndOfTurn`` (0.5 to 0.9; Deepgram's default 0.7).
        eager_eot_threshold: Confidence for ``EagerEndOfTurn`` (0.3 to 0.9; None: no eager events).
        eot_timeout_ms: Silence that ends a turn whatever the confidence (default 5000).
        keyterms: Words to favour (``keyterm``, repeated).
        extra: More parameters, as Deepgram names them (``tag``, ``mip_opt_out``, ...).

    Raises:
        ConfigError: A threshold out of Deepgram's range.
    """
    _check_thresholds(eot_threshold, eager_eot_threshold, eot_timeout_ms)
    query: list[tuple[str, str]] = [
        ("model", model),
        ("encoding", encoding),
        ("sample_rate", str(sample_rate)),
    ]
    for name, value in (
        ("eot_threshold", eot_threshold),
        ("eager_eot_threshold", eager_eot_threshold),
        ("eot_timeout_ms", eot_timeout_ms),
    ):
        if value is not None:
            query.append((name, str(value)))
    query += [("keyterm", term) for term in keyterms]
    query += list((extra or {}).items())
    return f"{base_url.rstrip('/')}/v2/listen?{urlencode(query)}"


def configure_message(
    *,
    eot_threshold: float | None = None,
    eager_eot_threshold: float | None = None,
    eot_timeout_ms: int | None = None,
    keyterms: Sequence[str] | None = None,
) -> str:
    """A ``Configure`` message: the given thresholds (and key terms) change, the rest stay.

    Raises:
        ConfigError: A threshold out of Deepgram's range.
    """
    _check_thresholds(eot_threshold, eager_eot_threshold, eot_timeout_ms)
    thresholds = {
        name: value
        for name, value in (
            ("eot_threshold", eot_threshold),
            ("eager_eot_threshold", eager_eot_threshold),
            ("eot_timeout_ms", eot_timeout_ms),
        )
        if value is not None
    }
    message: dict[str, Any] = {"type": "Configure"}
    if thresholds:
        message["thresholds"] = thresholds
    if keyterms is not None:
        message["keyterms"] = list(keyterms)
    return msgspec.json.encode(message).decode()


class FluxProtocol(PlainAudioProtocol):
    """One Flux stream's protocol state (a :class:`~voicecore.providers._live.LiveProtocol`).

    Flux needs no keep-alive and has no ``Finalize``: it decides the end of the turn itself,
    and a pause the VAD heard is not one (``ForceEndTurn`` would cut the caller short).
    """

    def __init__(self, *, provider: str = "deepgram-flux") -> None:
        self.provider = provider
        self.request_id: str | None = None
        self.closing = False

    # --- client to server ------------------------------------------------------------------

    def send_finalize(self, now: float) -> str | None:
        """Nothing: Flux ends turns by itself (see the class doc)."""
        del now
        return None

    def send_close_stream(self) -> str:
        """``CloseStream``: the server stops and closes (no final ``EndOfTurn``)."""
        self.closing = True
        return CLOSE_STREAM

    # --- server to client ------------------------------------------------------------------

    def receive_text(self, text: str) -> list[FluxEvent]:
        """Parse one text frame.

        Raises:
            ProtocolError: The frame is not a JSON object.
            ProviderStreamError: The server's fatal ``Error``.
        """
        message = json_object(text, self.provider)
        kind = message.get("type")
        self.request_id = message.get("request_id") or self.request_id
        if kind == "TurnInfo":
            return [self._turn_info(message)]
        if kind == "Connected":
            return [Connected(self.request_id)]
        if kind in ("ConfigureSuccess", "ConfigureFailure"):
            thresholds = message.get("thresholds") or {}
            description = str(message.get("description") or message.get("code") or "")
            return [ConfigureResult(kind == "ConfigureSuccess", dict(thresholds), description)]
        if kind == "Warning":
            return [FluxWarning(str(message.get("code") or ""), str(message.get("description") or ""))]
        if kind == "Error":
            code = str(message.get("code") or "unknown")
            raise ProviderStreamError(
                f"error {code}: {message.get('description') or 'no description'}",
                provider=self.provider,
                retryable=code in _RETRYABLE_ERRORS,
                request_id=self.request_id,
            )
        return []  # a message type newer than this client: skip it, as the SDK does

    def receive_close(self, code: int | None, reason: str) -> ProviderError | None:
        """The socket closed: None if that ended a ``CloseStream``, else the error it means."""
        return close_error(self.provider, code, reason, closing=self.closing, request_id=self.request_id)

    def _turn_info(self, message: Mapping[str, Any]) -> TurnInfo:
        words = [w for w in message.get("words") or () if isinstance(w, dict)]
        scores = [float(w["confidence"]) for w in words if isinstance(w.get("confidence"), int | float)]
        return TurnInfo(
            event=str(message.get("event") or ""),
            turn_index=int(message.get("turn_index") or 0),
            transcript=str(message.get("transcript") or ""),
            start=float(message.get("audio_window_start") or 0.0),
            end=float(message.get("audio_window_end") or 0.0),
            end_of_turn_confidence=float(message.get("end_of_turn_confidence") or 0.0),
            confidence=sum(scores) / len(scores) if scores else None,
        )
