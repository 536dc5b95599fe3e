//! The offload interface: CRC-64/XZ and LZ4 block compress/decompress.
//!
//! Every engine must agree bit for bit with [`SoftwareOffload`], the reference:
//! - **CRC-64/XZ** (ECMA-182 polynomial `0x42F0E1EBA9EA3693`, reflected, init and xorout all ones;
//!   check value of `"123456789"` is [`CRC64_CHECK`]), computed by crc64fast;
//! - **LZ4 block format** (no frame, no length prefix), computed by lz4_flex. Compressors may pick
//!   different matches, so compressed bytes may differ between engines; what must hold is that any
//!   engine's block decodes, with any conforming decoder, to the exact input.
//!
//! An engine is owned by one shard's store (`&mut self`): the simulated hardware keeps clocked
//! state, so engines are `Send` but need not be `Sync`.

use thiserror::Error;

/// CRC-64/XZ of the ASCII bytes `"123456789"`, the catalogue check value.
pub const CRC64_CHECK: u64 = 0x995D_C9BB_DF19_39FA;

/// Which engine computes CRC-64 and LZ4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadKind {
    /// crc64fast + lz4_flex on the CPU.
    Software,
    /// The Verilog RTL of `rtl/`, simulated clock by clock by Verilator (`fpga-sim`).
    Verilator,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum OffloadError {
    #[error("output buffer too small: {needed} bytes needed, {available} available")]
    OutputTooSmall { needed: usize, available: usize },
    #[error("malformed LZ4 block: {reason}")]
    Malformed { reason: String },
}

/// CRC-64 and LZ4 block compression, as software or (simulated) hardware provides them.
pub trait Offload: Send {
    /// A short name for logs and INFO ("software", "verilator").
    fn name(&self) -> &'static str;

    /// CRC-64/XZ of the concatenation of `parts` (items are checksummed header-tail + key + value
    /// without first copying them together).
    fn crc64(&mut self, parts: &[&[u8]]) -> u64;

    /// Compresses `input` as one LZ4 block into `output`, returning the block's length.
    /// `output` must hold at least [`compress_bound`]`(input.len())` bytes.
    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, OffloadError>;

    /// Decompresses one LZ4 block into `output`, returning the decoded length. Never writes past
    /// `output`: a block that would is [`OffloadError::OutputTooSmall`] or `Malformed`, so a
    /// caller that sizes `output` from what it expects is safe from a corrupt block.
    fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, OffloadError>;
}

/// The largest LZ4 block that `input_len` bytes can compress to (incompressible input grows a
/// little: one token plus length bytes per 255 literals).
pub fn compress_bound(input_len: usize) -> usize {
    lz4_flex::block::get_maximum_output_size(input_len)
}

/// The reference engine: crc64fast and lz4_flex on the CPU. Always available.
#[derive(Debug, Default, Clone, Copy)]
pub struct SoftwareOffload;

impl Offload for SoftwareOffload {
    fn name(&self) -> &'static str {
        "software"
    }

    fn crc64(&mut self, parts: &[&[u8]]) -> u64 {
        let mut digest = crc64fast::Digest::new();
        for part in parts {
            digest.write(part);
        }
        digest.sum64()
    }

    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, OffloadError> {
        let needed = compress_bound(input.len());
        if output.len() < needed {
            return Err(OffloadError::OutputTooSmall {
                needed,
                available: output.len(),
            });
        }
        lz4_flex::block::compress_into(input, output).map_err(|error| OffloadError::Malformed {
            reason: error.to_string(),
        })
    }

    fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, OffloadError> {
        lz4_flex::block::decompress_into(input, output).map_err(|error| match error {
            lz4_flex::block::DecompressError::OutputTooSmall { expected, actual } => {
                OffloadError::OutputTooSmall {
                    needed: expected,
                    available: actual,
                }
            }
            other => OffloadError::Malformed {
                reason: other.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc64_matches_the_catalogue_check_value() {
        assert_eq!(SoftwareOffload.crc64(&[b"123456789"]), CRC64_CHECK);
        assert_eq!(
            SoftwareOffload.crc64(&[b"1234", b"", b"56789"]),
            CRC64_CHECK
        );
        assert_eq!(SoftwareOffload.crc64(&[]), 0);
    }

    #[test]
    fn compress_needs_room_for_the_worst_case() {
        let mut output = [0u8; 4];
        let error = SoftwareOffload
            .compress(&[7u8; 100], &mut output)
            .unwrap_err();
        assert!(matches!(
            error,
            OffloadError::OutputTooSmall { available: 4, .. }
        ));
    }

    #[test]
    fn decompress_refuses_to_write_past_its_output() {
        let input = vec![b'a'; 1000];
        let mut block = vec![0u8; compress_bound(input.len())];
        let block_len = SoftwareOffload.compress(&input, &mut block).unwrap();
        let mut small = vec![0u8; 999];
        let error = SoftwareOffload
            .decompress(&block[..block_len], &mut small)
            .unwrap_err();
        assert!(
            matches!(error, OffloadError::OutputTooSmall { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut output = vec![0u8; 64];
        // Token: 0 literals, match length 4, then an offset of 0xFFFF before the start.
        let error = SoftwareOffload
            .decompress(&[0x00, 0xFF, 0xFF], &mut output)
            .unwrap_err();
        assert!(matches!(error, OffloadError::Malformed { .. }), "{error:?}");
    }

    proptest! {
        #[test]
        fn compress_then_decompress_is_identity(input in proptest::collection::vec(0u8..4, 0..4096)) {
            let mut block = vec![0u8; compress_bound(input.len())];
            let block_len = SoftwareOffload.compress(&input, &mut block).unwrap();
            let mut output = vec![0xFFu8; input.len()];
            let output_len = SoftwareOffload.decompress(&block[..block_len], &mut output).unwrap();
            prop_assert_eq!(&output[..output_len], &input[..]);
        }

        #[test]
        fn crc64_of_parts_equals_crc64_of_the_whole(input in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..512) {
            let cut = cut.min(input.len());
            let (head, tail) = input.split_at(cut);
            prop_assert_eq!(SoftwareOffload.crc64(&[head, tail]), SoftwareOffload.crc64(&[&input]));
        }
    }
}
