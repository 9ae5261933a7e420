//! Streaming resampler behaviour: exact counts, chunking invariance, delay, accuracy.

use proptest::prelude::*;
use voicecore_core::pcm::Pcm;
use voicecore_core::resample::{Kernel, Quality, Resampler, PIECE, SUPPORTED_RATES};
use voicecore_core::CoreError;

fn tone(rate: u32, freq: f64, amplitude: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                .round() as i16
        })
        .collect()
}

fn one_shot(r: &mut Resampler, input: &[i16]) -> Vec<i16> {
    let mut out = Vec::new();
    r.process(input, &mut out);
    out
}

#[test]
fn unsupported_rates_are_rejected() {
    let err = Resampler::new(11025, 16000, Quality::High).unwrap_err();
    assert_eq!(err, CoreError::UnsupportedRate(11025));
    assert!(
        err.to_string().contains("22050"),
        "message lists supported rates: {err}"
    );
}

/// Pairs resampled in two steps: 48k→16k (a half-band step, then 2/3), 48k→8k (a third-band
/// step, then 1/2) and the relayed pairs from the 44.1 kHz family down to 8 or 16 kHz (to twice
/// the output rate first; 44.1k→8k halves first, then runs 22.05k→8k's two steps).
const STAGED: [(u32, u32); 6] = [
    (48000, 16000),
    (48000, 8000),
    (22050, 8000),
    (22050, 16000),
    (44100, 8000),
    (44100, 16000),
];

#[test]
fn output_counts_are_exact_for_every_pair() {
    for &fi in &SUPPORTED_RATES {
        for &fo in &SUPPORTED_RATES {
            let mut r = Resampler::new(fi, fo, Quality::High).unwrap();
            let mut total_in = 0u64;
            let mut total_out = 0u64;
            let mut ahead_seen = false;
            for chunk in [1usize, 7, 160, 441, 0, 960, 3, 2, 1, 2] {
                let expected = r.output_len(chunk);
                let out = one_shot(&mut r, &vec![100; chunk]);
                assert_eq!(out.len(), expected);
                total_in += chunk as u64;
                total_out += out.len() as u64;
                // Every output the input allows is returned: ceil(n · out / in), never fewer.
                // Filters in two steps may return an output one input sooner than that.
                let allowed = (total_in * u64::from(fo)).div_ceil(u64::from(fi));
                let ahead = total_out - allowed;
                let staged = STAGED.contains(&(fi, fo));
                assert!(
                    ahead <= u64::from(staged),
                    "{fi}->{fo}: {total_out} after {total_in}"
                );
                ahead_seen |= ahead == 1;
            }
            if (fi, fo) == (48000, 16000) {
                assert!(
                    ahead_seen,
                    "the chunks reach an input count where odd outputs come early"
                );
            }
            let mut tail = Vec::new();
            let expected_tail = r.flush_len();
            r.flush(&mut tail);
            assert_eq!(tail.len(), expected_tail);
            // The whole stream: ceil(n · out / in + delay), the tail included.
            let delay = if fi == fo { 0 } else { r.delay().ceil() as u64 };
            assert_eq!(
                total_out + tail.len() as u64,
                (total_in * u64::from(fo)).div_ceil(u64::from(fi)) + delay,
                "{fi}->{fo}"
            );
        }
    }
}

#[test]
fn an_empty_stream_has_no_tail() {
    let mut r = Resampler::new(16000, 8000, Quality::High).unwrap();
    assert_eq!(r.flush_len(), 0);
    one_shot(&mut r, &[]);
    assert_eq!(r.flush_len(), 0);
    one_shot(&mut r, &[1]);
    assert_eq!(r.flush_len(), r.delay().ceil() as usize);
}

#[test]
fn identity_is_a_copy_with_no_delay() {
    let mut r = Resampler::new(16000, 16000, Quality::High).unwrap();
    let input = tone(16000, 440.0, 20000.0, 1000);
    assert_eq!(one_shot(&mut r, &input), input);
    assert!(r.delay().abs() < f64::EPSILON);
    // From little-endian bytes, in two calls, with nothing left to flush.
    let mut bytes = vec![0u8; 2 * input.len()];
    voicecore_core::pcm::write_le_bytes(&input, &mut bytes);
    let mut out = vec![0i16; input.len()];
    let (head, tail) = bytes.split_at(2 * 333);
    r.process_into(Pcm::le_bytes(head).unwrap(), &mut out[..333]);
    assert_eq!(r.output_len(tail.len() / 2), input.len() - 333);
    r.process_into(Pcm::le_bytes(tail).unwrap(), &mut out[333..]);
    assert_eq!(out, input);
    assert_eq!(r.flush_len(), 0);
}

#[test]
fn interpolating_by_2_copies_every_other_output_from_the_input() {
    // Half-band: outputs 2n + 1 are input n − (delay − 1) / 2, exactly, for both profiles and
    // every ×2 pair; the other outputs are filtered.
    for (fi, fo) in [(8000, 16000), (22050, 44100), (24000, 48000)] {
        for quality in [Quality::High, Quality::Fast] {
            let mut r = Resampler::new(fi, fo, quality).unwrap();
            let input = tone(fi, 1000.0, 20000.0, 2000);
            let out = one_shot(&mut r, &input);
            let lag = (r.delay() as usize - 1) / 2;
            assert_eq!(r.delay() as usize % 2, 1, "{fi}->{fo}");
            assert!((lag..input.len()).all(|n| out[2 * n + 1] == input[n - lag]));
            assert!((lag..input.len()).any(|n| out[2 * n] != input[n - lag]));
        }
    }
}

#[test]
fn telephony_pairs_delay_at_most_6_ms() {
    for (fi, fo) in [(8000, 16000), (16000, 8000), (24000, 8000)] {
        let r = Resampler::new(fi, fo, Quality::High).unwrap();
        let ms = r.delay() / f64::from(fo) * 1000.0;
        assert!(ms <= 6.0, "{fi}->{fo}: {ms:.2} ms");
    }
}

#[test]
fn every_pair_has_a_whole_sample_delay() {
    for &fi in &SUPPORTED_RATES {
        for &fo in &SUPPORTED_RATES {
            let r = Resampler::new(fi, fo, Quality::High).unwrap();
            assert!(
                (r.delay() - r.delay().round()).abs() < 1e-9,
                "{fi}->{fo}: {}",
                r.delay()
            );
        }
    }
}

#[test]
fn dc_passes_at_unity_gain() {
    for &fi in &SUPPORTED_RATES {
        for &fo in &SUPPORTED_RATES {
            let mut r = Resampler::new(fi, fo, Quality::High).unwrap();
            let out = one_shot(&mut r, &vec![10000; fi as usize / 10]);
            let settled = &out[out.len() / 2..];
            assert!(
                settled.iter().all(|&s| (s - 10000).abs() <= 1),
                "{fi}->{fo}: {:?}",
                &settled[..4]
            );
        }
    }
}

/// SNR of a resampled in-band tone against the exact tone delayed by `delay()`.
fn tone_snr_db(fi: u32, fo: u32, quality: Quality, freq: f64) -> f64 {
    let mut r = Resampler::new(fi, fo, quality).unwrap();
    let amplitude = 16000.0;
    let out = one_shot(&mut r, &tone(fi, freq, amplitude, fi as usize / 2));
    let delay = r.delay();
    let skip = out.len() / 4;
    let (mut signal, mut noise) = (0.0, 0.0);
    for (m, &y) in out.iter().enumerate().skip(skip).take(out.len() / 2) {
        let t = (m as f64 - delay) / f64::from(fo);
        let exact = amplitude * (2.0 * std::f64::consts::PI * freq * t).sin();
        signal += exact * exact;
        noise += (f64::from(y) - exact).powi(2);
    }
    10.0 * (signal / noise).log10()
}

#[test]
fn in_band_tones_are_exact_to_85_db() {
    for &fi in &SUPPORTED_RATES {
        for &fo in &SUPPORTED_RATES {
            let nyquist = f64::from(fi.min(fo)) / 2.0;
            for fraction in [0.05, 0.5, 0.9] {
                let snr = tone_snr_db(fi, fo, Quality::High, fraction * nyquist);
                assert!(
                    snr >= 85.0,
                    "{fi}->{fo} tone at {fraction} Nyquist: {snr:.1} dB"
                );
            }
        }
    }
}

#[test]
fn long_inputs_split_into_pieces_give_the_chunked_output_in_samples_and_bytes() {
    // Longer than several internal pieces, and not a multiple of one.
    let signal: Vec<i16> = (0..3 * PIECE + 777)
        .map(|i| ((i * 7919) % 20000) as i16 - 10000)
        .collect();
    let mut bytes = vec![0u8; 2 * signal.len()];
    voicecore_core::pcm::write_le_bytes(&signal, &mut bytes);
    for &fi in &SUPPORTED_RATES {
        for &fo in &SUPPORTED_RATES {
            let mut chunked = Resampler::new(fi, fo, Quality::High).unwrap();
            let mut expected = Vec::new();
            for chunk in signal.chunks(160) {
                chunked.process(chunk, &mut expected);
            }
            let mut whole = Resampler::new(fi, fo, Quality::High).unwrap();
            assert_eq!(one_shot(&mut whole, &signal), expected, "{fi}->{fo}");

            let mut as_bytes = Resampler::new(fi, fo, Quality::High).unwrap();
            let input = Pcm::le_bytes(&bytes).unwrap();
            let mut out = vec![0u8; 2 * as_bytes.output_len(signal.len())];
            as_bytes.process_into_le_bytes(input, &mut out);
            let mut expected_bytes = vec![0u8; 2 * expected.len()];
            voicecore_core::pcm::write_le_bytes(&expected, &mut expected_bytes);
            assert_eq!(out, expected_bytes, "{fi}->{fo} as bytes");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn staged_pairs_give_identical_output_for_any_small_chunks(
        pair in 0usize..=STAGED.len(),
        portable in any::<bool>(),
        signal in prop::collection::vec(any::<i16>(), 0..4000),
        cuts in prop::collection::vec(0usize..40, 0..60),
    ) {
        // Two-step pairs keep state a direct one has not (48k->16k: an odd input waiting for
        // its pair, which decimator is next; relayed pairs: the first step's stream); small
        // chunks reach every parity. 24k->8k, a direct decimator by 3, for comparison.
        let (fi, fo) = STAGED.get(pair).copied().unwrap_or((24000, 8000));
        let kernel = if portable { Kernel::Portable } else { Kernel::detect() };
        let mut whole = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
        let mut expected = one_shot(&mut whole, &signal);
        whole.flush(&mut expected);
        let mut chunked = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
        let mut got = Vec::new();
        let mut rest = &signal[..];
        for cut in cuts {
            let (head, tail) = rest.split_at(cut.min(rest.len()));
            prop_assert_eq!(chunked.output_len(head.len()), {
                let before = got.len();
                chunked.process(head, &mut got);
                got.len() - before
            });
            rest = tail;
        }
        chunked.process(rest, &mut got);
        chunked.flush(&mut got);
        prop_assert_eq!(got, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn any_chunking_gives_identical_output(
        pair in (0usize..6, 0usize..6),
        fast in any::<bool>(),
        portable in any::<bool>(),
        signal in prop::collection::vec(any::<i16>(), 0..3000),
        cuts in prop::collection::vec(0usize..700, 0..12),
    ) {
        let (fi, fo) = (SUPPORTED_RATES[pair.0], SUPPORTED_RATES[pair.1]);
        let quality = if fast { Quality::Fast } else { Quality::High };
        let kernel = if portable { Kernel::Portable } else { Kernel::detect() };
        let mut whole = Resampler::with_kernel(fi, fo, quality, kernel).unwrap();
        let mut expected = one_shot(&mut whole, &signal);
        whole.flush(&mut expected);

        let mut chunked = Resampler::with_kernel(fi, fo, quality, kernel).unwrap();
        let mut got = Vec::new();
        let mut rest = &signal[..];
        for cut in cuts {
            let (head, tail) = rest.split_at(cut.min(rest.len()));
            chunked.process(head, &mut got);
            rest = tail;
        }
        chunked.process(rest, &mut got);
        chunked.flush(&mut got);
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn decimators_give_identical_output_for_every_small_chunk_size() {
    // L = 1 pairs run the fast algorithm, which takes outputs in fours: chunks of every size
    // up to 4M + 1 start calls on each output of a four.
    let pairs = [
        (16000, 8000),
        (24000, 8000),
        (48000, 8000),
        (48000, 16000),
        (48000, 24000),
    ];
    for (fi, fo) in pairs {
        for kernel in [Kernel::Portable, Kernel::detect()] {
            let signal = tone(fi, 1234.5, 12000.0, 2000);
            let mut whole = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
            let mut expected = one_shot(&mut whole, &signal);
            whole.flush(&mut expected);
            for chunk in 1..=(4 * fi / fo + 1) as usize {
                let mut r = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
                let mut got = Vec::new();
                for piece in signal.chunks(chunk) {
                    r.process(piece, &mut got);
                }
                r.flush(&mut got);
                assert_eq!(got, expected, "{fi}->{fo}, {kernel:?}, chunks of {chunk}");
            }
        }
    }
}

#[test]
fn a_reset_decimator_starts_afresh_in_every_kernel() {
    // The fast decimator keeps rows and sums between calls; reset (barge-in) must drop them.
    for (fi, fo) in [(16000, 8000), (24000, 8000), (48000, 16000)] {
        for kernel in [Kernel::Portable, Kernel::detect()] {
            let speech = tone(fi, 700.0, 9000.0, fi as usize / 10);
            let next = tone(fi, 1900.0, 7000.0, fi as usize / 10);
            let mut fresh = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
            let mut expected = Vec::new();
            for frame in next.chunks(fi as usize / 50) {
                fresh.process(frame, &mut expected);
            }
            // Stopped after whole frames (the sums of the last column carried) or mid-column.
            for cut in [speech.len(), speech.len() - 7] {
                let mut reused = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
                let mut discarded = Vec::new();
                reused.process(&speech[..cut], &mut discarded);
                reused.reset();
                let mut got = Vec::new();
                for frame in next.chunks(fi as usize / 50) {
                    reused.process(frame, &mut got);
                }
                assert_eq!(got, expected, "{fi}->{fo}, {kernel:?}, cut {cut}");
            }
        }
    }
}

#[test]
fn decimators_keep_their_history_when_a_long_chunk_follows_short_ones() {
    // A decimator's rows alone hold the inputs a later call reads again; a chunk longer than
    // the rows have room for must grow them without losing those inputs.
    for (fi, fo) in [(16000, 8000), (24000, 8000), (48000, 16000)] {
        for kernel in [Kernel::Portable, Kernel::detect()] {
            let signal = tone(fi, 987.0, 11000.0, 3 * PIECE);
            let mut whole = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
            let mut expected = one_shot(&mut whole, &signal);
            whole.flush(&mut expected);
            let frame = fi as usize / 50;
            let cuts = [frame, frame, 5, frame, PIECE + 333, 1, frame, 2 * frame + 3];
            let mut chunked = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
            let mut got = Vec::new();
            let mut rest = &signal[..];
            for cut in cuts {
                let (head, tail) = rest.split_at(cut);
                chunked.process(head, &mut got);
                rest = tail;
            }
            chunked.process(rest, &mut got);
            chunked.flush(&mut got);
            assert_eq!(got, expected, "{fi}->{fo}, {kernel:?}");
        }
    }
}

#[test]
fn every_kernel_gives_the_same_samples_to_rounding_for_every_pair() {
    // Kernels may differ in the last bit (fused multiply-adds round once), never by more.
    for &fi in &SUPPORTED_RATES {
        for &fo in &SUPPORTED_RATES {
            let signal = tone(fi, 1234.5, 15000.0, fi as usize / 5);
            let mut outputs = [Kernel::Portable, Kernel::detect()].map(|kernel| {
                let mut r = Resampler::with_kernel(fi, fo, Quality::High, kernel).unwrap();
                let mut out = Vec::new();
                for frame in signal.chunks(fi as usize / 50 + 1) {
                    r.process(frame, &mut out);
                }
                r.flush(&mut out);
                out
            });
            let [portable, detected] = &mut outputs;
            assert_eq!(portable.len(), detected.len(), "{fi}->{fo}");
            assert!(
                portable
                    .iter()
                    .zip(detected.iter())
                    .all(|(a, b)| (a - b).abs() <= 1),
                "{fi}->{fo}"
            );
        }
    }
}
