//! Streaming rational resampling between the engine's rates with no hold-back.
//!
//! A polyphase FIR computes each output sample as soon as its newest input sample arrives,
//! so the only latency is the filter's delay (`Resampler::delay`). Every output is computed
//! from the same inputs in the same order whatever the chunking, so any chunking of a stream
//! gives bit-identical output.

mod deinterleave;
pub mod design;
mod fast;
mod filter;
mod groups;
mod input;
mod kernel;
mod lanes;
mod nyquist;
mod two_step;

use std::sync::Arc;

use crate::pcm::Pcm;
use crate::rates::check_rate;
pub use crate::rates::SUPPORTED_RATES;
use crate::CoreError;
use fast::RowCache;
use filter::RelayFirst;
pub use filter::{PolyphaseFilter, Quality};
use input::Input;
pub use kernel::Kernel;
use kernel::{Cursor, Scratch};
use nyquist::{NyquistStep, NyquistStream};
use two_step::TwoStepStream;

/// Input samples resampled at a time (longer inputs are split): 64 KiB of `f32` history.
pub const PIECE: usize = 16384;

/// A streaming resampler for one mono PCM16 stream.
#[derive(Debug, Clone)]
pub struct Resampler {
    filter: Arc<PolyphaseFilter>,
    kernel: Kernel,
    /// Working memory of the convolution kernel, kept between calls.
    scratch: Scratch,
    /// One piece's output on its way to little-endian bytes.
    piece_out: Vec<i16>,
    /// The last `taps − 1` inputs (zeros before the stream starts) followed by pending input,
    /// from history index `origin` on: a fast decimator's rows alone hold those before it.
    history: Vec<f32>,
    /// History index of `history[0]` (0 except for fast decimators).
    origin: usize,
    /// The next output: the history index of its newest input, and its polyphase branch.
    next: Cursor,
    /// Whether any input arrived since the last reset (an empty stream has no tail).
    started: bool,
    /// The stream through a two-step decimator by 3 or 6 (`PolyphaseFilter::two_step`), which
    /// keeps its own histories instead of the fields above.
    two_step: Option<Box<TwoStepStream>>,
    /// The two resamplers of a relayed pair (`PolyphaseFilter::relay`), used instead.
    relay: Option<Box<RelayStream>>,
    /// Samples in and out since the reset (for the length of the tail).
    inputs: u64,
    outputs: u64,
}

/// A relayed pair's two resamplers and the samples between them, kept `f32`: the first step
/// passes some of the band between the output's Nyquist and the middle rate's for the second
/// to remove, which may add up past 16 bits.
#[derive(Debug, Clone)]
struct RelayStream {
    first: FirstStep,
    second: Resampler,
    between: Vec<f32>,
}

/// A relay's first step (see `RelayFirst`).
#[derive(Debug, Clone)]
enum FirstStep {
    Resample(Resampler),
    Halve {
        form: Arc<NyquistStep>,
        stream: NyquistStream,
    },
}

impl FirstStep {
    fn new(first: &RelayFirst, kernel: Kernel) -> Self {
        match first {
            RelayFirst::Resample(filter) => {
                Self::Resample(Resampler::from_filter(Arc::clone(filter), kernel))
            }
            RelayFirst::Halve(form) => {
                let mut stream = NyquistStream::default();
                stream.reset(form);
                Self::Halve {
                    form: Arc::clone(form),
                    stream,
                }
            }
        }
    }

    fn reset(&mut self) {
        match self {
            Self::Resample(resampler) => resampler.reset(),
            Self::Halve { form, stream } => stream.reset(form),
        }
    }

    fn output_len(&self, n_in: usize) -> usize {
        match self {
            Self::Resample(resampler) => resampler.output_len(n_in),
            Self::Halve { form, stream } => stream.output_len(form, n_in),
        }
    }

    /// Replaces `between` with the step's outputs for `input`.
    fn process(&mut self, kernel: Kernel, input: Input<'_>, between: &mut Vec<f32>) {
        match self {
            Self::Resample(resampler) => {
                // Every sample is written: only new room is zeroed.
                between.resize(resampler.output_len(input.len()), 0.0);
                resampler.process_floats(input, between);
            }
            Self::Halve { form, stream } => {
                between.clear();
                stream.process(form, kernel, input, between);
            }
        }
    }
}

impl Resampler {
    /// A resampler from `in_rate` to `out_rate` (both in `SUPPORTED_RATES`).
    pub fn new(in_rate: u32, out_rate: u32, quality: Quality) -> Result<Self, CoreError> {
        Self::with_kernel(in_rate, out_rate, quality, Kernel::detect())
    }

    /// Like `new`, but with a chosen convolution kernel (tests run every kernel this CPU has).
    pub fn with_kernel(
        in_rate: u32,
        out_rate: u32,
        quality: Quality,
        kernel: Kernel,
    ) -> Result<Self, CoreError> {
        let filter = PolyphaseFilter::shared(check_rate(in_rate)?, check_rate(out_rate)?, quality);
        Ok(Self::from_filter(filter, kernel))
    }

    /// A fresh stream through `filter` (and through each step of a relay).
    fn from_filter(filter: Arc<PolyphaseFilter>, kernel: Kernel) -> Self {
        let relay = filter.relay().map(|relay| {
            Box::new(RelayStream {
                first: FirstStep::new(&relay.first, kernel),
                second: Self::from_filter(Arc::clone(&relay.second), kernel),
                between: Vec::new(),
            })
        });
        let mut resampler = Self {
            filter,
            kernel,
            scratch: Scratch::default(),
            piece_out: Vec::new(),
            history: Vec::new(),
            origin: 0,
            next: Cursor { input: 0, phase: 0 },
            started: false,
            two_step: None,
            relay,
            inputs: 0,
            outputs: 0,
        };
        resampler.reset();
        resampler
    }

    /// Input sample rate in Hz.
    #[must_use]
    pub fn in_rate(&self) -> u32 {
        self.filter.in_rate
    }

    /// Output sample rate in Hz.
    #[must_use]
    pub fn out_rate(&self) -> u32 {
        self.filter.out_rate
    }

    /// Quality profile of the filter.
    #[must_use]
    pub fn quality(&self) -> Quality {
        self.filter.quality
    }

    /// Group delay in output samples: output sample `m` carries the input at time `m − delay`.
    #[must_use]
    pub fn delay(&self) -> f64 {
        self.filter.delay
    }

    /// Forgets the stream: the next input is treated as the first.
    pub fn reset(&mut self) {
        self.started = false;
        (self.inputs, self.outputs) = (0, 0);
        if self.filter.relay().is_some() {
            if let Some(relay) = &mut self.relay {
                relay.first.reset();
                relay.second.reset();
            }
            return;
        }
        if let Some(form) = self.filter.two_step() {
            self.two_step.get_or_insert_with(Box::default).reset(form);
            return;
        }
        let taps = self.filter.taps;
        self.history.clear();
        self.history.resize(taps - 1, 0.0);
        self.origin = 0;
        self.next = Cursor {
            input: taps - 1,
            phase: 0,
        };
        self.scratch.clear();
    }

    /// How many samples `process` will return for `n_in` more input samples.
    #[must_use]
    pub fn output_len(&self, n_in: usize) -> usize {
        if let Some(relay) = &self.relay {
            return relay.second.output_len(relay.first.output_len(n_in));
        }
        if let (Some(form), Some(stream)) = (self.filter.two_step(), &self.two_step) {
            return stream.output_len(form, n_in);
        }
        let available = self.origin + self.history.len() + n_in;
        if self.next.input >= available {
            return 0;
        }
        let (l, m) = (self.filter.up, self.filter.down);
        ((available - self.next.input) * l - self.next.phase).div_ceil(m)
    }

    /// Resamples `input`, writing exactly `output_len(input.len())` samples to `out`.
    pub fn process_into(&mut self, input: Pcm<'_>, out: &mut [i16]) {
        self.process_input(Input::Pcm(input), out);
    }

    /// `process_into` for either kind of input.
    fn process_input(&mut self, input: Input<'_>, out: &mut [i16]) {
        let mut written = 0;
        self.for_each_piece(input, out.len(), |resampler, piece, n| {
            resampler.process_piece(piece, &mut out[written..written + n]);
            written += n;
        });
        debug_assert_eq!(written, out.len());
    }

    /// Resamples `input`, writing exactly `output_len(input.len())` samples to `out` as
    /// little-endian bytes (`2 * output_len` of them), through a piece-sized scratch buffer.
    pub fn process_into_le_bytes(&mut self, input: Pcm<'_>, out: &mut [u8]) {
        let mut scratch = std::mem::take(&mut self.piece_out);
        let mut written = 0;
        self.for_each_piece(Input::Pcm(input), out.len() / 2, |resampler, piece, n| {
            scratch.clear();
            scratch.resize(n, 0);
            resampler.process_piece(piece, &mut scratch);
            crate::pcm::write_le_bytes(&scratch, &mut out[written..written + 2 * n]);
            written += 2 * n;
        });
        debug_assert_eq!(written, out.len());
        self.piece_out = scratch;
    }

    /// Calls `each(self, piece, outputs)` for `input` in pieces of at most `PIECE` samples,
    /// so the history (and the kernel's working copy of it) stays small whatever the input's
    /// length; chunking never changes the output. `outputs` is `output_len(input.len())`,
    /// which the caller has counted: an input of one piece (every frame) is not counted again,
    /// at every step of a relay.
    fn for_each_piece(
        &mut self,
        input: Input<'_>,
        outputs: usize,
        mut each: impl FnMut(&mut Self, Input<'_>, usize),
    ) {
        if input.len() <= PIECE {
            each(self, input, outputs);
            return;
        }
        let mut rest = input;
        loop {
            let (piece, tail) = rest.split_at(rest.len().min(PIECE));
            let n = self.output_len(piece.len());
            each(self, piece, n);
            if tail.is_empty() {
                break;
            }
            rest = tail;
        }
    }

    fn process_piece(&mut self, input: Input<'_>, out: &mut [i16]) {
        self.count(input.len(), out.len());
        if let Some(relay) = &mut self.relay {
            let RelayStream {
                first,
                second,
                between,
            } = &mut **relay;
            first.process(self.kernel, input, between);
            second.process_input(Input::Floats(between), out);
            return;
        }
        if self.filter.is_identity() {
            // The output is the input: no history, no filter (an 8 kHz engine feeding Twilio).
            input.copy_to(out);
            return;
        }
        if let (Some(form), Some(stream)) = (self.filter.two_step(), &mut self.two_step) {
            stream.process(form, self.kernel, input, out);
            return;
        }
        input.extend_f32(&mut self.history);
        let written = self.run(out);
        debug_assert_eq!(written, out.len());
        self.discard_consumed();
    }

    /// A relay's first step: resamples one piece to `output_len` `f32` samples.
    fn process_floats(&mut self, input: Input<'_>, out: &mut [f32]) {
        self.count(input.len(), out.len());
        input.extend_f32(&mut self.history);
        let written;
        (written, self.next) = self.kernel.convolve_floats(
            &self.filter,
            &self.history,
            self.next,
            out,
            &mut self.scratch,
        );
        debug_assert_eq!(written, out.len());
        self.discard_consumed();
    }

    /// Notes a piece of `inputs` samples making `outputs` (what `flush_len` counts from).
    fn count(&mut self, inputs: usize, outputs: usize) {
        self.started |= inputs > 0;
        self.inputs += inputs as u64;
        self.outputs += outputs as u64;
    }

    /// Resamples `input`, appending every output sample it makes possible to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let n = self.output_len(input.len());
        let start = out.len();
        out.resize(start + n, 0);
        self.process_into(Pcm::Samples(input), &mut out[start..]);
    }

    /// Number of samples `flush` will return: the filter's tail, `ceil(delay)` less any output
    /// already returned ahead of `ceil(inputs · out / in)` (two-step and relayed filters
    /// return some outputs an input early), none for an empty stream: a stream's whole output
    /// is `ceil(inputs · out / in) + ceil(delay)` samples.
    #[must_use]
    pub fn flush_len(&self) -> usize {
        if self.filter.is_identity() || !self.started {
            return 0;
        }
        let (fi, fo) = (u64::from(self.in_rate()), u64::from(self.out_rate()));
        let total = (self.inputs * fo).div_ceil(fi) + self.filter.delay.ceil() as u64;
        usize::try_from(total.saturating_sub(self.outputs)).unwrap_or(usize::MAX)
    }

    /// Ends the stream: writes the delayed tail (`flush_len()` samples) and resets.
    pub fn flush_into(&mut self, out: &mut [i16]) {
        let need = self.flush_len();
        debug_assert_eq!(out.len(), need);
        let mut written = 0;
        let mut tail = Vec::new();
        while written < need {
            // Each zero input adds at most a few outputs; feed one at a time and keep `need`.
            tail.clear();
            tail.resize(self.output_len(1), 0);
            self.process_piece(Input::Pcm(Pcm::Samples(&[0])), &mut tail);
            let n = tail.len().min(need - written);
            out[written..written + n].copy_from_slice(&tail[..n]);
            written += n;
        }
        self.reset();
    }

    /// Ends the stream, appending the delayed tail to `out`, and resets.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let start = out.len();
        out.resize(start + self.flush_len(), 0);
        self.flush_into(&mut out[start..]);
    }

    /// Computes outputs into `out` while inputs allow; returns how many were written.
    fn run(&mut self, out: &mut [i16]) -> usize {
        let written;
        (written, self.next) = self.kernel.convolve(
            &self.filter,
            &self.history,
            self.origin,
            self.next,
            out,
            &mut self.scratch,
        );
        written
    }

    /// Drops inputs no future output can reach, keeping `taps − 1` of history (and dropping
    /// whole multiples of the filter's `history_step`), and frees the inputs that a fast
    /// decimator's rows hold alone.
    fn discard_consumed(&mut self) {
        let keep_from =
            (self.next.input + 1 - self.filter.taps).saturating_sub(self.filter.spread());
        self.next.input -= discard_history(
            &mut self.history,
            &mut self.origin,
            &mut self.scratch.rows,
            keep_from,
            self.filter.history_step(),
        );
    }
}

/// Drops the history inputs before `keep_from` (never past its end) in whole multiples of
/// `step`, and frees those a fast decimator's `rows` hold alone; returns how many were
/// dropped, by which the caller's history indices move back. `history` holds the inputs from
/// history index `origin` on.
fn discard_history(
    history: &mut Vec<f32>,
    origin: &mut usize,
    rows: &mut RowCache,
    keep_from: usize,
    step: usize,
) -> usize {
    let drop = keep_from.min(*origin + history.len()) / step * step;
    rows.dropped(drop);
    // `history[0]` is now at index `origin − drop`; the vector keeps from `resplit_from`.
    let keep = rows.resplit_from().max(origin.saturating_sub(drop));
    history.drain(..keep + drop - *origin);
    *origin = keep;
    drop
}
