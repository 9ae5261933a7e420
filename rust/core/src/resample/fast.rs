//! Decimation by an integer factor `M` (L = 1) with the two-parallel fast FIR algorithm:
//! three multiply-adds where direct convolution does four.
//!
//! Split into its `M` polyphase branches (`x_p[j] = x[Mj − p]`, `h_p[k] = h[Mk + p]`), the
//! decimator is a sum of ordinary convolutions at the output rate. Outputs are taken in pairs:
//! with `X0`, `X1` the even and odd samples of a branch and `H0`, `H1` the even and odd taps,
//!
//! ```text
//! y[2i] = A[i] + B[i − 1],   y[2i + 1] = C[i] − A[i] − B[i],
//! A = Σ_p H0·X0,   B = Σ_p H1·X1,   C = Σ_p (H0 + H1)·(X0 + X1),
//! ```
//!
//! three convolutions of half the length for two outputs. Each of `A`, `B`, `C` at column `i`
//! is one fixed sum over fixed inputs, computed across SIMD lanes (`i` to `i + 7`) like the
//! `lanes` kernel, and every output is combined from them in one fixed order, so chunking never
//! changes a sample. Its inputs are all in once the output's own newest input is, so nothing is
//! held back.
//!
//! An even output's newest input is a multiple of `2M` in the history, which the resampler keeps
//! true by starting the stream there and dropping history `2M` inputs at a time
//! (`history_step`); the history is split into `2M` rows, one column per output pair.

use super::kernel::{to_sample, Cursor, Scratch};
use super::lanes::{block_offset, Rows, LANES, LINE};

/// Columns of `A`, `B`, `C` per round (a 20 ms frame at 8 kHz is 80 columns, plus one for
/// `B[i − 1]`).
const ROUND: usize = 88;
/// Blocks of 8 lanes per pass at most: three sums of six blocks, three coefficients and a few
/// inputs fit AVX-512VL's 32 registers (AVX2's 16 take three blocks).
const MAX_BLOCKS: usize = 6;
/// Scratch columns per round, room for a last pass that runs past the round's end.
const SCRATCH: usize = ROUND + MAX_BLOCKS * LANES;

/// A decimating filter in the form the fast algorithm uses.
#[derive(Debug)]
pub struct FastDecimator {
    m: usize,
    /// Taps of each half-length convolution, per branch.
    half: usize,
    /// For branch `p`, tap `k` (at `p · half + k`): `[H0, H1, H0 + H1]`.
    taps: Vec<[f32; 3]>,
}

impl FastDecimator {
    /// The decimator by `m` for prototype `h` (`h[0]` weighs the newest input).
    #[must_use]
    pub fn new(h: &[f64], m: usize) -> Self {
        let half = h.len().div_ceil(2 * m);
        let tap = |n: usize| h.get(n).copied().unwrap_or(0.0);
        let mut taps = Vec::with_capacity(m * half);
        for p in 0..m {
            for k in 0..half {
                let (h0, h1) = (tap(2 * m * k + p), tap(2 * m * k + m + p));
                taps.push([h0 as f32, h1 as f32, (h0 + h1) as f32]);
            }
        }
        Self { m, half, taps }
    }

    /// Inputs an output reaches back over, its own newest included: one more output pair than
    /// the prototype, for `B[i − 1]`, and one more than a multiple of `2M`, so that a stream's
    /// first output (even) has its newest input at a multiple of `2M`.
    #[must_use]
    pub fn reach(&self) -> usize {
        2 * self.m * (self.half + 1) + 1
    }

    /// History must be dropped in multiples of this many inputs to keep its rows aligned.
    #[must_use]
    pub fn history_step(&self) -> usize {
        2 * self.m
    }

    /// Rows of branch `p`'s even and odd samples: `X0[i]` and `X1[i]` are both column `i − 1`
    /// of their rows (see `split`).
    fn branch(&self, p: usize) -> (usize, usize) {
        (self.m - 1 - p, 2 * self.m - 1 - p)
    }

    /// Splits the history into `2M` rows so that column `c` holds inputs `2M(c + 1) − M + 1`
    /// to `2M(c + 1) + M`: frame `c + 1`'s `X0` and `X1` of every branch in one column.
    /// The scratch space for `Sums` comes first in `buffer`.
    fn split<'a>(&self, history: &[f32], buffer: &'a mut Vec<f32>) -> (Rows<'a>, Sums<'a>) {
        let (rows, front) =
            Rows::split_after(&history[self.m + 1..], 2 * self.m, buffer, 3 * SCRATCH);
        let (a, rest) = front.split_at_mut(SCRATCH);
        let (b, c) = rest.split_at_mut(SCRATCH);
        (rows, Sums { a, b, c })
    }
}

/// Where one pass reads: lane `k` of a pass computes column `first + k` of `A`, `B` and `C`.
#[derive(Clone, Copy)]
struct Pass<'a> {
    decimator: &'a FastDecimator,
    rows: Rows<'a>,
    first: usize,
}

impl Pass<'_> {
    /// Calls `f(taps, x0, x1)` for every branch and tap in order, with the offsets (as
    /// `lanes::block_offset` reads them) of the lanes' `X0` and `X1` inputs. Asserts first that
    /// all `blocks` blocks of every tap lie within `rows.data`, so kernels may load unchecked.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn for_each(self, blocks: usize, mut f: impl FnMut(&[f32; 3], (usize, usize), (usize, usize))) {
        let Rows { data, stride, m } = self.rows;
        let half = self.decimator.half;
        // Lane 0 reads column `first − 1 − k` for tap `k`.
        assert!(
            self.first >= half,
            "history too short for column {}",
            self.first
        );
        assert!(self.first + 2 * LANES + (blocks.div_ceil(2) - 1) * LINE + LANES <= stride);
        assert_eq!(data.len(), 2 * m * stride);
        for (p, taps) in self.decimator.taps.chunks_exact(half).enumerate() {
            let (row0, row1) = self.decimator.branch(p);
            let (r0, r1) = (row0 * stride, row1 * stride);
            for (k, t) in taps.iter().enumerate() {
                let (even, odd) = self.rows.locate(self.first - 1 - k);
                f(t, (even + r0, odd + r0), (even + r1, odd + r1));
            }
        }
    }
}

/// `A`, `B` and `C` over one round of columns (`SCRATCH` each, reused between calls: a pass
/// writes every column before it is read).
struct Sums<'a> {
    a: &'a mut [f32],
    b: &'a mut [f32],
    c: &'a mut [f32],
}

/// Portable pass: `G` blocks of lanes of `A`, `B` and `C` from column `pass.first`, stored at
/// `at` in `sums`.
fn pass_portable<const G: usize>(pass: Pass<'_>, sums: &mut Sums, at: usize) {
    let data = pass.rows.data;
    let mut acc = [[[0.0f32; LANES]; G]; 3];
    pass.for_each(G, |t, x0, x1| {
        for b in 0..G {
            let v0 = &data[block_offset(x0.0, x0.1, b)..][..LANES];
            let v1 = &data[block_offset(x1.0, x1.1, b)..][..LANES];
            for k in 0..LANES {
                acc[0][b][k] += t[0] * v0[k];
                acc[1][b][k] += t[1] * v1[k];
                acc[2][b][k] += t[2] * (v0[k] + v1[k]);
            }
        }
    });
    for (sum, lanes) in [&mut *sums.a, &mut *sums.b, &mut *sums.c]
        .into_iter()
        .zip(acc)
    {
        sum[at..at + G * LANES].copy_from_slice(lanes.as_flattened());
    }
}

/// The portable kernel.
pub(super) fn convolve_portable(
    decimator: &FastDecimator,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
) -> (usize, Cursor) {
    let pass = |blocks, pass: Pass<'_>, sums: &mut Sums, at| match blocks {
        3 => pass_portable::<3>(pass, sums, at),
        2 => pass_portable::<2>(pass, sums, at),
        _ => pass_portable::<1>(pass, sums, at),
    };
    drive(decimator, history, cursor, out, scratch, 3, pass, combine)
}

/// The AVX2 + FMA kernel: three blocks of lanes per pass, or six where AVX-512VL gives 32
/// registers (the same arithmetic lane for lane, so the same samples).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) fn convolve_avx2_fma(
    decimator: &FastDecimator,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
) -> (usize, Cursor) {
    convolve_avx2_with(
        decimator,
        history,
        cursor,
        out,
        scratch,
        crate::simd::has_avx512vl(),
    )
}

/// `convolve_avx2_fma`, with six blocks per pass (`wide`, which needs AVX-512VL) or three.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn convolve_avx2_with(
    decimator: &FastDecimator,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
    wide: bool,
) -> (usize, Cursor) {
    let pass = |blocks, pass: Pass<'_>, sums: &mut Sums, at| match (wide, blocks) {
        #[allow(unsafe_code)]
        // SAFETY (every `pass_wide` arm): callers pass `wide` only if the CPU reported
        // AVX-512F and AVX-512VL.
        (true, 6) => unsafe { avx2::pass_wide::<6>(pass, sums, at) },
        #[allow(unsafe_code)]
        (true, 5) => unsafe { avx2::pass_wide::<5>(pass, sums, at) },
        #[allow(unsafe_code)]
        (true, 4) => unsafe { avx2::pass_wide::<4>(pass, sums, at) },
        (_, 3) => avx2::pass::<3>(pass, sums, at),
        (_, 2) => avx2::pass::<2>(pass, sums, at),
        _ => avx2::pass::<1>(pass, sums, at),
    };
    let combine = |sums: &Sums, at, even, out: &mut [i16]| avx2::combine(sums, at, even, out);
    let max_blocks = if wide { 6 } else { 3 };
    drive(
        decimator, history, cursor, out, scratch, max_blocks, pass, combine,
    )
}

/// Computes the available outputs round by round: the columns of `A`, `B`, `C` the round's
/// outputs need, in passes of up to `max_blocks` blocks of lanes, then each output from them.
#[inline(always)]
#[allow(clippy::inline_always, clippy::too_many_arguments)]
fn drive(
    decimator: &FastDecimator,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
    max_blocks: usize,
    pass: impl Fn(usize, Pass<'_>, &mut Sums, usize),
    combine: impl Fn(&Sums, usize, bool, &mut [i16]),
) -> (usize, Cursor) {
    let m = decimator.m;
    // Every output of a fast decimator has L = 1: its cursor moves M inputs per output.
    let total = out
        .len()
        .min(available_outputs(history.len(), cursor.input, m));
    if total == 0 {
        return (0, cursor);
    }
    let (rows, mut sums) = decimator.split(history, &mut scratch.floats);
    let frame = 2 * m;
    let mut carry = scratch.carry.take();
    let mut done = 0;
    while done < total {
        // An even output's newest input is a multiple of 2M, an odd one's M past it.
        let newest = cursor.input + done * m;
        let (i, even) = (newest / frame, newest % frame == 0);
        debug_assert!(even || newest % frame == m);
        let count = (total - done).min(2 * (ROUND - 1));
        // Column `base` is index 0 of the sums: an even first output also needs `B[i − 1]`,
        // which the previous round or call left in `carry` if it ended on the odd output
        // before (the same value a pass would give).
        let base = i - usize::from(even);
        let hi = i + (count - usize::from(even)) / 2;
        let mut column = base;
        if let Some(b) = carry.filter(|_| even) {
            sums.b[0] = b;
            column = i;
        }
        while column <= hi {
            let blocks = (hi + 1 - column).div_ceil(LANES).min(max_blocks);
            let first = column;
            pass(
                blocks,
                Pass {
                    decimator,
                    rows,
                    first,
                },
                &mut sums,
                column - base,
            );
            column += blocks * LANES;
        }
        combine(&sums, i - base, even, &mut out[done..done + count]);
        done += count;
        // An even output next needs this round's last `B`.
        carry = ((cursor.input + done * m) % frame == 0).then(|| sums.b[hi - base]);
    }
    scratch.carry = carry;
    let advanced = Cursor {
        input: cursor.input + total * m,
        phase: 0,
    };
    (total, advanced)
}

/// Outputs `history_len` inputs allow when the next one's newest input is `input`.
fn available_outputs(history_len: usize, input: usize, m: usize) -> usize {
    history_len.saturating_sub(input).div_ceil(m)
}

/// Outputs from the sums, the first (even or odd) at column `at` of `sums`.
#[inline(always)]
#[allow(clippy::inline_always)]
fn combine(sums: &Sums, mut at: usize, even: bool, out: &mut [i16]) {
    let Sums { a, b, c } = sums;
    let odd = |k: usize| to_sample((c[k] - a[k]) - b[k]);
    let mut n = 0;
    if !even {
        out[0] = odd(at);
        (n, at) = (1, at + 1);
    }
    for pair in out[n..].chunks_mut(2) {
        pair[0] = to_sample(a[at] + b[at - 1]);
        if let Some(y) = pair.get_mut(1) {
            *y = odd(at);
        }
        at += 1;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_ps, _mm256_cvtps_epi32, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_max_ps, _mm256_min_ps, _mm256_packs_epi32, _mm256_round_ps, _mm256_set1_ps,
        _mm256_setzero_ps, _mm256_storeu_ps, _mm256_storeu_si256, _mm256_sub_ps,
        _mm256_unpackhi_epi32, _mm256_unpacklo_epi32, _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT,
    };

    use super::{block_offset, Pass, Sums, LANES};
    use crate::simd::load8 as load;

    /// `G` blocks of 8 lanes of `A`, `B` and `C`: per tap, three broadcast coefficients, two
    /// loads and one add per block for three multiply-adds.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)] // block `b` of all three sums
    pub(super) fn pass<const G: usize>(pass: Pass<'_>, sums: &mut Sums, at: usize) {
        let data = pass.rows.data;
        let mut acc = [[_mm256_setzero_ps(); G]; 3];
        pass.for_each(G, |t, x0, x1| {
            let [h0, h1, g] = t.map(|c| _mm256_set1_ps(c));
            for b in 0..G {
                let (at0, at1) = (block_offset(x0.0, x0.1, b), block_offset(x1.0, x1.1, b));
                #[allow(unsafe_code)]
                // SAFETY: `for_each` asserted that all `G` blocks of every tap lie within
                // `data`; the loads are unaligned.
                let (v0, v1) = unsafe {
                    (
                        _mm256_loadu_ps(data.as_ptr().add(at0)),
                        _mm256_loadu_ps(data.as_ptr().add(at1)),
                    )
                };
                acc[0][b] = _mm256_fmadd_ps(h0, v0, acc[0][b]);
                acc[1][b] = _mm256_fmadd_ps(h1, v1, acc[1][b]);
                acc[2][b] = _mm256_fmadd_ps(g, _mm256_add_ps(v0, v1), acc[2][b]);
            }
        });
        for (sum, blocks) in [&mut *sums.a, &mut *sums.b, &mut *sums.c]
            .into_iter()
            .zip(acc)
        {
            for (b, lanes) in blocks.into_iter().enumerate() {
                let dst = &mut sum[at + b * LANES..at + (b + 1) * LANES];
                #[allow(unsafe_code)]
                // SAFETY: `dst` holds exactly 8 f32s (bounds-checked above).
                unsafe {
                    _mm256_storeu_ps(dst.as_mut_ptr(), lanes);
                }
            }
        }
    }

    /// `pass` compiled with AVX-512VL's 32 registers, for up to six blocks.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    pub(super) fn pass_wide<const G: usize>(pass: Pass<'_>, sums: &mut Sums, at: usize) {
        self::pass::<G>(pass, sums, at);
    }

    /// Rounds 8 lanes to nearest (ties to even) and saturates them to i16, as `to_sample`
    /// does, leaving them in 32-bit lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn to_samples(y: __m256) -> __m256i {
        let y = _mm256_min_ps(
            _mm256_max_ps(y, _mm256_set1_ps(-32768.0)),
            _mm256_set1_ps(32767.0),
        );
        _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(y))
    }

    /// `super::combine` eight output pairs at a time: even and odd outputs computed in lanes,
    /// then interleaved as they are packed to 16 bits.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn combine(sums: &Sums, at: usize, even: bool, out: &mut [i16]) {
        let (mut n, mut at) = (0, at);
        if !even {
            super::combine(sums, at, false, &mut out[..1]);
            (n, at) = (1, at + 1);
        }
        let Sums { a, b, c } = sums;
        while out.len() - n >= 2 * LANES {
            let (ak, bk) = (load(a, at), load(b, at));
            let evens = to_samples(_mm256_add_ps(ak, load(b, at - 1)));
            let odds = to_samples(_mm256_sub_ps(_mm256_sub_ps(load(c, at), ak), bk));
            // Per 128-bit half: e0 o0 e1 o1 | e2 o2 e3 o3, packed in that order.
            let low = _mm256_unpacklo_epi32(evens, odds);
            let high = _mm256_unpackhi_epi32(evens, odds);
            let samples = _mm256_packs_epi32(low, high);
            let dst = &mut out[n..n + 2 * LANES];
            #[allow(unsafe_code)]
            // SAFETY: `dst` holds exactly 16 i16s (bounds-checked above); unaligned store.
            unsafe {
                _mm256_storeu_si256(dst.as_mut_ptr().cast(), samples);
            }
            (n, at) = (n + 2 * LANES, at + LANES);
        }
        super::combine(sums, at, true, &mut out[n..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prototype, a signal and the exact (f64) decimated output of every output from the
    /// one whose newest input is history index `first` on.
    fn case(m: usize, len: usize, first: usize) -> (FastDecimator, Vec<f32>, Vec<f64>) {
        let h: Vec<f64> = (0..len)
            .map(|n| ((n * 37 % 23) as f64 - 11.0) / 40.0)
            .collect();
        let decimator = FastDecimator::new(&h, m);
        let history: Vec<f32> = (0..first + 400)
            .map(|i| ((i as f32 * 0.61).sin() * 9000.0).round())
            .collect();
        let exact = (first..history.len())
            .step_by(m)
            .map(|newest| {
                (0..len.min(newest + 1))
                    .map(|n| h[n] * f64::from(history[newest - n]))
                    .sum()
            })
            .collect();
        (decimator, history, exact)
    }

    fn check(kernel: impl Fn(&FastDecimator, &[f32], Cursor, &mut [i16]) -> (usize, Cursor)) {
        for m in [2, 3, 6] {
            for len in [1, 7, 36, 61] {
                let reach = FastDecimator::new(&vec![0.0; len], m).reach();
                // The first output even (at a multiple of 2M) and odd (M past it).
                for first in [reach - 1, reach - 1 + m, reach - 1 + 4 * m] {
                    let (decimator, history, exact) = case(m, len, first);
                    let mut out = vec![0i16; exact.len() + 5];
                    let (n, cursor) = kernel(
                        &decimator,
                        &history,
                        Cursor {
                            input: first,
                            phase: 0,
                        },
                        &mut out,
                    );
                    assert_eq!(n, exact.len(), "m {m}, len {len}, first {first}");
                    assert_eq!(cursor.input, first + n * m);
                    for (t, (&y, &e)) in out.iter().zip(&exact).enumerate() {
                        let e = e.clamp(-32768.0, 32767.0);
                        assert!(
                            (f64::from(y) - e).abs() <= 1.0,
                            "m {m}, len {len}, first {first}, output {t}: {y} vs {e}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn portable_kernel_is_the_direct_convolution() {
        check(|d, h, c, out| convolve_portable(d, h, c, out, &mut Scratch::default()));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernels_are_the_direct_convolution_and_agree_exactly() {
        if !crate::simd::has_avx2_fma() {
            return;
        }
        let flavours: &[bool] = if crate::simd::has_avx512vl() {
            &[false, true]
        } else {
            &[false]
        };
        for &wide in flavours {
            #[allow(unsafe_code)]
            // SAFETY: the CPU reported AVX2 and FMA (and AVX-512VL for `wide`).
            check(|d, h, c, out| unsafe {
                convolve_avx2_with(d, h, c, out, &mut Scratch::default(), wide)
            });
        }
        if flavours.len() == 2 {
            let (decimator, history, exact) = case(3, 61, 6 * 12);
            let mut narrow = vec![0i16; exact.len()];
            let mut wide = vec![0i16; exact.len()];
            let cursor = Cursor {
                input: 6 * 12,
                phase: 0,
            };
            #[allow(unsafe_code)]
            // SAFETY: the CPU reported AVX2, FMA and AVX-512VL.
            unsafe {
                convolve_avx2_with(
                    &decimator,
                    &history,
                    cursor,
                    &mut narrow,
                    &mut Scratch::default(),
                    false,
                );
                convolve_avx2_with(
                    &decimator,
                    &history,
                    cursor,
                    &mut wide,
                    &mut Scratch::default(),
                    true,
                );
            }
            assert_eq!(narrow, wide);
        }
    }
}
