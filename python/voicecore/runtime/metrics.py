"""Per-turn latency: the timeline of each reply, as an event and as Prometheus histograms.

Stages are measured from the end of the caller's speech (the VAD's decision), in loop time:
STT final → LLM first token → first sentence → TTS first byte → first audio sent → first
audio played (playback truth: the first mark echoed). Barge-in-to-silence is the time from
the barge-in decision to the transport's ``clear`` having been sent. Provider usage and its
estimated cost (:mod:`voicecore.usage`) are counted when a call closes.

Audio that comes too late (:mod:`voicecore.sansio.frame_timing`): caller frames more than
100 ms behind their media clock, and gaps in a reply's audio (underruns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram

from voicecore.errors import ProviderError
from voicecore.events import TurnTimings
from voicecore.sansio.turn import MACHINE_VERDICTS
from voicecore.usage import CallUsage

__all__ = [
    "AGENT_UNDERRUNS",
    "AGENT_UNDERRUN_SECONDS",
    "BARGE_INS",
    "BARGE_IN_TO_SILENCE",
    "CALLER_FRAMES_RECEIVED",
    "CALLER_FRAME_LATENESS",
    "CALLS",
    "CALL_COST",
    "COST",
    "LLM_TOKENS",
    "PROVIDER_ERRORS",
    "STT_FAILOVERS",
    "STT_GAP",
    "STT_SECONDS",
    "TTS_CHARACTERS",
    "TURN_STAGE",
    "TurnClock",
    "count_provider_error",
    "count_stt_gap",
    "count_usage",
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
OUTBOUND_ANSWERS = Counter(
    "voicecore_outbound_answers",
    "Outbound calls answered, by answering-machine detection's verdict (Twilio's AnsweredBy; "
    "none: detection not asked for; other: a verdict Twilio did not document).",
    ["answered_by"],
)
#: The verdicts ``voicecore_outbound_answers`` names; any other value counts as ``other``.
ANSWERED_BY_LABELS = frozenset({"human", "unknown", "none", *MACHINE_VERDICTS})


def count_outbound_answer(answered_by: str | None) -> None:
    """Count an answered outbound call by its verdict (a bounded set of labels)."""
    label = answered_by or "none"
    OUTBOUND_ANSWERS.labels(answered_by=label if label in ANSWERED_BY_LABELS else "other").inc()


CALLER_FRAME_LATENESS = Histogram(
    "voicecore_caller_frame_lateness_seconds",
    "Caller audio frames that arrived more than 100 ms behind their media clock, by lateness.",
    buckets=(0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0),
)
AGENT_UNDERRUNS = Counter(
    "voicecore_agent_audio_underruns",
    "Gaps within a reply: agent audio handed to the transport after the audio before it had played.",
)
AGENT_UNDERRUN_SECONDS = Counter(
    "voicecore_agent_audio_underrun_seconds", "Seconds of silence the caller heard in those gaps."
)
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

STT_SECONDS = Counter(
    "voicecore_stt_seconds", "Seconds of caller audio sent to speech recognition.", ["provider"]
)
LLM_TOKENS = Counter(
    "voicecore_llm_tokens",
    "Tokens LLMs reported: kind input (prompt, not cached), cached_input (prompt from cache), output.",
    ["provider", "kind"],
)
TTS_CHARACTERS = Counter(
    "voicecore_tts_characters", "Characters of text sent to speech synthesis.", ["provider"]
)
COST = Counter(
    "voicecore_cost_usd", "Estimated provider cost in US dollars, by the agent's prices.", ["provider"]
)
CALL_COST = Histogram(
    "voicecore_call_cost_usd",
    "Estimated cost of each call in US dollars (calls of agents with a price table).",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)


def count_usage(usage: CallUsage, *, priced: bool) -> None:
    """Add a closed call's ``usage`` to the counters; ``priced``: the agent has a price table."""
    for entry in usage.providers:
        name = entry.provider
        if entry.stt_seconds:
            STT_SECONDS.labels(provider=name).inc(entry.stt_seconds)
        for kind, tokens in (
            ("input", entry.prompt_tokens - entry.cached_tokens),
            ("cached_input", entry.cached_tokens),
            ("output", entry.completion_tokens),
        ):
            if tokens:
                LLM_TOKENS.labels(provider=name, kind=kind).inc(tokens)
        if entry.tts_characters:
            TTS_CHARACTERS.labels(provider=name).inc(entry.tts_characters)
        if entry.cost_usd:
            COST.labels(provider=name).inc(entry.cost_usd)
    if priced:
        CALL_COST.observe(usage.cost_usd)


STT_GAP = Counter(
    "voicecore_stt_gap_seconds",
    "Seconds of caller audio lost when a speech-to-text stream was replaced: older than its "
    "replay buffer and never transcribed, by the provider that lost it.",
    ["provider"],
)
STT_FAILOVERS = Counter(
    "voicecore_stt_failovers",
    "Times a call's speech-to-text moved off a provider mid-call, by provider and why.",
    ["provider", "reason"],
)


def count_stt_gap(provider: str, seconds: float) -> None:
    """Count ``seconds`` of caller audio that ``provider`` lost for good (none: nothing)."""
    if seconds > 0:
        STT_GAP.labels(provider=provider).inc(seconds)


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
