//! Decimation by an integer factor `M` (L = 1) with the four-parallel fast FIR algorithm:
//! nine multiply-adds where direct convolution does sixteen.
//!
//! Split into its `M` polyphase branches (`x_p[n] = x[Mn − p]`, `h_p[k] = h[Mk + p]`), the
//! decimator is a sum of ordinary convolutions at the output rate. The two-parallel algorithm
//! makes two outputs of a convolution from three of half its length: with `X0`, `X1` the even
//! and odd samples and `H0`, `H1` the even and odd taps,
//!
//! ```text
//! y[2j] = A[j] + B[j − 1],   y[2j + 1] = C[j] − A[j] − B[j],
//! A = H0·X0,   B = H1·X1,   C = (H0 + H1)·(X0 + X1).
//! ```
//!
//! Applied again to `A`, `B` and `C` (`A[2i] = a0[i] + a1[i − 1]`,
//! `A[2i + 1] = a2[i] − a0[i] − a1[i]`, …), it makes four outputs from nine convolutions of a
//! quarter of the length, each summed over the branches: with `V_r[i] = x_p[4i + r]` and
//! `G_s[k] = h_p[4k + s]`,
//!
//! ```text
//! a0 = G0·V0           a1 = G2·V2           a2 = (G0 + G2)·(V0 + V2)
//! b0 = G1·V1           b1 = G3·V3           b2 = (G1 + G3)·(V1 + V3)
//! c0 = (G0 + G1)·(V0 + V1)   c1 = (G2 + G3)·(V2 + V3)   c2 = ΣG·ΣV
//! ```
//!
//! Each sum at column `i` is one fixed sum over fixed inputs, computed across SIMD lanes (one
//! column per lane) like the `lanes` kernel, and every output is combined from them in one
//! fixed order (`output`), so chunking never changes a sample. Its inputs are all in once the
//! output's own newest input is, so nothing is held back.
//!
//! Output `4i`'s newest input is a multiple of `4M` in the history, which the resampler keeps
//! true by starting the stream there and dropping history `4M` inputs at a time
//! (`history_step`); the history is split into `4M` rows, one column per four outputs, kept
//! between calls (`RowCache`).

use super::deinterleave;
use super::kernel::{to_sample, Cursor, Scratch};
use super::lanes::{LANES, LINE};

/// Outputs per column.
const PARALLEL: usize = 4;
/// The nine sums per column (`a0 a1 a2 b0 b1 b2 c0 c1 c2`).
const SUMS: usize = 9;
/// Columns of the sums per round (a 20 ms frame at 8 kHz is 40 columns, plus one before them).
const ROUND: usize = 48;
/// Blocks of 8 lanes per pass at most: eighteen sums of 16 lanes and the inputs fit
/// AVX-512's 32 registers; AVX2's 16 take three sums of up to three blocks at a time
/// (`avx2::pass_in_parts`, `AVX2_BLOCKS`).
const MAX_BLOCKS: usize = 4;
/// Blocks per pass of the AVX2 kernel without AVX-512: a frame's 40 columns (8 kHz out) run
/// as 3 + 2 blocks, with six to twelve sums in flight per loop, where 4 + 1 ran as 2 + 2 + 1
/// (six or three), too few to keep the multiply-adds busy (16k → 8k 0.88 instead of 1.00 µs
/// a frame on this machine with AVX-512 switched off).
#[cfg(target_arch = "x86_64")]
const AVX2_BLOCKS: usize = 3;
/// Scratch columns per sum and round, room for a last pass that runs past the round's end.
const SCRATCH: usize = ROUND + MAX_BLOCKS * LANES;
/// The sums of column `i − 1` that outputs of column `i` read (`a1 b0 b1 b2 c1`), carried
/// from one call to the next.
const CARRIED: [usize; 5] = [1, 3, 4, 5, 7];
/// The values of the `CARRIED` sums.
pub(super) type Carried = [f32; CARRIED.len()];

/// A decimating filter in the form the fast algorithm uses.
#[derive(Debug)]
pub struct FastDecimator {
    m: usize,
    /// The decimator reads the history `shift` inputs later than its rows are aligned (0 or
    /// 1): a second decimator on the same rows, whose outputs come one input after the first's.
    shift: usize,
    /// Taps of each quarter-length convolution, per branch.
    quarter: usize,
    /// For branch `p`, tap `k` (at `p · quarter + k`): the coefficients of the nine sums,
    /// `[G0, G2, G0 + G2, G1, G3, G1 + G3, G0 + G1, G2 + G3, G0 + G1 + G2 + G3]`.
    taps: Vec<[f32; SUMS]>,
}

impl FastDecimator {
    /// The decimator by `m` for prototype `h` (`h[0]` weighs the newest input).
    #[must_use]
    pub fn new(h: &[f64], m: usize) -> Self {
        Self::shifted(h, m, 0)
    }

    /// The decimator by `m` for prototype `h` whose output `j` has its newest input at history
    /// index `shift` past where `new`'s would (`shift` ≤ 1), reading the same rows.
    #[must_use]
    pub fn shifted(h: &[f64], m: usize, shift: usize) -> Self {
        assert!(
            shift <= 1,
            "rows are shared only by decimators one input apart"
        );
        let quarter = h.len().div_ceil(PARALLEL * m);
        let tap = |n: usize| h.get(n).copied().unwrap_or(0.0);
        let mut taps = Vec::with_capacity(m * quarter);
        for p in 0..m {
            for k in 0..quarter {
                let g: [f64; PARALLEL] = std::array::from_fn(|s| tap(m * (PARALLEL * k + s) + p));
                let sums = [
                    g[0],
                    g[2],
                    g[0] + g[2],
                    g[1],
                    g[3],
                    g[1] + g[3],
                    g[0] + g[1],
                    g[2] + g[3],
                    (g[0] + g[1]) + (g[2] + g[3]),
                ];
                taps.push(sums.map(|c| c as f32));
            }
        }
        Self {
            m,
            shift,
            quarter,
            taps,
        }
    }

    /// Inputs an output reaches back over, its own newest included: one more column than
    /// the prototype, for the sums of column `i − 1`, and one more than a multiple of `4M`, so
    /// that a stream's first output has its newest input at a multiple of `4M`.
    #[must_use]
    pub fn reach(&self) -> usize {
        PARALLEL * self.m * (self.quarter + 1) + 1
    }

    /// The decimation factor `M`.
    #[must_use]
    pub fn factor(&self) -> usize {
        self.m
    }

    /// History must be dropped in multiples of this many inputs to keep its rows aligned.
    #[must_use]
    pub fn history_step(&self) -> usize {
        PARALLEL * self.m
    }

    /// Where branch `p`'s `V0` to `V3` start in rows of `stride` floats: `V_r[i]` is column
    /// `i − 1` of its row (see `split`); a shifted decimator's last row is the first row one
    /// column on.
    fn branch(&self, p: usize, stride: usize) -> [usize; PARALLEL] {
        let rows = PARALLEL * self.m;
        std::array::from_fn(|r| {
            let row = (r + 1) * self.m - 1 - p + self.shift;
            if row == rows {
                1
            } else {
                row * stride
            }
        })
    }
}

/// The history split into `4M` rows, kept between calls: column `c` holds inputs
/// `4M(c + 1) − M + 1` to `4M(c + 1) + 3M`, column `i`'s `V0` to `V3` of every branch. The
/// resampler only appends inputs and drops them from the front in whole columns
/// (`history_step`), so each call splits just the inputs appended since the last; when the
/// rows run out of room, the columns split so far move to the front of each row (longer rows
/// if a call brings more columns). The resampler frees the inputs the rows hold alone
/// (`resplit_from`), so its own history is just the last partial column and new input.
#[derive(Debug, Clone, Default)]
pub struct RowCache {
    buffer: Vec<f32>,
    /// Floats per row.
    stride: usize,
    /// Rows (`4M`), or 0 when nothing is split.
    rows: usize,
    /// Where in each row the history's first column sits (advances as columns are dropped).
    offset: usize,
    /// Inputs (from the history's `3M + 1`st) already split.
    split: usize,
}

/// Times the columns a call needs that a row holds; when the rows run out of room, the
/// columns split so far move to the front. Kept small because a server runs hundreds of
/// streams whose rows fall out of cache between their calls: 200 interleaved 24 kHz encoders
/// cost ~1.11 µs a frame each with 2, ~1.17 µs with 8, and one stream alone the same ~1.01 µs.
const ROOM: usize = 2;
/// Columns past the last that a pass may read: its lanes run past the available outputs.
const PAD: usize = MAX_BLOCKS * LANES + LANES;

impl RowCache {
    /// Forgets the history.
    pub(super) fn clear(&mut self) {
        self.rows = 0;
    }

    /// The resampler dropped `n` inputs (whole columns, never more than were split) from the
    /// front of the history.
    pub(super) fn dropped(&mut self, n: usize) {
        if self.rows == 0 {
            return;
        }
        assert!(
            n <= self.split && n.is_multiple_of(self.rows),
            "history dropped out of step with its rows"
        );
        self.split -= n;
        self.offset += n / self.rows;
    }

    /// The first history input a later call splits again (the start of the last, possibly
    /// partial, column split): the inputs before it are held by the rows alone.
    pub(super) fn resplit_from(&self) -> usize {
        if self.rows == 0 {
            return 0;
        }
        first_split(self.rows) + self.split - self.split % self.rows
    }

    /// The rows of the history for `decimator`, splitting what is new since the last call.
    /// `history` holds the inputs from history index `origin` on (those before it are in the
    /// rows: `origin` is at most `resplit_from`).
    fn columns(
        &mut self,
        decimator: &FastDecimator,
        history: &[f32],
        origin: usize,
    ) -> Columns<'_> {
        let rows = PARALLEL * decimator.m;
        let first = first_split(rows);
        let inputs = origin + history.len() - first;
        let columns = inputs.div_ceil(rows);
        // Row length for this call's columns, `ROOM` times over.
        let wanted = (ROOM * (columns + PAD)).next_multiple_of(LINE);
        if self.rows != rows || self.split > inputs {
            assert_eq!(origin, 0, "the rows lost inputs only they held");
            self.stride = wanted;
            self.buffer.resize(rows * self.stride, 0.0);
            (self.rows, self.offset, self.split) = (rows, 0, 0);
        } else if self.offset + columns + PAD > self.stride {
            // Out of room past the last column: move the columns split so far to the front of
            // each row, in longer rows if a row could not hold this call's columns twice.
            let kept = self.split.div_ceil(rows);
            let stride = self.stride.max(wanted);
            if stride > self.stride {
                let mut buffer = vec![0.0; rows * stride];
                for (old, new) in self
                    .buffer
                    .chunks_exact(self.stride)
                    .zip(buffer.chunks_exact_mut(stride))
                {
                    new[..kept].copy_from_slice(&old[self.offset..self.offset + kept]);
                }
                (self.buffer, self.stride) = (buffer, stride);
            } else {
                for row in self.buffer.chunks_exact_mut(self.stride) {
                    row.copy_within(self.offset..self.offset + kept, 0);
                }
            }
            self.offset = 0;
        }
        // From the first input of the last, possibly partial, column split.
        let from = self.split - self.split % rows;
        deinterleave::split(
            &history[first + from - origin..],
            rows,
            self.stride,
            self.offset + from / rows,
            &mut self.buffer,
        );
        self.split = inputs;
        Columns {
            data: &self.buffer,
            stride: self.stride,
            offset: self.offset,
        }
    }
}

/// History index of the first input the rows hold (column 0's first, with `rows` = `4M`).
fn first_split(rows: usize) -> usize {
    rows / PARALLEL * (PARALLEL - 1) + 1
}

/// A view of the rows: history column `c` of row `r` is at `data[r · stride + offset + c]`.
#[derive(Clone, Copy)]
struct Columns<'a> {
    data: &'a [f32],
    stride: usize,
    offset: usize,
}

/// Where one pass reads: lane `k` of a pass computes column `first + k` of the sums.
#[derive(Clone, Copy)]
struct Pass<'a> {
    decimator: &'a FastDecimator,
    columns: Columns<'a>,
    first: usize,
}

impl Pass<'_> {
    /// Calls `f(taps, q, rows)` for every branch and tap in order, where lane `k` reads
    /// `data[row + q + k]` for `V0` to `V3` (one `row` each). Asserts first that `blocks`
    /// blocks of 8 lanes lie within `data` for every tap, so kernels may load unchecked.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn for_each(self, blocks: usize, mut f: impl FnMut(&[f32; SUMS], usize, [usize; PARALLEL])) {
        self.for_each_branch(blocks, |rows, taps, newest| {
            for (k, t) in taps.iter().enumerate() {
                f(t, newest - k, rows);
            }
        });
    }

    /// Calls `f(rows, taps, q)` for every branch in order, where tap `k` of `taps` has lane
    /// `l` read `data[row + q − k + l]` (`for_each`'s `q` is `q − k`), with the same assertion.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn for_each_branch(
        self,
        blocks: usize,
        mut f: impl FnMut([usize; PARALLEL], &[[f32; SUMS]], usize),
    ) {
        let Columns {
            data,
            stride,
            offset,
        } = self.columns;
        let quarter = self.decimator.quarter;
        // Lane 0 reads column `first − 1 − k` for tap `k`.
        assert!(
            self.first >= quarter,
            "history too short for column {}",
            self.first
        );
        assert!(offset + self.first - 1 + blocks * LANES + self.decimator.shift <= stride);
        assert_eq!(data.len(), PARALLEL * self.decimator.m * stride);
        for (p, taps) in self.decimator.taps.chunks_exact(quarter).enumerate() {
            f(
                self.decimator.branch(p, stride),
                taps,
                offset + self.first - 1,
            );
        }
    }
}

/// The nine sums over one round of columns, `SCRATCH` each (reused between calls: a pass
/// writes every column before it is read).
struct Sums<'a>(&'a mut [f32]);

impl Sums<'_> {
    /// Sum `j` (`a0 a1 a2 b0 b1 b2 c0 c1 c2`) of every column.
    fn sum(&self, j: usize) -> &[f32] {
        &self.0[j * SCRATCH..(j + 1) * SCRATCH]
    }

    fn sum_mut(&mut self, j: usize) -> &mut [f32] {
        &mut self.0[j * SCRATCH..(j + 1) * SCRATCH]
    }
}

/// What the nine sums multiply their coefficients with, from a column's `V0` to `V3`
/// (`add` adds two of them): `V0, V2, V0 + V2, V1, V3, V1 + V3, V0 + V1, V2 + V3` and
/// `(V0 + V1) + (V2 + V3)`. Every kernel forms them in this order.
#[inline(always)]
#[allow(clippy::inline_always)]
fn products<T: Copy>([v0, v1, v2, v3]: [T; PARALLEL], add: impl Fn(T, T) -> T) -> [T; SUMS] {
    let (s01, s23) = (add(v0, v1), add(v2, v3));
    [
        v0,
        v2,
        add(v0, v2),
        v1,
        v3,
        add(v1, v3),
        s01,
        s23,
        add(s01, s23),
    ]
}

/// Portable pass: `G` blocks of lanes of the nine sums from column `pass.first`, stored at
/// `at` in `sums`.
fn pass_portable<const G: usize>(pass: Pass<'_>, sums: &mut Sums, at: usize) {
    let data = pass.columns.data;
    let mut acc = [[[0.0f32; LANES]; G]; SUMS];
    pass.for_each(G, |t, q, rows| {
        for b in 0..G {
            let v = rows.map(|row| &data[row + q + b * LANES..][..LANES]);
            for k in 0..LANES {
                let x = products(v.map(|v| v[k]), |a, b| a + b);
                for j in 0..SUMS {
                    acc[j][b][k] += t[j] * x[j];
                }
            }
        }
    });
    for (j, lanes) in acc.iter().enumerate() {
        sums.sum_mut(j)[at..at + G * LANES].copy_from_slice(lanes.as_flattened());
    }
}

/// One decimator's outputs in a call: `out` is filled with the outputs from the one whose
/// newest input is history index `newest + shift`, one every `M` inputs (`newest` counts in
/// the decimator's own indexing, where its rows are aligned).
pub(super) struct Branch<'a> {
    pub(super) decimator: &'a FastDecimator,
    pub(super) newest: usize,
    pub(super) out: &'a mut [i16],
    /// The sums the branch's last call left for its next output (see `Scratch::carry`).
    pub(super) carry: &'a mut Option<Carried>,
}

/// The portable kernel.
pub(super) fn convolve_portable(
    decimator: &FastDecimator,
    history: &[f32],
    origin: usize,
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
) -> (usize, Cursor) {
    single(
        decimator,
        history,
        origin,
        cursor,
        out,
        scratch,
        |branches, rows, floats| {
            branches_portable(branches, history, origin, rows, floats);
        },
    )
}

/// The portable kernel for decimators sharing one history's rows.
pub(super) fn branches_portable(
    branches: &mut [Branch<'_>],
    history: &[f32],
    origin: usize,
    rows: &mut RowCache,
    floats: &mut Vec<f32>,
) {
    let pass = |blocks, pass: Pass<'_>, sums: &mut Sums, at| match blocks {
        4 => pass_portable::<4>(pass, sums, at),
        3 => pass_portable::<3>(pass, sums, at),
        2 => pass_portable::<2>(pass, sums, at),
        _ => pass_portable::<1>(pass, sums, at),
    };
    drive::<MAX_BLOCKS>(branches, history, origin, rows, floats, pass, combine);
}

/// The AVX2 + FMA kernel, with 16-lane registers where AVX-512 has them (the same arithmetic
/// lane for lane, so the same samples).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) fn convolve_avx2_fma(
    decimator: &FastDecimator,
    history: &[f32],
    origin: usize,
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
) -> (usize, Cursor) {
    convolve_avx2_with(
        decimator,
        history,
        origin,
        cursor,
        out,
        scratch,
        crate::simd::has_avx512vl(),
    )
}

/// `convolve_avx2_fma` with 16-lane passes or not (`wide`, which needs AVX-512VL).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn convolve_avx2_with(
    decimator: &FastDecimator,
    history: &[f32],
    origin: usize,
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
    wide: bool,
) -> (usize, Cursor) {
    single(
        decimator,
        history,
        origin,
        cursor,
        out,
        scratch,
        |branches, rows, floats| {
            branches_avx2_with(branches, history, origin, rows, floats, wide);
        },
    )
}

/// The AVX2 + FMA kernel for decimators sharing one history's rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) fn branches_avx2_fma(
    branches: &mut [Branch<'_>],
    history: &[f32],
    origin: usize,
    rows: &mut RowCache,
    floats: &mut Vec<f32>,
) {
    branches_avx2_with(
        branches,
        history,
        origin,
        rows,
        floats,
        crate::simd::has_avx512vl(),
    );
}

/// One decimator's outputs as a branch of its own: as many as `out` holds and inputs allow.
fn single(
    decimator: &FastDecimator,
    history: &[f32],
    origin: usize,
    cursor: Cursor,
    out: &mut [i16],
    scratch: &mut Scratch,
    kernel: impl FnOnce(&mut [Branch<'_>], &mut RowCache, &mut Vec<f32>),
) -> (usize, Cursor) {
    let m = decimator.m;
    // Every output of a fast decimator has L = 1: its cursor moves M inputs per output.
    let total = out
        .len()
        .min(available_outputs(origin + history.len(), cursor.input, m));
    let mut branch = Branch {
        decimator,
        newest: cursor.input,
        out: &mut out[..total],
        carry: &mut scratch.carry,
    };
    kernel(
        std::slice::from_mut(&mut branch),
        &mut scratch.rows,
        &mut scratch.floats,
    );
    let advanced = Cursor {
        input: cursor.input + total * m,
        phase: 0,
    };
    (total, advanced)
}

/// `branches_avx2_fma`, with passes in 16-lane registers (`wide`, which needs AVX-512VL) or
/// in three parts (`pass_in_parts`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn branches_avx2_with(
    branches: &mut [Branch<'_>],
    history: &[f32],
    origin: usize,
    rows: &mut RowCache,
    floats: &mut Vec<f32>,
    wide: bool,
) {
    let combine = |sums: &Sums, at, phase, out: &mut [i16]| avx2::combine(sums, at, phase, out);
    if wide {
        let pass = |blocks, pass: Pass<'_>, sums: &mut Sums, at| match blocks {
            #[allow(unsafe_code)]
            // SAFETY: callers pass `wide` only if the CPU reported AVX-512F and AVX-512VL.
            4 => unsafe { avx2::pass_zmm::<2, false>(pass, sums, at) },
            #[allow(unsafe_code)]
            3 => unsafe { avx2::pass_zmm::<1, true>(pass, sums, at) },
            #[allow(unsafe_code)]
            2 => unsafe { avx2::pass_zmm::<1, false>(pass, sums, at) },
            #[allow(unsafe_code)]
            _ => unsafe { avx2::pass_zmm::<0, true>(pass, sums, at) },
        };
        drive::<MAX_BLOCKS>(branches, history, origin, rows, floats, pass, combine);
    } else {
        let pass = |blocks, pass: Pass<'_>, sums: &mut Sums, at| match blocks {
            3 => avx2::pass_in_parts::<3>(pass, sums, at),
            2 => avx2::pass_in_parts::<2>(pass, sums, at),
            _ => avx2::pass_in_parts::<1>(pass, sums, at),
        };
        drive::<AVX2_BLOCKS>(branches, history, origin, rows, floats, pass, combine);
    }
}

/// Splits the history's new inputs into the rows once, then computes each branch's outputs
/// round by round: the columns of the sums the round's outputs need, in passes of up to
/// `BLOCKS` blocks of lanes (at most `MAX_BLOCKS`), then each output from them. Branches share
/// `M` and the rows.
#[inline(always)]
#[allow(clippy::inline_always)]
fn drive<const BLOCKS: usize>(
    branches: &mut [Branch<'_>],
    history: &[f32],
    origin: usize,
    rows: &mut RowCache,
    floats: &mut Vec<f32>,
    pass: impl Fn(usize, Pass<'_>, &mut Sums, usize),
    combine: impl Fn(&Sums, usize, usize, &mut [i16]),
) {
    // Inputs past the last output's newest wait for the next call: a frame of whole columns
    // then splits exactly its own columns, not a partial one it would split again.
    let Some(needed) = branches
        .iter()
        .filter(|b| !b.out.is_empty())
        .map(|b| b.newest + b.decimator.shift + (b.out.len() - 1) * b.decimator.m + 1)
        .max()
    else {
        return;
    };
    let columns = rows.columns(branches[0].decimator, &history[..needed - origin], origin);
    floats.resize(SUMS * SCRATCH, 0.0);
    let mut sums = Sums(floats);
    for branch in branches.iter_mut() {
        compute::<BLOCKS>(branch, columns, &mut sums, &pass, &combine);
    }
}

/// One branch's outputs from the split rows.
#[inline(always)]
#[allow(clippy::inline_always)]
fn compute<const BLOCKS: usize>(
    branch: &mut Branch<'_>,
    columns: Columns<'_>,
    sums: &mut Sums,
    pass: &impl Fn(usize, Pass<'_>, &mut Sums, usize),
    combine: &impl Fn(&Sums, usize, usize, &mut [i16]),
) {
    let decimator = branch.decimator;
    let m = decimator.m;
    let total = branch.out.len();
    let span = PARALLEL * m;
    let mut carry = branch.carry.take();
    let mut done = 0;
    while done < total {
        // Output `r` of column `i` has its newest input at `4Mi + Mr`.
        let newest = branch.newest + done * m;
        let (i, phase) = (newest / span, newest % span / m);
        debug_assert_eq!(newest % m, 0);
        let count = (total - done).min(PARALLEL * (ROUND - 1) - phase);
        // Column `base` is index 0 of the sums: outputs 0 to 2 of column `i` also read column
        // `i − 1`, which the previous round or call left in `carry` if it ended on output 3
        // before (the same values a pass would give).
        let base = i - usize::from(phase < PARALLEL - 1);
        let hi = (newest + (count - 1) * m) / span;
        let mut column = base;
        if let Some(values) = carry.filter(|_| phase == 0) {
            for (j, value) in CARRIED.into_iter().zip(values) {
                sums.sum_mut(j)[0] = value;
            }
            column = i;
        }
        while column <= hi {
            let blocks = (hi + 1 - column).div_ceil(LANES).min(BLOCKS);
            let first = column;
            pass(
                blocks,
                Pass {
                    decimator,
                    columns,
                    first,
                },
                sums,
                column - base,
            );
            column += blocks * LANES;
        }
        combine(sums, i - base, phase, &mut branch.out[done..done + count]);
        done += count;
        // Output 0 of the next column needs this round's last column.
        carry = (branch.newest + done * m)
            .is_multiple_of(span)
            .then(|| CARRIED.map(|j| sums.sum(j)[hi - base]));
    }
    *branch.carry = carry;
}

/// Outputs `history_len` inputs allow when the next one's newest input is `input`.
fn available_outputs(history_len: usize, input: usize, m: usize) -> usize {
    history_len.saturating_sub(input).div_ceil(m)
}

/// Output `r` (0 to 3) of column `k` of the sums, which reads column `k − 1` for `r < 3`.
/// The AVX2 combine computes the same expressions in the same order.
#[inline(always)]
#[allow(clippy::inline_always)]
fn output(sums: &Sums, k: usize, r: usize) -> f32 {
    let [a0, a1, a2, b0, b1, b2, c0, c1, c2] = std::array::from_fn(|j| sums.sum(j));
    // The two-parallel outputs `A[2k]` and `A[2k + 1]` from the sums of `A` (`B`, `C` alike).
    let even = |s0: &[f32], s1: &[f32]| s0[k] + s1[k - 1];
    let odd = |s0: &[f32], s1: &[f32], s2: &[f32], k: usize| (s2[k] - s0[k]) - s1[k];
    match r {
        0 => even(a0, a1) + odd(b0, b1, b2, k - 1),
        1 => (even(c0, c1) - even(a0, a1)) - even(b0, b1),
        2 => odd(a0, a1, a2, k) + even(b0, b1),
        _ => (odd(c0, c1, c2, k) - odd(a0, a1, a2, k)) - odd(b0, b1, b2, k),
    }
}

/// Outputs from the sums, the first being output `phase` of the column at `at` in `sums`.
#[inline(always)]
#[allow(clippy::inline_always)]
fn combine(sums: &Sums, at: usize, phase: usize, out: &mut [i16]) {
    for (n, y) in out.iter_mut().enumerate() {
        let (k, r) = (at + (phase + n) / PARALLEL, (phase + n) % PARALLEL);
        *y = to_sample(output(sums, k, r));
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, __m256i, __m512, _mm256_add_ps, _mm256_cvtps_epi32, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_packs_epi32, _mm256_permute2x128_si256, _mm256_set1_ps,
        _mm256_setzero_ps, _mm256_storeu_ps, _mm256_storeu_si256, _mm256_sub_ps,
        _mm256_unpackhi_epi32, _mm256_unpackhi_epi64, _mm256_unpacklo_epi32, _mm256_unpacklo_epi64,
        _mm512_add_ps, _mm512_castps512_ps256, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };

    use super::{products, Pass, Sums, LANES, PARALLEL, SUMS};
    use crate::simd::load8 as load;

    /// `G` blocks of 8 lanes of the nine sums in three parts of three (`a`, `b`, `c`), each a
    /// pass of its own over the taps that forms only its part of `products` (two loads and
    /// one or three adds per block and tap). Only three sums per block are live, so three
    /// blocks fit AVX2's 16 registers; passes of one or two blocks run parts `a` and `b`
    /// together. The arithmetic is `pass_zmm`'s, lane for lane.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn pass_in_parts<const G: usize>(pass: Pass<'_>, sums: &mut Sums, at: usize) {
        if G <= 2 {
            part::<G, 0, 6>(pass, sums, at);
        } else {
            part::<G, 0, 3>(pass, sums, at);
            part::<G, 3, 3>(pass, sums, at);
        }
        if pass.decimator.quarter + G * LANES - 1 <= PAIR_SPAN {
            part_c::<G>(pass, sums, at);
        } else {
            part::<G, 6, 3>(pass, sums, at);
        }
    }

    /// Inputs of one branch and pass that `part_c` sums in pairs on the stack: a quarter of
    /// the taps plus the pass's lanes (at most 34 + 24 for the filters designed here).
    const PAIR_SPAN: usize = 64;

    /// Part 2 of `pass_in_parts` (`c0 c1 c2`), whose inputs are sums of two rows:
    /// `V0 + V1`, `V2 + V3` and the sum of both. Each branch adds those pairs once for the
    /// pass, so that each tap loads two blocks instead of four: the loads bound this kernel
    /// (16k → 8k 0.87 → 0.80–0.85 µs a frame in Rust with `VOICECORE_SIMD=avx2` on this machine).
    /// The same additions in the same order as `products`, so the same sums.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)] // block `b` of all three sums
    fn part_c<const G: usize>(pass: Pass<'_>, sums: &mut Sums, at: usize) {
        let data = pass.columns.data;
        let mut acc = [[_mm256_setzero_ps(); G]; 3];
        let mut pairs = [[0.0f32; PAIR_SPAN]; 2];
        pass.for_each_branch(G, |rows, taps, newest| {
            // Tap `k` of lane `l` in block `b` reads input `newest − k + 8b + l`.
            let quarter = taps.len();
            let span = quarter - 1 + G * LANES;
            let from = newest + 1 - quarter;
            for (pair, [a, b]) in pairs
                .iter_mut()
                .zip([[rows[0], rows[1]], [rows[2], rows[3]]])
            {
                let (a, b) = (&data[a + from..][..span], &data[b + from..][..span]);
                for ((sum, &x), &y) in pair[..span].iter_mut().zip(a).zip(b) {
                    *sum = x + y;
                }
            }
            for (k, t) in taps.iter().enumerate() {
                let c: [__m256; 3] = std::array::from_fn(|j| _mm256_set1_ps(t[6 + j]));
                for b in 0..G {
                    let i = quarter - 1 - k + b * LANES;
                    #[allow(unsafe_code)]
                    // SAFETY: `i + 8 <= span <= PAIR_SPAN` (`pass_in_parts` checked the
                    // span); the loads are unaligned.
                    let [s01, s23] = pairs
                        .each_ref()
                        .map(|pair| unsafe { _mm256_loadu_ps(pair.as_ptr().add(i)) });
                    let x = [s01, s23, _mm256_add_ps(s01, s23)];
                    for (j, sum) in acc.iter_mut().enumerate() {
                        sum[b] = _mm256_fmadd_ps(c[j], x[j], sum[b]);
                    }
                }
            }
        });
        store(&acc, sums, 6, at);
    }

    /// Sums `FIRST` to `FIRST + N − 1` of `G` blocks in one pass over the taps: the three of a
    /// part, or parts `a` and `b` together (`N` = 6) for passes of at most two blocks, where
    /// one part's three sums of two blocks are six multiply-add chains, fewer than two pipes
    /// of four-cycle multiply-adds need; twelve still fit the 16 registers without a spill
    /// (16k → 8k ~12 ns less a frame in Rust with `VOICECORE_SIMD=avx2`, ~1.5 %).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::needless_range_loop)] // block `b` of all `N` sums
    fn part<const G: usize, const FIRST: usize, const N: usize>(
        pass: Pass<'_>,
        sums: &mut Sums,
        at: usize,
    ) {
        let data = pass.columns.data;
        let mut acc = [[_mm256_setzero_ps(); G]; N];
        pass.for_each(G, |t, q, rows| {
            let c: [__m256; N] = std::array::from_fn(|j| _mm256_set1_ps(t[FIRST + j]));
            for b in 0..G {
                #[allow(unsafe_code)]
                // SAFETY: `for_each` asserted that all `G` blocks of every tap lie within
                // `data`; the loads are unaligned.
                let v = rows
                    .map(|row| unsafe { _mm256_loadu_ps(data.as_ptr().add(row + q + b * LANES)) });
                // The compiler drops the loads and adds of the other sums' products.
                let x = products(v, |a, b| _mm256_add_ps(a, b));
                for (j, sum) in acc.iter_mut().enumerate() {
                    sum[b] = _mm256_fmadd_ps(c[j], x[FIRST + j], sum[b]);
                }
            }
        });
        store(&acc, sums, FIRST, at);
    }

    /// Stores `N` sums of `G` blocks from sum `first` on at column `at`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn store<const G: usize, const N: usize>(
        acc: &[[__m256; G]; N],
        sums: &mut Sums,
        first: usize,
        at: usize,
    ) {
        for (j, blocks) in acc.iter().enumerate() {
            let sum = sums.sum_mut(first + j);
            for (b, lanes) in blocks.iter().enumerate() {
                let dst = &mut sum[at + b * LANES..at + (b + 1) * LANES];
                #[allow(unsafe_code)]
                // SAFETY: `dst` holds exactly 8 f32s (bounds-checked above).
                unsafe {
                    _mm256_storeu_ps(dst.as_mut_ptr(), *lanes);
                }
            }
        }
    }

    /// `2Z` blocks of lanes in `Z` 16-lane AVX-512 registers, and with `TAIL` one more in an
    /// 8-lane one: per tap and register four loads, five adds and nine multiply-adds with their
    /// coefficients broadcast from memory, half the instructions of 8-lane blocks for the same
    /// arithmetic lane for lane. A tap's nine coefficients are broadcast once for all the
    /// registers; eighteen 16-lane sums, the coefficients and the inputs fit the 32 registers.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
    pub(super) fn pass_zmm<const Z: usize, const TAIL: bool>(
        pass: Pass<'_>,
        sums: &mut Sums,
        at: usize,
    ) {
        let data = pass.columns.data;
        let mut acc = [[_mm512_setzero_ps(); SUMS]; Z];
        let mut tail = [_mm256_setzero_ps(); SUMS];
        pass.for_each(2 * Z + usize::from(TAIL), |t, q, rows| {
            let c: [__m512; SUMS] = std::array::from_fn(|j| _mm512_set1_ps(t[j]));
            for (z, acc) in acc.iter_mut().enumerate() {
                #[allow(unsafe_code)]
                // SAFETY: `for_each` asserted that these blocks of 8 lanes lie within `data`;
                // the loads are unaligned.
                let v = rows.map(|row| unsafe {
                    _mm512_loadu_ps(data.as_ptr().add(row + q + 2 * z * LANES))
                });
                let x = products(v, |a, b| _mm512_add_ps(a, b));
                for j in 0..SUMS {
                    acc[j] = _mm512_fmadd_ps(c[j], x[j], acc[j]);
                }
            }
            if TAIL {
                #[allow(unsafe_code)]
                // SAFETY: as above, for the last block.
                let v = rows.map(|row| unsafe {
                    _mm256_loadu_ps(data.as_ptr().add(row + q + 2 * Z * LANES))
                });
                let x = products(v, |a, b| _mm256_add_ps(a, b));
                for j in 0..SUMS {
                    tail[j] = _mm256_fmadd_ps(_mm512_castps512_ps256(c[j]), x[j], tail[j]);
                }
            }
        });
        for j in 0..SUMS {
            let dst = &mut sums.sum_mut(j)[at..at + (2 * Z + usize::from(TAIL)) * LANES];
            #[allow(unsafe_code)]
            // SAFETY: `dst` holds a float for every lane (bounds-checked above); unaligned
            // stores.
            unsafe {
                for (z, acc) in acc.iter().enumerate() {
                    _mm512_storeu_ps(dst.as_mut_ptr().add(2 * z * LANES), acc[j]);
                }
                if TAIL {
                    _mm256_storeu_ps(dst.as_mut_ptr().add(2 * Z * LANES), tail[j]);
                }
            }
        }
    }

    /// Rounds 8 lanes to nearest (ties to even, the default rounding mode) in 32-bit lanes;
    /// `_mm256_packs_epi32` then saturates them to i16, which together is `to_sample`. Exact
    /// because outputs stay far inside ±2³¹: they are i16 inputs times taps whose magnitudes
    /// sum to a few units.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn to_samples(y: __m256) -> __m256i {
        _mm256_cvtps_epi32(y)
    }

    /// `super::combine` eight columns (32 outputs) at a time: each of the four outputs of a
    /// column computed in lanes as `super::output` does, then interleaved as they are packed.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn combine(sums: &Sums, at: usize, phase: usize, out: &mut [i16]) {
        let head = ((PARALLEL - phase) % PARALLEL).min(out.len());
        super::combine(sums, at, phase, &mut out[..head]);
        let (mut n, mut k) = (head, at + usize::from(phase > 0));
        let [a0, a1, a2, b0, b1, b2, c0, c1, c2] = std::array::from_fn(|j| sums.sum(j));
        let even = |s0: &[f32], s1: &[f32], k| _mm256_add_ps(load(s0, k), load(s1, k - 1));
        let odd = |s0: &[f32], s1: &[f32], s2: &[f32], k| {
            _mm256_sub_ps(_mm256_sub_ps(load(s2, k), load(s0, k)), load(s1, k))
        };
        let mut block = [0i16; PARALLEL * LANES];
        while n < out.len() {
            let (a_even, b_even, c_even) = (even(a0, a1, k), even(b0, b1, k), even(c0, c1, k));
            let (a_odd, b_odd) = (odd(a0, a1, a2, k), odd(b0, b1, b2, k));
            let y = [
                _mm256_add_ps(a_even, odd(b0, b1, b2, k - 1)),
                _mm256_sub_ps(_mm256_sub_ps(c_even, a_even), b_even),
                _mm256_add_ps(a_odd, b_even),
                _mm256_sub_ps(_mm256_sub_ps(odd(c0, c1, c2, k), a_odd), b_odd),
            ]
            .map(|y| to_samples(y));
            // Per 128-bit half, columns 0 1 | 4 5 and 2 3 | 6 7 of outputs 0 1 2 3, then
            // packed to 16 bits and the halves put in column order.
            let (low01, low23) = (
                _mm256_unpacklo_epi32(y[0], y[1]),
                _mm256_unpacklo_epi32(y[2], y[3]),
            );
            let (high01, high23) = (
                _mm256_unpackhi_epi32(y[0], y[1]),
                _mm256_unpackhi_epi32(y[2], y[3]),
            );
            let columns_0145 = _mm256_packs_epi32(
                _mm256_unpacklo_epi64(low01, low23),
                _mm256_unpackhi_epi64(low01, low23),
            );
            let columns_2367 = _mm256_packs_epi32(
                _mm256_unpacklo_epi64(high01, high23),
                _mm256_unpackhi_epi64(high01, high23),
            );
            let samples = [
                _mm256_permute2x128_si256::<0x20>(columns_0145, columns_2367),
                _mm256_permute2x128_si256::<0x31>(columns_0145, columns_2367),
            ];
            // A last, partial block goes through `block` (its other columns are never used).
            let whole = out.len() - n >= PARALLEL * LANES;
            let dst = if whole {
                &mut out[n..n + PARALLEL * LANES]
            } else {
                &mut block[..]
            };
            for (half, samples) in dst.chunks_exact_mut(2 * LANES).zip(samples) {
                #[allow(unsafe_code)]
                // SAFETY: `half` holds exactly 16 i16s (bounds-checked above); unaligned store.
                unsafe {
                    _mm256_storeu_si256(half.as_mut_ptr().cast(), samples);
                }
            }
            if !whole {
                let rest = out.len() - n;
                out[n..].copy_from_slice(&block[..rest]);
            }
            (n, k) = (n + PARALLEL * LANES, k + LANES);
        }
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
            // 400 taps by 2: quarters too long for the AVX2 kernel's pair sums on the stack.
            for len in [1, 7, 36, 61, 400] {
                let reach = FastDecimator::new(&vec![0.0; len], m).reach();
                // The first output each of a column's four, and a column later.
                for first in (0..6).map(|r| reach - 1 + r * m) {
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
        check(|d, h, c, out| convolve_portable(d, h, 0, c, out, &mut Scratch::default()));
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
                convolve_avx2_with(d, h, 0, c, out, &mut Scratch::default(), wide)
            });
        }
        if flavours.len() == 2 {
            let (decimator, history, exact) = case(3, 61, 12 * 9 + 3);
            let mut narrow = vec![0i16; exact.len()];
            let mut wide = vec![0i16; exact.len()];
            let cursor = Cursor {
                input: 12 * 9 + 3,
                phase: 0,
            };
            #[allow(unsafe_code)]
            // SAFETY: the CPU reported AVX2, FMA and AVX-512VL.
            unsafe {
                convolve_avx2_with(
                    &decimator,
                    &history,
                    0,
                    cursor,
                    &mut narrow,
                    &mut Scratch::default(),
                    false,
                );
                convolve_avx2_with(
                    &decimator,
                    &history,
                    0,
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
