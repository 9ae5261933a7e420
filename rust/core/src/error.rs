//! `CoreError`: the crate's only error type, converted to Python exceptions in one place.

use thiserror::Error;

/// Every way a core operation can reject its input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// PCM16 input whose byte length is not a whole number of samples.
    #[error(
        "PCM16 audio must be a whole number of 2-byte samples, but got {0} bytes (an odd length)"
    )]
    OddPcmLength(usize),
    /// A sample rate outside the supported set.
    #[error("unsupported sample rate {0} Hz; supported rates are 8000, 16000, 22050, 24000, 44100 and 48000 Hz")]
    UnsupportedRate(u32),
    /// An unknown resampler quality name.
    #[error("unknown resampler quality {0:?}; choose \"hq\" (default) or \"fast\"")]
    UnknownQuality(String),
    /// An unknown language code for the sentence splitter.
    #[error("unknown language {0:?}; use None (any language) or one of \"de\", \"en\", \"es\", \"fr\", \"hi\", \"ja\", \"zh\" (a region suffix such as \"en-US\" is fine)")]
    UnknownLanguage(String),
    /// A payload that is not valid base64.
    #[error("invalid base64 audio payload: {0}")]
    InvalidBase64(String),
    /// A constructor argument outside its valid range.
    #[error("{0}")]
    InvalidArgument(String),
    /// Appending would exceed a bounded buffer's capacity.
    #[error("playout buffer overflow: appending {incoming_ms:.1} ms to {queued_ms:.1} ms queued exceeds the {capacity_ms:.1} ms capacity; read frames faster, clear() on barge-in, or raise capacity_ms")]
    Overflow {
        incoming_ms: f64,
        queued_ms: f64,
        capacity_ms: f64,
    },
}
