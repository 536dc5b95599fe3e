//! Prints the RTL's bytes per clock for every module on the corpus inputs of 4 KiB and up, and
//! the compressed sizes against lz4_flex: the figures in the README's `## Offload` section.
//!
//! `cargo run --release -p fpga-sim --example throughput`
#[path = "../tests/common/mod.rs"]
mod common;

use fpga_sim::VerilatedOffload;
use platform::offload::{compress_bound, Offload};

fn main() {
    let mut rtl = VerilatedOffload::new().expect("the Verilated model builds");
    println!("| input | bytes | crc64 B/clk | lz4_compress B/clk | lz4_decompress B/clk | RTL block | lz4_flex block | RTL / lz4_flex |");
    println!("|---|---|---|---|---|---|---|---|");
    let (mut rtl_total, mut flex_total) = (0usize, 0usize);
    for (name, input) in common::corpus() {
        if input.len() < 4096 {
            continue;
        }
        rtl.crc64(&[&input]);
        let crc_rate = input.len() as f64 / rtl.last_clocks() as f64;

        let mut block = vec![0u8; compress_bound(input.len())];
        let block_len = rtl
            .compress(&input, &mut block)
            .expect("output holds compress_bound");
        let compress_rate = input.len() as f64 / rtl.last_clocks() as f64;

        let flex_block = lz4_flex::block::compress(&input);
        let mut output = vec![0u8; input.len()];
        rtl.decompress(&flex_block, &mut output)
            .expect("lz4_flex blocks decode");
        let decompress_rate = input.len() as f64 / rtl.last_clocks() as f64;

        rtl_total += block_len;
        flex_total += flex_block.len();
        println!(
            "| {name} | {} | {crc_rate:.2} | {compress_rate:.2} | {decompress_rate:.2} | {block_len} | {} | {:.3} |",
            input.len(),
            flex_block.len(),
            block_len as f64 / flex_block.len() as f64
        );
    }
    println!(
        "| **all** | | | | | {rtl_total} | {flex_total} | {:.3} |",
        rtl_total as f64 / flex_total as f64
    );
}
