//! `persistent`: the segment store every shard keeps its items in.
//!
//! Goals:
//! - hold items (key, value, client flags, absolute expiry in unix ms, CAS) in fixed-size
//!   append-only **segments**, in anonymous memory ([`ArenaConfig::Dram`]) or in a
//!   memory-mapped file ([`ArenaConfig::File`]) that survives restarts and crashes, with the
//!   same bytes in both ([`layout`] draws them);
//! - find them through a compact hash index (8 bytes per key; keys are compared in the segment);
//! - group segments by TTL so expired items leave a whole segment at once, and check expiry on
//!   every read;
//! - never fail a write for lack of memory: the arena size is the limit, whole segments are
//!   evicted oldest first;
//! - on a file: an exclusive lock, a superblock checked against the configuration (never a
//!   silent reformat), a CRC-64 per item through [`platform::offload::Offload`], deletes and
//!   overwrites recorded in place so nothing deleted comes back, and recovery that checks every
//!   item when the file is reopened;
//! - or both, tiered ([`StoreConfig::tiered`], [`Store::open_tiered`]): a DRAM hot tier that
//!   demotes its oldest segments' live items (those [`Admission`] admits) into a cold file tier
//!   instead of evicting them, LZ4-compressed when that reaches the configured ratio, and
//!   promotes an item back on its second read within a window (see `store/tier.rs`).
//!
//! Non-goals: sockets, threads, protocols, clocks. A [`Store`] is single-threaded (one per
//! shard): `Send`, never `Sync`. Every call that needs the time takes `now_ms` (unix ms) from
//! the caller, so tests are deterministic.
//!
//! # Using it
//!
//! ```
//! use persistent::{SetOptions, SetStatus, Store, StoreConfig};
//! use platform::offload::SoftwareOffload;
//!
//! let now_ms = 1_700_000_000_000;
//! let mut store = Store::open(&StoreConfig::dram(8 << 20), Box::new(SoftwareOffload), now_ms)?;
//! let result = store.set(b"greeting", b"hello", &SetOptions::default(), now_ms)?;
//! assert!(matches!(result.status, SetStatus::Stored { .. }));
//! assert_eq!(&*store.get(b"greeting", now_ms).unwrap().value, b"hello");
//! # Ok::<(), persistent::StoreError>(())
//! ```
//!
//! # The operations, and what each protocol command lowers to
//!
//! | store call | memcached | Redis |
//! |---|---|---|
//! | [`Store::get`] | get, gets (`cas`) | GET, EXISTS ([`Store::contains`]) |
//! | [`Store::read`] + [`ReadOptions`], [`Store::mark`], [`Store::invalidate`] | mg (`h l u R N`, `W X Z`), md I, ms I | — |
//! | [`Store::set`] + [`Condition`], [`Expiry`], `return_previous` | set, add, replace, cas, ms | SET NX/XX/KEEPTTL/GET/PX/PXAT, GETSET, SETNX |
//! | [`Store::append`], [`Store::prepend`] | append, prepend | APPEND (set when `None`) |
//! | [`Store::delete`] | delete | DEL, UNLINK |
//! | [`Store::incr_u64`], [`Store::decr_u64`] | incr, decr | — |
//! | [`Store::incr_i64`] | — | INCR, DECR, INCRBY, DECRBY |
//! | [`Store::set_expiry`], [`Store::persist`], [`Store::expiry`] | touch, gat | EXPIRE, PEXPIREAT, PERSIST, TTL, PTTL |
//! | [`Store::flush_all`], [`Store::flush_all_at`] | flush_all \[delay\] | FLUSHDB, FLUSHALL |
//! | [`Store::len`], [`Store::stats`] | stats | DBSIZE, INFO |
//! | [`Store::scan`], [`Store::random_key`] | — | SCAN, KEYS, RANDOMKEY |
//!
//! Composite commands (INCRBYFLOAT, GETRANGE, SETRANGE, EXPIRE NX/XX/GT/LT, GETDEL, GETEX) are a
//! read then a write by the caller: a store is used by one thread, so the pair is atomic.
//!
//! Values longer than [`Store::item_bytes_max`] (key + value) are refused with
//! [`StoreError::ItemTooLarge`]; keys longer than [`KEY_BYTES_MAX`] with
//! [`StoreError::KeyTooLong`].
//!
//! The file tier: call [`Store::tick`] every few hundred ms (it runs delayed flushes, frees
//! expired segments and, under [`FlushPolicy::EverySec`], msyncs once a second), and
//! [`Store::close`] at shutdown (dropping the store does the same, without reporting errors).
//! [`FlushPolicy`] says what each policy survives. Under `EverySec` the msync runs on the
//! calling thread inside `tick`; to keep it off the shard thread, open with `FlushPolicy::No`
//! and call [`SyncHandle::sync`] (from [`Store::sync_handle`]) on a helper thread instead.

mod arena;
mod config;
mod error;
mod hash;
mod index;
pub mod layout;
mod segments;
mod store;

pub use arena::{Arena, DramArena, FileArena, SyncHandle};
pub use config::{
    Admission, ArenaConfig, ColdTierConfig, FlushPolicy, OwnerTag, StoreConfig,
    COLD_COMPRESS_MIN_BYTES_DEFAULT, COMPRESS_MIN_BYTES_DEFAULT,
    COMPRESS_RATIO_MIN_PERCENT_DEFAULT, COMPRESS_RATIO_MIN_PERCENT_MIN, PROMOTE_WINDOW_MS_DEFAULT,
    SEGMENT_BYTES_ALIGN, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN,
};
pub use error::StoreError;
pub use layout::{ItemUse, ACCESS_TICK_MS, FORMAT_VERSION, KEY_BYTES_MAX};
pub use segments::TTL_BUCKETS;
pub use store::{
    Condition, Expiry, ExpiryState, ItemView, Items, Mark, ReadOptions, RecoveryReport, SetOptions,
    SetResult, SetStatus, Stats, Store, TierStats, PREFETCH_KEYS_MAX, PROMOTION_FILTER_SLOTS,
    REJECTION_FILTER_SLOTS,
};
