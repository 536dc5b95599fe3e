//! The same bytes through the software engine and the Verilated RTL, which must agree:
//! - CRC-64 of the input cut in two at a fuzzer-chosen point: identical;
//! - the input as an LZ4 block decoded into a fuzzer-sized buffer: both accept with identical
//!   output, or both reject;
//! - the RTL's compression of the input: decodes with the software engine to the input, and the
//!   RTL decodes it too.
//! Half the inputs also make the driver stall the RTL's streams, which must change nothing.
#![no_main]

use fpga_sim::VerilatedOffload;
use libfuzzer_sys::fuzz_target;
use platform::offload::{compress_bound, Offload, SoftwareOffload};
use std::sync::{Mutex, OnceLock};

/// One simulated engine for the whole run: building a model per input would dominate the time.
static ENGINE: OnceLock<Mutex<VerilatedOffload>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let mut rtl = ENGINE
        .get_or_init(|| Mutex::new(VerilatedOffload::new().expect("the Verilated model builds")))
        .lock()
        .expect("a previous input panicked while holding the engine");
    let mut software = SoftwareOffload;
    // Half the inputs run with the driver stalling input and output every 2nd to 5th clock.
    rtl.set_stall_period((control & 0x80 != 0).then_some(2 + u64::from(control & 3)));

    let cut = usize::from(control) % (input.len() + 1);
    let (head, tail) = input.split_at(cut);
    assert_eq!(rtl.crc64(&[head, tail]), software.crc64(&[input]));

    // Output room from nothing to a little more than 8 times the block.
    let available = usize::from(control) * input.len() / 32;
    let mut rtl_output = vec![0u8; available];
    let mut software_output = vec![0u8; available];
    let rtl_result = rtl.decompress(input, &mut rtl_output);
    let software_result = software.decompress(input, &mut software_output);
    match (&rtl_result, &software_result) {
        (Ok(rtl_len), Ok(software_len)) => {
            assert_eq!(rtl_len, software_len);
            assert_eq!(rtl_output[..*rtl_len], software_output[..*software_len]);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("engines disagree: rtl {rtl_result:?}, software {software_result:?}"),
    }

    let mut block = vec![0u8; compress_bound(input.len())];
    let block_len = rtl
        .compress(input, &mut block)
        .expect("the output holds compress_bound");
    let mut decoded = vec![0u8; input.len()];
    assert_eq!(
        software.decompress(&block[..block_len], &mut decoded),
        Ok(input.len())
    );
    assert_eq!(decoded, input);
    decoded.fill(0);
    assert_eq!(
        rtl.decompress(&block[..block_len], &mut decoded),
        Ok(input.len())
    );
    assert_eq!(decoded, input);
});
