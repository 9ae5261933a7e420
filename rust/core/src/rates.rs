//! The sample rates the engine accepts, checked in one place.

use crate::CoreError;

/// Every sample rate the resampler, playout buffer and codecs accept.
pub const SUPPORTED_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// Returns `rate` if it is one of `SUPPORTED_RATES`.
pub fn check_rate(rate: u32) -> Result<u32, CoreError> {
    if SUPPORTED_RATES.contains(&rate) {
        Ok(rate)
    } else {
        Err(CoreError::UnsupportedRate(rate))
    }
}
