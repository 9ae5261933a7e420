"""Per-turn latency: the timeline of each reply, as an event and as Prometheus histograms.

Stages are measured from the end of the caller's speech (the VAD's decision), in loop time:
STT final → LLM first token → first sentence → TTS first byte → first audio sent → first
audio played (playback truth: the first mark echoed). Barge-in-to-silence is the time from
the barge-in decision to the transport's ``clear`` having been sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram

from voicecore.errors import ProviderError
from voicecore.events import TurnTimings

__all__ = [
    "BARGE_INS",
    "BARGE_IN_TO_SILENCE",
    "CALLER_FRAMES_RECEIVED",
    "CALLS",
    "PROVIDER_ERRORS",
    "TURN_STAGE",
    "TurnClock",
    "count_provider_error",
]

_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

TURN_STAGE = Histogram(
    "voicecore_turn_stage_seconds",
    "Seconds from the end of the caller's speech to each stage of the agent's reply.",
    ["stage"],
    buckets=_BUCKETS,
)
BARGE_IN_TO_SILENCE = Histogram(
    "voicecore_barge_in_to_silence_seconds",
    "Seconds from a barge-in decision to the clear of queued agent audio being sent.",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
)
CALLS = Counter("voicecore_calls", "Calls handled.")
CALLER_FRAMES_RECEIVED = Counter(
    "voicecore_caller_frames_received",
    "Caller media frames decoded, counted when each call ends (a load test compares them with the "
    "frames it sent; counting once per call, not per frame, keeps the per-frame path cheap).",
)
BARGE_INS = Counter("voicecore_barge_ins", "Times a caller interrupted the agent (queued audio cleared).")
PROVIDER_ERRORS = Counter(
    "voicecore_provider_errors",
    "Provider failures seen by sessions, by provider and whether a retry could help.",
    ["provider", "retryable"],
)


def count_provider_error(error: ProviderError) -> None:
    """Count ``error`` in :data:`PROVIDER_ERRORS`."""
    PROVIDER_ERRORS.labels(provider=error.provider, retryable=str(error.retryable).lower()).inc()


@dataclass(slots=True)
class TurnClock:
    """Collects the stage times of one turn; the first time each stage is reached counts."""

    call_id: str
    turn: int
    speech_end: float
    stages: dict[str, float] = field(default_factory=dict)

    def reached(self, stage: str, now: float) -> None:
        """Note ``stage`` at ``now`` unless it was already reached."""
        if stage not in TurnTimings.STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {TurnTimings.STAGES}")
        self.stages.setdefault(stage, now - self.speech_end)

    def timings(self, now: float) -> TurnTimings:
        """The turn's timeline as an event; also records it in the histograms."""
        for stage, seconds in self.stages.items():
            TURN_STAGE.labels(stage=stage).observe(seconds)
        return TurnTimings(call_id=self.call_id, at=now, turn=self.turn, **self.stages)
