//! Polyphase filters for each rate pair, designed once per process and shared by every stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::design::{self, Band};
use super::fast::FastDecimator;
use super::groups::{self, Groups};
use super::lanes;
use super::nyquist::NyquistStep;
use super::two_step::TwoStepDecimator;
use crate::rates::check_rate;
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

    /// The profile's design targets.
    fn spec(self) -> Spec {
        match self {
            Self::High => Spec {
                pass_fraction: 0.9,
                low_delay_length: 6.0,
                low_delay_delay: 0.4,
                half_band_length: 6.5,
                two_step_length: Some(6.8),
                kaiser_db: 96.0,
            },
            Self::Fast => Spec {
                pass_fraction: 0.8,
                low_delay_length: 4.0,
                low_delay_delay: 0.354,
                half_band_length: 4.0,
                two_step_length: None,
                kaiser_db: 72.0,
            },
        }
    }
}

/// How a quality profile sizes its filters. Lengths are in taps per transition band, as a
/// factor of `rate / (stop − pass)`. The hq factors are the smallest that keep passband error
/// and stopband below about −97 dB: tones must come out 85 dB above everything else, and a
/// 16 000-amplitude tone's own 16-bit rounding, in and out, already sits 89 dB below it.
struct Spec {
    /// Passband edge as a fraction of the lower Nyquist.
    pass_fraction: f64,
    /// Length factor of the low-delay design.
    low_delay_length: f64,
    /// The low-delay design's delay as a fraction of its length (0.5 would be linear phase).
    low_delay_delay: f64,
    /// Length factor of the half-band and third-band designs (all phases together).
    half_band_length: f64,
    /// Length factor of the 2/3 step when decimating by 3 in two steps (`two_step`; longer
    /// than `low_delay_length` because the half-band step takes part of the delay), or `None`
    /// to always decimate by 3 and 6 directly (the fast profile, whose two-step form is not
    /// designed).
    two_step_length: Option<f64>,
    /// Stopband of the Kaiser design, for prototypes too long to solve.
    kaiser_db: f64,
}

/// Pairs from the 44.1 kHz family down to the 48 kHz family whose direct filter would take
/// more than this many taps per output are relayed (see `Relay`).
const RELAY_MIN_TAPS_PER_OUTPUT: usize = 100;
/// Filters with more than `lanes::MAX_UP` phases of at most this many taps run in groups of
/// outputs (`groups`); longer phases are dot products.
const GROUPS_MAX_TAPS: usize = 64;
/// Prototypes up to this many taps use the low-delay design; longer ones use Kaiser windows.
const LOW_DELAY_MAX_TAPS: usize = 1024;
/// Half-band designs put the pure-delay phase's tap at this fraction of a phase's length.
const HALF_BAND_DELAY_FRACTION: f64 = 0.28;
/// Phases of filters that use the dot-product kernel are padded (with zeros on the oldest side)
/// to a multiple of this many taps, so it works in whole SIMD blocks with no scalar tail.
pub const TAP_BLOCK: usize = 8;

/// A prototype split into `up` phases of `taps` coefficients each (stored newest-input last),
/// or, for decimators (L = 1), in the fast algorithm's form (`fast`), whose outputs reach back
/// `taps` inputs.
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
    /// Decimators (L = 1) run the fast algorithm on this form instead of `coefficients`.
    fast: Option<FastDecimator>,
    /// Decimators by 3 or 6 of the hq profile run in two steps instead where that is faster
    /// (`TwoStepDecimator::pays`: 48k→16k and 48k→8k).
    two_step: Option<TwoStepDecimator>,
    /// Pairs from the 44.1 kHz family down to the 48 kHz family run as two resamplers.
    relay: Option<Relay>,
    /// Many short phases (a relay's first step) run eight or sixteen outputs at a time on this
    /// form.
    groups: Option<Groups>,
}

/// 22.05k or 44.1k → 8k, 16k or 24k as two resamplers: first to twice the output rate (see
/// `relay_rate`) with a filter flat over the output's passband that rejects the input's images
/// and whatever would fold below the output's Nyquist at that rate (the rest the second
/// removes), then a decimator by 2, with the samples between the steps kept `f32`. A direct
/// 160/441 filter takes 355 taps per output from a 220 KiB table that every 20 ms frame
/// streams through the cache; the first step takes at most 34 (eight or sixteen outputs at a
/// time, `groups`).
///
/// Where sixteen consecutive outputs of that first step reach over more inputs than the wide
/// groups can take (44.1k → 8k: 160/441), the input is halved first instead, with a half-band
/// step (`NyquistStep`, 11 taps and a pure delay) in front of the half rate's own relay
/// (22.05k → 16k in wide groups, then 16k → 8k, whose delay is trimmed by the fraction of an
/// output sample that the half-band step adds): everything from the output's Nyquist to its
/// mirror about the half rate may alias there, so the half-band step is short. 44.1k → 8k then
/// costs 1.39–1.40 µs a frame in Rust instead of 1.51–1.52 (1.00–1.03 instead of 1.21–1.23
/// with `"fast"`).
#[derive(Debug)]
pub(super) struct Relay {
    pub(super) first: RelayFirst,
    pub(super) second: Arc<PolyphaseFilter>,
}

/// A relay's first step.
#[derive(Debug)]
pub(super) enum RelayFirst {
    /// To twice the output rate, in groups.
    Resample(Arc<PolyphaseFilter>),
    /// To half the input rate, by a half-band step.
    Halve(Arc<NyquistStep>),
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

    /// A filter of no coefficients and no special form, which each design fills in.
    fn form(in_rate: u32, out_rate: u32, quality: Quality, delay: f64) -> Self {
        let g = gcd(in_rate, out_rate);
        Self {
            in_rate,
            out_rate,
            quality,
            up: (out_rate / g) as usize,
            down: (in_rate / g) as usize,
            taps: 0,
            delay,
            coefficients: Vec::new(),
            pure_delay: Vec::new(),
            fast: None,
            two_step: None,
            relay: None,
            groups: None,
        }
    }

    /// The rate a relayed pair passes through, if it is relayed (see `Relay`): from the
    /// 44.1 kHz family down to the 48 kHz family, where the direct filter would take more than
    /// `RELAY_MIN_TAPS_PER_OUTPUT` (every hq pair; fast 44.1k → 8k, 22.05k → 8k and
    /// 44.1k → 16k). It is twice the output rate, not a supported rate of its own in general:
    /// the second step is a decimator by 2, whose narrow transition runs at the lowest rate
    /// that allows one (hq 44.1k → 8k through 16 kHz: 1.6 µs a frame in Rust, against 2.0
    /// through 24 kHz and 5.2 direct).
    fn relay_rate(in_rate: u32, out_rate: u32, quality: Quality) -> Option<u32> {
        let mid = out_rate.checked_mul(2)?;
        let family = in_rate.is_multiple_of(11_025) && out_rate.is_multiple_of(8_000);
        if !family || out_rate > in_rate {
            return None;
        }
        let spec = quality.spec();
        let (fi, fo) = (f64::from(in_rate), f64::from(out_rate));
        let up = out_rate / gcd(in_rate, out_rate);
        let direct = Band {
            rate: fi * f64::from(up),
            pass: spec.pass_fraction * fo / 2.0,
            stop: fo / 2.0,
        };
        let taps_per_output = design::kaiser_length(direct, spec.kaiser_db) / up as usize;
        (taps_per_output > RELAY_MIN_TAPS_PER_OUTPUT).then_some(mid)
    }

    /// The first step of a relayed pair: `in_rate → mid`, flat to the output's passband and
    /// rejecting what would fold below `out_rate / 2` at `mid`, with a delay that is whole
    /// samples at `out_rate`. What it lets through above the output's band the second step
    /// removes; its samples stay `f32` in between (`Kernel::convolve_floats`), so images at full
    /// level there cost nothing. The window is as deep as the length that the whole-sample
    /// delay rounds up to affords.
    pub(super) fn relay_step(in_rate: u32, mid: u32, out_rate: u32, quality: Quality) -> Self {
        let spec = quality.spec();
        let g = gcd(in_rate, mid);
        let (up, down) = ((mid / g) as usize, (in_rate / g) as usize);
        let (fi, fm, fo) = (f64::from(in_rate), f64::from(mid), f64::from(out_rate));
        let band = Band {
            rate: fi * up as f64,
            pass: spec.pass_fraction * fo / 2.0,
            stop: fm - fo / 2.0,
        };
        let min_len = design::kaiser_length(band, spec.kaiser_db);
        let whole = (mid / gcd(mid, out_rate)) as usize;
        let center = ((min_len - 1) / 2).next_multiple_of(down * whole);
        let depth = design::kaiser_depth(band, 2 * center + 1).max(spec.kaiser_db);
        let prototype = design::kaiser(2 * center + 1, band, depth);
        let step = Self::from_prototype(in_rate, mid, quality, up, down, &prototype);
        assert!(
            step.groups.is_some(),
            "a relay's first step runs in groups, whose samples can stay f32"
        );
        step
    }

    /// Designs the filter for `in_rate → out_rate` (rates already validated).
    #[must_use]
    pub fn design(in_rate: u32, out_rate: u32, quality: Quality) -> Self {
        Self::design_trimmed(in_rate, out_rate, quality, 0.0)
    }

    /// `design` with the delay `trim` output samples shorter (less than one), taken from the
    /// low-delay decimator that ends the pair's steps: how a halved relay (see `Relay`), whose
    /// half-band step delays by a fraction of an output sample, keeps its whole delay in whole
    /// output samples.
    fn design_trimmed(in_rate: u32, out_rate: u32, quality: Quality, trim: f64) -> Self {
        if let Some(mid) = Self::relay_rate(in_rate, out_rate, quality) {
            let (fi, fo) = (f64::from(in_rate), f64::from(out_rate));
            let step = Self::relay_step(in_rate, mid, out_rate, quality);
            let half = in_rate / 2;
            let halves = step.groups.as_ref().is_some_and(|g| g.wide().is_none())
                && in_rate.is_multiple_of(2)
                && check_rate(half).is_ok()
                && Self::relay_rate(half, out_rate, quality).is_some();
            let (first, second, delay) = if halves {
                assert!(trim == 0.0, "a halved relay trims its own second step");
                let length = quality.spec().half_band_length;
                let halve = NyquistStep::design(fi, 2, fo / 2.0, length);
                let ahead = halve.delay() * fo / fi;
                let fraction = (ahead + Self::shared(half, out_rate, quality).delay).fract();
                let second = Arc::new(Self::design_trimmed(half, out_rate, quality, fraction));
                let delay = ahead + second.delay;
                (RelayFirst::Halve(Arc::new(halve)), second, delay)
            } else {
                let second = if trim == 0.0 {
                    Self::shared(mid, out_rate, quality)
                } else {
                    Arc::new(Self::design_trimmed(mid, out_rate, quality, trim))
                };
                let delay = step.delay * fo / f64::from(mid) + second.delay;
                (RelayFirst::Resample(Arc::new(step)), second, delay)
            };
            return Self {
                relay: Some(Relay { first, second }),
                ..Self::form(in_rate, out_rate, quality, delay)
            };
        }
        let g = gcd(in_rate, out_rate);
        let (up, down) = ((out_rate / g) as usize, (in_rate / g) as usize);
        if in_rate == out_rate {
            return Self {
                taps: 1,
                coefficients: vec![1.0],
                pure_delay: vec![Some(0)],
                ..Self::form(in_rate, out_rate, quality, 0.0)
            };
        }
        let spec = quality.spec();
        let pass_fraction = spec.pass_fraction;
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
        let taps_for = |factor: f64| (factor * band.rate / (stop - pass)).ceil() as usize;
        // A tone's L − 1 images add up after decimation: deepen the stopband by 10·log10(L − 1) dB
        // (each unit of length factor buys about 12 dB at these transition widths).
        let images = (up.max(2) - 1) as f64;
        let estimate = taps_for(spec.low_delay_length + 10.0 * images.log10() / 12.0);
        let low_delay =
            |n: usize| ((spec.low_delay_delay * n as f64 / down as f64).round() as usize) * down;
        if let (1, 3 | 6, Some(length), true) = (
            up,
            down,
            spec.two_step_length,
            TwoStepDecimator::pays(out_rate, down),
        ) {
            // The same delay as the direct design. By 3 the second step's prototype is at the
            // input rate (up by 2, then two decimators by 3), by 6 at a third of it.
            // By 6 the third-band step takes 14 of the 288 input samples of delay, so the
            // second step keeps the direct design's length factor (at a third of the rate: a
            // third of the taps).
            let taps = if down == 3 {
                taps_for(length).next_multiple_of(2 * 4 * 3)
            } else {
                (taps_for(spec.low_delay_length) / 3).next_multiple_of(4 * 2)
            };
            assert!(trim == 0.0, "only a low-delay decimator's delay is trimmed");
            let two_step = TwoStepDecimator::design(
                fi,
                down,
                pass,
                spec.half_band_length,
                taps,
                low_delay(estimate),
            );
            let delay = two_step.delay();
            return Self {
                two_step: Some(two_step),
                ..Self::form(in_rate, out_rate, quality, delay)
            };
        }
        assert!(
            trim == 0.0 || (up == 1 && estimate <= LOW_DELAY_MAX_TAPS),
            "only a low-delay decimator's delay is trimmed"
        );
        let prototype = if (up, down) == (2, 1) {
            // Interpolating by 2: pass and image edges are symmetric about the input Nyquist,
            // so one phase can be a pure delay; the other keeps a full-band phase's length.
            let n = taps_for(spec.half_band_length).div_ceil(2);
            let delay = (HALF_BAND_DELAY_FRACTION * n as f64).round() as usize;
            design::half_band(n, delay, pass_fraction)
        } else if estimate <= LOW_DELAY_MAX_TAPS {
            let n = estimate.next_multiple_of(up);
            design::low_delay(n, low_delay(n) as f64 - trim * down as f64, band)
        } else {
            // Centre the filter on a multiple of `down` so the output delay is whole samples.
            let min_len = design::kaiser_length(band, spec.kaiser_db);
            let center = ((min_len - 1) / 2).next_multiple_of(down);
            design::kaiser(2 * center + 1, band, spec.kaiser_db)
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
        if up == 1 {
            let fast = FastDecimator::new(&prototype.taps, down);
            return Self {
                taps: fast.reach(),
                fast: Some(fast),
                ..Self::form(in_rate, out_rate, quality, prototype.delay / down as f64)
            };
        }
        let phase_len = prototype.taps.len().div_ceil(up);
        let in_groups =
            up > lanes::MAX_UP && up.is_multiple_of(groups::LANES) && phase_len <= GROUPS_MAX_TAPS;
        // Dot products take taps in blocks; lanes and groups take them as they are.
        let block = if up <= lanes::MAX_UP || in_groups {
            1
        } else {
            TAP_BLOCK
        };
        let taps = phase_len.next_multiple_of(block);
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
        let mut filter = Self {
            taps,
            coefficients,
            pure_delay,
            ..Self::form(in_rate, out_rate, quality, prototype.delay / down as f64)
        };
        if in_groups {
            filter.groups = Some(Groups::new(up, down, taps, |p| filter.phase(p).to_vec()));
        }
        filter
    }

    /// True when input and output rates are equal (output is the input, delay 0).
    #[must_use]
    pub fn is_identity(&self) -> bool {
        self.in_rate == self.out_rate
    }

    /// The fast form of a decimator (L = 1), which its kernels use instead of `phase`.
    #[must_use]
    pub(super) fn fast(&self) -> Option<&FastDecimator> {
        self.fast.as_ref()
    }

    /// The two-step form of a decimator by 3 or 6, which the resampler runs instead of a kernel.
    #[must_use]
    pub(super) fn two_step(&self) -> Option<&TwoStepDecimator> {
        self.two_step.as_ref()
    }

    /// The group form of a filter with many short phases (see `groups`).
    #[must_use]
    pub(super) fn groups(&self) -> Option<&Groups> {
        self.groups.as_ref()
    }

    /// Inputs before the next output's window that the kernel may read.
    #[must_use]
    pub(super) fn spread(&self) -> usize {
        self.groups.as_ref().map_or(0, Groups::spread)
    }

    /// The two resamplers of a relayed pair (see `Relay`).
    #[must_use]
    pub(super) fn relay(&self) -> Option<&Relay> {
        self.relay.as_ref()
    }

    /// History is dropped in multiples of this many inputs (the fast form's rows need it).
    #[must_use]
    pub(super) fn history_step(&self) -> usize {
        self.fast.as_ref().map_or(1, FastDecimator::history_step)
    }

    /// If `phase` is a pure delay, the index (oldest input first) of its only tap, which is 1:
    /// its output is that input sample itself.
    #[must_use]
    pub(super) fn pure_delay(&self, phase: usize) -> Option<usize> {
        self.pure_delay[phase]
    }

    /// The coefficients of one phase, oldest input first.
    #[must_use]
    pub(super) fn phase(&self, phase: usize) -> &[f32] {
        &self.coefficients[phase * self.taps..(phase + 1) * self.taps]
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_halve_first_where_their_first_step_has_no_wide_form() {
        let first = |i, o, q| match &PolyphaseFilter::shared(i, o, q).relay().unwrap().first {
            RelayFirst::Halve(_) => None,
            RelayFirst::Resample(step) => {
                Some((step.out_rate, step.groups().unwrap().wide().is_some()))
            }
        };
        // 44.1k -> 16k's 160/441 step spreads sixteen outputs too far: halved, then 22.05k -> 8k.
        assert_eq!(first(44_100, 8_000, Quality::High), None);
        assert_eq!(first(44_100, 8_000, Quality::Fast), None);
        let halved = PolyphaseFilter::shared(44_100, 8_000, Quality::High);
        let second = &halved.relay().unwrap().second;
        assert_eq!((second.in_rate, second.out_rate), (22_050, 8_000));
        assert!(second.relay().is_some(), "the half rate's own relay");
        for (i, o, mid) in [
            (44_100, 16_000, 32_000),
            (44_100, 24_000, 48_000),
            (22_050, 8_000, 16_000),
            (22_050, 16_000, 32_000),
        ] {
            assert_eq!(first(i, o, Quality::High), Some((mid, true)), "{i} -> {o}");
        }
    }

    #[test]
    fn relays_pass_through_twice_the_output_rate() {
        let relay = |i, o, q| PolyphaseFilter::relay_rate(i, o, q);
        for (i, o) in [
            (44_100, 8_000),
            (44_100, 16_000),
            (22_050, 8_000),
            (22_050, 16_000),
        ] {
            assert_eq!(relay(i, o, Quality::High), Some(2 * o), "{i} -> {o}");
        }
        assert_eq!(relay(44_100, 24_000, Quality::High), Some(48_000));
        assert_eq!(relay(44_100, 8_000, Quality::Fast), Some(16_000));
        assert_eq!(relay(44_100, 16_000, Quality::Fast), Some(32_000));
        // The fast profile's shorter filters run as fast directly below 100 taps per output.
        assert_eq!(relay(22_050, 16_000, Quality::Fast), None);
        assert_eq!(relay(44_100, 24_000, Quality::Fast), None);
        // Upsampling and the 48 kHz family are never relayed.
        assert_eq!(relay(22_050, 24_000, Quality::High), None);
        assert_eq!(relay(22_050, 48_000, Quality::High), None);
        assert_eq!(relay(48_000, 8_000, Quality::High), None);
    }
}
