//! Decimation by 3 or 6 in two steps, the sharp transition at the lowest rate that allows
//! it: by 3, a half-band decimator by 2, then 2/3; by 6, a third-band decimator by 3, then 1/2.
//!
//! Decimating by 3 directly makes the sharp transition (7.2 → 8 kHz for 48k → 16k) with a
//! filter at the input rate: 360 taps per output. At half the input rate the same transition
//! takes half the taps, and halving the rate first is cheap because everything between the
//! passband and the stopband's mirror may alias there: a half-band filter of 40 taps, 21 of
//! them non-zero. The 2/3 step is then two decimators by 3 on the half-rate history (the even
//! and odd taps of the up-by-2 prototype), whose outputs interleave; the odd one reads the
//! same rows one input later (`FastDecimator::shifted`), so the history is split once.
//!
//! By 6 (48k → 8k) the sharp transition (3.6 → 4 kHz) runs at 16 kHz: a third-band
//! decimator by 3 first (two fitted phases of 13 taps and one pure delay: everything from
//! 4 kHz up may alias at 16 kHz except what would land below 4 kHz, 12 to 20 kHz), then one
//! decimator by 2 of 240 taps, where halving first left one decimator by 3 of 360 taps at
//! 24 kHz (a frame in 1.05–1.08 instead of 1.19–1.22 µs, and 1.90–1.98 directly).
//!
//! Both first steps are a `NyquistStep`; the low-rate samples stay `f32`, so nothing is
//! rounded between the steps, and each step computes every output from the same inputs in the
//! same order whatever the chunking.

use super::design::{self, Band};
use super::fast::{self, Branch, Carried, FastDecimator, RowCache};
use super::input::Input;
use super::kernel::Kernel;
use super::lanes::LANES;
use super::nyquist::{NyquistStep, NyquistStream};

/// The two steps' filters for one rate pair.
#[derive(Debug)]
pub struct TwoStepDecimator {
    /// The first step: a half-band or third-band decimator.
    first: NyquistStep,
    /// The second step on the low-rate history: by 3, two decimators whose outputs `2j` and
    /// `2j + 1` interleave (after halving, 2/3: by 3 in all), or by 2, one (after the third-band
    /// step: by 6 in all).
    steps: Vec<FastDecimator>,
    /// Group delay in output samples.
    delay: f64,
}

impl TwoStepDecimator {
    /// Designs the two steps for decimating by `factor` (3 or 6) from `in_rate` with the
    /// passband to `pass` Hz: by 3 a half-band step then 2/3, by 6 a third-band step then
    /// 1/2. The first step's prototype takes `first_length` taps per transition band (all
    /// phases together); the second step's (at `in_rate` for 2/3, at a third of it for 1/2)
    /// has `taps` taps, so that the two delays add up to `delay` input samples.
    #[must_use]
    pub fn design(
        in_rate: f64,
        factor: usize,
        pass: f64,
        first_length: f64,
        taps: usize,
        delay: usize,
    ) -> Self {
        assert!(factor == 3 || factor == 6, "two steps decimate by 3 or 6");
        let k = if factor == 3 { 2 } else { 3 };
        let out_nyquist = in_rate / factor as f64 / 2.0;
        let first = NyquistStep::design(in_rate, k, out_nyquist, first_length);
        let step_delay = delay as f64 - first.delay();
        let (steps, delay) = if factor == 6 {
            let band = Band {
                rate: in_rate / 3.0,
                pass,
                stop: out_nyquist,
            };
            // Whole output samples in all: the first step's delay leaves a fraction here.
            let prototype = design::low_delay(taps, step_delay / 3.0, band);
            (
                vec![FastDecimator::new(&prototype.taps, 2)],
                delay as f64 / 6.0,
            )
        } else {
            let band = Band {
                rate: in_rate,
                pass,
                stop: out_nyquist,
            };
            // Up by 2 (gain 2), then even and odd taps as the two decimators by 3.
            let prototype = design::low_delay(taps, step_delay, band);
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
            (steps, delay as f64 / 3.0)
        };
        Self {
            first,
            steps,
            delay,
        }
    }

    /// Whether decimating by `factor` (3 or 6) to `out_rate` is faster in two steps than
    /// directly: when each of the second step's decimators gets whole blocks of SIMD lanes
    /// from a 20 ms frame. By 3 to 16 kHz the two get 40 columns each and the two steps cost
    /// ~19 % less than one (48k → 16k, 1.60–1.68 against 1.97–2.00 µs a frame); by 3 to 8 kHz,
    /// 20 columns leave a sixth of each pass's lanes idle, and with the half-band step
    /// (~0.15 µs) the direct form is 5–8 % faster (24k → 8k), as it is than 2/3 to 16 kHz
    /// by a third-band step and then a decimator by 2 (0.89 against 0.94 µs). By 6 to 8 kHz
    /// the one decimator gets 40 columns.
    #[must_use]
    pub fn pays(out_rate: u32, factor: usize) -> bool {
        let decimators = if factor == 3 { 2 } else { 1 };
        let columns = out_rate as usize / 50 / decimators / 4;
        columns.is_multiple_of(LANES)
    }

    /// Decimators of the second step (2 for 2/3, 1 for 1/2).
    fn branches(&self) -> usize {
        self.steps.len()
    }

    /// The second step's factor (3 for 2/3, 2 for 1/2).
    fn second_factor(&self) -> usize {
        self.steps[0].factor()
    }

    /// Group delay in output samples.
    #[must_use]
    pub fn delay(&self) -> f64 {
        self.delay
    }
}

/// One stream's state through both steps.
#[derive(Debug, Clone, Default)]
pub struct TwoStepStream {
    /// The first step's input, split into its phases.
    first: NyquistStream,
    /// Low-rate history (from history index `origin`): inputs of the second step.
    narrow: Vec<f32>,
    origin: usize,
    /// History index of the newest input of the next even and odd outputs (the odd one's is
    /// the earlier when an odd output is next; with one decimator there are only even ones).
    next: [usize; 2],
    rows: RowCache,
    floats: Vec<f32>,
    carry: [Option<Carried>; 2],
    /// The two decimators' outputs before they interleave (one writes straight to `out`).
    outs: [Vec<i16>; 2],
}

impl TwoStepStream {
    /// Forgets the stream: the next input is treated as the first.
    pub fn reset(&mut self, form: &TwoStepDecimator) {
        self.first.reset(&form.first);
        let reach = form.steps[0].reach();
        self.narrow.clear();
        self.narrow.resize(reach - 1, 0.0);
        self.origin = 0;
        self.next = [reach - 1, reach];
        self.rows.clear();
        self.carry = [None, None];
    }

    /// Even and odd outputs when the low-rate history ends at index `end`.
    fn outputs(&self, form: &TwoStepDecimator, end: usize) -> [usize; 2] {
        let m = form.second_factor();
        let [even, odd] = self.next.map(|next| end.saturating_sub(next).div_ceil(m));
        // Not `fill` on the unused tail: that compiles to a `memset` call per frame.
        [even, if form.branches() == 2 { odd } else { 0 }]
    }

    /// How many samples `process` returns for `n_in` more input samples.
    #[must_use]
    pub fn output_len(&self, form: &TwoStepDecimator, n_in: usize) -> usize {
        let end = self.origin + self.narrow.len() + self.first.output_len(&form.first, n_in);
        self.outputs(form, end).iter().sum()
    }

    /// Resamples `input`, writing exactly `output_len(input.len())` samples to `out`.
    pub fn process(
        &mut self,
        form: &TwoStepDecimator,
        kernel: Kernel,
        input: Input<'_>,
        out: &mut [i16],
    ) {
        self.first
            .process(&form.first, kernel, input, &mut self.narrow);
        let counts = self.outputs(form, self.origin + self.narrow.len());
        debug_assert_eq!(counts.iter().sum::<usize>(), out.len());
        // One decimator writes straight into `out`; two into buffers, interleaved after.
        let single = form.branches() == 1;
        if !single {
            for (buffer, &count) in self.outs.iter_mut().zip(&counts) {
                buffer.clear();
                buffer.resize(count, 0);
            }
        }
        let [even_out, odd_out] = &mut self.outs;
        let [even_carry, odd_carry] = &mut self.carry;
        let even = Branch {
            decimator: &form.steps[0],
            newest: self.next[0],
            out: if single { &mut *out } else { even_out },
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
        if !single {
            self.interleave(out);
        }
        let m = form.second_factor();
        for (next, count) in self.next.iter_mut().zip(counts) {
            *next += m * count;
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

    /// Drops low-rate inputs no future output can reach, in whole columns of the rows, and
    /// frees those the rows hold alone.
    fn discard_consumed(&mut self, form: &TwoStepDecimator) {
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
        // The second position is unused with one branch (and may lie before the drop).
        for next in &mut self.next[..form.branches()] {
            *next -= drop;
        }
    }
}
