//! FIR prototype design for the rational resampler.
//!
//! Three designs, each returning a prototype `h` at the up-sampled rate with a known delay:
//! - `low_delay`: complex weighted least squares toward `e^{-jωD}` in the passband and 0 in the
//!   stopband, iteratively reweighted (Lawson) toward equal-ripple. With `D ≈ 0.37·N` it is an
//!   exact delay of `D` where it matters at ~60 % of a linear-phase filter's latency. The normal
//!   equations are symmetric Toeplitz, solved by Levinson recursion in O(N²).
//! - `half_band`: the same fit for interpolating by 2, where one phase is a pure delay (its
//!   outputs are copies of the input) and only the other phase is fitted, to the passband alone.
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

/// Complex least-squares low-delay lowpass of `n` taps with delay `delay` samples (see module docs).
#[must_use]
pub fn low_delay(n: usize, delay: usize, band: Band) -> Prototype {
    // Grids span each band edge to edge; the transition band carries no weight at all.
    let per_band = GRID_PER_TAP * n;
    let pass_edge = 2.0 * PI * band.pass / band.rate;
    let stop_edge = 2.0 * PI * band.stop / band.rate;
    let omega: Vec<f64> = span(0.0, pass_edge, per_band)
        .chain(span(stop_edge, PI, per_band))
        .collect();
    Prototype {
        taps: lawson(&omega, per_band, n, delay as f64),
        delay: delay as f64,
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
    let omega: Vec<f64> = span(0.0, PI * pass, 2 * GRID_PER_TAP * n).collect();
    let even = lawson(&omega, omega.len(), n, delay as f64 + 0.5);
    let mut taps = vec![0.0; 2 * n];
    for (k, e) in even.iter().enumerate() {
        taps[2 * k] = e / 2.0;
    }
    taps[2 * delay + 1] = 0.5;
    Prototype {
        taps,
        delay: (2 * delay + 1) as f64,
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
    let pass_omega = &omega[..pass_points];
    let mut taps = vec![0.0; n];
    for iteration in 0..LAWSON_ITERATIONS {
        // Normal equations: r[l] = Σ W cos(ωl); b[i] = Σ_pass W cos(ω(i − D)).
        let mut r = weighted_cosine_sums(omega, &weight, n, 0.0);
        let b = weighted_cosine_sums(pass_omega, &weight[..pass_points], n, -delay);
        r[0] *= 1.0 + RIDGE;
        taps = solve_symmetric_toeplitz(&r, &b);
        if iteration + 1 == LAWSON_ITERATIONS {
            break;
        }
        // Lawson: weight each grid point by its error so the peak error is driven down.
        let (re, im) = responses(&taps, omega);
        let mut total = 0.0;
        for k in 0..omega.len() {
            let err = if k < pass_points {
                let phase = omega[k] * delay;
                (re[k] - phase.cos()).hypot(im[k] + phase.sin())
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

/// `out[l] = Σ_k weight[k] · cos(omega[k] · (l + offset))` for `l < n`.
///
/// Runs the Chebyshev recurrence for all grid points in lockstep so the inner loop vectorises.
fn weighted_cosine_sums(omega: &[f64], weight: &[f64], n: usize, offset: f64) -> Vec<f64> {
    let two_cos: Vec<f64> = omega.iter().map(|w| 2.0 * w.cos()).collect();
    let mut prev: Vec<f64> = omega.iter().map(|w| (w * (offset - 1.0)).cos()).collect();
    let mut cur: Vec<f64> = omega.iter().map(|w| (w * offset).cos()).collect();
    let mut out = vec![0.0; n];
    for value in &mut out {
        // Four partial sums let the reduction vectorise alongside the recurrence.
        let mut sums = [0.0f64; 4];
        for (((c, p), t), w) in cur
            .chunks_mut(4)
            .zip(prev.chunks_mut(4))
            .zip(two_cos.chunks(4))
            .zip(weight.chunks(4))
        {
            for i in 0..c.len() {
                sums[i] += w[i] * c[i];
                let next = t[i] * c[i] - p[i];
                p[i] = c[i];
                c[i] = next;
            }
        }
        *value = (sums[0] + sums[1]) + (sums[2] + sums[3]);
    }
    out
}

/// `H(e^{jω})` at every grid point, as separate real and imaginary parts.
fn responses(taps: &[f64], omega: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (step_sin, step_cos): (Vec<f64>, Vec<f64>) = omega.iter().map(|w| w.sin_cos()).unzip();
    let mut c = vec![1.0; omega.len()];
    let mut s = vec![0.0; omega.len()];
    let mut re = vec![0.0; omega.len()];
    let mut im = vec![0.0; omega.len()];
    for &h in taps {
        for k in 0..omega.len() {
            re[k] += h * c[k];
            im[k] -= h * s[k];
            let next_c = c[k] * step_cos[k] - s[k] * step_sin[k];
            s[k] = s[k] * step_cos[k] + c[k] * step_sin[k];
            c[k] = next_c;
        }
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
        let (re, im) = responses(&p.taps, &omega);
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
        let p = low_delay(240, 88, band);
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
