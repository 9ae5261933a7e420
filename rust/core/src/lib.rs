//! voicecore-core: the pure-Rust hot path behind `voicecore._core`: audio, and the text
//! on its way to the TTS (`text`).
//!
//! Everything here works on plain slices and strings and owns no Python objects, so it is
//! tested (`cargo test`) and benchmarked (criterion) without an interpreter. PCM is 16-bit
//! signed mono throughout; bytes on the wire are little-endian.
//!
//! `unsafe` is denied (workspace lint) except for calls into AVX2 kernels after run-time CPU
//! detection (`simd`) and the unaligned SIMD loads inside them.

pub mod b64;
pub mod error;
pub mod g711;
pub mod pcm;
pub mod playout;
pub mod rates;
pub mod resample;
pub mod simd;
pub mod text;
pub mod tone;
pub mod twilio;
pub mod vad;

pub use error::CoreError;
