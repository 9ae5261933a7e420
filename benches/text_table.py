"""Print the sentence-splitter correctness, lag and first-chunk tables: voicecore beside its peers.

Run: ``python -m benches.text_table`` (from the repository root; peers that are not installed
are left out). Measured here:

* golden rules: pySBD's 48 English Golden Rules, streamed in random 1-6 character tokens
  (fixed seed per rule), and whole (one push, then flush): how many come out exactly;
* lag: for every sentence returned before the end of its text, characters fed past its last
  character before it came back, fed one character at a time (golden rules and replies);
* first chunk: LLM-sized tokens fed before the first piece came back, and its length, over
  :data:`~benches.text_corpus.REPLIES` and :data:`~benches.text_corpus.OPENERS`, with
  voicecore's first-chunk mode off and on.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from benches.text_corpus import OPENERS, REPLIES, golden_cases, llm_tokens, random_pieces, release_lags
from benches.text_splitters import FACTORIES, Splitter, run, voicecore_splitter

TOKENS_PER_SECOND = 50  # a typical streaming LLM rate, to express tokens as time
FIRST_CLAUSE_CHARS = (20, 40)


def available() -> dict[str, Callable[[], Splitter]]:
    """The factories whose implementation is installed."""
    found = {}
    for name, make in FACTORIES.items():
        try:
            make()
        except ImportError:
            continue
        found[name] = make
    return found


def golden_scores(make: Callable[[], Splitter]) -> tuple[int, int, list[str]]:
    """(streamed passes, whole-text passes, ids missed when streamed) over the golden rules."""
    cases = golden_cases()
    if cases is None:
        raise FileNotFoundError("the pySBD golden rules are not available")
    streamed, whole, misses = 0, 0, []
    for case in cases:
        if run(make(), random_pieces(case.text, f"golden-{case.id}")) == case.sentences:
            streamed += 1
        else:
            misses.append(case.id)
        whole += run(make(), [case.text]) == case.sentences
    return streamed, whole, misses


def release_lag(make: Callable[[], Splitter]) -> tuple[float, float]:
    """(median, 90th percentile) characters past a sentence's end before it was returned."""
    cases = golden_cases() or []
    lags: list[int] = []
    for text in [*(c.text for c in cases), *REPLIES]:
        splitter = make()
        lags += release_lags(splitter.push, splitter.flush, text)[1]
    return float(statistics.median(lags)), float(statistics.quantiles(lags, n=10)[-1])


def first_chunk(make: Callable[[], Splitter]) -> tuple[float, float]:
    """(median tokens fed before the first piece came back, median length of that piece)."""
    tokens_needed, lengths = [], []
    for text in [*REPLIES, *OPENERS]:
        splitter = make()
        tokens = llm_tokens(text)
        fed, out = 0, []
        while not out and fed < len(tokens):
            out = splitter.push(tokens[fed])
            fed += 1
        out = out or splitter.flush()
        tokens_needed.append(fed)
        lengths.append(len(out[0]))
    return float(statistics.median(tokens_needed)), float(statistics.median(lengths))


def rows() -> list[str]:
    """Markdown rows of the correctness/lag table, one per installed implementation."""
    out = []
    have_golden = golden_cases() is not None
    for name, make in available().items():
        median, p90 = release_lag(make)
        streamed, whole, misses = golden_scores(make) if have_golden else (0, 0, [])
        missed = ", ".join(m.removeprefix("golden-en-") for m in misses)
        golden = f"{streamed}/48 | {whole}/48" if have_golden else "n/a | n/a"
        out.append(f"| {name} {make().version} | {golden} | {median:g} | {p90:g} | {missed} |")
    return out


def first_chunk_rows() -> list[str]:
    """Markdown rows of the first-chunk table: peers, voicecore, voicecore in first-chunk mode."""
    contenders: list[tuple[str, Callable[[], Splitter]]] = list(available().items())
    for n in FIRST_CLAUSE_CHARS:
        contenders.append(
            (f"voicecore first_clause_chars={n}", lambda n=n: voicecore_splitter(first_clause_chars=n))
        )
    out = []
    for name, make in contenders:
        tokens, length = first_chunk(make)
        ms = tokens * 1000 / TOKENS_PER_SECOND
        out.append(f"| {name} | {tokens:g} | {ms:.0f} | {length:g} |")
    return out


def main() -> None:
    """Prints both tables as Markdown."""
    print(
        "| splitter | golden rules, streamed | golden rules, whole text | median lag (chars) "
        "| p90 lag | missed when streamed |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows()))
    print()
    print(
        f"| splitter | tokens before the first chunk (median) | at {TOKENS_PER_SECOND} tokens/s (ms) "
        "| first chunk length (median chars) |"
    )
    print("|---|---|---|---|")
    print("\n".join(first_chunk_rows()))


if __name__ == "__main__":
    main()
