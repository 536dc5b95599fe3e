//! `fpga-sim`: the RTL of `rtl/`, verilated, exposed as an `Offload` engine.
