//! The LZ4 compressor RTL: its blocks must decode with lz4_flex and with liblz4 to the exact
//! input, and compress about as well as lz4_flex.
mod common;

use common::liblz4;
use fpga_sim::VerilatedOffload;
use platform::offload::{compress_bound, Offload, OffloadError};
use proptest::prelude::*;

/// The RTL's blocks may be at most this much larger than lz4_flex's, in percent (the bar).
const RATIO_SLACK_PERCENT: usize = 10;

fn engine() -> VerilatedOffload {
    VerilatedOffload::new().expect("the Verilated model builds")
}

fn rtl_block(rtl: &mut VerilatedOffload, input: &[u8]) -> Vec<u8> {
    let mut block = vec![0u8; compress_bound(input.len())];
    let len = rtl
        .compress(input, &mut block)
        .expect("output holds compress_bound");
    block.truncate(len);
    block
}

/// Both reference decoders must turn `block` back into `input`, with no byte to spare.
fn check_decodes(name: &str, block: &[u8], input: &[u8]) {
    match lz4_flex::block::decompress(block, input.len()) {
        Ok(decoded) => assert!(
            decoded == input,
            "{name}: lz4_flex decodes it to other bytes"
        ),
        Err(error) => panic!("{name}: lz4_flex rejects it: {error}"),
    }
    let reference = liblz4::decompress(block, input.len());
    assert!(
        reference.as_deref() == Some(input),
        "{name}: liblz4 decodes it differently"
    );
}

#[test]
fn corpus_blocks_decode_with_both_references() {
    let mut rtl = engine();
    for (name, input) in common::corpus() {
        let block = rtl_block(&mut rtl, &input);
        check_decodes(&name, &block, &input);
        // And the RTL's own decoder: the whole offload in hardware, both ways.
        let mut decoded = vec![0u8; input.len()];
        assert_eq!(
            rtl.decompress(&block, &mut decoded),
            Ok(input.len()),
            "{name}"
        );
        assert!(
            decoded == input,
            "{name}: the RTL decodes its own block differently"
        );
    }
    assert_eq!(rtl.stats().software_fallbacks, 0);
}

#[test]
fn ratio_is_within_ten_percent_of_lz4_flex() {
    let mut rtl = engine();
    let (mut rtl_total, mut flex_total) = (0usize, 0usize);
    for (name, input) in common::corpus() {
        let rtl_len = rtl_block(&mut rtl, &input).len();
        let flex_len = lz4_flex::block::compress(&input).len();
        if input.len() >= 4096 {
            assert!(
                rtl_len * 100 <= flex_len * (100 + RATIO_SLACK_PERCENT),
                "{name}: rtl {rtl_len} bytes, lz4_flex {flex_len}"
            );
        }
        rtl_total += rtl_len;
        flex_total += flex_len;
    }
    assert!(
        rtl_total * 100 <= flex_total * (100 + RATIO_SLACK_PERCENT),
        "rtl {rtl_total} bytes, lz4_flex {flex_total}"
    );
}

#[test]
fn takes_at_least_one_input_byte_per_clock() {
    let mut rtl = engine();
    for (name, input) in common::corpus() {
        if input.len() < 4096 {
            continue;
        }
        rtl_block(&mut rtl, &input);
        let clocks = rtl.last_clocks() as usize;
        assert!(
            input.len() >= clocks,
            "{name}: {} bytes took {clocks} clocks",
            input.len()
        );
    }
}

#[test]
fn output_must_hold_the_worst_case() {
    let mut rtl = engine();
    let mut output = [0u8; 8];
    let error = rtl.compress(&[1u8; 100], &mut output).unwrap_err();
    assert!(
        matches!(error, OffloadError::OutputTooSmall { available: 8, .. }),
        "{error:?}"
    );
}

#[test]
fn blocks_above_the_limit_fall_back_to_software() {
    let mut rtl = engine();
    let input = common::Xorshift::new(5).bytes(fpga_sim::BLOCK_BYTES_MAX + 100);
    let block = rtl_block(&mut rtl, &input);
    check_decodes("over_limit", &block, &input);
    assert_eq!(rtl.stats().software_fallbacks, 1);
    assert_eq!(rtl.stats().compress_operations, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_inputs_round_trip(input in proptest::collection::vec(0u8..5, 0..3000)) {
        let mut rtl = engine();
        let block = rtl_block(&mut rtl, &input);
        check_decodes("proptest", &block, &input);
    }

    #[test]
    fn random_bytes_round_trip(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut rtl = engine();
        let block = rtl_block(&mut rtl, &input);
        check_decodes("proptest", &block, &input);
    }
}

#[test]
fn stalls_change_clocks_not_results() {
    let mut rtl = engine();
    for (name, input) in common::corpus() {
        let unstalled = rtl_block(&mut rtl, &input);
        for period in [2, 3, 7] {
            rtl.set_stall_period(Some(period));
            // The match finder sees the same bytes in the same order, so the block is identical.
            assert_eq!(
                rtl_block(&mut rtl, &input),
                unstalled,
                "{name} stalled every {period}"
            );
            rtl.set_stall_period(None);
        }
    }
}
