//! liblz4, the LZ4 reference implementation in C (through lz4-sys), as a second opinion.

use std::ffi::{c_char, c_int};

/// Stands in for the source of an empty input (see `compress`).
static EMPTY_SOURCE: [u8; 16] = [0; 16];

/// How liblz4 should compress.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    Default,
    /// LZ4_compress_HC at this level (1..=12).
    HighCompression(i32),
}

/// One LZ4 block of `input`, made by liblz4.
pub fn compress(input: &[u8], level: Level) -> Vec<u8> {
    let input_len = c_int::try_from(input.len()).expect("corpus inputs fit a C int");
    // SAFETY: LZ4_compressBound is a pure function of its argument.
    let capacity = unsafe { lz4_sys::LZ4_compressBound(input_len) };
    let mut block = vec![0u8; usize::try_from(capacity).expect("bound is positive")];
    // liblz4's optimal parser (HC levels 10 and up) reads its source pointer even for 0 bytes, so
    // an empty input must still point at real memory (an empty Vec's pointer is dangling).
    let source = if input.is_empty() {
        EMPTY_SOURCE.as_ptr()
    } else {
        input.as_ptr()
    } as *const c_char;
    let target = block.as_mut_ptr() as *mut c_char;
    // SAFETY: `source` is valid for `input_len` bytes and `target` for `capacity` bytes, the
    // worst case liblz4 itself computed, so neither call reads or writes out of bounds.
    let written = unsafe {
        match level {
            Level::Default => lz4_sys::LZ4_compress_default(source, target, input_len, capacity),
            Level::HighCompression(level) => {
                lz4_sys::LZ4_compress_HC(source, target, input_len, capacity, level)
            }
        }
    };
    assert!(
        written > 0 || input.is_empty(),
        "liblz4 failed to compress {} bytes",
        input.len()
    );
    block.truncate(usize::try_from(written).expect("liblz4 returned a length"));
    block
}

/// Decodes one block with liblz4's bounds-checked decoder into at most `capacity` bytes;
/// `None` when liblz4 reports the block malformed or too large.
pub fn decompress(block: &[u8], capacity: usize) -> Option<Vec<u8>> {
    let mut output = vec![0u8; capacity];
    let block_len = c_int::try_from(block.len()).expect("blocks fit a C int");
    let capacity = c_int::try_from(capacity).expect("capacity fits a C int");
    // SAFETY: LZ4_decompress_safe reads at most `block_len` bytes of `block` and writes at most
    // `capacity` bytes into `output`, both the lengths of live buffers.
    let written = unsafe {
        lz4_sys::LZ4_decompress_safe(
            block.as_ptr() as *const c_char,
            output.as_mut_ptr() as *mut c_char,
            block_len,
            capacity,
        )
    };
    let written = usize::try_from(written).ok()?;
    output.truncate(written);
    Some(output)
}
