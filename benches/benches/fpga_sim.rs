//! What running on the simulated RTL costs the host: wall-clock throughput of the Verilated
//! engine (`--offload verilator`) for CRC-64 and LZ4, next to the software engine's in
//! `offload.rs`. The RTL's own figure, bytes per clock, comes from
//! `cargo run --release -p fpga-sim --example throughput`.
#[path = "common/offload.rs"]
mod common;

use common::bench_engine;
use criterion::{criterion_group, criterion_main, Criterion};
use fpga_sim::VerilatedOffload;

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
    bench_engine(criterion, "verilated_offload", &mut engine, json_like);
}

criterion_group!(benches, verilated);
criterion_main!(benches);
