//! The software offload engine's throughput: CRC-64/XZ and LZ4 block compress/decompress.
#[path = "common/offload.rs"]
mod common;

use common::bench_engine;
use criterion::{criterion_group, criterion_main, Criterion};
use platform::offload::SoftwareOffload;

/// Text-like input: compressible the way cached JSON and HTML are.
fn text_like(len: usize) -> Vec<u8> {
    let words = [
        &b"ferrite "[..],
        b"cache ",
        b"segment ",
        b"{\"id\":",
        b"value",
        b"}, ",
    ];
    words
        .iter()
        .cycle()
        .flat_map(|word| word.iter().copied())
        .take(len)
        .collect()
}

fn offload(criterion: &mut Criterion) {
    let mut engine = SoftwareOffload;
    bench_engine(criterion, "software_offload", &mut engine, text_like);
}

criterion_group!(benches, offload);
criterion_main!(benches);
