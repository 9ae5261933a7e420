//! The Twilio Media Streams audio codec: base64 μ-law at 8 kHz ⇄ PCM16 at the engine rate.
//!
//! JSON framing stays in Python; these types turn one `media.payload` into engine PCM and
//! engine PCM into ready-to-send 20 ms payloads, keeping resampler state across frames.
//! Python encodes a stream's outbound message once and may hand the encoder the text on
//! either side of its payload ([`TwilioEncoder::set_envelope`]), so that each payload comes
//! out as the whole message, built in one buffer. Scratch buffers are reused, so
//! steady-state frames allocate only their output.

use crate::b64;
use crate::g711::{self, Law};
use crate::pcm::Pcm;
use crate::resample::{Quality, Resampler};
use crate::CoreError;

/// Twilio's media sample rate.
pub const TWILIO_RATE: u32 = 8000;
/// μ-law bytes in one 20 ms outbound payload.
pub const FRAME_BYTES: usize = 160;

/// Inbound: `media.payload` strings → PCM16 at the engine rate.
#[derive(Debug, Clone)]
pub struct TwilioDecoder {
    resampler: Resampler,
    codes: Vec<u8>,
    narrowband: Vec<i16>,
    output: Vec<i16>,
}

impl TwilioDecoder {
    /// A decoder producing PCM16 at `rate` (a supported rate), resampling with `quality`.
    pub fn new(rate: u32, quality: Quality) -> Result<Self, CoreError> {
        Ok(Self {
            resampler: Resampler::new(TWILIO_RATE, rate, quality)?,
            codes: Vec::with_capacity(FRAME_BYTES),
            narrowband: Vec::with_capacity(FRAME_BYTES),
            output: Vec::new(),
        })
    }

    /// The engine-side sample rate.
    #[must_use]
    pub fn rate(&self) -> u32 {
        self.resampler.out_rate()
    }

    /// Resampler delay in engine-rate samples.
    #[must_use]
    pub fn delay(&self) -> f64 {
        self.resampler.delay()
    }

    /// Decodes one base64 payload and returns its engine-rate samples (valid until the next call).
    ///
    /// A payload that is not valid base64 is rejected whole and leaves the stream untouched.
    pub fn decode(&mut self, payload: &[u8]) -> Result<&[i16], CoreError> {
        self.codes.clear();
        b64::decode_extend(payload, &mut self.codes)?;
        self.narrowband.clear();
        g711::decode_extend(Law::Ulaw, &self.codes, &mut self.narrowband);
        self.output.clear();
        self.resampler.process(&self.narrowband, &mut self.output);
        Ok(&self.output)
    }

    /// Forgets the stream (for a new call).
    pub fn reset(&mut self) {
        self.resampler.reset();
    }
}

/// Outbound messages of one call, back to back in one reusable buffer (no allocation per
/// message once the buffer has grown).
#[derive(Debug, Clone, Default)]
pub struct Messages {
    text: String,
    /// Where each message ends in `text`.
    ends: Vec<usize>,
}

impl Messages {
    /// Appends one message, written by `write`.
    fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len());
    }

    /// The messages, in order.
    #[must_use]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        self.ends.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.text[start..end]
        })
    }

    /// Number of messages.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Forgets every message, keeping the memory.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Outbound: engine-rate PCM16 → base64 μ-law payloads of exactly 20 ms.
#[derive(Debug, Clone)]
pub struct TwilioEncoder {
    resampler: Resampler,
    narrowband: Vec<i16>,
    /// μ-law codes not yet making up a whole frame.
    pending: Vec<u8>,
    /// Text written before and after each base64 payload (empty: bare payloads).
    head: String,
    tail: String,
}

impl TwilioEncoder {
    /// An encoder taking PCM16 at `rate` (a supported rate), resampling with `quality`.
    pub fn new(rate: u32, quality: Quality) -> Result<Self, CoreError> {
        Ok(Self {
            resampler: Resampler::new(rate, TWILIO_RATE, quality)?,
            narrowband: Vec::new(),
            pending: Vec::with_capacity(2 * FRAME_BYTES),
            head: String::new(),
            tail: String::new(),
        })
    }

    /// Emits every later payload as `head` + payload + `tail` (a message's text around its
    /// payload); two empty strings give bare payloads again.
    pub fn set_envelope(&mut self, head: &str, tail: &str) {
        head.clone_into(&mut self.head);
        tail.clone_into(&mut self.tail);
    }

    /// The engine-side sample rate.
    #[must_use]
    pub fn rate(&self) -> u32 {
        self.resampler.in_rate()
    }

    /// Resampler delay in 8 kHz samples.
    #[must_use]
    pub fn delay(&self) -> f64 {
        self.resampler.delay()
    }

    /// Milliseconds of audio held back because they do not fill a frame yet.
    #[must_use]
    pub fn pending_ms(&self) -> f64 {
        self.pending.len() as f64 / f64::from(TWILIO_RATE) * 1000.0
    }

    /// Encodes `pcm`, appending every complete 20 ms payload to `out`.
    pub fn encode(&mut self, pcm: Pcm<'_>, out: &mut Messages) {
        let n = self.resampler.output_len(pcm.len());
        // Only grown: every sample of `narrowband[..n]` is written, so it is never zeroed.
        if self.narrowband.len() < n {
            self.narrowband.resize(n, 0);
        }
        self.resampler.process_into(pcm, &mut self.narrowband[..n]);
        self.queue_narrowband(n);
        let whole = self.pending.len() / FRAME_BYTES * FRAME_BYTES;
        for frame in self.pending[..whole].chunks_exact(FRAME_BYTES) {
            self.write_message(frame, out);
        }
        self.pending.drain(..whole);
    }

    /// Ends the utterance: emits the resampler tail and the last partial frame, then resets.
    pub fn flush(&mut self, out: &mut Messages) {
        self.narrowband.clear();
        self.resampler.flush(&mut self.narrowband);
        self.queue_narrowband(self.narrowband.len());
        for frame in self.pending.chunks(FRAME_BYTES) {
            self.write_message(frame, out);
        }
        self.pending.clear();
    }

    /// Appends one frame's base64, in its envelope, to `out`.
    fn write_message(&self, frame: &[u8], out: &mut Messages) {
        out.push_with(|text| {
            text.push_str(&self.head);
            b64::encode_extend(frame, text);
            text.push_str(&self.tail);
        });
    }

    /// μ-law-encodes the first `n` resampled samples onto the pending frame.
    fn queue_narrowband(&mut self, n: usize) {
        g711::encode_extend(Law::Ulaw, &self.narrowband[..n], &mut self.pending);
    }

    /// Drops everything not yet emitted (barge-in) and starts a new stream.
    pub fn clear(&mut self) {
        self.resampler.reset();
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    fn owned(messages: &Messages) -> Vec<String> {
        messages.iter().map(str::to_owned).collect()
    }

    fn speech_like(rate: u32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (8000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()
                    + 3000.0 * (2.0 * std::f64::consts::PI * 1250.0 * t).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn outbound_payloads_are_20_ms_and_decode_back() {
        let mut encoder = TwilioEncoder::new(16000, Quality::High).unwrap();
        let mut payloads = Messages::default();
        let pcm = speech_like(16000, 16000);
        for chunk in pcm.chunks(333) {
            encoder.encode(Pcm::Samples(chunk), &mut payloads);
        }
        assert!(payloads
            .iter()
            .all(|p| STANDARD.decode(p).unwrap().len() == FRAME_BYTES));
        encoder.flush(&mut payloads);
        let total: usize = payloads
            .iter()
            .map(|p| STANDARD.decode(p).unwrap().len())
            .sum();
        assert_eq!(total, 8000 + encoder.delay().ceil() as usize);
    }

    #[test]
    fn inbound_matches_decode_then_resample() {
        let codes: Vec<u8> = (0..800u32).map(|i| (i * 37 % 256) as u8).collect();
        let mut decoder = TwilioDecoder::new(16000, Quality::High).unwrap();
        let mut got = Vec::new();
        for frame in codes.chunks(FRAME_BYTES) {
            got.extend_from_slice(decoder.decode(STANDARD.encode(frame).as_bytes()).unwrap());
        }
        let mut linear = Vec::new();
        g711::decode_extend(Law::Ulaw, &codes, &mut linear);
        let mut expected = Vec::new();
        Resampler::new(8000, 16000, Quality::High)
            .unwrap()
            .process(&linear, &mut expected);
        assert_eq!(got, expected);
    }

    #[test]
    fn bad_base64_is_rejected_without_touching_the_stream() {
        let mut decoder = TwilioDecoder::new(8000, Quality::High).unwrap();
        assert!(matches!(
            decoder.decode(b"not base64!"),
            Err(CoreError::InvalidBase64(_))
        ));
        let frame = STANDARD.encode([0xFFu8; FRAME_BYTES]);
        assert_eq!(
            decoder.decode(frame.as_bytes()).unwrap(),
            &[0i16; FRAME_BYTES][..]
        );
    }

    #[test]
    fn the_envelope_surrounds_each_payload_until_it_is_emptied() {
        let pcm = speech_like(16000, 700);
        let mut bare = TwilioEncoder::new(16000, Quality::High).unwrap();
        let mut bare_out = Messages::default();
        bare.encode(Pcm::Samples(&pcm), &mut bare_out);
        bare.flush(&mut bare_out);
        let payloads = owned(&bare_out);
        let mut wrapped = TwilioEncoder::new(16000, Quality::High).unwrap();
        wrapped.set_envelope("{\"media\":\"", "\"}");
        let mut out = Messages::default();
        wrapped.encode(Pcm::Samples(&pcm), &mut out);
        wrapped.flush(&mut out);
        let messages = owned(&out);
        assert_eq!(messages.len(), 3); // two whole frames and the flushed rest
        let expected: Vec<String> = payloads
            .iter()
            .map(|p| format!("{{\"media\":\"{p}\"}}"))
            .collect();
        assert_eq!(messages, expected);
        wrapped.set_envelope("", "");
        out.clear();
        wrapped.encode(Pcm::Samples(&pcm), &mut out);
        assert_eq!(owned(&out), payloads[..2]);
    }

    #[test]
    fn clear_drops_the_partial_frame() {
        let mut encoder = TwilioEncoder::new(8000, Quality::High).unwrap();
        let mut out = Messages::default();
        encoder.encode(Pcm::Samples(&speech_like(8000, 100)), &mut out);
        assert!(out.is_empty());
        assert!(encoder.pending_ms() > 0.0);
        encoder.clear();
        encoder.flush(&mut out);
        assert!(out.is_empty());
    }
}
