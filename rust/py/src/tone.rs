//! `BeepDetector` and `Beep`: a thin wrapper over `voicecore_core::tone`.

use pyo3::prelude::*;
use voicecore_core::{tone, CoreError};

use crate::buffer;
use crate::errors::to_py;

/// An answering machine's beep: when it started and ended (ms from the first sample), its pitch.
#[pyclass(frozen, eq, name = "Beep", module = "voicecore._core")]
#[derive(PartialEq)]
pub struct Beep {
    #[pyo3(get)]
    start_ms: u64,
    #[pyo3(get)]
    end_ms: u64,
    #[pyo3(get)]
    frequency_hz: f32,
}

#[pymethods]
impl Beep {
    fn __repr__(&self) -> String {
        format!(
            "Beep(start_ms={}, end_ms={}, frequency_hz={:.1})",
            self.start_ms, self.end_ms, self.frequency_hz
        )
    }
}

/// Finds steady pure tones (answering-machine beeps) in PCM16 of any chunking.
#[pyclass(name = "BeepDetector", module = "voicecore._core")]
pub struct BeepDetector {
    inner: tone::BeepDetector,
    scratch: Vec<i16>,
}

#[pymethods]
impl BeepDetector {
    #[new]
    #[pyo3(signature = (sample_rate = 8000, *, min_ms = 120))]
    fn new(sample_rate: i64, min_ms: i64) -> PyResult<Self> {
        let setting = |name: &str, value: i64| {
            u32::try_from(value).map_err(|_| {
                to_py(CoreError::InvalidArgument(format!(
                    "{name} is out of range: {value}"
                )))
            })
        };
        let inner = tone::BeepDetector::new(
            setting("sample_rate", sample_rate)?,
            setting("min_ms", min_ms)?,
        )
        .map_err(to_py)?;
        Ok(Self {
            inner,
            scratch: Vec::new(),
        })
    }

    /// Pushes PCM16 audio of any even length; returns the beeps that ended within it.
    fn push(&mut self, py: Python<'_>, pcm: &Bound<'_, PyAny>) -> PyResult<Vec<Beep>> {
        buffer::read_pcm(pcm, &mut self.scratch)?;
        let rate = u64::from(self.inner.sample_rate());
        let ms = |samples: u64| samples * 1000 / rate;
        let (inner, scratch) = (&mut self.inner, &self.scratch);
        let beeps = buffer::maybe_detach(py, scratch.len() * 2, || inner.push(scratch));
        Ok(beeps
            .into_iter()
            .map(|beep| Beep {
                start_ms: ms(beep.start_sample),
                end_ms: ms(beep.end_sample),
                frequency_hz: beep.frequency_hz,
            })
            .collect())
    }

    /// Forgets the stream: no tone in progress, stream time zero.
    fn reset(&mut self) {
        self.inner.reset();
    }

    #[getter]
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }
}
