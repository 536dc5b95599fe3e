//! The LZ4 decompressor RTL against blocks made by lz4_flex and by liblz4 (default and HC).
mod common;

use common::liblz4::{self, Level};
use fpga_sim::VerilatedOffload;
use platform::offload::{compress_bound, Offload, OffloadError, SoftwareOffload};
use proptest::prelude::*;

fn engine() -> VerilatedOffload {
    VerilatedOffload::new().expect("the Verilated model builds")
}

fn lz4_flex_block(input: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress(input)
}

/// Decodes `block` with the RTL into a buffer of exactly `expected.len()` bytes pre-filled with
/// 0xFF (so a byte the RTL skipped shows), and checks the result.
fn check(rtl: &mut VerilatedOffload, name: &str, block: &[u8], expected: &[u8]) {
    let mut output = vec![0xFFu8; expected.len()];
    let len = rtl
        .decompress(block, &mut output)
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(len, expected.len(), "{name}");
    assert!(output == expected, "{name}: decoded bytes differ");
}

#[test]
fn corpus_blocks_from_lz4_flex() {
    let mut rtl = engine();
    for (name, input) in common::corpus() {
        check(&mut rtl, &name, &lz4_flex_block(&input), &input);
    }
    assert_eq!(rtl.stats().software_fallbacks, 0);
}

#[test]
fn corpus_blocks_from_liblz4_default_and_hc() {
    let mut rtl = engine();
    for level in [
        Level::Default,
        Level::HighCompression(9),
        Level::HighCompression(12),
    ] {
        for (name, input) in common::corpus() {
            check(
                &mut rtl,
                &format!("{name} {level:?}"),
                &liblz4::compress(&input, level),
                &input,
            );
        }
    }
}

#[test]
fn match_heavy_data_decodes_at_least_four_bytes_per_clock() {
    let mut rtl = engine();
    for (name, input) in common::corpus() {
        if !(name.starts_with("zeros_") || name.starts_with("json_")) || input.len() < 4096 {
            continue;
        }
        check(&mut rtl, &name, &lz4_flex_block(&input), &input);
        let bytes_per_clock = input.len() as f64 / rtl.last_clocks() as f64;
        assert!(
            bytes_per_clock >= 4.0,
            "{name}: {bytes_per_clock:.2} bytes per clock"
        );
    }
}

#[test]
fn malformed_blocks_are_errors() {
    let mut rtl = engine();
    let mut output = [0u8; 64];
    let cases: &[(&str, &[u8])] = &[
        ("empty", &[]),
        ("offset_before_start", &[0x00, 0xFF, 0xFF, 0x00]),
        ("offset_zero", &[0x10, b'a', 0x00, 0x00, 0x00]),
        ("truncated_literals", &[0x50, b'a', b'b']),
        ("truncated_offset", &[0x10, b'a', 0x01]),
        ("truncated_literal_length", &[0xF0, 0xFF]),
        ("truncated_match_length", &[0x1F, b'a', 0x01, 0x00, 0xFF]),
    ];
    for (name, block) in cases {
        let hardware = rtl.decompress(block, &mut output);
        let software = SoftwareOffload.decompress(block, &mut output);
        assert!(
            matches!(hardware, Err(OffloadError::Malformed { .. })),
            "{name}: {hardware:?}"
        );
        assert!(
            software.is_err(),
            "{name}: the reference accepts it: {software:?}"
        );
    }
}

#[test]
fn output_limit_is_never_crossed() {
    let mut rtl = engine();
    let input = common::corpus()
        .into_iter()
        .find(|(name, _)| name == "text_4096")
        .unwrap()
        .1;
    let block = lz4_flex_block(&input);
    for available in [0usize, 1, 100, 4095] {
        // A guard region past the slice the engine gets must stay untouched.
        let mut buffer = vec![0xEEu8; available + 64];
        let error = rtl
            .decompress(&block, &mut buffer[..available])
            .unwrap_err();
        assert!(
            matches!(error, OffloadError::OutputTooSmall { available: a, .. } if a == available),
            "{error:?}"
        );
        assert!(
            buffer[available..].iter().all(|&byte| byte == 0xEE),
            "wrote past {available}"
        );
    }
}

#[test]
fn blocks_above_the_limit_fall_back_to_software() {
    let mut rtl = engine();
    let input = vec![3u8; fpga_sim::BLOCK_BYTES_MAX + 1];
    let block = lz4_flex_block(&input);
    check(&mut rtl, "over_limit", &block, &input);
    assert_eq!(rtl.stats().software_fallbacks, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_blocks_from_lz4_flex(input in proptest::collection::vec(0u8..6, 0..3000)) {
        let mut rtl = engine();
        let block = lz4_flex_block(&input);
        let mut output = vec![0u8; input.len()];
        prop_assert_eq!(rtl.decompress(&block, &mut output), Ok(input.len()));
        prop_assert_eq!(output, input);
    }

    #[test]
    fn garbage_agrees_with_the_reference(block in proptest::collection::vec(any::<u8>(), 0..300), available in 0usize..2000) {
        let mut rtl = engine();
        let mut hardware_output = vec![0u8; available];
        let mut software_output = vec![0u8; available];
        let hardware = rtl.decompress(&block, &mut hardware_output);
        let software = SoftwareOffload.decompress(&block, &mut software_output);
        prop_assert_eq!(hardware.is_ok(), software.is_ok(), "hardware {:?} software {:?}", hardware, software);
        if let (Ok(hardware_len), Ok(software_len)) = (hardware, software) {
            prop_assert_eq!(hardware_len, software_len);
            prop_assert_eq!(&hardware_output[..hardware_len], &software_output[..software_len]);
        }
    }
}

#[test]
fn compress_bound_covers_the_decoder_input_limit() {
    assert_eq!(
        fpga_sim::decompress_input_bytes_max(),
        compress_bound(fpga_sim::BLOCK_BYTES_MAX)
    );
}

#[test]
fn stalls_change_clocks_not_results() {
    let mut rtl = engine();
    for period in [2, 3, 7] {
        rtl.set_stall_period(Some(period));
        for (name, input) in common::corpus() {
            check(
                &mut rtl,
                &format!("{name} stalled every {period}"),
                &lz4_flex_block(&input),
                &input,
            );
        }
    }
}

/// A block by hand: `literals`, then a copy of `match_length` bytes from `offset` back, then 5
/// closing literals.
fn literals_then_match(literals: &[u8], offset: u16, match_length: usize) -> Vec<u8> {
    fn length_bytes(block: &mut Vec<u8>, mut rest: usize) {
        while rest >= 255 {
            block.push(255);
            rest -= 255;
        }
        block.push(rest as u8);
    }
    let mut block = vec![0xFF];
    length_bytes(&mut block, literals.len() - 15);
    block.extend_from_slice(literals);
    block.extend_from_slice(&offset.to_le_bytes());
    length_bytes(&mut block, match_length - 19);
    block.push(0x50);
    block.extend_from_slice(b"tail!");
    block
}

#[test]
fn offsets_reach_across_the_whole_window() {
    let mut rtl = engine();
    let literals = common::Xorshift::new(99).bytes(65_000);
    let block = literals_then_match(&literals, 65_000, 500);
    let mut expected = literals.clone();
    expected.extend_from_slice(&literals[..500]);
    expected.extend_from_slice(b"tail!");
    check(&mut rtl, "offset 65000", &block, &expected);

    let too_far = literals_then_match(&literals, 65_001, 500);
    let mut output = vec![0u8; expected.len()];
    let error = rtl.decompress(&too_far, &mut output).unwrap_err();
    assert!(matches!(error, OffloadError::Malformed { .. }), "{error:?}");
    assert!(SoftwareOffload.decompress(&too_far, &mut output).is_err());
}
