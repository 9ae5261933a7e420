//! The native detector: a two-hidden-layer perceptron over [`features`](super::features).
//!
//! The weights in `weights.rs` are produced by `python -m benches.vad_train` (numpy only,
//! trained on a generated corpus); see that script to regenerate them.

use super::features::{FeatureExtractor, INPUTS};
use super::weights::{B1, B2, B3, MEAN, SCALE, W1, W2, W3};

/// Per-frame speech probability from 10 ms frames of one stream.
#[derive(Debug, Clone)]
pub struct Detector {
    features: FeatureExtractor,
    input: [f32; INPUTS],
}

impl Detector {
    /// A detector for 10 ms frames at `sample_rate` (8000 or 16000).
    #[must_use]
    pub fn new(sample_rate: u32) -> Self {
        Self {
            features: FeatureExtractor::new(sample_rate),
            input: [0.0; INPUTS],
        }
    }

    /// Samples per frame.
    #[must_use]
    pub fn frame_samples(&self) -> usize {
        self.features.hop()
    }

    /// Forgets the stream.
    pub fn reset(&mut self) {
        self.features.reset();
    }

    /// The model input for the next frame (advances the stream), for training tools.
    pub fn features(&mut self, frame: &[i16]) -> &[f32; INPUTS] {
        self.features.process(frame, &mut self.input);
        &self.input
    }

    /// The speech probability of the next frame (advances the stream).
    pub fn probability(&mut self, frame: &[i16]) -> f32 {
        self.features.process(frame, &mut self.input);
        for ((x, mean), scale) in self.input.iter_mut().zip(&MEAN).zip(&SCALE) {
            *x = (*x - mean) * scale;
        }
        let mut h1 = B1;
        layer(&self.input, &W1, &mut h1);
        let mut h2 = B2;
        layer(&h1, &W2, &mut h2);
        sigmoid(dot(&W3, &h2) + B3)
    }
}

/// `out = tanh(out + x · w)` with `w` stored input-major (one row of outputs per input), so
/// the inner loop is a fixed-width multiply-add the compiler vectorises.
fn layer<const N: usize>(x: &[f32], w: &[[f32; N]], out: &mut [f32; N]) {
    let mut acc = *out;
    for (&xi, row) in x.iter().zip(w) {
        // Four lanes at a time: the shape the SLP vectoriser turns into one SIMD multiply-add.
        for (a, r) in acc.chunks_exact_mut(4).zip(row.chunks_exact(4)) {
            a[0] += xi * r[0];
            a[1] += xi * r[1];
            a[2] += xi * r[2];
            a[3] += xi * r[3];
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = a.tanh();
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four partial sums let the compiler vectorise without reassociating a single chain.
    let mut acc = [0.0f32; 4];
    let (a4, a_rest) = a.split_at(a.len() / 4 * 4);
    let (b4, b_rest) = b.split_at(a4.len());
    for (x, y) in a4.chunks_exact(4).zip(b4.chunks_exact(4)) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_a_plain_sum() {
        let a: Vec<f32> = (0..11).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..11).map(|i| 1.0 - i as f32 * 0.1).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-5);
    }

    #[test]
    fn probabilities_are_in_range_and_silence_is_not_speech() {
        let mut detector = Detector::new(16000);
        for _ in 0..100 {
            let p = detector.probability(&[0; 160]);
            assert!((0.0..0.5).contains(&p), "{p}");
        }
    }
}
