//! Cost of streaming an assistant reply through the sentence splitter, token by token,
//! without Python: the core of what `benches/test_text.py` times from Python.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use voicecore_core::text::{speakable, SentenceSplitter, SplitterConfig};

const REPLY: &str = "Sure! Dr. Smith's clinic opens at 9:30 a.m. on weekdays. The visit costs \
    $45.50, i.e. about 20% less than last year. You can book online at \
    https://clinic.example.com/book or e-mail front.desk@clinic.example.com.\n\n\
    1. The U.S. version (v2.1.3) ships on Jan. 5.\n2. The E.U. one follows in March.\n\n\
    Let me know if you need anything else... I'm happy to help!";

/// Cuts `text` into LLM-sized tokens: each word keeps its leading whitespace.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && i > start && !text[start..i].trim().is_empty() {
            out.push(&text[start..i]);
            start = i;
        }
    }
    out.push(&text[start..]);
    out
}

fn split_reply(c: &mut Criterion) {
    let tokens = tokens(REPLY);
    let mut group = c.benchmark_group("text");
    group.throughput(Throughput::Elements(tokens.len() as u64));
    let mut splitter = SentenceSplitter::new(SplitterConfig::default()).unwrap();
    group.bench_function("split_reply_by_token", |b| {
        b.iter(|| {
            for token in &tokens {
                black_box(splitter.push(black_box(token)));
            }
            black_box(splitter.flush());
        });
    });
    group.throughput(Throughput::Bytes(REPLY.len() as u64));
    group.bench_function("speakable_reply", |b| {
        b.iter(|| black_box(speakable(black_box(REPLY))));
    });
    group.finish();
}

criterion_group!(benches, split_reply);
criterion_main!(benches);
