//! `fpga-sim`: the RTL of `rtl/`, verilated, exposed as an [`Offload`] engine.
//!
//! `build.rs` runs Verilator on each module of `rtl/` and links the generated C++ models with a
//! small C ABI shim (`csrc/shim.cpp`). [`VerilatedOffload`] drives the simulated modules clock by clock: it packs
//! input into 8-byte beats, honours each valid/ready handshake, and counts the clocks every
//! operation takes ([`VerilatedOffload::last_clocks`], [`VerilatedOffload::stats`]).
//!
//! Goals: bit-exact agreement with [`platform::offload::SoftwareOffload`] (CRC-64/XZ) and LZ4
//! blocks any conforming decoder accepts; clock counts that say what the hardware would sustain.
//! Non-goals: speed (a simulated clock costs far more than a CPU does for the same bytes), and
//! sharing one model between threads (each shard owns its engine; the type is `Send`, not `Sync`).
//!
//! Set [`TRACE_ENV`] to a file path to record a VCD waveform of every clock (debugging only: the
//! file grows by about 100 bytes per byte processed).

mod ffi;

use platform::offload::{compress_bound, Offload, OffloadError, SoftwareOffload};
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use thiserror::Error;

/// Environment variable naming a VCD file to record the simulation into. The first engine of the
/// process writes exactly that path; later ones append `.N` (N = 1, 2, ...) so shards do not
/// overwrite each other.
pub const TRACE_ENV: &str = "FERRITE_RTL_TRACE";

/// The largest block the LZ4 modules take: their history window and input memory. Larger inputs
/// go to the software engine and are counted in [`RtlStats::software_fallbacks`].
pub const BLOCK_BYTES_MAX: usize = 64 * 1024;

/// The largest compressed block the RTL decompressor is given: the worst case for a block of
/// [`BLOCK_BYTES_MAX`]. It also keeps the RTL's 32-bit length sums from overflowing.
pub fn decompress_input_bytes_max() -> usize {
    compress_bound(BLOCK_BYTES_MAX)
}

/// Bytes the RTL data paths move per clock (64-bit beats).
pub const BEAT_BYTES: usize = 8;

/// Clocks an operation may take per byte in or out before the engine declares the RTL stuck.
/// The slowest module needs about one clock per byte; anything far beyond is an RTL bug.
const CLOCKS_PER_BYTE_MAX: u64 = 4;
/// Fixed clocks an operation may take on top of [`CLOCKS_PER_BYTE_MAX`] (reset, pipeline fill).
const CLOCKS_FIXED_MAX: u64 = 64;

static ENGINES_CREATED: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Error)]
pub enum RtlError {
    #[error("the Verilated model could not be created")]
    ModelCreation,
    #[error("{TRACE_ENV} holds a path with a NUL byte")]
    TracePath,
}

/// What an engine has done since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtlStats {
    /// CRC-64 operations, bytes hashed and clocks spent.
    pub crc64_operations: u64,
    pub crc64_bytes: u64,
    pub crc64_clocks: u64,
    /// LZ4 compressions the RTL ran, bytes it took in and clocks spent.
    pub compress_operations: u64,
    pub compress_bytes: u64,
    pub compress_clocks: u64,
    /// LZ4 decompressions the RTL ran, bytes it produced and clocks spent.
    pub decompress_operations: u64,
    pub decompress_bytes: u64,
    pub decompress_clocks: u64,
    /// LZ4 operations the engine handed to the software engine instead of the RTL (blocks above
    /// [`BLOCK_BYTES_MAX`]).
    pub software_fallbacks: u64,
}

/// The Verilated offload modules as an [`Offload`] engine. One per shard thread.
pub struct VerilatedOffload {
    model: NonNull<ffi::FerriteRtl>,
    stats: RtlStats,
    last_clocks: u64,
    stall_period: Option<u64>,
    software: SoftwareOffload,
}

// SAFETY: the Verilated model is plain heap state with no thread affinity (it is built without
// Verilator threads); `VerilatedOffload` owns it exclusively and every access goes through
// `&mut self`, so moving it to another thread cannot race.
unsafe impl Send for VerilatedOffload {}

impl VerilatedOffload {
    /// Builds a fresh simulated instance of every module (honouring [`TRACE_ENV`]).
    pub fn new() -> Result<VerilatedOffload, RtlError> {
        let instance = ENGINES_CREATED.fetch_add(1, Ordering::Relaxed);
        let trace_path = match std::env::var_os(TRACE_ENV) {
            Some(path) => {
                let mut path = path.into_string().map_err(|_| RtlError::TracePath)?;
                if instance > 0 {
                    path.push_str(&format!(".{instance}"));
                }
                Some(CString::new(path).map_err(|_| RtlError::TracePath)?)
            }
            None => None,
        };
        let trace_pointer = trace_path
            .as_ref()
            .map_or(std::ptr::null(), |path| path.as_ptr());
        // SAFETY: `trace_pointer` is null or a NUL-terminated string that outlives the call (the
        // shim copies what it needs before returning).
        let model = unsafe { ffi::ferrite_rtl_new(trace_pointer) };
        let model = NonNull::new(model).ok_or(RtlError::ModelCreation)?;
        Ok(VerilatedOffload {
            model,
            stats: RtlStats::default(),
            last_clocks: 0,
            stall_period: None,
            software: SoftwareOffload,
        })
    }

    /// Clocks the last operation took on the RTL (0 if it ran in software).
    pub fn last_clocks(&self) -> u64 {
        self.last_clocks
    }

    /// Verification aid: with `Some(period)` the driver withholds input and refuses output on
    /// every `period`-th clock, so the RTL's valid/ready handshakes are exercised under stalls
    /// (results must not change, only clock counts). `period` must be at least 2.
    pub fn set_stall_period(&mut self, period: Option<u64>) {
        assert!(
            period.is_none_or(|period| period >= 2),
            "a stall period below 2 never moves data"
        );
        self.stall_period = period;
    }

    /// Whether the driver stalls on this clock (see [`Self::set_stall_period`]).
    fn stalled(&self, clock: u64) -> bool {
        self.stall_period
            .is_some_and(|period| clock.is_multiple_of(period))
    }

    /// Totals since creation.
    pub fn stats(&self) -> RtlStats {
        self.stats
    }

    /// One clock of an LZ4 module: drives its inputs (a beat, offered or not; output accepted or
    /// not), clocks it, and returns its outputs.
    fn lz4_cycle(
        &mut self,
        module: Lz4Module,
        rst: bool,
        beat: Beat,
        offering: bool,
        ready: bool,
    ) -> StreamState {
        let (rst, s_valid, s_last, m_ready) = (
            u8::from(rst),
            u8::from(offering),
            u8::from(beat.last),
            u8::from(ready),
        );
        let (cycle, out_limit): (ffi::Lz4Cycle, u32) = match module {
            Lz4Module::Compress => (ffi::ferrite_rtl_compress_cycle, 0),
            Lz4Module::Decompress { out_limit } => (ffi::ferrite_rtl_decompress_cycle, out_limit),
        };
        let input = ffi::Lz4In {
            s_data: beat.data,
            out_limit,
            rst,
            s_valid,
            s_keep: beat.keep,
            s_last,
            m_ready,
            ..Default::default()
        };
        let mut output = ffi::Lz4Out::default();
        // SAFETY: as in `crc_cycle`.
        unsafe { cycle(self.model.as_ptr(), &input, &mut output) };
        StreamState {
            m_data: output.m_data,
            m_keep: output.m_keep,
            m_valid: output.m_valid != 0,
            s_ready: output.s_ready != 0,
            done: output.done != 0,
            error: output.error,
            result_len: output.result_len,
        }
    }

    /// Resets an LZ4 module, streams `input` into it and its output into `output[..limit]` until
    /// it raises `done`. Returns the bytes written and the final outputs; `last_clocks` is set.
    fn run_lz4(
        &mut self,
        module: Lz4Module,
        input: &[u8],
        output: &mut [u8],
        limit: usize,
    ) -> (usize, StreamState) {
        const IDLE: Beat = Beat {
            data: 0,
            keep: 0,
            last: false,
        };
        let budget = clock_budget(input.len() + limit);
        let mut state = self.lz4_cycle(module, true, IDLE, false, false);
        let mut clocks = 1;
        let parts = [input];
        let mut beats = Beats::new(&parts);
        let mut beat = beats.next();
        let mut written = 0usize;
        while !state.done {
            assert!(
                clocks < budget,
                "{module:?} RTL did not finish within {budget} clocks"
            );
            let stalled = self.stalled(clocks);
            if state.m_valid && !stalled {
                // The beat moves on this clock's edge.
                let count = state.m_keep.count_ones() as usize;
                assert!(
                    written + count <= limit,
                    "{module:?} RTL wrote past its output limit"
                );
                output[written..written + count]
                    .copy_from_slice(&state.m_data.to_le_bytes()[..count]);
                written += count;
            }
            let offering = beat.is_some() && !stalled;
            let accepted = offering && state.s_ready;
            state = self.lz4_cycle(module, false, beat.unwrap_or(IDLE), offering, !stalled);
            clocks += 1;
            if accepted {
                beat = beats.next();
            }
        }
        self.last_clocks = clocks;
        (written, state)
    }

    /// Runs one block through `lz4_decompress` with the output limited to `limit` bytes.
    fn rtl_decompress(
        &mut self,
        input: &[u8],
        output: &mut [u8],
        limit: usize,
    ) -> DecompressOutcome {
        let out_limit = u32::try_from(limit).expect("limit is at most BLOCK_BYTES_MAX");
        let (written, state) =
            self.run_lz4(Lz4Module::Decompress { out_limit }, input, output, limit);
        self.stats.decompress_operations += 1;
        self.stats.decompress_clocks += self.last_clocks;
        let result_len = state.result_len as usize;
        match state.error {
            DECOMPRESS_OK => {
                assert_eq!(
                    result_len, written,
                    "lz4_decompress RTL reported a length it did not write"
                );
                self.stats.decompress_bytes += written as u64;
                DecompressOutcome::Decoded(written)
            }
            DECOMPRESS_OUTPUT_LIMIT => DecompressOutcome::OverLimit { needed: result_len },
            code => DecompressOutcome::Malformed(decompress_error_reason(code)),
        }
    }

    /// Runs one block of at most [`BLOCK_BYTES_MAX`] bytes through `lz4_compress` into `output`
    /// (at least `compress_bound(input.len())` bytes long).
    fn rtl_compress(&mut self, input: &[u8], output: &mut [u8]) -> usize {
        let limit = output.len();
        let (written, state) = self.run_lz4(Lz4Module::Compress, input, output, limit);
        assert_eq!(
            state.result_len as usize, written,
            "lz4_compress RTL reported a length it did not write"
        );
        self.stats.compress_operations += 1;
        self.stats.compress_bytes += input.len() as u64;
        self.stats.compress_clocks += self.last_clocks;
        written
    }

    fn crc_cycle(&mut self, input: &ffi::CrcIn) -> ffi::CrcOut {
        let mut output = ffi::CrcOut::default();
        // SAFETY: `self.model` came from `ferrite_rtl_new` and is freed only in `drop`; the
        // pointers are to live, correctly laid out values (see the layout test in `ffi`).
        unsafe { ffi::ferrite_rtl_crc_cycle(self.model.as_ptr(), input, &mut output) };
        output
    }
}

impl VerilatedOffload {
    fn software_decompress(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, OffloadError> {
        self.last_clocks = 0;
        self.stats.software_fallbacks += 1;
        self.software.decompress(input, output)
    }
}

impl Drop for VerilatedOffload {
    fn drop(&mut self) {
        // SAFETY: the model came from `ferrite_rtl_new` and is not used after this.
        unsafe { ffi::ferrite_rtl_free(self.model.as_ptr()) };
    }
}

/// `lz4_decompress`'s `error` codes (rtl/lz4_decompress.v).
const DECOMPRESS_OK: u8 = 0;
const DECOMPRESS_TRUNCATED: u8 = 1;
const DECOMPRESS_OFFSET_ZERO: u8 = 2;
const DECOMPRESS_OFFSET_RANGE: u8 = 3;
const DECOMPRESS_OUTPUT_LIMIT: u8 = 4;

fn decompress_error_reason(code: u8) -> &'static str {
    match code {
        DECOMPRESS_TRUNCATED => "truncated sequence",
        DECOMPRESS_OFFSET_ZERO => "match offset 0",
        DECOMPRESS_OFFSET_RANGE => "match offset before the start of the output",
        other => panic!("lz4_decompress RTL reported unknown error code {other}"),
    }
}

/// The two LZ4 modules, which share one stream interface (rtl/README.md).
#[derive(Clone, Copy, Debug)]
enum Lz4Module {
    Compress,
    Decompress { out_limit: u32 },
}

/// An LZ4 module's outputs after a clock (`error` is always 0 for the compressor).
struct StreamState {
    m_data: u64,
    m_keep: u8,
    m_valid: bool,
    s_ready: bool,
    done: bool,
    error: u8,
    result_len: u32,
}

/// How one block went through the RTL decompressor.
enum DecompressOutcome {
    Decoded(usize),
    OverLimit { needed: usize },
    Malformed(&'static str),
}

/// The clock budget for an operation touching `bytes` bytes; exceeding it is an RTL bug.
fn clock_budget(bytes: usize) -> u64 {
    CLOCKS_FIXED_MAX + CLOCKS_PER_BYTE_MAX * bytes as u64
}

/// One 64-bit input beat: lane i is bits 8i..8i+7; `keep` has one bit per byte present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Beat {
    data: u64,
    keep: u8,
    last: bool,
}

/// Packs the concatenation of byte slices into beats, lanes filled from 0, only the final beat
/// partial. An empty input is one beat with no bytes and `last` set.
struct Beats<'a> {
    parts: &'a [&'a [u8]],
    part: usize,
    offset: usize,
    finished: bool,
}

impl<'a> Beats<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Beats<'a> {
        Beats {
            parts,
            part: 0,
            offset: 0,
            finished: false,
        }
    }

    fn skip_empty_parts(&mut self) {
        while self.part < self.parts.len() && self.offset == self.parts[self.part].len() {
            self.part += 1;
            self.offset = 0;
        }
    }
}

impl Iterator for Beats<'_> {
    type Item = Beat;

    fn next(&mut self) -> Option<Beat> {
        if self.finished {
            return None;
        }
        let mut bytes = [0u8; BEAT_BYTES];
        let mut count = 0;
        self.skip_empty_parts();
        while count < BEAT_BYTES && self.part < self.parts.len() {
            let part = self.parts[self.part];
            let take = (part.len() - self.offset).min(BEAT_BYTES - count);
            bytes[count..count + take].copy_from_slice(&part[self.offset..self.offset + take]);
            count += take;
            self.offset += take;
            self.skip_empty_parts();
        }
        let last = self.part == self.parts.len();
        self.finished = last;
        Some(Beat {
            data: u64::from_le_bytes(bytes),
            keep: ((1u16 << count) - 1) as u8,
            last,
        })
    }
}

impl Offload for VerilatedOffload {
    fn name(&self) -> &'static str {
        "verilator"
    }

    fn crc64(&mut self, parts: &[&[u8]]) -> u64 {
        let total_bytes: usize = parts.iter().map(|part| part.len()).sum();
        let budget = clock_budget(total_bytes);
        let mut output = self.crc_cycle(&ffi::CrcIn {
            rst: 1,
            ..Default::default()
        });
        let mut clocks = 1;
        let mut beats = Beats::new(parts);
        let mut beat = beats.next();
        let crc = loop {
            if output.m_valid != 0 {
                break output.m_crc;
            }
            let stalled = self.stalled(clocks);
            assert!(
                clocks < budget,
                "crc64 RTL made no result within {budget} clocks"
            );
            let offered = beat.unwrap_or(Beat {
                data: 0,
                keep: 0,
                last: false,
            });
            let offering = beat.is_some() && !stalled;
            let accepted = offering && output.s_ready != 0;
            let input = ffi::CrcIn {
                s_data: offered.data,
                s_valid: u8::from(offering),
                s_keep: offered.keep,
                s_last: u8::from(offered.last),
                m_ready: u8::from(!stalled),
                ..Default::default()
            };
            output = self.crc_cycle(&input);
            clocks += 1;
            if accepted {
                beat = beats.next();
            }
        };
        self.last_clocks = clocks;
        self.stats.crc64_operations += 1;
        self.stats.crc64_bytes += total_bytes as u64;
        self.stats.crc64_clocks += clocks;
        crc
    }

    fn compress(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, OffloadError> {
        let needed = compress_bound(input.len());
        if output.len() < needed {
            return Err(OffloadError::OutputTooSmall {
                needed,
                available: output.len(),
            });
        }
        if input.len() > BLOCK_BYTES_MAX {
            self.last_clocks = 0;
            self.stats.software_fallbacks += 1;
            return self.software.compress(input, output);
        }
        Ok(self.rtl_compress(input, output))
    }

    fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, OffloadError> {
        if input.len() > decompress_input_bytes_max() {
            return self.software_decompress(input, output);
        }
        let limit = output.len().min(BLOCK_BYTES_MAX);
        match self.rtl_decompress(input, output, limit) {
            DecompressOutcome::Decoded(len) => Ok(len),
            DecompressOutcome::Malformed(reason) => Err(OffloadError::Malformed {
                reason: reason.to_string(),
            }),
            // The block may fit the caller's buffer but not the hardware's limit.
            DecompressOutcome::OverLimit { .. } if output.len() > BLOCK_BYTES_MAX => {
                self.software_decompress(input, output)
            }
            DecompressOutcome::OverLimit { needed } => Err(OffloadError::OutputTooSmall {
                needed,
                available: output.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_pack_across_parts_and_mark_the_last() {
        let beats: Vec<Beat> = Beats::new(&[b"0123", b"", b"456789"]).collect();
        assert_eq!(beats.len(), 2);
        assert_eq!(
            beats[0],
            Beat {
                data: u64::from_le_bytes(*b"01234567"),
                keep: 0xFF,
                last: false
            }
        );
        assert_eq!(
            beats[1],
            Beat {
                data: u64::from_le_bytes(*b"89\0\0\0\0\0\0"),
                keep: 0x03,
                last: true
            }
        );
        let exact: Vec<Beat> = Beats::new(&[b"01234567"]).collect();
        assert_eq!(
            exact,
            vec![Beat {
                data: u64::from_le_bytes(*b"01234567"),
                keep: 0xFF,
                last: true
            }]
        );
    }

    #[test]
    fn empty_input_is_one_empty_last_beat() {
        let beats: Vec<Beat> = Beats::new(&[]).collect();
        assert_eq!(
            beats,
            vec![Beat {
                data: 0,
                keep: 0,
                last: true
            }]
        );
        let beats: Vec<Beat> = Beats::new(&[b"", b""]).collect();
        assert_eq!(
            beats,
            vec![Beat {
                data: 0,
                keep: 0,
                last: true
            }]
        );
    }
}
