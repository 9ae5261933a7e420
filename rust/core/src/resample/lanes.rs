//! Outputs across SIMD lanes, for filters with few phases (`L ≤ MAX_UP`).
//!
//! Outputs `n, n+L, n+2L, …` share one phase's coefficients and their windows start `M`
//! inputs apart. After the history is split into `M` rows (row `r` holds inputs `r, r+M,
//! r+2M, …`), the inputs that eight such outputs need for one tap are eight consecutive floats
//! of one row: one broadcast coefficient and one load per eight multiply-adds, and no
//! horizontal sums. A phase that is a pure delay (the half-band design's) is copied instead.
//! Every lane accumulates its taps in order from zero however the outputs
//! are grouped, so chunking never changes a sample.

use super::deinterleave;
use super::filter::PolyphaseFilter;
use super::kernel::{advance, available, to_sample, Cursor};

/// Filters with at most this many phases use this kernel (more phases leave too few outputs
/// per phase in a 20 ms chunk to fill the lanes).
pub const MAX_UP: usize = 8;
pub(super) const LANES: usize = 8;
const MAX_BLOCKS: usize = 10;
/// Zeros after each row, so lanes past the last available output still read in bounds.
const ROW_PAD: usize = LANES * MAX_BLOCKS;

/// Samples of up to `MAX_BLOCKS` blocks of lanes (only the first `blocks` are meaningful).
type Samples = [[i16; LANES]; MAX_BLOCKS];

/// Floats per 64-byte cache line.
pub(super) const LINE: usize = 16;

/// The history split into `m` rows (row `r` holds inputs `r, r+M, r+2M, …`), stored twice:
/// plane A with each row starting on a cache line, plane B the same rows 8 floats further on.
/// Eight floats from column `q` lie within one cache line in A when `q mod 16 ≤ 8` and in B
/// otherwise, so no load of a pass straddles two lines (such loads cost two).
#[derive(Clone, Copy)]
pub(super) struct Rows<'a> {
    pub(super) data: &'a [f32],
    /// Floats from one row to the next within a plane (a multiple of `LINE`).
    pub(super) stride: usize,
    pub(super) m: usize,
}

impl<'a> Rows<'a> {
    /// Splits `history` into `buffer` (reused between calls). Columns past a row's inputs keep
    /// whatever earlier calls left there (finite floats): they only reach lanes whose outputs
    /// are discarded.
    pub(super) fn split(history: &[f32], m: usize, buffer: &'a mut Vec<f32>) -> Self {
        let stride = (history.len().div_ceil(m) + ROW_PAD + LANES).next_multiple_of(LINE);
        let size = 2 * m * stride;
        buffer.resize(size + LINE, 0.0);
        // Where the rows' first cache line starts (0 if already aligned).
        let lead = buffer.as_ptr().align_offset(4 * LINE).min(LINE);
        let (a, b) = buffer[lead..lead + size].split_at_mut(m * stride);
        deinterleave::split(history, m, stride, 0, a);
        for (r, (row_a, row_b)) in a
            .chunks_exact_mut(stride)
            .zip(b.chunks_exact_mut(stride))
            .enumerate()
        {
            let len = (history.len() + m - 1 - r) / m;
            row_b[LANES..LANES + len].copy_from_slice(&row_a[..len]);
        }
        Self {
            data: &buffer[lead..lead + size],
            stride,
            m,
        }
    }

    /// Offsets in `data` of columns `q` and `q + 8` of row 0, each in the plane where the 8
    /// floats from it share a cache line (always opposite planes: they sit 8 floats apart).
    #[inline(always)]
    #[allow(clippy::inline_always)]
    pub(super) fn locate(self, q: usize) -> (usize, usize) {
        let to_b = self.m * self.stride + LANES;
        // All ones when column `q` starts in the second half of a cache line.
        let in_b = 0usize.wrapping_sub((q / LANES) % 2);
        (q + (to_b & in_b), q + LANES + (to_b & !in_b))
    }
}

/// Where one pass reads: lane `k` of tap `t` is input `start + t + k·M` of the history.
#[derive(Clone, Copy)]
struct Taps<'a> {
    rows: Rows<'a>,
    /// History index of the first tap's input for lane 0.
    start: usize,
}

impl Taps<'_> {
    /// Calls `f(coefficient, even, odd)` for each tap in order, where block `2j` of the lanes'
    /// inputs is the 8 floats at `rows.data[even + 16j..]` and block `2j+1` those at
    /// `rows.data[odd + 16j..]`, each within one cache line. Asserts first that every block
    /// of `blocks` lies within `rows.data`, so the kernels may load them unchecked.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn for_each(self, coefficients: &[f32], blocks: usize, mut f: impl FnMut(f32, usize, usize)) {
        let Rows { data, stride, m } = self.rows;
        let last_column = (self.start + coefficients.len()) / m;
        // The farthest block starts at column `last_column + 8 + 16·j` of plane B's last row,
        // which begins `(2m - 1)·stride + 8` floats into `data`.
        assert!(last_column + 2 * LANES + (blocks.div_ceil(2) - 1) * LINE + LANES <= stride);
        assert_eq!(data.len(), 2 * m * stride);
        let (mut r, mut q) = (self.start % m, self.start / m);
        let (mut even, mut odd) = self.rows.locate(q);
        let mut row = r * stride;
        for &c in coefficients {
            f(c, even + row, odd + row);
            r += 1;
            row += stride;
            if r == m {
                (r, row, q) = (0, 0, q + 1);
                (even, odd) = self.rows.locate(q);
            }
        }
    }
}

/// Block `b` of a tap's inputs, from the offsets `Taps::for_each` hands out.
#[inline(always)]
#[allow(clippy::inline_always)]
fn block_offset(even: usize, odd: usize, b: usize) -> usize {
    (if b.is_multiple_of(2) { even } else { odd }) + b / 2 * LINE
}

/// Portable variant: `B` blocks of lanes, multiply then add.
#[inline(always)]
#[allow(clippy::inline_always)]
fn pass_portable<const B: usize>(coefficients: &[f32], taps: Taps<'_>) -> Samples {
    let mut acc = [[0.0f32; LANES]; B];
    let data = taps.rows.data;
    taps.for_each(coefficients, B, |c, even, odd| {
        for (b, lanes) in acc.iter_mut().enumerate() {
            let x = &data[block_offset(even, odd, b)..][..LANES];
            for (a, &x) in lanes.iter_mut().zip(x) {
                *a += c * x;
            }
        }
    });
    let mut samples = [[0; LANES]; MAX_BLOCKS];
    for (block, lanes) in samples.iter_mut().zip(acc) {
        *block = lanes.map(to_sample);
    }
    samples
}

/// The portable kernel.
pub(super) fn convolve_portable(
    filter: &PolyphaseFilter,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
    rows: &mut Vec<f32>,
) -> (usize, Cursor) {
    drive(
        filter,
        history,
        cursor,
        out,
        rows,
        |blocks, c, taps| match blocks {
            10 => pass_portable::<10>(c, taps),
            8 => pass_portable::<8>(c, taps),
            4 => pass_portable::<4>(c, taps),
            2 => pass_portable::<2>(c, taps),
            _ => pass_portable::<1>(c, taps),
        },
    )
}

/// The AVX2 + FMA kernel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) fn convolve_avx2_fma(
    filter: &PolyphaseFilter,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
    rows: &mut Vec<f32>,
) -> (usize, Cursor) {
    drive(
        filter,
        history,
        cursor,
        out,
        rows,
        |blocks, c, taps| match blocks {
            10 => avx2::pass::<10>(c, taps),
            8 => avx2::pass::<8>(c, taps),
            4 => avx2::pass::<4>(c, taps),
            2 => avx2::pass::<2>(c, taps),
            _ => avx2::pass::<1>(c, taps),
        },
    )
}

/// Computes the available outputs phase by phase in passes of up to 80 lanes; `pass(blocks,
/// coefficients, taps)` computes `blocks` (10, 8, 4, 2 or 1) blocks of 8 lanes.
#[inline(always)]
#[allow(clippy::inline_always)]
fn drive(
    filter: &PolyphaseFilter,
    history: &[f32],
    cursor: Cursor,
    out: &mut [i16],
    rows: &mut Vec<f32>,
    pass: impl Fn(usize, &[f32], Taps<'_>) -> Samples,
) -> (usize, Cursor) {
    let (taps, l, m) = (filter.taps, filter.up, filter.down);
    let total = out.len().min(available(filter, history.len(), cursor));
    if total == 0 {
        return (0, cursor);
    }
    let rows = Rows::split(history, m, rows);
    // A pure-delay phase is one tap of 1 (times the input: exact) instead of `taps`.
    let phase_taps = |c: Cursor| match filter.pure_delay(c.phase) {
        Some(tap) => (&[1.0f32][..], tap),
        None => (filter.phase(c.phase), 0),
    };
    // Output `j + kL` of this call is the k-th of phase `first.phase`, `k·M` inputs on.
    let run = |first: Cursor, k0: usize, blocks: usize| {
        let (coefficients, skip) = phase_taps(first);
        let start = first.input + k0 * m + 1 - taps + skip;
        pass(blocks, coefficients, Taps { rows, start })
    };
    if l == 2 {
        // Both phases block by block, so their samples are stored interleaved in one go.
        let firsts = [cursor, advance(filter, cursor, 1)];
        let count = total.div_ceil(2);
        let mut k0 = 0;
        while k0 < count {
            let blocks = blocks_for(count - k0);
            let [even, odd] = firsts.map(|first| run(first, k0, blocks));
            let produced = (blocks * LANES).min(count - k0);
            let dst = &mut out[2 * k0..(2 * (k0 + produced)).min(total)];
            let pairs = even.as_flattened().iter().zip(odd.as_flattened());
            let mut chunks = dst.chunks_exact_mut(2);
            for (pair, (&a, &b)) in (&mut chunks).zip(pairs) {
                pair.copy_from_slice(&[a, b]);
            }
            if let [last] = chunks.into_remainder() {
                *last = even.as_flattened()[produced - 1];
            }
            k0 += produced;
        }
    } else {
        let mut first = cursor;
        for j in 0..l.min(total) {
            let count = (total - j).div_ceil(l);
            let mut k0 = 0;
            while k0 < count {
                let blocks = blocks_for(count - k0);
                let samples = run(first, k0, blocks);
                let produced = (blocks * LANES).min(count - k0);
                for (k, &y) in samples.as_flattened()[..produced].iter().enumerate() {
                    out[j + (k0 + k) * l] = y;
                }
                k0 += produced;
            }
            first = advance(filter, first, 1);
        }
    }
    (total, advance(filter, cursor, total))
}

/// Blocks of 8 lanes for a pass with `left` outputs to go (10, 8, 4, 2 or 1).
fn blocks_for(left: usize) -> usize {
    match left.div_ceil(LANES) {
        10.. => 10,
        8 | 9 => 8,
        4..=7 => 4,
        2 | 3 => 2,
        _ => 1,
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm256_castsi256_si128, _mm256_cvtps_epi32, _mm256_extractf128_si256,
        _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_round_ps,
        _mm256_set1_ps, _mm256_setzero_ps, _mm_cvtsi128_si64, _mm_extract_epi64, _mm_packs_epi32,
        _MM_FROUND_NO_EXC, _MM_FROUND_TO_NEAREST_INT,
    };

    use super::{block_offset, Samples, Taps, LANES, MAX_BLOCKS};

    /// Rounds 8 lanes to nearest (ties to even) and saturates them to i16, like `to_sample`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn to_samples(y: __m256) -> [i16; LANES] {
        let y = _mm256_min_ps(
            _mm256_max_ps(y, _mm256_set1_ps(-32768.0)),
            _mm256_set1_ps(32767.0),
        );
        let whole = _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(y));
        let low = _mm256_castsi256_si128(whole);
        let packed = _mm_packs_epi32(low, _mm256_extractf128_si256::<1>(whole));
        let (a, b) = (
            _mm_cvtsi128_si64(packed).to_le_bytes(),
            _mm_extract_epi64::<1>(packed).to_le_bytes(),
        );
        let bytes = [a, b];
        std::array::from_fn(|k| {
            let half = &bytes[k / 4];
            i16::from_le_bytes([half[2 * (k % 4)], half[2 * (k % 4) + 1]])
        })
    }

    /// `B` blocks of 8 lanes: one broadcast coefficient and `B` loads per tap.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn pass<const B: usize>(coefficients: &[f32], taps: Taps<'_>) -> Samples {
        let mut acc = [_mm256_setzero_ps(); B];
        let data = taps.rows.data;
        taps.for_each(coefficients, B, |c, even, odd| {
            let c = _mm256_set1_ps(c);
            for (b, sum) in acc.iter_mut().enumerate() {
                let at = block_offset(even, odd, b);
                #[allow(unsafe_code)]
                // SAFETY: `for_each` asserted that all `B` blocks of every tap lie within `data`;
                // the load is unaligned.
                let x = unsafe { _mm256_loadu_ps(data.as_ptr().add(at)) };
                *sum = _mm256_fmadd_ps(c, x, *sum);
            }
        });
        let mut samples = [[0; LANES]; MAX_BLOCKS];
        for (block, sum) in samples.iter_mut().zip(acc) {
            *block = to_samples(sum);
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // copies, exact
    fn rows_give_every_mth_input_within_one_cache_line() {
        let mut buffer = vec![f32::NAN; 1000]; // stale contents must not leak through
        for m in 1..=7usize {
            for len in (0..40usize).rev() {
                let history: Vec<f32> = (0..len).map(|i| i as f32 + 1.0).collect();
                let rows = Rows::split(&history, m, &mut buffer);
                for r in 0..m {
                    for q in 0..len.div_ceil(m) + ROW_PAD - 2 * LANES {
                        let (even, odd) = rows.locate(q);
                        for (column, at) in [(q, even), (q + LANES, odd)] {
                            let at = at + r * rows.stride;
                            let address = rows.data[at..].as_ptr() as usize;
                            assert!(
                                address % 64 <= 32,
                                "m {m}, len {len}, row {r}, column {column}"
                            );
                            for (k, &x) in rows.data[at..at + LANES].iter().enumerate() {
                                // Past the row's inputs a column holds stale floats.
                                let Some(&expected) = history.get((column + k) * m + r) else {
                                    continue;
                                };
                                assert_eq!(
                                    x, expected,
                                    "m {m}, len {len}, row {r}, column {column}+{k}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
