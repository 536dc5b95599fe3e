//! The one error type of the store.

use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong: bad input from a client (sizes, non-integers), bad
/// configuration, and a file that cannot be used as it is (never silently reformatted).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("item of {size} bytes is larger than the {max} bytes a segment holds")]
    ItemTooLarge { size: usize, max: usize },
    #[error("key of {size} bytes is longer than the {max}-byte limit")]
    KeyTooLong { size: usize, max: usize },
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    #[error("increment or decrement would overflow")]
    Overflow,
    #[error("invalid store configuration: {reason}")]
    Config { reason: String },
    #[error("cannot allocate {bytes} bytes of memory: {source}")]
    Memory {
        bytes: usize,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {operation} failed: {source}")]
    File {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path}: locked by another process")]
    Locked { path: PathBuf },
    #[error("{path}: not a ferrite store file (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("{path}: superblock checksum mismatch")]
    CorruptSuperblock { path: PathBuf },
    #[error("{path}: format version {found}, this build reads version {expected}")]
    VersionMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "{path}: file holds {found_segment_count} segments of {found_segment_bytes} bytes, \
         the configuration asks for {expected_segment_count} of {expected_segment_bytes}"
    )]
    GeometryMismatch {
        path: PathBuf,
        found_segment_bytes: u64,
        found_segment_count: u64,
        expected_segment_bytes: u64,
        expected_segment_count: u64,
    },
    #[error("{path}: file is {found} bytes, its superblock needs {expected}")]
    Truncated {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
}
