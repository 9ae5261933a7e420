//! Steady-state cost of the playout buffer's hot path: one 20 ms push and one frame read.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use voicecore_core::playout::PlayoutBuffer;

fn push_read_20ms_16k(c: &mut Criterion) {
    let mut group = c.benchmark_group("playout");
    group.throughput(Throughput::Elements(320));
    let frame: Vec<i16> = (0..320)
        .map(|i| (i * 97 % 65_536 - 32_768) as i16)
        .collect();
    let mut bytes = vec![0u8; 640];
    voicecore_core::pcm::write_le_bytes(&frame, &mut bytes);

    let mut buffer = PlayoutBuffer::new(16_000, 20, 60_000).unwrap();
    // Keep a few frames queued, like a live call with TTS slightly ahead of playback.
    for _ in 0..5 {
        buffer.push(&frame, None).unwrap();
    }
    let mut out = vec![0i16; buffer.frame_samples()];
    group.bench_function("push_read_20ms_16k", |b| {
        b.iter(|| {
            buffer.push(black_box(&frame), None).unwrap();
            black_box(buffer.read_frame(false, &mut out));
        });
    });

    let mut out_bytes = vec![0u8; buffer.frame_bytes()];
    group.bench_function("push_read_20ms_16k_le_bytes", |b| {
        b.iter(|| {
            buffer.push_le_bytes(black_box(&bytes), None).unwrap();
            black_box(buffer.read_frame_le_bytes(false, &mut out_bytes));
        });
    });

    group.bench_function("push_read_20ms_16k_with_mark", |b| {
        b.iter(|| {
            buffer
                .push(black_box(&frame), Some("chunk".to_owned()))
                .unwrap();
            black_box(buffer.read_frame(false, &mut out));
        });
    });
    group.finish();
}

criterion_group!(benches, push_read_20ms_16k);
criterion_main!(benches);
