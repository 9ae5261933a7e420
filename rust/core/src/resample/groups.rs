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
//!
//! On AVX-512, filters whose sixteen consecutive outputs read within a few taps of each other
//! run sixteen at a time without the zeros (`Wide`): each lane picks its inputs out of a table
//! of 32 by a permutation. A CPU runs one form or the other, so chunking never mixes them.

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
    /// The same phases sixteen outputs at a time, where a group's window fits the tables.
    wide: Option<Wide>,
}

/// Where the groups of `N` consecutive outputs read, for a filter of `up` phases taking `down`
/// inputs a cycle: per group, each lane's newest input counted from lane 0's (output `n`'s
/// newest input is `⌊n·M / L⌋` after output 0's), and the inputs from its lane 0's newest to
/// the next group's.
fn layout<const N: usize>(up: usize, down: usize) -> (Vec<[usize; N]>, Vec<usize>) {
    let newest = |n: usize| n * down / up;
    let groups = 0..up / N;
    let offsets = groups
        .clone()
        .map(|g| std::array::from_fn(|lane| newest(g * N + lane) - newest(g * N)))
        .collect();
    let steps = groups
        .map(|g| newest((g + 1) * N) - newest(g * N))
        .collect();
    (offsets, steps)
}

impl Groups {
    /// The group form of a filter with `up` a multiple of `LANES` (phases from `phase`,
    /// oldest input first, `taps` each).
    #[must_use]
    pub fn new(up: usize, down: usize, taps: usize, phase: impl Fn(usize) -> Vec<f32>) -> Self {
        assert!(up.is_multiple_of(LANES), "groups must tile the phase cycle");
        let (offsets, steps) = layout::<LANES>(up, down);
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
        let mut position = vec![0; up];
        for n in 0..up {
            position[n * down % up] = n;
        }
        let wide = Wide::new(up, down, taps, &phase);
        Self {
            width,
            spread,
            matrices,
            offsets,
            steps,
            position,
            wide,
        }
    }

    /// Inputs before an output's own window that its group (of either width) may read.
    #[must_use]
    pub fn spread(&self) -> usize {
        self.wide
            .as_ref()
            .map_or(self.spread, |wide| self.spread.max(wide.spread))
    }

    /// The sixteen-output form, if the filter has one.
    pub(super) fn wide(&self) -> Option<&Wide> {
        self.wide.as_ref()
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

/// Outputs per wide group: one 16-lane AVX-512 register.
pub(super) const WIDE: usize = 16;
/// Inputs a wide group reads at once: two registers, which each lane indexes through a
/// two-source permutation.
const TABLE: usize = 32;
/// Fewest taps per table worth a wide form (its loads and index updates are per table).
const MIN_RUN: usize = 4;

/// A filter's phases sixteen consecutive outputs at a time, without the group matrices'
/// zeros: for each tap, every lane picks its own input from a table of 32 consecutive ones
/// (`vpermt2ps`) and multiplies it by its own phase's coefficient. Lane `l` reads window input
/// `o_l + k` for tap `k`, where `o_l` is its newest input's offset from lane 0's, so one
/// table serves `TABLE − max o_l` taps in a row (a run) by adding 1 to every index; a 20 ms
/// frame of 22.05k → 16k (17 taps, 20 groups) takes 340 permutations and multiply-adds of
/// 16 lanes where the 8-lane matrices take 1 120 of 8 lanes.
// Elsewhere than x86-64 only whether a filter has a wide form is read (it picks the same
// relay on every CPU); its kernel is AVX-512's.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[derive(Debug)]
pub struct Wide {
    taps: usize,
    /// Taps per run.
    run: usize,
    /// How far the lanes' newest inputs spread (the largest `o_l`).
    spread: usize,
    /// Per group, each lane's `o_l`.
    offsets: Vec<[usize; WIDE]>,
    /// The same as indices into a run's table.
    patterns: Vec<[i32; WIDE]>,
    /// Per group, `taps` rows of the lanes' coefficients.
    rows: Vec<[f32; WIDE]>,
    /// Per group, inputs from its lane 0's newest to the next group's.
    steps: Vec<usize>,
}

impl Wide {
    /// The wide form of `Groups::new`'s filter, if sixteen outputs tile the phase cycle and
    /// their windows leave at least `MIN_RUN` taps per table.
    fn new(
        up: usize,
        down: usize,
        taps: usize,
        phase: &impl Fn(usize) -> Vec<f32>,
    ) -> Option<Self> {
        if !up.is_multiple_of(WIDE) {
            return None;
        }
        let (offsets, steps) = layout::<WIDE>(up, down);
        let spread = offsets.iter().map(|o| o[WIDE - 1]).max().unwrap_or(0);
        let run = TABLE.checked_sub(spread).filter(|&run| run >= MIN_RUN)?;
        // Below `TABLE`, so every offset is a valid index.
        let patterns = offsets
            .iter()
            .map(|o| o.map(|offset| i32::try_from(offset).unwrap_or(i32::MAX)))
            .collect();
        let mut rows = vec![[0.0f32; WIDE]; offsets.len() * taps];
        for (g, group_rows) in rows.chunks_exact_mut(taps).enumerate() {
            for lane in 0..WIDE {
                let coefficients = phase((g * WIDE + lane) * down % up);
                for (row, c) in group_rows.iter_mut().zip(coefficients) {
                    row[lane] = c;
                }
            }
        }
        Some(Self {
            taps,
            run,
            spread,
            offsets,
            patterns,
            rows,
            steps,
        })
    }
}

/// `convolve_with` sixteen outputs at a time on the filter's wide form (see `Wide`).
///
/// # Safety
/// The CPU must have AVX2, FMA, AVX-512F and AVX-512VL.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
#[allow(unsafe_code)]
pub(super) unsafe fn convolve_wide<T: Sample>(
    filter: &PolyphaseFilter,
    groups: &Groups,
    wide: &Wide,
    history: &[f32],
    cursor: Cursor,
    out: &mut [T],
    window: &mut Vec<f32>,
) -> (usize, Cursor) {
    use std::arch::x86_64::{
        _mm256_castpd_ps, _mm512_add_epi32, _mm512_add_ps, _mm512_castps512_ps256,
        _mm512_castps_pd, _mm512_extractf64x4_pd, _mm512_fmadd_ps, _mm512_loadu_epi32,
        _mm512_loadu_ps, _mm512_permutex2var_ps, _mm512_set1_epi32, _mm512_setzero_ps,
    };

    let total = out.len().min(available(filter, history.len(), cursor));
    if total == 0 {
        return (0, cursor);
    }
    let position = groups.position[cursor.phase];
    let (mut g, lane0) = (position / WIDE, position % WIDE);
    let cycle = wide.steps.len();
    // Lane 0 of the first group: its window starts `taps − 1` before its newest input.
    let first = cursor.input - wide.offsets[g][lane0] + 1 - filter.taps;
    let groups_needed = (lane0 + total).div_ceil(WIDE);
    // Groups read the history where a run's whole table lies within it; the last few read a
    // copy of its end followed by zeros (lanes past `total` read them).
    let inputs = &history[first..];
    let reach = wide.taps - 1 + TABLE;
    let tail_from = inputs.len().saturating_sub(reach);
    window.clear();
    window.extend_from_slice(&inputs[tail_from..]);
    window.resize(inputs.len() - tail_from + reach, 0.0);
    let one = _mm512_set1_epi32(1);
    let mut at = 0;
    for k in 0..groups_needed {
        let rows = &wide.rows[g * wide.taps..(g + 1) * wide.taps];
        let x = if at + reach <= inputs.len() {
            &inputs[at..at + reach]
        } else {
            // A group's lane 0 window starts within the history.
            &window[at - tail_from..at - tail_from + reach]
        };
        // Alternate taps of each run sum apart, so that each sum's multiply-adds wait on half
        // as many.
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut tap = 0;
        // SAFETY (this block): a run starts at most `taps − 1` into `x` and reads `TABLE`
        // inputs, which `x` holds; unaligned loads.
        unsafe {
            let x = x.as_ptr();
            while tap < wide.taps {
                let (low, high) = (
                    _mm512_loadu_ps(x.add(tap)),
                    _mm512_loadu_ps(x.add(tap + WIDE)),
                );
                let mut index = _mm512_loadu_epi32(wide.patterns[g].as_ptr());
                let mut pairs = rows[tap..(tap + wide.run).min(wide.taps)].chunks_exact(2);
                for pair in &mut pairs {
                    for (sum, row) in acc.iter_mut().zip(pair) {
                        let inputs = _mm512_permutex2var_ps(low, index, high);
                        *sum = _mm512_fmadd_ps(_mm512_loadu_ps(row.as_ptr()), inputs, *sum);
                        index = _mm512_add_epi32(index, one);
                    }
                }
                if let [row] = pairs.remainder() {
                    let inputs = _mm512_permutex2var_ps(low, index, high);
                    acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(row.as_ptr()), inputs, acc[0]);
                }
                tap += wide.run;
            }
        }
        let acc = _mm512_add_ps(acc[0], acc[1]);
        let halves = [
            _mm512_castps512_ps256(acc),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc))),
        ];
        // SAFETY: this function runs only where the CPU has AVX2.
        let [low, high] = halves.map(|sums| unsafe { T::from_sums_avx2(sums) });
        let (from, to) = if k == 0 {
            (lane0, 0)
        } else {
            (0, k * WIDE - lane0)
        };
        let take = (WIDE - from).min(total - to);
        if take == WIDE {
            // A whole group: element by element, which compiles to two stores where
            // `copy_from_slice` called `memcpy` (a third of this function's time).
            for (y, value) in out[to..to + WIDE]
                .iter_mut()
                .zip(low.into_iter().chain(high))
            {
                *y = value;
            }
        } else {
            let y: [T; WIDE] =
                std::array::from_fn(|l| if l < LANES { low[l] } else { high[l - LANES] });
            out[to..to + take].copy_from_slice(&y[from..from + take]);
        }
        at += wide.steps[g];
        g = if g + 1 == cycle { 0 } else { g + 1 };
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

    /// The ways a filter in groups runs: the kernels as `Kernel` dispatches them, and on an
    /// AVX-512 CPU the 8-lane AVX2 matrices that `Kernel` then passes over for the wide form.
    #[derive(Debug, Clone, Copy)]
    enum Way {
        Dispatched(Kernel),
        #[cfg(target_arch = "x86_64")]
        EightLanes,
    }

    impl Way {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        fn all() -> Vec<Self> {
            let mut ways = vec![
                Self::Dispatched(Kernel::Portable),
                Self::Dispatched(Kernel::detect()),
            ];
            #[cfg(target_arch = "x86_64")]
            if crate::simd::has_avx512vl() {
                ways.push(Self::EightLanes);
            }
            ways
        }

        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
        fn convolve<T: Sample>(
            self,
            filter: &PolyphaseFilter,
            history: &[f32],
            cursor: Cursor,
            out: &mut [T],
            scratch: &mut Scratch,
            run: impl Fn(Kernel, &mut [T], &mut Scratch) -> (usize, Cursor),
        ) -> (usize, Cursor) {
            match self {
                Self::Dispatched(kernel) => run(kernel, out, scratch),
                #[cfg(target_arch = "x86_64")]
                #[allow(unsafe_code)]
                Self::EightLanes => {
                    let form = filter.groups().expect("a filter in groups");
                    convolve_with(
                        filter,
                        form,
                        history,
                        cursor,
                        out,
                        &mut scratch.floats,
                        |m, w| {
                            // SAFETY: `all` offers this way only where the CPU has AVX-512 (and so
                            // AVX2 and FMA).
                            unsafe { batch_avx2_fma::<T>(m, w) }
                        },
                    )
                }
            }
        }
    }

    #[test]
    fn every_lane_of_every_group_is_its_phase_dot_product() {
        // Relays' first steps: 44.1k -> 32k (320 phases of 17 taps, with a wide form) and
        // 44.1k -> 16k (160 of 34, whose sixteen outputs spread too far for one), from every
        // starting output of a group and in uneven calls, against the dot products in f64.
        let history: Vec<f32> = (0..8000)
            .map(|i| ((i as f32 * 0.731).sin() * 20_000.0).round())
            .collect();
        for (mid, wide) in [(32000, true), (16000, false)] {
            let out_rate = mid / 2;
            let filter = &PolyphaseFilter::relay_step(44100, mid, out_rate, Quality::High);
            let form = filter
                .groups()
                .expect("a relay's first step runs in groups");
            assert_eq!(form.wide().is_some(), wide, "44.1k -> {out_rate}");
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
            for way in Way::all() {
                for start in 0..2 * WIDE {
                    let mut cursor = Cursor {
                        input: taps - 1 + start * m / l,
                        phase: start * m % l,
                    };
                    let mut n = start;
                    let mut scratch = Scratch::default();
                    let mut float_scratch = Scratch::default();
                    for size in [1, 7, 8, 9, 15, 16, 17, 100, 333, 1300] {
                        let mut out = vec![0i16; size];
                        let (written, next) = way.convolve(
                            filter,
                            &history,
                            cursor,
                            &mut out,
                            &mut scratch,
                            |k, o, s| k.convolve(filter, &history, 0, cursor, o, s),
                        );
                        assert_eq!(written, size);
                        let mut floats = vec![0.0f32; size];
                        let (float_written, float_next) = way.convolve(
                            filter,
                            &history,
                            cursor,
                            &mut floats,
                            &mut float_scratch,
                            |k, o, s| k.convolve_floats(filter, &history, cursor, o, s),
                        );
                        assert_eq!((float_written, float_next), (written, next));
                        for (k, (&y, &f)) in out.iter().zip(&floats).enumerate() {
                            let e = exact(n + k);
                            assert!(
                                (f64::from(y) - e.clamp(-32768.0, 32767.0)).abs() <= 1.0,
                                "{way:?} 44.1k -> {out_rate} output {}",
                                n + k
                            );
                            // The same sum, not rounded: within f32 accumulation error.
                            assert!((f64::from(f) - e).abs() <= 0.05, "{way:?} f32 {}", n + k);
                            assert_eq!(y, to_sample(f), "{way:?} output {}", n + k);
                        }
                        (cursor, n) = (next, n + size);
                    }
                }
            }
        }
    }
}
