//! Text for speech: streaming sentence splitting of LLM output and the speakable form of a
//! sentence.
//!
//! [`SentenceSplitter`] takes tokens of any size and returns each sentence as soon as its end
//! is certain: after terminal punctuation it waits at most for the first non-space character,
//! which says whether the punctuation ended the sentence ("Dr. Smith", "e.g. this", "3.5",
//! "Hello. World"). It scans every character once, so a push costs O(token length).
//! [`speakable`] strips what a TTS must not read aloud: markdown, code and emoji.

mod abbreviations;
mod chars;
mod speakable;
mod splitter;

pub use abbreviations::Lang;
pub use speakable::speakable;
pub use splitter::{SentenceSplitter, SplitterConfig};
