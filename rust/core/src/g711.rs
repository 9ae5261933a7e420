//! G.711 μ-law and A-law, bit-exact with `audioop` (width 2) from `CPython`.
//!
//! audioop quantises μ-law on the sample's top 14 bits (`x >> 2`) and A-law on its top 13
//! bits (`x >> 3`), so each encoder is one lookup in a table built at compile time from
//! audioop's own segment algorithm: exact by construction, and branch-free per sample.

use crate::{pcm, CoreError};

const ULAW_SEGMENT_ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const ALAW_SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;

const fn segment(value: i32, ends: &[i32; 8]) -> usize {
    let mut seg = 0;
    while seg < 8 && value > ends[seg] {
        seg += 1;
    }
    seg
}

/// audioop's `st_14linear2ulaw` on a 14-bit sample.
const fn ulaw_from_14bit(sample: i32) -> u8 {
    let (mut magnitude, mask) = if sample < 0 {
        (-sample, 0x7F)
    } else {
        (sample, 0xFF)
    };
    if magnitude > ULAW_CLIP {
        magnitude = ULAW_CLIP;
    }
    magnitude += ULAW_BIAS >> 2;
    let seg = segment(magnitude, &ULAW_SEGMENT_ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    ((((seg as i32) << 4) | ((magnitude >> (seg + 1)) & 0xF)) ^ mask) as u8
}

/// audioop's `st_linear2alaw` on a 13-bit sample.
const fn alaw_from_13bit(sample: i32) -> u8 {
    let (magnitude, mask) = if sample >= 0 {
        (sample, 0xD5)
    } else {
        (-sample - 1, 0x55)
    };
    let seg = segment(magnitude, &ALAW_SEGMENT_ENDS);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let shift = if seg < 2 { 1 } else { seg };
    ((((seg as i32) << 4) | ((magnitude >> shift) & 0xF)) ^ mask) as u8
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code as i32;
    let t = (((u & 0x0F) << 3) + ULAW_BIAS) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

const fn alaw_to_linear(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    t += if seg == 0 { 8 } else { 0x108 };
    if seg > 1 {
        t <<= seg - 1;
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// μ-law code for every 14-bit sample, indexed by `(x >> 2) + 8192`.
static ULAW_ENCODE: [u8; 1 << 14] = {
    let mut table = [0u8; 1 << 14];
    let mut i = 0;
    while i < table.len() {
        table[i] = ulaw_from_14bit(i as i32 - (1 << 13));
        i += 1;
    }
    table
};

/// A-law code for every 13-bit sample, indexed by `(x >> 3) + 4096`.
static ALAW_ENCODE: [u8; 1 << 13] = {
    let mut table = [0u8; 1 << 13];
    let mut i = 0;
    while i < table.len() {
        table[i] = alaw_from_13bit(i as i32 - (1 << 12));
        i += 1;
    }
    table
};

static ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_to_linear(i as u8);
        i += 1;
    }
    table
};

static ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_to_linear(i as u8);
        i += 1;
    }
    table
};

/// The μ-law code of one sample.
#[inline]
#[must_use]
pub fn ulaw_encode_sample(sample: i16) -> u8 {
    ULAW_ENCODE[((sample >> 2) as i32 + (1 << 13)) as usize]
}

/// The A-law code of one sample.
#[inline]
#[must_use]
pub fn alaw_encode_sample(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 3) as i32 + (1 << 12)) as usize]
}

/// The linear value of one μ-law code.
#[inline]
#[must_use]
pub fn ulaw_decode_sample(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// The linear value of one A-law code.
#[inline]
#[must_use]
pub fn alaw_decode_sample(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

/// Encodes little-endian PCM16 bytes into `out` (one code per sample; `out.len()` must be `pcm.len() / 2`).
pub fn encode_le_bytes_into(law: Law, pcm_bytes: &[u8], out: &mut [u8]) -> Result<(), CoreError> {
    let n = pcm::sample_count(pcm_bytes)?;
    assert_eq!(out.len(), n, "output must hold one code per sample");
    let encode = match law {
        Law::Ulaw => ulaw_encode_sample,
        Law::Alaw => alaw_encode_sample,
    };
    for (dst, s) in out.iter_mut().zip(pcm::samples(pcm_bytes)) {
        *dst = encode(s);
    }
    Ok(())
}

/// Decodes codes into little-endian PCM16 bytes (`out.len()` must be `2 * codes.len()`).
pub fn decode_le_bytes_into(law: Law, codes: &[u8], out: &mut [u8]) {
    assert_eq!(
        out.len(),
        codes.len() * 2,
        "output must hold two bytes per code"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU reported AVX2.
        unsafe {
            decode_avx2(law, codes, out);
        }
        return;
    }
    match law {
        Law::Ulaw => decode_blocks(ulaw_formula, &ULAW_DECODE, codes, out),
        Law::Alaw => decode_blocks(alaw_formula, &ALAW_DECODE, codes, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn decode_avx2(law: Law, codes: &[u8], out: &mut [u8]) {
    match law {
        Law::Ulaw => decode_blocks(ulaw_formula, &ULAW_DECODE, codes, out),
        Law::Alaw => decode_blocks(alaw_formula, &ALAW_DECODE, codes, out),
    }
}

/// Decodes 32 codes at a time by `formula` (vectorised: one vector shift per 8 samples rather
/// than a table load and a 2-byte store each), the rest by `table`. Inlined into each caller so
/// the formula is too.
#[inline(always)]
#[allow(clippy::inline_always)]
fn decode_blocks(formula: impl Fn(u8) -> i16, table: &[i16; 256], codes: &[u8], out: &mut [u8]) {
    const BLOCK: usize = 32;
    let mut code_blocks = codes.chunks_exact(BLOCK);
    let mut out_blocks = out.chunks_exact_mut(2 * BLOCK);
    for (src, dst) in (&mut code_blocks).zip(&mut out_blocks) {
        let mut samples = [0i16; BLOCK];
        for (sample, &code) in samples.iter_mut().zip(src) {
            *sample = formula(code);
        }
        for (bytes, sample) in dst.chunks_exact_mut(2).zip(samples) {
            bytes.copy_from_slice(&sample.to_le_bytes());
        }
    }
    for (dst, &c) in out_blocks
        .into_remainder()
        .chunks_exact_mut(2)
        .zip(code_blocks.remainder())
    {
        dst.copy_from_slice(&table[c as usize].to_le_bytes());
    }
}

/// `ulaw_to_linear` without branches, so it vectorises.
#[inline(always)]
#[allow(clippy::inline_always)]
fn ulaw_formula(code: u8) -> i16 {
    let u = i32::from(!code);
    let t = (((u & 0x0F) << 3) + ULAW_BIAS) << ((u >> 4) & 7);
    let negative = (u >> 7) & 1;
    (((t - ULAW_BIAS) ^ -negative) + negative) as i16
}

/// `alaw_to_linear` without branches, so it vectorises.
#[inline(always)]
#[allow(clippy::inline_always)]
fn alaw_formula(code: u8) -> i16 {
    let a = i32::from(code ^ 0x55);
    let seg = (a >> 4) & 7;
    let above_first = (seg + 7) >> 3;
    let t = (((a & 0x0F) << 4) + 8 + (above_first << 8)) << (seg - above_first);
    let negative = 1 - ((a >> 7) & 1);
    ((t ^ -negative) + negative) as i16
}

/// Decodes codes and appends the samples to `out`.
pub fn decode_extend(law: Law, codes: &[u8], out: &mut Vec<i16>) {
    let table = match law {
        Law::Ulaw => &ULAW_DECODE,
        Law::Alaw => &ALAW_DECODE,
    };
    out.extend(codes.iter().map(|&c| table[c as usize]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_free_formulas_match_the_tables_for_every_code() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_formula(code),
                ULAW_DECODE[code as usize],
                "μ-law {code:#04x}"
            );
            assert_eq!(
                alaw_formula(code),
                ALAW_DECODE[code as usize],
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn block_decoding_matches_per_sample_decoding_at_every_length() {
        let codes: Vec<u8> = (0..300u32).map(|i| (i * 97 % 256) as u8).collect();
        for law in [Law::Ulaw, Law::Alaw] {
            for n in [0, 1, 31, 32, 33, 64, 160, 300] {
                let mut out = vec![0u8; 2 * n];
                decode_le_bytes_into(law, &codes[..n], &mut out);
                let mut expected = Vec::new();
                decode_extend(law, &codes[..n], &mut expected);
                let got: Vec<i16> = out
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                assert_eq!(got, expected, "{law:?} {n}");
            }
        }
    }

    #[test]
    fn ulaw_known_codes() {
        // Values checked against CPython 3.11 audioop.lin2ulaw / ulaw2lin.
        assert_eq!(ulaw_encode_sample(0), 0xFF);
        assert_eq!(ulaw_encode_sample(-1), 0x7E);
        assert_eq!(ulaw_encode_sample(i16::MAX), 0x80);
        assert_eq!(ulaw_encode_sample(i16::MIN), 0x00);
        assert_eq!(ulaw_decode_sample(0x00), -32124);
        assert_eq!(ulaw_decode_sample(0x80), 32124);
        assert_eq!(ulaw_decode_sample(0xFF), 0);
        assert_eq!(ulaw_decode_sample(0x7F), 0);
    }

    #[test]
    fn alaw_known_codes() {
        assert_eq!(alaw_encode_sample(0), 0xD5);
        assert_eq!(alaw_encode_sample(-1), 0x55);
        assert_eq!(alaw_encode_sample(i16::MAX), 0xAA);
        assert_eq!(alaw_encode_sample(i16::MIN), 0x2A);
        assert_eq!(alaw_decode_sample(0xD5), 8);
        assert_eq!(alaw_decode_sample(0x55), -8);
        assert_eq!(alaw_decode_sample(0xAA), 32256);
        assert_eq!(alaw_decode_sample(0x2A), -32256);
    }

    #[test]
    fn decode_then_encode_is_identity_except_negative_zero() {
        for code in 0..=255u8 {
            let back = ulaw_encode_sample(ulaw_decode_sample(code));
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, expected, "ulaw code {code:#04x}");
            assert_eq!(
                alaw_encode_sample(alaw_decode_sample(code)),
                code,
                "alaw code {code:#04x}"
            );
        }
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut prev_u = ulaw_decode_sample(ulaw_encode_sample(i16::MIN));
        let mut prev_a = alaw_decode_sample(alaw_encode_sample(i16::MIN));
        for x in i16::MIN..=i16::MAX {
            let u = ulaw_decode_sample(ulaw_encode_sample(x));
            let a = alaw_decode_sample(alaw_encode_sample(x));
            assert!(u >= prev_u && a >= prev_a, "not monotonic at {x}");
            prev_u = u;
            prev_a = a;
        }
    }

    #[test]
    fn odd_pcm_is_an_error() {
        let mut out = [0u8; 1];
        assert_eq!(
            encode_le_bytes_into(Law::Ulaw, &[1, 2, 3], &mut out),
            Err(CoreError::OddPcmLength(3))
        );
    }
}
