//! Conversions between little-endian PCM16 bytes and `i16` samples.

use crate::CoreError;

/// Number of samples in `bytes`, or an error if the length is odd.
pub fn sample_count(bytes: &[u8]) -> Result<usize, CoreError> {
    if bytes.len() % 2 == 0 {
        Ok(bytes.len() / 2)
    } else {
        Err(CoreError::OddPcmLength(bytes.len()))
    }
}

/// Iterates the samples of little-endian PCM16 bytes (the length must be even).
#[must_use]
pub fn samples(bytes: &[u8]) -> impl ExactSizeIterator<Item = i16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
}

/// Writes `samples` as little-endian bytes into `out`, which must hold exactly `2 * samples.len()` bytes.
pub fn write_le_bytes(samples: &[i16], out: &mut [u8]) {
    debug_assert_eq!(out.len(), samples.len() * 2);
    for (dst, s) in out.chunks_exact_mut(2).zip(samples) {
        dst.copy_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_length_is_rejected_with_its_length() {
        assert_eq!(sample_count(&[0, 1, 2]), Err(CoreError::OddPcmLength(3)));
        assert!(CoreError::OddPcmLength(3).to_string().contains("3 bytes"));
    }

    #[test]
    fn bytes_round_trip() {
        let samples_in = [i16::MIN, -1, 0, 1, i16::MAX];
        let mut bytes = vec![0u8; 10];
        write_le_bytes(&samples_in, &mut bytes);
        let back: Vec<i16> = samples(&bytes).collect();
        assert_eq!(back, samples_in);
    }
}
