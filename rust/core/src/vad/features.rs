//! The native detector's features: cheap spectral measures of each 10 ms frame, relative to
//! a running noise floor, stacked with a short causal context.
//!
//! Per frame (a 25 ms Hann window ending at the frame's end, a 512- or 256-point FFT so
//! that bins are 31.25 Hz wide at both rates), with `L_b` the natural log of the power in
//! [`BANDS`] mel-spaced bands over 100–4000 Hz:
//!
//! * band SNRs `L_b - floor_b`, where the floor is the minimum of the smoothed `L_b` over
//!   the last 1.5–1.75 s (minimum statistics: stationary noise and hum sink into it);
//! * the spectral shape `L_b - mean(L)` (gain-independent);
//! * the total SNR, the absolute level (clamped, so that loudness alone never means
//!   speech), the spectral flatness below and above 1 kHz (harmonic speech is peaky, noise
//!   is flat) and the positive spectral flux;
//! * stationarity: the spread of each band's log energy over the last 80 and 240 ms,
//!   averaged over bands (tones and steady noise barely move; speech moves a lot);
//! * the total log energy relative to its running mean over about 1 s and 4 s: a talker
//!   close to the microphone stands out from babble, whose floor is low but whose mean is
//!   not;
//! * tonality: how much of the 100–4000 Hz power sits in the two strongest 5-bin peaks (a
//!   beep, a dial tone or a DTMF pair puts nearly all of it there; voiced speech spreads it
//!   over many harmonics).
//!
//! Only 0–4 kHz is used, so one model serves 8 and 16 kHz. The model input is the current
//! frame's features, their mean over the previous 3 frames and over the 9 before those.

use std::collections::VecDeque;

use super::fft::PowerFft;

/// Mel-spaced bands between [`LOW_HZ`] and [`HIGH_HZ`].
pub const BANDS: usize = 16;
/// Features per frame.
pub const FRAME_FEATURES: usize = 2 * BANDS + 10;
/// Model inputs: the frame, the recent-context mean and the older-context mean.
pub const INPUTS: usize = 3 * FRAME_FEATURES;
/// Frames averaged in the recent and the older context.
const RECENT: usize = 3;
const OLDER: usize = 9;
const LOW_HZ: f32 = 100.0;
const HIGH_HZ: f32 = 4000.0;
const FLATNESS_SPLIT_HZ: f32 = 1000.0;
const BIN_HZ: f32 = 31.25;
/// Power floor (about -100 dB re full scale), so digital silence has a finite log.
const EPS: f32 = 1e-10;
/// Noise floor tracking: smoothing of the log energies, frames per minimum block, blocks kept.
const SMOOTH: f32 = 0.4;
const BLOCK: usize = 25;
const BLOCKS: usize = 6;
/// Features are scaled to roughly unit range before the model's own standardisation.
const LOG_SCALE: f32 = 0.25;
/// Frames over which the short and the long log-energy spread are measured.
const SPREAD_SHORT: usize = 8;
const SPREAD_LONG: usize = 24;
/// Smoothing factors of the running means of the total log energy (about 1 s and 4 s).
const MEAN_FAST: f32 = 1.0 / 100.0;
const MEAN_SLOW: f32 = 1.0 / 400.0;
/// Bins summed per spectral peak in the tonality measure (a Hann main lobe at 25 ms).
const PEAK_BINS: usize = 5;
/// Bins of the power spectrum kept (0–4000 Hz): the most the tonality measure looks at.
const KEPT_BINS: usize = (HIGH_HZ / BIN_HZ) as usize + 1;

/// Sliding minimum over about `BLOCK * BLOCKS` frames, per tracked value.
#[derive(Debug, Clone)]
struct MinTracker {
    smoothed: Vec<f32>,
    current: Vec<f32>,
    blocks: VecDeque<Vec<f32>>,
    frames_in_block: usize,
    started: bool,
}

impl MinTracker {
    fn new(n: usize) -> Self {
        Self {
            smoothed: vec![0.0; n],
            current: vec![f32::INFINITY; n],
            blocks: VecDeque::with_capacity(BLOCKS + 1),
            frames_in_block: 0,
            started: false,
        }
    }

    /// Adds one frame of log energies and writes `value - floor` into `snr`.
    fn update(&mut self, values: &[f32], snr: &mut [f32]) {
        for (i, &v) in values.iter().enumerate() {
            let s = if self.started {
                self.smoothed[i] + SMOOTH * (v - self.smoothed[i])
            } else {
                v
            };
            self.smoothed[i] = s;
            self.current[i] = self.current[i].min(s);
            let floor = self
                .blocks
                .iter()
                .fold(self.current[i], |m, block| m.min(block[i]));
            snr[i] = v - floor;
        }
        self.started = true;
        self.frames_in_block += 1;
        if self.frames_in_block == BLOCK {
            self.frames_in_block = 0;
            let full = std::mem::replace(&mut self.current, vec![f32::INFINITY; values.len()]);
            if self.blocks.len() == BLOCKS {
                if let Some(mut oldest) = self.blocks.pop_front() {
                    oldest.copy_from_slice(&full);
                    self.blocks.push_back(oldest);
                    return;
                }
            }
            self.blocks.push_back(full);
        }
    }
}

/// Computes model inputs for consecutive 10 ms frames of one stream.
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    hop: usize,
    window: Vec<f32>,
    /// The last `window.len()` samples, scaled to -1..1.
    history: Vec<f32>,
    fft: PowerFft,
    frame: Vec<f32>,
    power: Vec<f32>,
    /// `(first bin, weights)` of each band's triangular filter.
    bands: Vec<(usize, Vec<f32>)>,
    flat_low: (usize, usize),
    flat_high: (usize, usize),
    log_bands: Vec<f32>,
    previous_log_bands: Option<Vec<f32>>,
    /// Log band energies of the last `SPREAD_LONG` frames, newest last.
    band_history: VecDeque<[f32; BANDS]>,
    /// Running means of the total log energy, fast and slow (`None` before the first frame).
    level_means: Option<(f32, f32)>,
    tracked: Vec<f32>,
    snr: Vec<f32>,
    floors: MinTracker,
    /// Per-frame features of the previous `RECENT + OLDER` frames, newest last.
    past: VecDeque<[f32; FRAME_FEATURES]>,
}

fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

fn bin(hz: f32) -> usize {
    (hz / BIN_HZ).round() as usize
}

impl FeatureExtractor {
    /// An extractor for 10 ms frames at `sample_rate` (8000 or 16000).
    #[must_use]
    pub fn new(sample_rate: u32) -> Self {
        let hop = sample_rate as usize / 100;
        let window_len = sample_rate as usize / 40;
        let n_fft = (sample_rate as f32 / BIN_HZ) as usize;
        let window: Vec<f32> = (0..window_len)
            .map(|i| {
                0.5 - 0.5
                    * (2.0 * std::f32::consts::PI * (i as f32 + 0.5) / window_len as f32).cos()
            })
            .collect();
        let energy: f32 = window.iter().map(|w| w * w).sum();
        let norm = energy.sqrt().recip();
        let window = window.into_iter().map(|w| w * norm).collect();
        let (lo, hi) = (hz_to_mel(LOW_HZ), hz_to_mel(HIGH_HZ));
        let edges: Vec<f32> = (0..BANDS + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f32 / (BANDS + 1) as f32) / BIN_HZ)
            .collect();
        let bands = (0..BANDS)
            .map(|b| {
                let (left, centre, right) = (edges[b], edges[b + 1], edges[b + 2]);
                let first = left.ceil() as usize;
                let last = right.floor() as usize;
                let weights = (first..=last)
                    .map(|k| {
                        let k = k as f32;
                        if k <= centre {
                            (k - left) / (centre - left)
                        } else {
                            (right - k) / (right - centre)
                        }
                        .max(0.0)
                    })
                    .collect();
                (first, weights)
            })
            .collect();
        Self {
            hop,
            history: vec![0.0; window_len],
            window,
            fft: PowerFft::new(n_fft),
            frame: vec![0.0; n_fft],
            power: vec![0.0; KEPT_BINS],
            bands,
            flat_low: (bin(LOW_HZ), bin(FLATNESS_SPLIT_HZ)),
            flat_high: (bin(FLATNESS_SPLIT_HZ), bin(HIGH_HZ)),
            log_bands: vec![0.0; BANDS],
            previous_log_bands: None,
            tracked: vec![0.0; BANDS + 1],
            snr: vec![0.0; BANDS + 1],
            floors: MinTracker::new(BANDS + 1),
            past: VecDeque::with_capacity(RECENT + OLDER + 1),
            band_history: VecDeque::with_capacity(SPREAD_LONG + 1),
            level_means: None,
        }
    }

    /// Samples per frame (10 ms).
    #[must_use]
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Forgets the stream.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
        self.previous_log_bands = None;
        self.floors = MinTracker::new(BANDS + 1);
        self.past.clear();
        self.band_history.clear();
        self.level_means = None;
    }

    /// Consumes one frame of [`hop`](Self::hop) samples and writes the model input.
    pub fn process(&mut self, frame: &[i16], input: &mut [f32; INPUTS]) {
        assert_eq!(frame.len(), self.hop, "a frame is 10 ms of samples");
        self.history.copy_within(self.hop.., 0);
        let keep = self.history.len() - self.hop;
        for (h, &s) in self.history[keep..].iter_mut().zip(frame) {
            *h = f32::from(s) / 32768.0;
        }
        for ((f, h), w) in self.frame.iter_mut().zip(&self.history).zip(&self.window) {
            *f = h * w;
        }
        self.fft.power(&self.frame, &mut self.power);

        let mut features = [0.0f32; FRAME_FEATURES];
        let mut total = 0.0;
        for (b, (first, weights)) in self.bands.iter().enumerate() {
            let p: f32 = self.power[*first..]
                .iter()
                .zip(weights)
                .map(|(p, w)| p * w)
                .sum();
            total += p;
            self.log_bands[b] = (p + EPS).ln();
        }
        let log_total = (total + EPS).ln();
        self.tracked[..BANDS].copy_from_slice(&self.log_bands);
        self.tracked[BANDS] = log_total;
        self.floors.update(&self.tracked, &mut self.snr);
        let mean = self.log_bands.iter().sum::<f32>() / BANDS as f32;
        for b in 0..BANDS {
            features[b] = (self.snr[b] * LOG_SCALE).clamp(-2.0, 6.0);
            features[BANDS + b] = (self.log_bands[b] - mean) * LOG_SCALE;
        }
        let extra = &mut features[2 * BANDS..];
        extra[0] = (self.snr[BANDS] * LOG_SCALE).clamp(-2.0, 6.0);
        extra[1] = ((log_total + 12.0) * 0.2).clamp(-3.0, 1.0);
        extra[2] = flatness(&self.power[self.flat_low.0..self.flat_low.1]);
        extra[3] = flatness(&self.power[self.flat_high.0..self.flat_high.1]);
        extra[4] = match &self.previous_log_bands {
            Some(previous) => {
                self.log_bands
                    .iter()
                    .zip(previous)
                    .map(|(now, before)| (now - before).max(0.0))
                    .sum::<f32>()
                    / BANDS as f32
                    * 0.5
            }
            None => 0.0,
        };
        let mut bands = [0.0f32; BANDS];
        bands.copy_from_slice(&self.log_bands);
        if self.band_history.len() == SPREAD_LONG {
            self.band_history.pop_front();
        }
        self.band_history.push_back(bands);
        extra[5] = spread(&self.band_history, SPREAD_SHORT);
        extra[6] = spread(&self.band_history, SPREAD_LONG);
        let (fast, slow) = self.level_means.unwrap_or((log_total, log_total));
        extra[7] = ((log_total - fast) * LOG_SCALE).clamp(-4.0, 4.0);
        extra[8] = ((log_total - slow) * LOG_SCALE).clamp(-4.0, 4.0);
        extra[9] = tonality(&self.power[self.flat_low.0..self.flat_high.1]);
        self.level_means = Some((
            fast + MEAN_FAST * (log_total - fast),
            slow + MEAN_SLOW * (log_total - slow),
        ));
        match &mut self.previous_log_bands {
            Some(previous) => previous.copy_from_slice(&self.log_bands),
            None => self.previous_log_bands = Some(self.log_bands.clone()),
        }

        input[..FRAME_FEATURES].copy_from_slice(&features);
        let (recent, older) = input[FRAME_FEATURES..].split_at_mut(FRAME_FEATURES);
        context_mean(self.past.iter().rev().take(RECENT), recent);
        context_mean(self.past.iter().rev().skip(RECENT).take(OLDER), older);
        if self.past.len() == RECENT + OLDER {
            self.past.pop_front();
        }
        self.past.push_back(features);
    }
}

/// `mean(ln p) - ln(mean p)`, scaled: 0 for a flat spectrum, very negative for a peaky one.
///
/// The log-sum is taken as one logarithm per 16 bins of an `f64` product (each factor is at
/// least `EPS`, so 16 of them stay far above `f64`'s smallest normal number).
fn flatness(power: &[f32]) -> f32 {
    let n = power.len() as f32;
    let log_sum: f64 = power
        .chunks(16)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&p| f64::from(p + EPS))
                .product::<f64>()
                .ln()
        })
        .sum();
    let mean = power.iter().sum::<f32>() / n;
    ((log_sum as f32 / n - (mean + EPS).ln()) * 0.5).max(-4.0)
}

/// `-ln(1 - f + 0.01)`, scaled, where `f` is the share of the power in the two strongest
/// non-overlapping [`PEAK_BINS`]-bin windows: under 0.1 for white noise, digital silence
/// or many equal harmonics, about 1.15 for one pure tone and 1.0 for a dial tone.
fn tonality(power: &[f32]) -> f32 {
    // Every window's sum, slid along once (both searches below read the same sums).
    let mut windows = [0.0f32; KEPT_BINS];
    let windows = &mut windows[..=power.len() - PEAK_BINS];
    let mut sum: f32 = power[..PEAK_BINS].iter().sum();
    for (k, window) in windows.iter_mut().enumerate() {
        if k > 0 {
            sum += power[k + PEAK_BINS - 1] - power[k - 1];
        }
        *window = sum;
    }
    // The strongest window whose start lies at least PEAK_BINS from `avoid`'s (any if None).
    let strongest = |avoid: Option<usize>| {
        let mut best = (0, 0.0f32);
        for (k, &sum) in windows.iter().enumerate() {
            let allowed = avoid.is_none_or(|a| k.abs_diff(a) >= PEAK_BINS);
            if allowed && sum > best.1 {
                best = (k, sum);
            }
        }
        best
    };
    let (first, p1) = strongest(None);
    let (_, p2) = strongest(Some(first));
    let n = power.len() as f32;
    let total = power.iter().sum::<f32>() + n * EPS;
    let share = ((p1 + p2 + 2.0 * PEAK_BINS as f32 * EPS) / total).min(1.0);
    -(1.0 - share + 0.01).ln() * LOG_SCALE
}

/// Standard deviation of each band's log energy over the newest `frames` entries of
/// `history`, averaged over bands and scaled (0 for a perfectly steady sound).
fn spread(history: &VecDeque<[f32; BANDS]>, frames: usize) -> f32 {
    let n = history.len().min(frames);
    let recent = || history.iter().skip(history.len() - n);
    let mut mean = [0.0f32; BANDS];
    for frame in recent() {
        for (m, x) in mean.iter_mut().zip(frame) {
            *m += x;
        }
    }
    let inv = 1.0 / n as f32;
    let mut variance = [0.0f32; BANDS];
    for frame in recent() {
        for ((v, m), x) in variance.iter_mut().zip(&mean).zip(frame) {
            let d = x - m * inv;
            *v += d * d;
        }
    }
    variance.iter().map(|v| (v * inv).sqrt()).sum::<f32>() / BANDS as f32 * LOG_SCALE
}

/// Mean of the given frames into `out` (zeros when there are none yet).
fn context_mean<'a>(frames: impl Iterator<Item = &'a [f32; FRAME_FEATURES]>, out: &mut [f32]) {
    out.fill(0.0);
    let mut count = 0;
    for frame in frames {
        for (o, f) in out.iter_mut().zip(frame) {
            *o += f;
        }
        count += 1;
    }
    if count > 0 {
        let scale = 1.0 / count as f32;
        for o in out.iter_mut() {
            *o *= scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, amplitude: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amplitude * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin())
                    as i16
            })
            .collect()
    }

    fn run(rate: u32, samples: &[i16]) -> Vec<[f32; INPUTS]> {
        let mut fx = FeatureExtractor::new(rate);
        samples
            .chunks_exact(fx.hop())
            .map(|frame| {
                let mut input = [0.0; INPUTS];
                fx.process(frame, &mut input);
                input
            })
            .collect()
    }

    #[test]
    fn bands_cover_100_to_4000_hz_in_order() {
        let fx = FeatureExtractor::new(16000);
        let firsts: Vec<usize> = fx.bands.iter().map(|(first, _)| *first).collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(firsts[0], 4);
        let (last_first, last_weights) = fx.bands.last().unwrap();
        assert!(last_first + last_weights.len() - 1 <= 128);
    }

    #[test]
    fn silence_has_zero_snr_and_a_low_level() {
        let inputs = run(16000, &[0; 1600]);
        let last = inputs.last().unwrap();
        assert!(last[..BANDS].iter().all(|&x| x.abs() < 1e-6));
        assert!(last[2 * BANDS + 1] < -2.0);
    }

    #[test]
    fn a_tone_after_silence_raises_its_band_snr_then_fades_into_the_floor() {
        let mut samples = vec![0i16; 1600];
        samples.extend(tone(16000, 1000.0, 8000.0, 16000 * 3));
        let inputs = run(16000, &samples);
        // Just after the onset the total SNR is large; 2.5 s into the steady tone it is gone.
        assert!(inputs[15][2 * BANDS] > 3.0);
        assert!(inputs[10 + 250][2 * BANDS].abs() < 0.05);
        // The tone is peaky: low flatness below 1 kHz? It sits at 1 kHz, so above.
        assert!(inputs[20][2 * BANDS + 3] < -1.0);
    }

    #[test]
    fn tonality_separates_tones_from_noise_and_harmonics() {
        const TONALITY: usize = 2 * BANDS + 9;
        let mut seed = 7u32;
        let noise: Vec<i16> = (0..16000)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((seed >> 16) as f32 - 32768.0) as i16 / 8
            })
            .collect();
        let dial: Vec<i16> = tone(16000, 350.0, 4000.0, 16000)
            .iter()
            .zip(tone(16000, 440.0, 4000.0, 16000))
            .map(|(a, b)| a + b)
            .collect();
        // Twenty equal harmonics of 150 Hz: voiced-speech-like, power spread over many peaks.
        let harmonics: Vec<i16> = (0..16000)
            .map(|i| {
                let t = i as f32 / 16000.0;
                (1..=20)
                    .map(|h| (2.0 * std::f32::consts::PI * 150.0 * h as f32 * t).sin())
                    .sum::<f32>()
                    * 800.0
            })
            .map(|x| x as i16)
            .collect();
        let at = |samples: &[i16]| run(16000, samples)[50][TONALITY];
        // All the power in one or two peaks: -ln(0.01) / 4.
        let full = -(0.01f32).ln() * LOG_SCALE;
        assert!((at(&tone(16000, 1000.0, 8000.0, 16000)) - full).abs() < 0.01);
        // A dial tone's two peaks are 90 Hz apart, so the windows catch about 97 % of it.
        assert!(at(&dial) > 0.85 * full, "{}", at(&dial));
        assert!(at(&noise) < 0.1, "{}", at(&noise));
        assert!(at(&harmonics) < 0.05, "{}", at(&harmonics));
        // Digital silence counts as flat.
        assert!(at(&vec![0; 16000]) < 0.05);
    }

    #[test]
    fn eight_and_sixteen_khz_agree_on_band_shape() {
        let a = run(16000, &tone(16000, 500.0, 8000.0, 16000));
        let b = run(8000, &tone(8000, 500.0, 8000.0, 8000));
        for band in 0..BANDS {
            let (x, y) = (a[50][BANDS + band], b[50][BANDS + band]);
            assert!((x - y).abs() < 0.35, "band {band}: {x} vs {y}");
        }
    }
}
