//! Splitting a history into `m` rows (row `r` holds inputs `r, r+M, r+2M, …`), the layout the
//! lane kernels read. Factors 3 and 4 have AVX2 shuffle paths; 12 is split in two steps, since
//! a single deinterleave by 12 moves one float at a time.

/// Writes input `r + m·q` of `history` to `rows[r·stride + column + q]`, using `temp` for
/// two-step factors.
pub(super) fn split(
    history: &[f32],
    m: usize,
    stride: usize,
    column: usize,
    rows: &mut [f32],
    temp: &mut Vec<f32>,
) {
    match m {
        1 => rows[column..column + history.len()].copy_from_slice(history),
        2 => deinterleave::<2>(history, rows_of(rows, stride, column)),
        3 => deinterleave::<3>(history, rows_of(rows, stride, column)),
        4 => deinterleave::<4>(history, rows_of(rows, stride, column)),
        6 => deinterleave::<6>(history, rows_of(rows, stride, column)),
        8 => deinterleave::<8>(history, rows_of(rows, stride, column)),
        12 => twice::<3, 4, 12>(history, rows_of(rows, stride, column), temp),
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
    let done = simd_frames::<M>(history, &mut rows);
    let frames = history[done * M..].chunks_exact(M);
    let tail = frames.remainder();
    let whole = history.len() / M;
    for (q, frame) in frames.enumerate() {
        for r in 0..M {
            rows[r][done + q] = frame[r];
        }
    }
    for (r, &x) in tail.iter().enumerate() {
        rows[r][whole] = x;
    }
}

/// Splits as many leading frames of `M` inputs as a SIMD path takes; returns how many.
fn simd_frames<const M: usize>(history: &[f32], rows: &mut [&mut [f32]; M]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU reported AVX2.
        return unsafe {
            match rows.as_mut_slice() {
                [r0, r1, r2] => avx2::by_3(history, [r0, r1, r2]),
                [r0, r1, r2, r3] => avx2::by_4(history, [r0, r1, r2, r3]),
                _ => 0,
            }
        };
    }
    let _ = (history, rows);
    0
}

/// Splits into `M·N` rows in two steps (by `M` into `temp`, then each of those rows by `N`).
fn twice<const M: usize, const N: usize, const R: usize>(
    history: &[f32],
    mut rows: [&mut [f32]; R],
    temp: &mut Vec<f32>,
) {
    let temp_stride = history.len().div_ceil(M).max(1);
    temp.resize(M * temp_stride, 0.0);
    deinterleave::<M>(history, rows_of::<M>(temp, temp_stride, 0));
    for (b, part) in temp.chunks_exact(temp_stride).enumerate() {
        let len = (history.len() + M - 1 - b) / M;
        // Input `b + M(a + Nq)` is row `b + Ma`'s column `q`.
        let targets = rows
            .get_disjoint_mut(std::array::from_fn(|a| b + M * a))
            .expect("distinct rows");
        deinterleave::<N>(&part[..len], targets.map(|row| &mut **row));
    }
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

    /// Frames of 3 in blocks of 8: each row blends its inputs from the three loads into
    /// place and one permute puts them in order. Returns the frames split.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn by_3(history: &[f32], rows: [&mut [f32]; 3]) -> usize {
        let blocks = history.len() / 24;
        let [r0, r1, r2] = rows;
        for j in 0..blocks {
            let (a, b, c) = (
                load(history, 24 * j),
                load(history, 24 * j + 8),
                load(history, 24 * j + 16),
            );
            // Row r takes a[i] where i ≡ r (mod 3), b[i] where i ≡ r + 1, c[i] where i ≡ r + 2.
            let row0 = _mm256_blend_ps::<0b0010_0100>(_mm256_blend_ps::<0b1001_0010>(a, b), c);
            let row1 = _mm256_blend_ps::<0b0100_1001>(_mm256_blend_ps::<0b0010_0100>(a, b), c);
            let row2 = _mm256_blend_ps::<0b1001_0010>(_mm256_blend_ps::<0b0100_1001>(a, b), c);
            store(
                r0,
                8 * j,
                _mm256_permutevar8x32_ps(row0, _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5)),
            );
            store(
                r1,
                8 * j,
                _mm256_permutevar8x32_ps(row1, _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6)),
            );
            store(
                r2,
                8 * j,
                _mm256_permutevar8x32_ps(row2, _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7)),
            );
        }
        8 * blocks
    }

    /// Frames of 4 in blocks of 8: two rounds of in-lane shuffles gather each row's inputs
    /// (columns 0 2 4 6 | 1 3 5 7), one permute puts them in order. Returns the frames split.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn by_4(history: &[f32], mut rows: [&mut [f32]; 4]) -> usize {
        let blocks = history.len() / 32;
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for j in 0..blocks {
            let [a, b, c, d] = [0, 8, 16, 24].map(|k| load(history, 32 * j + k));
            // Per 128-bit half: inputs 0 and 2 (then 1 and 3) of the two frames in each.
            let (ab_even, ab_odd) = (
                _mm256_shuffle_ps::<0x88>(a, b),
                _mm256_shuffle_ps::<0xDD>(a, b),
            );
            let (cd_even, cd_odd) = (
                _mm256_shuffle_ps::<0x88>(c, d),
                _mm256_shuffle_ps::<0xDD>(c, d),
            );
            let columns = [
                _mm256_shuffle_ps::<0x88>(ab_even, cd_even),
                _mm256_shuffle_ps::<0x88>(ab_odd, cd_odd),
                _mm256_shuffle_ps::<0xDD>(ab_even, cd_even),
                _mm256_shuffle_ps::<0xDD>(ab_odd, cd_odd),
            ];
            for (row, v) in rows.iter_mut().zip(columns) {
                store(row, 8 * j, _mm256_permutevar8x32_ps(v, order));
            }
        }
        8 * blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_factor_puts_each_input_in_its_row_and_column() {
        for m in 1..=13 {
            for len in [0, 1, 5, 23, 24, 25, 95, 96, 97, 200] {
                let history: Vec<f32> = (0..len).map(|i| i as f32).collect();
                let stride = len / m + 9;
                for column in [0, 3] {
                    let mut rows = vec![-1.0; m * stride];
                    split(&history, m, stride, column, &mut rows, &mut Vec::new());
                    for (i, &x) in history.iter().enumerate() {
                        let at = (i % m) * stride + column + i / m;
                        let case = format!("m {m}, len {len}, column {column}, input {i}");
                        assert_eq!(rows[at].to_bits(), x.to_bits(), "{case}");
                    }
                }
            }
        }
    }
}
