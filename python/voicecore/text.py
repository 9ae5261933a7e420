"""Text on its way to the TTS: streaming sentence splitting and the speakable form.

:class:`SentenceSplitter` takes LLM tokens of any size and returns each sentence the moment
its end is certain (at most one non-space character after the terminal punctuation), so the
TTS can start speaking the first sentence while the LLM is still writing the second.
:func:`speakable` strips what a voice must not read: markdown, code blocks and emoji.
Both are implemented in Rust (``voicecore._core``).

Example::

    splitter = SentenceSplitter()
    for token in llm_tokens:
        for sentence in splitter.push(token):
            if text := speakable(sentence):  # "" for a code block or a lone emoji
                tts.say(text)
    for sentence in splitter.flush():
        if text := speakable(sentence):
            tts.say(text)
"""

from __future__ import annotations

from voicecore._core import SentenceSplitter, speakable

__all__ = ["SentenceSplitter", "speakable"]
