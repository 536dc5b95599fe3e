//! The protocol-neutral operations a shard executes on its store, and their outcomes.
//!
//! Both protocols lower their commands to [`Op`]s; the owner shard executes each and hands back
//! an [`Outcome`] that the connection's protocol encodes. Keys and values are `Cow`: the local
//! path borrows them from the connection's input buffer (and the outcome borrows the item from
//! the store), while a request crossing to another shard carries owned copies
//! ([`Op::into_owned`], [`Outcome::into_owned`]).

use std::borrow::Cow;

/// When an item expires, as a write asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No expiry (a plain SET clears any previous one).
    Never,
    /// Keep whatever expiry the item had (SET KEEPTTL, APPEND, INCR, memcached append).
    Keep,
    /// Expire at this unix time in milliseconds (relative forms are converted on arrival).
    AtMs(u64),
}

/// Which existing state a write needs to go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only when the key is absent (SET NX, SETNX, memcached add).
    IfAbsent,
    /// Only when the key exists (SET XX, memcached replace).
    IfPresent,
    /// Only when the item's CAS equals this (memcached cas).
    IfCas(u64),
    /// memcached `ms I C<cas>`: as [`Condition::IfCas`], and when `cas` is older (lower) than
    /// the item's, the value is stored all the same but marked stale.
    IfCasOrStale(u64),
}

/// A memcached `ma`: every check and change in one op, so they happen in one step on the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaArithmetic {
    pub delta: UnsignedDelta,
    /// `C`: only if the item's CAS is this.
    pub compare_cas: Option<u64>,
    /// `T`: the item's new expiry after the change.
    pub expiry: Option<Expiry>,
    /// `N`: on a miss, create the item with `initial` and this expiry.
    pub vivify: Option<Expiry>,
    /// `J`: the value a vivified item starts at.
    pub initial: u64,
}

/// How a memcached `mg` reads its item: every check and change of one `mg` in one op, so they
/// happen in one step on the owner shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaRead {
    /// Record the read (fetched, last access); `mg u` and `me` leave no trace.
    pub touch: bool,
    /// Hand out the win token to the first reader of a stale item (`mg`; `me` only looks).
    pub claim_win: bool,
    /// `T`: a new expiry; an item it expires is still returned, as memcached does.
    pub expiry: Option<Expiry>,
    /// `N`: on a miss, create an empty item with this expiry and hand this client its win token.
    pub vivify: Option<Expiry>,
    /// `R`: hand out the win token when the item expires within this many milliseconds (a stale
    /// item's token is handed out to the first reader in any case).
    pub recache_within_ms: Option<u64>,
}

/// When an expiry change applies (EXPIRE's NX / XX / GT / LT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireCondition {
    Always,
    /// Only if the key has no expiry.
    IfNone,
    /// Only if the key has an expiry.
    IfSome,
    /// Only if the new expiry is later (no expiry counts as infinitely late).
    IfLater,
    /// Only if the new expiry is earlier (no expiry counts as infinitely late).
    IfEarlier,
}

/// A memcached delta: any unsigned 64-bit amount (memcached reads it with `strtoull`), added
/// with wrap-around at 2^64, or subtracted stopping at 0 when `decrement`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsignedDelta {
    pub magnitude: u64,
    pub decrement: bool,
}

/// An increment's delta, and how it treats the number and its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arithmetic {
    /// Redis: signed 64-bit; overflow is an error.
    Signed(i64),
    /// memcached: unsigned 64-bit.
    Unsigned(UnsignedDelta),
}

/// The item a concatenation creates when its key is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creation {
    pub flags: u32,
    pub expiry: Expiry,
}

/// One operation on one key (or, for the keyless ones, on one shard's whole store).
#[derive(Clone, Debug, PartialEq)]
pub enum Op<'a> {
    Get {
        key: Cow<'a, [u8]>,
    },
    /// Get and change the expiry (GETEX, memcached gat): a hit even when the new expiry is past.
    GetAndExpire {
        key: Cow<'a, [u8]>,
        expiry: Expiry,
    },
    /// Get and delete (GETDEL).
    GetAndDelete {
        key: Cow<'a, [u8]>,
    },
    /// Store `value`; with `return_old`, the outcome is the previous value (SET ... GET, GETSET).
    Set {
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
        flags: u32,
        expiry: Expiry,
        condition: Condition,
        return_old: bool,
    },
    /// Add bytes at the end (or the start, with `prepend`); `create` makes a missing key (Redis
    /// APPEND; memcached `ms` append modes with `N`, with its TTL and `F` flags) instead of
    /// refusing (memcached append).
    Concat {
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
        prepend: bool,
        create: Option<Creation>,
    },
    /// Overwrite bytes at `offset`, zero-padding a gap (SETRANGE).
    SetRange {
        key: Cow<'a, [u8]>,
        offset: usize,
        value: Cow<'a, [u8]>,
    },
    Delete {
        key: Cow<'a, [u8]>,
    },
    Exists {
        key: Cow<'a, [u8]>,
    },
    /// Change the decimal number stored at `key` by `arithmetic`'s delta; a missing key counts
    /// as 0 when `create` (Redis) and is NotFound otherwise (memcached).
    Increment {
        key: Cow<'a, [u8]>,
        arithmetic: Arithmetic,
        create: bool,
    },
    /// INCRBYFLOAT.
    IncrementFloat {
        key: Cow<'a, [u8]>,
        delta: f64,
    },
    /// Change the expiry if `condition` holds.
    Expire {
        key: Cow<'a, [u8]>,
        expiry: Expiry,
        condition: ExpireCondition,
    },
    /// Remove the expiry.
    Persist {
        key: Cow<'a, [u8]>,
    },
    /// Remaining time to live.
    Ttl {
        key: Cow<'a, [u8]>,
    },
    /// Absolute expiry time.
    ExpireTime {
        key: Cow<'a, [u8]>,
    },
    /// Length of the value.
    Length {
        key: Cow<'a, [u8]>,
    },
    /// Items in this shard's store.
    Count,
    /// Remove every item of this shard.
    Flush,
    /// Remove every item of this shard written before `at_ms`, once that time comes (memcached
    /// `flush_all <delay>`).
    FlushAt {
        at_ms: u64,
    },
    /// memcached `mg` (and `me`): the item with its usage, see [`MetaRead`].
    MetaGet {
        key: Cow<'a, [u8]>,
        read: MetaRead,
    },
    /// memcached `ma`: the outcome is a [`Outcome::MetaValue`] holding the new number in
    /// decimal, with the item's CAS and lifetime.
    MetaArithmetic {
        key: Cow<'a, [u8]>,
        arithmetic: MetaArithmetic,
    },
    /// memcached `md I`: keep the item but mark it stale (its CAS changes and its win token is
    /// free again), with a new expiry when given.
    Invalidate {
        key: Cow<'a, [u8]>,
        expiry: Option<Expiry>,
    },
    /// memcached `md x`: the item stays, its value emptied and its client flags zeroed, with
    /// `expiry` (memcached stores a new item: without `T` it never expires); with `stale`
    /// (`md I x`) it is also marked stale.
    RemoveValue {
        key: Cow<'a, [u8]>,
        expiry: Expiry,
        stale: bool,
    },
    /// `op`, unless its key holds an item whose CAS is not `cas` ([`Outcome::CasMismatch`]):
    /// memcached `C` on `md` and `ms` append modes. A missing key is left to `op`.
    IfCas {
        cas: u64,
        op: Box<Op<'a>>,
    },
    /// Up to `count` keys from this shard's `cursor` matching the glob `pattern`.
    Scan {
        cursor: u64,
        count: usize,
        pattern: Option<Cow<'a, [u8]>>,
    },
    /// One random key of this shard.
    RandomKey,
    /// This shard's figures for INFO / stats.
    Stats,
    /// This shard's client connections, one CLIENT LIST line each (answered by the shard, which
    /// knows its connections, not by the store).
    ClientList,
    /// Clear the shard's statistics (CONFIG RESETSTAT) or its slow log (SLOWLOG RESET);
    /// answered by the shard, which owns them.
    ResetStats(crate::observe::ResetScope),
    /// A CONFIG SET's changes to this shard's settings (applied by the shard, not the store).
    Configure(Vec<crate::tunables::Change>),
}

impl Op<'_> {
    /// The copy that travels to another shard.
    pub fn into_owned(self) -> Op<'static> {
        fn own(bytes: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
            Cow::Owned(bytes.into_owned())
        }
        match self {
            Op::Get { key } => Op::Get { key: own(key) },
            Op::GetAndExpire { key, expiry } => Op::GetAndExpire {
                key: own(key),
                expiry,
            },
            Op::GetAndDelete { key } => Op::GetAndDelete { key: own(key) },
            Op::Set {
                key,
                value,
                flags,
                expiry,
                condition,
                return_old,
            } => Op::Set {
                key: own(key),
                value: own(value),
                flags,
                expiry,
                condition,
                return_old,
            },
            Op::Concat {
                key,
                value,
                prepend,
                create,
            } => Op::Concat {
                key: own(key),
                value: own(value),
                prepend,
                create,
            },
            Op::SetRange { key, offset, value } => Op::SetRange {
                key: own(key),
                offset,
                value: own(value),
            },
            Op::Delete { key } => Op::Delete { key: own(key) },
            Op::Exists { key } => Op::Exists { key: own(key) },
            Op::Increment {
                key,
                arithmetic,
                create,
            } => Op::Increment {
                key: own(key),
                arithmetic,
                create,
            },
            Op::IncrementFloat { key, delta } => Op::IncrementFloat {
                key: own(key),
                delta,
            },
            Op::Expire {
                key,
                expiry,
                condition,
            } => Op::Expire {
                key: own(key),
                expiry,
                condition,
            },
            Op::Persist { key } => Op::Persist { key: own(key) },
            Op::Ttl { key } => Op::Ttl { key: own(key) },
            Op::ExpireTime { key } => Op::ExpireTime { key: own(key) },
            Op::Length { key } => Op::Length { key: own(key) },
            Op::Count => Op::Count,
            Op::Flush => Op::Flush,
            Op::FlushAt { at_ms } => Op::FlushAt { at_ms },
            Op::MetaGet { key, read } => Op::MetaGet {
                key: own(key),
                read,
            },
            Op::MetaArithmetic { key, arithmetic } => Op::MetaArithmetic {
                key: own(key),
                arithmetic,
            },
            Op::Invalidate { key, expiry } => Op::Invalidate {
                key: own(key),
                expiry,
            },
            Op::RemoveValue { key, expiry, stale } => Op::RemoveValue {
                key: own(key),
                expiry,
                stale,
            },
            Op::IfCas { cas, op } => Op::IfCas {
                cas,
                op: Box::new(op.into_owned()),
            },
            Op::Scan {
                cursor,
                count,
                pattern,
            } => Op::Scan {
                cursor,
                count,
                pattern: pattern.map(own),
            },
            Op::RandomKey => Op::RandomKey,
            Op::Stats => Op::Stats,
            Op::ClientList => Op::ClientList,
            Op::ResetStats(scope) => Op::ResetStats(scope),
            Op::Configure(change) => Op::Configure(change),
        }
    }

    /// The key the op works on, which decides its owner shard; None for the per-shard ops.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Op::Get { key }
            | Op::GetAndExpire { key, .. }
            | Op::GetAndDelete { key }
            | Op::Set { key, .. }
            | Op::Concat { key, .. }
            | Op::SetRange { key, .. }
            | Op::Delete { key }
            | Op::Exists { key }
            | Op::Increment { key, .. }
            | Op::IncrementFloat { key, .. }
            | Op::Expire { key, .. }
            | Op::Persist { key }
            | Op::Ttl { key }
            | Op::ExpireTime { key }
            | Op::Length { key }
            | Op::MetaGet { key, .. }
            | Op::MetaArithmetic { key, .. }
            | Op::Invalidate { key, .. }
            | Op::RemoveValue { key, .. } => Some(key),
            Op::IfCas { op, .. } => op.key(),
            Op::Count
            | Op::Flush
            | Op::FlushAt { .. }
            | Op::Scan { .. }
            | Op::RandomKey
            | Op::Stats
            | Op::ClientList
            | Op::ResetStats(_)
            | Op::Configure(_) => None,
        }
    }
}

/// Why an operation failed, in protocol-neutral terms (each protocol words it its own way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    /// The stored value is not a decimal integer.
    NotAnInteger,
    /// The stored value is not a number (INCRBYFLOAT).
    NotAFloat,
    /// The result would not fit (signed overflow, or a float that is infinite or NaN).
    Overflow,
    /// INCRBYFLOAT's result is infinite or not a number.
    NotAFloatResult,
    /// The item would be larger than the store takes.
    TooLarge,
    /// The key is longer than the store takes.
    KeyTooLong,
    /// The store could not write (the file tier's medium failed).
    Storage,
}

/// A value as found in the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Value<'a> {
    pub data: Cow<'a, [u8]>,
    pub flags: u32,
    pub cas: u64,
}

/// What the store keeps about an item's use, as a meta read found it (before its own fetch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Read before (memcached `h`).
    pub fetched: bool,
    /// Marked stale (memcached `X`).
    pub stale: bool,
    /// Some client already holds the win token (memcached `Z`).
    pub win_token: bool,
    /// Milliseconds since the last access, to the minute (memcached `l`).
    pub idle_ms: u64,
}

/// What a [`Op::MetaGet`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaValue<'a> {
    pub value: Value<'a>,
    /// Time to live left, after any change the read made.
    pub lifetime: Lifetime,
    pub usage: Usage,
    /// This read was handed the win token (memcached `W`).
    pub won: bool,
    /// This op made the item (`N` on a miss, `mg` or `ma`); memcached counts an `ma` that did
    /// as neither hit nor miss.
    pub created: bool,
}

/// Remaining lifetime of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    Missing,
    Forever,
    /// Milliseconds left (TTL) or the unix expiry time in ms (EXPIRETIME).
    Ms(u64),
}

/// One shard's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardFigures {
    pub items: u64,
    pub items_with_expiry: u64,
    pub bytes_used: u64,
    pub bytes_limit: u64,
    pub evicted_items: u64,
    pub expired_items: u64,
    pub connections: u64,
    pub connections_total: u64,
    pub commands: u64,
    pub hits: u64,
    pub misses: u64,
    pub remote_requests: u64,
    pub segments_total: u64,
    pub segments_free: u64,
    pub segments_in_use: u64,
    /// The shard's observability figures (filled in by the shard, not the store).
    pub observed: Option<Box<crate::observe::Snapshot>>,
    /// A tiered store's cold tier and the moves between tiers (all zero otherwise).
    pub tier: TierFigures,
}

impl ShardFigures {
    /// The sum of the figures among `outcomes` (one `Op::Stats` outcome per shard); the
    /// observability snapshots are merged apart (`observe::report::merge`).
    pub fn total(outcomes: &[Outcome<'_>]) -> ShardFigures {
        let mut total = ShardFigures::default();
        for outcome in outcomes {
            if let Outcome::Figures(figures) = outcome {
                total.items += figures.items;
                total.items_with_expiry += figures.items_with_expiry;
                total.bytes_used += figures.bytes_used;
                total.bytes_limit += figures.bytes_limit;
                total.evicted_items += figures.evicted_items;
                total.expired_items += figures.expired_items;
                total.connections += figures.connections;
                total.connections_total += figures.connections_total;
                total.commands += figures.commands;
                total.hits += figures.hits;
                total.misses += figures.misses;
                total.remote_requests += figures.remote_requests;
                total.segments_total += figures.segments_total;
                total.segments_free += figures.segments_free;
                total.segments_in_use += figures.segments_in_use;
                total.tier.add(&figures.tier);
            }
        }
        total
    }
}

/// One shard's tiered-store figures (see `persistent::TierStats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierFigures {
    pub cold_items: u64,
    pub cold_bytes_used: u64,
    pub cold_bytes_limit: u64,
    pub cold_hits: u64,
    pub cold_evicted_items: u64,
    pub demoted_items: u64,
    pub rejected_items: u64,
    pub promoted_items: u64,
    pub compressed_items: u64,
    pub compressed_raw_bytes: u64,
    pub compressed_stored_bytes: u64,
    pub compress_skipped: u64,
    pub corrupt_items: u64,
}

impl From<persistent::TierStats> for TierFigures {
    fn from(stats: persistent::TierStats) -> TierFigures {
        TierFigures {
            cold_items: stats.cold.items,
            cold_bytes_used: stats.cold.bytes_used,
            cold_bytes_limit: stats.cold.bytes_limit,
            cold_hits: stats.cold_hits,
            cold_evicted_items: stats.cold.evicted_items,
            demoted_items: stats.demoted_items,
            rejected_items: stats.rejected_items,
            promoted_items: stats.promoted_items,
            compressed_items: stats.cold.compressed_items,
            compressed_raw_bytes: stats.cold.compressed_raw_bytes,
            compressed_stored_bytes: stats.cold.compressed_stored_bytes,
            compress_skipped: stats.cold.compress_skipped,
            corrupt_items: stats.cold.corrupt_items,
        }
    }
}

impl TierFigures {
    pub fn add(&mut self, other: &TierFigures) {
        self.cold_items += other.cold_items;
        self.cold_bytes_used += other.cold_bytes_used;
        self.cold_bytes_limit += other.cold_bytes_limit;
        self.cold_hits += other.cold_hits;
        self.cold_evicted_items += other.cold_evicted_items;
        self.demoted_items += other.demoted_items;
        self.rejected_items += other.rejected_items;
        self.promoted_items += other.promoted_items;
        self.compressed_items += other.compressed_items;
        self.compressed_raw_bytes += other.compressed_raw_bytes;
        self.compressed_stored_bytes += other.compressed_stored_bytes;
        self.compress_skipped += other.compress_skipped;
        self.corrupt_items += other.corrupt_items;
    }

    /// Whether these are a tiered store's (a cold tier has a size).
    pub fn tiered(&self) -> bool {
        self.cold_bytes_limit > 0
    }

    /// `name:value` lines (INFO) or `STAT name value` pairs (memcached), one per figure.
    pub fn lines(&self) -> [(&'static str, u64); 13] {
        [
            ("tier_cold_keys", self.cold_items),
            ("tier_cold_used_memory", self.cold_bytes_used),
            ("tier_cold_maxmemory", self.cold_bytes_limit),
            ("tier_cold_hits", self.cold_hits),
            ("tier_cold_evicted_keys", self.cold_evicted_items),
            ("tier_demoted_keys", self.demoted_items),
            ("tier_admission_rejected_keys", self.rejected_items),
            ("tier_promoted_keys", self.promoted_items),
            ("tier_compressed_keys", self.compressed_items),
            ("tier_compressed_raw_bytes", self.compressed_raw_bytes),
            ("tier_compressed_stored_bytes", self.compressed_stored_bytes),
            ("tier_compress_skipped", self.compress_skipped),
            ("tier_corrupt_keys", self.corrupt_items),
        ]
    }
}

/// What an [`Op`] produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<'a> {
    /// The value (for writes with `return_old`: the previous value).
    Value(Value<'a>),
    /// The item a meta read found, with its usage.
    MetaValue(MetaValue<'a>),
    /// No such key (for writes with `return_old`: there was no previous value).
    Missing,
    /// A write was done; the item's new CAS.
    Stored {
        cas: u64,
    },
    /// A write's condition did not hold (NX on an existing key, XX or append on a missing one,
    /// an expire condition false).
    NotStored,
    /// A CAS write found another CAS.
    CasMismatch,
    /// A count or a number (DEL, EXISTS, INCR, STRLEN, DBSIZE, ...).
    Integer(i64),
    /// An unsigned result (memcached incr/decr).
    Unsigned(u64),
    /// A float result (INCRBYFLOAT), already formatted as Redis prints it.
    Float(Vec<u8>),
    Lifetime(Lifetime),
    /// A page of a scan, and the cursor to continue from (0: this shard is done).
    Keys {
        cursor: u64,
        keys: Vec<Vec<u8>>,
    },
    /// Boxed: rare, and large enough to triple the size of every other outcome.
    Figures(Box<ShardFigures>),
    Failed(OpError),
}

impl Outcome<'_> {
    /// The copy that travels back to the requesting shard.
    pub fn into_owned(self) -> Outcome<'static> {
        match self {
            Outcome::Value(Value { data, flags, cas }) => Outcome::Value(Value {
                data: Cow::Owned(data.into_owned()),
                flags,
                cas,
            }),
            Outcome::MetaValue(MetaValue {
                value: Value { data, flags, cas },
                lifetime,
                usage,
                won,
                created,
            }) => Outcome::MetaValue(MetaValue {
                value: Value {
                    data: Cow::Owned(data.into_owned()),
                    flags,
                    cas,
                },
                lifetime,
                usage,
                won,
                created,
            }),
            Outcome::Missing => Outcome::Missing,
            Outcome::Stored { cas } => Outcome::Stored { cas },
            Outcome::NotStored => Outcome::NotStored,
            Outcome::CasMismatch => Outcome::CasMismatch,
            Outcome::Integer(number) => Outcome::Integer(number),
            Outcome::Unsigned(number) => Outcome::Unsigned(number),
            Outcome::Float(text) => Outcome::Float(text),
            Outcome::Lifetime(lifetime) => Outcome::Lifetime(lifetime),
            Outcome::Keys { cursor, keys } => Outcome::Keys { cursor, keys },
            Outcome::Figures(figures) => Outcome::Figures(figures),
            Outcome::Failed(error) => Outcome::Failed(error),
        }
    }
}
