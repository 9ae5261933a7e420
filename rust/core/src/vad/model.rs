//! The native detector: the average of two small models over [`features`](super::features),
//! a two-hidden-layer perceptron (130 ms of context in its inputs) and a GRU that carries a
//! state through the stream (it tells the caller from other talkers; the perceptron keeps
//! hold of speech buried in noise).
//!
//! The weights in `weights.rs` are produced by `python -m benches.vad_train` (numpy only,
//! trained on a generated corpus); see that script to regenerate them.

use super::features::{FeatureExtractor, INPUTS};
use super::mathf::tanh;
use super::weights::{
    B1, B2, B3, GRU_B1, GRU_B3, GRU_BH, GRU_BX, GRU_HIDDEN, GRU_UH, GRU_UNITS, GRU_W1,
    GRU_W3_HIDDEN, GRU_W3_STATE, GRU_WEIGHT, GRU_WX, HIDDEN1, MEAN, SCALE, W1, W2, W3,
};

/// Per-frame speech probability from 10 ms frames of one stream.
#[derive(Debug, Clone)]
pub struct Detector {
    features: FeatureExtractor,
    input: [f32; INPUTS],
    /// The GRU's state after the last frame.
    state: [f32; GRU_UNITS],
}

impl Detector {
    /// A detector for 10 ms frames at `sample_rate` (8000 or 16000).
    #[must_use]
    pub fn new(sample_rate: u32) -> Self {
        Self {
            features: FeatureExtractor::new(sample_rate),
            input: [0.0; INPUTS],
            state: [0.0; GRU_UNITS],
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
        self.state = [0.0; GRU_UNITS];
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
        // Both models' first layers in one pass over the inputs.
        let mut first = FIRST_BIAS;
        layer(&self.input, &FIRST_LAYERS, &mut first);
        let (h1, hidden) = first.split_at(HIDDEN1);
        let mut h2 = B2;
        layer(h1, &W2, &mut h2);
        let perceptron = sigmoid(dot(&W3, &h2) + B3);
        let gru = self.gru_step(hidden);
        GRU_WEIGHT * gru + (1.0 - GRU_WEIGHT) * perceptron
    }

    /// Advances the GRU by its first layer's output and returns its speech probability.
    fn gru_step(&mut self, hidden: &[f32]) -> f32 {
        // The update, reset and candidate gates side by side: from the input, from the state.
        let mut from_input = GRU_BX;
        accumulate(hidden, &GRU_WX, &mut from_input);
        let mut from_state = GRU_BH;
        accumulate(&self.state, &GRU_UH, &mut from_state);
        let (zx, rest) = from_input.split_at(GRU_UNITS);
        let (rx, nx) = rest.split_at(GRU_UNITS);
        let (zh, rest) = from_state.split_at(GRU_UNITS);
        let (rh, nh) = rest.split_at(GRU_UNITS);
        for i in 0..GRU_UNITS {
            let z = sigmoid(zx[i] + zh[i]);
            let r = sigmoid(rx[i] + rh[i]);
            let n = tanh(nx[i] + r * nh[i]);
            self.state[i] = (1.0 - z) * n + z * self.state[i];
        }
        sigmoid(dot(&GRU_W3_STATE, &self.state) + dot(&GRU_W3_HIDDEN, hidden) + GRU_B3)
    }
}

const FIRST: usize = HIDDEN1 + GRU_HIDDEN;
static FIRST_LAYERS: [[f32; FIRST]; INPUTS] = join(&W1, &GRU_W1);
const FIRST_BIAS: [f32; FIRST] = join(&[B1], &[GRU_B1])[0];

/// Each row of `a` followed by the same row of `b`, at compile time.
const fn join<const R: usize, const A: usize, const B: usize, const N: usize>(
    a: &[[f32; A]; R],
    b: &[[f32; B]; R],
) -> [[f32; N]; R] {
    assert!(A + B == N, "the joined width must be the sum of the widths");
    let mut out = [[0.0; N]; R];
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < A {
            out[r][c] = a[r][c];
            c += 1;
        }
        while c < N {
            out[r][c] = b[r][c - A];
            c += 1;
        }
        r += 1;
    }
    out
}

/// `out = tanh(out + x · w)` with `w` stored input-major (one row of outputs per input).
fn layer<const N: usize>(x: &[f32], w: &[[f32; N]], out: &mut [f32; N]) {
    accumulate(x, w, out);
    for o in out.iter_mut() {
        *o = tanh(*o);
    }
}

/// `acc += x · w`, each output summing its inputs in order (so every target gives the
/// same bits): four outputs per SSE register on x86-64, where the compiler's own
/// vectoriser splits the sums into scalars and rebuilds them on every input.
#[cfg(target_arch = "x86_64")]
fn accumulate<const N: usize>(x: &[f32], w: &[[f32; N]], acc: &mut [f32; N]) {
    use std::arch::x86_64::{
        __m128, _mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_set1_ps, _mm_storeu_ps,
    };
    const LANES: usize = 4;
    const MAX_VECTORS: usize = 12;
    const {
        assert!(
            N.is_multiple_of(LANES) && N / LANES <= MAX_VECTORS,
            "layer width must be a multiple of 4, at most 48"
        );
    }
    let vectors = N / LANES;
    #[allow(unsafe_code)]
    // SAFETY: SSE is part of x86-64; every load and store stays inside `acc` or a row of
    // `N` floats, since `vectors * LANES == N`.
    unsafe {
        let mut sums: [__m128; MAX_VECTORS] = [_mm_set1_ps(0.0); MAX_VECTORS];
        for (j, sum) in sums.iter_mut().take(vectors).enumerate() {
            *sum = _mm_loadu_ps(acc.as_ptr().add(j * LANES));
        }
        for (&xi, row) in x.iter().zip(w) {
            let xv = _mm_set1_ps(xi);
            for (j, sum) in sums.iter_mut().take(vectors).enumerate() {
                *sum = _mm_add_ps(
                    *sum,
                    _mm_mul_ps(xv, _mm_loadu_ps(row.as_ptr().add(j * LANES))),
                );
            }
        }
        for (j, sum) in sums.iter().take(vectors).enumerate() {
            _mm_storeu_ps(acc.as_mut_ptr().add(j * LANES), *sum);
        }
    }
}

/// `acc += x · w`, each output summing its inputs in order.
#[cfg(not(target_arch = "x86_64"))]
fn accumulate<const N: usize>(x: &[f32], w: &[[f32; N]], acc: &mut [f32; N]) {
    for (&xi, row) in x.iter().zip(w) {
        for (a, r) in acc.iter_mut().zip(row) {
            *a += xi * r;
        }
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
    fn accumulate_gives_the_bits_of_a_plain_loop() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        };
        let x: Vec<f32> = (0..37).map(|_| next() * 3.0).collect();
        let w: Vec<[f32; 24]> = (0..37).map(|_| std::array::from_fn(|_| next())).collect();
        let start: [f32; 24] = std::array::from_fn(|_| next());
        let mut want = start;
        for (&xi, row) in x.iter().zip(&w) {
            for (a, r) in want.iter_mut().zip(row) {
                *a += xi * r;
            }
        }
        let mut got = start;
        accumulate(&x, &w, &mut got);
        assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits));
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
