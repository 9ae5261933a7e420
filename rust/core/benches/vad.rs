//! Cost of the native VAD per 20 ms push, and of its parts per 10 ms frame.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use voicecore_core::vad::{Detector, Vad};

/// A noisy, voiced-looking signal so that every code path (speech and silence) runs.
fn signal(rate: u32, seconds: usize) -> Vec<i16> {
    let mut seed = 1u32;
    (0..rate as usize * seconds)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let t = i as f32 / rate as f32;
            let voiced = (2.0 * std::f32::consts::PI * 140.0 * t).sin() * (t * 2.0).sin().max(0.0);
            (3000.0 * voiced + ((seed >> 20) as f32 - 2048.0) * 0.5) as i16
        })
        .collect()
}

fn vad(c: &mut Criterion) {
    let mut group = c.benchmark_group("vad");
    for rate in [8000u32, 16000] {
        let audio = signal(rate, 10);
        let chunk = rate as usize / 50;
        group.throughput(Throughput::Elements(chunk as u64));
        let mut vad = Vad::new(rate, 0.5, 200, 500, 300).unwrap();
        let mut chunks = audio.chunks_exact(chunk).cycle();
        group.bench_function(format!("push_20ms_{}k", rate / 1000), |b| {
            b.iter(|| black_box(vad.push(black_box(chunks.next().unwrap()))));
        });
        let mut detector = Detector::new(rate);
        let hop = detector.frame_samples();
        let mut frames = audio.chunks_exact(hop).cycle();
        group.throughput(Throughput::Elements(hop as u64));
        group.bench_function(format!("features_10ms_{}k", rate / 1000), |b| {
            b.iter(|| black_box(detector.features(black_box(frames.next().unwrap()))[0]));
        });
        group.bench_function(format!("probability_10ms_{}k", rate / 1000), |b| {
            b.iter(|| black_box(detector.probability(black_box(frames.next().unwrap()))));
        });
    }
    group.finish();
}

criterion_group!(benches, vad);
criterion_main!(benches);
