//! Raw bindings to `csrc/shim.cpp`. Private: `VerilatedOffload` is the only caller.
//!
//! Each `*_cycle` call sets one module's inputs, runs one full clock (rising then falling edge)
//! of that module's domain and reads back its outputs. The RTL's outputs depend on state only, so
//! what a call returns is what the next edge will act on: a valid/ready handshake completes on
//! the next call when both were high.

use std::ffi::c_char;

/// The Verilated models (one per module of `rtl/`) and their optional waveform writer (opaque).
#[repr(C)]
pub(crate) struct FerriteRtl {
    _opaque: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CrcIn {
    pub s_data: u64,
    pub rst: u8,
    pub s_valid: u8,
    pub s_keep: u8,
    pub s_last: u8,
    pub m_ready: u8,
    pub padding: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CrcOut {
    pub m_crc: u64,
    pub s_ready: u8,
    pub m_valid: u8,
    pub padding: [u8; 6],
}

/// The ports of both LZ4 modules; `out_limit` is the decompressor's only (the compressor ignores
/// it) and the compressor reports `error` 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lz4In {
    pub s_data: u64,
    pub out_limit: u32,
    pub rst: u8,
    pub s_valid: u8,
    pub s_keep: u8,
    pub s_last: u8,
    pub m_ready: u8,
    pub padding: [u8; 7],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lz4Out {
    pub m_data: u64,
    pub result_len: u32,
    pub s_ready: u8,
    pub m_valid: u8,
    pub m_keep: u8,
    pub done: u8,
    pub error: u8,
    pub padding: [u8; 7],
}

/// One clock of an LZ4 module (`ferrite_rtl_compress_cycle` or `ferrite_rtl_decompress_cycle`).
pub(crate) type Lz4Cycle = unsafe extern "C" fn(*mut FerriteRtl, *const Lz4In, *mut Lz4Out);

extern "C" {
    /// A new model with every clock low, or null if it could not be allocated. `trace_path` is
    /// null or a NUL-terminated path for a VCD waveform.
    pub(crate) fn ferrite_rtl_new(trace_path: *const c_char) -> *mut FerriteRtl;
    /// Frees a model from `ferrite_rtl_new` (closing its waveform). Null is a no-op.
    pub(crate) fn ferrite_rtl_free(rtl: *mut FerriteRtl);
    pub(crate) fn ferrite_rtl_crc_cycle(
        rtl: *mut FerriteRtl,
        input: *const CrcIn,
        output: *mut CrcOut,
    );
    pub(crate) fn ferrite_rtl_decompress_cycle(
        rtl: *mut FerriteRtl,
        input: *const Lz4In,
        output: *mut Lz4Out,
    );
    pub(crate) fn ferrite_rtl_compress_cycle(
        rtl: *mut FerriteRtl,
        input: *const Lz4In,
        output: *mut Lz4Out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_shim() {
        assert_eq!(std::mem::size_of::<CrcIn>(), 16);
        assert_eq!(std::mem::size_of::<CrcOut>(), 16);
        assert_eq!(std::mem::size_of::<Lz4In>(), 24);
        assert_eq!(std::mem::size_of::<Lz4Out>(), 24);
    }
}
