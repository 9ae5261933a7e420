//! `tanh` for the detector's hidden layers, computed in `f64` from a polynomial `exp`.
//!
//! libm's `tanhf` was a quarter of the detector's time (a call per hidden unit, through
//! `expm1f`). This one calls no library function, and its relative error before rounding to
//! `f32` is below 1e-12: the result is the correctly rounded `tanh` but for ties that close,
//! the same bits on every platform and libm.

/// 1.5 × 2^52: adding it rounds an `f64` of magnitude below 2^51 to an integer, which then
/// sits in the low bits of the sum's mantissa.
const ROUNDER: f64 = 6_755_399_441_055_744.0;
/// ln 2 split so that `k * LN2_HI` is exact for the `k` used here.
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// Below this `|x|`, `tanh` comes from its series (the next term is 1e-20 of it).
const SMALL: f64 = 1e-3;
/// `exp(-2|x|)` is below 2^-60 from here on: `tanh` is 1 in `f32` long before.
const LARGEST: f64 = 21.0;

/// `exp(y)` for `-42 <= y <= 0`, relative error below 1e-14.
fn exp_nonpositive(y: f64) -> f64 {
    let shifted = y * std::f64::consts::LOG2_E + ROUNDER;
    let k = shifted - ROUNDER;
    // |r| <= ln(2) / 2; Taylor to r^11: the first omitted term is below 1e-14 of the sum.
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 39_916_800.0;
    for coefficient in [
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + coefficient;
    }
    // 2^k from k's two's-complement bits in the low mantissa of `shifted` (k >= -61).
    let k_bits = shifted.to_bits().wrapping_add(1023) << 52;
    p * f64::from_bits(k_bits)
}

/// The hyperbolic tangent, correctly rounded but for near-ties (see the module notes).
#[must_use]
pub fn tanh(x: f32) -> f32 {
    let a = f64::from(x).abs().min(LARGEST);
    let t = exp_nonpositive(-2.0 * a);
    // `1 - t` loses the low bits of tiny `a`; there the series is exact to well past f64.
    let series = a * (1.0 + a * a * (-1.0 / 3.0 + a * a * (2.0 / 15.0)));
    let magnitude = if a < SMALL {
        series
    } else {
        (1.0 - t) / (1.0 + t)
    };
    (magnitude.copysign(f64::from(x))) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn exp_matches_the_library_to_1e_14() {
        let mut y = -42.0;
        while y <= 0.0 {
            let (got, want) = (exp_nonpositive(y), y.exp());
            assert!(
                ((got - want) / want).abs() < 1e-14,
                "exp({y}) = {got}, want {want}"
            );
            y += 0.001_37;
        }
    }

    #[test]
    fn tanh_is_the_rounded_double_tanh_within_an_ulp_everywhere_and_exact_almost_always() {
        let (mut checked, mut inexact) = (0u32, 0u32);
        let mut x = -25.0f32;
        while x < 25.0 {
            for v in [x, x * 1e-3, x * 1e-6] {
                let (got, want) = (tanh(v), f64::from(v).tanh() as f32);
                assert!(ulps(got, want) <= 1, "tanh({v}) = {got}, want {want}");
                checked += 1;
                inexact += u32::from(got.to_bits() != want.to_bits());
            }
            x += 0.000_731;
        }
        assert!(
            inexact * 10_000 < checked,
            "{inexact} of {checked} off by an ulp"
        );
    }

    #[test]
    fn tanh_keeps_sign_zero_and_saturates() {
        assert_eq!(tanh(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        for (x, want) in [(30.0, 1.0f32), (-1e30, -1.0), (f32::INFINITY, 1.0)] {
            assert_eq!(tanh(x).to_bits(), want.to_bits(), "tanh({x})");
        }
    }
}
