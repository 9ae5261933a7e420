//! Criterion benchmarks of the pure-Rust kernels at real frame sizes, without Python.
//! `benches/test_*.py` repeats the same operations from Python; the difference is FFI cost.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use voicecore_core::g711::{self, Law};
use voicecore_core::pcm::Pcm;
use voicecore_core::resample::{Quality, Resampler};
use voicecore_core::twilio::{Messages, TwilioDecoder, TwilioEncoder};

fn speech_like(rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (6000.0 * (2.0 * std::f64::consts::PI * 220.0 * t).sin()
                + 2000.0 * (2.0 * std::f64::consts::PI * 1800.0 * t).sin()) as i16
        })
        .collect()
}

fn g711_frames(c: &mut Criterion) {
    let pcm = speech_like(8000, 160);
    let mut bytes = vec![0u8; 320];
    voicecore_core::pcm::write_le_bytes(&pcm, &mut bytes);
    let mut codes = vec![0u8; 160];
    c.bench_function("g711 ulaw_encode 20ms", |b| {
        b.iter(|| g711::encode_le_bytes_into(Law::Ulaw, black_box(&bytes), &mut codes));
    });
    let mut out = vec![0u8; 320];
    c.bench_function("g711 ulaw_decode 20ms", |b| {
        b.iter(|| g711::decode_le_bytes_into(Law::Ulaw, black_box(&codes), &mut out));
    });
}

fn resample_frames(c: &mut Criterion) {
    for (fi, fo) in [
        (8000, 16000),
        (16000, 8000),
        (24000, 8000),
        (24000, 16000),
        (44100, 16000),
        (48000, 16000),
    ] {
        let chunk = speech_like(fi, fi as usize / 50);
        let mut r = Resampler::new(fi, fo, Quality::High).unwrap();
        let mut out = Vec::with_capacity(fo as usize / 25);
        c.bench_function(&format!("resample stream {fi}->{fo} 20ms"), |b| {
            b.iter(|| {
                out.clear();
                r.process(black_box(&chunk), &mut out);
            });
        });
    }
}

/// The base64 μ-law payload of a 20 ms Twilio `media` message.
fn twilio_payload() -> String {
    use base64::Engine;
    let codes: Vec<u8> = speech_like(8000, 160)
        .iter()
        .map(|&s| g711::ulaw_encode_sample(s))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(&codes)
}

fn twilio_frames(c: &mut Criterion) {
    let payload = twilio_payload();
    let mut decoder = TwilioDecoder::new(16000, Quality::High).unwrap();
    c.bench_function("twilio inbound 8k->16k", |b| {
        b.iter(|| {
            decoder
                .decode(black_box(payload.as_bytes()))
                .map(<[i16]>::len)
        });
    });
    // At 8 kHz the encoder does not resample: the codec's own cost (μ-law, base64, framing).
    for rate in [8000, 16000, 24000] {
        let pcm = speech_like(rate, rate as usize / 50);
        let mut encoder = TwilioEncoder::new(rate, Quality::High).unwrap();
        let mut payloads = Messages::default();
        c.bench_function(&format!("twilio outbound {}k 20ms", rate / 1000), |b| {
            b.iter(|| {
                payloads.clear();
                encoder.encode(Pcm::Samples(black_box(&pcm)), &mut payloads);
            });
        });
    }
}

/// Streams a server's worth of calls take turns on one core, each encoding one frame per
/// turn, so a frame runs with its stream's state (history, rows) out of cache as it would in
/// production rather than warm from the frame before.
const INTERLEAVED_STREAMS: usize = 200;

fn twilio_interleaved(c: &mut Criterion) {
    let payload = twilio_payload();
    let mut decoders: Vec<TwilioDecoder> = (0..INTERLEAVED_STREAMS)
        .map(|_| TwilioDecoder::new(16000, Quality::High).unwrap())
        .collect();
    let mut turn = 0;
    let name = format!("twilio inbound 8k->16k, {INTERLEAVED_STREAMS} streams in turn");
    c.bench_function(&name, |b| {
        b.iter(|| {
            let n = decoders[turn]
                .decode(black_box(payload.as_bytes()))
                .map(<[i16]>::len);
            turn = (turn + 1) % INTERLEAVED_STREAMS;
            n
        });
    });
    for rate in [16000, 24000, 48000] {
        let pcm = speech_like(rate, rate as usize / 50);
        let mut encoders: Vec<TwilioEncoder> = (0..INTERLEAVED_STREAMS)
            .map(|_| TwilioEncoder::new(rate, Quality::High).unwrap())
            .collect();
        let mut payloads = Messages::default();
        let mut turn = 0;
        let name = format!(
            "twilio outbound {}k 20ms, {INTERLEAVED_STREAMS} streams in turn",
            rate / 1000
        );
        c.bench_function(&name, |b| {
            b.iter(|| {
                payloads.clear();
                encoders[turn].encode(Pcm::Samples(black_box(&pcm)), &mut payloads);
                turn = (turn + 1) % INTERLEAVED_STREAMS;
            });
        });
    }
}

criterion_group!(
    benches,
    g711_frames,
    resample_frames,
    twilio_frames,
    twilio_interleaved
);
criterion_main!(benches);
