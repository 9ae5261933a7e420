//! A decimator by 2 or 3 whose transition may be wide: a half-band or third-band step in
//! front of the sharp filter (`two_step`), or of a relayed pair (`Relay`), its samples kept
//! `f32` for the step after it.
//!
//! Everything between the final output's Nyquist and its mirror about the low rate may alias,
//! so the step is short: `k − 1` fitted phases of a few taps and one pure delay
//! (`design::nyquist`). The input is split into its `k` phases as it is converted, each
//! fitted phase is a short convolution along its phase, the pure phase one scaled input.
//! Every output is computed from the same inputs in the same order whatever the chunking.

use super::design;
use super::input::Input;
use super::kernel::Kernel;

/// Outputs computed together (lanes of one register).
const BLOCK: usize = 8;
/// The step decimates by at most this many (phases of its input).
const MAX_K: usize = 3;

/// The step's filter.
#[derive(Debug)]
pub struct NyquistStep {
    /// The factor: 2 (half-band) or 3 (third-band).
    k: usize,
    /// Taps of each fitted phase; every phase of the input keeps this many samples of history.
    n: usize,
    /// The pure-delay phase: output `t` takes `1/k` times input phase 1 at `t + pure_at`
    /// (phase `q` of the input holds inputs `k·i + q`, from the history's start).
    pure_at: usize,
    /// The fitted phases, in summing order: input phase, where output `t`'s window starts in
    /// it (relative to `t`), and the taps, oldest input first.
    fitted: Vec<(usize, usize, Vec<f32>)>,
    /// Group delay in input samples.
    delay: f64,
}

impl NyquistStep {
    /// The step by `k` (2 or 3) from `in_rate` for a final output whose Nyquist is
    /// `out_nyquist` Hz: flat to it, with what would alias below it at the low rate as the
    /// stopband, so the transition runs from `out_nyquist` to its mirror about the low rate.
    /// The prototype takes `length` taps per transition band (all phases together).
    #[must_use]
    pub fn design(in_rate: f64, k: usize, out_nyquist: f64, length: f64) -> Self {
        assert!(k == 2 || k == MAX_K, "a Nyquist step decimates by 2 or 3");
        let low_rate = in_rate / k as f64;
        let n =
            ((length * in_rate / (low_rate - 2.0 * out_nyquist)).ceil() / k as f64).ceil() as usize;
        let first_delay = (0.28 * n as f64).round() as usize;
        let prototype = design::nyquist(k, n, first_delay, out_nyquist / (low_rate / 2.0));
        // Phase `r` of the prototype reads input `k·m − k·j − r` for output `m`: phase 0 of the
        // input for `r = 0`, phase `k − r` one low-rate sample back otherwise.
        let phase_taps = |r: usize| -> Vec<f32> {
            prototype
                .taps
                .iter()
                .skip(r)
                .step_by(k)
                .rev()
                .map(|&h| h as f32)
                .collect()
        };
        let fitted = (0..k - 1)
            .map(|r| {
                if r == 0 {
                    (0, 1, phase_taps(0))
                } else {
                    (k - r, 0, phase_taps(r))
                }
            })
            .collect();
        Self {
            k,
            n,
            pure_at: n - 1 - first_delay,
            fitted,
            delay: prototype.delay,
        }
    }

    /// Group delay in input samples.
    #[must_use]
    pub fn delay(&self) -> f64 {
        self.delay
    }
}

/// One stream's input through the step.
#[derive(Debug, Clone, Default)]
pub struct NyquistStream {
    /// Inputs split into the step's `k` phases (`phases[q][i]` is input `k·i + q` counted from
    /// the history's start), from the oldest the next output reads: that output's newest input
    /// is `phases[0][n]`. A phase is one longer while the next input belongs to a later one.
    phases: [Vec<f32>; MAX_K],
}

impl NyquistStream {
    /// Forgets the stream: the next input is treated as the first.
    pub fn reset(&mut self, form: &NyquistStep) {
        for (q, inputs) in self.phases.iter_mut().enumerate() {
            inputs.clear();
            if q < form.k {
                inputs.resize(form.n, 0.0);
            }
        }
    }

    /// The phase the next input belongs to: the first one shorter than phase 0, or phase 0.
    fn next_phase(&self, form: &NyquistStep) -> usize {
        let whole = self.phases[0].len();
        (1..form.k)
            .find(|&q| self.phases[q].len() < whole)
            .unwrap_or(0)
    }

    /// Outputs that `n_in` more inputs allow.
    pub fn output_len(&self, form: &NyquistStep, n_in: usize) -> usize {
        let k = form.k;
        // The call's input `i` goes to phase `(next + i) mod k`.
        let to_phase_0 = (k - self.next_phase(form)) % k;
        let added = n_in.saturating_sub(to_phase_0).div_ceil(k);
        (self.phases[0].len() + added).saturating_sub(form.n)
    }

    /// Appends every output `input` allows (`output_len(input.len())` of them) to `out`.
    pub fn process(
        &mut self,
        form: &NyquistStep,
        kernel: Kernel,
        input: Input<'_>,
        out: &mut Vec<f32>,
    ) {
        let count = self.output_len(form, input.len());
        self.split_input(form, input);
        if count == 0 {
            return;
        }
        // Inputs of whole blocks of outputs, zeros past the last real one while computing.
        let lens = self.phases.each_ref().map(Vec::len);
        let padded = count.next_multiple_of(BLOCK) + form.n + 1;
        for inputs in &mut self.phases[..form.k] {
            inputs.resize(padded.max(inputs.len()), 0.0);
        }
        let start = out.len();
        out.resize(start + count.next_multiple_of(BLOCK), 0.0);
        let pure = (&self.phases[1][form.pure_at..], 1.0 / form.k as f32);
        let mut fitted: [(&[f32], &[f32]); MAX_K - 1] = [(&[], &[]); MAX_K - 1];
        for (slot, (phase, from, taps)) in fitted.iter_mut().zip(&form.fitted) {
            *slot = (&self.phases[*phase][*from..], taps);
        }
        let fitted = &fitted[..form.fitted.len()];
        let blocks = &mut out[start..];
        match kernel {
            Kernel::Portable => first_step_portable(pure, fitted, blocks),
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Avx2Fma` is only ever returned by `detect` after the CPU reported both features.
            Kernel::Avx2Fma => unsafe { first_step_avx2_fma(pure, fitted, blocks) },
        }
        out.truncate(start + count);
        // The next output's oldest inputs are `count` low-rate samples on.
        for (inputs, len) in self.phases.iter_mut().zip(lens) {
            inputs.truncate(len);
            inputs.drain(..count.min(len));
        }
    }

    /// Appends this call's input to the phases, as `f32`.
    fn split_input(&mut self, form: &NyquistStep, input: Input<'_>) {
        let (k, next) = (form.k, self.next_phase(form));
        for (q, inputs) in self.phases[..k].iter_mut().enumerate() {
            input.extend_f32_every((q + k - next) % k, k, inputs);
        }
    }
}

/// The step's samples, whose windows start at each slice: `out[t] = scale·pure[t] +
/// Σ_fitted Σ_j taps[j]·inputs[t + j]` for every `t`, in blocks of `BLOCK` lanes, each
/// lane's sum in one fixed order (the AVX2 kernel's, without fused multiply-adds).
fn first_step_portable(pure: (&[f32], f32), fitted: &[(&[f32], &[f32])], out: &mut [f32]) {
    let (pure, scale) = pure;
    for (t, block) in out.chunks_exact_mut(BLOCK).enumerate() {
        let at = t * BLOCK;
        let mut acc: [f32; BLOCK] = std::array::from_fn(|k| scale * pure[at + k]);
        for &(inputs, taps) in fitted {
            for (j, &c) in taps.iter().enumerate() {
                for k in 0..BLOCK {
                    acc[k] += c * inputs[at + j + k];
                }
            }
        }
        block.copy_from_slice(&acc);
    }
}

/// `first_step_portable` with fused multiply-adds, four registers of outputs at a time so
/// that the multiply-adds of one register do not wait on each other. The loop is bound by its
/// unaligned loads, so the steps `NyquistStep::design` makes for the supported rates get their
/// tap counts at compile time: unrolled, the four registers' overlapping windows share their
/// loads (37 for 52 multiply-adds at 13 taps, where each multiply-add loaded its own; 48k→8k
/// ~40 ns a frame faster). (16-lane registers, eight of 8 lanes, or AVX-512's 32 registers
/// holding the taps measured no faster.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn first_step_avx2_fma(pure: (&[f32], f32), fitted: &[(&[f32], &[f32])], out: &mut [f32]) {
    assert!(out.len().is_multiple_of(BLOCK) && pure.0.len() >= out.len());
    for &(inputs, taps) in fitted {
        assert!(inputs.len() + 1 >= out.len() + taps.len());
    }
    // 44.1k→8k's half-band step (11 taps, `"fast"` 7), 48k→16k's (20) and 48k→8k's
    // third-band step (two phases of 13); `N = 0` takes any length.
    match (fitted, fitted[0].1.len()) {
        ([one], 7) => blocks::<1, 7>([*one], pure, out),
        ([one], 11) => blocks::<1, 11>([*one], pure, out),
        ([one], 20) => blocks::<1, 20>([*one], pure, out),
        ([one], _) => blocks::<1, 0>([*one], pure, out),
        ([one, two], 13) if two.1.len() == 13 => blocks::<2, 13>([*one, *two], pure, out),
        ([one, two], _) => blocks::<2, 0>([*one, *two], pure, out),
        _ => unreachable!("the first step has one or two fitted phases"),
    }
}

/// `first_step_avx2_fma` for `F` fitted phases of `N` taps each (any number for 0; bounds
/// and tap counts checked by the caller).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn blocks<const F: usize, const N: usize>(
    fitted: [(&[f32], &[f32]); F],
    pure: (&[f32], f32),
    out: &mut [f32],
) {
    let mut at = 0;
    while at < out.len() {
        let group = ((out.len() - at) / BLOCK).min(4);
        #[allow(unsafe_code)]
        // SAFETY: bounds asserted by `first_step_avx2_fma`.
        unsafe {
            match group {
                4 => avx2::first_step::<4, N>(pure, &fitted, out, at),
                3 => avx2::first_step::<3, N>(pure, &fitted, out, at),
                2 => avx2::first_step::<2, N>(pure, &fitted, out, at),
                _ => avx2::first_step::<1, N>(pure, &fitted, out, at),
            }
        }
        at += group * BLOCK;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps,
        _mm256_storeu_ps,
    };

    use super::BLOCK;

    /// `G` blocks of 8 outputs from output `at`, each fitted phase's taps `N` long (any
    /// length for 0: with `N` fixed the loops unroll and the blocks share their loads).
    ///
    /// # Safety
    /// AVX2 and FMA; `N` is 0 or every fitted phase's tap count; each fitted input slice
    /// holds `at + 8G + taps − 1` floats, `pure.0` and `out` `at + 8G`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(unsafe_code)]
    pub(super) unsafe fn first_step<const G: usize, const N: usize>(
        pure: (&[f32], f32),
        fitted: &[(&[f32], &[f32])],
        out: &mut [f32],
        at: usize,
    ) {
        let (p, y) = (pure.0.as_ptr(), out.as_mut_ptr());
        let mut acc = [_mm256_setzero_ps(); G];
        let scale = _mm256_set1_ps(pure.1);
        // SAFETY (this block): the caller's bounds and tap counts; unaligned loads and stores.
        unsafe {
            for (g, a) in acc.iter_mut().enumerate() {
                *a = _mm256_mul_ps(scale, _mm256_loadu_ps(p.add(at + g * BLOCK)));
            }
            for &(inputs, taps) in fitted {
                let x = inputs.as_ptr();
                let n = if N == 0 { taps.len() } else { N };
                for j in 0..n {
                    let c = _mm256_set1_ps(*taps.get_unchecked(j));
                    for (g, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(c, _mm256_loadu_ps(x.add(at + g * BLOCK + j)), *a);
                    }
                }
            }
            for (g, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(y.add(at + g * BLOCK), *a);
            }
        }
    }
}

/// The AVX2 kernel's tests (x86-64 only; the resampler's tests cover the step on every target).
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Deterministic values in (−1, 1) (a linear congruential sequence).
    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The AVX2 kernel with the tap counts fixed at compile time gives the samples of the
    /// any-length loop bit for bit (the same multiply-adds in the same order), and both stay
    /// within rounding of the portable kernel, for every specialised count and others.
    #[test]
    fn fixed_tap_counts_give_the_same_samples_as_any_length() {
        if !crate::simd::has_avx2_fma() {
            return;
        }
        let outputs = 13 * BLOCK; // three groups of four blocks and one single block
        for (phases, n) in [(1, 7), (1, 11), (1, 20), (2, 13), (1, 5), (2, 9)] {
            let pure = values(outputs, 1);
            let inputs: Vec<Vec<f32>> = (0..phases).map(|q| values(outputs + n, 10 + q)).collect();
            let taps: Vec<Vec<f32>> = (0..phases).map(|q| values(n, 20 + q)).collect();
            let fitted: Vec<(&[f32], &[f32])> = inputs
                .iter()
                .zip(&taps)
                .map(|(x, t)| (x.as_slice(), t.as_slice()))
                .collect();
            let mut dispatched = vec![0.0; outputs];
            let mut any = vec![0.0; outputs];
            let mut portable = vec![0.0; outputs];
            #[allow(unsafe_code)]
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            unsafe {
                first_step_avx2_fma((&pure, 0.5), &fitted, &mut dispatched);
                match fitted[..] {
                    [one] => blocks::<1, 0>([one], (&pure, 0.5), &mut any),
                    [one, two] => blocks::<2, 0>([one, two], (&pure, 0.5), &mut any),
                    _ => unreachable!(),
                }
            }
            first_step_portable((&pure, 0.5), &fitted, &mut portable);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&dispatched), bits(&any), "{phases} phases of {n} taps");
            for (a, b) in any.iter().zip(&portable) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{phases} phases of {n} taps: {a} vs {b}"
                );
            }
        }
    }
}
