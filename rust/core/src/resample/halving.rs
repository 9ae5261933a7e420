//! Decimation by 3 or 6 in two steps: a half-band decimator by 2, then 2/3 or 1/3.
//!
//! Decimating by 3 directly makes the sharp transition (7.2 → 8 kHz for 48k → 16k) with a
//! filter at the input rate: 360 taps per output. At half the input rate the same transition
//! takes half the taps, and halving the rate first is cheap because everything between the
//! passband and the stopband's mirror may alias there: a half-band filter of 40 taps, 21 of
//! them non-zero. The 2/3 step is then two decimators by 3 on the half-rate history (the even
//! and odd taps of the up-by-2 prototype), whose outputs interleave; the odd one reads the
//! same rows one input later (`FastDecimator::shifted`), so the history is split once. By 6
//! (48k → 8k), the second step is one decimator by 3 at the half rate: 360 taps at 24 kHz
//! where the direct filter takes 720 at 48 kHz (a frame in 1.25–1.27 instead of 1.90–1.98 µs).
//!
//! The half-rate samples stay `f32`, so nothing is rounded between the steps; each step
//! computes every output from the same inputs in the same order whatever the chunking.

use super::design::{self, Band};
use super::fast::{self, Branch, Carried, FastDecimator, RowCache};
use super::input::Input;
use super::kernel::Kernel;
use super::lanes::LANES;

/// Outputs of the half-band step computed together (lanes of one register).
const BLOCK: usize = 8;

/// The two steps' filters for one rate pair.
#[derive(Debug)]
pub struct HalvingDecimator {
    /// The half-band step's taps on even inputs, oldest first: output `n` is
    /// `½·x[2n − 2·odd_at − 1] + Σ_j half[j]·x[2n − 2(taps − 1 − j)]`.
    half: Vec<f32>,
    /// Distance back, in odd inputs, of the half-band step's single odd tap (of exactly ½).
    odd_at: usize,
    /// The second step on the half-rate history: two decimators by 3 whose outputs `2j` and
    /// `2j + 1` interleave (2/3, by 3 in all), or one (by 6 in all).
    steps: Vec<FastDecimator>,
    /// Group delay in output samples.
    delay: f64,
}

impl HalvingDecimator {
    /// Designs the two steps for decimating by `factor` (3 or 6) from `in_rate` with the
    /// passband to `pass` Hz: the half-band step with `half_taps` taps per phase, and a second
    /// step whose prototype (at `in_rate` for 2/3, at half of it for 1/3) has `taps` taps, so
    /// that the two delays add up to `delay` input samples.
    #[must_use]
    pub fn design(
        in_rate: f64,
        factor: usize,
        pass: f64,
        half_taps: usize,
        taps: usize,
        delay: usize,
    ) -> Self {
        assert!(factor == 3 || factor == 6, "two steps decimate by 3 or 6");
        let out_nyquist = in_rate / (2 * factor) as f64;
        // The half-band step passes up to the output's Nyquist; its mirror (everything that
        // would alias below it at the half rate) is its stopband.
        let half_delay = (0.28 * half_taps as f64).round() as usize;
        let half_band = design::half_band(half_taps, half_delay, out_nyquist / (in_rate / 4.0));
        let step_delay = delay - half_band.delay as usize;
        let half = half_band
            .taps
            .iter()
            .step_by(2)
            .rev()
            .map(|&h| h as f32)
            .collect();
        if factor == 6 {
            let band = Band {
                rate: in_rate / 2.0,
                pass,
                stop: out_nyquist,
            };
            // Whole output samples in all: the half-band's odd delay leaves half a sample here.
            let prototype = design::low_delay(taps, step_delay as f64 / 2.0, band);
            return Self {
                half,
                odd_at: half_delay,
                steps: vec![FastDecimator::new(&prototype.taps, 3)],
                delay: delay as f64 / 6.0,
            };
        }
        let band = Band {
            rate: in_rate,
            pass,
            stop: out_nyquist,
        };
        // Up by 2 (gain 2), then even and odd taps as the two decimators by 3.
        let prototype = design::low_delay(taps, step_delay as f64, band);
        let phase = |p: usize| -> Vec<f64> {
            prototype
                .taps
                .iter()
                .skip(p)
                .step_by(2)
                .map(|h| 2.0 * h)
                .collect()
        };
        let steps = vec![
            FastDecimator::new(&phase(0), 3),
            FastDecimator::shifted(&phase(1), 3, 1),
        ];
        Self {
            half,
            odd_at: half_delay,
            steps,
            delay: delay as f64 / 3.0,
        }
    }

    /// Whether decimating by `factor` (3 or 6) to `out_rate` is faster in two steps than
    /// directly: when each of the second step's decimators gets whole blocks of SIMD lanes
    /// from a 20 ms frame. By 3 to 16 kHz the two get 40 columns each and the two steps cost
    /// ~19 % less than one (48k → 16k, 1.60–1.68 against 1.97–2.00 µs a frame); by 3 to 8 kHz,
    /// 20 columns leave a sixth of each pass's lanes idle, and with the half-band step
    /// (~0.15 µs) the direct form is 5–8 % faster (24k → 8k). By 6 to 8 kHz the one decimator
    /// gets 40 columns.
    #[must_use]
    pub fn pays(out_rate: u32, factor: usize) -> bool {
        let decimators = if factor == 3 { 2 } else { 1 };
        let columns = out_rate as usize / 50 / decimators / 4;
        columns.is_multiple_of(LANES)
    }

    /// Decimators of the second step (2 for 2/3, 1 for 1/3).
    fn branches(&self) -> usize {
        self.steps.len()
    }

    /// Group delay in output samples.
    #[must_use]
    pub fn delay(&self) -> f64 {
        self.delay
    }
}

/// One stream's state through both steps.
#[derive(Debug, Clone, Default)]
pub struct HalvingStream {
    /// Full-rate inputs from the oldest the next half-band output reads, split into even and
    /// odd samples: that output's newest input is `evens[taps − 1]`. `evens` is one longer
    /// while an even input waits for its odd one.
    evens: Vec<f32>,
    odds: Vec<f32>,
    /// Half-rate history (from history index `origin`): inputs of the second step.
    narrow: Vec<f32>,
    origin: usize,
    /// History index of the newest input of the next even and odd outputs (the odd one's is
    /// the earlier when an odd output is next; by 6 there are only even ones).
    next: [usize; 2],
    rows: RowCache,
    floats: Vec<f32>,
    carry: [Option<Carried>; 2],
    outs: [Vec<i16>; 2],
}

impl HalvingStream {
    /// Forgets the stream: the next input is treated as the first.
    pub fn reset(&mut self, form: &HalvingDecimator) {
        for inputs in [&mut self.evens, &mut self.odds] {
            inputs.clear();
            inputs.resize(form.half.len() - 1, 0.0);
        }
        let reach = form.steps[0].reach();
        self.narrow.clear();
        self.narrow.resize(reach - 1, 0.0);
        self.origin = 0;
        self.next = [reach - 1, reach];
        self.rows.clear();
        self.carry = [None, None];
    }

    /// Half-band outputs that `n_in` more inputs allow.
    fn half_outputs(&self, form: &HalvingDecimator, n_in: usize) -> usize {
        let pending = self.evens.len() - self.odds.len();
        (self.evens.len() + (n_in - pending.min(n_in)).div_ceil(2))
            .saturating_sub(form.half.len() - 1)
    }

    /// Even and odd outputs when the half-rate history ends at index `end`.
    fn outputs(&self, form: &HalvingDecimator, end: usize) -> [usize; 2] {
        let mut counts = self.next.map(|next| end.saturating_sub(next).div_ceil(3));
        counts[form.branches()..].fill(0);
        counts
    }

    /// How many samples `process` returns for `n_in` more input samples.
    #[must_use]
    pub fn output_len(&self, form: &HalvingDecimator, n_in: usize) -> usize {
        let end = self.origin + self.narrow.len() + self.half_outputs(form, n_in);
        self.outputs(form, end).iter().sum()
    }

    /// Resamples `input`, writing exactly `output_len(input.len())` samples to `out`.
    pub fn process(
        &mut self,
        form: &HalvingDecimator,
        kernel: Kernel,
        input: Input<'_>,
        out: &mut [i16],
    ) {
        let halves = self.half_outputs(form, input.len());
        self.split_input(input);
        self.halve(form, kernel, halves);
        let counts = self.outputs(form, self.origin + self.narrow.len());
        debug_assert_eq!(counts.iter().sum::<usize>(), out.len());
        for (buffer, &count) in self.outs.iter_mut().zip(&counts) {
            buffer.clear();
            buffer.resize(count, 0);
        }
        let [even_out, odd_out] = &mut self.outs;
        let [even_carry, odd_carry] = &mut self.carry;
        let even = Branch {
            decimator: &form.steps[0],
            newest: self.next[0],
            out: even_out,
            carry: even_carry,
        };
        // The odd decimator counts its history from one input later.
        let odd = form.steps.get(1).map(|decimator| Branch {
            decimator,
            newest: self.next[1] - 1,
            out: odd_out,
            carry: odd_carry,
        });
        let (mut both, mut one);
        let branches: &mut [Branch<'_>] = if let Some(odd) = odd {
            both = [even, odd];
            &mut both
        } else {
            one = [even];
            &mut one
        };
        let (history, origin) = (&self.narrow, self.origin);
        match kernel {
            Kernel::Portable => {
                fast::branches_portable(
                    branches,
                    history,
                    origin,
                    &mut self.rows,
                    &mut self.floats,
                );
            }
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Avx2Fma` is only ever returned by `detect` after the CPU reported both features.
            Kernel::Avx2Fma => unsafe {
                fast::branches_avx2_fma(
                    branches,
                    history,
                    origin,
                    &mut self.rows,
                    &mut self.floats,
                );
            },
        }
        if form.branches() == 1 {
            out.copy_from_slice(&self.outs[0]);
        } else {
            self.interleave(out);
        }
        for (next, count) in self.next.iter_mut().zip(counts) {
            *next += 3 * count;
        }
        self.discard_consumed(form);
    }

    /// The two decimators' outputs into `out`, from whichever output is next.
    fn interleave(&self, out: &mut [i16]) {
        let order = if self.next[1] < self.next[0] {
            [1, 0]
        } else {
            [0, 1]
        };
        let (first, second) = (&self.outs[order[0]], &self.outs[order[1]]);
        let mut pairs = out.chunks_exact_mut(2);
        for ((pair, &a), &b) in (&mut pairs).zip(first).zip(second) {
            pair.copy_from_slice(&[a, b]);
        }
        if let [last] = pairs.into_remainder() {
            *last = first[first.len() - 1];
        }
    }

    /// The half-band step: `count` outputs appended to the half-rate history.
    fn halve(&mut self, form: &HalvingDecimator, kernel: Kernel, count: usize) {
        if count == 0 {
            return;
        }
        let taps = form.half.len();
        // Inputs of whole blocks of outputs, zeros past the last real one while computing.
        let (evens, odds) = (self.evens.len(), self.odds.len());
        let padded = count.next_multiple_of(BLOCK) + taps;
        self.evens.resize(padded.max(evens), 0.0);
        self.odds.resize(padded.max(odds), 0.0);
        // Output `t` reads evens `t` to `t + taps − 1` and the odd input `odd_at + 1` before
        // its newest even one.
        let odd_from = taps - 2 - form.odd_at;
        let start = self.narrow.len();
        self.narrow
            .resize(start + count.next_multiple_of(BLOCK), 0.0);
        let out = &mut self.narrow[start..];
        match kernel {
            Kernel::Portable => {
                half_band_portable(&form.half, &self.evens, &self.odds[odd_from..], out);
            }
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Avx2Fma` is only ever returned by `detect` after the CPU reported both features.
            Kernel::Avx2Fma => unsafe {
                half_band_avx2_fma(&form.half, &self.evens, &self.odds[odd_from..], out);
            },
        }
        self.narrow.truncate(start + count);
        // The next output's oldest even input is `count` pairs on.
        self.evens.truncate(evens);
        self.odds.truncate(odds);
        self.evens.drain(..count);
        self.odds.drain(..count);
    }

    /// Appends this call's input to the even and odd inputs, as `f32`.
    fn split_input(&mut self, input: Input<'_>) {
        // An even input waiting for its odd one takes the first sample.
        let first = usize::from(self.evens.len() > self.odds.len());
        input.extend_f32_every(1 - first, 2, &mut self.odds);
        input.extend_f32_every(first, 2, &mut self.evens);
    }

    /// Drops half-rate inputs no future output can reach, in whole columns of the rows, and
    /// frees those the rows hold alone.
    fn discard_consumed(&mut self, form: &HalvingDecimator) {
        let reach = form.steps[0].reach();
        let oldest = if form.branches() == 1 {
            self.next[0]
        } else {
            self.next[0].min(self.next[1])
        };
        let keep_from = oldest + 1 - reach;
        let drop = super::discard_history(
            &mut self.narrow,
            &mut self.origin,
            &mut self.rows,
            keep_from,
            form.steps[0].history_step(),
        );
        self.next = self.next.map(|next| next - drop);
    }
}

/// `out[t] = ½·odds[t] + Σ_j taps[j]·evens[t + j]` for every `t`, in blocks of `BLOCK` lanes,
/// each lane's sum in one fixed order (the AVX2 kernel's, without fused multiply-adds).
fn half_band_portable(taps: &[f32], evens: &[f32], odds: &[f32], out: &mut [f32]) {
    for (t, block) in out.chunks_exact_mut(BLOCK).enumerate() {
        let at = t * BLOCK;
        let mut acc: [f32; BLOCK] = std::array::from_fn(|k| 0.5 * odds[at + k]);
        for (j, &c) in taps.iter().enumerate() {
            for k in 0..BLOCK {
                acc[k] += c * evens[at + j + k];
            }
        }
        block.copy_from_slice(&acc);
    }
}

/// `half_band_portable` with fused multiply-adds, four registers of outputs at a time so that
/// the multiply-adds of one register do not wait on each other. (16-lane AVX-512 registers
/// measured no faster: the loop is bound by its unaligned loads.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn half_band_avx2_fma(taps: &[f32], evens: &[f32], odds: &[f32], out: &mut [f32]) {
    assert!(out.len().is_multiple_of(BLOCK));
    assert!(evens.len() + 1 >= out.len() + taps.len() && odds.len() >= out.len());
    let mut at = 0;
    while at < out.len() {
        let group = ((out.len() - at) / BLOCK).min(4);
        #[allow(unsafe_code)]
        // SAFETY: bounds asserted above.
        unsafe {
            match group {
                4 => avx2::half_band::<4>(taps, evens, odds, out, at),
                3 => avx2::half_band::<3>(taps, evens, odds, out, at),
                2 => avx2::half_band::<2>(taps, evens, odds, out, at),
                _ => avx2::half_band::<1>(taps, evens, odds, out, at),
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

    /// `G` blocks of 8 outputs from output `at`.
    ///
    /// # Safety
    /// AVX2 and FMA; `evens` holds `at + 8G + taps − 1` floats, `odds` and `out` `at + 8G`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(unsafe_code)]
    pub(super) unsafe fn half_band<const G: usize>(
        taps: &[f32],
        evens: &[f32],
        odds: &[f32],
        out: &mut [f32],
        at: usize,
    ) {
        let (e, o, y) = (evens.as_ptr(), odds.as_ptr(), out.as_mut_ptr());
        let mut acc = [_mm256_setzero_ps(); G];
        let half = _mm256_set1_ps(0.5);
        // SAFETY (this block): the caller's bounds; unaligned loads and stores.
        unsafe {
            for (g, a) in acc.iter_mut().enumerate() {
                *a = _mm256_mul_ps(half, _mm256_loadu_ps(o.add(at + g * BLOCK)));
            }
            for (j, &c) in taps.iter().enumerate() {
                let c = _mm256_set1_ps(c);
                for (g, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(c, _mm256_loadu_ps(e.add(at + g * BLOCK + j)), *a);
                }
            }
            for (g, a) in acc.iter().enumerate() {
                _mm256_storeu_ps(y.add(at + g * BLOCK), *a);
            }
        }
    }
}
