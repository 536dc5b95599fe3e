//! The bytes on media: superblock, segment header, item. The same bytes are valid in DRAM and
//! in the file tier; everything is little-endian.
//!
//! ```text
//! arena:    ┌──────────────┬───────────┬───────────┬─────┬─────────────────┐
//!           │ superblock   │ segment 0 │ segment 1 │ ... │ segment count-1 │
//!           │ 4096 bytes   │           │           │     │                 │
//!           └──────────────┴───────────┴───────────┴─────┴─────────────────┘
//!
//! superblock: two slots of 2048 bytes in the first page, written alternately, so a crash
//! while one is written leaves the other (the valid slot with the higher sequence wins).
//! Each slot (80 bytes used):
//!   0 magic "FERRSTOR"   8 format_version u32   12 clean u32   16 segment_bytes u64
//!  24 segment_count u64  32 store_epoch u64     40 flush_generation u64   48 sequence u64
//!  56 owner [u32; 4]     72 crc64 u64 (CRC-64/XZ of bytes 0..72)
//!
//! segment:  ┌────────────────┬────────┬────────┬─────┬──────────────── ─ ─
//!           │ header 32 B    │ item   │ item   │ ... │ free (up to segment_bytes)
//!           └────────────────┴────────┴────────┴─────┴──────────────── ─ ─
//!   0 magic u32  4 ttl_bucket u8  5 state u8  6 padding [u8; 2]  8 generation u64
//!  16 check u64 (CRC-64/XZ of bytes 0..16)  24 write_offset u32  28 padding u32
//!
//! item (byte-packed, no alignment):
//!   0 crc64 u64     CRC-64/XZ of item bytes 11..end, xor a seal of (segment generation,
//!                   form with bits 6-7 cleared): see `item_crc64`
//!   8 form u8       bits 0-1 encoding (0 raw, 1 LZ4), bit 2 flags present,
//!                   bit 3 expiry present, bits 4-5 zero,
//!                   bits 6-7 liveness: 00 live, 11 dead (deleted, overwritten or expired),
//!                   01 or 10 damaged
//!   9 usage u16     how the item has been used, rewritten in place (outside the CRC):
//!                   bits 0-12 last access (unix minutes mod 8192), bit 13 fetched,
//!                   bit 14 stale, bit 15 win token handed out: see [`ItemUse`]
//!  11 key_len       LEB128, at most 3 bytes
//!     stored_len    LEB128, at most 4 bytes: the value's length as stored
//!     [raw_len]     LEB128, only when LZ4: the value's length once decompressed
//!     [flags u32]   only when bit 2
//!     [expiry u64]  only when bit 3: absolute unix milliseconds
//!     key bytes, then stored value bytes
//! ```
//!
//! Why the item looks like this: the CRC is the seal (an item is valid only once its CRC matches,
//! so a torn write is never served); the segment generation inside the CRC makes a stale item
//! left over from a segment's previous life fail its check; the two liveness bits and the usage
//! word are the only bytes ever written after the seal, outside the CRC. The liveness bits
//! record deletes and overwrites in place so they travel with the item (nothing deleted comes
//! back, whichever segment is evicted first), and one flipped bit makes them "damaged", never
//! "live" again. The usage word only describes a live item (memcached's fetched, stale and
//! win-token bits and a coarse last access; memcached itself does not keep them across
//! restarts): nothing in it can make a dead item live. The CAS is not stored: it is
//! `generation << 24 | offset`, unique for every write ever made to the store. A plain item (no
//! flags, no expiry, key and value under 128 bytes) has a 13-byte header.

use platform::offload::Offload;

/// Bumped on any change to the bytes drawn above (2: the item's usage word).
pub const FORMAT_VERSION: u32 = 2;
/// The first eight bytes of a store file.
pub const MAGIC: [u8; 8] = *b"FERRSTOR";
/// Room reserved for the superblock at the start of the arena: one page, so segments start page
/// aligned.
pub const SUPERBLOCK_BYTES: usize = 4096;
/// Each superblock copy has half the page.
pub(crate) const SUPERBLOCK_SLOT_BYTES: usize = SUPERBLOCK_BYTES / 2;
/// Bytes of a superblock slot that carry data (the rest is zero).
pub(crate) const SUPERBLOCK_USED_BYTES: usize = 80;
const SUPERBLOCK_CRC_OFFSET: usize = 72;
/// `SegmentHeader::magic` of a segment that was ever opened.
pub(crate) const SEGMENT_MAGIC: u32 = u32::from_le_bytes(*b"SEG1");
/// Bytes at the start of each segment before its first item.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Fixed part of an item header: crc64, form, usage.
pub(crate) const ITEM_PREFIX_BYTES: usize = 11;
/// Where the usage word sits in an item.
const ITEM_USAGE_OFFSET: usize = 9;
/// The coarse clock of the last-access field: one tick a minute (memcached itself refreshes an
/// item's access time at most once a minute).
pub const ACCESS_TICK_MS: u64 = 60_000;
/// Bits of the last-access field: ticks wrap after 8192 minutes (5.7 days), so an item idle for
/// longer reads as idle for its age modulo that.
const ACCESS_TICK_BITS: u32 = 13;
const USAGE_ACCESS_MASK: u16 = (1 << ACCESS_TICK_BITS) - 1;
const USAGE_FETCHED: u16 = 1 << 13;
const USAGE_STALE: u16 = 1 << 14;
const USAGE_WIN_TOKEN: u16 = 1 << 15;
/// The largest item header: prefix, key_len (3), stored_len (4), raw_len (4), flags, expiry.
pub const ITEM_HEADER_BYTES_MAX: usize = ITEM_PREFIX_BYTES + 3 + 4 + 4 + 4 + 8;
/// Keys longer than this are refused (the LEB128 key length stays within 3 bytes).
pub const KEY_BYTES_MAX: usize = 65_535;
/// Offsets inside a segment have 24 bits (index entries and CAS values rely on it).
pub(crate) const SEGMENT_OFFSET_BITS: u32 = 24;

const SEGMENT_STATE_FREE: u8 = 0;
const SEGMENT_STATE_IN_USE: u8 = 1;
const ITEM_FORM_OFFSET: usize = 8;
const FORM_ENCODING_MASK: u8 = 0b0000_0011;
const FORM_FLAGS: u8 = 0b0000_0100;
const FORM_EXPIRY: u8 = 0b0000_1000;
const FORM_RESERVED_MASK: u8 = 0b0011_0000;
/// The liveness bits: both clear while live, both set once dead.
const FORM_DEAD: u8 = 0b1100_0000;
const LEB128_KEY_BYTES_MAX: usize = 3;
const LEB128_LEN_BYTES_MAX: usize = 4;

/// The first page of the arena. `#[repr(C)]` to document the layout; it is serialized field by
/// field (little-endian) so no byte of it is ever read through a cast.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Superblock {
    pub magic: [u8; 8],
    pub format_version: u32,
    /// 1 after a clean close, 0 while open.
    pub clean: u32,
    pub segment_bytes: u64,
    pub segment_count: u64,
    /// Incremented on every open.
    pub store_epoch: u64,
    /// Segments with a generation at or below this one were emptied by `flush_all`.
    pub flush_generation: u64,
    /// Incremented on every write; picks the slot (sequence % 2) and the newer slot on read.
    pub sequence: u64,
    pub owner: [u32; 4],
    pub crc64: u64,
}

/// Why a superblock could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SuperblockError {
    BadMagic,
    Corrupt,
    Version { found: u32 },
}

impl Superblock {
    pub fn new(segment_bytes: usize, segment_count: usize, owner: [u32; 4]) -> Superblock {
        Superblock {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            clean: 1,
            segment_bytes: segment_bytes as u64,
            segment_count: segment_count as u64,
            store_epoch: 0,
            flush_generation: 0,
            sequence: 0,
            owner,
            crc64: 0,
        }
    }

    /// Writes the superblock, with the next sequence and a fresh checksum, into the slot of
    /// `page` (the arena's first [`SUPERBLOCK_BYTES`]) that does not hold the current one.
    pub fn write(&mut self, page: &mut [u8], offload: &mut dyn Offload) {
        self.sequence += 1;
        let mut bytes = [0u8; SUPERBLOCK_USED_BYTES];
        bytes[0..8].copy_from_slice(&self.magic);
        bytes[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.clean.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.segment_bytes.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.segment_count.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.store_epoch.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.flush_generation.to_le_bytes());
        bytes[48..56].copy_from_slice(&self.sequence.to_le_bytes());
        for (word, owner) in self.owner.iter().enumerate() {
            bytes[56 + word * 4..60 + word * 4].copy_from_slice(&owner.to_le_bytes());
        }
        self.crc64 = offload.crc64(&[&bytes[..SUPERBLOCK_CRC_OFFSET]]);
        bytes[SUPERBLOCK_CRC_OFFSET..].copy_from_slice(&self.crc64.to_le_bytes());
        let slot = (self.sequence % 2) as usize * SUPERBLOCK_SLOT_BYTES;
        page[slot..slot + SUPERBLOCK_USED_BYTES].copy_from_slice(&bytes);
    }

    /// Reads the newer sealed slot of `page` (magic and checksum right), then checks its
    /// version. No sealed slot: `BadMagic` if neither slot even has the magic, else `Corrupt`.
    pub fn read(page: &[u8], offload: &mut dyn Offload) -> Result<Superblock, SuperblockError> {
        let mut newest: Option<&[u8]> = None;
        let mut magic_seen = false;
        for slot in 0..2 {
            let bytes = &page[slot * SUPERBLOCK_SLOT_BYTES..][..SUPERBLOCK_USED_BYTES];
            if bytes[0..8] != MAGIC {
                continue;
            }
            magic_seen = true;
            let crc64 = read_u64(bytes, SUPERBLOCK_CRC_OFFSET);
            if offload.crc64(&[&bytes[..SUPERBLOCK_CRC_OFFSET]]) != crc64 {
                continue;
            }
            if newest.is_none_or(|newest| read_u64(newest, 48) < read_u64(bytes, 48)) {
                newest = Some(bytes);
            }
        }
        let Some(bytes) = newest else {
            return Err(if magic_seen {
                SuperblockError::Corrupt
            } else {
                SuperblockError::BadMagic
            });
        };
        let format_version = read_u32(bytes, 8);
        if format_version != FORMAT_VERSION {
            return Err(SuperblockError::Version {
                found: format_version,
            });
        }
        let mut owner = [0u32; 4];
        for (word, value) in owner.iter_mut().enumerate() {
            *value = read_u32(bytes, 56 + word * 4);
        }
        Ok(Superblock {
            magic: MAGIC,
            format_version,
            clean: read_u32(bytes, 12),
            segment_bytes: read_u64(bytes, 16),
            segment_count: read_u64(bytes, 24),
            store_epoch: read_u64(bytes, 32),
            flush_generation: read_u64(bytes, 40),
            sequence: read_u64(bytes, 48),
            owner,
            crc64: read_u64(bytes, SUPERBLOCK_CRC_OFFSET),
        })
    }
}

/// The first bytes of every segment.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub magic: u32,
    pub ttl_bucket: u8,
    pub state: u8,
    pub padding: [u8; 2],
    pub generation: u64,
    /// CRC-64 of bytes 0..16; `write_offset` changes on every append and is not covered.
    pub check: u64,
    /// End of the last sealed item, from the segment's start.
    pub write_offset: u32,
    pub padding_tail: u32,
}

/// What recovery makes of a segment header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SegmentState {
    Free,
    InUse {
        ttl_bucket: u8,
        generation: u64,
        write_offset: u32,
    },
    Corrupt,
}

impl SegmentHeader {
    /// Writes the header of a segment just opened for `generation`. The state byte goes
    /// first to free and last to in-use, so a crash half-way leaves a free segment, not a
    /// corrupt one.
    pub fn write_open(out: &mut [u8], ttl_bucket: u8, generation: u64, offload: &mut dyn Offload) {
        out[5] = SEGMENT_STATE_FREE;
        let mut checked = [0u8; 16];
        checked[0..4].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        checked[4] = ttl_bucket;
        checked[5] = SEGMENT_STATE_IN_USE;
        checked[8..16].copy_from_slice(&generation.to_le_bytes());
        let check = offload.crc64(&[&checked]);
        out[0..5].copy_from_slice(&checked[0..5]);
        out[6..16].copy_from_slice(&checked[6..16]);
        out[16..24].copy_from_slice(&check.to_le_bytes());
        Self::write_offset(out, SEGMENT_HEADER_BYTES as u32);
        out[28..32].fill(0);
        out[5] = SEGMENT_STATE_IN_USE;
    }

    /// Marks a segment free; its items are ignored from now on.
    pub fn write_free(out: &mut [u8]) {
        out[5] = SEGMENT_STATE_FREE;
    }

    pub fn write_offset(out: &mut [u8], write_offset: u32) {
        out[24..28].copy_from_slice(&write_offset.to_le_bytes());
    }

    pub fn read(bytes: &[u8], segment_bytes: usize, offload: &mut dyn Offload) -> SegmentState {
        let state = bytes[5];
        if state == SEGMENT_STATE_FREE {
            return SegmentState::Free;
        }
        let check = read_u64(bytes, 16);
        let write_offset = read_u32(bytes, 24);
        let ttl_bucket = bytes[4];
        let valid = state == SEGMENT_STATE_IN_USE
            && read_u32(bytes, 0) == SEGMENT_MAGIC
            && offload.crc64(&[&bytes[0..16]]) == check
            && (SEGMENT_HEADER_BYTES..=segment_bytes).contains(&(write_offset as usize));
        if !valid {
            return SegmentState::Corrupt;
        }
        SegmentState::InUse {
            ttl_bucket,
            generation: read_u64(bytes, 8),
            write_offset,
        }
    }
}

/// How a value is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    Lz4,
}

/// The fixed prefix of every item; the rest of the header is variable (see the module doc).
/// Items are written field by field, so this struct only pins the layout down (size-asserted
/// in the tests).
#[allow(dead_code)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ItemPrefix {
    pub crc64: [u8; 8],
    pub form: u8,
    pub usage: [u8; 2],
}

/// How an item has been used: what memcached's meta protocol reports (`h`, `l`, `X`, `W`/`Z`)
/// and what an admission rule may look at. Kept in the item's usage word, rewritten in place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemUse {
    /// Read at least once since it was written.
    pub fetched: bool,
    /// Marked stale (memcached `md I`, or `ms I` with an older CAS): still served, flagged.
    pub stale: bool,
    /// A client has been handed the right to recache it (memcached's win token, `W`).
    pub win_token: bool,
    /// The last access (write or fetch), in [`ACCESS_TICK_MS`] ticks modulo 2^13.
    access_tick: u16,
}

impl ItemUse {
    /// A fresh item's usage: written (accessed) at `now_ms`, nothing else.
    pub fn written_at(now_ms: u64) -> ItemUse {
        ItemUse {
            access_tick: access_tick(now_ms),
            ..ItemUse::default()
        }
    }

    /// Milliseconds since the last access, to the tick (rounded down).
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        let ticks = access_tick(now_ms).wrapping_sub(self.access_tick) & USAGE_ACCESS_MASK;
        u64::from(ticks) * ACCESS_TICK_MS
    }

    /// This usage after a fetch at `now_ms`.
    pub fn fetched_at(self, now_ms: u64) -> ItemUse {
        ItemUse {
            fetched: true,
            access_tick: access_tick(now_ms),
            ..self
        }
    }

    fn word(self) -> u16 {
        let mut word = self.access_tick & USAGE_ACCESS_MASK;
        if self.fetched {
            word |= USAGE_FETCHED;
        }
        if self.stale {
            word |= USAGE_STALE;
        }
        if self.win_token {
            word |= USAGE_WIN_TOKEN;
        }
        word
    }

    fn from_word(word: u16) -> ItemUse {
        ItemUse {
            fetched: word & USAGE_FETCHED != 0,
            stale: word & USAGE_STALE != 0,
            win_token: word & USAGE_WIN_TOKEN != 0,
            access_tick: word & USAGE_ACCESS_MASK,
        }
    }
}

fn access_tick(now_ms: u64) -> u16 {
    ((now_ms / ACCESS_TICK_MS) & u64::from(USAGE_ACCESS_MASK)) as u16
}

/// Rewrites the usage word of the item at the start of `item` in place.
pub(crate) fn write_usage(item: &mut [u8], usage: ItemUse) {
    item[ITEM_USAGE_OFFSET..ITEM_USAGE_OFFSET + 2].copy_from_slice(&usage.word().to_le_bytes());
}

/// An item's header, parsed: offsets are relative to the item's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ItemHeader {
    /// Total bytes of the item, header included.
    pub len: usize,
    pub dead: bool,
    pub usage: ItemUse,
    pub encoding: Encoding,
    pub flags: u32,
    /// Absolute unix ms; 0 = never.
    pub expiry_ms: u64,
    pub key_start: usize,
    pub key_len: usize,
    pub value_start: usize,
    pub stored_len: usize,
    /// Length of the value once decoded (equals `stored_len` when raw).
    pub raw_len: usize,
}

impl ItemHeader {
    pub fn key<'a>(&self, item: &'a [u8]) -> &'a [u8] {
        &item[self.key_start..self.key_start + self.key_len]
    }

    pub fn stored_value<'a>(&self, item: &'a [u8]) -> &'a [u8] {
        &item[self.value_start..self.value_start + self.stored_len]
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expiry_ms != 0 && self.expiry_ms <= now_ms
    }

    /// Parses the header of the item at the start of `bytes` (which ends where the segment's
    /// written bytes end). `None` when the header is malformed or the item overruns `bytes`;
    /// the checksum is not verified here (see [`verify`]).
    pub fn parse(bytes: &[u8]) -> Option<ItemHeader> {
        let form = *bytes.get(ITEM_FORM_OFFSET)?;
        if form & FORM_RESERVED_MASK != 0 {
            return None;
        }
        let encoding = match form & FORM_ENCODING_MASK {
            0 => Encoding::Raw,
            1 => Encoding::Lz4,
            _ => return None,
        };
        let usage_word = u16::from_le_bytes(
            bytes
                .get(ITEM_USAGE_OFFSET..ITEM_USAGE_OFFSET + 2)?
                .try_into()
                .ok()?,
        );
        let mut cursor = ITEM_PREFIX_BYTES;
        let key_len = read_leb128(bytes, &mut cursor, LEB128_KEY_BYTES_MAX)?;
        let stored_len = read_leb128(bytes, &mut cursor, LEB128_LEN_BYTES_MAX)?;
        let raw_len = match encoding {
            Encoding::Raw => stored_len,
            Encoding::Lz4 => read_leb128(bytes, &mut cursor, LEB128_LEN_BYTES_MAX)?,
        };
        let flags = if form & FORM_FLAGS != 0 {
            let flags = u32::from_le_bytes(bytes.get(cursor..cursor + 4)?.try_into().ok()?);
            cursor += 4;
            flags
        } else {
            0
        };
        let expiry_ms = if form & FORM_EXPIRY != 0 {
            let expiry = u64::from_le_bytes(bytes.get(cursor..cursor + 8)?.try_into().ok()?);
            cursor += 8;
            expiry
        } else {
            0
        };
        let key_start = cursor;
        let value_start = key_start + key_len;
        let len = value_start + stored_len;
        if len > bytes.len() {
            return None;
        }
        Some(ItemHeader {
            len,
            dead: form & FORM_DEAD != 0,
            usage: ItemUse::from_word(usage_word),
            encoding,
            flags,
            expiry_ms,
            key_start,
            key_len,
            value_start,
            stored_len,
            raw_len,
        })
    }
}

/// Whether the item at the start of `item` (at least `header.len` bytes) is intact for a
/// segment of `generation`: its liveness bits are one of the two values ever written (so a
/// flipped bit there is caught too) and its checksum matches.
pub(crate) fn verify(
    item: &[u8],
    header: &ItemHeader,
    generation: u64,
    offload: &mut dyn Offload,
) -> bool {
    let form = item[ITEM_FORM_OFFSET];
    if form & FORM_DEAD != 0 && form & FORM_DEAD != FORM_DEAD {
        return false;
    }
    read_u64(item, 0) == item_crc64(&item[..header.len], generation, offload)
}

/// Records in place that the item at the start of `item` is dead.
pub(crate) fn mark_dead(item: &mut [u8]) {
    item[ITEM_FORM_OFFSET] |= FORM_DEAD;
}

/// Offset of the byte [`mark_dead`] writes, from the item's start (for flushing it).
pub(crate) const fn dead_byte_offset() -> usize {
    ITEM_FORM_OFFSET
}

/// Odd, so multiplying by it is a bijection on u64.
const SEAL_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// An item's checksum: the CRC-64 of everything after the usage word (one contiguous run, the
/// engine's fast case), xored with a seal that mixes in the segment's generation and the form
/// byte without its liveness bits. The seal is injective in (generation < 2^40, form), so an
/// item from another generation or with another form never matches.
fn item_crc64(item: &[u8], generation: u64, offload: &mut dyn Offload) -> u64 {
    let form = u64::from(item[ITEM_FORM_OFFSET] & !FORM_DEAD);
    let seal = (generation ^ form << 56).wrapping_mul(SEAL_MULTIPLIER);
    offload.crc64(&[&item[ITEM_PREFIX_BYTES..]]) ^ seal
}

/// An item about to be written.
pub(crate) struct NewItem<'a> {
    pub key: &'a [u8],
    /// The value as stored, in pieces that are concatenated (append/prepend write old + new
    /// without joining them first).
    pub value_parts: &'a [&'a [u8]],
    pub encoding: Encoding,
    /// Decoded length when `encoding` is LZ4.
    pub raw_len: usize,
    pub flags: u32,
    /// Absolute unix ms; 0 = never.
    pub expiry_ms: u64,
    pub usage: ItemUse,
}

impl NewItem<'_> {
    pub fn stored_len(&self) -> usize {
        self.value_parts.iter().map(|part| part.len()).sum()
    }

    fn header_len(&self) -> usize {
        let stored_len = self.stored_len();
        let mut len = ITEM_PREFIX_BYTES + leb128_len(self.key.len()) + leb128_len(stored_len);
        if self.encoding == Encoding::Lz4 {
            len += leb128_len(self.raw_len);
        }
        if self.flags != 0 {
            len += 4;
        }
        if self.expiry_ms != 0 {
            len += 8;
        }
        len
    }

    /// Total bytes the item takes in a segment.
    pub fn encoded_len(&self) -> usize {
        self.header_len() + self.key.len() + self.stored_len()
    }

    /// Writes the item into `out` (exactly `encoded_len()` bytes) with a zero checksum; [`seal`]
    /// sets the checksum where it will be checked.
    pub fn write(&self, out: &mut [u8]) {
        debug_assert_eq!(out.len(), self.encoded_len());
        let mut form = match self.encoding {
            Encoding::Raw => 0,
            Encoding::Lz4 => 1,
        };
        if self.flags != 0 {
            form |= FORM_FLAGS;
        }
        if self.expiry_ms != 0 {
            form |= FORM_EXPIRY;
        }
        out[ITEM_FORM_OFFSET] = form;
        write_usage(out, self.usage);
        let mut cursor = ITEM_PREFIX_BYTES;
        write_leb128(out, &mut cursor, self.key.len());
        write_leb128(out, &mut cursor, self.stored_len());
        if self.encoding == Encoding::Lz4 {
            write_leb128(out, &mut cursor, self.raw_len);
        }
        if self.flags != 0 {
            out[cursor..cursor + 4].copy_from_slice(&self.flags.to_le_bytes());
            cursor += 4;
        }
        if self.expiry_ms != 0 {
            out[cursor..cursor + 8].copy_from_slice(&self.expiry_ms.to_le_bytes());
            cursor += 8;
        }
        out[cursor..cursor + self.key.len()].copy_from_slice(self.key);
        cursor += self.key.len();
        for part in self.value_parts {
            out[cursor..cursor + part.len()].copy_from_slice(part);
            cursor += part.len();
        }
        out[0..8].fill(0);
    }
}

/// Seals the item [`NewItem::write`] left at the start of `item` (exactly its length) with its
/// checksum for a segment of `generation`; [`verify`] checks it.
pub(crate) fn seal(item: &mut [u8], generation: u64, offload: &mut dyn Offload) {
    let crc = item_crc64(item, generation, offload);
    item[0..8].copy_from_slice(&crc.to_le_bytes());
}

pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("four bytes"))
}

pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("eight bytes"))
}

fn leb128_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn write_leb128(out: &mut [u8], cursor: &mut usize, mut value: usize) {
    while value >= 0x80 {
        out[*cursor] = (value as u8 & 0x7F) | 0x80;
        value >>= 7;
        *cursor += 1;
    }
    out[*cursor] = value as u8;
    *cursor += 1;
}

/// Reads an LEB128 length of at most `bytes_max` bytes; `None` if it is longer or cut short.
fn read_leb128(bytes: &[u8], cursor: &mut usize, bytes_max: usize) -> Option<usize> {
    let mut value = 0usize;
    for index in 0..bytes_max {
        let byte = *bytes.get(*cursor)?;
        *cursor += 1;
        value |= ((byte & 0x7F) as usize) << (7 * index);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::offload::SoftwareOffload;
    use std::mem::{offset_of, size_of};

    #[test]
    fn on_media_structs_have_the_drawn_layout() {
        assert_eq!(size_of::<Superblock>(), SUPERBLOCK_USED_BYTES);
        assert_eq!(offset_of!(Superblock, format_version), 8);
        assert_eq!(offset_of!(Superblock, clean), 12);
        assert_eq!(offset_of!(Superblock, segment_bytes), 16);
        assert_eq!(offset_of!(Superblock, store_epoch), 32);
        assert_eq!(offset_of!(Superblock, flush_generation), 40);
        assert_eq!(offset_of!(Superblock, sequence), 48);
        assert_eq!(offset_of!(Superblock, owner), 56);
        assert_eq!(offset_of!(Superblock, crc64), SUPERBLOCK_CRC_OFFSET);
        assert_eq!(size_of::<SegmentHeader>(), SEGMENT_HEADER_BYTES);
        assert_eq!(offset_of!(SegmentHeader, ttl_bucket), 4);
        assert_eq!(offset_of!(SegmentHeader, state), 5);
        assert_eq!(offset_of!(SegmentHeader, generation), 8);
        assert_eq!(offset_of!(SegmentHeader, check), 16);
        assert_eq!(offset_of!(SegmentHeader, write_offset), 24);
        assert_eq!(size_of::<ItemPrefix>(), ITEM_PREFIX_BYTES);
        assert_eq!(offset_of!(ItemPrefix, form), ITEM_FORM_OFFSET);
        assert_eq!(offset_of!(ItemPrefix, usage), ITEM_USAGE_OFFSET);
    }

    #[test]
    fn superblock_round_trips_and_falls_back_to_the_other_slot() {
        let mut engine = SoftwareOffload;
        let mut superblock = Superblock::new(1 << 20, 7, [1, 2, 3, 4]);
        let mut page = [0u8; SUPERBLOCK_BYTES];
        superblock.write(&mut page, &mut engine);
        let first = superblock;
        superblock.store_epoch = 9;
        superblock.write(&mut page, &mut engine);
        assert_eq!(Superblock::read(&page, &mut engine), Ok(superblock));
        // The newer slot torn: the older one is read.
        let newer = (superblock.sequence % 2) as usize * SUPERBLOCK_SLOT_BYTES;
        page[newer + 30] ^= 1;
        assert_eq!(Superblock::read(&page, &mut engine), Ok(first));
        let older = (first.sequence % 2) as usize * SUPERBLOCK_SLOT_BYTES;
        page[older + 30] ^= 1;
        assert_eq!(
            Superblock::read(&page, &mut engine),
            Err(SuperblockError::Corrupt)
        );
        page[0] = b'X';
        page[SUPERBLOCK_SLOT_BYTES] = b'X';
        assert_eq!(
            Superblock::read(&page, &mut engine),
            Err(SuperblockError::BadMagic)
        );
    }

    #[test]
    fn a_half_written_segment_header_reads_as_free() {
        let mut engine = SoftwareOffload;
        let mut header = [0u8; SEGMENT_HEADER_BYTES];
        SegmentHeader::write_open(&mut header, 3, 42, &mut engine);
        let open = SegmentState::InUse {
            ttl_bucket: 3,
            generation: 42,
            write_offset: SEGMENT_HEADER_BYTES as u32,
        };
        assert_eq!(SegmentHeader::read(&header, 4096, &mut engine), open);
        header[5] = SEGMENT_STATE_FREE;
        assert_eq!(
            SegmentHeader::read(&header, 4096, &mut engine),
            SegmentState::Free
        );
        header[5] = SEGMENT_STATE_IN_USE;
        header[9] ^= 1;
        assert_eq!(
            SegmentHeader::read(&header, 4096, &mut engine),
            SegmentState::Corrupt
        );
    }

    #[test]
    fn an_item_round_trips_with_every_optional_field() {
        let mut engine = SoftwareOffload;
        let value = vec![7u8; 300];
        let item = NewItem {
            key: b"key",
            value_parts: &[&value[..100], &value[100..]],
            encoding: Encoding::Raw,
            raw_len: 300,
            flags: 0xDEAD_BEEF,
            expiry_ms: 1_700_000_000_123,
            usage: ItemUse::written_at(1_700_000_000_000),
        };
        let mut out = vec![0u8; item.encoded_len()];
        item.write(&mut out);
        seal(&mut out, 5, &mut engine);
        let header = ItemHeader::parse(&out).unwrap();
        assert_eq!(header.len, out.len());
        assert_eq!(header.key(&out), b"key");
        assert_eq!(header.stored_value(&out), &value[..]);
        assert_eq!(
            (header.flags, header.expiry_ms, header.dead),
            (0xDEAD_BEEF, 1_700_000_000_123, false)
        );
        assert!(verify(&out, &header, 5, &mut engine));
        assert!(
            !verify(&out, &header, 6, &mut engine),
            "another generation must not verify"
        );
        mark_dead(&mut out);
        assert!(ItemHeader::parse(&out).unwrap().dead);
        assert!(
            verify(&out, &header, 5, &mut engine),
            "the liveness bits are outside the checksum"
        );
    }

    #[test]
    fn a_plain_item_has_a_thirteen_byte_header() {
        let item = NewItem {
            key: b"0123456789abcdef",
            value_parts: &[&[0u8; 100]],
            encoding: Encoding::Raw,
            raw_len: 100,
            flags: 0,
            expiry_ms: 0,
            usage: ItemUse::default(),
        };
        assert_eq!(item.encoded_len() - 116, 13);
    }

    #[test]
    fn the_usage_word_is_rewritten_in_place_outside_the_checksum() {
        let mut engine = SoftwareOffload;
        // On a tick boundary, so the next 59 999 ms read as idle for 0.
        let written_ms = 28_333_333 * ACCESS_TICK_MS;
        let item = NewItem {
            key: b"k",
            value_parts: &[b"value"],
            encoding: Encoding::Raw,
            raw_len: 5,
            flags: 0,
            expiry_ms: 0,
            usage: ItemUse::written_at(written_ms),
        };
        let mut out = vec![0u8; item.encoded_len()];
        item.write(&mut out);
        seal(&mut out, 3, &mut engine);
        let header = ItemHeader::parse(&out).unwrap();
        assert_eq!(header.usage, ItemUse::written_at(written_ms));
        assert!(!header.usage.fetched && !header.usage.stale && !header.usage.win_token);
        assert_eq!(header.usage.idle_ms(written_ms + 59_999), 0);
        assert_eq!(
            header.usage.idle_ms(written_ms + 3 * ACCESS_TICK_MS),
            3 * ACCESS_TICK_MS
        );
        let later_ms = written_ms + 10 * ACCESS_TICK_MS;
        let mut usage = header.usage.fetched_at(later_ms);
        usage.stale = true;
        usage.win_token = true;
        write_usage(&mut out, usage);
        let reread = ItemHeader::parse(&out).unwrap();
        assert_eq!(reread.usage, usage);
        assert!(reread.usage.fetched && reread.usage.stale && reread.usage.win_token);
        assert_eq!(reread.usage.idle_ms(later_ms), 0);
        assert!(!reread.dead);
        assert!(
            verify(&out, &reread, 3, &mut engine),
            "usage is outside the checksum"
        );
        // The clock wraps: an item idle for 8192 minutes reads as just used.
        let wrapped_ms = later_ms + (1 << ACCESS_TICK_BITS) * ACCESS_TICK_MS;
        assert_eq!(reread.usage.idle_ms(wrapped_ms), 0);
    }

    #[test]
    fn cut_or_malformed_headers_do_not_parse() {
        let mut engine = SoftwareOffload;
        let item = NewItem {
            key: b"k",
            value_parts: &[b"value"],
            encoding: Encoding::Raw,
            raw_len: 5,
            flags: 1,
            expiry_ms: 2,
            usage: ItemUse::default(),
        };
        let mut out = vec![0u8; item.encoded_len()];
        item.write(&mut out);
        seal(&mut out, 1, &mut engine);
        for cut in 0..out.len() {
            assert_eq!(ItemHeader::parse(&out[..cut]), None, "cut at {cut}");
        }
        out[ITEM_FORM_OFFSET] |= 0b0001_0000;
        assert_eq!(ItemHeader::parse(&out), None);
        let mut endless = vec![0u8; 22];
        endless[ITEM_PREFIX_BYTES..ITEM_PREFIX_BYTES + 5].fill(0xFF);
        assert_eq!(ItemHeader::parse(&endless), None);
    }
}
