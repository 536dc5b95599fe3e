//! The CRC-64 RTL against the software engine, bit for bit.
mod common;

use fpga_sim::VerilatedOffload;
use platform::offload::{Offload, SoftwareOffload, CRC64_CHECK};
use proptest::prelude::*;

fn engine() -> VerilatedOffload {
    VerilatedOffload::new().expect("the Verilated model builds")
}

#[test]
fn catalogue_check_value() {
    let mut rtl = engine();
    assert_eq!(rtl.crc64(&[b"123456789"]), CRC64_CHECK);
    assert_eq!(rtl.crc64(&[b"1", b"", b"2345678", b"9"]), CRC64_CHECK);
    assert_eq!(rtl.crc64(&[]), 0);
    assert_eq!(rtl.crc64(&[b""]), 0);
}

#[test]
fn corpus_matches_software() {
    let mut rtl = engine();
    for (name, input) in common::corpus() {
        assert_eq!(
            rtl.crc64(&[&input]),
            SoftwareOffload.crc64(&[&input]),
            "{name}"
        );
    }
}

#[test]
fn takes_eight_bytes_per_clock() {
    let mut rtl = engine();
    let input = vec![0xA5u8; 8 * 1000];
    rtl.crc64(&[&input]);
    // One reset clock, then one clock per beat; the result is registered by the last beat's edge.
    assert_eq!(rtl.last_clocks(), 1 + 1000);
    assert_eq!(rtl.stats().crc64_bytes, 8000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_parts_match_software(parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..6)) {
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut rtl = engine();
        prop_assert_eq!(rtl.crc64(&slices), SoftwareOffload.crc64(&slices));
    }
}

#[test]
fn stalls_change_clocks_not_results() {
    let mut rtl = engine();
    for period in [2, 3, 7] {
        rtl.set_stall_period(Some(period));
        for (name, input) in common::corpus() {
            assert_eq!(
                rtl.crc64(&[&input]),
                SoftwareOffload.crc64(&[&input]),
                "{name} stalled every {period}"
            );
        }
    }
}
