//! Run-time CPU feature detection shared by the kernels that have AVX2 or AVX-512 variants,
//! and the `VOICECORE_SIMD` setting that lowers what they use.
//!
//! Each such kernel is a `#[target_feature]` function whose body is the same Rust as its
//! portable twin; callers go through these checks, so `unsafe` is confined to the calls.

use std::sync::OnceLock;

/// The instruction sets the kernels may use, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Portable Rust only (what the compiler vectorises for the build's baseline).
    Portable,
    /// AVX2 and FMA (x86-64 since 2013).
    Avx2,
    /// AVX2 and FMA plus AVX-512F and AVX-512VL: 256-bit instructions then have 32 registers
    /// instead of 16, and some kernels run 16 lanes at a time.
    Avx512,
}

/// The environment variable that lowers the level the kernels use, for benchmarks and for
/// checking the lower kernels on a CPU that has more: `portable`, `avx2`, `avx512`, or
/// `native` (the default). It never raises the level above what the CPU reports.
pub const LEVEL_VARIABLE: &str = "VOICECORE_SIMD";

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Self; 3] = [Self::Portable, Self::Avx2, Self::Avx512];

    /// The level's name as `LEVEL_VARIABLE` takes it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// What the kernels use on a CPU that supports `detected` when `LEVEL_VARIABLE` holds
    /// `requested`: the lower of the two, or `detected` for `native`, an empty value or none.
    ///
    /// # Errors
    /// `CoreError::InvalidArgument` naming the accepted values, for any other value.
    pub fn resolve(detected: Self, requested: Option<&str>) -> Result<Self, crate::CoreError> {
        let requested = requested.map(str::trim).unwrap_or_default();
        if requested.is_empty() || requested.eq_ignore_ascii_case("native") {
            return Ok(detected);
        }
        Self::ALL
            .into_iter()
            .find(|level| level.name().eq_ignore_ascii_case(requested))
            .map(|level| level.min(detected))
            .ok_or_else(|| {
                crate::CoreError::InvalidArgument(format!(
                    "{LEVEL_VARIABLE}={requested:?} is not a SIMD level; use \"portable\", \"avx2\", \"avx512\" or \"native\" (the default: whatever the CPU supports)"
                ))
            })
    }
}

/// What this CPU supports, detected once per process.
#[must_use]
pub fn detected() -> Level {
    static DETECTED: OnceLock<Level> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if !(has!("avx2") && has!("fma")) {
                Level::Portable
            } else if has!("avx512f") && has!("avx512vl") {
                Level::Avx512
            } else {
                Level::Avx2
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Level::Portable
        }
    })
}

/// What the kernels use: `detected`, lowered by `LEVEL_VARIABLE` (read once per process), or
/// the error its value gives (the kernels then use `detected`).
///
/// # Errors
/// The `CoreError::InvalidArgument` of `Level::resolve` for an unknown value.
pub fn configured() -> Result<Level, crate::CoreError> {
    static CONFIGURED: OnceLock<Result<Level, crate::CoreError>> = OnceLock::new();
    CONFIGURED
        .get_or_init(|| {
            let value = std::env::var_os(LEVEL_VARIABLE);
            Level::resolve(detected(), value.as_deref().and_then(|v| v.to_str()))
        })
        .clone()
}

/// The level the kernels use (see `configured`).
#[must_use]
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| configured().unwrap_or_else(|_| detected()))
}

/// Whether the kernels may use AVX2 and FMA.
#[must_use]
pub fn has_avx2_fma() -> bool {
    level() >= Level::Avx2
}

/// Whether the kernels may also use AVX-512F and AVX-512VL.
#[must_use]
pub fn has_avx512vl() -> bool {
    level() >= Level::Avx512
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_level_only_ever_lowers_the_detected_one() {
        for detected in Level::ALL {
            for requested in Level::ALL {
                let resolved = Level::resolve(detected, Some(requested.name())).unwrap();
                assert_eq!(resolved, requested.min(detected));
            }
            for native in [None, Some(""), Some("native"), Some(" NATIVE ")] {
                assert_eq!(Level::resolve(detected, native).unwrap(), detected);
            }
            assert_eq!(
                Level::resolve(detected, Some("AVX2")).unwrap(),
                Level::Avx2.min(detected)
            );
        }
    }

    #[test]
    fn an_unknown_level_is_an_error_that_lists_the_accepted_ones() {
        let error = Level::resolve(Level::Avx512, Some("sse4")).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("VOICECORE_SIMD=\"sse4\""), "{message}");
        for name in ["portable", "avx2", "avx512", "native"] {
            assert!(message.contains(name), "{message}");
        }
    }

    #[test]
    fn the_kernels_use_at_most_what_the_cpu_supports() {
        assert!(level() <= detected());
        assert_eq!(has_avx2_fma(), level() >= Level::Avx2);
        assert_eq!(has_avx512vl(), level() >= Level::Avx512);
    }
}
