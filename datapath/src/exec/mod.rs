//! The shard-side execution layer: [`Op`]s run against one shard's `persistent::Store`.
//!
//! Protocol-neutral: both RESP and memcached lower their commands to [`Op`]; the connection's
//! protocol encodes the [`Outcome`]. Reads on the local path borrow the item from the store
//! (no copy until the reply encoder writes it out); composite commands (GETRANGE, SETRANGE,
//! INCRBYFLOAT, EXPIRE NX/XX/GT/LT, GETDEL) are a read then a write here, atomic because one
//! store belongs to one thread.

mod glob;
mod op;

use std::borrow::Cow;
use std::path::PathBuf;

pub use glob::glob_match;
pub use op::*;
use persistent::{
    Admission, ColdTierConfig, ExpiryState, FlushPolicy, Mark, OwnerTag, ReadOptions, SetOptions,
    SetStatus, Store, StoreConfig, StoreError,
};
use platform::offload::{Offload, SoftwareOffload};

use crate::config::{AdmissionChoice, Config, OffloadChoice, SyncChoice, Tiering};

/// The owner tag a shard's file carries: magic, shard index, shard count, and the version of
/// the key-to-shard function ([`crate::shard::owner_of`]).
pub const OWNER_MAGIC: u32 = u32::from_be_bytes(*b"FRTE");
/// Bumped if [`crate::shard::owner_of`] ever changes (files written before must be re-homed).
pub const OWNER_HASH_VERSION: u32 = 1;

/// Why `--offload verilator` fails in a build without the `verilator` feature.
pub const VERILATOR_NOT_BUILT: &str =
    "--offload verilator: this ferrite was built without the `verilator` cargo \
     feature; rebuild with it (the default) or use --offload software";

/// How each shard's store is set up.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// DRAM per shard, or the file's size per shard when the file holds every item.
    pub memory_bytes: u64,
    pub data_file: Option<PathBuf>,
    /// Tiered: the file tier's size per shard (`memory_bytes` is then the DRAM tier's).
    pub data_size_bytes: Option<u64>,
    pub cold_admission: AdmissionChoice,
    pub compress_ratio_min_percent: u32,
    pub sync: SyncChoice,
    pub offload: OffloadChoice,
}

impl StoreSettings {
    pub fn for_shards(config: &Config, shard_count: usize) -> StoreSettings {
        StoreSettings {
            memory_bytes: config.memory_bytes / shard_count as u64,
            data_file: config.data_file.clone(),
            data_size_bytes: config
                .data_size_bytes
                .map(|bytes| bytes / shard_count as u64),
            cold_admission: config.cold_admission,
            compress_ratio_min_percent: config.compress_ratio_min_percent,
            sync: config.sync,
            offload: config.offload,
        }
    }

    /// A DRAM store of `memory_bytes` per shard with the software engine and every other
    /// setting at its default (for benches and tests).
    pub fn dram(memory_bytes: u64) -> StoreSettings {
        StoreSettings {
            memory_bytes,
            data_file: None,
            data_size_bytes: None,
            cold_admission: AdmissionChoice::Reused,
            compress_ratio_min_percent: persistent::COMPRESS_RATIO_MIN_PERCENT_DEFAULT,
            sync: SyncChoice::Everysec,
            offload: OffloadChoice::Software,
        }
    }

    pub fn tiering(&self) -> Tiering {
        match (&self.data_file, self.data_size_bytes) {
            (None, _) => Tiering::Dram,
            (Some(_), None) => Tiering::File,
            (Some(_), Some(_)) => Tiering::Tiered,
        }
    }

    pub fn describe(&self) -> String {
        match (&self.data_file, self.data_size_bytes) {
            (Some(path), Some(data_size)) => format!(
                "tiered: DRAM ({} bytes per shard) over file {}.N ({data_size} bytes per shard)",
                self.memory_bytes,
                path.display(),
            ),
            (Some(path), None) => format!(
                "file {}.N ({} bytes per shard)",
                path.display(),
                self.memory_bytes
            ),
            (None, _) => format!("DRAM ({} bytes per shard)", self.memory_bytes),
        }
    }

    /// Bytes of each shard's file: the file tier's size when tiered, else the whole store's.
    pub fn file_bytes(&self) -> u64 {
        self.data_size_bytes.unwrap_or(self.memory_bytes)
    }

    /// The file of shard `shard` (PATH.0, PATH.1, ...), when items live in files.
    pub fn shard_file(&self, shard: usize) -> Option<PathBuf> {
        self.data_file.as_ref().map(|path| shard_file(path, shard))
    }

    /// A fresh offload engine for one shard's store.
    pub fn offload_engine(&self) -> Result<Box<dyn Offload>, String> {
        match self.offload {
            OffloadChoice::Software => Ok(Box::new(SoftwareOffload)),
            #[cfg(feature = "verilator")]
            OffloadChoice::Verilator => fpga_sim::VerilatedOffload::new()
                .map(|engine| Box::new(engine) as Box<dyn Offload>)
                .map_err(|error| format!("the Verilated offload did not start: {error}")),
            #[cfg(not(feature = "verilator"))]
            OffloadChoice::Verilator => Err(VERILATOR_NOT_BUILT.to_owned()),
        }
    }

    pub fn store_config(&self, shard: usize, shard_count: usize) -> StoreConfig {
        let bytes = self.memory_bytes as usize;
        let mut config = match (self.shard_file(shard), self.data_size_bytes) {
            (Some(path), Some(data_size)) => StoreConfig {
                cold: Some(ColdTierConfig {
                    admission: match self.cold_admission {
                        AdmissionChoice::Reused => Admission::Reused,
                        AdmissionChoice::All => Admission::All,
                    },
                    ..ColdTierConfig::new(path, data_size as usize)
                }),
                ..StoreConfig::dram(bytes)
            },
            (Some(path), None) => StoreConfig::file(path, bytes),
            (None, _) => StoreConfig::dram(bytes),
        };
        config.compress_ratio_min_percent = self.compress_ratio_min_percent;
        config.owner = owner_tag(shard, shard_count);
        // Once a second is the server's syncer thread's job, not the shard's (see `sync_handle`).
        config.flush = match self.sync {
            SyncChoice::No | SyncChoice::Everysec => FlushPolicy::No,
            SyncChoice::Always => FlushPolicy::Always,
        };
        config
    }

    /// The configuration of shard `shard`'s file alone (the cold tier when tiered), for
    /// re-homing items between files.
    pub fn file_config(&self, shard: usize, shard_count: usize) -> Option<StoreConfig> {
        let config = self.store_config(shard, shard_count);
        match config.cold {
            Some(cold) => Some(StoreConfig {
                compress_min_bytes: Some(cold.compress_min_bytes),
                flush: config.flush,
                owner: config.owner,
                compress_ratio_min_percent: config.compress_ratio_min_percent,
                ..StoreConfig::file(cold.path, cold.bytes)
            }),
            None => self.data_file.is_some().then_some(config),
        }
    }
}

/// `PATH.N`: the file of shard N.
pub fn shard_file(path: &std::path::Path, shard: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{shard}"));
    PathBuf::from(name)
}

pub fn owner_tag(shard: usize, shard_count: usize) -> OwnerTag {
    OwnerTag([
        OWNER_MAGIC,
        shard as u32,
        shard_count as u32,
        OWNER_HASH_VERSION,
    ])
}

/// One shard's store and the logic that turns ops into store calls.
pub struct Executor {
    store: Option<Store>,
    hits: u64,
    misses: u64,
}

fn store_error(error: StoreError) -> OpError {
    match error {
        StoreError::ItemTooLarge { .. } => OpError::TooLarge,
        StoreError::KeyTooLong { .. } => OpError::KeyTooLong,
        StoreError::NotAnInteger => OpError::NotAnInteger,
        StoreError::Overflow => OpError::Overflow,
        _ => OpError::Storage,
    }
}

fn persistent_expiry(expiry: Expiry) -> persistent::Expiry {
    match expiry {
        Expiry::Never => persistent::Expiry::Never,
        Expiry::Keep => persistent::Expiry::Keep,
        Expiry::AtMs(at) => persistent::Expiry::At(at),
    }
}

fn persistent_condition(condition: Condition) -> persistent::Condition {
    match condition {
        Condition::Always => persistent::Condition::Always,
        Condition::IfAbsent => persistent::Condition::IfAbsent,
        Condition::IfPresent => persistent::Condition::IfPresent,
        Condition::IfCas(cas) | Condition::IfCasOrStale(cas) => persistent::Condition::IfCas(cas),
    }
}

fn set_outcome(status: SetStatus) -> Outcome<'static> {
    match status {
        SetStatus::Stored { cas } => Outcome::Stored { cas },
        SetStatus::NotStored => Outcome::NotStored,
        SetStatus::Exists => Outcome::CasMismatch,
        SetStatus::NotFound => Outcome::Missing,
    }
}

/// memcached incr / decr (and `ma`) on `key`: the new number, `None` when the key is missing.
fn change_unsigned(
    store: &mut Store,
    key: &[u8],
    delta: UnsignedDelta,
    now: u64,
) -> Result<Option<u64>, StoreError> {
    if delta.decrement {
        store.decr_u64(key, delta.magnitude, now)
    } else {
        store.incr_u64(key, delta.magnitude, now)
    }
}

fn lifetime_of(expiry_ms: Option<u64>, now: u64) -> Lifetime {
    match expiry_ms {
        Some(at) => Lifetime::Ms(at.saturating_sub(now)),
        None => Lifetime::Forever,
    }
}

fn owned_value(value: Vec<u8>, flags: u32, cas: u64) -> Outcome<'static> {
    Outcome::Value(Value {
        data: Cow::Owned(value),
        flags,
        cas,
    })
}

impl Executor {
    /// Opens shard `shard`'s store (recovering its file, if it has one).
    pub fn open(
        settings: &StoreSettings,
        shard: usize,
        shard_count: usize,
        now_ms: u64,
    ) -> Result<Executor, String> {
        let config = settings.store_config(shard, shard_count);
        let store = match config.cold {
            Some(_) => Store::open_tiered(
                &config,
                settings.offload_engine()?,
                settings.offload_engine()?,
                now_ms,
            ),
            None => Store::open(&config, settings.offload_engine()?, now_ms),
        }
        .map_err(|error| error.to_string())?;
        Ok(Executor::with_store(store))
    }

    pub fn with_store(store: Store) -> Executor {
        Executor {
            store: Some(store),
            hits: 0,
            misses: 0,
        }
    }

    fn store(&mut self) -> &mut Store {
        self.store
            .as_mut()
            .expect("the store is open until close()")
    }

    /// Restarts the keyspace hit and miss counts (CONFIG RESETSTAT).
    pub fn reset_hit_counters(&mut self) {
        self.hits = 0;
        self.misses = 0;
    }

    /// A handle that syncs this shard's file from the server's syncer thread (None in DRAM).
    pub fn sync_handle(&self) -> Result<Option<persistent::SyncHandle>, String> {
        match &self.store {
            Some(store) => store.sync_handle().map_err(|error| error.to_string()),
            None => Ok(None),
        }
    }

    /// What opening the store found (items restored, corrupt ones skipped).
    pub fn recovery_report(&self) -> Option<&persistent::RecoveryReport> {
        self.store.as_ref().map(Store::recovery_report)
    }

    /// Flushes the file tier and marks it clean. The executor is unusable afterwards.
    pub fn close(&mut self, _now_ms: u64) -> Result<(), String> {
        match self.store.take() {
            Some(store) => store.close().map_err(|error| error.to_string()),
            None => Ok(()),
        }
    }

    /// Periodic store work (expired segments, delayed flushes, msync once a second).
    pub fn tick(&mut self, now_ms: u64) -> Result<(), String> {
        self.store().tick(now_ms).map_err(|error| error.to_string())
    }

    /// Keyspace hits, misses and evictions so far: the anomaly detector's inputs, cheap enough
    /// to read every store tick.
    pub fn hits_misses_evictions(&self) -> (u64, u64, u64) {
        let evicted = self.store.as_ref().map_or(0, Store::evicted_items);
        (self.hits, self.misses, evicted)
    }

    /// The largest value a write can take (key + value must fit one segment).
    pub fn value_bytes_max(&self) -> usize {
        self.store.as_ref().map_or(0, Store::item_bytes_max)
    }

    /// Brings the items of a batch of keys into the cache before their ops run (see
    /// [`Store::prefetch`]).
    pub fn prefetch<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        if let Some(store) = &self.store {
            store.prefetch(keys);
        }
    }

    pub fn execute(&mut self, op: &Op<'_>, now: u64) -> Outcome<'_> {
        match op {
            Op::Get { key } => self.get(key, now),
            Op::GetAndExpire { key, expiry } => {
                self.read_and_expire(key, Some(*expiry), now, |executor| executor.get(key, now))
            }
            Op::MetaGet { key, read } => self.meta_get(key, read, now),
            Op::MetaArithmetic { key, arithmetic } => self.meta_arithmetic(key, arithmetic, now),
            Op::Invalidate { key, expiry } => {
                let expiry_ms = expiry.and_then(|expiry| match expiry {
                    Expiry::Never => Some(0),
                    Expiry::AtMs(at) => Some(at),
                    Expiry::Keep => None,
                });
                match self.store().invalidate(key, expiry_ms, now) {
                    Ok(Some(cas)) => Outcome::Stored { cas },
                    Ok(None) => Outcome::Missing,
                    Err(error) => Outcome::Failed(store_error(error)),
                }
            }
            Op::RemoveValue { key, expiry, stale } => {
                let options = SetOptions {
                    condition: persistent::Condition::IfPresent,
                    expiry: persistent_expiry(*expiry),
                    ..SetOptions::default()
                };
                let store = self.store();
                match store.set(key, b"", &options, now) {
                    Ok(result) => {
                        if *stale && matches!(result.status, SetStatus::Stored { .. }) {
                            store.mark(key, Mark::Stale, now);
                        }
                        set_outcome(result.status)
                    }
                    Err(error) => Outcome::Failed(store_error(error)),
                }
            }
            Op::IfCas { cas, op } => {
                if let Some(key) = op.key() {
                    match self.store().read(key, now, ReadOptions::PEEK) {
                        Some(item) if item.cas != *cas => return Outcome::CasMismatch,
                        // A missing key is the guarded op's to answer (NF, NS, or vivify).
                        _ => {}
                    }
                }
                self.execute(op, now)
            }
            Op::GetAndDelete { key } => {
                let Some(item) = self.store().get(key, now) else {
                    return Outcome::Missing;
                };
                let (value, flags, cas) = (item.value.into_owned(), item.flags, item.cas);
                match self.store().delete(key, now) {
                    Ok(_) => owned_value(value, flags, cas),
                    Err(error) => Outcome::Failed(store_error(error)),
                }
            }
            Op::Set {
                key,
                value,
                flags,
                expiry,
                condition,
                return_old,
            } => {
                if let Condition::IfCasOrStale(cas) = condition {
                    return self.set_or_stale(key, value, *flags, *expiry, *cas, now);
                }
                let options = SetOptions {
                    condition: persistent_condition(*condition),
                    expiry: persistent_expiry(*expiry),
                    flags: *flags,
                    return_previous: *return_old,
                };
                match self.store().set(key, value, &options, now) {
                    Ok(result) if *return_old => match result.previous {
                        Some(previous) => owned_value(previous, 0, 0),
                        None => Outcome::Missing,
                    },
                    Ok(result) => set_outcome(result.status),
                    Err(error) => Outcome::Failed(store_error(error)),
                }
            }
            Op::Concat {
                key,
                value,
                prepend,
                create,
            } => {
                let store = self.store();
                let done = if *prepend {
                    store.prepend(key, value, now)
                } else {
                    store.append(key, value, now)
                };
                match done {
                    Ok(Some(length)) => Outcome::Integer(length as i64),
                    Ok(None) => match create {
                        Some(creation) => {
                            let options = SetOptions {
                                flags: creation.flags,
                                expiry: persistent_expiry(creation.expiry),
                                ..SetOptions::default()
                            };
                            match store.set(key, value, &options, now) {
                                Ok(_) => Outcome::Integer(value.len() as i64),
                                Err(error) => Outcome::Failed(store_error(error)),
                            }
                        }
                        None => Outcome::NotStored,
                    },
                    Err(error) => Outcome::Failed(store_error(error)),
                }
            }
            Op::SetRange { key, offset, value } => self.set_range(key, *offset, value, now),
            Op::Delete { key } => match self.store().delete(key, now) {
                Ok(deleted) => Outcome::Integer(i64::from(deleted)),
                Err(error) => Outcome::Failed(store_error(error)),
            },
            Op::Exists { key } => Outcome::Integer(i64::from(self.store().contains(key, now))),
            Op::Increment {
                key,
                arithmetic,
                create,
            } => self.increment(key, *arithmetic, *create, now),
            Op::IncrementFloat { key, delta } => self.increment_float(key, *delta, now),
            Op::Expire {
                key,
                expiry,
                condition,
            } => self.expire(key, *expiry, *condition, now),
            Op::Persist { key } => match self.store().persist(key, now) {
                Ok(changed) => Outcome::Integer(i64::from(changed)),
                Err(error) => Outcome::Failed(store_error(error)),
            },
            Op::Ttl { key } => Outcome::Lifetime(match self.store().expiry(key, now) {
                ExpiryState::Missing => Lifetime::Missing,
                ExpiryState::Never => Lifetime::Forever,
                ExpiryState::At(at) => Lifetime::Ms(at.saturating_sub(now)),
            }),
            Op::ExpireTime { key } => Outcome::Lifetime(match self.store().expiry(key, now) {
                ExpiryState::Missing => Lifetime::Missing,
                ExpiryState::Never => Lifetime::Forever,
                ExpiryState::At(at) => Lifetime::Ms(at),
            }),
            Op::Length { key } => Outcome::Integer(
                self.store()
                    .get(key, now)
                    .map_or(0, |item| item.value.len() as i64),
            ),
            Op::Count => Outcome::Integer(self.store().len() as i64),
            Op::Flush => match self.store().flush_all(now) {
                Ok(()) => Outcome::Stored { cas: 0 },
                Err(error) => Outcome::Failed(store_error(error)),
            },
            Op::FlushAt { at_ms } => match self.store().flush_all_at(*at_ms, now) {
                Ok(()) => Outcome::Stored { cas: 0 },
                Err(error) => Outcome::Failed(store_error(error)),
            },
            Op::Scan {
                cursor,
                count,
                pattern,
            } => {
                let mut keys = Vec::new();
                let cursor = self.store().scan(*cursor, *count, now, |key| {
                    if pattern
                        .as_ref()
                        .is_none_or(|pattern| glob_match(pattern, key))
                    {
                        keys.push(key.to_vec());
                    }
                });
                Outcome::Keys { cursor, keys }
            }
            Op::RandomKey => match self.store().random_key(now) {
                Some(key) => Outcome::Keys {
                    cursor: 0,
                    keys: vec![key],
                },
                None => Outcome::Missing,
            },
            // The shard applies settings itself (Core::execute); the store has none.
            Op::Configure(_) => Outcome::Stored { cas: 0 },
            // Shard::deliver_mail answers this from the shard's connections; the store knows none.
            Op::ClientList => Outcome::Keys {
                cursor: 0,
                keys: Vec::new(),
            },
            // Core::execute answers this: the statistics are the shard's, not the store's.
            Op::ResetStats(_) => Outcome::Integer(0),
            Op::Stats => {
                let stats = self.store().stats();
                let tier = self.store().tier_stats().map(TierFigures::from);
                Outcome::Figures(Box::new(ShardFigures {
                    tier: tier.unwrap_or_default(),
                    items: stats.items,
                    bytes_used: stats.bytes_used,
                    bytes_limit: stats.bytes_limit,
                    evicted_items: stats.evicted_items,
                    expired_items: stats.expired_items,
                    hits: self.hits,
                    misses: self.misses,
                    segments_total: stats.segments_total,
                    segments_free: stats.segments_free,
                    segments_in_use: stats.segments_in_use,
                    ..ShardFigures::default()
                }))
            }
        }
    }

    fn get(&mut self, key: &[u8], now: u64) -> Outcome<'_> {
        let Some(store) = self.store.as_mut() else {
            return Outcome::Failed(OpError::Storage);
        };
        match store.get(key, now) {
            Some(item) => {
                self.hits += 1;
                Outcome::Value(Value {
                    data: item.value,
                    flags: item.flags,
                    cas: item.cas,
                })
            }
            None => {
                self.misses += 1;
                Outcome::Missing
            }
        }
    }

    /// Sets the expiry of `key` if it exists (GETEX, gat, mg T).
    fn change_expiry(&mut self, key: &[u8], expiry: Expiry, now: u64) -> Result<(), StoreError> {
        match expiry {
            Expiry::Never => self.store().persist(key, now).map(|_| ()),
            Expiry::AtMs(at) => self.store().set_expiry(key, Some(at), now).map(|_| ()),
            Expiry::Keep => Ok(()),
        }
    }

    /// A read that also sets the expiry (gat, `mg T`, GETEX). memcached and Redis read first, so
    /// an expiry already past still returns the hit, then removes the item. A later expiry is set
    /// first instead, for the same hit: setting it rewrites the item under a new CAS, which the
    /// read must report.
    fn read_and_expire(
        &mut self,
        key: &[u8],
        expiry: Option<Expiry>,
        now: u64,
        read: impl for<'s> FnOnce(&'s mut Self) -> Outcome<'s>,
    ) -> Outcome<'_> {
        let Some(expiry) = expiry else {
            return read(self);
        };
        if !matches!(expiry, Expiry::AtMs(at) if at <= now) {
            if let Err(error) = self.change_expiry(key, expiry, now) {
                return Outcome::Failed(store_error(error));
            }
            return read(self);
        }
        // The item is about to go: its value is copied out of the store first, with no time left.
        let mut outcome = read(self).into_owned();
        if let Outcome::MetaValue(found) = &mut outcome {
            found.lifetime = Lifetime::Ms(0);
        }
        match self.change_expiry(key, expiry, now) {
            Ok(()) => outcome,
            Err(error) => Outcome::Failed(store_error(error)),
        }
    }

    /// memcached `mg`: vivify on a miss, then read and change the expiry (see
    /// [`Executor::read_and_expire`]).
    fn meta_get(&mut self, key: &[u8], read: &MetaRead, now: u64) -> Outcome<'_> {
        let mut created = false;
        if let Some(expiry) = read.vivify {
            let store = self.store();
            if !store.contains(key, now) {
                let options = SetOptions {
                    condition: persistent::Condition::IfAbsent,
                    expiry: persistent_expiry(expiry),
                    ..SetOptions::default()
                };
                match store.set(key, b"", &options, now) {
                    Ok(result) if matches!(result.status, SetStatus::Stored { cas } if cas != 0) => {
                        created = store.mark(key, Mark::WinToken, now);
                    }
                    Ok(_) => {}
                    Err(error) => return Outcome::Failed(store_error(error)),
                }
            }
        }
        self.read_and_expire(key, read.expiry, now, |executor| {
            executor.meta_read(key, read, created, now)
        })
    }

    /// The read of an `mg`, recording it and handing out the win token as `read` says; `created`
    /// when this request vivified the item.
    fn meta_read(&mut self, key: &[u8], read: &MetaRead, created: bool, now: u64) -> Outcome<'_> {
        let Some(store) = self.store.as_mut() else {
            return Outcome::Failed(OpError::Storage);
        };
        let options = ReadOptions {
            touch: read.touch,
            claim_win: read.claim_win,
            recache_within_ms: read.recache_within_ms,
        };
        let Some(item) = store.read(key, now, options) else {
            self.misses += 1;
            return Outcome::Missing;
        };
        self.hits += 1;
        let usage = Usage {
            fetched: item.usage.fetched,
            stale: item.usage.stale,
            // The creator's own token was handed out by this request: W, not Z.
            win_token: item.usage.win_token && !created,
            idle_ms: item.usage.idle_ms(now),
        };
        Outcome::MetaValue(MetaValue {
            lifetime: lifetime_of(item.expiry_ms, now),
            value: Value {
                data: item.value,
                flags: item.flags,
                cas: item.cas,
            },
            usage,
            won: item.won || created,
            created,
        })
    }

    /// memcached `ma`: compare, change, vivify, set the expiry, then report the item.
    fn meta_arithmetic(
        &mut self,
        key: &[u8],
        arithmetic: &MetaArithmetic,
        now: u64,
    ) -> Outcome<'static> {
        let store = self.store();
        if let Some(cas) = arithmetic.compare_cas {
            match store.read(key, now, ReadOptions::PEEK) {
                Some(item) if item.cas != cas => return Outcome::CasMismatch,
                _ => {}
            }
        }
        let mut created = false;
        let number = match change_unsigned(store, key, arithmetic.delta, now) {
            Ok(Some(number)) => number,
            Ok(None) => {
                let Some(expiry) = arithmetic.vivify else {
                    return Outcome::Missing;
                };
                let options = SetOptions {
                    condition: persistent::Condition::IfAbsent,
                    expiry: persistent_expiry(expiry),
                    ..SetOptions::default()
                };
                let mut digits = Vec::new();
                crate::protocol::number::write_u64(&mut digits, arithmetic.initial);
                match store.set(key, &digits, &options, now) {
                    Ok(result) if matches!(result.status, SetStatus::Stored { .. }) => {}
                    Ok(_) => return Outcome::NotStored,
                    Err(error) => return Outcome::Failed(store_error(error)),
                }
                created = true;
                arithmetic.initial
            }
            Err(error) => return Outcome::Failed(store_error(error)),
        };
        if let Some(expiry) = arithmetic.expiry {
            if let Err(error) = self.change_expiry(key, expiry, now) {
                return Outcome::Failed(store_error(error));
            }
        }
        let Some(item) = self.store().read(key, now, ReadOptions::PEEK) else {
            // The new expiry was already past: the item is gone.
            return Outcome::Missing;
        };
        let mut digits = Vec::new();
        crate::protocol::number::write_u64(&mut digits, number);
        Outcome::MetaValue(MetaValue {
            lifetime: lifetime_of(item.expiry_ms, now),
            value: Value {
                data: Cow::Owned(digits),
                flags: item.flags,
                cas: item.cas,
            },
            usage: Usage::default(),
            won: false,
            created,
        })
    }

    /// memcached `ms I C<cas>`: stored when `cas` is the item's CAS, stored and marked stale when
    /// it is older, refused when newer.
    fn set_or_stale(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        expiry: Expiry,
        cas: u64,
        now: u64,
    ) -> Outcome<'static> {
        let store = self.store();
        let Some(current) = store.read(key, now, ReadOptions::PEEK).map(|item| item.cas) else {
            return Outcome::Missing;
        };
        if cas > current {
            return Outcome::CasMismatch;
        }
        let options = SetOptions {
            condition: persistent::Condition::IfCas(current),
            expiry: persistent_expiry(expiry),
            flags,
            return_previous: false,
        };
        match store.set(key, value, &options, now) {
            Ok(result) => {
                if cas < current {
                    store.mark(key, Mark::Stale, now);
                }
                set_outcome(result.status)
            }
            Err(error) => Outcome::Failed(store_error(error)),
        }
    }

    fn set_range(&mut self, key: &[u8], offset: usize, patch: &[u8], now: u64) -> Outcome<'static> {
        let store = self.store();
        let (mut value, flags) = match store.get(key, now) {
            Some(item) => (item.value.into_owned(), item.flags),
            None => (Vec::new(), 0),
        };
        if patch.is_empty() {
            return Outcome::Integer(value.len() as i64);
        }
        let end = offset + patch.len();
        if end > store.item_bytes_max() {
            return Outcome::Failed(OpError::TooLarge);
        }
        if value.len() < end {
            value.resize(end, 0);
        }
        value[offset..end].copy_from_slice(patch);
        let options = SetOptions {
            expiry: persistent::Expiry::Keep,
            flags,
            ..SetOptions::default()
        };
        match store.set(key, &value, &options, now) {
            Ok(_) => Outcome::Integer(value.len() as i64),
            Err(error) => Outcome::Failed(store_error(error)),
        }
    }

    fn increment(
        &mut self,
        key: &[u8],
        arithmetic: Arithmetic,
        create: bool,
        now: u64,
    ) -> Outcome<'static> {
        let store = self.store();
        match arithmetic {
            Arithmetic::Signed(delta) => {
                if !create && !store.contains(key, now) {
                    return Outcome::Missing;
                }
                match store.incr_i64(key, delta, now) {
                    Ok(number) => Outcome::Integer(number),
                    Err(error) => Outcome::Failed(store_error(error)),
                }
            }
            Arithmetic::Unsigned(delta) => match change_unsigned(store, key, delta, now) {
                Ok(Some(number)) => Outcome::Unsigned(number),
                Ok(None) => Outcome::Missing,
                Err(error) => Outcome::Failed(store_error(error)),
            },
        }
    }

    fn increment_float(&mut self, key: &[u8], delta: f64, now: u64) -> Outcome<'static> {
        let store = self.store();
        let (number, flags) = match store.get(key, now) {
            Some(item) => match crate::commands::args::parse_f64(&item.value) {
                Some(number) => (number, item.flags),
                None => return Outcome::Failed(OpError::NotAFloat),
            },
            None => (0.0, 0),
        };
        let result = number + delta;
        if !result.is_finite() {
            return Outcome::Failed(OpError::NotAFloatResult);
        }
        let text = crate::commands::args::format_f64(result);
        let options = SetOptions {
            expiry: persistent::Expiry::Keep,
            flags,
            ..SetOptions::default()
        };
        match store.set(key, &text, &options, now) {
            Ok(_) => Outcome::Float(text),
            Err(error) => Outcome::Failed(store_error(error)),
        }
    }

    fn expire(
        &mut self,
        key: &[u8],
        expiry: Expiry,
        condition: ExpireCondition,
        now: u64,
    ) -> Outcome<'static> {
        let store = self.store();
        let current = match store.expiry(key, now) {
            ExpiryState::Missing => return Outcome::Integer(0),
            ExpiryState::Never => None,
            ExpiryState::At(at) => Some(at),
        };
        let new_at = match expiry {
            Expiry::AtMs(at) => Some(at),
            Expiry::Never => None,
            Expiry::Keep => current,
        };
        // Redis: no expiry counts as an infinite TTL for GT and LT.
        let allowed = match condition {
            ExpireCondition::Always => true,
            ExpireCondition::IfNone => current.is_none(),
            ExpireCondition::IfSome => current.is_some(),
            ExpireCondition::IfLater => match (current, new_at) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(current), Some(new)) => new > current,
            },
            ExpireCondition::IfEarlier => match (current, new_at) {
                (None, Some(_)) => true,
                (None, None) | (Some(_), None) => false,
                (Some(current), Some(new)) => new < current,
            },
        };
        if !allowed {
            return Outcome::Integer(0);
        }
        match store.set_expiry(key, new_at, now) {
            Ok(changed) => Outcome::Integer(i64::from(changed)),
            Err(error) => Outcome::Failed(store_error(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "verilator"))]
    #[test]
    fn verilator_without_the_feature_says_how_to_get_it() {
        let settings = StoreSettings {
            memory_bytes: 8 << 20,
            data_file: None,
            data_size_bytes: None,
            cold_admission: AdmissionChoice::Reused,
            compress_ratio_min_percent: persistent::COMPRESS_RATIO_MIN_PERCENT_DEFAULT,
            sync: SyncChoice::Everysec,
            offload: OffloadChoice::Verilator,
        };
        let error = settings.offload_engine().err().expect("must refuse");
        assert!(error.contains("`verilator` cargo feature"), "{error}");
    }

    #[test]
    fn shard_files_are_numbered_after_the_path() {
        let settings = StoreSettings {
            memory_bytes: 8 << 20,
            data_file: Some(PathBuf::from("dir/items")),
            data_size_bytes: None,
            cold_admission: AdmissionChoice::Reused,
            compress_ratio_min_percent: persistent::COMPRESS_RATIO_MIN_PERCENT_DEFAULT,
            sync: SyncChoice::Everysec,
            offload: OffloadChoice::Software,
        };
        assert_eq!(settings.shard_file(3), Some(PathBuf::from("dir/items.3")));
        assert_eq!(owner_tag(3, 4).0, [OWNER_MAGIC, 3, 4, OWNER_HASH_VERSION]);
    }
}
