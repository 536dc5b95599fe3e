//! The two tiers of a tiered store. The hot tier is the [`Store`] the caller holds (DRAM); it
//! owns a [`ColdTier`], a second `Store` on a memory-mapped file, and moves items between them:
//!
//! - **Demotion instead of eviction**: when the hot tier needs a segment and has none free, the
//!   live items of its oldest segment go to the cold tier (those the [`Admission`] rule admits;
//!   the others are dropped, as eviction would drop them) and the segment is reused. Only the
//!   cold tier evicts.
//! - **Promotion**: a read the hot tier misses is served by the cold tier; a second read of the
//!   same key within the promotion window moves the item back to DRAM. A write that needs the
//!   old item (a condition, append, a counter, an expiry change) moves it first.
//! - **One copy**: an item moves (written to its new tier, then removed from the old one), and
//!   every write of a key the hot tier does not hold removes the key from the cold tier, so a
//!   key is never live in both; deletes reach both.
//! - **Cold bytes**: demoted values are LZ4-compressed through the cold tier's offload engine
//!   when that reaches the configured ratio; every cold read checks the item's CRC-64 (over the
//!   stored, compressed bytes) and decompresses into a buffer sized from the header, itself
//!   bounded by the largest item. A damaged item is counted and dropped, never served.
//! - **Restart**: shutdown demotes every hot item (whatever the admission rule), so a restart
//!   keeps them all. A crash loses the hot tier and recovers the cold one; nothing deleted comes
//!   back, because the cold copy of an overwritten or deleted key is marked dead before the
//!   write returns.
//!
//! CAS values: the cold tier's have [`COLD_CAS_BIT`] set, so the tiers never hand out the same
//! one. An item's CAS changes when it moves (it is its location); a memcached `cas` that names
//! the cold CAS of an item the command itself brings in is honoured.

use super::*;
use crate::config::ColdTierConfig;

/// Slots of the promotion filter (16 bytes each): the last cold read of each slot's keys. A
/// key promotes when its slot still holds its own read from within the window; two hot keys
/// sharing a slot delay each other's promotion, they never promote a third key.
pub const PROMOTION_FILTER_SLOTS: usize = 4096;
/// Slots of the rejection filter (a 16-bit tag of the key's hash each, 2 MiB): recent
/// demotions that [`Admission::Reused`] refused. An unread item demoted again while its slot
/// still holds its tag was written again after being dropped, so it is not a one-hit wonder and
/// is admitted. A million slots remember about the last million refusals, long enough for a
/// key to miss, be written and be demoted again; a tag collision (1 in 65,535) admits one item
/// too many, which costs one file write.
pub const REJECTION_FILTER_SLOTS: usize = 1 << 20;

#[derive(Clone, Copy, Debug, Default)]
struct RecentRead {
    hash: u64,
    at_ms: u64,
}

/// Figures of a tiered store (INFO, stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    /// The cold tier's own figures: items, bytes, evictions, compression, corrupt items.
    pub cold: Stats,
    /// Reads the hot tier missed and the cold tier served.
    pub cold_hits: u64,
    pub demoted_items: u64,
    pub demoted_segments: u64,
    /// Live items of demoted segments that the admission rule kept out (dropped).
    pub rejected_items: u64,
    /// Items moved back to DRAM (by a second read within the window, or by a write that needed
    /// the old item).
    pub promoted_items: u64,
}

/// An item taken out of the cold tier.
struct Taken {
    value: Vec<u8>,
    flags: u32,
    expiry_ms: u64,
    usage: ItemUse,
    cas: u64,
}

pub(crate) struct ColdTier {
    pub store: Store,
    pub admission: Admission,
    promote_window_ms: u64,
    recent: Box<[RecentRead]>,
    rejected: Box<[u16]>,
    stats: TierStats,
}

impl ColdTier {
    pub fn new(store: Store, config: &ColdTierConfig) -> ColdTier {
        ColdTier {
            store,
            admission: config.admission,
            promote_window_ms: config.promote_window_ms,
            recent: vec![RecentRead::default(); PROMOTION_FILTER_SLOTS].into_boxed_slice(),
            rejected: vec![0; REJECTION_FILTER_SLOTS].into_boxed_slice(),
            stats: TierStats::default(),
        }
    }

    fn slot(hash: u64) -> usize {
        (hash % PROMOTION_FILTER_SLOTS as u64) as usize
    }

    /// Whether a demoted item of the key of `hash` goes to the cold tier; a refusal is
    /// remembered, so the key's next unread demotion is admitted.
    fn admits(&mut self, admission: Admission, hash: u64, fetched: bool) -> bool {
        if admission == Admission::All || fetched {
            return true;
        }
        // The slot from bits 20..40 (not the promotion filter's low bits), the tag from the top
        // 16, never 0 (an empty slot).
        let slot = &mut self.rejected[(hash >> 20) as usize % REJECTION_FILTER_SLOTS];
        let tag = (hash >> 48) as u16 | 1;
        if *slot == tag {
            *slot = 0;
            return true;
        }
        *slot = tag;
        false
    }

    /// Whether a read of the key of `hash` now follows another within the window.
    fn second_read(&self, hash: u64, now_ms: u64) -> bool {
        let recent = self.recent[Self::slot(hash)];
        self.promote_window_ms != 0
            && recent.hash == hash
            && recent.at_ms != 0
            && now_ms.saturating_sub(recent.at_ms) <= self.promote_window_ms
    }
}

impl Store {
    /// The figures of the cold tier and of the moves between the tiers (`None` unless tiered).
    pub fn tier_stats(&self) -> Option<TierStats> {
        let tier = self.cold.as_ref()?;
        Some(TierStats {
            cold: tier.store.stats(),
            ..tier.stats
        })
    }

    /// A read the hot tier missed: served by the cold tier, or promoted on its second read
    /// (only reads that record themselves, `options.touch`, count).
    pub(super) fn read_cold(
        &mut self,
        key: &[u8],
        hash: u64,
        now_ms: u64,
        options: ReadOptions,
    ) -> Option<ItemView<'_>> {
        if options.touch && self.cold.as_ref()?.second_read(hash, now_ms) {
            self.promote(key, hash, now_ms)?;
            let (location, header) = self.find(key, hash)?;
            self.cold.as_mut()?.stats.cold_hits += 1;
            return self.read_found(hash, location, header, options, now_ms);
        }
        let tier = self.cold.as_mut()?;
        let item = tier.store.read(key, now_ms, options)?;
        tier.stats.cold_hits += 1;
        if options.touch {
            tier.recent[ColdTier::slot(hash)] = RecentRead {
                hash,
                at_ms: now_ms,
            };
        }
        Some(item)
    }

    /// Moves `key`'s item from the cold tier into this one when only the cold tier has it, so
    /// an operation on the old item runs here. Returns its cold CAS and its new one.
    pub(super) fn fault_in(&mut self, key: &[u8], hash: u64, now_ms: u64) -> Option<(u64, u64)> {
        if self.cold.is_none() || self.find_live(key, hash, now_ms).is_some() {
            return None;
        }
        self.promote(key, hash, now_ms)
    }

    /// Moves `key`'s item from the cold tier to this one; returns its cold CAS and its new one.
    fn promote(&mut self, key: &[u8], hash: u64, now_ms: u64) -> Option<(u64, u64)> {
        let tier = self.cold.as_mut()?;
        let taken = tier.store.take(key, now_ms)?;
        tier.stats.promoted_items += 1;
        tier.recent[ColdTier::slot(hash)] = RecentRead::default();
        let item = NewItem {
            key,
            value_parts: &[&taken.value],
            encoding: Encoding::Raw,
            raw_len: taken.value.len(),
            flags: taken.flags,
            expiry_ms: taken.expiry_ms,
            usage: taken.usage,
        };
        let location = self.write_value(hash, item, now_ms);
        Some((taken.cas, self.cas(location)))
    }

    /// Removes `key` from the cold tier, if there is one and it holds the key.
    pub(super) fn forget_cold(&mut self, key: &[u8]) {
        let Some(tier) = &mut self.cold else {
            return;
        };
        let cold = &mut tier.store;
        let hash = cold.hash(key);
        if let Some((location, _)) = cold.find(key, hash) {
            cold.unlink(hash, location);
        }
    }

    /// Moves the live items of hot `segment` that `admission` admits to the cold tier, drops
    /// the rest, and frees the segment.
    pub(super) fn demote_segment(&mut self, segment: u32, admission: Admission, now_ms: u64) {
        let write_offset = self.segments.meta(segment).write_offset as usize;
        let start = self.segment_start(segment);
        let Store {
            arena,
            index,
            cold,
            hash_seed,
            stats,
            ..
        } = self;
        let tier = cold.as_mut().expect("only a tiered store demotes");
        let bytes = &arena.bytes()[start..start + write_offset];
        let mut offset = SEGMENT_HEADER_BYTES;
        while let Some(header) = bytes.get(offset..).and_then(ItemHeader::parse) {
            let item = &bytes[offset..offset + header.len];
            let location = Location {
                segment,
                offset: offset as u32,
            };
            offset += header.len;
            if header.dead {
                continue;
            }
            let hash = hash_key(*hash_seed, header.key(item));
            if !index.remove_location(hash, location) {
                continue;
            }
            if header.is_expired(now_ms) {
                stats.expired_items += 1;
            } else if tier.admits(admission, hash, header.usage.fetched) {
                tier.store.insert_demoted(item, &header, now_ms);
                tier.stats.demoted_items += 1;
            } else {
                tier.stats.rejected_items += 1;
            }
        }
        tier.stats.demoted_segments += 1;
        self.release_segment(segment);
    }

    /// Demotes every hot item (at shutdown).
    pub(super) fn demote_all(&mut self) {
        let now_ms = self.now_ms_last;
        while let Some(oldest) = self.segments.oldest() {
            self.demote_segment(oldest, Admission::All, now_ms);
        }
    }

    /// Writes a demoted item into this (cold) store, compressing a raw value when that pays.
    fn insert_demoted(&mut self, item: &[u8], header: &ItemHeader, now_ms: u64) {
        let key = header.key(item);
        let hash = self.hash(key);
        let stored = header.stored_value(item);
        let mut compressed = std::mem::take(&mut self.scratch);
        let (stored, encoding) = match header.encoding {
            Encoding::Raw if self.compress(stored, &mut compressed) => {
                (&compressed[..], Encoding::Lz4)
            }
            encoding => (stored, encoding),
        };
        let new = NewItem {
            key,
            value_parts: &[stored],
            encoding,
            raw_len: header.raw_len,
            flags: header.flags,
            expiry_ms: header.expiry_ms,
            usage: header.usage,
        };
        self.write_item(hash, &new, now_ms);
        self.scratch = compressed;
    }

    /// Removes `key`'s item from this (cold) store and returns it decoded; `None` if missing,
    /// expired or damaged (counted).
    fn take(&mut self, key: &[u8], now_ms: u64) -> Option<Taken> {
        self.before_operation(now_ms);
        let hash = self.hash(key);
        let (location, header) = self.find_live(key, hash, now_ms)?;
        let mut value = Vec::with_capacity(header.raw_len.min(self.item_bytes_max()));
        if !self.decode_value_into(location, &header, &mut value) {
            self.drop_corrupt(hash, location);
            return None;
        }
        let taken = Taken {
            value,
            flags: header.flags,
            expiry_ms: header.expiry_ms,
            usage: header.usage,
            cas: self.cas(location),
        };
        self.unlink(hash, location);
        Some(taken)
    }
}
