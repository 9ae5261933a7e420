//! A bounded playout (jitter) buffer for outbound agent audio, with Twilio-style marks.
//!
//! The runtime appends TTS audio (optionally ending in a named mark), reads fixed-size
//! frames to send, and on barge-in clears everything at once. The buffer tracks absolute
//! sample positions so it can say exactly which marks the caller reached and how much
//! audio was dropped.
//!
//! Positions are absolute sample counters since construction (or [`PlayoutBuffer::reset`]):
//! `write_pos` counts every sample ever appended, `read_pos` every sample read *or* dropped
//! by [`PlayoutBuffer::clear`]. A mark at position `p` means "all audio before sample `p`";
//! it is *passed* once `read_pos >= p`. Zero padding added by a padded read is not audio
//! and never moves a position.

use std::collections::VecDeque;

use crate::rates::check_rate;
use crate::CoreError;

/// Longest frame a playout buffer accepts, in milliseconds.
pub const MAX_FRAME_MS: u32 = 1000;

/// Whether a read produced a frame, and how much of it is real audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// A whole frame of queued audio was written.
    Full,
    /// `audio_samples` queued samples (fewer than a frame, more than zero) were written,
    /// followed by zeros up to the frame length.
    Padded { audio_samples: usize },
    /// Less than a frame was queued and no frame was produced; the underrun counter grew.
    Underrun,
}

impl FrameStatus {
    /// Whether a frame was written.
    #[must_use]
    pub fn has_frame(self) -> bool {
        !matches!(self, Self::Underrun)
    }
}

/// The outcome of one [`PlayoutBuffer::read_frame`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whether a frame was written, and how much of it is audio.
    pub status: FrameStatus,
    /// Marks reached by this read, in the order they were placed (empty without allocating
    /// when none were reached).
    pub passed_marks: Vec<String>,
}

/// What [`PlayoutBuffer::clear`] discarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClearReport {
    /// Queued samples that were never read.
    pub dropped_samples: usize,
    /// Marks after audio that was dropped: the caller never reached them. In order.
    pub dropped_marks: Vec<String>,
    /// Marks the caller had already reached but no read had reported yet (placed while
    /// the buffer was empty). In order.
    pub passed_marks: Vec<String>,
}

/// A bounded FIFO of PCM16 samples read in fixed frames, with named position marks.
#[derive(Debug, Clone)]
pub struct PlayoutBuffer {
    sample_rate: u32,
    frame_ms: u32,
    capacity_ms: u32,
    frame_samples: usize,
    capacity_samples: usize,
    samples: VecDeque<i16>,
    /// `(position, name)`, positions non-decreasing; every entry has `position >= read_pos`
    /// or is reached but not yet reported.
    marks: VecDeque<(u64, String)>,
    write_pos: u64,
    read_pos: u64,
    played_samples: u64,
    underruns: u64,
    generation: u64,
}

impl PlayoutBuffer {
    /// A buffer of `capacity_ms` of audio at `sample_rate`, read in frames of `frame_ms`.
    ///
    /// `frame_ms` must be in `1..=1000` and a whole number of samples at `sample_rate`;
    /// `capacity_ms` must hold at least one frame. No sample memory is allocated until
    /// audio is pushed; it then grows on demand, never beyond the capacity.
    pub fn new(sample_rate: u32, frame_ms: u32, capacity_ms: u32) -> Result<Self, CoreError> {
        check_rate(sample_rate)?;
        if !(1..=MAX_FRAME_MS).contains(&frame_ms) {
            return Err(CoreError::InvalidArgument(format!(
                "frame_ms must be between 1 and {MAX_FRAME_MS} ms, got {frame_ms}; 20 ms is the usual telephony frame"
            )));
        }
        let frame_product = u64::from(sample_rate) * u64::from(frame_ms);
        if frame_product % 1000 != 0 {
            return Err(CoreError::InvalidArgument(format!(
                "frame_ms={frame_ms} is not a whole number of samples at {sample_rate} Hz \
                 ({sample_rate} * {frame_ms} / 1000 = {:.2}); choose a frame_ms that is a multiple of {} ms",
                frame_product as f64 / 1000.0,
                1000 / gcd(sample_rate, 1000),
            )));
        }
        if capacity_ms < frame_ms {
            return Err(CoreError::InvalidArgument(format!(
                "capacity_ms={capacity_ms} is smaller than one frame (frame_ms={frame_ms}); raise capacity_ms to at least {frame_ms}"
            )));
        }
        let capacity_samples = u64::from(sample_rate) * u64::from(capacity_ms) / 1000;
        let capacity_samples = usize::try_from(capacity_samples).map_err(|_| {
            CoreError::InvalidArgument(format!(
                "capacity_ms={capacity_ms} is too large for this platform; lower capacity_ms"
            ))
        })?;
        Ok(Self {
            sample_rate,
            frame_ms,
            capacity_ms,
            frame_samples: (frame_product / 1000) as usize,
            capacity_samples,
            samples: VecDeque::new(),
            marks: VecDeque::new(),
            write_pos: 0,
            read_pos: 0,
            played_samples: 0,
            underruns: 0,
            generation: 0,
        })
    }

    /// Appends `samples`, then `mark` (if any) at the end of them.
    ///
    /// All or nothing: if the queued audio plus `samples` would exceed the capacity, returns
    /// [`CoreError::Overflow`] and appends neither the audio nor the mark.
    pub fn push(&mut self, samples: &[i16], mark: Option<String>) -> Result<(), CoreError> {
        self.reserve_for(samples.len())?;
        self.samples.extend(samples);
        self.finish_push(samples.len(), mark);
        Ok(())
    }

    /// [`push`](Self::push) for little-endian PCM16 bytes, decoded straight into the queue.
    ///
    /// An odd byte count is [`CoreError::OddPcmLength`]; like an overflow, it appends nothing.
    pub fn push_le_bytes(&mut self, bytes: &[u8], mark: Option<String>) -> Result<(), CoreError> {
        let n = crate::pcm::sample_count(bytes)?;
        self.reserve_for(n)?;
        self.samples.extend(crate::pcm::samples(bytes));
        self.finish_push(n, mark);
        Ok(())
    }

    /// Places a mark at the current write position (after all audio pushed so far).
    pub fn mark(&mut self, name: String) {
        self.marks.push_back((self.write_pos, name));
    }

    /// Checks capacity for `incoming` more samples and grows the queue's allocation,
    /// doubling but never past the capacity.
    fn reserve_for(&mut self, incoming: usize) -> Result<(), CoreError> {
        let queued = self.samples.len();
        if incoming > self.capacity_samples - queued {
            return Err(CoreError::Overflow {
                incoming_ms: self.samples_to_ms(incoming as u64),
                queued_ms: self.samples_to_ms(queued as u64),
                capacity_ms: f64::from(self.capacity_ms),
            });
        }
        let needed = queued + incoming;
        let allocated = self.samples.capacity();
        if needed > allocated {
            let target = needed.max(allocated * 2).min(self.capacity_samples);
            self.samples.reserve_exact(target - queued);
        }
        Ok(())
    }

    fn finish_push(&mut self, n: usize, mark: Option<String>) {
        self.write_pos += n as u64;
        if let Some(name) = mark {
            self.mark(name);
        }
    }

    /// Whether [`read_frame`](Self::read_frame) with this `pad` would produce a frame.
    #[must_use]
    pub fn frame_ready(&self, pad: bool) -> bool {
        let queued = self.samples.len();
        queued >= self.frame_samples || (pad && queued > 0)
    }

    /// Reads one frame into `out` (exactly [`frame_samples`](Self::frame_samples) long).
    ///
    /// With a whole frame queued, copies it. With less, if `pad` and at least one sample is
    /// queued, copies those and fills the rest of `out` with zeros (the zeros are not
    /// counted as played). Otherwise writes nothing and counts an underrun. In every case
    /// returns the marks now reached, including marks placed at the read position while the
    /// buffer was empty.
    pub fn read_frame(&mut self, pad: bool, out: &mut [i16]) -> ReadResult {
        assert_eq!(
            out.len(),
            self.frame_samples,
            "output must hold exactly one frame"
        );
        self.read_frame_with(pad, |head, tail| {
            let (a, rest) = out.split_at_mut(head.len());
            let (b, zeros) = rest.split_at_mut(tail.len());
            a.copy_from_slice(head);
            b.copy_from_slice(tail);
            zeros.fill(0);
        })
    }

    /// [`read_frame`](Self::read_frame) into little-endian PCM16 bytes (`out` is exactly
    /// [`frame_bytes`](Self::frame_bytes) long).
    pub fn read_frame_le_bytes(&mut self, pad: bool, out: &mut [u8]) -> ReadResult {
        assert_eq!(
            out.len(),
            self.frame_bytes(),
            "output must hold exactly one frame"
        );
        self.read_frame_with(pad, |head, tail| write_frame_le_bytes(head, tail, out))
    }

    /// The allocation-free core of every read: when a frame is produced, calls `write` once
    /// with its audio as up to two slices (the ring buffer's halves, in order; together
    /// 1 to `frame_samples` samples). The caller zero-pads anything after them up to a frame.
    pub fn read_frame_with(&mut self, pad: bool, write: impl FnOnce(&[i16], &[i16])) -> ReadResult {
        let status = if self.frame_ready(pad) {
            let n = self.samples.len().min(self.frame_samples);
            let (head, tail) = self.samples.as_slices();
            let head_n = n.min(head.len());
            write(&head[..head_n], &tail[..n - head_n]);
            self.samples.drain(..n);
            self.read_pos += n as u64;
            self.played_samples += n as u64;
            if n == self.frame_samples {
                FrameStatus::Full
            } else {
                FrameStatus::Padded { audio_samples: n }
            }
        } else {
            self.underruns += 1;
            FrameStatus::Underrun
        };
        ReadResult {
            status,
            passed_marks: self.take_passed_marks(),
        }
    }

    /// Removes and returns the marks at or before the read position, in order.
    fn take_passed_marks(&mut self) -> Vec<String> {
        let reached = self
            .marks
            .iter()
            .take_while(|(pos, _)| *pos <= self.read_pos)
            .count();
        self.marks.drain(..reached).map(|(_, name)| name).collect()
    }

    /// Drops all queued audio and marks at once (barge-in) and reports what was lost.
    ///
    /// Marks already reached but not yet reported come back as `passed_marks`; the rest as
    /// `dropped_marks`. The read position jumps to the write position, the allocation is
    /// kept for the next utterance, and the generation counter grows by one.
    pub fn clear(&mut self) -> ClearReport {
        let passed_marks = self.take_passed_marks();
        let dropped_marks = self.marks.drain(..).map(|(_, name)| name).collect();
        let dropped_samples = self.samples.len();
        self.samples.clear();
        self.read_pos = self.write_pos;
        self.generation += 1;
        ClearReport {
            dropped_samples,
            dropped_marks,
            passed_marks,
        }
    }

    /// Returns to the just-constructed state: no audio, no marks, every counter and
    /// position zero. Unreported marks are discarded. The sample allocation is kept.
    pub fn reset(&mut self) {
        self.samples.clear();
        self.marks.clear();
        self.write_pos = 0;
        self.read_pos = 0;
        self.played_samples = 0;
        self.underruns = 0;
        self.generation = 0;
    }

    fn samples_to_ms(&self, samples: u64) -> f64 {
        samples as f64 * 1000.0 / f64::from(self.sample_rate)
    }

    /// The sample rate in Hz.
    #[must_use]
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The frame length in milliseconds.
    #[must_use]
    pub fn frame_ms(&self) -> u32 {
        self.frame_ms
    }

    /// The capacity in milliseconds, as given to [`new`](Self::new).
    #[must_use]
    pub fn capacity_ms(&self) -> u32 {
        self.capacity_ms
    }

    /// Samples per frame.
    #[must_use]
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Bytes per frame of PCM16.
    #[must_use]
    pub fn frame_bytes(&self) -> usize {
        self.frame_samples * 2
    }

    /// The most samples that can be queued at once.
    #[must_use]
    pub fn capacity_samples(&self) -> usize {
        self.capacity_samples
    }

    /// Samples queued and not yet read.
    #[must_use]
    pub fn queued_samples(&self) -> usize {
        self.samples.len()
    }

    /// Real audio samples returned by reads (padding and cleared audio excluded).
    ///
    /// Equals [`read_pos`](Self::read_pos) until the first [`clear`](Self::clear) that
    /// drops audio; after that it is smaller by every dropped sample.
    #[must_use]
    pub fn played_samples(&self) -> u64 {
        self.played_samples
    }

    /// Absolute stream position of the next sample to read (reads and clears advance it).
    #[must_use]
    pub fn read_pos(&self) -> u64 {
        self.read_pos
    }

    /// Absolute stream position after the last sample pushed.
    #[must_use]
    pub fn write_pos(&self) -> u64 {
        self.write_pos
    }

    /// Reads that produced no frame because less than a frame was queued.
    #[must_use]
    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    /// How many times [`clear`](Self::clear) has run.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Marks placed and not yet reported by a read or a clear.
    #[must_use]
    pub fn pending_marks(&self) -> usize {
        self.marks.len()
    }
}

/// Writes `head` then `tail` (as given to [`PlayoutBuffer::read_frame_with`]) as
/// little-endian PCM16 at the start of `out`, and zeros after them.
pub fn write_frame_le_bytes(head: &[i16], tail: &[i16], out: &mut [u8]) {
    let (a, rest) = out.split_at_mut(head.len() * 2);
    let (b, zeros) = rest.split_at_mut(tail.len() * 2);
    crate::pcm::write_le_bytes(head, a);
    crate::pcm::write_le_bytes(tail, b);
    zeros.fill(0);
}

const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rates::SUPPORTED_RATES;
    use proptest::prelude::*;

    fn buf(rate: u32, frame_ms: u32, capacity_ms: u32) -> PlayoutBuffer {
        PlayoutBuffer::new(rate, frame_ms, capacity_ms).unwrap()
    }

    fn ramp(start: i16, n: usize) -> Vec<i16> {
        (0..n).map(|i| start.wrapping_add(i as i16)).collect()
    }

    fn read(b: &mut PlayoutBuffer, pad: bool) -> (Option<Vec<i16>>, Vec<String>) {
        let mut out = vec![0x5555; b.frame_samples()];
        let r = b.read_frame(pad, &mut out);
        (r.status.has_frame().then_some(out), r.passed_marks)
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn frame_sizes_at_every_rate() {
        for (rate, samples) in [
            (8000, 160),
            (16000, 320),
            (22050, 441),
            (24000, 480),
            (44100, 882),
            (48000, 960),
        ] {
            let b = buf(rate, 20, 1000);
            assert_eq!(b.frame_samples(), samples, "{rate} Hz");
            assert_eq!(b.frame_bytes(), samples * 2);
            assert_eq!(b.capacity_samples(), rate as usize);
        }
    }

    #[test]
    fn constructor_rejects_bad_arguments_with_what_to_change() {
        assert_eq!(
            PlayoutBuffer::new(11025, 20, 1000).unwrap_err(),
            CoreError::UnsupportedRate(11025)
        );
        for frame_ms in [0, 1001] {
            let err = PlayoutBuffer::new(16000, frame_ms, 60_000).unwrap_err();
            assert!(
                matches!(&err, CoreError::InvalidArgument(m) if m.contains("frame_ms must be between 1 and 1000")),
                "{err}"
            );
        }
        let err = PlayoutBuffer::new(22050, 10, 1000).unwrap_err().to_string();
        assert!(
            err.contains("not a whole number of samples at 22050 Hz"),
            "{err}"
        );
        assert!(err.contains("multiple of 20 ms"), "{err}");
        let err = PlayoutBuffer::new(16000, 20, 19).unwrap_err().to_string();
        assert!(err.contains("raise capacity_ms to at least 20"), "{err}");
        // Boundaries that are valid.
        assert!(PlayoutBuffer::new(8000, 1, 1).is_ok());
        assert!(PlayoutBuffer::new(48000, 1000, 1000).is_ok());
        assert!(PlayoutBuffer::new(44100, 20, 20).is_ok());
    }

    #[test]
    fn every_frame_ms_suggestion_is_itself_valid() {
        for rate in SUPPORTED_RATES {
            let step = 1000 / gcd(rate, 1000);
            assert!(
                PlayoutBuffer::new(rate, step, 1000).is_ok(),
                "{rate} Hz step {step}"
            );
        }
    }

    #[test]
    fn no_sample_memory_until_audio_arrives() {
        let b = buf(48000, 20, 60_000);
        assert_eq!(b.samples.capacity(), 0);
    }

    #[test]
    fn allocation_never_exceeds_capacity() {
        let mut b = buf(8000, 20, 1000);
        for _ in 0..40 {
            b.push(&[1; 199], None).unwrap();
        }
        assert_eq!(b.queued_samples(), 7960);
        assert!(b.samples.capacity() <= 8000, "{}", b.samples.capacity());
        let cap = b.samples.capacity();
        b.clear();
        assert_eq!(b.samples.capacity(), cap, "clear keeps the allocation");
    }

    #[test]
    fn reads_whole_frames_in_order() {
        let mut b = buf(8000, 20, 1000);
        let input = ramp(-100, 400);
        b.push(&input, None).unwrap();
        assert_eq!(read(&mut b, false).0.unwrap(), input[..160]);
        assert_eq!(read(&mut b, false).0.unwrap(), input[160..320]);
        assert_eq!(b.queued_samples(), 80);
        assert_eq!(b.played_samples(), 320);
        assert_eq!(read(&mut b, false).0, None);
        assert_eq!(b.underruns(), 1);
        assert_eq!(
            b.queued_samples(),
            80,
            "an unpadded underrun consumes nothing"
        );
    }

    #[test]
    fn frames_straddling_the_ring_wrap_are_contiguous() {
        let mut b = buf(8000, 20, 40);
        let mut next = 0i16;
        let mut expected = Vec::new();
        let mut got = Vec::new();
        for chunk in [100, 150, 70, 200, 33, 160, 1, 159] {
            let data = ramp(next, chunk);
            next = next.wrapping_add(chunk as i16);
            b.push(&data, None).unwrap();
            expected.extend_from_slice(&data);
            while let (Some(frame), _) = read(&mut b, false) {
                got.extend(frame);
            }
        }
        assert_eq!(got, expected[..got.len()]);
        assert_eq!(got.len() + b.queued_samples(), expected.len());
    }

    #[test]
    fn padding_fills_with_zeros_and_is_not_played_audio() {
        let mut b = buf(8000, 20, 1000);
        b.push(&[7; 50], Some("end".into())).unwrap();
        let mut out = [1i16; 160];
        let r = b.read_frame(true, &mut out);
        assert_eq!(r.status, FrameStatus::Padded { audio_samples: 50 });
        assert_eq!(r.passed_marks, names(&["end"]));
        assert!(out[..50].iter().all(|&s| s == 7));
        assert!(out[50..].iter().all(|&s| s == 0));
        assert_eq!(b.played_samples(), 50);
        assert_eq!(b.read_pos(), 50);
        assert_eq!(b.underruns(), 0);
        // Nothing queued: padding has nothing to pad, so this is an underrun.
        let r = b.read_frame(true, &mut out);
        assert_eq!(r.status, FrameStatus::Underrun);
        assert_eq!(b.underruns(), 1);
    }

    #[test]
    fn le_bytes_round_trip_and_odd_length_appends_nothing() {
        let mut b = buf(8000, 20, 1000);
        let input = ramp(-30000, 170);
        let mut bytes = vec![0u8; 340];
        crate::pcm::write_le_bytes(&input, &mut bytes);
        assert_eq!(
            b.push_le_bytes(&bytes[..339], Some("x".into())),
            Err(CoreError::OddPcmLength(339))
        );
        assert_eq!((b.queued_samples(), b.pending_marks()), (0, 0));
        b.push_le_bytes(&bytes, None).unwrap();
        let mut out = vec![0xAAu8; 320];
        assert_eq!(
            b.read_frame_le_bytes(false, &mut out).status,
            FrameStatus::Full
        );
        assert_eq!(out, bytes[..320]);
        let r = b.read_frame_le_bytes(true, &mut out);
        assert_eq!(r.status, FrameStatus::Padded { audio_samples: 10 });
        assert_eq!(out[..20], bytes[320..]);
        assert!(out[20..].iter().all(|&x| x == 0));
    }

    #[test]
    fn marks_pass_exactly_when_the_audio_before_them_is_read() {
        let mut b = buf(8000, 20, 1000);
        b.push(&[1; 160], Some("a".into())).unwrap(); // at 160
        b.push(&[2; 100], Some("b".into())).unwrap(); // at 260
        b.mark("c".into()); // at 260
        b.push(&[3; 60], Some("d".into())).unwrap(); // at 320
        assert_eq!(read(&mut b, false).1, names(&["a"]));
        assert_eq!(read(&mut b, false).1, names(&["b", "c", "d"]));
        assert_eq!(read(&mut b, false).1, Vec::<String>::new());
    }

    #[test]
    fn mark_one_sample_later_waits_for_the_next_frame() {
        let mut b = buf(8000, 20, 1000);
        b.push(&[1; 161], Some("late".into())).unwrap();
        assert!(read(&mut b, false).1.is_empty());
        assert_eq!(read(&mut b, true).1, names(&["late"]));
    }

    #[test]
    fn mark_on_an_empty_buffer_passes_on_the_next_read_even_without_a_frame() {
        let mut b = buf(8000, 20, 1000);
        b.mark("start".into());
        let (frame, marks) = read(&mut b, false);
        assert_eq!((frame, marks), (None, names(&["start"])));
        assert_eq!(b.underruns(), 1);
        // A mark placed before audio that is not yet a frame still passes: it marks position 0.
        b.mark("before".into());
        b.push(&[1; 10], Some("after".into())).unwrap();
        assert_eq!(read(&mut b, false).1, names(&["before"]));
        assert_eq!(read(&mut b, true).1, names(&["after"]));
    }

    #[test]
    fn push_of_no_audio_with_a_mark_marks_the_write_position() {
        let mut b = buf(8000, 20, 1000);
        b.push(&[1; 160], None).unwrap();
        b.push(&[], Some("here".into())).unwrap();
        assert_eq!(read(&mut b, false).1, names(&["here"]));
    }

    #[test]
    fn overflow_is_all_or_nothing() {
        let mut b = buf(8000, 20, 100); // 800 samples
        b.push(&ramp(0, 700), Some("kept".into())).unwrap();
        let err = b.push(&[9; 101], Some("lost".into())).unwrap_err();
        assert_eq!(
            err,
            CoreError::Overflow {
                incoming_ms: 12.625,
                queued_ms: 87.5,
                capacity_ms: 100.0
            }
        );
        assert!(err.to_string().contains("raise capacity_ms"), "{err}");
        assert_eq!(b.queued_samples(), 700);
        assert_eq!(b.write_pos(), 700);
        assert_eq!(b.pending_marks(), 1);
        // Exactly filling the capacity is allowed.
        b.push(&[9; 100], None).unwrap();
        assert_eq!(b.queued_samples(), 800);
        assert!(b.push(&[0], None).is_err());
        assert!(b.push(&[], Some("empty push still fits".into())).is_ok());
        let mut got = Vec::new();
        let mut marks = Vec::new();
        while let (Some(f), m) = read(&mut b, false) {
            got.extend(f);
            marks.extend(m);
        }
        let mut expected = ramp(0, 700);
        expected.extend([9; 100]);
        assert_eq!(got, expected);
        assert_eq!(marks, names(&["kept", "empty push still fits"]));
    }

    #[test]
    fn clear_reports_dropped_audio_and_marks() {
        let mut b = buf(8000, 20, 1000);
        b.push(&[1; 200], Some("a".into())).unwrap(); // 200
        b.push(&[1; 200], Some("b".into())).unwrap(); // 400
        b.mark("c".into()); // 400
        assert!(read(&mut b, false).1.is_empty());
        let report = b.clear();
        assert_eq!(
            report,
            ClearReport {
                dropped_samples: 240,
                dropped_marks: names(&["a", "b", "c"]),
                passed_marks: vec![],
            }
        );
        assert_eq!(b.queued_samples(), 0);
        assert_eq!(b.read_pos(), 400);
        assert_eq!(b.write_pos(), 400);
        assert_eq!(b.played_samples(), 160, "dropped audio was never played");
        assert_eq!(b.generation(), 1);
        assert_eq!(b.pending_marks(), 0);
        // The buffer keeps working after a clear, with positions continuing.
        b.push(&[5; 160], Some("next".into())).unwrap();
        assert_eq!(read(&mut b, false), (Some(vec![5; 160]), names(&["next"])));
        assert_eq!(b.played_samples(), 320);
        assert_eq!(b.read_pos(), 560);
    }

    #[test]
    fn clear_reports_reached_but_unreported_marks_as_passed() {
        let mut b = buf(8000, 20, 1000);
        b.push(&[1; 160], None).unwrap();
        read(&mut b, false);
        b.mark("reached".into());
        b.push(&[1; 10], Some("unreached".into())).unwrap();
        let report = b.clear();
        assert_eq!(report.passed_marks, names(&["reached"]));
        assert_eq!(report.dropped_marks, names(&["unreached"]));
        assert_eq!(report.dropped_samples, 10);
        let empty = b.clear();
        assert_eq!(empty, ClearReport::default());
        assert_eq!(b.generation(), 2);
    }

    #[test]
    fn underruns_count_only_reads_without_a_frame() {
        let mut b = buf(8000, 20, 1000);
        read(&mut b, false);
        read(&mut b, true);
        assert_eq!(b.underruns(), 2);
        b.push(&[1; 100], None).unwrap();
        read(&mut b, false); // partial, unpadded: underrun
        assert_eq!(b.underruns(), 3);
        read(&mut b, true); // partial, padded: a frame, not an underrun
        assert_eq!(b.underruns(), 3);
        b.push(&[1; 160], None).unwrap();
        read(&mut b, false);
        assert_eq!(b.underruns(), 3);
    }

    #[test]
    fn reset_returns_to_the_constructed_state() {
        let mut b = buf(16000, 20, 1000);
        b.push(&[1; 500], Some("m".into())).unwrap();
        read(&mut b, false);
        read(&mut b, false);
        read(&mut b, false);
        b.clear();
        b.reset();
        assert_eq!(
            (
                b.queued_samples(),
                b.played_samples(),
                b.read_pos(),
                b.write_pos(),
                b.underruns(),
                b.generation(),
                b.pending_marks()
            ),
            (0, 0, 0, 0, 0, 0, 0)
        );
        assert_eq!(
            (
                b.sample_rate(),
                b.frame_ms(),
                b.capacity_ms(),
                b.capacity_samples()
            ),
            (16000, 20, 1000, 16000)
        );
    }

    #[test]
    fn steady_state_reads_do_not_grow_the_allocation() {
        let mut b = buf(16000, 20, 60_000);
        let frame = ramp(0, 320);
        let mut out = vec![0; 320];
        b.push(&frame, None).unwrap();
        b.read_frame(false, &mut out);
        let cap = b.samples.capacity();
        for _ in 0..10_000 {
            b.push(&frame, None).unwrap();
            b.read_frame(false, &mut out);
        }
        assert_eq!(b.samples.capacity(), cap);
        assert_eq!(out, frame);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(usize, bool),
        Mark,
        Read(bool),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..700, any::<bool>()).prop_map(|(n, m)| Op::Push(n, m)),
            1 => Just(Op::Mark),
            4 => any::<bool>().prop_map(Op::Read),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        /// Against a plain-Vec model: frames carry the input in order, marks are each
        /// reported exactly once and exactly when the audio before them has been consumed,
        /// overflow changes nothing, and the counters agree.
        #[test]
        fn matches_a_simple_model(ops in prop::collection::vec(op(), 0..120)) {
            let mut b = buf(8000, 20, 250); // 160-sample frames, 2000-sample capacity
            let mut model: VecDeque<i16> = VecDeque::new();
            let mut model_marks: Vec<(u64, String)> = Vec::new();
            let (mut write_pos, mut read_pos, mut played, mut underruns) = (0u64, 0u64, 0u64, 0u64);
            let mut next = 0i16;
            let mut reported: Vec<String> = Vec::new();
            let mut placed: Vec<String> = Vec::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Push(n, with_mark) => {
                        let data = ramp(next, n);
                        let mark = with_mark.then(|| format!("m{i}"));
                        let result = b.push(&data, mark.clone());
                        if model.len() + n > 2000 {
                            prop_assert!(
                                matches!(result, Err(CoreError::Overflow { .. })),
                                "expected overflow"
                            );
                        } else {
                            prop_assert!(result.is_ok());
                            next = next.wrapping_add(n as i16);
                            model.extend(&data);
                            write_pos += n as u64;
                            if let Some(m) = mark {
                                placed.push(m.clone());
                                model_marks.push((write_pos, m));
                            }
                        }
                    }
                    Op::Mark => {
                        let m = format!("k{i}");
                        b.mark(m.clone());
                        placed.push(m.clone());
                        model_marks.push((write_pos, m));
                    }
                    Op::Read(pad) => {
                        let (frame, marks) = read(&mut b, pad);
                        if model.len() >= 160 || (pad && !model.is_empty()) {
                            let n = model.len().min(160);
                            let mut expected: Vec<i16> = model.drain(..n).collect();
                            expected.resize(160, 0);
                            prop_assert_eq!(frame, Some(expected));
                            read_pos += n as u64;
                            played += n as u64;
                        } else {
                            prop_assert_eq!(frame, None);
                            underruns += 1;
                        }
                        let k = model_marks.iter().take_while(|(p, _)| *p <= read_pos).count();
                        let expected: Vec<String> = model_marks.drain(..k).map(|(_, m)| m).collect();
                        prop_assert_eq!(&marks, &expected);
                        reported.extend(marks);
                    }
                    Op::Clear => {
                        let report = b.clear();
                        prop_assert_eq!(report.dropped_samples, model.len());
                        let k = model_marks.iter().take_while(|(p, _)| *p <= read_pos).count();
                        let passed: Vec<String> = model_marks.drain(..k).map(|(_, m)| m).collect();
                        let dropped: Vec<String> = model_marks.drain(..).map(|(_, m)| m).collect();
                        prop_assert_eq!(&report.passed_marks, &passed);
                        prop_assert_eq!(&report.dropped_marks, &dropped);
                        reported.extend(report.passed_marks);
                        reported.extend(report.dropped_marks);
                        model.clear();
                        read_pos = write_pos;
                    }
                }
                prop_assert_eq!(b.queued_samples(), model.len());
                prop_assert_eq!(b.write_pos(), write_pos);
                prop_assert_eq!(b.read_pos(), read_pos);
                prop_assert_eq!(b.played_samples(), played);
                prop_assert_eq!(b.underruns(), underruns);
                prop_assert!(b.samples.capacity() <= 2000);
            }
            let final_report = b.clear();
            reported.extend(final_report.passed_marks);
            reported.extend(final_report.dropped_marks);
            prop_assert_eq!(reported, placed, "every mark reported exactly once, in order");
        }
    }
}
