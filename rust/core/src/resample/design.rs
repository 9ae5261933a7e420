//! FIR prototype design for the rational resampler.
//!
//! Three designs, each returning a prototype `h` at the up-sampled rate with a known delay:
//! - `low_delay`: complex weighted least squares toward `e^{-jωD}` in the passband and 0 in the
//!   stopband, iteratively reweighted (Lawson) toward equal-ripple. With `D ≈ 0.37·N` it is an
//!   exact delay of `D` where it matters at ~60 % of a linear-phase filter's latency. The normal
//!   equations are symmetric Toeplitz, solved by Levinson recursion in O(N²).
//! - `half_band`: the same fit for interpolating by 2, where one phase is a pure delay (its
//!   outputs are copies of the input) and only the other phase is fitted, to the passband alone;
//!   `nyquist` generalises it to `k` phases (a third-band decimator's first step).
//! - `kaiser`: linear-phase windowed sinc for prototypes too long to solve (rates like 44.1k↔16k).

use std::f64::consts::PI;

/// The band edges of a lowpass prototype, in Hz at the prototype rate `rate`.
#[derive(Debug, Clone, Copy)]
pub struct Band {
    pub rate: f64,
    pub pass: f64,
    pub stop: f64,
}

/// A designed prototype: coefficients at `Band::rate` and their delay in prototype samples.
#[derive(Debug, Clone)]
pub struct Prototype {
    pub taps: Vec<f64>,
    pub delay: f64,
}

const GRID_PER_TAP: usize = 8;
const LAWSON_ITERATIONS: usize = 10;
/// Relative diagonal loading that keeps the Toeplitz system well conditioned (the transition
/// band is unweighted, which alone would leave it nearly singular).
const RIDGE: f64 = 1e-9;
const STOP_WEIGHT: f64 = 2.0;

/// Complex least-squares low-delay lowpass of `n` taps with delay `delay` samples (see module
/// docs; a fraction of a sample is allowed).
#[must_use]
pub fn low_delay(n: usize, delay: f64, band: Band) -> Prototype {
    // Grids span each band edge to edge; the transition band carries no weight at all.
    let per_band = GRID_PER_TAP * n;
    let pass_edge = 2.0 * PI * band.pass / band.rate;
    let stop_edge = 2.0 * PI * band.stop / band.rate;
    let omega: Vec<f64> = span(0.0, pass_edge, per_band)
        .chain(span(stop_edge, PI, per_band))
        .collect();
    Prototype {
        taps: lawson(&omega, per_band, n, delay),
        delay,
    }
}

/// Low-delay half-band prototype for interpolating by 2: `n` taps per phase, passband up to
/// `pass` × the input Nyquist, output delay `2·delay + 1` samples.
///
/// The odd phase is a pure delay of `delay` input samples (one tap of 1, so its outputs are
/// copies of the input) and the even phase a fractional delay of `delay + ½` input samples,
/// fitted over the passband only. An image of a passband tone is the difference between the
/// two phases, so the passband fit bounds passband error and image level alike, with half
/// the arithmetic of a full-band design and no symmetry forcing the delay to `n`.
#[must_use]
pub fn half_band(n: usize, delay: usize, pass: f64) -> Prototype {
    nyquist(2, n, delay, pass)
}

/// The same design for `k` phases (a `k`-th-band filter, for changing the rate by `k`):
/// phase `k − 1` is a pure delay of `delay` low-rate samples (one tap of `1/k`) and phase
/// `r < k − 1` a fractional delay of `delay + (k − 1 − r)/k`, fitted with `n` taps over
/// `pass` × the low rate's Nyquist. Each alias or image of a tone in that band is a
/// twiddled sum of the phases' responses that vanishes where they all match their delays.
/// Output delay `k·delay + k − 1` samples at the high rate.
#[must_use]
pub fn nyquist(k: usize, n: usize, delay: usize, pass: f64) -> Prototype {
    let omega: Vec<f64> = span(0.0, PI * pass, 2 * GRID_PER_TAP * n).collect();
    let mut taps = vec![0.0; k * n];
    for r in 0..k - 1 {
        let fractional = delay as f64 + (k - 1 - r) as f64 / k as f64;
        let phase = lawson(&omega, omega.len(), n, fractional);
        for (j, e) in phase.iter().enumerate() {
            taps[k * j + r] = e / k as f64;
        }
    }
    taps[k * delay + k - 1] = 1.0 / k as f64;
    Prototype {
        taps,
        delay: (k * delay + k - 1) as f64,
    }
}

/// `count` evenly spaced points from `from` to `to`, both included.
fn span(from: f64, to: f64, count: usize) -> impl Iterator<Item = f64> {
    (0..count).map(move |k| from + (to - from) * k as f64 / (count - 1) as f64)
}

/// `n` taps fitting `e^{-jω·delay}` on the first `pass_points` of `omega` and 0 on the rest,
/// by weighted least squares reweighted (Lawson) toward equal-ripple error.
fn lawson(omega: &[f64], pass_points: usize, n: usize, delay: f64) -> Vec<f64> {
    let mut weight: Vec<f64> = (0..omega.len())
        .map(|k| if k < pass_points { 1.0 } else { STOP_WEIGHT })
        .collect();
    // Every iteration evaluates the same cosines and phasors on the same grid: once here.
    let lags = Recurrence::new(omega, 0.0);
    let targets = Recurrence::new(&omega[..pass_points], -delay);
    let (step_sin, step_cos): (Vec<f64>, Vec<f64>) = omega.iter().map(|w| w.sin_cos()).unzip();
    let (target_sin, target_cos): (Vec<f64>, Vec<f64>) = omega[..pass_points]
        .iter()
        .map(|w| (w * delay).sin_cos())
        .unzip();
    let mut taps = vec![0.0; n];
    for iteration in 0..LAWSON_ITERATIONS {
        // Normal equations: r[l] = Σ W cos(ωl); b[i] = Σ_pass W cos(ω(i − D)).
        let mut r = weighted_cosine_sums(&lags, &weight, n);
        let b = weighted_cosine_sums(&targets, &weight[..pass_points], n);
        r[0] *= 1.0 + RIDGE;
        taps = solve_symmetric_toeplitz(&r, &b);
        if iteration + 1 == LAWSON_ITERATIONS {
            break;
        }
        // Lawson: weight each grid point by its error so the peak error is driven down.
        let (re, im) = responses(&taps, &step_sin, &step_cos);
        let mut total = 0.0;
        for k in 0..omega.len() {
            let err = if k < pass_points {
                (re[k] - target_cos[k]).hypot(im[k] + target_sin[k])
            } else {
                re[k].hypot(im[k])
            };
            weight[k] *= err;
            total += weight[k];
        }
        let scale = omega.len() as f64 / total;
        for w in &mut weight {
            *w *= scale;
        }
    }
    taps
}

/// The Chebyshev recurrence `c[l + 1] = 2 cos ω · c[l] − c[l − 1]` for `c[l] = cos(ω(l +
/// offset))` at every grid point: its factor and its first two values.
struct Recurrence {
    two_cos: Vec<f64>,
    before: Vec<f64>,
    first: Vec<f64>,
}

impl Recurrence {
    fn new(omega: &[f64], offset: f64) -> Self {
        Self {
            two_cos: omega.iter().map(|w| 2.0 * w.cos()).collect(),
            before: omega.iter().map(|w| (w * (offset - 1.0)).cos()).collect(),
            first: omega.iter().map(|w| (w * offset).cos()).collect(),
        }
    }
}

/// `out[l] = Σ_k weight[k] · cos(ω_k · (l + offset))` for `l < n`, over the grid of `cosines`.
///
/// Grid point `k` adds to partial sum `k mod 4`, in order of `k`, and the four partial sums
/// are added pairwise at the end. The recurrence runs along `l` for sixteen grid points at a
/// time (independent chains, so it vectorises and does not wait on each step's latency),
/// with the `n` partial sums staying in cache.
fn weighted_cosine_sums(cosines: &Recurrence, weight: &[f64], n: usize) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU reported AVX2 and FMA.
        return unsafe { weighted_cosine_sums_avx2(cosines, weight, n) };
    }
    weighted_cosine_sums_portable(cosines, weight, n)
}

/// `weighted_cosine_sums_portable` compiled for AVX2 (the same arithmetic in wider registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn weighted_cosine_sums_avx2(cosines: &Recurrence, weight: &[f64], n: usize) -> Vec<f64> {
    weighted_cosine_sums_portable(cosines, weight, n)
}

/// Grid points whose recurrences `weighted_cosine_sums` runs together.
const POINTS: usize = 16;

#[inline(always)]
#[allow(clippy::inline_always)]
fn weighted_cosine_sums_portable(cosines: &Recurrence, weight: &[f64], n: usize) -> Vec<f64> {
    let mut sums = vec![[0.0f64; 4]; n];
    for k in (0..weight.len()).step_by(POINTS) {
        let end = (k + POINTS).min(weight.len());
        // Zeros past the grid's end add nothing.
        let mut w = [0.0f64; POINTS];
        let (mut t, mut before, mut c) = (w, w, w);
        w[..end - k].copy_from_slice(&weight[k..end]);
        t[..end - k].copy_from_slice(&cosines.two_cos[k..end]);
        before[..end - k].copy_from_slice(&cosines.before[k..end]);
        c[..end - k].copy_from_slice(&cosines.first[k..end]);
        for lanes in &mut sums {
            for j in 0..POINTS {
                lanes[j % 4] += w[j] * c[j];
                let next = t[j] * c[j] - before[j];
                before[j] = c[j];
                c[j] = next;
            }
        }
    }
    sums.iter().map(|s| (s[0] + s[1]) + (s[2] + s[3])).collect()
}

/// `H(e^{jω})` at every grid point (given `sin ω` and `cos ω`), as separate real and
/// imaginary parts: the taps summed in order, the phasor `e^{-jωl}` advanced by one rotation
/// per tap, sixteen grid points at a time (independent chains).
fn responses(taps: &[f64], step_sin: &[f64], step_cos: &[f64]) -> (Vec<f64>, Vec<f64>) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx2_fma() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU reported AVX2 and FMA.
        return unsafe { responses_avx2(taps, step_sin, step_cos) };
    }
    responses_portable(taps, step_sin, step_cos)
}

/// `responses_portable` compiled for AVX2 (the same arithmetic in wider registers).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn responses_avx2(taps: &[f64], step_sin: &[f64], step_cos: &[f64]) -> (Vec<f64>, Vec<f64>) {
    responses_portable(taps, step_sin, step_cos)
}

#[inline(always)]
#[allow(clippy::inline_always)]
fn responses_portable(taps: &[f64], step_sin: &[f64], step_cos: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut re = vec![0.0; step_sin.len()];
    let mut im = vec![0.0; step_sin.len()];
    for k in (0..step_sin.len()).step_by(POINTS) {
        let end = (k + POINTS).min(step_sin.len());
        let (mut sin, mut cos) = ([0.0f64; POINTS], [0.0f64; POINTS]);
        sin[..end - k].copy_from_slice(&step_sin[k..end]);
        cos[..end - k].copy_from_slice(&step_cos[k..end]);
        let (mut c, mut s) = ([1.0f64; POINTS], [0.0f64; POINTS]);
        let (mut sum_re, mut sum_im) = ([0.0f64; POINTS], [0.0f64; POINTS]);
        for &h in taps {
            for j in 0..POINTS {
                sum_re[j] += h * c[j];
                sum_im[j] -= h * s[j];
                let next_c = c[j] * cos[j] - s[j] * sin[j];
                s[j] = s[j] * cos[j] + c[j] * sin[j];
                c[j] = next_c;
            }
        }
        re[k..end].copy_from_slice(&sum_re[..end - k]);
        im[k..end].copy_from_slice(&sum_im[..end - k]);
    }
    (re, im)
}

/// Solves `T x = b` for the symmetric Toeplitz `T` with first row `r` (Levinson recursion).
fn solve_symmetric_toeplitz(r: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut forward = vec![0.0; n];
    let mut next = vec![0.0; n];
    let mut x = vec![0.0; n];
    forward[0] = 1.0 / r[0];
    x[0] = b[0] / r[0];
    for k in 1..n {
        let eps: f64 = (0..k).map(|i| r[k - i] * forward[i]).sum();
        let denom = 1.0 - eps * eps;
        for i in 0..=k {
            let f = if i < k { forward[i] } else { 0.0 };
            let back = if i > 0 { forward[k - i] } else { 0.0 };
            next[i] = (f - eps * back) / denom;
        }
        forward[..=k].copy_from_slice(&next[..=k]);
        let eps_x: f64 = (0..k).map(|i| r[k - i] * x[i]).sum();
        let coef = b[k] - eps_x;
        for i in 0..=k {
            x[i] += coef * forward[k - i];
        }
    }
    x
}

/// Linear-phase Kaiser-windowed sinc of `n` taps reaching `attenuation_db` outside the band.
#[must_use]
pub fn kaiser(n: usize, band: Band, attenuation_db: f64) -> Prototype {
    let beta = kaiser_beta(attenuation_db);
    let cutoff = f64::midpoint(band.pass, band.stop) / band.rate;
    let center = (n - 1) as f64 / 2.0;
    let norm = bessel_i0(beta);
    let mut taps: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 - center;
            let ratio = t / center.max(1.0);
            let window = bessel_i0(beta * (1.0 - ratio * ratio).max(0.0).sqrt()) / norm;
            2.0 * cutoff * sinc(2.0 * cutoff * t) * window
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    for h in &mut taps {
        *h /= sum;
    }
    Prototype {
        taps,
        delay: center,
    }
}

/// Kaiser-window taps needed for `attenuation_db` over a transition of `band`.
#[must_use]
pub fn kaiser_length(band: Band, attenuation_db: f64) -> usize {
    let transition = 2.0 * PI * (band.stop - band.pass) / band.rate;
    ((attenuation_db - 7.95) / (2.285 * transition)).ceil() as usize + 1
}

/// The attenuation a Kaiser window of `n` taps reaches over a transition of `band` (the
/// inverse of `kaiser_length`).
#[must_use]
pub fn kaiser_depth(band: Band, n: usize) -> f64 {
    let transition = 2.0 * PI * (band.stop - band.pass) / band.rate;
    2.285 * transition * (n - 1) as f64 + 7.95
}

fn kaiser_beta(attenuation_db: f64) -> f64 {
    if attenuation_db > 50.0 {
        0.1102 * (attenuation_db - 8.7)
    } else if attenuation_db >= 21.0 {
        0.5842 * (attenuation_db - 21.0).powf(0.4) + 0.07886 * (attenuation_db - 21.0)
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let half_sq = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..200 {
        term *= half_sq / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst passband error against `e^{-jωD}` and worst stopband gain, both in dB.
    fn measure(p: &Prototype, band: Band) -> (f64, f64) {
        let freqs: Vec<f64> = (0..8000)
            .map(|k| band.rate / 2.0 * f64::from(k) / 8000.0)
            .collect();
        let omega: Vec<f64> = freqs.iter().map(|f| 2.0 * PI * f / band.rate).collect();
        let (sin, cos): (Vec<f64>, Vec<f64>) = omega.iter().map(|w| w.sin_cos()).unzip();
        let (re, im) = responses(&p.taps, &sin, &cos);
        let (mut pass_err, mut stop_gain) = (0.0f64, 0.0f64);
        for k in 0..freqs.len() {
            if freqs[k] <= band.pass {
                let ph = omega[k] * p.delay;
                pass_err = pass_err.max((re[k] - ph.cos()).hypot(im[k] + ph.sin()));
            } else if freqs[k] >= band.stop {
                stop_gain = stop_gain.max(re[k].hypot(im[k]));
            }
        }
        (20.0 * pass_err.log10(), 20.0 * stop_gain.log10())
    }

    #[test]
    fn vector_paths_compute_exactly_what_the_portable_ones_do() {
        // Filters must not depend on the CPU that designs them.
        let omega: Vec<f64> = (0..1003).map(|k| 3.1 * f64::from(k) / 1003.0).collect();
        let weight: Vec<f64> = (0..1003).map(|k| 1.0 + f64::from(k % 7) / 3.0).collect();
        let taps: Vec<f64> = (0..37).map(|k| (f64::from(k) * 0.7).sin() / 9.0).collect();
        let cosines = Recurrence::new(&omega, -11.5);
        let (sin, cos): (Vec<f64>, Vec<f64>) = omega.iter().map(|w| w.sin_cos()).unzip();
        let sums = weighted_cosine_sums(&cosines, &weight, 41);
        assert_eq!(sums, weighted_cosine_sums_portable(&cosines, &weight, 41));
        assert_eq!(
            responses(&taps, &sin, &cos),
            responses_portable(&taps, &sin, &cos)
        );
        // And what they compute is the plain sums.
        for (l, &sum) in sums.iter().enumerate() {
            let exact: f64 = omega
                .iter()
                .zip(&weight)
                .map(|(w, g)| g * (w * (l as f64 - 11.5)).cos())
                .sum();
            assert!((sum - exact).abs() < 1e-9 * exact.abs().max(1.0), "lag {l}");
        }
    }

    #[test]
    fn toeplitz_solver_matches_direct_product() {
        let r = [4.0, 1.0, 0.5, 0.25];
        let b = [1.0, 2.0, 3.0, 4.0];
        let x = solve_symmetric_toeplitz(&r, &b);
        for (i, &bi) in b.iter().enumerate() {
            let row: f64 = (0..4).map(|j| r[i.abs_diff(j)] * x[j]).sum();
            assert!((row - bi).abs() < 1e-12, "row {i}: {row} vs {bi}");
        }
    }

    #[test]
    fn low_delay_telephony_design_meets_spec() {
        let band = Band {
            rate: 16_000.0,
            pass: 3600.0,
            stop: 4000.0,
        };
        let p = low_delay(240, 88.0, band);
        let (pass_err, stop) = measure(&p, band);
        assert!(pass_err < -92.0, "passband error {pass_err:.1} dB");
        assert!(stop < -92.0, "stopband {stop:.1} dB");
    }

    #[test]
    #[allow(clippy::float_cmp)] // the delay and the pure-delay tap are exact by construction
    fn half_band_telephony_design_meets_spec() {
        let band = Band {
            rate: 16_000.0,
            pass: 3600.0,
            stop: 4400.0,
        };
        let p = half_band(65, 18, 0.9);
        assert_eq!(p.delay, 37.0);
        let (pass_err, images) = measure(&p, band);
        assert!(pass_err < -92.0, "passband error {pass_err:.1} dB");
        assert!(images < -92.0, "images {images:.1} dB");
        // The odd phase is the input itself, delayed: one tap of ½ (× 2 for the gain of
        // interpolation), every other odd tap exactly zero.
        let odd: Vec<f64> = p.taps.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(odd.iter().filter(|&&h| h != 0.0).count(), 1);
        assert_eq!(odd[18], 0.5);
    }

    #[test]
    #[allow(clippy::float_cmp)] // the delay and the pure-delay taps are exact by construction
    fn third_band_decimator_design_meets_spec() {
        // 48k -> 16k ahead of a 16k -> 8k step: flat to 4 kHz, and nothing from 12 to 20 kHz,
        // which would fold below 4 kHz at 16 kHz (20 to 24 kHz folds above it).
        let p = nyquist(3, 13, 4, 0.5);
        assert_eq!(p.delay, 14.0);
        let passband = Band {
            rate: 48_000.0,
            pass: 4000.0,
            stop: 24_000.0,
        };
        let (pass_err, _) = measure(&p, passband);
        assert!(pass_err < -100.0, "passband error {pass_err:.1} dB");
        let stopband = Band {
            rate: 48_000.0,
            pass: 12_000.0,
            stop: 20_000.0,
        };
        let omega: Vec<f64> = (0..=4000)
            .map(|k| 2.0 * PI * (12_000.0 + 2.0 * f64::from(k)) / stopband.rate)
            .collect();
        let (sin, cos): (Vec<f64>, Vec<f64>) = omega.iter().map(|w| w.sin_cos()).unzip();
        let (re, im) = responses(&p.taps, &sin, &cos);
        let worst = re
            .iter()
            .zip(&im)
            .map(|(r, i)| r.hypot(*i))
            .fold(0.0, f64::max);
        assert!(
            20.0 * worst.log10() < -105.0,
            "stopband {:.1} dB",
            20.0 * worst.log10()
        );
        // Phase 2 of the prototype is the input itself, delayed: one tap of ⅓.
        let pure: Vec<f64> = p.taps.iter().skip(2).step_by(3).copied().collect();
        assert_eq!(pure.iter().filter(|&&h| h != 0.0).count(), 1);
        assert_eq!(pure[4], 1.0 / 3.0);
    }

    #[test]
    fn kaiser_design_meets_spec() {
        let band = Band {
            rate: 48_000.0,
            pass: 7200.0,
            stop: 8000.0,
        };
        let n = kaiser_length(band, 96.0);
        let p = kaiser(n, band, 96.0);
        let (pass_err, stop) = measure(&p, band);
        assert!(pass_err < -90.0, "passband error {pass_err:.1} dB");
        assert!(stop < -92.0, "stopband {stop:.1} dB");
    }
}
