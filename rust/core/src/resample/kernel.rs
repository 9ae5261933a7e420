//! The polyphase convolution loop, compiled twice: portable, and with AVX2 + FMA chosen at run time.
//!
//! Decimators (L = 1) use the fast algorithm (`fast`); other filters with few phases compute
//! outputs across SIMD lanes (`lanes`); the rest, such as 44.1 kHz → 16 kHz with 160 phases,
//! use the dot products here. Each variant sums an output
//! in one fixed order (16 lanes over 8-tap blocks, then a fixed reduction tree) whether it
//! computes that output alone, in a pair, or in a group of four that share a phase, so an
//! output never depends on where its window sits in memory or on how the input was chunked.
//! The variants may differ from each other in the last bit (fused multiply-add rounds once),
//! but a process always uses the one `Kernel::detect` picks.
//!
//! Outputs `n, n+L, n+2L, n+3L` use the same phase with windows `M` inputs apart, so the
//! AVX2 kernel computes them together and loads each coefficient block once for four outputs.

use super::filter::{PolyphaseFilter, TAP_BLOCK};
use super::{fast, groups, lanes};

/// Where the next output's window ends and which phase it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Index in the history of the newest input sample the next output depends on.
    pub input: usize,
    /// Polyphase branch (0..L) of the next output.
    pub phase: usize,
}

/// Working memory of the convolution kernels, kept between calls of one stream.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    /// Rows of the history and other per-call space (contents need no clearing).
    pub(super) floats: Vec<f32>,
    /// Values the last call computed for the stream's next outputs (the fast decimator's
    /// sums of the column before), valid because calls continue where the last one stopped.
    pub(super) carry: Option<fast::Carried>,
    /// The fast decimator's rows of the history.
    pub(super) rows: fast::RowCache,
}

impl Scratch {
    /// Forgets the stream.
    pub fn clear(&mut self) {
        self.carry = None;
        self.rows.clear();
    }
}

/// The instruction-set variant of the convolution loop this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, vectorised by the compiler for the build's baseline target.
    Portable,
    /// AVX2 with fused multiply-add (x86-64 CPUs since 2013).
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Kernel {
    /// The fastest variant this CPU supports.
    #[must_use]
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2_fma() {
            return Self::Avx2Fma;
        }
        Self::Portable
    }

    /// `convolve` with `f32` outputs, for a filter in groups (`PolyphaseFilter::groups`): a
    /// relay's first step, whose samples are not rounded or clipped before its second.
    pub fn convolve_floats(
        self,
        filter: &PolyphaseFilter,
        history: &[f32],
        cursor: Cursor,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) -> (usize, Cursor) {
        self.convolve_groups(filter, history, cursor, out, scratch)
    }

    /// A filter in groups, with outputs of either kind.
    fn convolve_groups<T: groups::Sample>(
        self,
        filter: &PolyphaseFilter,
        history: &[f32],
        cursor: Cursor,
        out: &mut [T],
        scratch: &mut Scratch,
    ) -> (usize, Cursor) {
        let form = filter
            .groups()
            .expect("only a filter of many short phases runs in groups");
        let window = &mut scratch.floats;
        match self {
            Self::Portable => groups::convolve_with(
                filter,
                form,
                history,
                cursor,
                out,
                window,
                groups::batch_portable,
            ),
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Avx2Fma` is only ever returned by `detect` after the CPU reported both features.
            Self::Avx2Fma => unsafe {
                convolve_groups_avx2_fma(filter, form, history, cursor, out, window)
            },
        }
    }

    /// Computes outputs into `out` from the history while inputs allow; returns how many were
    /// written and the cursor after the last one. `history` holds the inputs from history
    /// index `origin` on: inputs the fast decimator's rows hold alone may have been freed (only the
    /// fast decimator's rows need them). `scratch` is reused between calls.
    pub fn convolve(
        self,
        filter: &PolyphaseFilter,
        history: &[f32],
        origin: usize,
        cursor: Cursor,
        out: &mut [i16],
        scratch: &mut Scratch,
    ) -> (usize, Cursor) {
        assert!(
            filter.two_step().is_none() && filter.relay().is_none(),
            "{} -> {} runs in two steps: resample it with a Resampler",
            filter.in_rate,
            filter.out_rate
        );
        if let Some(decimator) = filter.fast() {
            return match self {
                Self::Portable => {
                    fast::convolve_portable(decimator, history, origin, cursor, out, scratch)
                }
                #[cfg(target_arch = "x86_64")]
                #[allow(unsafe_code)]
                // SAFETY: `Avx2Fma` is only ever returned by `detect` after the CPU reported both features.
                Self::Avx2Fma => unsafe {
                    fast::convolve_avx2_fma(decimator, history, origin, cursor, out, scratch)
                },
            };
        }
        assert_eq!(origin, 0, "only the fast decimator frees history");
        if filter.groups().is_some() {
            return self.convolve_groups(filter, history, cursor, out, scratch);
        }
        if filter.up <= lanes::MAX_UP {
            return match self {
                Self::Portable => {
                    lanes::convolve_portable(filter, history, cursor, out, &mut scratch.floats)
                }
                #[cfg(target_arch = "x86_64")]
                #[allow(unsafe_code)]
                // SAFETY: `Avx2Fma` is only ever returned by `detect` after the CPU reported both features.
                Self::Avx2Fma => unsafe {
                    lanes::convolve_avx2_fma(filter, history, cursor, out, &mut scratch.floats)
                },
            };
        }
        match self {
            Self::Portable => convolve_with(
                filter,
                history,
                cursor,
                out,
                |c, x| to_sample(portable_dot(c, x)),
                |c, x| x.map(|x| to_sample(portable_dot(c, x))),
                |c, x| x.map(|x| to_sample(portable_dot(c, x))),
                |c, x| [0, 1].map(|k| to_sample(portable_dot(c[k], x[k]))),
            ),
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Avx2Fma` is only ever returned by `detect` after the CPU reported both features.
            Self::Avx2Fma => unsafe { convolve_avx2_fma(filter, history, cursor, out) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn convolve_groups_avx2_fma<T: groups::Sample>(
    filter: &PolyphaseFilter,
    form: &groups::Groups,
    history: &[f32],
    cursor: Cursor,
    out: &mut [T],
    window: &mut Vec<f32>,
) -> (usize, Cursor) {
    if let Some(wide) = form.wide().filter(|_| crate::simd::has_avx512vl()) {
        #[allow(unsafe_code)]
        // SAFETY: the CPU reported AVX-512F and AVX-512VL (and this function runs only where it
        // has AVX2 and FMA).
        return unsafe { groups::convolve_wide(filter, form, wide, history, cursor, out, window) };
    }
    groups::convolve_with(filter, form, history, cursor, out, window, |m, w| {
        groups::batch_avx2_fma::<T>(m, w)
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn convolve_avx2_fma(
    filter: &PolyphaseFilter,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
) -> (usize, Cursor) {
    convolve_with(
        filter,
        history,
        cursor,
        out,
        |c, x| avx2::dot(c, x),
        |c, x| avx2::dot_same_phase(c, x),
        |c, x| avx2::dot_same_phase(c, x),
        |c, x| avx2::dot_pair(c, x),
    )
}

/// The convolution loop, inlined into each variant so its dot products use that variant's
/// instructions. `one`, `four` and `two` (windows of one phase) and `pair` (outputs with their
/// own phases) must compute each output sample identically.
#[inline(always)]
#[allow(clippy::inline_always, clippy::too_many_arguments)]
fn convolve_with(
    filter: &PolyphaseFilter,
    history: &[f32],
    mut cursor: Cursor,
    out: &mut [i16],
    one: impl Fn(&[f32], &[f32]) -> i16,
    four: impl Fn(&[f32], [&[f32]; 4]) -> [i16; 4],
    two: impl Fn(&[f32], [&[f32]; 2]) -> [i16; 2],
    pair: impl Fn([&[f32]; 2], [&[f32]; 2]) -> [i16; 2],
) -> (usize, Cursor) {
    let (taps, l, m) = (filter.taps, filter.up, filter.down);
    let total = out.len().min(available(filter, history.len(), cursor));
    let window = |input: usize| &history[input + 1 - taps..=input];
    // One output further on without a division: the phase advances by M mod L, the input by
    // M div L plus a carry.
    let (m_div, m_rem) = (m / l, m % l);
    let step = |c: Cursor| {
        let phase = c.phase + m_rem;
        let carry = usize::from(phase >= l);
        Cursor {
            input: c.input + m_div + carry,
            phase: phase - carry * l,
        }
    };
    let mut n = 0;
    while n < total {
        let left = total - n;
        if left >= 4 * l || (l > 1 && left >= 2 * l) {
            // Whole groups of `group` outputs per phase: outputs j, j+L, … share phase j's coefficients.
            let group = if left >= 4 * l { 4 } else { 2 };
            let mut c = cursor;
            for j in 0..l {
                let coefficients = filter.phase(c.phase);
                let mut put = |k: usize, y: i16| out[n + j + k * l] = y;
                if group == 4 {
                    let ys = four(coefficients, [0, 1, 2, 3].map(|k| window(c.input + k * m)));
                    ys.into_iter().enumerate().for_each(|(k, y)| put(k, y));
                } else {
                    let ys = two(coefficients, [0, 1].map(|k| window(c.input + k * m)));
                    ys.into_iter().enumerate().for_each(|(k, y)| put(k, y));
                }
                c = step(c);
            }
            cursor.input += group * m;
            n += group * l;
        } else if left >= 2 {
            let next = step(cursor);
            let ys = pair(
                [filter.phase(cursor.phase), filter.phase(next.phase)],
                [window(cursor.input), window(next.input)],
            );
            out[n..n + 2].copy_from_slice(&ys);
            cursor = step(next);
            n += 2;
        } else {
            out[n] = one(filter.phase(cursor.phase), window(cursor.input));
            cursor = step(cursor);
            n += 1;
        }
    }
    (total, cursor)
}

/// How many outputs `history_len` inputs allow from `cursor`.
#[inline]
pub(super) fn available(filter: &PolyphaseFilter, history_len: usize, cursor: Cursor) -> usize {
    if cursor.input < history_len {
        ((history_len - cursor.input) * filter.up - cursor.phase).div_ceil(filter.down)
    } else {
        0
    }
}

/// The cursor `outputs` outputs further on.
#[inline]
pub(super) fn advance(filter: &PolyphaseFilter, cursor: Cursor, outputs: usize) -> Cursor {
    let advanced = cursor.phase + outputs * filter.down;
    Cursor {
        input: cursor.input + advanced / filter.up,
        phase: advanced % filter.up,
    }
}

/// Rounds to the nearest sample (ties to even, as the AVX2 kernel does) and saturates.
#[inline(always)]
#[allow(clippy::inline_always)]
pub(super) fn to_sample(y: f32) -> i16 {
    y.clamp(-32768.0, 32767.0).round_ties_even() as i16
}

const LANES: usize = 2 * TAP_BLOCK;

/// Dot product of equal-length slices whose length is a multiple of `TAP_BLOCK`, summed in a
/// fixed order: lane `i mod 16` accumulates, then a fixed pairwise tree reduces the lanes.
#[inline(always)]
#[allow(clippy::inline_always)]
fn portable_dot(coefficients: &[f32], window: &[f32]) -> f32 {
    debug_assert_eq!(coefficients.len(), window.len());
    debug_assert_eq!(coefficients.len() % TAP_BLOCK, 0);
    let mut acc = [0.0f32; LANES];
    let mut c_wide = coefficients.chunks_exact(LANES);
    let mut x_wide = window.chunks_exact(LANES);
    for (c, x) in (&mut c_wide).zip(&mut x_wide) {
        for i in 0..LANES {
            acc[i] += c[i] * x[i];
        }
    }
    // A remaining block of 8 goes to the first lanes.
    for (i, (c, x)) in c_wide
        .remainder()
        .iter()
        .zip(x_wide.remainder())
        .enumerate()
    {
        acc[i] += c * x;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0]
}

/// AVX2 + FMA dot products: two 8-lane accumulators per output (blocks alternate between
/// them; an odd last block goes to the first), reduced four outputs at a time by `finish`.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps,
        _mm256_hadd_ps, _mm256_setzero_ps, _mm_add_ps, _mm_cvtps_epi32, _mm_cvtsi128_si64,
        _mm_max_ps, _mm_min_ps, _mm_packs_epi32, _mm_round_ps, _mm_set1_ps, _MM_FROUND_NO_EXC,
        _MM_FROUND_TO_NEAREST_INT,
    };

    use super::TAP_BLOCK;
    use crate::simd::load8 as load;

    const STRIDE: usize = 2 * TAP_BLOCK;

    /// Reduces up to four outputs' accumulator pairs (unused slots zero) to samples: the lanes of
    /// each output are summed by the same fixed tree whichever slot it occupies, then rounded to
    /// nearest (ties to even) and saturated to i16.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn finish(acc: [[__m256; 2]; 4]) -> [i16; 4] {
        let [v0, v1, v2, v3] = acc.map(|[a, b]| _mm256_add_ps(a, b));
        let h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
        let y = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let y = _mm_min_ps(_mm_max_ps(y, _mm_set1_ps(-32768.0)), _mm_set1_ps(32767.0));
        let rounded = _mm_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(y);
        let packed = _mm_packs_epi32(_mm_cvtps_epi32(rounded), _mm_cvtps_epi32(rounded));
        let bytes = _mm_cvtsi128_si64(packed).to_le_bytes();
        [0, 1, 2, 3].map(|k| i16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]))
    }

    /// Offsets of whole 16-tap strides, and of the odd last block if there is one.
    fn split(len: usize) -> (usize, Option<usize>) {
        let whole = len / STRIDE * STRIDE;
        (whole, (whole < len).then_some(whole))
    }

    /// Up to four outputs, output `k` from coefficients `c[k]` and window `x[k]`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot_each<const G: usize>(c: [&[f32]; G], x: [&[f32]; G]) -> [[__m256; 2]; 4] {
        let (whole, last) = split(c[0].len());
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        for i in (0..whole).step_by(STRIDE) {
            for k in 0..G {
                acc[k][0] = _mm256_fmadd_ps(load(c[k], i), load(x[k], i), acc[k][0]);
                acc[k][1] = _mm256_fmadd_ps(
                    load(c[k], i + TAP_BLOCK),
                    load(x[k], i + TAP_BLOCK),
                    acc[k][1],
                );
            }
        }
        if let Some(i) = last {
            for k in 0..G {
                acc[k][0] = _mm256_fmadd_ps(load(c[k], i), load(x[k], i), acc[k][0]);
            }
        }
        acc
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot(c: &[f32], x: &[f32]) -> i16 {
        finish(dot_each([c], [x]))[0]
    }

    /// Two outputs with their own coefficients, interleaved to hide the FMA latency.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_pair(c: [&[f32]; 2], x: [&[f32]; 2]) -> [i16; 2] {
        let y = finish(dot_each(c, x));
        [y[0], y[1]]
    }

    /// `G` (≤ 4) outputs of one phase: each coefficient block is loaded once for all windows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_same_phase<const G: usize>(c: &[f32], x: [&[f32]; G]) -> [i16; G] {
        let (whole, last) = split(c.len());
        let mut acc = [[_mm256_setzero_ps(); 2]; 4];
        for i in (0..whole).step_by(STRIDE) {
            let (c0, c1) = (load(c, i), load(c, i + TAP_BLOCK));
            for k in 0..G {
                acc[k][0] = _mm256_fmadd_ps(c0, load(x[k], i), acc[k][0]);
                acc[k][1] = _mm256_fmadd_ps(c1, load(x[k], i + TAP_BLOCK), acc[k][1]);
            }
        }
        if let Some(i) = last {
            let c0 = load(c, i);
            for k in 0..G {
                acc[k][0] = _mm256_fmadd_ps(c0, load(x[k], i), acc[k][0]);
            }
        }
        let y = finish(acc);
        std::array::from_fn(|k| y[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_dot_matches_f64_reference_for_every_length() {
        for blocks in 0..12 {
            let n = blocks * TAP_BLOCK;
            let c: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01).collect();
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 1000.0)
                .collect();
            let exact: f64 = c
                .iter()
                .zip(&x)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let value = portable_dot(&c, &x);
            assert!(
                (f64::from(value) - exact).abs() <= 1e-3 * (1.0 + exact.abs()),
                "{n}: {value} vs {exact}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_groups_give_each_output_exactly_as_one_at_a_time() {
        if Kernel::detect() != Kernel::Avx2Fma {
            return;
        }
        for blocks in 1..9 {
            let n = blocks * TAP_BLOCK;
            let c: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.731).sin() * 0.3).collect();
            let d: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.377).cos() * 0.3).collect();
            let x: Vec<f32> = (0..n + 9)
                .map(|i| ((i as f32) * 1.913).sin() * 9_000.0)
                .collect();
            let windows = [0, 3, 6, 9].map(|at| &x[at..at + n]);
            #[allow(unsafe_code)]
            // SAFETY: the CPU reported AVX2 and FMA.
            let (one, four, two, pair, second) = unsafe {
                (
                    windows.map(|w| avx2::dot(&c, w)),
                    avx2::dot_same_phase(&c, windows),
                    avx2::dot_same_phase(&c, [windows[2], windows[3]]),
                    avx2::dot_pair([&c, &d], [windows[0], windows[1]]),
                    avx2::dot(&d, windows[1]),
                )
            };
            assert_eq!(one, four);
            assert_eq!([one[2], one[3]], two);
            assert_eq!([one[0], second], pair);
            let exact: f64 = c
                .iter()
                .zip(windows[0])
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            assert!(
                (f64::from(one[0]) - exact.clamp(-32768.0, 32767.0)).abs() <= 1.0,
                "{n}"
            );
        }
    }

    #[test]
    fn samples_round_to_nearest_even_and_saturate() {
        assert_eq!(to_sample(0.5), 0);
        assert_eq!(to_sample(1.5), 2);
        assert_eq!(to_sample(-2.5), -2);
        assert_eq!(to_sample(40_000.0), 32767);
        assert_eq!(to_sample(-1e9), -32768);
    }

    #[test]
    fn detected_kernel_agrees_with_portable_to_rounding_for_every_pair() {
        use crate::rates::SUPPORTED_RATES;
        let history: Vec<f32> = (0..6_000)
            .map(|i| ((i as f32) * 0.37).sin() * 20_000.0)
            .collect();
        for &fi in &SUPPORTED_RATES {
            for &fo in &SUPPORTED_RATES {
                let filter = PolyphaseFilter::shared(fi, fo, super::super::Quality::High);
                if filter.two_step().is_some() || filter.relay().is_some() {
                    continue; // no kernel of its own (see the resampler's tests)
                }
                let start = Cursor {
                    input: filter.taps - 1,
                    phase: 0,
                };
                let mut portable = vec![0i16; 1_000];
                let mut detected = vec![0i16; 1_000];
                let a = Kernel::Portable.convolve(
                    &filter,
                    &history,
                    0,
                    start,
                    &mut portable,
                    &mut Scratch::default(),
                );
                let b = Kernel::detect().convolve(
                    &filter,
                    &history,
                    0,
                    start,
                    &mut detected,
                    &mut Scratch::default(),
                );
                assert_eq!(a, b, "{fi}->{fo}");
                assert!(
                    portable
                        .iter()
                        .zip(&detected)
                        .all(|(p, d)| (p - d).abs() <= 1),
                    "{fi}->{fo}"
                );
            }
        }
    }
}
