//! The software offload engine's throughput: CRC-64/XZ and LZ4 block compress/decompress.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use platform::offload::{compress_bound, Offload, SoftwareOffload};
use std::hint::black_box;

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
    let mut group = criterion.benchmark_group("software_offload");
    for len in [100usize, 4096, 65536] {
        let input = text_like(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("crc64", len), &input, |bench, input| {
            bench.iter(|| engine.crc64(&[black_box(input)]))
        });
        let mut block = vec![0u8; compress_bound(len)];
        group.bench_with_input(
            BenchmarkId::new("lz4_compress", len),
            &input,
            |bench, input| bench.iter(|| engine.compress(black_box(input), &mut block).unwrap()),
        );
        let block_len = engine.compress(&input, &mut block).unwrap();
        let mut output = vec![0u8; len];
        group.bench_with_input(
            BenchmarkId::new("lz4_decompress", len),
            &block[..block_len],
            |bench, block| bench.iter(|| engine.decompress(black_box(block), &mut output).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, offload);
criterion_main!(benches);
