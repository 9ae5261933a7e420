//! Splitting a history into `m` rows (row `r` holds inputs `r, r+M, r+2M, …`), the layout the
//! lane kernels read. With AVX2, factors 3 and 4 are shuffled eight columns at a time, and
//! 8, 12 and 24 (the fast decimators' `4M` rows) split by 2, 3 or 6 and then by 4 within
//! registers.

/// Writes input `r + m·q` of `history` to `rows[r·stride + column + q]`. Rows with room for
/// eight more columns may get zeros past their last input.
pub(super) fn split(history: &[f32], m: usize, stride: usize, column: usize, rows: &mut [f32]) {
    match m {
        1 => rows[column..column + history.len()].copy_from_slice(history),
        2 => deinterleave::<2>(history, rows_of(rows, stride, column)),
        3 => deinterleave::<3>(history, rows_of(rows, stride, column)),
        4 => deinterleave::<4>(history, rows_of(rows, stride, column)),
        6 => deinterleave::<6>(history, rows_of(rows, stride, column)),
        8 => deinterleave::<8>(history, rows_of(rows, stride, column)),
        12 => deinterleave::<12>(history, rows_of(rows, stride, column)),
        24 => deinterleave::<24>(history, rows_of(rows, stride, column)),
        _ => {
            for (r, row) in rows.chunks_mut(stride).take(m).enumerate() {
                let inputs = history.iter().skip(r).step_by(m);
                for (dst, &x) in row[column..].iter_mut().zip(inputs) {
                    *dst = x;
                }
            }
        }
    }
}

/// Rows `0..M` of `stride` floats each from the front of `rows`, from column `column` on.
fn rows_of<const M: usize>(rows: &mut [f32], stride: usize, column: usize) -> [&mut [f32]; M] {
    let mut rest = rows.chunks_mut(stride);
    std::array::from_fn(|_| &mut rest.next().expect("room for every row")[column..])
}

/// Input `r + Mq` to `rows[r][q]` for a factor `M` known at compile time.
fn deinterleave<const M: usize>(history: &[f32], mut rows: [&mut [f32]; M]) {
    let done = simd_inputs(history, &mut rows);
    for (i, &x) in history.iter().enumerate().skip(done) {
        rows[i % M][i / M] = x;
    }
}

/// Splits as many leading inputs as a SIMD path takes (whole frames); returns how many.
fn simd_inputs(history: &[f32], rows: &mut [&mut [f32]]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU reported AVX2.
        return unsafe {
            match rows.len() {
                3 => avx2::by_3(history, rows),
                4 => avx2::by_4(history, rows),
                8 => avx2::by_four_times::<2>(history, rows),
                12 => avx2::by_four_times::<3>(history, rows),
                24 => avx2::by_four_times::<6>(history, rows),
                _ => 0,
            }
        };
    }
    let _ = (history, rows);
    0
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm256_blend_ps, _mm256_permutevar8x32_ps, _mm256_setr_epi32, _mm256_shuffle_ps,
        _mm256_storeu_ps,
    };

    use crate::simd::load8 as load;

    /// Stores 8 floats at `at` of `row` (bounds-checked).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store(row: &mut [f32], at: usize, v: __m256) {
        let block = &mut row[at..at + 8];
        #[allow(unsafe_code)]
        // SAFETY: `block` holds exactly 8 f32s; the store is unaligned.
        unsafe {
            _mm256_storeu_ps(block.as_mut_ptr(), v);
        }
    }

    /// Eight frames of 3 (three registers) split into their three rows: each row blends its
    /// inputs from the three into place and one permute puts them in order.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn split_3([a, b, c]: [__m256; 3]) -> [__m256; 3] {
        // Row r takes a[i] where i ≡ r (mod 3), b[i] where i ≡ r + 1, c[i] where i ≡ r + 2.
        let row0 = _mm256_blend_ps::<0b0010_0100>(_mm256_blend_ps::<0b1001_0010>(a, b), c);
        let row1 = _mm256_blend_ps::<0b0100_1001>(_mm256_blend_ps::<0b0010_0100>(a, b), c);
        let row2 = _mm256_blend_ps::<0b1001_0010>(_mm256_blend_ps::<0b0100_1001>(a, b), c);
        [
            _mm256_permutevar8x32_ps(row0, _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5)),
            _mm256_permutevar8x32_ps(row1, _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6)),
            _mm256_permutevar8x32_ps(row2, _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7)),
        ]
    }

    /// Eight frames of 2 (two registers) split into their two rows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn split_2([a, b]: [__m256; 2]) -> [__m256; 2] {
        // Per 128-bit half the even (odd) inputs of both: columns 0 1 4 5 | 2 3 6 7.
        let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
        [
            _mm256_permutevar8x32_ps(_mm256_shuffle_ps::<0x88>(a, b), order),
            _mm256_permutevar8x32_ps(_mm256_shuffle_ps::<0xDD>(a, b), order),
        ]
    }

    /// Eight frames of 4 (four registers) split into their four rows: two rounds of in-lane
    /// shuffles gather each row's inputs (columns 0 2 4 6 | 1 3 5 7), one permute orders them.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn split_4([a, b, c, d]: [__m256; 4]) -> [__m256; 4] {
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        // Per 128-bit half: inputs 0 and 2 (then 1 and 3) of the two frames in each.
        let (ab_even, ab_odd) = (
            _mm256_shuffle_ps::<0x88>(a, b),
            _mm256_shuffle_ps::<0xDD>(a, b),
        );
        let (cd_even, cd_odd) = (
            _mm256_shuffle_ps::<0x88>(c, d),
            _mm256_shuffle_ps::<0xDD>(c, d),
        );
        [
            _mm256_shuffle_ps::<0x88>(ab_even, cd_even),
            _mm256_shuffle_ps::<0x88>(ab_odd, cd_odd),
            _mm256_shuffle_ps::<0xDD>(ab_even, cd_even),
            _mm256_shuffle_ps::<0xDD>(ab_odd, cd_odd),
        ]
        .map(|row| _mm256_permutevar8x32_ps(row, order))
    }

    /// Frames of 3 in blocks of 8; returns the inputs split.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn by_3(history: &[f32], rows: &mut [&mut [f32]]) -> usize {
        let blocks = history.len() / 24;
        for j in 0..blocks {
            let split = split_3([0, 8, 16].map(|k| load(history, 24 * j + k)));
            for (row, v) in rows.iter_mut().zip(split) {
                store(row, 8 * j, v);
            }
        }
        24 * blocks
    }

    /// Frames of 4 in blocks of 8; returns the inputs split.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn by_4(history: &[f32], rows: &mut [&mut [f32]]) -> usize {
        let blocks = history.len() / 32;
        for j in 0..blocks {
            let split = split_4([0, 8, 16, 24].map(|k| load(history, 32 * j + k)));
            for (row, v) in rows.iter_mut().zip(split) {
                store(row, 8 * j, v);
            }
        }
        32 * blocks
    }

    /// Eight frames of 6 (six registers) split into their six rows: by 3 within each half,
    /// then each row of the two halves by 2 (row `r + 3p` is the parity-`p` inputs of row `r`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn split_6([a, b, c, d, e, f]: [__m256; 6]) -> [__m256; 6] {
        let (low, high) = (split_3([a, b, c]), split_3([d, e, f]));
        let [[r0, r3], [r1, r4], [r2, r5]] = [0, 1, 2].map(|r| split_2([low[r], high[r]]));
        [r0, r1, r2, r3, r4, r5]
    }

    /// Frames of `4K` (`K` = 2, 3 or 6) in blocks of 8, each split by `K` and then by 4 in
    /// registers; a last partial block is split from zeros past the inputs if every row has
    /// room for it. Returns the inputs split.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn by_four_times<const K: usize>(history: &[f32], rows: &mut [&mut [f32]]) -> usize {
        let block = 32 * K;
        let blocks = history.len() / block;
        for j in 0..blocks {
            block_by_four_times::<K>(&history[j * block..(j + 1) * block], rows, 8 * j);
        }
        let rest = &history[blocks * block..];
        if rest.is_empty() || rows.iter().any(|row| row.len() < 8 * (blocks + 1)) {
            return blocks * block;
        }
        let mut padded = [0.0; 192];
        padded[..rest.len()].copy_from_slice(rest);
        block_by_four_times::<K>(&padded[..block], rows, 8 * blocks);
        history.len()
    }

    /// Eight frames of `4K` inputs to columns `at..at + 8` of the `4K` rows.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn block_by_four_times<const K: usize>(inputs: &[f32], rows: &mut [&mut [f32]], at: usize) {
        // Quarter `t` (two frames) split by K: row b holds inputs `b + K·(4·frame + a)`, a = 0..4,
        // of both frames, which is how `split_4` takes a register.
        let quarters: [[__m256; K]; 4] = std::array::from_fn(|t| {
            let v: [__m256; K] = std::array::from_fn(|i| load(inputs, 8 * (K * t + i)));
            match K {
                2 => {
                    let rows = split_2([v[0], v[1]]);
                    std::array::from_fn(|i| rows[i])
                }
                3 => {
                    let rows = split_3([v[0], v[1], v[2]]);
                    std::array::from_fn(|i| rows[i])
                }
                _ => {
                    let rows = split_6([v[0], v[1], v[2], v[3], v[4], v[5]]);
                    std::array::from_fn(|i| rows[i])
                }
            }
        });
        for b in 0..K {
            let split = split_4(quarters.map(|quarter| quarter[b]));
            for (a, v) in split.into_iter().enumerate() {
                store(rows[K * a + b], at, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::float_cmp)] // exact sentinels: -1 never written, 0 the only padding
    fn every_factor_puts_each_input_in_its_row_and_column() {
        for m in (1..=13).chain([24]) {
            for len in [
                0, 1, 5, 23, 24, 25, 95, 96, 97, 191, 192, 193, 200, 480, 517, 960,
            ] {
                let history: Vec<f32> = (0..len).map(|i| i as f32).collect();
                let stride = len / m + 9;
                for column in [0, 3] {
                    let mut rows = vec![-1.0f32; m * stride];
                    split(&history, m, stride, column, &mut rows);
                    for (i, &x) in history.iter().enumerate() {
                        let at = (i % m) * stride + column + i / m;
                        let case = format!("m {m}, len {len}, column {column}, input {i}");
                        assert_eq!(rows[at].to_bits(), x.to_bits(), "{case}");
                    }
                    // Before the first column nothing is written, after the last only zeros.
                    for (r, row) in rows.chunks_exact(stride).enumerate() {
                        let filled = column + (len + m - 1 - r) / m;
                        assert!(row[..column].iter().all(|&x| x == -1.0), "m {m}, row {r}");
                        assert!(row[filled..].iter().all(|&x| x == -1.0 || x == 0.0));
                    }
                }
            }
        }
    }
}
