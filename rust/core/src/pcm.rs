//! Conversions between little-endian PCM16 bytes and `i16` samples.

use crate::CoreError;

/// Number of samples in `bytes`, or an error if the length is odd.
pub fn sample_count(bytes: &[u8]) -> Result<usize, CoreError> {
    if bytes.len().is_multiple_of(2) {
        Ok(bytes.len() / 2)
    } else {
        Err(CoreError::OddPcmLength(bytes.len()))
    }
}

/// PCM16 samples as they arrive: already `i16`, or little-endian bytes (from Python), read in
/// place either way.
#[derive(Debug, Clone, Copy)]
pub enum Pcm<'a> {
    Samples(&'a [i16]),
    LeBytes(&'a [u8]),
}

impl<'a> Pcm<'a> {
    /// Little-endian PCM16 bytes, or an error if their length is odd.
    pub fn le_bytes(bytes: &'a [u8]) -> Result<Self, CoreError> {
        sample_count(bytes)?;
        Ok(Self::LeBytes(bytes))
    }

    /// Number of samples.
    #[must_use]
    pub fn len(self) -> usize {
        match self {
            Self::Samples(samples) => samples.len(),
            Self::LeBytes(bytes) => bytes.len() / 2,
        }
    }

    /// Whether there are no samples.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The first `mid` samples and the rest.
    #[must_use]
    pub fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            Self::Samples(samples) => {
                let (a, b) = samples.split_at(mid);
                (Self::Samples(a), Self::Samples(b))
            }
            Self::LeBytes(bytes) => {
                let (a, b) = bytes.split_at(2 * mid);
                (Self::LeBytes(a), Self::LeBytes(b))
            }
        }
    }

    /// Sample `i`.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    #[must_use]
    pub fn get(self, i: usize) -> i16 {
        match self {
            Self::Samples(samples) => samples[i],
            Self::LeBytes(bytes) => i16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]),
        }
    }

    /// Samples `start..start + N` as an array (a fixed size, so loops over it vectorise).
    #[inline(always)]
    #[allow(clippy::inline_always)]
    #[must_use]
    pub fn block<const N: usize>(self, start: usize) -> [i16; N] {
        match self {
            Self::Samples(samples) => samples[start..start + N].try_into().expect("N samples"),
            Self::LeBytes(bytes) => {
                let bytes = &bytes[2 * start..2 * (start + N)];
                let mut block = [0i16; N];
                for (sample, pair) in block.iter_mut().zip(bytes.chunks_exact(2)) {
                    *sample = i16::from_le_bytes([pair[0], pair[1]]);
                }
                block
            }
        }
    }

    /// Writes the samples to `out`, which must hold exactly `len()` of them.
    pub fn copy_to(self, out: &mut [i16]) {
        match self {
            Self::Samples(samples) => out.copy_from_slice(samples),
            Self::LeBytes(bytes) => {
                assert_eq!(out.len(), bytes.len() / 2, "room for every sample");
                for (dst, sample) in out.iter_mut().zip(samples(bytes)) {
                    *dst = sample;
                }
            }
        }
    }

    /// Appends the samples to `out` as `f32`, in one vectorised pass (16 samples a step
    /// with AVX2, 8 without).
    pub fn extend_f32(self, out: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2_fma() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU reported AVX2 and FMA.
            unsafe {
                self.extend_f32_avx2(out);
            }
            return;
        }
        self.extend_f32_portable(out);
    }

    /// Appends every `step`-th sample from sample `first` on to `out` as `f32` (`step` 1 or
    /// more; nothing if `first` is past the end): one channel of interleaved samples.
    pub fn extend_f32_every(self, first: usize, step: usize, out: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::has_avx2_fma() {
            #[allow(unsafe_code)]
            // SAFETY: the CPU reported AVX2 and FMA.
            unsafe {
                self.extend_f32_every_avx2(first, step, out);
            }
            return;
        }
        self.extend_f32_every_portable(first, step, out);
    }

    /// `extend_f32_every_portable` compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn extend_f32_every_avx2(self, first: usize, step: usize, out: &mut Vec<f32>) {
        self.extend_f32_every_portable(first, step, out);
    }

    /// `extend_f32_every_in::<K>` for the steps the resamplers use (a constant step
    /// vectorises), any other step alike.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn extend_f32_every_portable(self, first: usize, step: usize, out: &mut Vec<f32>) {
        match step {
            2 => self.extend_f32_every_in::<2>(first, out),
            3 => self.extend_f32_every_in::<3>(first, out),
            _ => {
                for i in (first..self.len()).step_by(step) {
                    out.push(f32::from(self.get(i)));
                }
            }
        }
    }

    /// Every `K`-th sample from `first` on: whole steps, then the one a partial last step
    /// starts with.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn extend_f32_every_in<const K: usize>(self, first: usize, out: &mut Vec<f32>) {
        if first >= self.len() {
            return;
        }
        match self {
            Self::Samples(samples) => {
                let (steps, last) = samples[first..].as_chunks::<K>();
                out.extend(steps.iter().map(|s| f32::from(s[0])));
                out.extend(last.first().map(|&s| f32::from(s)));
            }
            Self::LeBytes(bytes) => {
                let from_le = |pair: &[u8]| f32::from(i16::from_le_bytes([pair[0], pair[1]]));
                let (steps, last) = bytes[2 * first..].as_chunks::<2>();
                let (whole, rest) = steps.as_chunks::<K>();
                out.extend(whole.iter().map(|s| from_le(&s[0])));
                out.extend(rest.first().map(|s| from_le(s)));
                debug_assert!(last.is_empty());
            }
        }
    }

    /// `extend_f32_portable` compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn extend_f32_avx2(self, out: &mut Vec<f32>) {
        self.extend_f32_portable(out);
    }

    /// The conversion itself, inlined into each caller so that it vectorises for its target.
    #[inline(always)]
    #[allow(clippy::inline_always)]
    fn extend_f32_portable(self, out: &mut Vec<f32>) {
        match self {
            Self::Samples(samples) => out.extend(samples.iter().map(|&s| f32::from(s))),
            Self::LeBytes(bytes) => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|pair| f32::from(i16::from_le_bytes([pair[0], pair[1]]))),
            ),
        }
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
    fn both_forms_give_the_same_samples() {
        let samples_in: Vec<i16> = (0..77).map(|i| (i * 853 - 30000) as i16).collect();
        let mut bytes = vec![0u8; 2 * samples_in.len()];
        write_le_bytes(&samples_in, &mut bytes);
        let forms = [Pcm::Samples(&samples_in), Pcm::le_bytes(&bytes).unwrap()];
        for pcm in forms {
            assert_eq!(pcm.len(), 77);
            assert_eq!(pcm.get(76), samples_in[76]);
            assert_eq!(pcm.block::<32>(40), samples_in[40..72]);
            let (head, tail) = pcm.split_at(30);
            assert_eq!((head.len(), tail.len()), (30, 47));
            assert_eq!(
                (head.get(29), tail.get(0)),
                (samples_in[29], samples_in[30])
            );
            let mut floats = vec![1.5];
            pcm.extend_f32(&mut floats);
            let expected: Vec<f32> = std::iter::once(1.5)
                .chain(samples_in.iter().map(|&s| f32::from(s)))
                .collect();
            assert_eq!(floats, expected);
            for step in 1..=4 {
                for first in [0, 1, 2, 3, 75, 76, 77, 80] {
                    let mut every = vec![1.5];
                    pcm.extend_f32_every(first, step, &mut every);
                    let expected: Vec<f32> = std::iter::once(1.5)
                        .chain(
                            samples_in
                                .iter()
                                .skip(first)
                                .step_by(step)
                                .map(|&s| s.into()),
                        )
                        .collect();
                    assert_eq!(every, expected, "first {first}, step {step}");
                }
            }
        }
        assert_eq!(
            Pcm::le_bytes(&bytes[1..]).unwrap_err(),
            CoreError::OddPcmLength(153)
        );
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
