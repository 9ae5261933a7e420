//! `Resampler`: streaming PCM16 rate conversion.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voicecore_core::pcm::{self, Pcm};
use voicecore_core::resample::{Quality, Resampler};

use crate::buffer::{self, Content};
use crate::errors::to_py;

/// Streaming PCM16 resampler between 8, 16, 22.05, 24, 44.1 and 48 kHz.
#[pyclass(name = "Resampler", module = "voicecore._core")]
pub struct PyResampler {
    inner: Resampler,
    scratch: Vec<i16>,
}

impl PyResampler {
    fn emit<'py>(py: Python<'py>, samples: &[i16]) -> PyResult<Bound<'py, PyBytes>> {
        PyBytes::new_with(py, samples.len() * 2, |out| {
            pcm::write_le_bytes(samples, out);
            Ok(())
        })
    }
}

#[pymethods]
impl PyResampler {
    #[new]
    #[pyo3(signature = (in_rate, out_rate, *, quality = "hq"))]
    fn new(py: Python<'_>, in_rate: u32, out_rate: u32, quality: &str) -> PyResult<Self> {
        let quality = Quality::parse(quality).map_err(to_py)?;
        // The first resampler for a rate pair designs its filter (milliseconds); let other threads run.
        let inner = py
            .detach(|| Resampler::new(in_rate, out_rate, quality))
            .map_err(to_py)?;
        Ok(Self {
            inner,
            scratch: Vec::new(),
        })
    }

    /// Resamples a chunk and returns every output sample it makes possible.
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        pcm: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let view = buffer::view(pcm, Content::Pcm16)?;
        let input = view.as_slice();
        let samples = Pcm::le_bytes(input).map_err(to_py)?;
        let n_out = self.inner.output_len(samples.len());
        let inner = &mut self.inner;
        PyBytes::new_with(py, n_out * 2, |out| {
            buffer::maybe_detach(py, input.len(), || {
                inner.process_into_le_bytes(samples, out);
            });
            Ok(())
        })
    }

    /// Ends the stream: returns the filter's delayed tail (`ceil(delay)` samples) and resets.
    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.scratch.resize(self.inner.flush_len(), 0);
        self.inner.flush_into(&mut self.scratch);
        Self::emit(py, &self.scratch)
    }

    /// Forgets the stream without returning its tail.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// Group delay in output samples: output sample `m` carries the input at time `m - delay`.
    #[getter]
    fn delay(&self) -> f64 {
        self.inner.delay()
    }

    #[getter]
    fn in_rate(&self) -> u32 {
        self.inner.in_rate()
    }

    #[getter]
    fn out_rate(&self) -> u32 {
        self.inner.out_rate()
    }

    #[getter]
    fn quality(&self) -> &'static str {
        self.inner.quality().name()
    }

    fn __repr__(&self) -> String {
        format!(
            "Resampler({}, {}, quality={:?})",
            self.inner.in_rate(),
            self.inner.out_rate(),
            self.inner.quality().name()
        )
    }
}
