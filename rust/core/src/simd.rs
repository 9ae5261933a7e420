//! Run-time CPU feature detection shared by the kernels that have an AVX2 variant.
//!
//! Each such kernel is a `#[target_feature]` function whose body is the same Rust as its
//! portable twin; callers go through these checks, so `unsafe` is confined to the calls.

use std::sync::OnceLock;

/// Whether this CPU has AVX2 and FMA (x86-64 since 2013), detected once per process.
#[must_use]
pub fn has_avx2_fma() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether this CPU also has AVX-512F and AVX-512VL: 256-bit instructions then have 32
/// registers instead of 16, which lets a kernel keep more sums in flight.
#[must_use]
pub fn has_avx512vl() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            has_avx2_fma()
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Loads the 8 floats of `samples` from `at` (bounds-checked) into an AVX register.
#[cfg(target_arch = "x86_64")]
#[inline]
#[must_use]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn load8(samples: &[f32], at: usize) -> std::arch::x86_64::__m256 {
    let block = &samples[at..at + 8];
    #[allow(unsafe_code)]
    // SAFETY: `block` holds exactly 8 f32s (bounds-checked above); the load is unaligned.
    unsafe {
        std::arch::x86_64::_mm256_loadu_ps(block.as_ptr())
    }
}
