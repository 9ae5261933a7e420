"""Smoke test of the intent router benchmark (the numbers themselves live in its output)."""

from __future__ import annotations

from benches.intent_router import PARAPHRASES, accuracy, front_desk_intents, latency, misses
from voicecore.intents import IntentRouter


def test_the_paraphrases_are_not_the_examples() -> None:
    examples = {example for intent in front_desk_intents() for example in intent.examples}
    assert not {text for text, _ in PARAPHRASES} & examples
    names = {intent.name for intent in front_desk_intents()}
    assert {name for _, name in PARAPHRASES} == names | {None}


def test_accuracy_and_latency_are_measured() -> None:
    router = IntentRouter(front_desk_intents())
    scores = accuracy(router)
    assert set(scores) == {"accuracy", "recall", "wrong", "false_accepts"}
    assert all(0 <= value <= 1 for value in scores.values())
    assert len(misses(router)) == round((1 - scores["accuracy"]) * len(PARAPHRASES))
    timing = latency(front_desk_intents(), 0.65, rounds=1)
    assert all(value > 0 for value in timing.values())
