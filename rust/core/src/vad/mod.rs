//! Voice activity detection and endpointing.
//!
//! * [`Endpointer`]: framing of arbitrary chunks, the start/end hysteresis state machine and
//!   the pre-roll ring, driven by any per-frame scorer (the Python side plugs Silero in here).
//! * [`Detector`]: the native speech detector, a small perceptron over cheap spectral
//!   features of 10 ms frames.
//! * [`Vad`]: the two together, the native backend.

mod endpoint;
mod features;
mod fft;
mod model;
mod weights;

pub use endpoint::{EndpointConfig, Endpointer, EventKind, VadEvent, HYSTERESIS, MAX_MS};
pub use features::INPUTS as FEATURES;
pub use model::Detector;

use crate::CoreError;

/// The native detector's frame length.
pub const NATIVE_FRAME_MS: u32 = 10;

/// The native VAD: 10 ms framing, the native detector and the endpointer.
#[derive(Debug, Clone)]
pub struct Vad {
    endpointer: Endpointer,
    detector: Detector,
    scratch: Vec<i16>,
}

impl Vad {
    /// A native VAD; see [`EndpointConfig::new`] for the ranges of the settings.
    pub fn new(
        sample_rate: u32,
        threshold: f64,
        start_ms: u32,
        stop_ms: u32,
        preroll_ms: u32,
    ) -> Result<Self, CoreError> {
        let config = EndpointConfig::new(
            sample_rate,
            NATIVE_FRAME_MS,
            threshold,
            start_ms,
            stop_ms,
            preroll_ms,
        )?;
        Ok(Self {
            endpointer: Endpointer::new(config),
            detector: Detector::new(sample_rate),
            scratch: Vec::new(),
        })
    }

    /// Pushes samples of any length; returns the events decided by the frames they complete.
    pub fn push(&mut self, samples: &[i16]) -> Vec<VadEvent> {
        let detector = &mut self.detector;
        let result = self.endpointer.push_with(samples, |frame| {
            Ok::<_, std::convert::Infallible>(detector.probability(frame))
        });
        match result {
            Ok(events) => events,
            Err(never) => match never {},
        }
    }

    /// [`push`](Self::push) for little-endian PCM16 bytes; an odd length is rejected whole.
    pub fn push_le_bytes(&mut self, bytes: &[u8]) -> Result<Vec<VadEvent>, CoreError> {
        crate::pcm::sample_count(bytes)?;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(crate::pcm::samples(bytes));
        let events = self.push(&scratch);
        self.scratch = scratch;
        Ok(events)
    }

    /// Forgets the stream: quiet, position zero, detector state cleared.
    pub fn reset(&mut self) {
        self.endpointer.reset();
        self.detector.reset();
    }

    /// The endpointer (settings, state, probability, position).
    #[must_use]
    pub fn endpointer(&self) -> &Endpointer {
        &self.endpointer
    }
}

/// The native detector's model inputs for every whole 10 ms frame of `samples`, row-major
/// (`FEATURES` values per frame); for training and inspecting the model.
pub fn native_features(sample_rate: u32, samples: &[i16]) -> Result<Vec<f32>, CoreError> {
    EndpointConfig::new(sample_rate, NATIVE_FRAME_MS, 0.5, 10, 10, 0)?;
    let mut detector = Detector::new(sample_rate);
    let hop = detector.frame_samples();
    let mut out = Vec::with_capacity(samples.len() / hop * FEATURES);
    for frame in samples.chunks_exact(hop) {
        out.extend_from_slice(detector.features(frame));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A deterministic speech-like test signal: silence, a voiced "syllable train" with a
    /// gliding pitch and formant-like harmonics, then silence.
    fn speechlike(rate: u32) -> Vec<i16> {
        let n = rate as usize * 3;
        let mut seed = 12345u32;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 16) as f32 / 65536.0 - 0.5;
                let voiced = if (1.0..2.2).contains(&t) {
                    let f0 = 120.0 + 30.0 * (t * 3.0).sin();
                    let envelope = (std::f32::consts::PI * t * 4.0).sin().abs();
                    (1..20)
                        .map(|h| {
                            let f = f0 * h as f32;
                            let gain = (-((f - 700.0) / 400.0).powi(2)).exp()
                                + 0.5 * (-((f - 1800.0) / 500.0).powi(2)).exp();
                            gain * (2.0 * std::f32::consts::PI * f * t).sin()
                        })
                        .sum::<f32>()
                        * envelope
                } else {
                    0.0
                };
                (6000.0 * voiced + 30.0 * noise) as i16
            })
            .collect()
    }

    #[test]
    fn native_vad_is_deterministic_and_quiet_on_silence() {
        let mut vad = Vad::new(16000, 0.5, 200, 500, 300).unwrap();
        assert!(vad.push(&vec![0; 16000]).is_empty());
        assert!(!vad.endpointer().in_speech());
    }

    #[test]
    fn odd_bytes_are_rejected_without_consuming() {
        let mut vad = Vad::new(8000, 0.5, 200, 500, 300).unwrap();
        assert_eq!(vad.push_le_bytes(&[0; 3]), Err(CoreError::OddPcmLength(3)));
        assert_eq!(vad.endpointer().pushed_samples(), 0);
    }

    #[test]
    fn features_have_one_row_per_whole_frame() {
        let rows = native_features(8000, &[0; 805]).unwrap();
        assert_eq!(rows.len(), 10 * FEATURES);
        assert!(native_features(44100, &[0; 10]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_chunking_gives_the_same_events(
            cuts in proptest::collection::vec(0usize..3000, 0..40),
            rate in prop_oneof![Just(8000u32), Just(16000u32)],
        ) {
            let signal = speechlike(rate);
            let mut whole = Vad::new(rate, 0.5, 100, 300, 200).unwrap();
            let expected = whole.push(&signal);
            let mut chunked = Vad::new(rate, 0.5, 100, 300, 200).unwrap();
            let mut got = Vec::new();
            let mut rest = signal.as_slice();
            for cut in cuts {
                let (head, tail) = rest.split_at(cut.min(rest.len()));
                got.extend(chunked.push(head));
                rest = tail;
            }
            got.extend(chunked.push(rest));
            prop_assert_eq!(got, expected);
            prop_assert_eq!(
                chunked.endpointer().probability().to_bits(),
                whole.endpointer().probability().to_bits()
            );
        }
    }
}
