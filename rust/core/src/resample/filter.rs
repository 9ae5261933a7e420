//! Polyphase filters for each rate pair, designed once per process and shared by every stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::design::{self, Band};
use super::lanes;
use crate::CoreError;

/// A resampler quality profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    /// ≥ 90 dB rejection, flat to 0.9 × the lower Nyquist, ≤ 6 ms delay on telephony pairs.
    High,
    /// Shorter filter: flat to 0.8 × the lower Nyquist with ~70 dB rejection, about half the delay.
    Fast,
}

impl Quality {
    /// Parses `"hq"` or `"fast"`.
    pub fn parse(name: &str) -> Result<Self, CoreError> {
        match name {
            "hq" => Ok(Self::High),
            "fast" => Ok(Self::Fast),
            other => Err(CoreError::UnknownQuality(other.to_owned())),
        }
    }

    /// The profile's name as accepted by `parse`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::High => "hq",
            Self::Fast => "fast",
        }
    }

    /// (passband as a fraction of the lower Nyquist, low-delay length factor, Kaiser attenuation dB).
    fn spec(self) -> (f64, f64, f64) {
        match self {
            Self::High => (0.9, 6.5, 96.0),
            Self::Fast => (0.8, 4.0, 72.0),
        }
    }
}

/// Prototypes up to this many taps use the low-delay design; longer ones use Kaiser windows.
const LOW_DELAY_MAX_TAPS: usize = 1024;
/// Low-delay designs put the delay at this fraction of the filter length.
const LOW_DELAY_FRACTION: f64 = 0.354;
/// Half-band designs put the pure-delay phase's tap at this fraction of a phase's length.
const HALF_BAND_DELAY_FRACTION: f64 = 0.28;
/// Phases of filters that use the dot-product kernel are padded (with zeros on the oldest side)
/// to a multiple of this many taps, so it works in whole SIMD blocks with no scalar tail.
pub const TAP_BLOCK: usize = 8;

/// A prototype split into `up` phases of `taps` coefficients each (stored newest-input last).
#[derive(Debug)]
pub struct PolyphaseFilter {
    pub in_rate: u32,
    pub out_rate: u32,
    pub quality: Quality,
    pub up: usize,
    pub down: usize,
    pub taps: usize,
    pub delay: f64,
    coefficients: Vec<f32>,
    /// For each phase that is a pure delay (a single tap of exactly 1), that tap's index.
    pure_delay: Vec<Option<usize>>,
}

impl PolyphaseFilter {
    /// The filter for this pair and quality, designed on first use and cached for the process.
    pub fn shared(in_rate: u32, out_rate: u32, quality: Quality) -> Arc<Self> {
        type Cache = Mutex<HashMap<(u32, u32, Quality), Arc<PolyphaseFilter>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let key = (in_rate, out_rate, quality);
        if let Some(filter) = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Arc::clone(filter);
        }
        // Designed outside the lock: a second thread may design the same filter, which is harmless.
        let filter = Arc::new(Self::design(in_rate, out_rate, quality));
        let mut guard = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(guard.entry(key).or_insert(filter))
    }

    /// Designs the filter for `in_rate → out_rate` (rates already validated).
    #[must_use]
    pub fn design(in_rate: u32, out_rate: u32, quality: Quality) -> Self {
        let g = gcd(in_rate, out_rate);
        let (up, down) = ((out_rate / g) as usize, (in_rate / g) as usize);
        if in_rate == out_rate {
            return Self {
                in_rate,
                out_rate,
                quality,
                up: 1,
                down: 1,
                taps: 1,
                delay: 0.0,
                coefficients: vec![1.0],
                pure_delay: vec![Some(0)],
            };
        }
        let (pass_fraction, length_factor, attenuation) = quality.spec();
        let (fi, fo) = (f64::from(in_rate), f64::from(out_rate));
        let pass = pass_fraction * fi.min(fo) / 2.0;
        // Downsampling rejects everything above the output Nyquist; upsampling rejects the
        // images of passband tones, which start at fi − pass.
        let stop = (fi - pass).min(fo / 2.0);
        let band = Band {
            rate: fi * up as f64,
            pass,
            stop,
        };
        let estimate = (length_factor * band.rate / (stop - pass)).ceil() as usize;
        let prototype = if (up, down) == (2, 1) {
            // Interpolating by 2: pass and image edges are symmetric about the input Nyquist,
            // so one phase can be a pure delay; the other keeps a full-band phase's length.
            let n = estimate.div_ceil(2);
            let delay = (HALF_BAND_DELAY_FRACTION * n as f64).round() as usize;
            design::half_band(n, delay, pass_fraction)
        } else if estimate <= LOW_DELAY_MAX_TAPS {
            let n = estimate.next_multiple_of(up);
            let delay = ((LOW_DELAY_FRACTION * n as f64 / down as f64).round() as usize) * down;
            design::low_delay(n, delay, band)
        } else {
            // Centre the filter on a multiple of `down` so the output delay is whole samples.
            let min_len = design::kaiser_length(band, attenuation);
            let center = ((min_len - 1) / 2).next_multiple_of(down);
            design::kaiser(2 * center + 1, band, attenuation)
        };
        Self::from_prototype(in_rate, out_rate, quality, up, down, &prototype)
    }

    fn from_prototype(
        in_rate: u32,
        out_rate: u32,
        quality: Quality,
        up: usize,
        down: usize,
        prototype: &design::Prototype,
    ) -> Self {
        let block = if up <= lanes::MAX_UP { 1 } else { TAP_BLOCK };
        let taps = prototype.taps.len().div_ceil(up).next_multiple_of(block);
        let mut coefficients = vec![0.0f32; up * taps];
        for phase in 0..up {
            for k in 0..taps {
                let h = prototype.taps.get(phase + k * up).copied().unwrap_or(0.0);
                // Reversed so the dot product walks the input forwards; gain `up` restores level.
                coefficients[phase * taps + (taps - 1 - k)] = (h * up as f64) as f32;
            }
        }
        // Exactly 1 and exactly 0 elsewhere: that one tap alone gives the phase's output exactly.
        #[allow(clippy::float_cmp)]
        let pure_delay = coefficients
            .chunks_exact(taps)
            .map(|phase| match phase.iter().filter(|&&c| c != 0.0).count() {
                1 => phase.iter().position(|&c| c == 1.0),
                _ => None,
            })
            .collect();
        Self {
            in_rate,
            out_rate,
            quality,
            up,
            down,
            taps,
            delay: prototype.delay / down as f64,
            coefficients,
            pure_delay,
        }
    }

    /// True when input and output rates are equal (output is the input, delay 0).
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.in_rate == self.out_rate
    }

    /// If `phase` is a pure delay, the index (oldest input first) of its only tap, which is 1:
    /// its output is that input sample itself.
    #[must_use]
    pub fn pure_delay(&self, phase: usize) -> Option<usize> {
        self.pure_delay[phase]
    }

    /// The coefficients of one phase, oldest input first.
    #[must_use]
    pub fn phase(&self, phase: usize) -> &[f32] {
        &self.coefficients[phase * self.taps..(phase + 1) * self.taps]
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
