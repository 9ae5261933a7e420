//! Framing, endpointing and pre-roll: turns per-frame speech probabilities into start/end events.
//!
//! [`Endpointer`] cuts pushed audio of any length into fixed frames, asks a scorer for each
//! frame's speech probability, and runs a hysteresis state machine over them:
//!
//! * a frame is *speech* while quiet if `p >= threshold`; while speaking, a frame only counts
//!   as silence if `p < threshold - 0.15` (the deactivation threshold), as in `Silero` and `LiveKit`;
//! * **start** is decided once `start_ms` of speech frames have accumulated within
//!   `3 * start_ms` of a candidate onset, with gaps shorter than half of `start_ms` tolerated
//!   (syllables, stop closures); it reports the candidate onset. A candidate that runs out of
//!   that span is dropped (sparse flicker is not speech), which also bounds the pre-roll ring;
//! * **end** is decided once `stop_ms` have passed since the first silence frame with no
//!   frame reaching `threshold` in between; it reports that first silence frame. With a
//!   [`NoiseHold`] (the native backend's), a segment that began out of noise the detector
//!   half-believes holds longer: noise buries the soft ends of words around a pause, so a
//!   pause shorter than `stop_ms` looks longer than it is.
//!
//! Positions are sample counts since the first pushed sample (or [`Endpointer::reset`]).
//! Every event is returned by the push that completed the frame deciding it. A start event
//! carries the audio from `preroll_ms` before its onset up to the decision, from a ring of
//! recent samples, so the consumer can forward it and then every sample pushed after
//! [`VadEvent::decided_sample`].

use std::collections::VecDeque;

use crate::CoreError;

/// Deactivation hysteresis: while speaking, silence means `p < threshold - HYSTERESIS`.
pub const HYSTERESIS: f64 = 0.15;
/// Lowest deactivation threshold, so that a low `threshold` still leaves a way out of speech.
const MIN_NEG_THRESHOLD: f64 = 0.01;
/// The longest `start_ms`, `stop_ms` or `preroll_ms` accepted.
pub const MAX_MS: u32 = 60_000;

/// Which boundary an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Speech began at [`VadEvent::at_sample`].
    Start,
    /// Speech ended at [`VadEvent::at_sample`].
    End,
}

/// A speech boundary decided by the endpointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VadEvent {
    /// Start or end.
    pub kind: EventKind,
    /// Stream position of the boundary: the first speech sample (start) or the first
    /// sample after the speech (end).
    pub at_sample: u64,
    /// Stream position at which the boundary was decided: the end of the deciding frame.
    pub decided_sample: u64,
    /// Start events: the audio from `preroll_ms` before `at_sample` (or the stream start)
    /// up to `decided_sample`. Empty for end events.
    pub audio: Vec<i16>,
}

/// Validated endpointer settings, in samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointConfig {
    sample_rate: u32,
    frame_samples: usize,
    threshold: f64,
    start_ms: u32,
    stop_ms: u32,
    preroll_ms: u32,
}

impl EndpointConfig {
    /// Checks every setting and says what to change when one is out of range.
    ///
    /// `sample_rate` must be 8000 or 16000 and `frame_ms` a whole number of samples at it;
    /// `threshold` must lie strictly between 0 and 1; `start_ms` and `stop_ms` must cover
    /// at least one frame; all durations are at most [`MAX_MS`].
    pub fn new(
        sample_rate: u32,
        frame_ms: u32,
        threshold: f64,
        start_ms: u32,
        stop_ms: u32,
        preroll_ms: u32,
    ) -> Result<Self, CoreError> {
        let bad = |msg: String| Err(CoreError::InvalidArgument(msg));
        if sample_rate != 8000 && sample_rate != 16000 {
            return bad(format!(
                "Vad supports sample_rate 8000 or 16000 Hz, got {sample_rate}; resample the audio first (voicecore.audio.Resampler)"
            ));
        }
        if frame_ms == 0 || frame_ms > 1000 || (sample_rate / 1000 * frame_ms) == 0 {
            return bad(format!(
                "frame_ms must be between 1 and 1000, got {frame_ms}"
            ));
        }
        if !threshold.is_finite() || threshold <= 0.0 || threshold >= 1.0 {
            return bad(format!(
                "threshold must be a probability strictly between 0 and 1, got {threshold}; 0.5 is the usual choice (higher rejects more noise)"
            ));
        }
        for (name, value) in [("start_ms", start_ms), ("stop_ms", stop_ms)] {
            if value < frame_ms {
                return bad(format!(
                    "{name}={value} is below one {frame_ms} ms frame; use at least {frame_ms} ms (defaults: start_ms=200, stop_ms=500)"
                ));
            }
        }
        for (name, value) in [
            ("start_ms", start_ms),
            ("stop_ms", stop_ms),
            ("preroll_ms", preroll_ms),
        ] {
            if value > MAX_MS {
                return bad(format!(
                    "{name}={value} is above the {MAX_MS} ms limit; lower it"
                ));
            }
        }
        Ok(Self {
            sample_rate,
            frame_samples: (sample_rate / 1000 * frame_ms) as usize,
            threshold,
            start_ms,
            stop_ms,
            preroll_ms,
        })
    }

    /// The sample rate in Hz.
    #[must_use]
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples per scored frame.
    #[must_use]
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// The activation threshold.
    #[must_use]
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Speech needed before a start is decided, in ms.
    #[must_use]
    pub fn start_ms(&self) -> u32 {
        self.start_ms
    }

    /// Silence needed before an end is decided, in ms.
    #[must_use]
    pub fn stop_ms(&self) -> u32 {
        self.stop_ms
    }

    /// Audio kept before a start's onset, in ms.
    #[must_use]
    pub fn preroll_ms(&self) -> u32 {
        self.preroll_ms
    }

    fn ms_to_samples(&self, ms: u32) -> u64 {
        u64::from(ms) * u64::from(self.sample_rate) / 1000
    }
}

/// A longer hold before an end for segments that began out of noise, set by the probability
/// floor of the stream before the segment's onset (tuned for the native detector's scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseHold {
    /// The history before a segment's onset whose probabilities give its floor, in ms.
    pub window_ms: u32,
    /// With less history than this, `default_floor` stands in (the stream's first seconds).
    pub min_history_ms: u32,
    /// The percentile of the window's probabilities taken as the floor (0–100).
    pub percentile: f64,
    /// The floor assumed without enough history.
    pub default_floor: f64,
    /// Floors up to this add nothing; above it the hold grows by `ms_per_unit` per unit.
    pub offset: f64,
    /// Milliseconds of hold per unit of floor above `offset`.
    pub ms_per_unit: f64,
    /// The most hold added, in ms.
    pub max_ms: u32,
}

impl NoiseHold {
    /// The native detector's: up to 400 ms more, 10 ms per 0.01 of its 40th-percentile
    /// probability over the 3 s before the onset above 0.03 (chosen on three noise draws of
    /// the VAD corpus and checked on two more; see benches/PERF-LOG.md). A turn that starts
    /// within 100 ms of the stream's start, with nothing to measure, assumes a floor of 0.2.
    pub const NATIVE: Self = Self {
        window_ms: 3000,
        min_history_ms: 100,
        percentile: 40.0,
        default_floor: 0.2,
        offset: 0.03,
        ms_per_unit: 1000.0,
        max_ms: 400,
    };

    /// The extra hold, in ms, for a segment whose pre-onset floor is `floor`.
    #[must_use]
    pub fn hold_ms(&self, floor: f64) -> u32 {
        // Truncated toward zero, like the replay it was tuned on.
        (self.ms_per_unit * (floor - self.offset).max(0.0)).min(f64::from(self.max_ms)) as u32
    }
}

/// The `q`-th percentile (0–100) of `values`, interpolating linearly between order statistics
/// (numpy's default); sorts `values` in place. `None` when empty.
fn percentile(values: &mut [f32], q: f64) -> Option<f64> {
    values.sort_unstable_by(f32::total_cmp);
    let last = values.len().checked_sub(1)?;
    let rank = q / 100.0 * last as f64;
    let lo = (rank.floor() as usize).min(last);
    let hi = (lo + 1).min(last);
    let (a, b) = (f64::from(values[lo]), f64::from(values[hi]));
    Some(a + (b - a) * (rank - lo as f64))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Quiet,
    /// A possible onset at `onset` with `speech` samples of speech frames so far and the
    /// current run of non-speech frames `gap` samples long.
    Starting {
        onset: u64,
        speech: u64,
        gap: u64,
    },
    Speaking,
    /// Speaking, but silent since `silence_from`.
    Stopping {
        silence_from: u64,
    },
}

/// Framing plus the start/end state machine, driven by any per-frame speech scorer.
#[derive(Debug, Clone)]
pub struct Endpointer {
    config: EndpointConfig,
    neg_threshold: f64,
    start_samples: u64,
    stop_samples: u64,
    gap_samples: u64,
    /// Longest span from a candidate onset to its decision (`3 * start_ms`, whole frames).
    max_span: u64,
    preroll_samples: u64,
    /// Samples of the incomplete frame.
    pending: Vec<i16>,
    /// The most recent scored samples, for pre-roll; `ring_capacity` at most.
    ring: VecDeque<i16>,
    ring_capacity: usize,
    /// Stream position of the end of the last scored frame.
    position: u64,
    state: State,
    probability: f32,
    noise_hold: Option<NoiseHold>,
    /// The most recent probabilities, for the noise hold: its window plus a start's span.
    history: VecDeque<f32>,
    history_capacity: usize,
    /// The current segment's hold beyond `stop_ms`, in samples.
    extra_stop: u64,
}

impl Endpointer {
    /// An endpointer in the quiet state at stream position zero.
    #[must_use]
    pub fn new(config: EndpointConfig) -> Self {
        let start_samples = config.ms_to_samples(config.start_ms);
        let preroll_samples = config.ms_to_samples(config.preroll_ms);
        let frame = config.frame_samples as u64;
        // A start's audio spans the pre-roll plus at most `max_span` from onset to decision.
        let max_span = (3 * start_samples).div_ceil(frame) * frame;
        let ring_capacity = (preroll_samples + max_span + frame) as usize;
        Self {
            config,
            neg_threshold: (config.threshold - HYSTERESIS).max(MIN_NEG_THRESHOLD),
            start_samples,
            stop_samples: config.ms_to_samples(config.stop_ms),
            gap_samples: (start_samples / 2).max(frame),
            max_span,
            preroll_samples,
            pending: Vec::with_capacity(config.frame_samples),
            ring: VecDeque::with_capacity(ring_capacity),
            ring_capacity,
            position: 0,
            state: State::Quiet,
            probability: 0.0,
            noise_hold: None,
            history: VecDeque::new(),
            history_capacity: 0,
            extra_stop: 0,
        }
    }

    /// The same endpointer, holding longer before ends in noise (see [`NoiseHold`]).
    #[must_use]
    pub fn with_noise_hold(mut self, hold: NoiseHold) -> Self {
        let frame = self.config.frame_samples as u64;
        let window = self.config.ms_to_samples(hold.window_ms).div_ceil(frame);
        self.history_capacity = (window + self.max_span / frame + 1) as usize;
        self.history = VecDeque::with_capacity(self.history_capacity);
        self.noise_hold = Some(hold);
        self
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Whether the endpointed state is "speaking" after the frames scored so far.
    #[must_use]
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speaking | State::Stopping { .. })
    }

    /// The speech probability of the last scored frame (0 before the first).
    #[must_use]
    pub fn probability(&self) -> f32 {
        self.probability
    }

    /// Stream position just after the last pushed sample (scored or pending).
    #[must_use]
    pub fn pushed_samples(&self) -> u64 {
        self.position + self.pending.len() as u64
    }

    /// Forgets the stream: quiet, position zero, no pending or pre-roll audio.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.ring.clear();
        self.position = 0;
        self.state = State::Quiet;
        self.probability = 0.0;
        self.history.clear();
        self.extra_stop = 0;
    }

    /// Pushes samples; `score` is called once per completed frame, in order, and must
    /// return its speech probability (clamped to 0..=1; NaN counts as 0).
    ///
    /// If `score` fails, the stream is [`reset`](Self::reset) and the error returned.
    pub fn push_with<E>(
        &mut self,
        samples: &[i16],
        mut score: impl FnMut(&[i16]) -> Result<f32, E>,
    ) -> Result<Vec<VadEvent>, E> {
        let mut events = Vec::new();
        let frame = self.config.frame_samples;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (frame - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() < frame {
                break;
            }
            let p = match score(&self.pending) {
                Ok(p) if p.is_nan() => 0.0,
                Ok(p) => p.clamp(0.0, 1.0),
                Err(err) => {
                    self.reset();
                    return Err(err);
                }
            };
            self.remember_frame();
            self.pending.clear();
            if let Some(event) = self.step(p) {
                events.push(event);
            }
        }
        Ok(events)
    }

    /// Moves the completed pending frame into the pre-roll ring.
    fn remember_frame(&mut self) {
        let excess = (self.ring.len() + self.pending.len()).saturating_sub(self.ring_capacity);
        self.ring.drain(..excess.min(self.ring.len()));
        self.ring.extend(&self.pending);
    }

    /// Advances the state machine by one frame of probability `p`.
    fn step(&mut self, p: f32) -> Option<VadEvent> {
        let frame = self.config.frame_samples as u64;
        let frame_start = self.position;
        self.position += frame;
        self.probability = p;
        if self.noise_hold.is_some() {
            if self.history.len() == self.history_capacity {
                self.history.pop_front();
            }
            self.history.push_back(p);
        }
        let now = self.position;
        match self.state {
            State::Quiet => {
                if f64::from(p) >= self.config.threshold {
                    self.state = State::Starting {
                        onset: frame_start,
                        speech: 0,
                        gap: 0,
                    };
                    return self.continue_start(true);
                }
            }
            State::Starting { .. } => {
                return self.continue_start(f64::from(p) >= self.config.threshold);
            }
            State::Speaking => {
                if f64::from(p) < self.neg_threshold {
                    self.state = State::Stopping {
                        silence_from: frame_start,
                    };
                    return self.continue_stop(now);
                }
            }
            State::Stopping { .. } => {
                if f64::from(p) >= self.config.threshold {
                    self.state = State::Speaking;
                } else {
                    return self.continue_stop(now);
                }
            }
        }
        None
    }

    fn continue_start(&mut self, is_speech: bool) -> Option<VadEvent> {
        let frame = self.config.frame_samples as u64;
        let State::Starting { onset, speech, gap } = self.state else {
            return None;
        };
        if is_speech {
            let speech = speech + frame;
            if speech >= self.start_samples {
                self.state = State::Speaking;
                self.extra_stop = self.noise_hold_samples(onset);
                return Some(self.start_event(onset));
            }
            self.state = if self.position - onset >= self.max_span {
                // Out of span: this speech frame becomes the onset of a fresh candidate.
                State::Starting {
                    onset: self.position - frame,
                    speech: frame,
                    gap: 0,
                }
            } else {
                State::Starting {
                    onset,
                    speech,
                    gap: 0,
                }
            };
        } else {
            let gap = gap + frame;
            self.state = if gap >= self.gap_samples || self.position - onset >= self.max_span {
                State::Quiet
            } else {
                State::Starting { onset, speech, gap }
            };
        }
        None
    }

    fn continue_stop(&mut self, now: u64) -> Option<VadEvent> {
        let State::Stopping { silence_from } = self.state else {
            return None;
        };
        if now - silence_from >= self.stop_samples + self.extra_stop {
            self.state = State::Quiet;
            return Some(VadEvent {
                kind: EventKind::End,
                at_sample: silence_from,
                decided_sample: now,
                audio: Vec::new(),
            });
        }
        None
    }

    /// The hold beyond `stop_ms` for a segment starting at `onset`, from the probabilities of
    /// the frames before it.
    fn noise_hold_samples(&self, onset: u64) -> u64 {
        let Some(hold) = self.noise_hold else {
            return 0;
        };
        let frame = self.config.frame_samples as u64;
        let since_onset = ((self.position - onset) / frame) as usize;
        let before = self.history.len().saturating_sub(since_onset);
        let window = self.config.ms_to_samples(hold.window_ms).div_ceil(frame) as usize;
        let mut floor_frames: Vec<f32> = self
            .history
            .range(before.saturating_sub(window)..before)
            .copied()
            .collect();
        let history_ms =
            floor_frames.len() as u64 * frame * 1000 / u64::from(self.config.sample_rate);
        let floor = if history_ms < u64::from(hold.min_history_ms) {
            hold.default_floor
        } else {
            percentile(&mut floor_frames, hold.percentile).unwrap_or(hold.default_floor)
        };
        self.config.ms_to_samples(hold.hold_ms(floor))
    }

    fn start_event(&self, onset: u64) -> VadEvent {
        let ring_from = self.position - self.ring.len() as u64;
        let audio_from = onset.saturating_sub(self.preroll_samples).max(ring_from);
        let skip = (audio_from - ring_from) as usize;
        VadEvent {
            kind: EventKind::Start,
            at_sample: onset,
            decided_sample: self.position,
            audio: self.ring.iter().skip(skip).copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// 10 ms frames at 16 kHz, threshold 0.5, start 200 ms, stop 500 ms, pre-roll 300 ms.
    fn endpointer() -> Endpointer {
        Endpointer::new(EndpointConfig::new(16000, 10, 0.5, 200, 500, 300).unwrap())
    }

    /// Runs one probability per 10 ms frame (the frame's samples carry its index).
    fn run(ep: &mut Endpointer, probs: &[f32]) -> Vec<VadEvent> {
        let frame = ep.config().frame_samples();
        let mut samples = Vec::new();
        for (i, _) in probs.iter().enumerate() {
            samples.extend(std::iter::repeat_n(i as i16, frame));
        }
        let mut it = probs.iter();
        ep.push_with(&samples, |_| Ok::<_, Infallible>(*it.next().unwrap()))
            .unwrap()
    }

    fn ms(samples: u64) -> u64 {
        samples / 16
    }

    #[test]
    fn silence_gives_no_events() {
        let mut ep = endpointer();
        assert!(run(&mut ep, &[0.0; 300]).is_empty());
        assert!(!ep.in_speech());
        assert_eq!(ep.pushed_samples(), 300 * 160);
    }

    #[test]
    fn start_and_end_timing_is_exact() {
        // 1 s quiet, 1 s speech, 1 s quiet.
        let mut probs = vec![0.0; 100];
        probs.extend([0.9; 100]);
        probs.extend([0.0; 100]);
        let events = run(&mut endpointer(), &probs);
        assert_eq!(events.len(), 2);
        let (start, end) = (&events[0], &events[1]);
        assert_eq!(start.kind, EventKind::Start);
        assert_eq!(
            (ms(start.at_sample), ms(start.decided_sample)),
            (1000, 1200)
        );
        // Pre-roll: 300 ms before the onset up to the decision, 500 ms in all.
        assert_eq!(start.audio.len(), 500 * 16);
        assert_eq!(start.audio[0], 70);
        assert_eq!(*start.audio.last().unwrap(), 119);
        assert_eq!(end.kind, EventKind::End);
        assert_eq!((ms(end.at_sample), ms(end.decided_sample)), (2000, 2500));
        assert!(end.audio.is_empty());
    }

    #[test]
    fn pre_roll_is_clamped_at_the_stream_start() {
        let events = run(&mut endpointer(), &[0.9; 30]);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].at_sample, ms(events[0].decided_sample)),
            (0, 200)
        );
        assert_eq!(events[0].audio.len(), 200 * 16);
    }

    #[test]
    fn short_bursts_do_not_start() {
        // 190 ms of speech, then silence longer than the gap tolerance: no start.
        let mut probs = vec![0.9; 19];
        probs.extend([0.0; 10]);
        probs.extend([0.9; 19]);
        probs.extend([0.0; 50]);
        let mut ep = endpointer();
        assert!(run(&mut ep, &probs).is_empty());
        assert!(!ep.in_speech());
    }

    #[test]
    fn short_gaps_during_onset_are_tolerated() {
        // 100 ms speech, 90 ms gap, 100 ms speech: starts at 0, decided at 290 ms.
        let mut probs = vec![0.9; 10];
        probs.extend([0.0; 9]);
        probs.extend([0.9; 10]);
        let events = run(&mut endpointer(), &probs);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].at_sample, ms(events[0].decided_sample)),
            (0, 290)
        );
    }

    #[test]
    fn pre_roll_covers_an_onset_with_gaps_exactly() {
        // Onset at 1 s, then 100 ms speech, 90 ms gap, 100 ms speech: decided at 1290 ms.
        let mut probs = vec![0.0; 100];
        probs.extend([0.9; 10]);
        probs.extend([0.0; 9]);
        probs.extend([0.9; 10]);
        let events = run(&mut endpointer(), &probs);
        assert_eq!(
            (ms(events[0].at_sample), ms(events[0].decided_sample)),
            (1000, 1290)
        );
        assert_eq!(events[0].audio.len(), (300 + 290) * 16);
        assert_eq!(events[0].audio[0], 70);
    }

    #[test]
    fn sparse_flicker_never_starts() {
        // One speech frame in ten for 5 s: 200 ms of speech frames would take 2 s, far
        // beyond the 600 ms span a candidate may cover.
        let probs: Vec<f32> = (0..500)
            .map(|i| if i % 10 == 0 { 0.9 } else { 0.0 })
            .collect();
        let mut ep = endpointer();
        assert!(run(&mut ep, &probs).is_empty());
        // Denser speech (three frames in four) still starts.
        let probs: Vec<f32> = (0..500)
            .map(|i| if i % 4 == 3 { 0.0 } else { 0.9 })
            .collect();
        assert_eq!(run(&mut endpointer(), &probs).len(), 1);
    }

    #[test]
    fn pauses_shorter_than_stop_ms_do_not_end() {
        let mut probs = vec![0.9; 50];
        probs.extend([0.0; 49]);
        probs.extend([0.9; 50]);
        let mut ep = endpointer();
        let events = run(&mut ep, &probs);
        assert_eq!(events.len(), 1);
        assert!(ep.in_speech());
    }

    /// The end of a 1 s segment after `lead` frames at `floor`, and its hold beyond 500 ms.
    fn end_after(lead: usize, floor: f32) -> (u64, u64) {
        let mut probs = vec![floor; lead];
        probs.extend([0.9; 100]);
        probs.extend([0.0; 120]);
        let mut ep = endpointer().with_noise_hold(NoiseHold::NATIVE);
        let events = run(&mut ep, &probs);
        assert_eq!(events.len(), 2, "{events:?}");
        let end = &events[1];
        assert_eq!(ms(end.at_sample), (lead as u64 + 100) * 10);
        (
            ms(end.at_sample),
            ms(end.decided_sample - end.at_sample) - 500,
        )
    }

    #[test]
    fn noise_hold_grows_with_the_floor_before_the_onset() {
        // 3 s before the onset: a floor of 0.03 or below adds nothing, 0.23 adds 200 ms,
        // 0.3 adds 270 ms, and anything from 0.43 up the 400 ms cap.
        assert_eq!(end_after(300, 0.0).1, 0);
        assert_eq!(end_after(300, 0.03).1, 0);
        assert_eq!(end_after(300, 0.23).1, 200);
        assert_eq!(end_after(300, 0.3).1, 270);
        assert_eq!(end_after(300, 0.45).1, 400);
    }

    #[test]
    fn noise_hold_assumes_a_floor_of_0_2_before_100_ms_of_stream() {
        // 90 ms of history is not enough: 0.2 stands in (170 ms); 100 ms of silence is, and
        // so is 100 ms of noise at 0.3 (270 ms).
        assert_eq!(end_after(9, 0.0).1, 170);
        assert_eq!(end_after(10, 0.0).1, 0);
        assert_eq!(end_after(10, 0.3).1, 270);
    }

    #[test]
    fn noise_hold_takes_the_40th_percentile_of_the_last_3_s() {
        // 2 s at 0.4, then 3 s alternating 0.1 and 0.2: only the last 3 s count, and their
        // 40th percentile (rank 119.6 of 300 sorted) is 0.1, so 70 ms more.
        let mut probs = vec![0.4_f32; 200];
        probs.extend((0..300).map(|i| if i % 2 == 0 { 0.1 } else { 0.2 }));
        probs.extend([0.9; 100]);
        probs.extend([0.0; 60]);
        let mut ep = endpointer().with_noise_hold(NoiseHold::NATIVE);
        let events = run(&mut ep, &probs);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(ms(events[1].decided_sample - events[1].at_sample), 570);
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        let mut v = [0.5_f32, 0.1, 0.3, 0.2];
        // Sorted 0.1 0.2 0.3 0.5; rank 0.4 * 3 = 1.2 -> 0.2 + 0.2 * (0.3 - 0.2).
        assert!((percentile(&mut v, 40.0).unwrap() - 0.22).abs() < 1e-6);
        assert_eq!(percentile(&mut [], 40.0), None);
        assert_eq!(percentile(&mut [0.7], 40.0), Some(f64::from(0.7_f32)));
    }

    #[test]
    fn without_a_noise_hold_a_noisy_floor_changes_nothing() {
        let mut probs = vec![0.3_f32; 300];
        probs.extend([0.9; 100]);
        probs.extend([0.0; 60]);
        let events = run(&mut endpointer(), &probs);
        assert_eq!(ms(events[1].decided_sample - events[1].at_sample), 500);
    }

    #[test]
    fn hysteresis_keeps_speech_between_thresholds() {
        // While speaking, 0.4 (above 0.5 - 0.15) is still speech; while quiet it is not.
        let mut probs = vec![0.9; 30];
        probs.extend([0.4; 100]);
        let mut ep = endpointer();
        assert_eq!(run(&mut ep, &probs).len(), 1);
        assert!(ep.in_speech());
        let mut quiet = endpointer();
        assert!(run(&mut quiet, &[0.4; 100]).is_empty());
    }

    #[test]
    fn middling_frames_do_not_reset_a_pending_end() {
        // After silence begins, frames between the thresholds neither end nor extend it.
        let mut probs = vec![0.9; 30];
        probs.extend([0.1; 10]);
        probs.extend([0.4; 40]);
        let events = run(&mut endpointer(), &probs);
        assert_eq!(events.len(), 2);
        assert_eq!(
            (ms(events[1].at_sample), ms(events[1].decided_sample)),
            (300, 800)
        );
    }

    #[test]
    fn odd_stop_ms_rounds_up_to_whole_frames() {
        let mut ep = Endpointer::new(EndpointConfig::new(8000, 10, 0.5, 10, 15, 0).unwrap());
        let mut probs = vec![0.9; 3];
        probs.extend([0.0; 5]);
        let events = run(&mut ep, &probs);
        assert_eq!(events.len(), 2);
        // 8 kHz: 80-sample frames; start decided after the first frame, end after 20 ms.
        assert_eq!((events[0].at_sample, events[0].decided_sample), (0, 80));
        assert_eq!((events[1].at_sample, events[1].decided_sample), (240, 400));
        assert!(events[0].audio.len() == 80);
    }

    #[test]
    fn nan_and_out_of_range_scores_are_clamped() {
        let mut ep = endpointer();
        let mut samples = vec![0i16; 160 * 3];
        samples.truncate(480);
        let mut it = [f32::NAN, 7.0, -1.0].into_iter();
        ep.push_with(&samples, |_| Ok::<_, Infallible>(it.next().unwrap()))
            .unwrap();
        assert!(ep.probability().abs() < f32::EPSILON);
    }

    #[test]
    fn a_failing_scorer_resets_the_stream() {
        let mut ep = endpointer();
        let calls = std::cell::Cell::new(0);
        let result = ep.push_with(&[0; 800], |_| {
            calls.set(calls.get() + 1);
            if calls.get() == 3 {
                Err("boom")
            } else {
                Ok(0.9)
            }
        });
        assert_eq!(result, Err("boom"));
        assert_eq!(ep.pushed_samples(), 0);
        assert!(!ep.in_speech());
    }

    #[test]
    fn bad_settings_are_rejected_with_advice() {
        let err = |r: Result<EndpointConfig, CoreError>| r.unwrap_err().to_string();
        assert!(err(EndpointConfig::new(44100, 10, 0.5, 200, 500, 0)).contains("8000 or 16000"));
        assert!(err(EndpointConfig::new(16000, 10, 1.0, 200, 500, 0)).contains("threshold"));
        assert!(err(EndpointConfig::new(16000, 10, f64::NAN, 200, 500, 0)).contains("threshold"));
        assert!(err(EndpointConfig::new(16000, 10, 0.5, 200, 5, 0)).contains("stop_ms=5 is below"));
        assert!(err(EndpointConfig::new(16000, 10, 0.5, 0, 500, 0)).contains("start_ms=0 is below"));
        assert!(err(EndpointConfig::new(16000, 10, 0.5, 200, 500, 60_001)).contains("preroll_ms"));
        assert!(err(EndpointConfig::new(16000, 0, 0.5, 200, 500, 0)).contains("frame_ms"));
    }
}
