"""Accuracy and latency of the intent router on paraphrases of the front-desk agent's intents.

The paraphrases below were written for this benchmark, not copied from the agent file's
examples (``python/voicecore/agents/front_desk.toml``); about a fifth are out of domain
(the right answer is "no intent": the LLM, or the "I can help with ..." list).

* **accuracy**: share of texts given the right intent (or rightly none);
* **recall**: in-domain texts matched to their intent; **wrong intent**: in-domain texts
  matched to another intent; **false accepts**: out-of-domain texts matched to an intent;
* **latency**: wall time of ``IntentRouter.match`` and of a whole
  ``IntentRouterLLM.complete`` + reading the answer, per text (median and p99 over
  repeated runs), on this machine.

Run ``python -m benches.intent_router`` (``--thresholds 0.6 0.7 0.8`` sweeps the threshold).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence

from voicecore.agent import load_agent
from voicecore.agents import FRONT_DESK
from voicecore.intents import Intent, IntentRouter
from voicecore.providers.router import IntentRouterLLM

PARAPHRASES: tuple[tuple[str, str | None], ...] = (
    ("When do you open?", "opening_hours"),
    ("What are your hours today?", "opening_hours"),
    ("How late are you open tonight?", "opening_hours"),
    ("Are you open on Mondays?", "opening_hours"),
    ("What time do you close on Saturday?", "opening_hours"),
    ("Is the restaurant open now?", "opening_hours"),
    ("Until what time are you open?", "opening_hours"),
    ("Hi, what are your opening times?", "opening_hours"),
    ("Where exactly are you?", "location"),
    ("What's the address of the restaurant?", "location"),
    ("How do I find you?", "location"),
    ("Where are you located please?", "location"),
    ("Is there somewhere to park?", "location"),
    ("Can you tell me your address?", "location"),
    ("I'd like to book a table for four at eight.", "book_table"),
    ("Could I reserve a table for two people tonight?", "book_table"),
    ("I want to make a booking.", "book_table"),
    ("Table for six at seven thirty please.", "book_table"),
    ("Can I get a reservation for three at 7 pm?", "book_table"),
    ("We'd like a table for two.", "book_table"),
    ("Do you have a free table tonight?", "book_table"),
    ("Book me a table please.", "book_table"),
    ("Do you have anything vegetarian?", "vegetarian"),
    ("Is there a vegan option?", "vegetarian"),
    ("What's on your menu?", "vegetarian"),
    ("Do you do gluten free?", "vegetarian"),
    ("Can you tell me about the menu?", "vegetarian"),
    ("Can I talk to a real person?", "human"),
    ("I'd like to speak to the manager.", "human"),
    ("Put me through to someone please.", "human"),
    ("Let me speak to a human.", "human"),
    ("Transfer me to a person.", "human"),
    ("Can I speak with someone?", "human"),
    ("Thanks, bye!", "goodbye"),
    ("That's all, thank you.", "goodbye"),
    ("No, that's everything, goodbye.", "goodbye"),
    ("Okay thank you very much, bye bye.", "goodbye"),
    ("Do you deliver?", None),
    ("What's the weather like?", None),
    ("Can I pay by card?", None),
    ("Do you have a dress code?", None),
    ("I left my umbrella there yesterday.", None),
    ("Are dogs allowed?", None),
    ("How much is a pizza?", None),
    ("Do you sell gift cards?", None),
    ("Is the chef Italian?", None),
    ("Can I bring my own wine?", None),
)


def front_desk_intents() -> tuple[Intent, ...]:
    """The demo agent's intents."""
    return load_agent(FRONT_DESK).intents


def accuracy(router: IntentRouter) -> dict[str, float]:
    """Accuracy, recall, wrong-intent and false-accept rates on ``PARAPHRASES``."""
    right = recalled = wrong = false_accepts = 0
    in_domain = sum(1 for _, expected in PARAPHRASES if expected is not None)
    for text, expected in PARAPHRASES:
        match = router.match(text)
        got = match.intent.name if match else None
        right += got == expected
        if expected is None:
            false_accepts += got is not None
        elif got == expected:
            recalled += 1
        elif got is not None:
            wrong += 1
    return {
        "accuracy": right / len(PARAPHRASES),
        "recall": recalled / in_domain,
        "wrong": wrong / in_domain,
        "false_accepts": false_accepts / (len(PARAPHRASES) - in_domain),
    }


def misses(router: IntentRouter) -> list[str]:
    """The paraphrases the router gets wrong, with what it said."""
    out = []
    for text, expected in PARAPHRASES:
        match = router.match(text)
        got = match.intent.name if match else None
        if got != expected:
            score = f" ({match.score:.2f})" if match else ""
            out.append(f"{text!r}: expected {expected}, got {got}{score}")
    return out


def latency(intents: Sequence[Intent], threshold: float, rounds: int) -> dict[str, float]:
    """Median and p99 microseconds of ``match`` and of a whole routed completion."""
    router = IntentRouter(intents, threshold=threshold)
    llm = IntentRouterLLM(router)
    match_times: list[float] = []
    complete_times: list[float] = []

    async def complete(text: str) -> None:
        stream = await llm.complete([{"role": "user", "content": text}])
        async for _ in stream:
            pass

    loop = asyncio.new_event_loop()
    try:
        for _ in range(rounds):
            for text, _expected in PARAPHRASES:
                started = time.perf_counter()
                router.match(text)
                match_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                loop.run_until_complete(complete(text))
                complete_times.append(time.perf_counter() - started)
    finally:
        loop.close()

    def p99(values: list[float]) -> float:
        return sorted(values)[int(0.99 * (len(values) - 1))]

    return {
        "match_median_us": statistics.median(match_times) * 1e6,
        "match_p99_us": p99(match_times) * 1e6,
        "complete_median_us": statistics.median(complete_times) * 1e6,
        "complete_p99_us": p99(complete_times) * 1e6,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print the accuracy table (per threshold), the misses and the latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=float, nargs="*", default=None)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    intents = front_desk_intents()
    default = load_agent(FRONT_DESK).intent_threshold
    thresholds = args.thresholds or [default]
    print(f"{len(PARAPHRASES)} paraphrases, {len(intents)} intents\n")
    print("| threshold | accuracy | recall | wrong intent | false accepts |")
    print("|---|---|---|---|---|")
    for threshold in thresholds:
        scores = accuracy(IntentRouter(intents, threshold=threshold))
        print(
            f"| {threshold:.2f} | {scores['accuracy']:.1%} | {scores['recall']:.1%} | "
            f"{scores['wrong']:.1%} | {scores['false_accepts']:.1%} |"
        )
    print(f"\nmisses at {default}:")
    for line in misses(IntentRouter(intents, threshold=default)):
        print("  " + line)
    timing = latency(intents, default, args.rounds)
    print(
        f"\nlatency per text: match median {timing['match_median_us']:.0f} µs, "
        f"p99 {timing['match_p99_us']:.0f} µs; routed completion median "
        f"{timing['complete_median_us']:.0f} µs, p99 {timing['complete_p99_us']:.0f} µs"
    )


if __name__ == "__main__":
    main()
