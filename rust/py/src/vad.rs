//! `NativeVad`, `Endpointer` and `VadEvent`: thin wrappers over `voicecore_core::vad`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voicecore_core::vad::{self, EndpointConfig, EventKind};
use voicecore_core::{pcm, CoreError};

use crate::buffer::{self, read_pcm};
use crate::errors::to_py;

/// A speech boundary: `kind` is `"start"` or `"end"`, times are ms from the first sample.
#[pyclass(frozen, eq, name = "VadEvent", module = "voicecore._core")]
#[derive(PartialEq, Eq)]
pub struct VadEvent {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    at_ms: u64,
    #[pyo3(get)]
    decided_ms: u64,
    audio: Vec<u8>,
}

#[pymethods]
impl VadEvent {
    /// Start events: PCM16 from `preroll_ms` before `at_ms` up to `decided_ms`; else empty.
    #[getter]
    fn audio<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.audio)
    }

    fn __repr__(&self) -> String {
        format!(
            "VadEvent(kind={:?}, at_ms={}, decided_ms={}, audio=<{} bytes>)",
            self.kind,
            self.at_ms,
            self.decided_ms,
            self.audio.len()
        )
    }
}

fn to_events(events: Vec<vad::VadEvent>, sample_rate: u32) -> Vec<VadEvent> {
    let ms = |samples: u64| samples * 1000 / u64::from(sample_rate);
    events
        .into_iter()
        .map(|event| {
            let mut audio = vec![0u8; event.audio.len() * 2];
            pcm::write_le_bytes(&event.audio, &mut audio);
            VadEvent {
                kind: match event.kind {
                    EventKind::Start => "start",
                    EventKind::End => "end",
                },
                at_ms: ms(event.at_sample),
                decided_ms: ms(event.decided_sample),
                audio,
            }
        })
        .collect()
}

/// A non-negative integer setting, or `ConfigError` naming it.
fn setting_u32(name: &str, value: i64) -> PyResult<u32> {
    u32::try_from(value).map_err(|_| {
        to_py(CoreError::InvalidArgument(format!(
            "{name} must be a non-negative number of milliseconds up to {}, got {value}",
            vad::MAX_MS
        )))
    })
}

fn config(
    sample_rate: i64,
    frame_ms: i64,
    threshold: f64,
    start_ms: i64,
    stop_ms: i64,
    preroll_ms: i64,
) -> PyResult<EndpointConfig> {
    let rate = u32::try_from(sample_rate).unwrap_or(0);
    if i64::from(rate) != sample_rate {
        return Err(to_py(CoreError::InvalidArgument(format!(
            "Vad supports sample_rate 8000 or 16000 Hz, got {sample_rate}"
        ))));
    }
    EndpointConfig::new(
        rate,
        setting_u32("frame_ms", frame_ms)?,
        threshold,
        setting_u32("start_ms", start_ms)?,
        setting_u32("stop_ms", stop_ms)?,
        setting_u32("preroll_ms", preroll_ms)?,
    )
    .map_err(to_py)
}

/// The `#[pymethods]` of a class over an endpointer (`self.ep()`, and `self.inner.reset()`):
/// the class's own methods, then `reset` and the getters that `NativeVad` and `Endpointer`
/// share.
macro_rules! endpointed_methods {
    ($class:ident { $($own:tt)* }) => {
        #[pymethods]
        impl $class {
            $($own)*

            /// Forgets the stream: quiet, stream time zero.
            fn reset(&mut self) {
                self.inner.reset();
            }

            /// Whether the endpointed state is "speaking" after the last push.
            #[getter]
            fn in_speech(&self) -> bool {
                self.ep().in_speech()
            }

            /// Speech probability of the last complete frame (0.0 before the first).
            #[getter]
            fn probability(&self) -> f64 {
                f64::from(self.ep().probability())
            }

            #[getter]
            fn sample_rate(&self) -> u32 {
                self.ep().config().sample_rate()
            }

            #[getter]
            fn frame_ms(&self) -> u64 {
                let c = self.ep().config();
                c.frame_samples() as u64 * 1000 / u64::from(c.sample_rate())
            }

            #[getter]
            fn threshold(&self) -> f64 {
                self.ep().config().threshold()
            }

            #[getter]
            fn start_ms(&self) -> u32 {
                self.ep().config().start_ms()
            }

            #[getter]
            fn stop_ms(&self) -> u32 {
                self.ep().config().stop_ms()
            }

            #[getter]
            fn preroll_ms(&self) -> u32 {
                self.ep().config().preroll_ms()
            }
        }
    };
}

/// The native VAD: 10 ms frames, the built-in detector and the endpointer.
#[pyclass(name = "NativeVad", module = "voicecore._core")]
pub struct NativeVad {
    inner: vad::Vad,
    scratch: Vec<i16>,
}

endpointed_methods!(NativeVad {
    #[new]
    #[pyo3(signature = (sample_rate = 16000, *, threshold = 0.5, start_ms = 200, stop_ms = 500, preroll_ms = 300))]
    fn new(
        sample_rate: i64,
        threshold: f64,
        start_ms: i64,
        stop_ms: i64,
        preroll_ms: i64,
    ) -> PyResult<Self> {
        let c = config(
            sample_rate,
            i64::from(vad::NATIVE_FRAME_MS),
            threshold,
            start_ms,
            stop_ms,
            preroll_ms,
        )?;
        let inner = vad::Vad::new(
            c.sample_rate(),
            c.threshold(),
            c.start_ms(),
            c.stop_ms(),
            c.preroll_ms(),
        )
        .map_err(to_py)?;
        Ok(Self {
            inner,
            scratch: Vec::new(),
        })
    }

    /// Pushes PCM16 audio of any even length; returns the events its frames decide.
    fn push(&mut self, py: Python<'_>, pcm: &Bound<'_, PyAny>) -> PyResult<Vec<VadEvent>> {
        read_pcm(pcm, &mut self.scratch)?;
        let (inner, scratch) = (&mut self.inner, &self.scratch);
        let events = buffer::maybe_detach(py, scratch.len() * 2, || inner.push(scratch));
        Ok(to_events(
            events,
            self.inner.endpointer().config().sample_rate(),
        ))
    }
});

impl NativeVad {
    fn ep(&self) -> &vad::Endpointer {
        self.inner.endpointer()
    }
}

/// Framing and endpointing over probabilities from a Python scorer (e.g. Silero).
#[pyclass(name = "Endpointer", module = "voicecore._core")]
pub struct Endpointer {
    inner: vad::Endpointer,
    scratch: Vec<i16>,
}

endpointed_methods!(Endpointer {
    #[new]
    #[pyo3(signature = (sample_rate, frame_ms, *, threshold = 0.5, start_ms = 200, stop_ms = 500, preroll_ms = 300, noise_hold = false))]
    fn new(
        sample_rate: i64,
        frame_ms: i64,
        threshold: f64,
        start_ms: i64,
        stop_ms: i64,
        preroll_ms: i64,
        noise_hold: bool,
    ) -> PyResult<Self> {
        let c = config(
            sample_rate,
            frame_ms,
            threshold,
            start_ms,
            stop_ms,
            preroll_ms,
        )?;
        let inner = vad::Endpointer::new(c);
        Ok(Self {
            inner: if noise_hold {
                inner.with_noise_hold(vad::NoiseHold::NATIVE)
            } else {
                inner
            },
            scratch: Vec::new(),
        })
    }

    /// Pushes PCM16 audio; `score(frame_bytes) -> float` is called once per complete frame.
    fn push(
        &mut self,
        py: Python<'_>,
        pcm: &Bound<'_, PyAny>,
        score: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<VadEvent>> {
        read_pcm(pcm, &mut self.scratch)?;
        let events = self.inner.push_with(&self.scratch, |frame| {
            let bytes = PyBytes::new_with(py, frame.len() * 2, |out| {
                pcm::write_le_bytes(frame, out);
                Ok(())
            })?;
            score.call1((bytes,))?.extract::<f64>().map(|p| p as f32)
        })?;
        Ok(to_events(events, self.inner.config().sample_rate()))
    }
});

impl Endpointer {
    fn ep(&self) -> &vad::Endpointer {
        &self.inner
    }
}

/// The native detector's model inputs for each whole 10 ms frame, as float32 bytes.
#[pyfunction]
pub fn vad_features<'py>(
    py: Python<'py>,
    pcm: &Bound<'py, PyAny>,
    sample_rate: i64,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut samples = Vec::new();
    read_pcm(pcm, &mut samples)?;
    let rate = u32::try_from(sample_rate).unwrap_or(0);
    let rows = py
        .detach(|| vad::native_features(rate, &samples))
        .map_err(to_py)?;
    PyBytes::new_with(py, rows.len() * 4, |out| {
        for (dst, x) in out.chunks_exact_mut(4).zip(&rows) {
            dst.copy_from_slice(&x.to_le_bytes());
        }
        Ok(())
    })
}
