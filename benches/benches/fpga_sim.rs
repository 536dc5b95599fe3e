//! What running on the simulated RTL costs the host: wall-clock throughput of the Verilated
//! engine (`--offload verilator`) for CRC-64 and LZ4, next to the software engine's in
//! `offload.rs`. The RTL's own figure, bytes per clock, comes from
//! `cargo run --release -p fpga-sim --example throughput`.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fpga_sim::VerilatedOffload;
use platform::offload::{compress_bound, Offload};
use std::hint::black_box;

/// JSON-like records: compressible the way cached values are.
fn json_like(len: usize) -> Vec<u8> {
    (0u64..)
        .flat_map(|id| {
            format!(
                "{{\"id\":{id},\"name\":\"user{}\",\"score\":{}}},",
                id % 97,
                id * 7 % 1000
            )
            .into_bytes()
        })
        .take(len)
        .collect()
}

fn verilated(criterion: &mut Criterion) {
    let mut engine = VerilatedOffload::new().expect("the Verilated model builds");
    let mut group = criterion.benchmark_group("verilated_offload");
    for len in [100usize, 4096, 65536] {
        let input = json_like(len);
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

criterion_group!(benches, verilated);
criterion_main!(benches);
