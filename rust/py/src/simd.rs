//! Which SIMD kernels run: the CPU's level, lowered by `VOICECORE_SIMD`.

use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;
use voicecore_core::simd;

/// The instruction set the audio kernels use: `"portable"`, `"avx2"` or `"avx512"`.
#[pyfunction]
pub fn simd_level() -> &'static str {
    simd::level().name()
}

/// The highest instruction set this CPU supports, whatever `VOICECORE_SIMD` says.
#[pyfunction]
pub fn simd_detected() -> &'static str {
    simd::detected().name()
}

/// Warns once, at import, when `VOICECORE_SIMD` holds a value that is not a level (the
/// kernels then use what the CPU supports).
pub fn warn_on_unknown_setting(py: Python<'_>) -> PyResult<()> {
    if let Err(error) = simd::configured() {
        let message = std::ffi::CString::new(format!(
            "{error}; ignoring it and using {}",
            simd::level().name()
        ))?;
        PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &message, 1)?;
    }
    Ok(())
}
