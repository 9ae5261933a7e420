//! A small radix-2 real FFT giving power spectra, sized once per detector.

use std::f32::consts::PI;

/// Power spectrum of real frames of a fixed power-of-two length `n`.
#[derive(Debug, Clone)]
pub struct PowerFft {
    n: usize,
    /// `e^{-2πik/(n/2)}` for `k < n/4`: the complex FFT's twiddles.
    twiddles: Vec<(f32, f32)>,
    /// `e^{-2πik/n}` for `k <= n/2`: the real-unpacking twiddles.
    unpack: Vec<(f32, f32)>,
    bit_reverse: Vec<usize>,
    re: Vec<f32>,
    im: Vec<f32>,
}

impl PowerFft {
    /// An FFT for frames of `n` samples (`n` a power of two, at least 4).
    #[must_use]
    pub fn new(n: usize) -> Self {
        assert!(
            n.is_power_of_two() && n >= 4,
            "FFT length must be a power of two"
        );
        let m = n / 2;
        let bits = m.trailing_zeros();
        let angle = |k: usize, len: usize| -2.0 * PI * k as f32 / len as f32;
        Self {
            n,
            twiddles: (0..m / 2)
                .map(|k| (angle(k, m).cos(), angle(k, m).sin()))
                .collect(),
            unpack: (0..=m)
                .map(|k| (angle(k, n).cos(), angle(k, n).sin()))
                .collect(),
            bit_reverse: (0..m)
                .map(|i| {
                    if bits == 0 {
                        0
                    } else {
                        i.reverse_bits() >> (usize::BITS - bits)
                    }
                })
                .collect(),
            re: vec![0.0; m],
            im: vec![0.0; m],
        }
    }

    /// Writes `|X[k]|^2` for `k` in `0..power.len()` (at most `n/2 + 1` bins) of the real
    /// frame `x` (`n` samples).
    pub fn power(&mut self, x: &[f32], power: &mut [f32]) {
        assert_eq!(x.len(), self.n, "frame must have the FFT's length");
        assert!(power.len() <= self.n / 2 + 1, "too many bins requested");
        let m = self.n / 2;
        // Pack even samples as real parts and odd ones as imaginary parts, bit-reversed.
        for (i, &j) in self.bit_reverse.iter().enumerate() {
            self.re[j] = x[2 * i];
            self.im[j] = x[2 * i + 1];
        }
        let mut half = 1;
        while half < m {
            let stride = m / (2 * half);
            for start in (0..m).step_by(2 * half) {
                for k in 0..half {
                    let (wr, wi) = self.twiddles[k * stride];
                    let (a, b) = (start + k, start + k + half);
                    let tr = self.re[b] * wr - self.im[b] * wi;
                    let ti = self.re[b] * wi + self.im[b] * wr;
                    self.re[b] = self.re[a] - tr;
                    self.im[b] = self.im[a] - ti;
                    self.re[a] += tr;
                    self.im[a] += ti;
                }
            }
            half *= 2;
        }
        for (k, out) in power.iter_mut().enumerate() {
            let (zr, zi) = (self.re[k % m], self.im[k % m]);
            let (cr, ci) = (self.re[(m - k) % m], -self.im[(m - k) % m]);
            // Even part (Z[k] + conj Z[m-k]) / 2, odd part (Z[k] - conj Z[m-k]) / 2i.
            let (er, ei) = (0.5 * (zr + cr), 0.5 * (zi + ci));
            let (or, oi) = (0.5 * (zi - ci), -0.5 * (zr - cr));
            let (wr, wi) = self.unpack[k];
            let xr = er + wr * or - wi * oi;
            let xi = ei + wr * oi + wi * or;
            *out = xr * xr + xi * xi;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_power(x: &[f32], bins: usize) -> Vec<f32> {
        let n = x.len();
        (0..bins)
            .map(|k| {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (t, &v) in x.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (k * t) as f64 / n as f64;
                    re += f64::from(v) * a.cos();
                    im += f64::from(v) * a.sin();
                }
                (re * re + im * im) as f32
            })
            .collect()
    }

    #[test]
    fn matches_a_naive_dft() {
        for n in [4usize, 8, 256, 512] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 113) as f32 / 56.0 - 1.0) + (i as f32 * 0.3).sin())
                .collect();
            let mut fft = PowerFft::new(n);
            let mut got = vec![0.0; n / 2 + 1];
            fft.power(&x, &mut got);
            let want = naive_power(&x, n / 2 + 1);
            let peak = want.iter().copied().fold(0.0f32, f32::max);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * peak, "n={n}: {g} vs {w}");
            }
        }
    }
}
