//! Answering-machine beeps: a steady pure tone, found in the spectrum of each 10 ms frame.
//!
//! A frame (a 25 ms Hann window, hopped by 10 ms) is a tone when one main lobe (five 31.25 Hz
//! bins) holds at least 80 % of its 100–4000 Hz power: a sinusoid puts ~99 % there, white
//! noise 10 dB below it still leaves ~85 %, while speech spreads its power over harmonics and
//! formants. A beep is a run of such frames at one pitch and one level (speech's steadiest
//! vowels drift in both within ~80 ms) lasting at least `min_ms`; it is reported when it
//! ends, which is when a machine starts recording.

use crate::error::CoreError;
use crate::vad::PowerFft;

/// Hop of the analysis.
pub const FRAME_MS: u32 = 10;
/// Spectral resolution: the FFT length is the sample rate over this.
const BIN_HZ: f64 = 31.25;
/// Bins of a Hann window's main lobe at 25 ms.
const PEAK_BINS: usize = 5;
/// Share of the 100–4000 Hz power the strongest main lobe must hold.
const MIN_PEAK_SHARE: f64 = 0.8;
/// The band whose power is shared out, and the band a beep's pitch lies in (Hz).
const POWER_BAND_HZ: (f64, f64) = (100.0, 4000.0);
const PITCH_BAND_HZ: (f64, f64) = (300.0, 3400.0);
/// Frames quieter than this RMS (about -40 dBFS) are not tones, however pure.
const MIN_RMS: f64 = 330.0;
/// How far a frame's peak bin and level may stray from the run's first frame's.
const PITCH_TOLERANCE_BINS: usize = 1;
const LEVEL_TOLERANCE_DB: f64 = 2.0;

/// One beep: when it started and ended (samples from the first pushed) and its pitch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beep {
    pub start_sample: u64,
    pub end_sample: u64,
    pub frequency_hz: f32,
}

/// A tone frame: its peak bin, its pitch (interpolated) and its power in dB.
#[derive(Debug, Clone, Copy)]
struct Tone {
    bin: usize,
    hz: f64,
    db: f64,
}

/// The run of tone frames in progress.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_frame: u64,
    frames: u64,
    tone: Tone,
}

/// Streaming beep detector over PCM16 mono of any chunking.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    sample_rate: u32,
    hop: usize,
    min_frames: u64,
    window: Vec<f32>,
    /// The last window's worth of samples (zeros before the stream).
    pending: Vec<f32>,
    fft: PowerFft,
    frame: Vec<f32>,
    power: Vec<f32>,
    power_bins: (usize, usize),
    frames_done: u64,
    run: Option<Run>,
}

impl BeepDetector {
    /// A detector at `sample_rate` (8 or 16 kHz, as the VAD) for tones of at least `min_ms`.
    ///
    /// # Errors
    /// `InvalidArgument` for another rate, or when `min_ms` is not 10..=5000.
    pub fn new(sample_rate: u32, min_ms: u32) -> Result<Self, CoreError> {
        if sample_rate != 8000 && sample_rate != 16000 {
            return Err(CoreError::InvalidArgument(format!(
                "BeepDetector supports sample_rate 8000 or 16000 Hz, got {sample_rate}"
            )));
        }
        if !(FRAME_MS..=5000).contains(&min_ms) {
            return Err(CoreError::InvalidArgument(format!(
                "min_ms must be 10 to 5000 milliseconds, got {min_ms}"
            )));
        }
        let rate = sample_rate as usize;
        let window_len = rate / 40;
        let n_fft = (f64::from(sample_rate) / BIN_HZ) as usize;
        let window = (0..window_len)
            .map(|i| {
                let phase = std::f64::consts::TAU * (i as f64 + 0.5) / window_len as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        let bin = |hz: f64| (hz / BIN_HZ).round() as usize;
        let mut detector = Self {
            sample_rate,
            hop: rate / 100,
            min_frames: u64::from(min_ms.div_ceil(FRAME_MS)),
            window,
            pending: Vec::with_capacity(window_len),
            fft: PowerFft::new(n_fft),
            frame: vec![0.0; n_fft],
            power: vec![0.0; n_fft / 2 + 1],
            power_bins: (bin(POWER_BAND_HZ.0), bin(POWER_BAND_HZ.1)),
            frames_done: 0,
            run: None,
        };
        detector.reset();
        Ok(detector)
    }

    #[must_use]
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Forgets the stream: no tone in progress, stream time zero.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.pending.resize(self.window.len() - self.hop, 0.0);
        self.frames_done = 0;
        self.run = None;
    }

    /// Pushes samples; returns the beeps that ended within them.
    #[must_use]
    pub fn push(&mut self, samples: &[i16]) -> Vec<Beep> {
        let mut beeps = Vec::new();
        for &sample in samples {
            self.pending.push(f32::from(sample));
            if self.pending.len() == self.window.len() {
                let tone = self.frame_tone();
                self.pending.drain(..self.hop);
                if let Some(beep) = self.advance(tone) {
                    beeps.push(beep);
                }
            }
        }
        beeps
    }

    /// The current window's tone, if it is one.
    fn frame_tone(&mut self) -> Option<Tone> {
        let energy: f64 = self.pending.iter().map(|&x| f64::from(x * x)).sum();
        if energy < MIN_RMS * MIN_RMS * self.pending.len() as f64 {
            return None;
        }
        for ((out, &x), &w) in self.frame.iter_mut().zip(&self.pending).zip(&self.window) {
            *out = x * w;
        }
        self.fft.power(&self.frame, &mut self.power);
        let band = &self.power[self.power_bins.0..=self.power_bins.1];
        let total: f64 = band.iter().map(|&p| f64::from(p)).sum();
        let (mut best, mut best_sum) = (0, 0.0);
        for (k, lobe) in band.windows(PEAK_BINS).enumerate() {
            let sum: f64 = lobe.iter().map(|&p| f64::from(p)).sum();
            if sum > best_sum {
                (best, best_sum) = (k, sum);
            }
        }
        if best_sum < MIN_PEAK_SHARE * total {
            return None;
        }
        let bin = self.power_bins.0 + best + PEAK_BINS / 2;
        let hz = interpolated_peak(&self.power, bin) * BIN_HZ;
        (PITCH_BAND_HZ.0..=PITCH_BAND_HZ.1)
            .contains(&hz)
            .then(|| Tone {
                bin,
                hz,
                db: 10.0 * total.log10(),
            })
    }

    /// Moves the run on by one frame; a run long enough that just ended is a beep.
    fn advance(&mut self, tone: Option<Tone>) -> Option<Beep> {
        let index = self.frames_done;
        self.frames_done += 1;
        if let (Some(tone), Some(run)) = (tone, self.run.as_mut()) {
            let same_pitch = tone.bin.abs_diff(run.tone.bin) <= PITCH_TOLERANCE_BINS;
            if same_pitch && (tone.db - run.tone.db).abs() <= LEVEL_TOLERANCE_DB {
                run.frames += 1;
                return None;
            }
        }
        let ended = self.run.take();
        self.run = tone.map(|tone| Run {
            first_frame: index,
            frames: 1,
            tone,
        });
        let run = ended?;
        (run.frames >= self.min_frames).then(|| {
            // A frame's window ends at its hop's end: the tone began a window before its first.
            let hop = self.hop as u64;
            let lead = (self.window.len() - self.hop) as u64;
            Beep {
                start_sample: ((run.first_frame + 1) * hop).saturating_sub(lead + hop),
                end_sample: (run.first_frame + run.frames) * hop,
                frequency_hz: run.tone.hz as f32,
            }
        })
    }
}

/// The peak's position in bins, from a parabola through `power`'s log at `bin` and its neighbours.
fn interpolated_peak(power: &[f32], bin: usize) -> f64 {
    let at = |k: usize| f64::from(power[k]).max(1e-12).ln();
    if bin == 0 || bin + 1 >= power.len() {
        return bin as f64;
    }
    let (left, centre, right) = (at(bin - 1), at(bin), at(bin + 1));
    let curvature = left - 2.0 * centre + right;
    if curvature >= 0.0 {
        return bin as f64;
    }
    bin as f64 + (0.5 * (left - right) / curvature).clamp(-0.5, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711;

    fn tone(rate: u32, hz: f64, ms: u32, amplitude: f64) -> Vec<i16> {
        let n = (rate * ms / 1000) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (amplitude * (std::f64::consts::TAU * hz * t).sin()).round() as i16
            })
            .collect()
    }

    /// Deterministic white noise (an LCG), `rms` loud.
    fn noise(n: usize, rms: f64, seed: u64) -> Vec<i16> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                ((u - 0.5) * rms * 12f64.sqrt()).round() as i16
            })
            .collect()
    }

    fn through_ulaw(samples: &[i16]) -> Vec<i16> {
        samples
            .iter()
            .map(|&s| g711::ulaw_decode_sample(g711::ulaw_encode_sample(s)))
            .collect()
    }

    #[test]
    fn a_beep_after_silence_is_found_at_its_end_with_its_pitch() {
        for rate in [8000, 16000] {
            for hz in [440.0, 1000.0, 1400.0, 2100.0] {
                let mut detector = BeepDetector::new(rate, 120).unwrap();
                let mut audio = vec![0i16; (rate / 2) as usize];
                audio.extend(tone(rate, hz, 400, 8000.0));
                audio.extend(vec![0i16; (rate / 5) as usize]);
                let beeps = detector.push(&audio);
                assert_eq!(beeps.len(), 1, "{rate} Hz, {hz} Hz tone: {beeps:?}");
                let beep = beeps[0];
                let ms = |s: u64| s * 1000 / u64::from(rate);
                assert!(ms(beep.start_sample).abs_diff(500) <= 20, "{beep:?}");
                assert!(ms(beep.end_sample).abs_diff(900) <= 20, "{beep:?}");
                assert!(
                    (f64::from(beep.frequency_hz) - hz).abs() < hz * 0.01,
                    "{beep:?}"
                );
            }
        }
    }

    #[test]
    fn a_beep_over_a_phone_line_in_noise_is_found_in_any_chunking() {
        let rate = 8000;
        let mut audio = noise(4000, 100.0, 7);
        let beep: Vec<i16> = tone(rate, 850.0, 600, 6000.0)
            .iter()
            .zip(noise(4800, 100.0, 8))
            .map(|(&t, n)| t.saturating_add(n))
            .collect();
        audio.extend(beep);
        audio.extend(noise(4000, 100.0, 9));
        let audio = through_ulaw(&audio);
        let whole = BeepDetector::new(rate, 120).unwrap().push(&audio);
        assert_eq!(whole.len(), 1, "{whole:?}");
        for chunk in [1, 37, 160, 333] {
            let mut detector = BeepDetector::new(rate, 120).unwrap();
            let pieces: Vec<Beep> = audio.chunks(chunk).flat_map(|c| detector.push(c)).collect();
            assert_eq!(pieces, whole, "chunks of {chunk}");
        }
    }

    #[test]
    fn noise_two_tones_short_blips_and_quiet_tones_are_not_beeps() {
        let rate = 8000;
        let mut detector = BeepDetector::new(rate, 120).unwrap();
        assert!(detector.push(&noise(16000, 3000.0, 1)).is_empty());
        // DTMF "5": 770 + 1336 Hz.
        let dtmf: Vec<i16> = tone(rate, 770.0, 500, 5000.0)
            .iter()
            .zip(tone(rate, 1336.0, 500, 5000.0))
            .map(|(&a, b)| a.saturating_add(b))
            .collect();
        assert!(detector.push(&dtmf).is_empty());
        let mut blip = tone(rate, 1000.0, 60, 8000.0);
        blip.extend(vec![0i16; 800]);
        assert!(
            detector.push(&blip).is_empty(),
            "60 ms is shorter than min_ms"
        );
        let mut quiet = tone(rate, 1000.0, 500, 200.0);
        quiet.extend(vec![0i16; 800]);
        assert!(detector.push(&quiet).is_empty(), "below the level floor");
        let mut low = tone(rate, 150.0, 500, 8000.0);
        low.extend(vec![0i16; 800]);
        assert!(
            detector.push(&low).is_empty(),
            "150 Hz hum is below the band"
        );
    }

    #[test]
    fn a_change_of_pitch_ends_one_beep_and_starts_another() {
        let rate = 16000;
        let mut detector = BeepDetector::new(rate, 100).unwrap();
        let mut audio = tone(rate, 700.0, 300, 8000.0);
        audio.extend(tone(rate, 1400.0, 300, 8000.0));
        audio.extend(vec![0i16; 1600]);
        let beeps = detector.push(&audio);
        assert_eq!(beeps.len(), 2, "{beeps:?}");
        assert!((beeps[0].frequency_hz - 700.0).abs() < 10.0);
        assert!((beeps[1].frequency_hz - 1400.0).abs() < 10.0);
    }

    #[test]
    fn reset_starts_stream_time_again_and_settings_are_checked() {
        let rate = 8000;
        let mut detector = BeepDetector::new(rate, 120).unwrap();
        let mut audio = tone(rate, 1000.0, 300, 8000.0);
        audio.extend(vec![0i16; 800]);
        let first = detector.push(&audio);
        detector.reset();
        assert_eq!(detector.push(&audio), first);
        assert!(matches!(
            BeepDetector::new(24000, 120),
            Err(CoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            BeepDetector::new(8000, 5),
            Err(CoreError::InvalidArgument(_))
        ));
    }
}
