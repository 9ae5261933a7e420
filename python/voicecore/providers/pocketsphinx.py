"""Offline speech to text with PocketSphinx, streaming, in a worker thread per call.

The ``pocketsphinx`` wheel ships its US English acoustic model, dictionary and language
model, so recognition needs no download and no network. It is in the optional
``voicecore[local]`` extra.

Each stream owns a decoder and one worker thread: :meth:`PocketsphinxStream.push_audio`
queues 16 kHz PCM16 for the thread and returns at once, the thread decodes it
(``process_raw``) and posts interim hypotheses; :meth:`~PocketsphinxStream.finalize`
(the runtime's VAD heard the end of speech) ends the utterance and posts its final text.

Accuracy on an open vocabulary is modest. Give the agent's phrases (``phrases=``) and the
decoder is restricted to them, far more accurate and faster on what they cover:

* ``restrict="ngram"``: a small trigram model of their words, so new combinations of the
  same words are heard too; anything else comes out as the nearest in-vocabulary words;
* ``restrict="grammar"``: a JSGF grammar of exactly the phrases (any number word may stand
  for any other, and "please" may follow); what the grammar cannot say usually yields an
  empty final, i.e. nothing the intent router could mistake for a request.

``benches/local_stt_wer.py`` measures all three.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from voicecore.errors import ConfigError, ProviderError
from voicecore.providers.base import PCM16_16K, AudioFormat, TranscriptUpdate

__all__ = ["PocketsphinxSTT", "PocketsphinxStream", "phrase_vocabulary"]

logger = logging.getLogger(__name__)

# The general model's search, bounded so it stays faster than real time on one core even on
# noisy phone audio (the default search reached RTF 1.35 there on a busy machine): at most
# 3000 active HMMs a frame and no second (flat-lexicon) pass; WER rises about 5 points.
_OPEN_VOCABULARY_OPTIONS = {"maxhmmpf": 3000, "fwdflat": False}
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
_RESTART_AFTER_S = 20.0  # an utterance with no words for this long is restarted (bounds memory)


def phrase_vocabulary(phrases: Sequence[str]) -> list[list[str]]:
    """The phrases as lists of lowercase words (punctuation and digits dropped)."""
    return [words for phrase in phrases if (words := _WORD_RE.findall(phrase.lower()))]


@dataclass(frozen=True, slots=True, kw_only=True)
class PocketsphinxSTT:
    """PocketSphinx recognition of US English at 16 kHz (see the module docstring).

    Attributes:
        phrases: Restrict recognition to these phrases (the agent's intent examples); empty:
            PocketSphinx's general English model.
        restrict: How phrases restrict it: ``"ngram"`` (their words, recombined) or
            ``"grammar"`` (the phrases themselves); see the module docstring.
        interim_every_ms: Audio between interim hypotheses (0: no interim results).
        decoder_options: PocketSphinx settings passed to its ``Decoder`` (e.g. ``beam``,
            ``lw``: the language model's weight), over voicecore's defaults (for the open
            vocabulary, a bounded search: ``maxhmmpf=3000``, ``fwdflat=False``).
    """

    phrases: Sequence[str] = ()
    restrict: Literal["ngram", "grammar"] = "ngram"
    interim_every_ms: int = 200
    decoder_options: Mapping[str, Any] = field(default_factory=dict)
    name: str = "pocketsphinx"

    def input_formats(self) -> Sequence[AudioFormat]:
        """16 kHz PCM16, what its acoustic model was trained on."""
        return (PCM16_16K,)

    async def open(self, audio: AudioFormat, *, language: str) -> PocketsphinxStream:
        """A stream for one call; loading the model takes a few hundred ms, off the loop.

        Raises:
            ConfigError: Not 16 kHz PCM16, not English, or the local extra is missing.
        """
        if audio != PCM16_16K:
            raise ConfigError(f"pocketsphinx takes {PCM16_16K}, not {audio}")
        if language.lower().split("-")[0] != "en":
            raise ConfigError(f"pocketsphinx's bundled model is English only, not {language!r}")
        stream = PocketsphinxStream(self)
        await stream._started
        return stream

    def _decoder(self) -> Any:
        """A new decoder (on the worker thread): the phrase model when phrases were given."""
        try:
            import pocketsphinx  # the optional extra: imported when first used
            import pocketsphinx.lm
        except ImportError as error:
            raise ConfigError(
                "the pocketsphinx STT needs the local extra: pip install 'voicecore[local]'"
            ) from error
        if not self.phrases:
            options = {"logfn": os.devnull, **_OPEN_VOCABULARY_OPTIONS, **self.decoder_options}
            return pocketsphinx.Decoder(**options)
        grammar = self.restrict == "grammar"
        model, pronunciations = (_phrase_grammar if grammar else _phrase_model)(tuple(self.phrases))
        with tempfile.TemporaryDirectory(prefix="voicecore-sphinx-") as folder:
            model_path = os.path.join(folder, "phrases.jsgf" if grammar else "phrases.arpa")
            dict_path = os.path.join(folder, "phrases.dict")
            with open(model_path, "w", encoding="utf-8") as file:
                file.write(model)
            with open(dict_path, "w", encoding="utf-8") as file:
                file.write(pronunciations)
            kind = "jsgf" if grammar else "lm"
            options = {kind: model_path, "dict": dict_path, "logfn": os.devnull, **self.decoder_options}
            return pocketsphinx.Decoder(**options)


@functools.cache
def _dictionary() -> dict[str, list[str]]:
    """The bundled pronouncing dictionary: each word's lines (alternates included)."""
    import pocketsphinx

    entries: dict[str, list[str]] = {}
    path = pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")
    with open(path, encoding="utf-8") as file:
        for line in file:
            word, _, phones = line.partition(" ")
            entries.setdefault(word.split("(", 1)[0], []).append(f"{word} {phones.strip()}")
    return entries


@functools.lru_cache(maxsize=8)
def _phrase_model(phrases: tuple[str, ...]) -> tuple[str, str]:
    """An ARPA trigram model of ``phrases`` and the dictionary of its words.

    Both are small, so the decoder loads in milliseconds: with the full 130k-word
    dictionary loading an n-gram model of a few words takes PocketSphinx seconds.
    """
    import pocketsphinx.lm

    dictionary = _dictionary()
    known = [[w for w in words if w in dictionary] for words in phrase_vocabulary(phrases)]
    corpus = "\n".join(" ".join(words) for words in known if words)
    if not corpus:
        raise ConfigError("pocketsphinx: none of the phrases has a word its dictionary knows")
    model = pocketsphinx.lm.ArpaBoLM(text=corpus + "\n", add_start=True)
    model.compute()
    arpa = io.StringIO()
    model.write(arpa)
    vocabulary = sorted({w for words in known for w in words})
    pronunciations = "".join(line + "\n" for word in vocabulary for line in dictionary[word])
    return arpa.getvalue(), pronunciations


_NUMBER_WORDS = (
    *("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"),
    *("twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"),
    *("nineteen", "twenty", "thirty", "forty", "fifty"),
)


@functools.lru_cache(maxsize=8)
def _phrase_grammar(phrases: tuple[str, ...]) -> tuple[str, str]:
    """A JSGF grammar of ``phrases`` (number words generalized) and its dictionary."""
    dictionary = _dictionary()
    numbers = set(_NUMBER_WORDS)
    alternatives = set()
    for words in phrase_vocabulary(phrases):
        if all(w in dictionary for w in words):
            alternatives.add(" ".join("<number>" if w in numbers else w for w in words))
    if not alternatives:
        raise ConfigError("pocketsphinx: no phrase has only words its dictionary knows")
    grammar = (
        "#JSGF V1.0;\ngrammar phrases;\n"
        f"<number> = ({' | '.join(_NUMBER_WORDS)}) [{' | '.join(_NUMBER_WORDS)}];\n"
        f"public <phrase> = ({' | '.join(sorted(alternatives))}) [please];\n"
    )
    vocabulary = {w for a in alternatives for w in a.split() if w != "<number>"} | numbers | {"please"}
    pronunciations = "".join(line + "\n" for word in sorted(vocabulary) for line in dictionary[word])
    return grammar, pronunciations


_END = object()


class PocketsphinxStream:
    """One call's recognition; every decoder call runs on the stream's own thread."""

    def __init__(self, owner: PocketsphinxSTT) -> None:
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self._out: asyncio.Queue[object] = asyncio.Queue()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocketsphinx")
        self._decoder: Any = None
        self._closed = False
        # Worker-thread state.
        self._in_utterance = False
        self._heard = 0  # bytes in the current utterance
        self._since_interim = 0
        self._last_interim = ""
        self._started = asyncio.wrap_future(self._submit(self._load))

    def _submit(self, fn: Any, *args: Any) -> Future[None]:
        future: Future[None] = self._worker.submit(self._guarded, fn, *args)
        return future

    def _guarded(self, fn: Any, *args: Any) -> None:
        """Run ``fn`` on the worker; a failure ends the transcript stream with the error."""
        try:
            fn(*args)
        except ConfigError:
            raise
        except Exception as error:
            self._post(ProviderError(f"decoding failed: {error}", provider=self._owner.name, retryable=False))
            raise

    def _post(self, item: object) -> None:
        self._loop.call_soon_threadsafe(self._out.put_nowait, item)

    # --- the worker thread ----------------------------------------------------------------

    def _load(self) -> None:
        self._decoder = self._owner._decoder()

    def _process(self, audio: bytes) -> None:
        decoder = self._decoder
        if not self._in_utterance:
            decoder.start_utt()
            self._in_utterance, self._heard, self._since_interim, self._last_interim = True, 0, 0, ""
        decoder.process_raw(audio, False, False)
        self._heard += len(audio)
        self._since_interim += len(audio)
        every = self._owner.interim_every_ms * PCM16_16K.bytes_per_second // 1000
        if every and self._since_interim >= every:
            self._since_interim = 0
            hypothesis = decoder.hyp()
            text = hypothesis.hypstr if hypothesis is not None else ""
            if text and text != self._last_interim:
                self._last_interim = text
                self._post(TranscriptUpdate(text, final=False))
        if not self._last_interim and self._heard >= _RESTART_AFTER_S * PCM16_16K.bytes_per_second:
            hypothesis = decoder.hyp()
            if hypothesis is None or not hypothesis.hypstr:
                decoder.end_utt()  # a long stretch of nothing: start afresh rather than grow
                self._in_utterance = False
            else:
                self._last_interim = hypothesis.hypstr  # words (unreported): keep them, stop checking

    def _final(self, always: bool = True) -> None:
        text = ""
        if not (self._in_utterance or always):
            return
        if self._in_utterance:
            self._decoder.end_utt()
            self._in_utterance = False
            hypothesis = self._decoder.hyp()
            text = hypothesis.hypstr if hypothesis is not None else ""
        logger.debug("final transcript of %d bytes", self._heard)
        self._post(TranscriptUpdate(text, final=True, end_of_turn=True))

    # --- the event loop -------------------------------------------------------------------

    async def push_audio(self, audio: bytes) -> None:
        """Queue 16 kHz PCM16 for decoding; returns at once."""
        if self._closed:
            raise ProviderError("stream closed", provider=self._owner.name, retryable=False)
        if audio:
            self._submit(self._process, bytes(audio))

    async def finalize(self) -> None:
        """End the utterance: its final text (possibly empty) follows, marked end of turn."""
        if not self._closed:
            self._submit(self._final)

    def __aiter__(self) -> AsyncIterator[TranscriptUpdate]:
        return self._updates()

    async def _updates(self) -> AsyncIterator[TranscriptUpdate]:
        while True:
            item = await self._out.get()
            if item is _END:
                self._out.put_nowait(_END)  # every later read ends too
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, TranscriptUpdate)
            yield item

    async def aclose(self) -> None:
        """Post the final text of any audio still pending, then end; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        last = self._submit(self._final, False)
        self._worker.shutdown(wait=False)
        try:
            await asyncio.wrap_future(last)
        except Exception:
            logger.debug("pocketsphinx stream closed after a failure", exc_info=True)
        self._out.put_nowait(_END)
