//! How a store is configured, and the limits every configuration must respect.

use crate::error::StoreError;
use crate::index::SEGMENTS_MAX;
use crate::layout::{SEGMENT_OFFSET_BITS, SUPERBLOCK_BYTES};
use std::path::PathBuf;

/// Default segment size: big enough for any value a cache usually holds, small enough that
/// evicting one segment frees memory in small steps.
pub const SEGMENT_BYTES_DEFAULT: usize = 1 << 20;
/// Segments are whole pages (msync and the kernel work in pages).
pub const SEGMENT_BYTES_ALIGN: usize = 4096;
/// The smallest segment.
pub const SEGMENT_BYTES_MIN: usize = SEGMENT_BYTES_ALIGN;
/// The largest segment: item offsets inside a segment have 24 bits.
pub const SEGMENT_BYTES_MAX: usize = 1 << SEGMENT_OFFSET_BITS;

/// A sensible `compress_min_bytes`: below a few KiB LZ4 rarely saves enough to pay for the
/// decompression on every read.
pub const COMPRESS_MIN_BYTES_DEFAULT: usize = 4096;
/// A compressed value is kept only when it is at least this many times smaller than the raw one,
/// in percent (125 = 1.25x, a fifth saved): below that the decompression on every read costs
/// more than the memory saved is worth.
pub const COMPRESS_RATIO_MIN_PERCENT_DEFAULT: u32 = 125;
/// The smallest useful ratio: 100 % keeps blocks that save nothing.
pub const COMPRESS_RATIO_MIN_PERCENT_MIN: u32 = 100;
/// Demoted values of at least this many bytes are tried with LZ4 in the cold tier: shorter ones
/// rarely reach the ratio (an LZ4 block of a short value is mostly literals).
pub const COLD_COMPRESS_MIN_BYTES_DEFAULT: usize = 128;
/// A cold item read twice within this window is promoted back to DRAM.
pub const PROMOTE_WINDOW_MS_DEFAULT: u64 = 60_000;

/// Where the segments live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArenaConfig {
    /// Anonymous memory of at most `bytes`; nothing survives the process.
    Dram { bytes: usize },
    /// A memory-mapped file of at most `bytes` at `path`, created if missing, reopened with
    /// its items otherwise.
    File { path: PathBuf, bytes: usize },
}

impl ArenaConfig {
    pub fn bytes(&self) -> usize {
        match self {
            ArenaConfig::Dram { bytes } | ArenaConfig::File { bytes, .. } => *bytes,
        }
    }
}

/// When writes to a file arena are forced to the medium (msync). What survives what:
///
/// | policy     | process crash (SIGKILL, panic) | power loss / kernel crash          |
/// |------------|--------------------------------|------------------------------------|
/// | `No`       | every acknowledged write       | what the kernel happened to write back |
/// | `EverySec` | every acknowledged write       | writes older than the last [`crate::Store::tick`] flush (about 1 s) |
/// | `Always`   | every acknowledged write       | every acknowledged write (msync before the call returns) |
///
/// A process crash loses nothing in any policy because the page cache outlives the process.
/// DRAM arenas ignore the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushPolicy {
    No,
    #[default]
    EverySec,
    Always,
}

/// An opaque tag the file's superblock records for its user (the server stores its shard index
/// and shard count, to notice a restart with another shard count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OwnerTag(pub [u32; 4]);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub arena: ArenaConfig,
    /// Bytes per segment: a multiple of [`SEGMENT_BYTES_ALIGN`] in
    /// [`SEGMENT_BYTES_MIN`]..=[`SEGMENT_BYTES_MAX`]. It bounds the largest item.
    pub segment_bytes: usize,
    pub flush: FlushPolicy,
    /// Recorded in a new file's superblock; see [`crate::Store::set_owner`].
    pub owner: OwnerTag,
    /// Values of at least this many bytes are stored LZ4-compressed (through the offload
    /// engine) when that reaches `compress_ratio_min_percent`, and decompressed on read. `None`
    /// (the default) stores every value raw, so reads borrow straight from the segment.
    pub compress_min_bytes: Option<usize>,
    /// The least raw/compressed ratio, in percent, for which a compressed value is kept
    /// (default [`COMPRESS_RATIO_MIN_PERCENT_DEFAULT`]); applies to this store and its cold tier.
    pub compress_ratio_min_percent: u32,
    /// `Some`: this store (whose arena must then be DRAM) is the hot tier over a cold tier in a
    /// memory-mapped file; see [`ColdTierConfig`].
    pub cold: Option<ColdTierConfig>,
}

/// Which items leave the hot tier for the cold one when their DRAM segment is reclaimed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Admission {
    /// Every live item (used at shutdown whatever the policy, so a restart keeps everything).
    All,
    /// Items that proved reused: read at least once while in DRAM (the usage word's fetched
    /// bit), or demoted unread a second time while the rejection filter
    /// ([`crate::REJECTION_FILTER_SLOTS`] recent rejections) still holds the first. An item
    /// written once and never read (a "one-hit wonder") is dropped instead of costing a cold
    /// write.
    #[default]
    Reused,
}

/// The cold tier of a tiered store: a file-backed store the hot DRAM tier demotes its oldest
/// segments' live items into, instead of evicting them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColdTierConfig {
    pub path: PathBuf,
    pub bytes: usize,
    /// Demoted values of at least this many bytes are LZ4-compressed when that reaches the
    /// store's `compress_ratio_min_percent` (default [`COLD_COMPRESS_MIN_BYTES_DEFAULT`]).
    pub compress_min_bytes: usize,
    pub admission: Admission,
    /// A cold item read a second time within this many ms of the first read moves back to
    /// DRAM (default [`PROMOTE_WINDOW_MS_DEFAULT`]); 0 never promotes.
    pub promote_window_ms: u64,
}

impl ColdTierConfig {
    /// A cold tier of `bytes` at `path` with the default policies.
    pub fn new(path: impl Into<PathBuf>, bytes: usize) -> ColdTierConfig {
        ColdTierConfig {
            path: path.into(),
            bytes,
            compress_min_bytes: COLD_COMPRESS_MIN_BYTES_DEFAULT,
            admission: Admission::default(),
            promote_window_ms: PROMOTE_WINDOW_MS_DEFAULT,
        }
    }
}

impl StoreConfig {
    /// A DRAM store of `bytes` with default segments.
    pub fn dram(bytes: usize) -> StoreConfig {
        StoreConfig {
            arena: ArenaConfig::Dram { bytes },
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            flush: FlushPolicy::default(),
            owner: OwnerTag::default(),
            compress_min_bytes: None,
            compress_ratio_min_percent: COMPRESS_RATIO_MIN_PERCENT_DEFAULT,
            cold: None,
        }
    }

    /// A tiered store: `memory_bytes` of DRAM over a cold tier of `cold_bytes` at `path`.
    pub fn tiered(memory_bytes: usize, path: impl Into<PathBuf>, cold_bytes: usize) -> StoreConfig {
        StoreConfig {
            cold: Some(ColdTierConfig::new(path, cold_bytes)),
            ..StoreConfig::dram(memory_bytes)
        }
    }

    /// The configuration of the cold tier's own store (`None` when not tiered).
    pub(crate) fn cold_store(&self) -> Option<StoreConfig> {
        let cold = self.cold.as_ref()?;
        Some(StoreConfig {
            arena: ArenaConfig::File {
                path: cold.path.clone(),
                bytes: cold.bytes,
            },
            compress_min_bytes: Some(cold.compress_min_bytes),
            cold: None,
            ..self.clone()
        })
    }

    /// A file store of `bytes` at `path` with default segments.
    pub fn file(path: impl Into<PathBuf>, bytes: usize) -> StoreConfig {
        StoreConfig {
            arena: ArenaConfig::File {
                path: path.into(),
                bytes,
            },
            ..StoreConfig::dram(bytes)
        }
    }

    /// Checks the configuration and derives the arena's geometry.
    pub(crate) fn geometry(&self) -> Result<Geometry, StoreError> {
        let invalid = |reason: String| Err(StoreError::Config { reason });
        let segment_bytes = self.segment_bytes;
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&segment_bytes)
            || !segment_bytes.is_multiple_of(SEGMENT_BYTES_ALIGN)
        {
            return invalid(format!(
                "segment_bytes {segment_bytes} must be a multiple of {SEGMENT_BYTES_ALIGN} \
                 between {SEGMENT_BYTES_MIN} and {SEGMENT_BYTES_MAX}"
            ));
        }
        if self.compress_ratio_min_percent < COMPRESS_RATIO_MIN_PERCENT_MIN {
            return invalid(format!(
                "compress_ratio_min_percent {} is below {COMPRESS_RATIO_MIN_PERCENT_MIN}",
                self.compress_ratio_min_percent
            ));
        }
        if self.cold.is_some() && !matches!(self.arena, ArenaConfig::Dram { .. }) {
            return invalid("a tiered store's hot tier must be DRAM".to_owned());
        }
        let bytes = self.arena.bytes();
        let segment_count = bytes.saturating_sub(SUPERBLOCK_BYTES) / segment_bytes;
        if segment_count == 0 {
            return invalid(format!(
                "arena of {bytes} bytes holds no segment of {segment_bytes} bytes \
                 (at least {} bytes needed)",
                SUPERBLOCK_BYTES + segment_bytes
            ));
        }
        if segment_count > SEGMENTS_MAX {
            return invalid(format!(
                "{segment_count} segments exceed the {SEGMENTS_MAX} the index addresses"
            ));
        }
        Ok(Geometry {
            segment_bytes,
            segment_count,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub segment_bytes: usize,
    pub segment_count: usize,
}

impl Geometry {
    /// Bytes of the arena actually used (the configured size rounded down to whole segments).
    pub fn arena_bytes(&self) -> usize {
        SUPERBLOCK_BYTES + self.segment_bytes * self.segment_count
    }
}
