//! What a resampler stream reads: PCM16 as it arrives, or a relay's first step's `f32` samples.

use super::kernel::to_sample;
use crate::pcm::Pcm;

/// Input samples of one call.
#[derive(Debug, Clone, Copy)]
pub(super) enum Input<'a> {
    Pcm(Pcm<'a>),
    /// Samples between a relay's two steps, neither rounded nor clipped.
    Floats(&'a [f32]),
}

impl Input<'_> {
    pub(super) fn len(self) -> usize {
        match self {
            Self::Pcm(pcm) => pcm.len(),
            Self::Floats(floats) => floats.len(),
        }
    }

    pub(super) fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The first `mid` samples and the rest.
    pub(super) fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            Self::Pcm(pcm) => {
                let (a, b) = pcm.split_at(mid);
                (Self::Pcm(a), Self::Pcm(b))
            }
            Self::Floats(floats) => {
                let (a, b) = floats.split_at(mid);
                (Self::Floats(a), Self::Floats(b))
            }
        }
    }

    /// Appends the samples to `out` as `f32`.
    pub(super) fn extend_f32(self, out: &mut Vec<f32>) {
        match self {
            Self::Pcm(pcm) => pcm.extend_f32(out),
            Self::Floats(floats) => out.extend_from_slice(floats),
        }
    }

    /// Appends every `step`-th sample from sample `first` on to `out` as `f32`.
    pub(super) fn extend_f32_every(self, first: usize, step: usize, out: &mut Vec<f32>) {
        match self {
            Self::Pcm(pcm) => pcm.extend_f32_every(first, step, out),
            Self::Floats(floats) => {
                let steps = floats.get(first..).unwrap_or_default().chunks_exact(step);
                let last = steps.remainder().first().copied();
                out.extend(steps.map(|s| s[0]));
                out.extend(last);
            }
        }
    }

    /// Writes the samples to `out` (`len()` of them), rounded to 16 bits.
    pub(super) fn copy_to(self, out: &mut [i16]) {
        match self {
            Self::Pcm(pcm) => pcm.copy_to(out),
            Self::Floats(floats) => {
                for (dst, &x) in out.iter_mut().zip(floats) {
                    *dst = to_sample(x);
                }
            }
        }
    }
}
