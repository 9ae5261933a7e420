//! voicecore-core: the pure-Rust hot path behind `voicecore._core`: audio, and the text
//! on its way to the TTS (`text`).
//!
//! Everything here works on plain slices and strings and owns no Python objects, so it is
//! tested (`cargo test`) and benchmarked (criterion) without an interpreter. PCM is 16-bit
//! signed mono throughout; bytes on the wire are little-endian.
#![forbid(unsafe_code)]

pub mod error;
pub mod g711;
pub mod pcm;
pub mod playout;
pub mod rates;
pub mod resample;
pub mod text;
pub mod twilio;

pub use error::CoreError;
