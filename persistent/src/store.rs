//! [`Store`]: the operations, on top of segments, index and arena.
//!
//! A store may be the hot (DRAM) tier of a tiered store: it then owns its cold tier, another
//! `Store` on a memory-mapped file, and the `tier` module moves items between the two.

mod tier;

use crate::arena::{Arena, DramArena, LockedFile, SyncHandle};
use crate::config::{Admission, ArenaConfig, FlushPolicy, Geometry, OwnerTag, StoreConfig};
use crate::error::StoreError;
use crate::hash::{hash_key, random_seed};
use crate::index::{Index, Location};
use crate::layout::{
    self, Encoding, ItemHeader, ItemUse, NewItem, SegmentHeader, SegmentState, Superblock,
    SuperblockError, FORMAT_VERSION, ITEM_HEADER_BYTES_MAX, KEY_BYTES_MAX, SEGMENT_HEADER_BYTES,
    SEGMENT_OFFSET_BITS, SUPERBLOCK_BYTES,
};
use crate::segments::{ttl_bucket, SegmentMeta, Segments, TTL_BUCKETS};
use platform::offload::{compress_bound, Offload};
use std::borrow::Cow;
use std::os::unix::fs::FileExt;
use tier::ColdTier;
pub use tier::{TierStats, PROMOTION_FILTER_SLOTS, REJECTION_FILTER_SLOTS};

/// Everysec flushes at most this often.
const EVERYSEC_INTERVAL_MS: u64 = 1000;
/// A SCAN call looks at no more than this many buckets per key it was asked for, so a sparse
/// table cannot make one call walk it all (Redis does the same).
const SCAN_BUCKETS_PER_KEY_MAX: usize = 10;
/// RANDOMKEY gives up after this many picks that landed on expired items.
const RANDOM_KEY_ATTEMPTS_MAX: usize = 16;
/// Generations have 39 bits so `generation << 24 | offset` fits a u64 CAS below its top bit,
/// which tells a cold tier's CAS values from the hot tier's ([`COLD_CAS_BIT`]).
const GENERATION_MAX: u64 = (1 << (63 - SEGMENT_OFFSET_BITS)) - 1;
/// Set in every CAS a cold tier hands out, so the two tiers of a store never give two items
/// the same CAS.
const COLD_CAS_BIT: u64 = 1 << 63;
/// Set in the SCAN cursors of a tiered store's second pass, over its cold tier (index cursors
/// stay below 2^26).
pub const COLD_SCAN_BIT: u64 = 1 << 62;
/// Recovery asks for the index buckets of this many items before inserting them: enough
/// overlapping cache misses to hide most of the memory latency.
const RECOVERY_INDEX_BATCH: usize = 32;
/// Decimal digits of the longest u64 / i64 (with sign) counter value.
const COUNTER_DIGITS_MAX: usize = 20;
/// Most keys one [`Store::prefetch`] looks at: about as many cache misses as a core keeps in
/// flight at once.
pub const PREFETCH_KEYS_MAX: usize = 16;
/// Bytes of an item [`Store::prefetch`] asks for from its start: header, key and the start of
/// the value of a small item (four cache lines).
const PREFETCH_ITEM_BYTES: usize = 256;
const CACHE_LINE_BYTES: usize = 64;

/// An item as a read returns it. The value is borrowed from the segment when stored raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemView<'a> {
    pub key: &'a [u8],
    pub value: Cow<'a, [u8]>,
    /// Opaque client flags (memcached).
    pub flags: u32,
    /// Unique for every write the store ever made; changes on every modification.
    pub cas: u64,
    /// Absolute unix ms, `None` = never expires.
    pub expiry_ms: Option<u64>,
    /// The item's usage as this read found it (before the read's own fetch is recorded).
    pub usage: ItemUse,
    /// This read handed out the item's win token ([`ReadOptions::claim_win`]).
    pub won: bool,
}

/// How a read records itself in the item's usage ([`Store::read`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Record the read: the item becomes fetched and its last access is now (the usage word is
    /// rewritten at most once a tick per item). memcached `mg u` and `me` read without it.
    pub touch: bool,
    /// Hand out the win token (memcached `W`) unless someone holds it already, when the item is
    /// stale or expires within `recache_within_ms` (memcached `R`).
    pub claim_win: bool,
    pub recache_within_ms: Option<u64>,
}

impl ReadOptions {
    /// A plain read ([`Store::get`]): recorded, no win token.
    pub const FETCH: ReadOptions = ReadOptions {
        touch: true,
        claim_win: false,
        recache_within_ms: None,
    };
    /// A look that leaves no trace.
    pub const PEEK: ReadOptions = ReadOptions {
        touch: false,
        claim_win: false,
        recache_within_ms: None,
    };
}

/// In-place changes to an item's usage ([`Store::mark`]); its CAS does not change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Flag the item stale (memcached `ms I` storing under an older CAS).
    Stale,
    /// Record that a client holds the win token (memcached `mg N` creating the item).
    WinToken,
}

/// When a write goes ahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Condition {
    #[default]
    Always,
    /// Only if the key is absent (memcached add, Redis NX).
    IfAbsent,
    /// Only if the key is present (memcached replace, Redis XX).
    IfPresent,
    /// Only if the key is present with this CAS (memcached cas).
    IfCas(u64),
}

/// The expiry a write gives its item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expiry {
    #[default]
    Never,
    /// Absolute unix ms (0 = never). A time not after `now_ms` deletes the key instead.
    At(u64),
    /// Keep the existing item's expiry (Redis KEEPTTL); never for a new key.
    Keep,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub condition: Condition,
    pub expiry: Expiry,
    pub flags: u32,
    /// Return the previous value (Redis SET ... GET, GETSET), whether or not the write happens.
    pub return_previous: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetStatus {
    /// Written; `cas` is the new item's CAS (0 when the expiry was already past, so the key
    /// was deleted instead).
    Stored { cas: u64 },
    /// `IfAbsent` found the key, or `IfPresent` did not.
    NotStored,
    /// `IfCas` found the key with another CAS.
    Exists,
    /// `IfCas` did not find the key.
    NotFound,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetResult {
    pub status: SetStatus,
    /// The previous value, when asked for and present.
    pub previous: Option<Vec<u8>>,
}

/// What a TTL query finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryState {
    Missing,
    Never,
    /// Absolute unix ms.
    At(u64),
}

/// Which end append-like operations write to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Append,
    Prepend,
}

/// What [`Store::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The arena was new (DRAM, or a file just created): nothing to recover.
    pub created: bool,
    /// The file was closed cleanly last time.
    pub clean_shutdown: bool,
    /// Incremented on every open of the file.
    pub store_epoch: u64,
    /// The owner tag the superblock holds (for a new arena, the configured one).
    pub owner: OwnerTag,
    pub segments_restored: u64,
    /// Segments whose header failed its check: their items are dropped.
    pub segments_corrupt: u64,
    pub items_restored: u64,
    /// Items whose checksum failed or whose header was unreadable (torn or corrupt): never
    /// served. An unreadable header also hides the rest of its segment.
    pub items_corrupt: u64,
    pub items_expired: u64,
    /// Older copies of a key found live next to a newer one (a crash between writing the new
    /// copy and marking the old one dead); the older copy is dropped.
    pub items_superseded: u64,
}

/// Counters and gauges for INFO / stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Keys in the index, of both tiers in a tiered store (expired keys count until a read or
    /// their segment's expiry drops them). Every other figure is of this store's own arena (the
    /// hot tier); [`Store::tier_stats`] has the cold tier's.
    pub items: u64,
    /// Bytes written into segments in use (headers, dead items and free tails included).
    pub bytes_used: u64,
    /// The memory limit: bytes of all segments.
    pub bytes_limit: u64,
    pub index_bytes: u64,
    pub segments_total: u64,
    pub segments_free: u64,
    pub segments_in_use: u64,
    pub evicted_items: u64,
    pub evicted_segments: u64,
    pub expired_items: u64,
    pub expired_segments: u64,
    /// Items found corrupt when read (checksum or LZ4 block wrong): dropped, never served.
    pub corrupt_items: u64,
    /// Values stored LZ4-compressed, and the bytes they had raw and have stored.
    pub compressed_items: u64,
    pub compressed_raw_bytes: u64,
    pub compressed_stored_bytes: u64,
    /// Values tried with LZ4 and stored raw because the block missed the ratio.
    pub compress_skipped: u64,
}

// A store moves to its shard's thread once: it must stay `Send` (and is never `Sync`).
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
};

/// One shard's item store. Single-threaded: `Send`, never `Sync`; every call that needs the time
/// takes `now_ms` (unix milliseconds) from the caller.
pub struct Store {
    arena: Box<dyn Arena>,
    offload: Box<dyn Offload>,
    geometry: Geometry,
    segments: Segments,
    index: Index,
    hash_seed: u64,
    random_state: u64,
    flush_policy: FlushPolicy,
    compress_min_bytes: Option<usize>,
    /// The span (arena offsets, start..end) written since the last commit; kept only under
    /// `Always`.
    dirty: Option<(usize, usize)>,
    sync_each_write: bool,
    flushed_at_ms: u64,
    flush_all_at_ms: Option<u64>,
    next_generation: u64,
    superblock: Superblock,
    stats: Stats,
    report: RecoveryReport,
    /// Reused buffer for values that must be copied before a rewrite.
    scratch: Vec<u8>,
    /// Reused buffer of recovery (items of one segment waiting to be indexed).
    recovery_pending: Vec<(Location, u64, usize, usize)>,
    closed: bool,
    /// The least raw/compressed ratio (percent) for which a compressed value is kept.
    compress_ratio_min_percent: u32,
    /// 0, or [`COLD_CAS_BIT`] in a cold tier: ored into every CAS handed out.
    cas_tag: u64,
    /// Check every item's CRC-64 when it is read (a cold tier: its bytes come from a file that
    /// may have been damaged while the store ran).
    verify_reads: bool,
    /// The latest `now_ms` any call passed: the time of a shutdown's demotions.
    now_ms_last: u64,
    /// The cold tier when this store is the hot tier of a tiered store.
    cold: Option<Box<ColdTier>>,
}

/// The key of the item at `location`, if it parses.
fn item_at<'a>(
    bytes: &'a [u8],
    segments: &Segments,
    geometry: Geometry,
    location: Location,
) -> Option<(ItemHeader, &'a [u8])> {
    let meta = segments.meta(location.segment);
    if meta.generation == 0 || location.offset >= meta.write_offset {
        return None;
    }
    let segment_start = SUPERBLOCK_BYTES + location.segment as usize * geometry.segment_bytes;
    let item = &bytes
        [segment_start + location.offset as usize..segment_start + meta.write_offset as usize];
    let header = ItemHeader::parse(item)?;
    Some((header, item))
}

fn cas_of(generation: u64, offset: u32) -> u64 {
    generation << SEGMENT_OFFSET_BITS | offset as u64
}

/// `value` in decimal, written into the end of `digits` (no allocation on the counter path).
fn decimal(value: i128, digits: &mut [u8; COUNTER_DIGITS_MAX]) -> &[u8] {
    let mut magnitude = value.unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        start -= 1;
        digits[start] = b'-';
    }
    &digits[start..]
}

/// memcached's counter syntax: 1 to 20 ASCII digits, at most `u64::MAX`.
fn parse_u64(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > COUNTER_DIGITS_MAX || !value.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Redis's integer syntax (string2ll): optional '-', no '+', no leading zeros, no spaces.
fn parse_i64(value: &[u8]) -> Option<i64> {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    let canonical = !digits.is_empty()
        && value.len() <= COUNTER_DIGITS_MAX
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || value == b"0");
    if !canonical {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

impl Store {
    /// Opens a store: a fresh DRAM arena, a new file, or an existing file whose items are
    /// recovered (see [`Store::recovery_report`]). The file is locked until the store is
    /// closed or dropped. A tiered configuration needs an engine per tier: see
    /// [`Store::open_tiered`].
    pub fn open(
        config: &StoreConfig,
        offload: Box<dyn Offload>,
        now_ms: u64,
    ) -> Result<Store, StoreError> {
        if config.cold.is_some() {
            return Err(StoreError::Config {
                reason: "a tiered store needs an offload engine per tier (Store::open_tiered)"
                    .to_owned(),
            });
        }
        Store::open_tier(config, offload, now_ms)
    }

    /// Opens a tiered store (`config.cold` set): a fresh DRAM hot tier over the cold tier's
    /// file, recovered as [`Store::open`] recovers a file. Each tier has its own engine (an
    /// engine is owned by one store); the cold tier's compresses and decompresses.
    pub fn open_tiered(
        config: &StoreConfig,
        hot_offload: Box<dyn Offload>,
        cold_offload: Box<dyn Offload>,
        now_ms: u64,
    ) -> Result<Store, StoreError> {
        let (Some(cold_config), Some(tier)) = (config.cold_store(), config.cold.as_ref()) else {
            return Err(StoreError::Config {
                reason: "open_tiered needs a cold tier in the configuration".to_owned(),
            });
        };
        let mut cold = Store::open_tier(&cold_config, cold_offload, now_ms)?;
        cold.cas_tag = COLD_CAS_BIT;
        cold.verify_reads = true;
        let mut hot = Store::open_tier(config, hot_offload, now_ms)?;
        hot.cold = Some(Box::new(ColdTier::new(cold, tier)));
        Ok(hot)
    }

    fn open_tier(
        config: &StoreConfig,
        mut offload: Box<dyn Offload>,
        now_ms: u64,
    ) -> Result<Store, StoreError> {
        let geometry = config.geometry()?;
        let mut fresh = Superblock::new(
            geometry.segment_bytes,
            geometry.segment_count,
            config.owner.0,
        );
        let (arena, superblock): (Box<dyn Arena>, Option<Superblock>) = match &config.arena {
            ArenaConfig::Dram { .. } => (Box::new(DramArena::new(geometry.arena_bytes())?), None),
            ArenaConfig::File { path, .. } => {
                let file = LockedFile::open(path)?;
                if file.len == 0 {
                    // A new file: its superblock is durable before it appears at its path.
                    let mut arena = file.map(geometry.arena_bytes())?;
                    fresh.write(&mut arena.bytes_mut()[..SUPERBLOCK_BYTES], offload.as_mut());
                    arena
                        .flush(0, SUPERBLOCK_BYTES)
                        .map_err(|source| StoreError::File {
                            path: path.clone(),
                            operation: "msync",
                            source,
                        })?;
                    arena.publish()?;
                    (Box::new(arena), None)
                } else {
                    let found = read_superblock(&file, geometry, offload.as_mut())?;
                    (Box::new(file.map(geometry.arena_bytes())?), Some(found))
                }
            }
        };
        let seed = random_seed();
        let mut store = Store {
            arena,
            offload,
            geometry,
            segments: Segments::new(geometry.segment_count),
            index: Index::new(),
            hash_seed: seed,
            random_state: seed | 1,
            flush_policy: config.flush,
            compress_min_bytes: config.compress_min_bytes,
            dirty: None,
            sync_each_write: false,
            flushed_at_ms: now_ms,
            flush_all_at_ms: None,
            next_generation: 1,
            superblock: superblock.unwrap_or(fresh),
            stats: Stats::default(),
            report: RecoveryReport::default(),
            scratch: Vec::new(),
            recovery_pending: Vec::new(),
            closed: false,
            compress_ratio_min_percent: config.compress_ratio_min_percent,
            cas_tag: 0,
            verify_reads: false,
            now_ms_last: now_ms,
            cold: None,
        };
        store.sync_each_write =
            store.flush_policy == FlushPolicy::Always && store.arena.path().is_some();
        match superblock {
            Some(found) => {
                store.report = store.recover(now_ms);
                store.report.clean_shutdown = found.clean == 1;
            }
            None => store.report.created = true,
        }
        store.superblock.clean = 0;
        store.superblock.store_epoch += 1;
        store.report.store_epoch = store.superblock.store_epoch;
        store.report.owner = OwnerTag(store.superblock.owner);
        store.write_superblock()?;
        Ok(store)
    }

    /// What opening found (in a tiered store: in the cold tier's file).
    pub fn recovery_report(&self) -> &RecoveryReport {
        match &self.cold {
            Some(tier) => &tier.store.report,
            None => &self.report,
        }
    }

    /// The largest key + value a write accepts: what one segment holds after the largest item
    /// header (memcached: "object too large for cache").
    pub fn item_bytes_max(&self) -> usize {
        self.geometry.segment_bytes - SEGMENT_HEADER_BYTES - ITEM_HEADER_BYTES_MAX
    }

    /// Records a new owner tag in the superblock (after re-homing items to a new shard layout).
    pub fn set_owner(&mut self, owner: OwnerTag) -> Result<(), StoreError> {
        if let Some(tier) = &mut self.cold {
            tier.store.set_owner(owner)?;
        }
        self.superblock.owner = owner.0;
        self.write_superblock()
    }

    /// The owner tag (in a tiered store: the cold tier's file's).
    pub fn owner(&self) -> OwnerTag {
        match &self.cold {
            Some(tier) => tier.store.owner(),
            None => OwnerTag(self.superblock.owner),
        }
    }

    fn segment_start(&self, segment: u32) -> usize {
        SUPERBLOCK_BYTES + segment as usize * self.geometry.segment_bytes
    }

    fn hash(&self, key: &[u8]) -> u64 {
        hash_key(self.hash_seed, key)
    }

    /// Notes bytes to msync before the call returns (under `Always` on a file).
    fn written(&mut self, offset: usize, len: usize) {
        if self.sync_each_write {
            let (start, end) = self.dirty.unwrap_or((offset, offset + len));
            self.dirty = Some((start.min(offset), end.max(offset + len)));
        }
    }

    /// Makes this call's writes durable as the flush policy requires: one msync over the span
    /// of everything written (only its dirty pages are written back, and the medium is flushed
    /// once rather than once per range).
    fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(tier) = &mut self.cold {
            // Demotions and cold deletes this call made.
            tier.store.commit()?;
        }
        match self.dirty.take() {
            Some((start, end)) => self
                .arena
                .flush(start, end - start)
                .map_err(|source| self.file_error("msync", source)),
            None => Ok(()),
        }
    }

    fn file_error(&self, operation: &'static str, source: std::io::Error) -> StoreError {
        let path = self
            .arena
            .path()
            .map(|path| path.to_path_buf())
            .unwrap_or_default();
        StoreError::File {
            path,
            operation,
            source,
        }
    }

    fn write_superblock(&mut self) -> Result<(), StoreError> {
        let bytes = self.arena.bytes_mut();
        self.superblock
            .write(&mut bytes[..SUPERBLOCK_BYTES], self.offload.as_mut());
        if let Err(source) = self.arena.flush(0, SUPERBLOCK_BYTES) {
            return Err(self.file_error("msync", source));
        }
        Ok(())
    }

    /// Runs a delayed flush_all once its time has come.
    fn before_operation(&mut self, now_ms: u64) {
        self.now_ms_last = self.now_ms_last.max(now_ms);
        if self.flush_all_at_ms.is_some_and(|at_ms| at_ms <= now_ms) {
            self.flush_all_now();
        }
    }

    /// The start of an operation that changes `key`'s existing item: the per-operation work,
    /// the key's hash, and its live item, moved into this tier first if only the cold tier had it.
    fn live_for_update(
        &mut self,
        key: &[u8],
        now_ms: u64,
    ) -> (u64, Option<(Location, ItemHeader)>) {
        self.before_operation(now_ms);
        let hash = self.hash(key);
        self.fault_in(key, hash, now_ms);
        (hash, self.find_live(key, hash, now_ms))
    }

    /// The live item for `key`, dropping it if it expired.
    fn find_live(&mut self, key: &[u8], hash: u64, now_ms: u64) -> Option<(Location, ItemHeader)> {
        let (location, header) = self.find(key, hash)?;
        if header.is_expired(now_ms) {
            self.unlink(hash, location);
            self.stats.expired_items += 1;
            return None;
        }
        if self.verify_reads && !self.verify(location, &header) {
            self.drop_corrupt(hash, location);
            return None;
        }
        Some((location, header))
    }

    /// Whether the item at `location` still matches its CRC-64.
    /// Whether this tier's items are ever checked: only a file's are, by recovery and (cold
    /// tier) on every read. DRAM items never outlive the process and are re-encoded when they
    /// move to another tier, so they skip the CRC (about a tenth of a small SET's server CPU).
    fn checks_items(&self) -> bool {
        self.arena.path().is_some()
    }

    fn verify(&mut self, location: Location, header: &ItemHeader) -> bool {
        let generation = self.segments.meta(location.segment).generation;
        let start = self.segment_start(location.segment) + location.offset as usize;
        let item = &self.arena.bytes()[start..start + header.len];
        layout::verify(item, header, generation, self.offload.as_mut())
    }

    /// Counts and drops an item that failed its check or whose value does not decode.
    fn drop_corrupt(&mut self, hash: u64, location: Location) {
        self.stats.corrupt_items += 1;
        self.unlink(hash, location);
    }

    fn find(&self, key: &[u8], hash: u64) -> Option<(Location, ItemHeader)> {
        let bytes = self.arena.bytes();
        let mut found = None;
        self.index.find(hash, |location| {
            match item_at(bytes, &self.segments, self.geometry, location) {
                Some((header, item)) if header.key(item) == key => {
                    found = Some((location, header));
                    true
                }
                _ => false,
            }
        });
        found
    }

    fn item_bytes(&self, location: Location, header: &ItemHeader) -> &[u8] {
        let start = self.segment_start(location.segment) + location.offset as usize;
        &self.arena.bytes()[start..start + header.len]
    }

    fn cas(&self, location: Location) -> u64 {
        self.cas_tag
            | cas_of(
                self.segments.meta(location.segment).generation,
                location.offset,
            )
    }

    /// Appends the item's decoded value to `out`; false if an LZ4 value does not decode into
    /// the length its header gives (itself bounded by the largest item, so a damaged header
    /// never makes it allocate more).
    fn decode_value_into(
        &mut self,
        location: Location,
        header: &ItemHeader,
        out: &mut Vec<u8>,
    ) -> bool {
        let start = self.segment_start(location.segment) + location.offset as usize;
        let stored = header.stored_value(&self.arena.bytes()[start..start + header.len]);
        match header.encoding {
            Encoding::Raw => {
                out.extend_from_slice(stored);
                true
            }
            Encoding::Lz4 => {
                if header.raw_len > self.item_bytes_max() {
                    return false;
                }
                let base = out.len();
                out.resize(base + header.raw_len, 0);
                let decoded = self.offload.decompress(stored, &mut out[base..]);
                decoded == Ok(header.raw_len)
            }
        }
    }

    /// Removes the item at `location` from the index and marks it dead.
    fn unlink(&mut self, hash: u64, location: Location) {
        let removed = self.index.remove_location(hash, location);
        debug_assert!(removed, "unlinking an item the index does not hold");
        self.mark_dead(location);
    }

    /// Records in the segment that the item at `location` is gone, and frees its segment once
    /// nothing in it lives (unless new items still go there).
    fn mark_dead(&mut self, location: Location) {
        let start = self.segment_start(location.segment) + location.offset as usize;
        layout::mark_dead(&mut self.arena.bytes_mut()[start..]);
        self.written(start + layout::dead_byte_offset(), 1);
        let meta = self.segments.meta_mut(location.segment);
        meta.live_items -= 1;
        if meta.live_items == 0 && !self.segments.is_active(location.segment) {
            self.release_segment(location.segment);
        }
    }

    fn release_segment(&mut self, segment: u32) {
        self.segments.release(segment);
        let start = self.segment_start(segment);
        SegmentHeader::write_free(&mut self.arena.bytes_mut()[start..start + SEGMENT_HEADER_BYTES]);
        self.written(start, SEGMENT_HEADER_BYTES);
    }

    /// Removes every live item of `segment` from the index (before the segment is released);
    /// returns how many there were.
    fn drop_segment_items(&mut self, segment: u32) -> u64 {
        let meta = *self.segments.meta(segment);
        let start = self.segment_start(segment);
        let bytes = &self.arena.bytes()[start..start + meta.write_offset as usize];
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut dropped = 0;
        while let Some(header) = bytes.get(offset..).and_then(ItemHeader::parse) {
            if !header.dead {
                let hash = hash_key(self.hash_seed, header.key(&bytes[offset..]));
                let location = Location {
                    segment,
                    offset: offset as u32,
                };
                if self.index.remove_location(hash, location) {
                    dropped += 1;
                }
            }
            offset += header.len;
        }
        dropped
    }

    /// Frees segments whose every item has expired, bucket heads first.
    fn expire_segments(&mut self, now_ms: u64) {
        for bucket in 1..TTL_BUCKETS as u8 {
            while let Some(head) = self.segments.bucket_head(bucket) {
                let expiry_max_ms = self.segments.meta(head).expiry_max_ms;
                if expiry_max_ms == 0 || expiry_max_ms > now_ms {
                    break;
                }
                self.stats.expired_items += self.drop_segment_items(head);
                self.stats.expired_segments += 1;
                self.release_segment(head);
            }
        }
    }

    /// Reclaims the oldest segment: its live items move to the cold tier (as its admission rule
    /// says) in a tiered store, and are dropped otherwise.
    fn evict_oldest(&mut self, now_ms: u64) {
        let oldest = self
            .segments
            .oldest()
            .expect("a store with no free segment has one in use");
        if let Some(admission) = self.cold.as_ref().map(|tier| tier.admission) {
            self.demote_segment(oldest, admission, now_ms);
            return;
        }
        self.stats.evicted_items += self.drop_segment_items(oldest);
        self.stats.evicted_segments += 1;
        self.release_segment(oldest);
    }

    /// A segment of `bucket` with room for `len` bytes, opening one (after expiring, or
    /// evicting the oldest) when the bucket's active segment is full.
    fn reserve(&mut self, bucket: u8, len: usize, now_ms: u64) -> u32 {
        let active = self.segments.active(bucket);
        if let Some(active) = active {
            if self.segments.meta(active).write_offset as usize + len <= self.geometry.segment_bytes
            {
                return active;
            }
        }
        let sealed = active.map(|segment| (segment, self.segments.meta(segment).generation));
        self.expire_segments(now_ms);
        let segment = match self.segments.take_free() {
            Some(segment) => segment,
            None => {
                self.evict_oldest(now_ms);
                self.segments.take_free().expect("eviction frees a segment")
            }
        };
        let generation = self.next_generation;
        assert!(
            generation <= GENERATION_MAX,
            "segment generations exhausted"
        );
        self.next_generation += 1;
        let start = self.segment_start(segment);
        SegmentHeader::write_open(
            &mut self.arena.bytes_mut()[start..start + SEGMENT_HEADER_BYTES],
            bucket,
            generation,
            self.offload.as_mut(),
        );
        self.written(start, SEGMENT_HEADER_BYTES);
        self.segments.open(
            segment,
            SegmentMeta {
                generation,
                write_offset: SEGMENT_HEADER_BYTES as u32,
                live_items: 0,
                expiry_max_ms: 0,
                ttl_bucket: bucket,
            },
        );
        // The segment just sealed may hold nothing live any more (all overwritten).
        if let Some((sealed, generation)) = sealed {
            let meta = self.segments.meta(sealed);
            if meta.generation == generation && meta.live_items == 0 {
                self.release_segment(sealed);
            }
        }
        segment
    }

    fn check_sizes(&self, key: &[u8], value_len: usize) -> Result<(), StoreError> {
        if key.len() > KEY_BYTES_MAX {
            return Err(StoreError::KeyTooLong {
                size: key.len(),
                max: KEY_BYTES_MAX,
            });
        }
        let size = key.len() + value_len;
        let max = self.item_bytes_max();
        if size > max {
            return Err(StoreError::ItemTooLarge { size, max });
        }
        Ok(())
    }

    /// Rewrites `key`'s live item at `old` with the same value, encoding and flags but a new
    /// expiry and usage word (so its CAS changes): the value goes through `scratch`, as the
    /// append may reuse the segment it is read from.
    fn rewrite_item(
        &mut self,
        key: &[u8],
        hash: u64,
        (location, header): (Location, &ItemHeader),
        expiry_ms: u64,
        usage: ItemUse,
        now_ms: u64,
    ) -> Location {
        let mut stored = std::mem::take(&mut self.scratch);
        stored.clear();
        stored.extend_from_slice(header.stored_value(self.item_bytes(location, header)));
        let item = NewItem {
            key,
            value_parts: &[&stored],
            encoding: header.encoding,
            raw_len: header.raw_len,
            flags: header.flags,
            expiry_ms,
            usage,
        };
        let location = self.write_item(hash, &item, now_ms);
        self.scratch = stored;
        location
    }

    /// Appends `item` to a segment of its TTL bucket, points the index at it and marks the
    /// key's previous item dead. Sizes are checked by the caller.
    fn write_item(&mut self, hash: u64, item: &NewItem, now_ms: u64) -> Location {
        let len = item.encoded_len();
        let bucket = ttl_bucket(item.expiry_ms, now_ms);
        let segment = self.reserve(bucket, len, now_ms);
        let meta = *self.segments.meta(segment);
        let segment_start = self.segment_start(segment);
        let start = segment_start + meta.write_offset as usize;
        let checked = self.checks_items();
        let bytes = self.arena.bytes_mut();
        let out = &mut bytes[start..start + len];
        item.write(out);
        if checked {
            layout::seal(out, meta.generation, self.offload.as_mut());
        }
        let write_offset = meta.write_offset + len as u32;
        SegmentHeader::write_offset(
            &mut bytes[segment_start..segment_start + SEGMENT_HEADER_BYTES],
            write_offset,
        );
        self.written(start, len);
        self.written(segment_start, SEGMENT_HEADER_BYTES);
        let meta = self.segments.meta_mut(segment);
        meta.write_offset = write_offset;
        meta.live_items += 1;
        meta.expiry_max_ms = meta.expiry_max_ms.max(item.expiry_ms);
        let location = Location {
            segment,
            offset: start as u32 - segment_start as u32,
        };
        let bytes = self.arena.bytes();
        let (segments, geometry, key) = (&self.segments, self.geometry, item.key);
        let previous = self.index.upsert(hash, location, |candidate| {
            candidate != location
                && item_at(bytes, segments, geometry, candidate)
                    .is_some_and(|(header, item)| header.key(item) == key)
        });
        match previous {
            Some(previous) => self.mark_dead(previous),
            // A key new to the hot tier may still be in the cold one (or have been demoted
            // there while this write reserved its room): the older copy goes.
            None if self.cold.is_some() => self.forget_cold(key),
            None => {}
        }
        self.grow_index_if_full();
        location
    }

    /// Doubles the index once it is full, rehashing every key from its segment.
    fn grow_index_if_full(&mut self) {
        if !self.index.needs_growth() {
            return;
        }
        let (seed, bytes, segments, geometry) = (
            self.hash_seed,
            self.arena.bytes(),
            &self.segments,
            self.geometry,
        );
        self.index.grow(|location| {
            let (header, item) =
                item_at(bytes, segments, geometry, location).expect("indexed items parse");
            hash_key(seed, header.key(item))
        });
    }

    /// Brings the index buckets and the items of up to [`PREFETCH_KEYS_MAX`] `keys` into the
    /// cache before they are looked up, so that a pipelined batch pays its cache misses together
    /// instead of one lookup after another. Changes nothing and checks nothing (an item is only
    /// touched, not parsed).
    pub fn prefetch<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        let mut hashes = [0u64; PREFETCH_KEYS_MAX];
        let mut count = 0;
        for key in keys.into_iter().take(PREFETCH_KEYS_MAX) {
            let hash = self.hash(key);
            self.index.prefetch(hash);
            hashes[count] = hash;
            count += 1;
        }
        let bytes = self.arena.bytes();
        for &hash in &hashes[..count] {
            // The first entry with the key's tag is the key but for a 1-in-4096 tag collision.
            let Some(location) = self.index.find(hash, |_| true) else {
                continue;
            };
            let meta = self.segments.meta(location.segment);
            let start = self.segment_start(location.segment) + location.offset as usize;
            let end = (self.segment_start(location.segment) + meta.write_offset as usize)
                .min(start + PREFETCH_ITEM_BYTES);
            for line in (start..end).step_by(CACHE_LINE_BYTES) {
                platform::cache::prefetch(&bytes[line]);
            }
        }
    }

    /// The item for `key`, unless missing or expired; the read is recorded in its usage.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<ItemView<'_>> {
        self.read(key, now_ms, ReadOptions::FETCH)
    }

    /// The item for `key`, unless missing or expired, its usage updated as `options` say.
    /// [`ItemView::usage`] is the usage found, before this read.
    pub fn read(&mut self, key: &[u8], now_ms: u64, options: ReadOptions) -> Option<ItemView<'_>> {
        self.before_operation(now_ms);
        let hash = self.hash(key);
        let Some((location, header)) = self.find_live(key, hash, now_ms) else {
            return self.read_cold(key, hash, now_ms, options);
        };
        self.read_found(hash, location, header, options, now_ms)
    }

    /// A read of the live item at `location`: records it in the item's usage as `options` say.
    fn read_found(
        &mut self,
        hash: u64,
        location: Location,
        header: ItemHeader,
        options: ReadOptions,
        now_ms: u64,
    ) -> Option<ItemView<'_>> {
        let usage = header.usage;
        let recache_due = |within_ms: u64| {
            header.expiry_ms != 0 && header.expiry_ms < now_ms.saturating_add(within_ms)
        };
        let won = options.claim_win
            && !usage.win_token
            && (usage.stale || options.recache_within_ms.is_some_and(recache_due));
        let mut next = if options.touch {
            usage.fetched_at(now_ms)
        } else {
            usage
        };
        next.win_token |= won;
        if next != usage {
            // Not noted for msync: usage is advisory and memcached does not keep it either.
            let start = self.segment_start(location.segment) + location.offset as usize;
            layout::write_usage(&mut self.arena.bytes_mut()[start..], next);
        }
        let value = match header.encoding {
            Encoding::Raw => None,
            Encoding::Lz4 => {
                let mut value = Vec::with_capacity(header.raw_len.min(self.item_bytes_max()));
                if !self.decode_value_into(location, &header, &mut value) {
                    self.drop_corrupt(hash, location);
                    return None;
                }
                Some(value)
            }
        };
        let cas = self.cas(location);
        let item = self.item_bytes(location, &header);
        Some(ItemView {
            key: header.key(item),
            value: value.map_or(Cow::Borrowed(header.stored_value(item)), Cow::Owned),
            flags: header.flags,
            cas,
            expiry_ms: (header.expiry_ms != 0).then_some(header.expiry_ms),
            usage,
            won,
        })
    }

    /// Changes the usage of `key`'s item in place (its CAS stays); false when it is missing.
    pub fn mark(&mut self, key: &[u8], mark: Mark, now_ms: u64) -> bool {
        self.before_operation(now_ms);
        let hash = self.hash(key);
        let Some((location, header)) = self.find_live(key, hash, now_ms) else {
            return match &mut self.cold {
                Some(tier) => tier.store.mark(key, mark, now_ms),
                None => false,
            };
        };
        let mut usage = header.usage;
        match mark {
            Mark::Stale => usage.stale = true,
            Mark::WinToken => usage.win_token = true,
        }
        let start = self.segment_start(location.segment) + location.offset as usize;
        layout::write_usage(&mut self.arena.bytes_mut()[start..], usage);
        true
    }

    /// memcached `md I`: rewrites `key`'s item (so its CAS changes) marked stale, with its win
    /// token free again for the next reader, and with `expiry_ms` when given (a time not after
    /// `now_ms` deletes it). Returns the new CAS (0 when deleted); `None` when missing.
    pub fn invalidate(
        &mut self,
        key: &[u8],
        expiry_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let (hash, live) = self.live_for_update(key, now_ms);
        let Some((location, header)) = live else {
            self.commit()?;
            return Ok(None);
        };
        let expiry_ms = expiry_ms.unwrap_or(header.expiry_ms);
        if expiry_ms != 0 && expiry_ms <= now_ms {
            self.unlink(hash, location);
            self.commit()?;
            return Ok(Some(0));
        }
        let mut usage = header.usage;
        usage.stale = true;
        usage.win_token = false;
        let location = self.rewrite_item(key, hash, (location, &header), expiry_ms, usage, now_ms);
        self.commit()?;
        Ok(Some(self.cas(location)))
    }

    /// Whether `key` holds a live item.
    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.before_operation(now_ms);
        let hash = self.hash(key);
        self.find_live(key, hash, now_ms).is_some()
            || self
                .cold
                .as_mut()
                .is_some_and(|tier| tier.store.contains(key, now_ms))
    }

    /// Writes `value` under `key` as `options` say. Never fails for lack of memory: older
    /// segments are evicted instead.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        options: &SetOptions,
        now_ms: u64,
    ) -> Result<SetResult, StoreError> {
        self.before_operation(now_ms);
        self.check_sizes(key, value.len())?;
        let hash = self.hash(key);
        let needs_existing = options.condition != Condition::Always
            || options.return_previous
            || options.expiry == Expiry::Keep;
        // Only a write that depends on the old item brings it in from the cold tier; a plain
        // overwrite just drops the cold copy (in `write_item`).
        let moved = match needs_existing {
            true => self.fault_in(key, hash, now_ms),
            false => None,
        };
        let condition = match (options.condition, moved) {
            (Condition::IfCas(cas), Some((cold_cas, hot_cas))) if cas == cold_cas => {
                Condition::IfCas(hot_cas)
            }
            (condition, _) => condition,
        };
        let existing = self.find_live(key, hash, now_ms);
        let previous = match (options.return_previous, existing) {
            (true, Some((location, header))) => {
                let mut previous = Vec::with_capacity(header.raw_len);
                self.decode_value_into(location, &header, &mut previous)
                    .then_some(previous)
            }
            _ => None,
        };
        let blocked = match (condition, existing) {
            (Condition::IfAbsent, Some(_)) | (Condition::IfPresent, None) => {
                Some(SetStatus::NotStored)
            }
            (Condition::IfCas(_), None) => Some(SetStatus::NotFound),
            (Condition::IfCas(cas), Some((location, _))) if self.cas(location) != cas => {
                Some(SetStatus::Exists)
            }
            _ => None,
        };
        if let Some(status) = blocked {
            self.commit()?;
            return Ok(SetResult { status, previous });
        }
        let expiry_ms = match options.expiry {
            Expiry::Never => 0,
            Expiry::At(at_ms) => at_ms,
            Expiry::Keep => existing.map_or(0, |(_, header)| header.expiry_ms),
        };
        let cas = if expiry_ms != 0 && expiry_ms <= now_ms {
            if let Some((location, _)) = existing {
                self.unlink(hash, location);
            }
            self.forget_cold(key);
            0
        } else {
            let item = NewItem {
                key,
                value_parts: &[value],
                encoding: Encoding::Raw,
                raw_len: value.len(),
                flags: options.flags,
                expiry_ms,
                usage: ItemUse::written_at(now_ms),
            };
            let location = self.write_value(hash, item, now_ms);
            self.cas(location)
        };
        self.commit()?;
        Ok(SetResult {
            status: SetStatus::Stored { cas },
            previous,
        })
    }

    /// Writes `item`, whose value is one raw part, LZ4-compressed when that pays.
    fn write_value(&mut self, hash: u64, item: NewItem, now_ms: u64) -> Location {
        let value = item.value_parts[0];
        let mut compressed = std::mem::take(&mut self.scratch);
        let (stored, encoding) = match self.compress(value, &mut compressed) {
            true => (&compressed[..], Encoding::Lz4),
            false => (value, Encoding::Raw),
        };
        let item = NewItem {
            value_parts: &[stored],
            encoding,
            ..item
        };
        let location = self.write_item(hash, &item, now_ms);
        self.scratch = compressed;
        location
    }

    /// LZ4-compresses `value` into `out` when compression is on, the value is long enough and
    /// the block reaches the configured ratio (raw length / block length).
    fn compress(&mut self, value: &[u8], out: &mut Vec<u8>) -> bool {
        if self
            .compress_min_bytes
            .is_none_or(|min_bytes| value.len() < min_bytes)
        {
            return false;
        }
        out.clear();
        out.resize(compress_bound(value.len()), 0);
        let ratio_percent = self.compress_ratio_min_percent as usize;
        match self.offload.compress(value, out) {
            Ok(len) if len * ratio_percent <= value.len() * 100 => {
                out.truncate(len);
                self.stats.compressed_items += 1;
                self.stats.compressed_raw_bytes += value.len() as u64;
                self.stats.compressed_stored_bytes += len as u64;
                true
            }
            _ => {
                self.stats.compress_skipped += 1;
                false
            }
        }
    }

    /// Deletes `key`; false if it was not there.
    pub fn delete(&mut self, key: &[u8], now_ms: u64) -> Result<bool, StoreError> {
        self.before_operation(now_ms);
        let hash = self.hash(key);
        let cold = match &mut self.cold {
            Some(tier) => tier.store.delete(key, now_ms)?,
            None => false,
        };
        let Some((location, _)) = self.find_live(key, hash, now_ms) else {
            self.commit()?;
            return Ok(cold);
        };
        self.unlink(hash, location);
        self.commit()?;
        Ok(true)
    }

    /// Appends `data` to the value of `key`, keeping flags and expiry. `None` when the key is
    /// missing (memcached NOT_STORED; Redis APPEND then sets). Returns the new length.
    pub fn append(
        &mut self,
        key: &[u8],
        data: &[u8],
        now_ms: u64,
    ) -> Result<Option<usize>, StoreError> {
        self.concat(key, data, Side::Append, now_ms)
    }

    /// Like [`Store::append`], at the front.
    pub fn prepend(
        &mut self,
        key: &[u8],
        data: &[u8],
        now_ms: u64,
    ) -> Result<Option<usize>, StoreError> {
        self.concat(key, data, Side::Prepend, now_ms)
    }

    fn concat(
        &mut self,
        key: &[u8],
        data: &[u8],
        side: Side,
        now_ms: u64,
    ) -> Result<Option<usize>, StoreError> {
        let (hash, live) = self.live_for_update(key, now_ms);
        let Some((location, header)) = live else {
            self.commit()?;
            return Ok(None);
        };
        self.check_sizes(key, header.raw_len + data.len())?;
        let mut old = std::mem::take(&mut self.scratch);
        old.clear();
        let decoded = self.decode_value_into(location, &header, &mut old);
        let new_len = old.len() + data.len();
        if decoded {
            let parts: [&[u8]; 2] = match side {
                Side::Append => [&old, data],
                Side::Prepend => [data, &old],
            };
            let item = NewItem {
                key,
                value_parts: &parts,
                encoding: Encoding::Raw,
                raw_len: new_len,
                flags: header.flags,
                expiry_ms: header.expiry_ms,
                usage: ItemUse::written_at(now_ms),
            };
            self.write_item(hash, &item, now_ms);
        }
        self.scratch = old;
        self.commit()?;
        Ok(decoded.then_some(new_len))
    }

    /// Rewrites the item of `key` with a new decimal value, keeping flags and expiry.
    fn write_counter(
        &mut self,
        key: &[u8],
        hash: u64,
        header: &ItemHeader,
        value: &[u8],
        now_ms: u64,
    ) {
        let item = NewItem {
            key,
            value_parts: &[value],
            encoding: Encoding::Raw,
            raw_len: value.len(),
            flags: header.flags,
            expiry_ms: header.expiry_ms,
            usage: ItemUse::written_at(now_ms),
        };
        self.write_item(hash, &item, now_ms);
    }

    /// The decoded value of a live item, in the scratch buffer (taken; put it back).
    fn take_value(&mut self, location: Location, header: &ItemHeader) -> Option<Vec<u8>> {
        let mut value = std::mem::take(&mut self.scratch);
        value.clear();
        if self.decode_value_into(location, header, &mut value) {
            Some(value)
        } else {
            self.scratch = value;
            None
        }
    }

    /// memcached incr: adds `delta` with wrap-around at 2^64. `None` when the key is missing;
    /// [`StoreError::NotAnInteger`] when the value is not a decimal u64.
    pub fn incr_u64(
        &mut self,
        key: &[u8],
        delta: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.counter_u64(key, now_ms, |value| value.wrapping_add(delta))
    }

    /// memcached decr: subtracts `delta`, stopping at 0.
    pub fn decr_u64(
        &mut self,
        key: &[u8],
        delta: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.counter_u64(key, now_ms, |value| value.saturating_sub(delta))
    }

    fn counter_u64(
        &mut self,
        key: &[u8],
        now_ms: u64,
        step: impl FnOnce(u64) -> u64,
    ) -> Result<Option<u64>, StoreError> {
        let (hash, live) = self.live_for_update(key, now_ms);
        let Some((location, header)) = live else {
            self.commit()?;
            return Ok(None);
        };
        let value = self
            .take_value(location, &header)
            .ok_or(StoreError::NotAnInteger)?;
        let parsed = parse_u64(&value);
        self.scratch = value;
        let next = step(parsed.ok_or(StoreError::NotAnInteger)?);
        let mut digits = [0u8; COUNTER_DIGITS_MAX];
        let text = decimal(next as i128, &mut digits);
        self.write_counter(key, hash, &header, text, now_ms);
        self.commit()?;
        Ok(Some(next))
    }

    /// Redis INCRBY / DECRBY: a missing key counts as 0 (and is created without expiry); the
    /// value must be a canonical i64; overflow is [`StoreError::Overflow`]. Keeps the expiry.
    pub fn incr_i64(&mut self, key: &[u8], delta: i64, now_ms: u64) -> Result<i64, StoreError> {
        let (hash, live) = self.live_for_update(key, now_ms);
        let (current, header) = match live {
            None => (0, None),
            Some((location, header)) => {
                let value = self
                    .take_value(location, &header)
                    .ok_or(StoreError::NotAnInteger)?;
                let parsed = parse_i64(&value);
                self.scratch = value;
                (parsed.ok_or(StoreError::NotAnInteger)?, Some(header))
            }
        };
        let next = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        let mut digits = [0u8; COUNTER_DIGITS_MAX];
        let text = decimal(next as i128, &mut digits);
        match header {
            Some(header) => self.write_counter(key, hash, &header, text, now_ms),
            None => {
                self.check_sizes(key, text.len())?;
                let item = NewItem {
                    key,
                    value_parts: &[text],
                    encoding: Encoding::Raw,
                    raw_len: text.len(),
                    flags: 0,
                    expiry_ms: 0,
                    usage: ItemUse::written_at(now_ms),
                };
                self.write_item(hash, &item, now_ms);
            }
        }
        self.commit()?;
        Ok(next)
    }

    /// When `key` expires.
    pub fn expiry(&mut self, key: &[u8], now_ms: u64) -> ExpiryState {
        self.before_operation(now_ms);
        let hash = self.hash(key);
        match self.find_live(key, hash, now_ms) {
            None => match &mut self.cold {
                Some(tier) => tier.store.expiry(key, now_ms),
                None => ExpiryState::Missing,
            },
            Some((_, header)) if header.expiry_ms == 0 => ExpiryState::Never,
            Some((_, header)) => ExpiryState::At(header.expiry_ms),
        }
    }

    /// Sets when `key` expires (memcached touch, Redis EXPIRE/PEXPIREAT; `None` = never). A
    /// time not after `now_ms` deletes the key. False when the key is missing. The item is
    /// rewritten (it moves to the segment group of its new TTL), so its CAS changes.
    pub fn set_expiry(
        &mut self,
        key: &[u8],
        expiry_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let (hash, live) = self.live_for_update(key, now_ms);
        let Some((location, header)) = live else {
            self.commit()?;
            return Ok(false);
        };
        let expiry_ms = expiry_ms.unwrap_or(0);
        if expiry_ms != 0 && expiry_ms <= now_ms {
            self.unlink(hash, location);
        } else if expiry_ms != header.expiry_ms {
            let usage = header.usage;
            self.rewrite_item(key, hash, (location, &header), expiry_ms, usage, now_ms);
        }
        self.commit()?;
        Ok(true)
    }

    /// Removes the expiry of `key` (Redis PERSIST): true if it had one.
    pub fn persist(&mut self, key: &[u8], now_ms: u64) -> Result<bool, StoreError> {
        match self.expiry(key, now_ms) {
            ExpiryState::At(_) => self.set_expiry(key, None, now_ms),
            ExpiryState::Missing | ExpiryState::Never => Ok(false),
        }
    }

    fn flush_all_now(&mut self) {
        self.segments.release_all();
        self.index.clear();
        self.flush_all_at_ms = None;
        self.superblock.flush_generation = self.next_generation - 1;
        let bytes = self.arena.bytes_mut();
        self.superblock
            .write(&mut bytes[..SUPERBLOCK_BYTES], self.offload.as_mut());
        self.written(0, SUPERBLOCK_BYTES);
    }

    /// Deletes every item now.
    pub fn flush_all(&mut self, now_ms: u64) -> Result<(), StoreError> {
        self.before_operation(now_ms);
        if let Some(tier) = &mut self.cold {
            tier.store.flush_all(now_ms)?;
        }
        self.flush_all_now();
        self.commit()
    }

    /// Deletes every item written before `at_ms`, once that time comes (memcached
    /// `flush_all <delay>`). Replaces an earlier pending one; the delay is not kept across a
    /// restart.
    pub fn flush_all_at(&mut self, at_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        if at_ms <= now_ms {
            return self.flush_all(now_ms);
        }
        if let Some(tier) = &mut self.cold {
            tier.store.flush_all_at(at_ms, now_ms)?;
        }
        self.flush_all_at_ms = Some(at_ms);
        Ok(())
    }

    /// Items evicted to make room since the store opened (what [`Store::stats`] reports, without
    /// its walk over the segments).
    pub fn evicted_items(&self) -> u64 {
        self.stats.evicted_items
    }

    /// Keys in the index, of both tiers (expired ones count until they are dropped).
    pub fn len(&self) -> usize {
        self.index.len() + self.cold.as_ref().map_or(0, |tier| tier.store.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn stats(&self) -> Stats {
        let segments_in_use = (self.geometry.segment_count - self.segments.free_count()) as u64;
        let bytes_used = self
            .segments
            .in_use()
            .map(|segment| self.segments.meta(segment).write_offset as u64)
            .sum();
        Stats {
            items: self.len() as u64,
            bytes_used,
            bytes_limit: (self.geometry.segment_bytes * self.geometry.segment_count) as u64,
            index_bytes: self.index.bytes() as u64,
            segments_total: self.geometry.segment_count as u64,
            segments_free: self.segments.free_count() as u64,
            segments_in_use,
            ..self.stats
        }
    }

    /// Visits live keys from `cursor` (0 to start) until at least `count` were visited or the
    /// table ends; returns the cursor to continue from (0 = done). A key present from the first
    /// call to the last is visited exactly once, whatever is written in between.
    ///
    /// A tiered store scans its hot tier, then its cold one (cursors of the second pass have
    /// [`COLD_SCAN_BIT`] set); a key that moves between tiers during the scan may be missed or
    /// visited twice.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut visit: impl FnMut(&[u8]),
    ) -> u64 {
        if cursor & COLD_SCAN_BIT != 0 {
            let Some(tier) = &self.cold else {
                return 0;
            };
            let next = tier
                .store
                .scan(cursor & !COLD_SCAN_BIT, count, now_ms, visit);
            return if next == 0 { 0 } else { next | COLD_SCAN_BIT };
        }
        let next = self.scan_tier(cursor, count, now_ms, &mut visit);
        match (next, &self.cold) {
            (0, Some(_)) => COLD_SCAN_BIT,
            _ => next,
        }
    }

    fn scan_tier(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        visit: &mut impl FnMut(&[u8]),
    ) -> u64 {
        if self.flush_all_at_ms.is_some_and(|at_ms| at_ms <= now_ms) {
            // A delayed flush_all is due: nothing is left to visit.
            return 0;
        }
        let bytes = self.arena.bytes();
        let count = count.max(1);
        let mut cursor = cursor;
        let mut visited = 0;
        for _ in 0..count.saturating_mul(SCAN_BUCKETS_PER_KEY_MAX) {
            cursor = self.index.scan_bucket(cursor, |location| {
                if let Some((header, item)) =
                    item_at(bytes, &self.segments, self.geometry, location)
                {
                    if !header.is_expired(now_ms) {
                        visit(header.key(item));
                        visited += 1;
                    }
                }
            });
            if cursor == 0 || visited >= count {
                break;
            }
        }
        cursor
    }

    /// A random live key (Redis RANDOMKEY). Expired keys it lands on are dropped, as Redis does.
    /// A tiered store picks the tier in proportion to the keys each holds.
    pub fn random_key(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        self.before_operation(now_ms);
        let random = self.next_random();
        let hot_len = self.index.len() as u64;
        let Some(tier) = &mut self.cold else {
            return self.random_own_key(now_ms);
        };
        let total = hot_len + tier.store.len() as u64;
        if total > 0 && random % total >= hot_len {
            if let Some(key) = tier.store.random_key(now_ms) {
                return Some(key);
            }
        }
        if let Some(key) = self.random_own_key(now_ms) {
            return Some(key);
        }
        self.cold.as_mut()?.store.random_key(now_ms)
    }

    /// xorshift64*: cheap, and no dependency for a number that needs no quality.
    fn next_random(&mut self) -> u64 {
        self.random_state ^= self.random_state >> 12;
        self.random_state ^= self.random_state << 25;
        self.random_state ^= self.random_state >> 27;
        self.random_state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn random_own_key(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        for _ in 0..RANDOM_KEY_ATTEMPTS_MAX {
            let random = self.next_random();
            let location = self.index.random_location(random)?;
            let (header, item) =
                item_at(self.arena.bytes(), &self.segments, self.geometry, location)?;
            if !header.is_expired(now_ms) {
                return Some(header.key(item).to_vec());
            }
            let hash = self.hash(header.key(item));
            self.unlink(hash, location);
            self.stats.expired_items += 1;
        }
        None
    }

    /// Every live item, segment by segment (for re-homing items to another shard); a tiered
    /// store's hot tier first, then its cold one.
    pub fn items(&mut self, now_ms: u64) -> Items<'_> {
        self.before_operation(now_ms);
        let item_bytes_max = self.item_bytes_max();
        let segments = self
            .segments
            .in_use()
            .map(|segment| {
                let meta = self.segments.meta(segment);
                (
                    self.segment_start(segment),
                    meta.write_offset as usize,
                    meta.generation,
                )
            })
            .collect();
        Items {
            bytes: self.arena.bytes(),
            offload: self.offload.as_mut(),
            segments,
            next_segment: 0,
            offset: SEGMENT_HEADER_BYTES,
            now_ms,
            cas_tag: self.cas_tag,
            verify: self.verify_reads,
            item_bytes_max,
            next_tier: self
                .cold
                .as_mut()
                .map(|tier| Box::new(tier.store.items(now_ms))),
        }
    }

    /// Periodic work: runs a due delayed flush_all, frees expired segments, and under
    /// `EverySec` flushes the file once a second. Call it every few hundred ms.
    pub fn tick(&mut self, now_ms: u64) -> Result<(), StoreError> {
        self.before_operation(now_ms);
        if let Some(tier) = &mut self.cold {
            tier.store.tick(now_ms)?;
        }
        self.expire_segments(now_ms);
        self.commit()?;
        if self.flush_policy == FlushPolicy::EverySec
            && now_ms.saturating_sub(self.flushed_at_ms) >= EVERYSEC_INTERVAL_MS
        {
            self.flush_to_media(now_ms)?;
        }
        Ok(())
    }

    /// A handle that syncs the file (a tiered store's cold tier's) from another thread (`None`
    /// in DRAM); see [`SyncHandle`].
    pub fn sync_handle(&self) -> Result<Option<SyncHandle>, StoreError> {
        if let Some(tier) = &self.cold {
            return tier.store.sync_handle();
        }
        match (self.arena.file(), self.arena.path()) {
            (Some(file), Some(path)) => SyncHandle::new(file, path).map(Some),
            _ => Ok(None),
        }
    }

    /// Forces everything written so far to the medium (msync); a no-op in DRAM.
    pub fn flush_to_media(&mut self, now_ms: u64) -> Result<(), StoreError> {
        if let Some(tier) = &mut self.cold {
            tier.store.flush_to_media(now_ms)?;
        }
        self.flush_own(now_ms)
    }

    fn flush_own(&mut self, now_ms: u64) -> Result<(), StoreError> {
        let len = self.geometry.arena_bytes();
        if let Err(source) = self.arena.flush(0, len) {
            return Err(self.file_error("msync", source));
        }
        self.flushed_at_ms = now_ms;
        Ok(())
    }

    /// Flushes everything, marks the file clean and unlocks it. A tiered store first moves
    /// every live item of its hot tier to the cold one (whatever the admission rule), so a
    /// restart finds them all.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if self.cold.is_some() {
            self.demote_all();
        }
        if let Some(tier) = &mut self.cold {
            tier.store.shutdown()?;
        }
        self.flush_own(self.flushed_at_ms)?;
        self.superblock.clean = 1;
        self.write_superblock()
    }

    /// Rebuilds the index from the segments of a reopened file: every item's CRC is checked,
    /// dead and expired items are skipped, and when a key is found live twice the higher CAS
    /// wins and the other is marked dead.
    fn recover(&mut self, now_ms: u64) -> RecoveryReport {
        let mut report = RecoveryReport::default();
        let flush_generation = self.superblock.flush_generation;
        let segment_bytes = self.geometry.segment_bytes;
        let mut metas: Vec<(u32, SegmentMeta)> = Vec::new();
        let mut generation_max = flush_generation;
        for segment in 0..self.geometry.segment_count as u32 {
            let start = self.segment_start(segment);
            let header = &self.arena.bytes()[start..start + SEGMENT_HEADER_BYTES];
            let (ttl_bucket, generation, write_offset) =
                match SegmentHeader::read(header, segment_bytes, self.offload.as_mut()) {
                    SegmentState::Free => continue,
                    SegmentState::Corrupt => {
                        report.segments_corrupt += 1;
                        continue;
                    }
                    SegmentState::InUse {
                        ttl_bucket,
                        generation,
                        write_offset,
                    } => (ttl_bucket, generation, write_offset),
                };
            if generation <= flush_generation {
                continue;
            }
            if ttl_bucket as usize >= TTL_BUCKETS || generation > GENERATION_MAX {
                report.segments_corrupt += 1;
                continue;
            }
            generation_max = generation_max.max(generation);
            let meta = SegmentMeta {
                generation,
                write_offset,
                live_items: 0,
                expiry_max_ms: 0,
                ttl_bucket,
            };
            self.segments.meta_mut(segment).clone_from(&meta);
            metas.push((segment, meta));
        }
        // Size the index once, from the bytes to walk and the first segment's item size,
        // rather than doubling it (and rehashing every key) while items are inserted.
        let used_bytes: usize = metas
            .iter()
            .map(|(_, meta)| meta.write_offset as usize - SEGMENT_HEADER_BYTES)
            .sum();
        let item_bytes = metas
            .first()
            .map_or(usize::MAX, |&(segment, _)| self.average_item_bytes(segment));
        self.index = Index::with_capacity(used_bytes / item_bytes);
        for &(segment, _) in &metas {
            self.recover_segment(segment, now_ms, &mut report);
        }
        metas.sort_by_key(|(_, meta)| meta.generation);
        let mut in_use = Vec::with_capacity(metas.len());
        for (segment, _) in metas {
            let meta = *self.segments.meta(segment);
            if meta.live_items == 0 {
                let start = self.segment_start(segment);
                SegmentHeader::write_free(
                    &mut self.arena.bytes_mut()[start..start + SEGMENT_HEADER_BYTES],
                );
                continue;
            }
            in_use.push((segment, meta));
        }
        report.segments_restored = in_use.len() as u64;
        self.segments = Segments::recovered(self.geometry.segment_count, &in_use);
        self.next_generation = generation_max + 1;
        report.items_restored = self.index.len() as u64;
        report
    }

    /// Mean bytes per item of a segment about to be recovered (`usize::MAX` if it has none).
    fn average_item_bytes(&self, segment: u32) -> usize {
        let write_offset = self.segments.meta(segment).write_offset as usize;
        let start = self.segment_start(segment);
        let bytes = &self.arena.bytes()[start..start + write_offset];
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut items = 0;
        while let Some(header) = bytes.get(offset..).and_then(ItemHeader::parse) {
            offset += header.len;
            items += 1;
        }
        (offset - SEGMENT_HEADER_BYTES)
            .checked_div(items)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// Walks one segment. Up to the header's `write_offset` every item must verify (a failure
    /// is counted as corrupt, marked dead and skipped by its length; an unreadable header ends
    /// the walk). Past it, items that verify were written just before a crash that kept the
    /// header from being updated, and are kept; the first that does not verify is the end.
    /// New items are appended where the walk ended, so later walks (recovery, eviction,
    /// iteration) follow the same chain of items.
    fn recover_segment(&mut self, segment: u32, now_ms: u64, report: &mut RecoveryReport) {
        let start = self.segment_start(segment);
        let meta = *self.segments.meta(segment);
        let segment_bytes = self.geometry.segment_bytes;
        let end_hint = meta.write_offset as usize;
        // While walking, items anywhere in the segment can be looked up.
        self.segments.meta_mut(segment).write_offset = segment_bytes as u32;
        let mut offset = SEGMENT_HEADER_BYTES;
        // Items to index: (location, hash, key start, key length), gathered so the index's
        // cache misses can be overlapped in batches.
        let mut pending = std::mem::take(&mut self.recovery_pending);
        pending.clear();
        while offset < segment_bytes {
            let trusted = offset < end_hint;
            let bytes = &self.arena.bytes()[start + offset..start + segment_bytes];
            let header = ItemHeader::parse(bytes)
                .filter(|header| !trusted || offset + header.len <= end_hint);
            let Some(header) = header else {
                report.items_corrupt += u64::from(trusted);
                break;
            };
            if !layout::verify(bytes, &header, meta.generation, self.offload.as_mut()) {
                if !trusted {
                    break;
                }
                report.items_corrupt += 1;
                let item_start = start + offset;
                layout::mark_dead(&mut self.arena.bytes_mut()[item_start..]);
                offset += header.len;
                continue;
            }
            let location = Location {
                segment,
                offset: offset as u32,
            };
            offset += header.len;
            if header.dead {
                continue;
            }
            let segment_meta = self.segments.meta_mut(segment);
            segment_meta.live_items += 1;
            segment_meta.expiry_max_ms = segment_meta.expiry_max_ms.max(header.expiry_ms);
            if header.is_expired(now_ms) {
                report.items_expired += 1;
                self.mark_dead_recovering(location);
                continue;
            }
            let hash = hash_key(self.hash_seed, header.key(bytes));
            pending.push((location, hash, header.key_start, header.key_len));
        }
        for batch in pending.chunks(RECOVERY_INDEX_BATCH) {
            for &(_, hash, ..) in batch {
                self.index.prefetch(hash);
            }
            for &(location, hash, key_start, key_len) in batch {
                if let Some(loser) = self.index_recovered(hash, location, key_start, key_len) {
                    report.items_superseded += 1;
                    self.mark_dead_recovering(loser);
                }
                self.grow_index_if_full();
            }
        }
        self.recovery_pending = pending;
        self.segments.meta_mut(segment).write_offset = offset as u32;
        SegmentHeader::write_offset(
            &mut self.arena.bytes_mut()[start..start + SEGMENT_HEADER_BYTES],
            offset as u32,
        );
    }

    /// Indexes a recovered item. When its key is already indexed, the higher CAS stays and the
    /// other location is returned to be marked dead.
    fn index_recovered(
        &mut self,
        hash: u64,
        location: Location,
        key_start: usize,
        key_len: usize,
    ) -> Option<Location> {
        let (bytes, segments, geometry) = (self.arena.bytes(), &self.segments, self.geometry);
        let item_start = SUPERBLOCK_BYTES
            + location.segment as usize * geometry.segment_bytes
            + location.offset as usize;
        let key = &bytes[item_start + key_start..item_start + key_start + key_len];
        let matches = |candidate: Location| {
            item_at(bytes, segments, geometry, candidate)
                .is_some_and(|(header, item)| header.key(item) == key)
        };
        let previous = self.index.upsert(hash, location, |candidate| {
            candidate != location && matches(candidate)
        })?;
        let cas = |location: Location| {
            cas_of(segments.meta(location.segment).generation, location.offset)
        };
        if cas(previous) < cas(location) {
            return Some(previous);
        }
        self.index
            .upsert(hash, previous, |candidate| candidate == location);
        Some(location)
    }

    /// Marks an item dead during recovery (segment lists are not built yet).
    fn mark_dead_recovering(&mut self, location: Location) {
        let start = self.segment_start(location.segment) + location.offset as usize;
        layout::mark_dead(&mut self.arena.bytes_mut()[start..]);
        self.segments.meta_mut(location.segment).live_items -= 1;
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Errors cannot be returned from drop; `close` reports them.
        let _ = self.shutdown();
    }
}

/// Reads the superblock of an existing file and checks it against the configuration.
fn read_superblock(
    file: &LockedFile,
    geometry: Geometry,
    offload: &mut dyn Offload,
) -> Result<Superblock, StoreError> {
    let path = file.path.clone();
    if file.len < SUPERBLOCK_BYTES as u64 {
        return Err(StoreError::Truncated {
            path,
            found: file.len,
            expected: SUPERBLOCK_BYTES as u64,
        });
    }
    let mut bytes = vec![0u8; SUPERBLOCK_BYTES];
    file.file
        .read_exact_at(&mut bytes, 0)
        .map_err(|source| StoreError::File {
            path: path.clone(),
            operation: "read",
            source,
        })?;
    let superblock = Superblock::read(&bytes, offload).map_err(|error| match error {
        SuperblockError::BadMagic => StoreError::BadMagic { path: path.clone() },
        SuperblockError::Corrupt => StoreError::CorruptSuperblock { path: path.clone() },
        SuperblockError::Version { found } => StoreError::VersionMismatch {
            path: path.clone(),
            found,
            expected: FORMAT_VERSION,
        },
    })?;
    if superblock.segment_bytes != geometry.segment_bytes as u64
        || superblock.segment_count != geometry.segment_count as u64
    {
        return Err(StoreError::GeometryMismatch {
            path,
            found_segment_bytes: superblock.segment_bytes,
            found_segment_count: superblock.segment_count,
            expected_segment_bytes: geometry.segment_bytes as u64,
            expected_segment_count: geometry.segment_count as u64,
        });
    }
    let expected = geometry.arena_bytes() as u64;
    if file.len < expected {
        return Err(StoreError::Truncated {
            path,
            found: file.len,
            expected,
        });
    }
    Ok(superblock)
}

/// Iterator over every live item; see [`Store::items`].
pub struct Items<'a> {
    bytes: &'a [u8],
    offload: &'a mut dyn Offload,
    /// (start, write_offset, generation) of each segment in use.
    segments: Vec<(usize, usize, u64)>,
    next_segment: usize,
    offset: usize,
    now_ms: u64,
    cas_tag: u64,
    /// Check each item's CRC-64 (a cold tier).
    verify: bool,
    /// No LZ4 value decodes to more than this.
    item_bytes_max: usize,
    /// The cold tier's items, after these.
    next_tier: Option<Box<Items<'a>>>,
}

impl<'a> Iterator for Items<'a> {
    type Item = ItemView<'a>;

    fn next(&mut self) -> Option<ItemView<'a>> {
        loop {
            let Some(&(start, write_offset, generation)) = self.segments.get(self.next_segment)
            else {
                return self.next_tier.as_mut()?.next();
            };
            let bytes: &'a [u8] = &self.bytes[start..start + write_offset];
            let Some(header) = bytes.get(self.offset..).and_then(ItemHeader::parse) else {
                self.next_segment += 1;
                self.offset = SEGMENT_HEADER_BYTES;
                continue;
            };
            let item = &bytes[self.offset..self.offset + header.len];
            let offset = self.offset as u32;
            self.offset += header.len;
            if header.dead || header.is_expired(self.now_ms) {
                continue;
            }
            if self.verify && !layout::verify(item, &header, generation, self.offload) {
                continue;
            }
            let value = match header.encoding {
                Encoding::Raw => Cow::Borrowed(header.stored_value(item)),
                Encoding::Lz4 => {
                    if header.raw_len > self.item_bytes_max {
                        continue;
                    }
                    let mut value = vec![0u8; header.raw_len];
                    if self
                        .offload
                        .decompress(header.stored_value(item), &mut value)
                        != Ok(header.raw_len)
                    {
                        continue;
                    }
                    Cow::Owned(value)
                }
            };
            return Some(ItemView {
                key: header.key(item),
                value,
                flags: header.flags,
                cas: self.cas_tag | cas_of(generation, offset),
                expiry_ms: (header.expiry_ms != 0).then_some(header.expiry_ms),
                usage: header.usage,
                won: false,
            });
        }
    }
}
