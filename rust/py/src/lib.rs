//! `voicecore._core`: thin `PyO3` wrappers over `voicecore-core`.
//!
//! Each module here only converts arguments, calls the core and maps errors; the
//! algorithms and their tests live in `rust/core`.

mod buffer;
mod errors;
mod g711;
mod playout;
mod resample;
mod simd;
mod text;
mod tone;
mod twilio;
mod vad;

use pyo3::prelude::*;

#[pymodule]
mod _core {
    #[pymodule_export]
    use super::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
    #[pymodule_export]
    use super::playout::{ClearReport, PlayoutBuffer};
    #[pymodule_export]
    use super::resample::PyResampler;
    #[pymodule_export]
    use super::simd::{simd_detected, simd_level};
    #[pymodule_export]
    use super::text::{speakable, PySentenceSplitter};
    #[pymodule_export]
    use super::tone::{Beep, BeepDetector};
    #[pymodule_export]
    use super::twilio::{PyTwilioFrameDecoder, PyTwilioFrameEncoder};
    #[pymodule_export]
    use super::vad::{vad_features, Endpointer, NativeVad, VadEvent};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add(
            "build_profile",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        )?;
        super::simd::warn_on_unknown_setting(m.py())
    }
}
