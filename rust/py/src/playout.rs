//! `PlayoutBuffer` and `ClearReport`: thin wrappers over `voicecore_core::playout`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voicecore_core::playout;
use voicecore_core::CoreError;

use crate::buffer::{self, Content};
use crate::errors::{self, to_py};

/// What `PlayoutBuffer.clear()` discarded.
#[pyclass(frozen, name = "ClearReport", module = "voicecore._core")]
pub struct ClearReport {
    #[pyo3(get)]
    dropped_ms: f64,
    #[pyo3(get)]
    dropped_samples: usize,
    #[pyo3(get)]
    dropped_marks: Vec<String>,
    #[pyo3(get)]
    passed_marks: Vec<String>,
}

#[pymethods]
impl ClearReport {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let dropped_marks = self.dropped_marks.clone().into_pyobject(py)?.repr()?;
        let passed_marks = self.passed_marks.clone().into_pyobject(py)?.repr()?;
        Ok(format!(
            "ClearReport(dropped_ms={:?}, dropped_samples={}, dropped_marks={dropped_marks}, passed_marks={passed_marks})",
            self.dropped_ms, self.dropped_samples
        ))
    }
}

/// A bounded playout buffer of PCM16 audio read in fixed frames, with named marks.
#[pyclass(name = "PlayoutBuffer", module = "voicecore._core")]
pub struct PlayoutBuffer {
    inner: playout::PlayoutBuffer,
}

/// A millisecond argument that must fit in `u32`, or `ConfigError` naming it.
fn config_u32(name: &str, value: i64, hint: &str) -> PyResult<u32> {
    u32::try_from(value).map_err(|_| {
        let problem = if value < 0 {
            "must be a positive number of milliseconds"
        } else {
            "is too large"
        };
        to_py(CoreError::InvalidArgument(format!(
            "{name} {problem}, got {value}; {hint}"
        )))
    })
}

impl PlayoutBuffer {
    fn samples_to_ms(&self, samples: u64) -> f64 {
        samples as f64 * 1000.0 / f64::from(self.inner.sample_rate())
    }
}

#[pymethods]
impl PlayoutBuffer {
    #[new]
    #[pyo3(signature = (sample_rate, frame_ms = 20, capacity_ms = 60000))]
    fn new(sample_rate: i64, frame_ms: i64, capacity_ms: i64) -> PyResult<Self> {
        let sample_rate = u32::try_from(sample_rate).map_err(|_| {
            // Same wording as `CoreError::UnsupportedRate`, which cannot hold a negative rate.
            errors::audio_format(format!(
                "unsupported sample rate {sample_rate} Hz; supported rates are 8000, 16000, 22050, 24000, 44100 and 48000 Hz"
            ))
        })?;
        let frame_ms = config_u32("frame_ms", frame_ms, "20 ms is the usual telephony frame")?;
        let capacity_ms = config_u32(
            "capacity_ms",
            capacity_ms,
            "it bounds how much audio may be queued (default 60000)",
        )?;
        playout::PlayoutBuffer::new(sample_rate, frame_ms, capacity_ms)
            .map(|inner| Self { inner })
            .map_err(to_py)
    }

    /// Appends PCM16 little-endian audio, then `mark` (if given) at its end; all or nothing.
    #[pyo3(signature = (pcm, mark = None))]
    fn push(
        &mut self,
        py: Python<'_>,
        pcm: &Bound<'_, PyAny>,
        mark: Option<String>,
    ) -> PyResult<()> {
        let view = buffer::view(pcm, Content::Pcm16)?;
        let input = view.as_slice();
        let inner = &mut self.inner;
        buffer::maybe_detach(py, input.len(), || inner.push_le_bytes(input, mark)).map_err(to_py)
    }

    /// Places a mark after all audio pushed so far.
    fn mark(&mut self, name: String) {
        self.inner.mark(name);
    }

    /// Reads one frame: `(frame bytes or None, marks passed by this read)`.
    #[pyo3(signature = (pad = false))]
    fn read_frame<'py>(
        &mut self,
        py: Python<'py>,
        pad: bool,
    ) -> PyResult<(Option<Bound<'py, PyBytes>>, Vec<String>)> {
        let frame_bytes = self.inner.frame_bytes();
        let mut frame = None;
        let result = self.inner.read_frame_with(pad, |head, tail| {
            // The new bytes object is zero-filled, so the padding is already in place.
            frame = Some(PyBytes::new_with(py, frame_bytes, |out| {
                playout::write_frame_le_bytes(head, tail, out);
                Ok(())
            }));
        });
        Ok((frame.transpose()?, result.passed_marks))
    }

    /// Drops all queued audio and marks at once (barge-in) and reports what was lost.
    fn clear(&mut self) -> ClearReport {
        let report = self.inner.clear();
        ClearReport {
            dropped_ms: self.samples_to_ms(report.dropped_samples as u64),
            dropped_samples: report.dropped_samples,
            dropped_marks: report.dropped_marks,
            passed_marks: report.passed_marks,
        }
    }

    /// Returns to the just-constructed state (no audio, no marks, counters zero).
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn __len__(&self) -> usize {
        self.inner.queued_samples()
    }

    fn __repr__(&self) -> String {
        format!(
            "PlayoutBuffer(sample_rate={}, frame_ms={}, capacity_ms={}, queued_ms={:?}, played_ms={:?}, generation={})",
            self.inner.sample_rate(),
            self.inner.frame_ms(),
            self.inner.capacity_ms(),
            self.queued_ms(),
            self.played_ms(),
            self.inner.generation(),
        )
    }

    #[getter]
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    #[getter]
    fn frame_ms(&self) -> u32 {
        self.inner.frame_ms()
    }

    #[getter]
    fn frame_bytes(&self) -> usize {
        self.inner.frame_bytes()
    }

    #[getter]
    fn capacity_ms(&self) -> u32 {
        self.inner.capacity_ms()
    }

    #[getter]
    fn played_samples(&self) -> u64 {
        self.inner.played_samples()
    }

    #[getter]
    fn played_ms(&self) -> f64 {
        self.samples_to_ms(self.inner.played_samples())
    }

    #[getter]
    fn queued_samples(&self) -> usize {
        self.inner.queued_samples()
    }

    #[getter]
    fn queued_ms(&self) -> f64 {
        self.samples_to_ms(self.inner.queued_samples() as u64)
    }

    #[getter]
    fn underruns(&self) -> u64 {
        self.inner.underruns()
    }

    #[getter]
    fn generation(&self) -> u64 {
        self.inner.generation()
    }
}
