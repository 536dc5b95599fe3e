//! The waveform dump: with FERRITE_RTL_TRACE set, an engine records every clock into a VCD file.
//! (A test binary of its own: the variable is process-wide.)
use fpga_sim::{VerilatedOffload, TRACE_ENV};
use platform::offload::{Offload, CRC64_CHECK};

#[test]
fn trace_env_writes_a_vcd_of_the_run() {
    let path = std::env::temp_dir().join(format!("ferrite-rtl-trace-{}.vcd", std::process::id()));
    std::env::set_var(TRACE_ENV, &path);
    let mut rtl = VerilatedOffload::new().expect("the Verilated model builds");
    assert_eq!(rtl.crc64(&[b"123456789"]), CRC64_CHECK);
    let clocks = rtl.last_clocks();
    drop(rtl);
    std::env::remove_var(TRACE_ENV);

    let vcd = std::fs::read_to_string(&path).expect("the engine wrote the trace file");
    std::fs::remove_file(&path).expect("the trace file can be removed");
    assert!(vcd.contains("$enddefinitions"), "not a VCD header");
    for module in ["crc64", "lz4_decompress", "lz4_compress"] {
        assert!(
            vcd.contains(&format!("$scope module {module} $end")),
            "{module} is not traced"
        );
    }
    assert!(vcd.contains(" m_crc "), "the CRC result port is not traced");
    // Two timestamps (rising and falling edge) per clock.
    let timestamps = vcd.lines().filter(|line| line.starts_with('#')).count() as u64;
    assert!(
        timestamps >= 2 * clocks,
        "{timestamps} timestamps for {clocks} clocks"
    );
}
