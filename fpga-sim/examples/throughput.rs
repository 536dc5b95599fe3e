//! Prints the RTL's bytes per clock for every module on the 64 KiB corpus inputs, and the
//! compression ratio against lz4_flex: the figures in the README's `## Offload` section.
//!
//! `cargo run --release -p fpga-sim --example throughput`
#[path = "../tests/common/mod.rs"]
mod common;

use fpga_sim::VerilatedOffload;
use platform::offload::Offload;

fn main() {
    let mut rtl = VerilatedOffload::new().expect("the Verilated model builds");
    println!("| input | bytes | crc64 B/clk | lz4_decompress B/clk |");
    println!("|---|---|---|---|");
    for (name, input) in common::corpus() {
        if input.len() < 4096 {
            continue;
        }
        rtl.crc64(&[&input]);
        let crc_rate = input.len() as f64 / rtl.last_clocks() as f64;
        let block = lz4_flex::block::compress(&input);
        let mut output = vec![0u8; input.len()];
        rtl.decompress(&block, &mut output)
            .expect("lz4_flex blocks decode");
        let decompress_rate = input.len() as f64 / rtl.last_clocks() as f64;
        println!(
            "| {name} | {} | {crc_rate:.2} | {decompress_rate:.2} |",
            input.len()
        );
    }
}
