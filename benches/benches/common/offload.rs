//! One criterion group for an `Offload` engine: CRC-64, LZ4 compress and LZ4 decompress of
//! 100 B, 4 KiB and 64 KiB inputs. The software and the Verilated engines' benches both use it,
//! so their figures line up.
use criterion::{BenchmarkId, Criterion, Throughput};
use platform::offload::{compress_bound, Offload};
use std::hint::black_box;

pub fn bench_engine(
    criterion: &mut Criterion,
    group_name: &str,
    engine: &mut dyn Offload,
    make_input: fn(usize) -> Vec<u8>,
) {
    let mut group = criterion.benchmark_group(group_name);
    for len in [100usize, 4096, 65536] {
        let input = make_input(len);
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
