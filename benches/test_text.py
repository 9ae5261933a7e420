"""Streaming sentence splitting: voicecore vs Pipecat's aggregator vs re-running pySBD.

What is timed ("text split stream, N tokens"): one call pushes every token of the same token
stream, one ``push(token)`` each, then ``flush()``es, on one long-lived splitter object. The
stream is the five assistant replies of ``text_corpus.REPLIES`` joined by blank lines
(abbreviations, prices, times, a URL, an e-mail address, a numbered list, markdown), cut into
LLM-sized tokens (a word with its leading space, or a punctuation run: see
``text_corpus.llm_tokens``). The time per call divided by N is the amortised cost per token,
whatever an implementation does on the tokens that end sentences; timing whole streams keeps
the harness's own per-call overhead out of the per-token figure. See
``benches/text_splitters.py`` for how each peer is driven.

Correctness gates before timing, on fresh objects of the timed kind: the stream's sentences
must give back the text (nothing lost or duplicated), and voicecore's must equal its
whole-text split. ``extra_info`` records the pySBD golden-rule score of each implementation
streamed in 1-6 character tokens (``golden_streamed``) and the token count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from voicecore.text import SentenceSplitter

from .text_corpus import REPLIES, golden_cases, llm_tokens
from .text_splitters import FACTORIES, Splitter, run
from .text_table import first_chunk, golden_scores, release_lag

TEXT = "\n\n".join(REPLIES)
TOKENS = llm_tokens(TEXT)
ROUNDS = {"voicecore": 300, "pipecat": 40, "pysbd": 10}
GROUP = pytest.mark.benchmark(group=f"text split stream, {len(TOKENS)} tokens")
MISSING = {
    "pipecat": "pipecat-ai is not installed (pip install -r benches/requirements.txt)",
    "pysbd": "pysbd is not installed (pip install -r benches/requirements.txt)",
}


def squash(text: str) -> str:
    return "".join(text.split())


def _factory(name: str) -> Callable[[], Splitter]:
    if name != "voicecore":
        pytest.importorskip({"pipecat": "pipecat", "pysbd": "pysbd"}[name], reason=MISSING[name])
    return FACTORIES[name]


@GROUP
@pytest.mark.parametrize("impl", ["voicecore", "pipecat", "pysbd"])
def test_split_per_token(benchmark: Any, impl: str) -> None:
    make = _factory(impl)
    sentences = run(make(), TOKENS)
    assert squash("".join(sentences)) == squash(TEXT)
    if impl == "voicecore":
        whole = SentenceSplitter()
        assert sentences == whole.push(TEXT) + whole.flush()
    info: dict[str, Any] = {"impl": impl, "case": "text split stream", "tokens": len(TOKENS)}
    info["version"] = make().version
    info["sentences"] = len(sentences)
    if golden_cases() is not None:
        info["golden_streamed"] = golden_scores(make)[0]
    benchmark.extra_info.update(info)
    splitter = make()
    out = benchmark.pedantic(run, (splitter, TOKENS), rounds=ROUNDS[impl], warmup_rounds=1)
    assert out == sentences  # the same object, reused across rounds, splits every stream alike


def test_voicecore_meets_the_issue_targets_on_the_bench_inputs() -> None:
    make = FACTORIES["voicecore"]
    if golden_cases() is not None:
        streamed, whole, _ = golden_scores(make)
        assert streamed >= 44
        assert whole >= 44
    median, _ = release_lag(make)
    assert median <= 2


def test_first_chunk_mode_releases_earlier() -> None:
    from .text_splitters import voicecore_splitter

    tokens_off, length_off = first_chunk(voicecore_splitter)
    tokens_on, length_on = first_chunk(lambda: voicecore_splitter(first_clause_chars=20))
    assert tokens_on < tokens_off
    assert length_on < length_off


def test_text_table_prints_voicecore_rows(capsys: pytest.CaptureFixture[str]) -> None:
    from .text_table import main

    main()
    printed = capsys.readouterr().out
    assert "| voicecore " in printed
    assert "| voicecore first_clause_chars=20 |" in printed
