//! voicecore-core: the pure-Rust audio hot path behind `voicecore._core`.
//!
//! Everything here works on plain slices and owns no Python objects, so it is tested
//! (`cargo test`) and benchmarked (criterion) without an interpreter. PCM is 16-bit
//! signed mono throughout; bytes on the wire are little-endian.
#![forbid(unsafe_code)]

pub mod error;
pub mod g711;
pub mod pcm;
pub mod playout;
pub mod rates;
pub mod resample;
pub mod twilio;
pub mod vad;

pub use error::CoreError;
