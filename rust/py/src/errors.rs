//! The single mapping from `CoreError` to the Python exceptions of `voicecore.errors`.

use pyo3::PyErr;
use voicecore_core::CoreError;

pyo3::import_exception!(voicecore.errors, AudioFormatError);
pyo3::import_exception!(voicecore.errors, ConfigError);
pyo3::import_exception!(voicecore.errors, PlayoutOverflowError);

/// Converts a core error into the matching `voicecore.errors` exception.
#[cold]
#[inline(never)]
#[allow(clippy::needless_pass_by_value)] // used as `map_err(to_py)`
pub fn to_py(err: CoreError) -> PyErr {
    let message = err.to_string();
    match err {
        CoreError::OddPcmLength(_)
        | CoreError::UnsupportedRate(_)
        | CoreError::InvalidBase64(_) => AudioFormatError::new_err(message),
        CoreError::UnknownQuality(_)
        | CoreError::UnknownLanguage(_)
        | CoreError::InvalidArgument(_) => ConfigError::new_err(message),
        CoreError::Overflow { .. } => PlayoutOverflowError::new_err(message),
    }
}

/// An `AudioFormatError` with a custom message, for input rejected before it reaches the core.
#[cold]
pub fn audio_format(message: String) -> PyErr {
    AudioFormatError::new_err(message)
}
