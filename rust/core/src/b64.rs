//! Standard base64 (canonical `=` padding): strict decoding and encoding, with AVX2 paths for
//! the bulk.
//!
//! A 20 ms Twilio payload is 216 characters; the `base64` crate codes it a few bytes at a
//! time. With AVX2, 32 characters at a time are validated and translated with byte shuffles
//! and packed to 24 bytes, and 24 bytes at a time are spread to 32 six-bit values and
//! translated (Muła and Lemire, "Faster Base64 Encoding and Decoding Using AVX2
//! Instructions", 2018); the last block and the padding go through the crate. Any invalid
//! input is decoded again by the crate alone, so errors are exactly the crate's.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::CoreError;

/// Input characters per SIMD block, and the bytes they decode to.
const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 24;
/// The SIMD store writes a whole 32-byte register for each 24-byte block.
const STORE_SLACK: usize = BLOCK - BLOCK_BYTES;

/// Decodes `input`, appending the bytes to `out`; on error `out` is left as it was.
pub fn decode_extend(input: &[u8], out: &mut Vec<u8>) -> Result<(), CoreError> {
    let start = out.len();
    // Whole blocks, always leaving the last 4 characters (where padding may be) to the crate.
    let blocks = if crate::simd::has_avx2_fma() {
        input.len().saturating_sub(4) / BLOCK
    } else {
        0
    };
    let (bulk, tail) = input.split_at(blocks * BLOCK);
    if decode_bulk(bulk, out) && STANDARD.decode_vec(tail, out).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    STANDARD.decode_vec(input, out).map_err(|e| {
        out.truncate(start);
        CoreError::InvalidBase64(e.to_string())
    })
}

/// Bytes per SIMD encoding block, the characters they encode to, and the bytes its two
/// 16-byte loads read (the second starts 12 bytes in).
#[cfg(target_arch = "x86_64")]
const ENCODE_BLOCK: usize = 24;
#[cfg(target_arch = "x86_64")]
const ENCODE_CHARS: usize = 32;
#[cfg(target_arch = "x86_64")]
const ENCODE_READ: usize = 28;

/// Appends the base64 of `input` to `out`. With AVX2 the last partial block goes through the
/// SIMD code too, from a zero-padded copy: zero bits are what padding encodes.
pub fn encode_extend(input: &[u8], out: &mut String) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2_fma() {
        encode_extend_avx2(input, out);
        return;
    }
    STANDARD.encode_string(input, out);
}

/// `encode_extend` on a CPU with AVX2.
#[cfg(target_arch = "x86_64")]
fn encode_extend_avx2(input: &[u8], out: &mut String) {
    let start = out.len();
    // SAFETY: only base64 characters and `=` (ASCII) are written into the new bytes, so `out`
    // stays UTF-8.
    #[allow(unsafe_code)]
    let bytes = unsafe { out.as_mut_vec() };
    bytes.resize(start + input.len().div_ceil(3) * 4, 0);
    let dst = &mut bytes[start..];
    let blocks = input.len().saturating_sub(ENCODE_READ - ENCODE_BLOCK) / ENCODE_BLOCK;
    // At most 27 bytes are left: one or two blocks of the padded copy.
    let tail = &input[blocks * ENCODE_BLOCK..];
    let mut padded = [0u8; 2 * ENCODE_BLOCK + ENCODE_READ - ENCODE_BLOCK];
    padded[..tail.len()].copy_from_slice(tail);
    let tail_blocks = tail.len().div_ceil(ENCODE_BLOCK);
    let mut chars = [0u8; 2 * ENCODE_CHARS];
    #[allow(unsafe_code)]
    // SAFETY: the CPU reported AVX2; each block's two loads stay inside `input` (which extends
    // at least 4 bytes past its last block) or inside `padded` (4 bytes past its second).
    unsafe {
        if blocks > 0 {
            encode_blocks_avx2(input, blocks, &mut dst[..blocks * ENCODE_CHARS]);
        }
        encode_blocks_avx2(
            &padded,
            tail_blocks,
            &mut chars[..tail_blocks * ENCODE_CHARS],
        );
    }
    let rest = &mut dst[blocks * ENCODE_CHARS..];
    let n = rest.len();
    rest.copy_from_slice(&chars[..n]);
    let padding = (3 - tail.len() % 3) % 3;
    rest[n - padding..].fill(b'=');
}

/// Encodes `blocks` whole 24-byte blocks of `input` (which holds at least 4 more bytes) into
/// `out`, 32 characters each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn encode_blocks_avx2(input: &[u8], blocks: usize, out: &mut [u8]) {
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;
    assert!(input.len() >= blocks * ENCODE_BLOCK + ENCODE_READ - ENCODE_BLOCK);
    assert_eq!(out.len(), blocks * ENCODE_CHARS);
    // Bytes a b c of each 3-byte group → the 32-bit lane b a c b, whose halves (a b and b c as
    // big-endian 16-bit numbers) hold the four six-bit values at bits 10, 4 and 6, 0.
    let spread = _mm256_setr_epi8(
        1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10, 1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10,
        9, 11, 10,
    );
    let first_third = _mm256_set1_epi32(0x0FC0_FC00);
    let first_third_shift = _mm256_set1_epi32(0x0400_0040);
    let second_fourth = _mm256_set1_epi32(0x003F_03F0);
    let second_fourth_shift = _mm256_set1_epi32(0x0100_0010);
    // Six-bit value → ASCII: add an offset chosen by range (A-Z, a-z, 0-9, '+', '/').
    let offsets = _mm256_setr_epi8(
        71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 65, 0, 0, 71, -4, -4, -4, -4, -4, -4,
        -4, -4, -4, -4, -19, -16, 65, 0, 0,
    );
    let fifty_one = _mm256_set1_epi8(51);
    let twenty_six = _mm256_set1_epi8(26);
    let thirteen = _mm256_set1_epi8(13);
    for (i, dst) in out.chunks_exact_mut(ENCODE_CHARS).enumerate() {
        let src = &input[i * ENCODE_BLOCK..][..ENCODE_READ];
        // SAFETY: `src` is 28 readable bytes: the loads read bytes 0..16 and 12..28.
        #[allow(unsafe_code)]
        let v = unsafe { _mm256_loadu2_m128i(src[12..].as_ptr().cast(), src.as_ptr().cast()) };
        let v = _mm256_shuffle_epi8(v, spread);
        let values = _mm256_or_si256(
            _mm256_mulhi_epu16(_mm256_and_si256(v, first_third), first_third_shift),
            _mm256_mullo_epi16(_mm256_and_si256(v, second_fourth), second_fourth_shift),
        );
        let range = _mm256_or_si256(
            _mm256_subs_epu8(values, fifty_one),
            _mm256_and_si256(_mm256_cmpgt_epi8(twenty_six, values), thirteen),
        );
        let chars = _mm256_add_epi8(values, _mm256_shuffle_epi8(offsets, range));
        // SAFETY: `dst` is exactly 32 writable bytes; the store is unaligned.
        #[allow(unsafe_code)]
        unsafe {
            _mm256_storeu_si256(dst.as_mut_ptr().cast(), chars);
        }
    }
}

/// Appends the bytes of whole blocks (none without AVX2); false if a character is invalid.
fn decode_bulk(bulk: &[u8], out: &mut Vec<u8>) -> bool {
    if bulk.is_empty() {
        return true;
    }
    let start = out.len();
    let bytes = bulk.len() / BLOCK * BLOCK_BYTES;
    out.resize(start + bytes + STORE_SLACK, 0);
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `decode_extend` passes blocks only when the CPU reported AVX2.
    let valid = unsafe { decode_blocks_avx2(bulk, &mut out[start..]) };
    #[cfg(not(target_arch = "x86_64"))]
    let valid = false; // not reached: without AVX2 there are no blocks
    out.truncate(start + bytes);
    valid
}

/// Decodes whole 32-character blocks of `input` into `out` (24 bytes each, plus 8 bytes of
/// slack after the last); returns false if any character is not in the base64 alphabet.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn decode_blocks_avx2(input: &[u8], out: &mut [u8]) -> bool {
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;
    debug_assert_eq!(input.len() % BLOCK, 0);
    debug_assert!(out.len() >= input.len() / BLOCK * BLOCK_BYTES + STORE_SLACK);
    // Per character: its low-nibble class and high-nibble class share a bit only if it is
    // invalid; the roll, indexed by the high nibble ('/' apart), maps ASCII to 0..63.
    let lut_lo = _mm256_setr_epi8(
        0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B,
        0x1A, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B,
        0x1B, 0x1A,
    );
    let lut_hi = _mm256_setr_epi8(
        0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        0x10, 0x10,
    );
    let lut_roll = _mm256_setr_epi8(
        0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 19, 4, -65, -65, -71, -71,
        0, 0, 0, 0, 0, 0, 0, 0,
    );
    let slash = _mm256_set1_epi8(0x2F);
    // Six-bit values a b c d → one 24-bit group per 32-bit lane, then 12 bytes per half.
    let merge_pairs = _mm256_set1_epi32(0x0140_0140);
    let merge_quads = _mm256_set1_epi32(0x0001_1000);
    let order = _mm256_setr_epi8(
        2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13,
        12, -1, -1, -1, -1,
    );
    let halves = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    let mut invalid = _mm256_setzero_si256();
    for (i, chunk) in input.chunks_exact(BLOCK).enumerate() {
        let chunk: &[u8; BLOCK] = chunk.try_into().expect("whole block");
        // SAFETY: `chunk` is exactly 32 readable bytes; the load is unaligned.
        #[allow(unsafe_code)]
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
        let hi = _mm256_and_si256(_mm256_srli_epi32::<4>(v), slash);
        let lo = _mm256_and_si256(v, slash);
        let classes = _mm256_and_si256(
            _mm256_shuffle_epi8(lut_lo, lo),
            _mm256_shuffle_epi8(lut_hi, hi),
        );
        invalid = _mm256_or_si256(invalid, classes);
        let roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(_mm256_cmpeq_epi8(v, slash), hi));
        let values = _mm256_add_epi8(v, roll);
        let packed = _mm256_madd_epi16(_mm256_maddubs_epi16(values, merge_pairs), merge_quads);
        let bytes = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(packed, order), halves);
        // Each block's 24 bytes are followed by at least 8 more in `out` (the next block's,
        // written after, or the slack), so a whole register is stored.
        let dst: &mut [u8; BLOCK] = (&mut out[i * BLOCK_BYTES..][..BLOCK])
            .try_into()
            .expect("32 bytes");
        // SAFETY: `dst` is exactly 32 writable bytes; the store is unaligned.
        #[allow(unsafe_code)]
        unsafe {
            _mm256_storeu_si256(dst.as_mut_ptr().cast(), bytes);
        }
    }
    _mm256_testz_si256(invalid, invalid) == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crate_decode(input: &[u8]) -> Result<Vec<u8>, String> {
        STANDARD.decode(input).map_err(|e| e.to_string())
    }

    fn ours(input: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = vec![7u8; 3]; // appended after what is there
        match decode_extend(input, &mut out) {
            Ok(()) => {
                assert_eq!(&out[..3], &[7, 7, 7]);
                Ok(out[3..].to_vec())
            }
            Err(CoreError::InvalidBase64(e)) => {
                assert_eq!(out, [7, 7, 7], "left untouched on error");
                Err(e)
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn encoding_matches_the_crate_at_every_length() {
        for len in 0..400usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 151 + len * 7) as u8).collect();
            let mut out = String::from("head:");
            encode_extend(&bytes, &mut out);
            assert_eq!(out, format!("head:{}", STANDARD.encode(&bytes)), "{len}");
        }
        let all: Vec<u8> = (0..=255).cycle().take(3 * 256 + 5).collect();
        let mut out = String::new();
        encode_extend(&all, &mut out);
        assert_eq!(out, STANDARD.encode(&all));
    }

    #[test]
    fn every_length_and_every_byte_value_round_trips() {
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 97 + len) as u8).collect();
            let text = STANDARD.encode(&bytes);
            assert_eq!(ours(text.as_bytes()), Ok(bytes), "{len}");
        }
        let all: Vec<u8> = (0..=255).cycle().take(3 * 256).collect();
        assert_eq!(ours(STANDARD.encode(&all).as_bytes()), Ok(all));
    }

    #[test]
    fn any_invalid_byte_anywhere_gives_the_crates_error() {
        let text = STANDARD.encode([0x5Au8; 160]); // 216 characters, 6 SIMD blocks
        for position in 0..text.len() {
            for bad in [
                b'=', b'!', b'-', b'_', b' ', b'\n', 0x80, 0xFF, 0, b'.', b':', b'@', b'[', b'`',
                b'{',
            ] {
                let mut input = text.clone().into_bytes();
                input[position] = bad;
                let expected = crate_decode(&input);
                assert_eq!(ours(&input), expected, "{position} {bad}");
            }
        }
    }

    #[test]
    fn padding_and_length_errors_are_the_crates() {
        for text in [
            "AAE", "AA==AAAA", "AAE=", "AA=", "A", "AAAAA", "AB==", "AAB=",
        ] {
            let long = format!("{}{text}", "QUJD".repeat(20));
            for input in [text.to_owned(), long] {
                assert_eq!(
                    ours(input.as_bytes()),
                    crate_decode(input.as_bytes()),
                    "{input}"
                );
            }
        }
    }
}
