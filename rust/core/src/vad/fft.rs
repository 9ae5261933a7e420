//! Power spectra of fixed-length real frames, through `realfft` (planned once per detector).

use std::fmt;
use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};

/// Power spectrum of real frames of a fixed length `n`.
pub struct PowerFft {
    n: usize,
    plan: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    spectrum: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl fmt::Debug for PowerFft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerFft")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl Clone for PowerFft {
    fn clone(&self) -> Self {
        Self::new(self.n)
    }
}

impl PowerFft {
    /// An FFT for frames of `n` samples (`n` even).
    #[must_use]
    pub fn new(n: usize) -> Self {
        assert!(n >= 2 && n.is_multiple_of(2), "FFT length must be even");
        let plan = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        Self {
            n,
            input: plan.make_input_vec(),
            spectrum: plan.make_output_vec(),
            scratch: plan.make_scratch_vec(),
            plan,
        }
    }

    /// Writes `|X[k]|^2` for `k` in `0..power.len()` (at most `n/2 + 1` bins) of the real
    /// frame `x` (`n` samples).
    pub fn power(&mut self, x: &[f32], power: &mut [f32]) {
        assert_eq!(x.len(), self.n, "frame must have the FFT's length");
        assert!(power.len() <= self.n / 2 + 1, "too many bins requested");
        self.input.copy_from_slice(x);
        self.plan
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .expect("buffers are sized by the plan");
        for (out, bin) in power.iter_mut().zip(&self.spectrum) {
            *out = bin.norm_sqr();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_power(x: &[f32], bins: usize) -> Vec<f32> {
        let n = x.len();
        (0..bins)
            .map(|k| {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (t, &v) in x.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                    re += f64::from(v) * a.cos();
                    im += f64::from(v) * a.sin();
                }
                (re * re + im * im) as f32
            })
            .collect()
    }

    #[test]
    fn matches_a_naive_dft() {
        for n in [4usize, 8, 256, 512] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 113) as f32 / 56.0 - 1.0) + (i as f32 * 0.3).sin())
                .collect();
            let mut fft = PowerFft::new(n);
            let mut got = vec![0.0; n / 2 + 1];
            fft.power(&x, &mut got);
            let want = naive_power(&x, n / 2 + 1);
            let peak = want.iter().copied().fold(0.0f32, f32::max);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * peak, "n={n}: {g} vs {w}");
            }
        }
    }
}
