//! Filters with many short phases (44.1k → 48k and 22.05k → 24k, as a pair of their own or a
//! relay's first step) computed eight consecutive outputs at a time, one per lane.
//!
//! Consecutive outputs use different phases, so the dot-product kernel pays a horizontal sum
//! per output, which at 24 taps costs more than the multiply-adds. Here the eight outputs of a
//! group share one window of inputs: each phase's taps are laid into a column of a group
//! matrix at the output's offset in that window (zeros around them), and the group is a sum
//! of input samples broadcast across lanes times matrix rows. Groups start at output
//! positions that are multiples of eight in the phase cycle (`L` is a multiple of eight), so
//! an output is always computed by the same lane of the same matrix whatever the chunking;
//! the zeros add nothing to a lane's sum.

use super::filter::PolyphaseFilter;
use super::kernel::{advance, available, to_sample, Cursor};

/// Outputs per group.
pub(super) const LANES: usize = 8;

/// What a group's sums become: 16-bit samples, or `f32` to feed a relay's second step.
pub(super) trait Sample: Copy {
    fn from_sum(sum: f32) -> Self;

    /// `from_sum` of eight lanes.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    unsafe fn from_sums_avx2(sums: std::arch::x86_64::__m256) -> [Self; LANES];
}

impl Sample for i16 {
    fn from_sum(sum: f32) -> Self {
        to_sample(sum)
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn from_sums_avx2(sums: std::arch::x86_64::__m256) -> [Self; LANES] {
        use std::arch::x86_64::{
            _mm256_castsi256_si128, _mm256_cvtps_epi32, _mm256_extracti128_si256, _mm_packs_epi32,
            _mm_storeu_si128,
        };
        // Round to nearest (ties to even), then saturate to 16 bits: `to_sample` (sums stay
        // far inside ±2³¹).
        let y = _mm256_cvtps_epi32(sums);
        let packed = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y));
        let mut lanes = [0i16; LANES];
        #[allow(unsafe_code)]
        // SAFETY: `lanes` holds 8 i16s, 16 bytes; unaligned store.
        unsafe {
            _mm_storeu_si128(lanes.as_mut_ptr().cast(), packed);
        }
        lanes
    }
}

impl Sample for f32 {
    fn from_sum(sum: f32) -> Self {
        sum
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(unsafe_code)]
    unsafe fn from_sums_avx2(sums: std::arch::x86_64::__m256) -> [Self; LANES] {
        let mut lanes = [0.0f32; LANES];
        #[allow(unsafe_code)]
        // SAFETY: `lanes` holds 8 f32s; unaligned store.
        unsafe {
            std::arch::x86_64::_mm256_storeu_ps(lanes.as_mut_ptr(), sums);
        }
        lanes
    }
}
/// Groups computed together, so that their sums' multiply-adds do not wait on each other.
const BATCH: usize = 4;
/// Phase cycles whose groups are ordered by matrix, so that groups sharing one are batched.
const SHARED_CYCLES: usize = 4;

/// A filter's phases laid out as group matrices.
#[derive(Debug)]
pub struct Groups {
    /// Inputs in a group's window: the taps and `spread`.
    width: usize,
    /// How far the lanes' newest inputs spread: a group reads up to this many inputs before
    /// the window of its first output.
    spread: usize,
    /// Per group, `width` rows of `LANES` coefficients: row `j` multiplies window input `j`.
    matrices: Vec<f32>,
    /// Per group, each lane's newest input counted from lane 0's.
    offsets: Vec<[usize; LANES]>,
    /// Per group, inputs from its lane 0's newest to the next group's.
    steps: Vec<usize>,
    /// For each phase, the position in the phase cycle of the outputs that use it.
    position: Vec<usize>,
}

impl Groups {
    /// The group form of a filter with `up` a multiple of `LANES` (phases from `phase`,
    /// oldest input first, `taps` each).
    #[must_use]
    pub fn new(up: usize, down: usize, taps: usize, phase: impl Fn(usize) -> Vec<f32>) -> Self {
        assert!(up.is_multiple_of(LANES), "groups must tile the phase cycle");
        // Output `n` has phase `n·M mod L` and its newest input `⌊n·M / L⌋` after output 0's.
        let newest = |n: usize| n * down / up;
        let offsets: Vec<[usize; LANES]> = (0..up / LANES)
            .map(|g| std::array::from_fn(|lane| newest(g * LANES + lane) - newest(g * LANES)))
            .collect();
        let spread = offsets.iter().map(|o| o[LANES - 1]).max().unwrap_or(0);
        // Even, so that kernels take the inputs in pairs (a last zero row if need be).
        let width = (taps + spread).next_multiple_of(2);
        let mut matrices = vec![0.0; offsets.len() * width * LANES];
        for (g, lanes) in offsets.iter().enumerate() {
            let matrix = &mut matrices[g * width * LANES..(g + 1) * width * LANES];
            for (lane, &offset) in lanes.iter().enumerate() {
                let coefficients = phase((g * LANES + lane) * down % up);
                for (k, c) in coefficients.into_iter().enumerate() {
                    matrix[(offset + k) * LANES + lane] = c;
                }
            }
        }
        let steps = (0..up / LANES)
            .map(|g| newest((g + 1) * LANES) - newest(g * LANES))
            .collect();
        let mut position = vec![0; up];
        for n in 0..up {
            position[n * down % up] = n;
        }
        Self {
            width,
            spread,
            matrices,
            offsets,
            steps,
            position,
        }
    }

    /// Inputs before an output's own window that its group may read.
    #[must_use]
    pub fn spread(&self) -> usize {
        self.spread
    }

    fn matrix(&self, g: usize) -> &[f32] {
        &self.matrices[g * self.width * LANES..(g + 1) * self.width * LANES]
    }
}

/// One group to compute: its count from a call's first group, its matrix and where its
/// window starts.
#[derive(Debug, Clone, Copy, Default)]
struct Job {
    k: usize,
    id: usize,
    at: usize,
}

/// The order a call computes its groups in: those that share a matrix (a phase cycle,
/// `down` inputs, apart) side by side, so that a batch may load each matrix row once for
/// several windows; `SHARED_CYCLES` cycles at a time, so that the windows stay in cache.
struct Order<'a> {
    steps: &'a [usize],
    down: usize,
    needed: usize,
    /// The current block of groups (whole cycles from the first) and its end.
    block: usize,
    block_end: usize,
    /// The block's current column (groups `column`, `column + cycle`, …): its first group,
    /// matrix and window start.
    column: usize,
    id: usize,
    column_at: usize,
    /// The column's next group and its window start.
    k: usize,
    k_at: usize,
}

impl<'a> Order<'a> {
    fn new(groups: &'a Groups, first_id: usize, needed: usize, down: usize) -> Self {
        Self {
            steps: &groups.steps,
            down,
            needed,
            block: 0,
            block_end: needed.min(SHARED_CYCLES * groups.steps.len()),
            column: 0,
            id: first_id,
            column_at: 0,
            k: 0,
            k_at: 0,
        }
    }
}

impl Iterator for Order<'_> {
    type Item = Job;

    fn next(&mut self) -> Option<Job> {
        let cycle = self.steps.len();
        while self.k >= self.block_end {
            // The next column; after a block's last (a whole cycle on, back at its first
            // matrix), the next block.
            self.column_at += self.steps[self.id];
            self.id = if self.id + 1 == cycle { 0 } else { self.id + 1 };
            self.column += 1;
            if self.column == self.block + cycle {
                if self.block_end >= self.needed {
                    return None;
                }
                self.block += SHARED_CYCLES * cycle;
                self.block_end = self.needed.min(self.block + SHARED_CYCLES * cycle);
                // A block starts on the first group's matrix, whole cycles of `down` inputs on.
                (self.column, self.column_at) = (self.block, self.block / cycle * self.down);
            } else if self.column >= self.block_end {
                return None;
            }
            (self.k, self.k_at) = (self.column, self.column_at);
        }
        let job = Job {
            k: self.k,
            id: self.id,
            at: self.k_at,
        };
        self.k += cycle;
        self.k_at += self.down;
        Some(job)
    }
}

/// Computes outputs into `out` while inputs allow (see `Kernel::convolve`); `window` is
/// scratch. `batch` computes `BATCH` groups' sums from their matrices and windows.
#[inline(always)]
#[allow(clippy::inline_always)]
pub(super) fn convolve_with<T: Sample>(
    filter: &PolyphaseFilter,
    groups: &Groups,
    history: &[f32],
    cursor: Cursor,
    out: &mut [T],
    window: &mut Vec<f32>,
    batch: impl Fn([&[f32]; BATCH], [&[f32]; BATCH]) -> [[T; LANES]; BATCH],
) -> (usize, Cursor) {
    let total = out.len().min(available(filter, history.len(), cursor));
    if total == 0 {
        return (0, cursor);
    }
    let position = groups.position[cursor.phase];
    let (g0, lane0) = (position / LANES, position % LANES);
    let cycle = groups.steps.len();
    // Lane 0 of the first group: its window starts `taps − 1` before its newest input.
    let first = cursor.input - groups.offsets[g0][lane0] + 1 - filter.taps;
    // The window of every group, zeros past the history (lanes past `total` read them).
    let groups_needed = (lane0 + total).div_ceil(LANES);
    let cycles = groups_needed.div_ceil(cycle);
    window.clear();
    window.extend_from_slice(&history[first..]);
    window.resize(cycles * filter.down + groups.width * (BATCH + 1), 0.0);
    let mut order = Order::new(groups, g0, groups_needed, filter.down);
    loop {
        let mut jobs = [Job::default(); BATCH];
        let mut live = 0;
        while live < BATCH {
            let Some(job) = order.next() else { break };
            jobs[live] = job;
            live += 1;
        }
        if live == 0 {
            break;
        }
        // Unused slots repeat a group of this batch.
        for slot in live..BATCH {
            jobs[slot] = jobs[0];
        }
        let ys = batch(
            jobs.map(|job| groups.matrix(job.id)),
            jobs.map(|job| &window[job.at..job.at + groups.width]),
        );
        for (job, y) in jobs.iter().zip(&ys).take(live) {
            let (from, at) = if job.k == 0 {
                (lane0, 0)
            } else {
                (0, job.k * LANES - lane0)
            };
            let take = (LANES - from).min(total - at);
            if take == LANES {
                // A whole group: a fixed-size copy, not a call to `memcpy`.
                out[at..at + LANES].copy_from_slice(y);
            } else {
                out[at..at + take].copy_from_slice(&y[from..from + take]);
            }
        }
    }
    (total, advance(filter, cursor, total))
}

/// Portable batch: each lane sums its even and its odd window inputs apart, in order, then adds
/// the two (the AVX2 batch's order, without fused multiply-adds).
pub(super) fn batch_portable<T: Sample>(
    matrices: [&[f32]; BATCH],
    windows: [&[f32]; BATCH],
) -> [[T; LANES]; BATCH] {
    std::array::from_fn(|k| {
        let mut sums = [[0.0f32; LANES]; 2];
        for (j, &x) in windows[k].iter().enumerate() {
            let row = &matrices[k][j * LANES..(j + 1) * LANES];
            for lane in 0..LANES {
                sums[j % 2][lane] += row[lane] * x;
            }
        }
        std::array::from_fn(|lane| T::from_sum(sums[0][lane] + sums[1][lane]))
    })
}

/// AVX2 + FMA batch: eight sums in flight (two per group). Groups that share a matrix (see
/// `Order`) load each of its rows once.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn batch_avx2_fma<T: Sample>(
    matrices: [&[f32]; BATCH],
    windows: [&[f32]; BATCH],
) -> [[T; LANES]; BATCH] {
    let same = |a: usize, b: usize| std::ptr::eq(matrices[a], matrices[b]);
    if same(0, 1) && same(2, 3) {
        if same(1, 2) {
            return sharing_avx2_fma::<T, 4>(matrices, windows);
        }
        return sharing_avx2_fma::<T, 2>(matrices, windows);
    }
    sharing_avx2_fma::<T, 1>(matrices, windows)
}

/// `batch_avx2_fma` where each run of `SHARE` groups has one matrix.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sharing_avx2_fma<T: Sample, const SHARE: usize>(
    matrices: [&[f32]; BATCH],
    windows: [&[f32]; BATCH],
) -> [[T; LANES]; BATCH] {
    use std::arch::x86_64::{_mm256_add_ps, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_setzero_ps};

    use crate::simd::load8 as load;
    let width = windows[0].len();
    debug_assert!(width.is_multiple_of(2));
    let (mut even, mut odd) = ([_mm256_setzero_ps(); BATCH], [_mm256_setzero_ps(); BATCH]);
    for j in (0..width).step_by(2) {
        for first in (0..BATCH).step_by(SHARE) {
            let matrix = matrices[first];
            let (row0, row1) = (load(matrix, j * LANES), load(matrix, (j + 1) * LANES));
            for k in first..first + SHARE {
                let (x0, x1) = (windows[k][j], windows[k][j + 1]);
                even[k] = _mm256_fmadd_ps(row0, _mm256_set1_ps(x0), even[k]);
                odd[k] = _mm256_fmadd_ps(row1, _mm256_set1_ps(x1), odd[k]);
            }
        }
    }
    #[allow(unsafe_code)]
    // SAFETY: this function runs only where the CPU has AVX2.
    std::array::from_fn(|k| unsafe { T::from_sums_avx2(_mm256_add_ps(even[k], odd[k])) })
}

#[cfg(test)]
mod tests {
    use super::super::filter::Quality;
    use super::super::kernel::{Kernel, Scratch};
    use super::*;

    #[test]
    fn every_lane_of_every_group_is_its_phase_dot_product() {
        // A relay's first step (44.1k -> 32k, 320 phases of 17 taps), from every starting
        // output of a group and in uneven calls, against the dot products in f64.
        let relayed = PolyphaseFilter::shared(44100, 16000, Quality::High);
        let filter = &relayed.relay().expect("44.1k -> 16k is relayed").first;
        assert!(filter.groups().is_some());
        let history: Vec<f32> = (0..3000)
            .map(|i| ((i as f32 * 0.731).sin() * 20_000.0).round())
            .collect();
        let (l, m, taps) = (filter.up, filter.down, filter.taps);
        let exact = |n: usize| -> f64 {
            let (newest, phase) = (taps - 1 + n * m / l, n * m % l);
            let window = &history[newest + 1 - taps..=newest];
            filter
                .phase(phase)
                .iter()
                .zip(window)
                .map(|(&c, &x)| f64::from(c) * f64::from(x))
                .sum()
        };
        for kernel in [Kernel::Portable, Kernel::detect()] {
            for start in 0..2 * LANES {
                let mut cursor = Cursor {
                    input: taps - 1 + start * m / l,
                    phase: start * m % l,
                };
                let mut n = start;
                let mut scratch = Scratch::default();
                let mut float_scratch = Scratch::default();
                for size in [1, 7, 8, 9, 100, 333, 1300] {
                    let mut out = vec![0i16; size];
                    let (written, next) =
                        kernel.convolve(filter, &history, 0, cursor, &mut out, &mut scratch);
                    assert_eq!(written, size);
                    let mut floats = vec![0.0f32; size];
                    let (float_written, float_next) = kernel.convolve_floats(
                        filter,
                        &history,
                        cursor,
                        &mut floats,
                        &mut float_scratch,
                    );
                    assert_eq!((float_written, float_next), (written, next));
                    for (k, (&y, &f)) in out.iter().zip(&floats).enumerate() {
                        let e = exact(n + k);
                        assert!(
                            (f64::from(y) - e.clamp(-32768.0, 32767.0)).abs() <= 1.0,
                            "{kernel:?} output {}",
                            n + k
                        );
                        // The same sum, not rounded: within f32 accumulation error.
                        assert!((f64::from(f) - e).abs() <= 0.05, "{kernel:?} f32 {}", n + k);
                        assert_eq!(y, to_sample(f), "{kernel:?} output {}", n + k);
                    }
                    (cursor, n) = (next, n + size);
                }
            }
        }
    }
}
