//! The shard-side execution layer: [`Op`]s run against one shard's store.
//!
//! Protocol-neutral: both RESP and memcached lower their commands to [`Op`]; the connection's
//! protocol encodes the [`Outcome`].

mod glob;
mod op;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

pub use glob::glob_match;
pub use op::*;

use crate::config::Config;

/// Largest value a store takes (one item must fit a segment).
pub const VALUE_BYTES_MAX: usize = 1 << 20;

/// How each shard's store is set up.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub memory_bytes: u64,
    pub data_file: Option<PathBuf>,
}

impl StoreSettings {
    pub fn for_shards(config: &Config, shard_count: usize) -> StoreSettings {
        StoreSettings { memory_bytes: config.memory_bytes / shard_count as u64, data_file: config.data_file.clone() }
    }

    pub fn describe(&self) -> String {
        match &self.data_file {
            Some(path) => format!("file {}.N ({} bytes per shard)", path.display(), self.memory_bytes),
            None => format!("DRAM ({} bytes per shard)", self.memory_bytes),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    cas: u64,
    expires_at_ms: Option<u64>,
}

/// One shard's store and the logic that turns ops into store calls.
pub struct Executor {
    items: HashMap<Vec<u8>, Entry>,
    next_cas: u64,
    hits: u64,
    misses: u64,
    memory_bytes: u64,
}

impl Executor {
    pub fn open(settings: &StoreSettings, _shard: usize, _shard_count: usize, _now_ms: u64) -> Result<Executor, String> {
        Ok(Executor { items: HashMap::new(), next_cas: 1, hits: 0, misses: 0, memory_bytes: settings.memory_bytes })
    }

    pub fn close(&mut self, _now_ms: u64) -> Result<(), String> {
        Ok(())
    }

    pub fn value_bytes_max(&self) -> usize {
        VALUE_BYTES_MAX
    }

    fn live(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let expired = self.items.get(key).is_some_and(|entry| entry.expires_at_ms.is_some_and(|at| at <= now));
        if expired {
            self.items.remove(key);
        }
        self.items.get_mut(key)
    }

    fn store(&mut self, key: &[u8], value: Vec<u8>, flags: u32, expires_at_ms: Option<u64>) -> u64 {
        let cas = self.next_cas;
        self.next_cas += 1;
        self.items.insert(key.to_vec(), Entry { value, flags, cas, expires_at_ms });
        cas
    }

    pub fn execute(&mut self, op: &Op<'_>, now: u64) -> Outcome<'_> {
        match op {
            Op::Get { key } => match self.live(key, now) {
                Some(entry) => {
                    let value = Value { data: Cow::Owned(entry.value.clone()), flags: entry.flags, cas: entry.cas };
                    self.hits += 1;
                    Outcome::Value(value)
                }
                None => {
                    self.misses += 1;
                    Outcome::Missing
                }
            },
            Op::GetAndExpire { key, expiry } => {
                let Some(entry) = self.live(key, now) else { return Outcome::Missing };
                match expiry {
                    Expiry::Never => entry.expires_at_ms = None,
                    Expiry::AtMs(at) => entry.expires_at_ms = Some(*at),
                    Expiry::Keep => {}
                }
                let value = Value { data: Cow::Owned(entry.value.clone()), flags: entry.flags, cas: entry.cas };
                Outcome::Value(value)
            }
            Op::GetAndDelete { key } => match self.live(key, now).map(|entry| entry.clone()) {
                Some(entry) => {
                    self.items.remove(&key[..]);
                    Outcome::Value(Value { data: Cow::Owned(entry.value), flags: entry.flags, cas: entry.cas })
                }
                None => Outcome::Missing,
            },
            Op::Set { key, value, flags, expiry, condition, return_old } => {
                if value.len() > VALUE_BYTES_MAX {
                    return Outcome::Failed(OpError::TooLarge);
                }
                let old = self.live(key, now).map(|entry| entry.clone());
                let allowed = match condition {
                    Condition::Always => true,
                    Condition::IfAbsent => old.is_none(),
                    Condition::IfPresent => old.is_some(),
                    Condition::IfCas(cas) => old.as_ref().is_some_and(|entry| entry.cas == *cas),
                };
                let old_outcome = || match &old {
                    Some(entry) => Outcome::Value(Value { data: Cow::Owned(entry.value.clone()), flags: entry.flags, cas: entry.cas }),
                    None => Outcome::Missing,
                };
                if !allowed {
                    return if *return_old {
                        old_outcome()
                    } else if matches!(condition, Condition::IfCas(_)) && old.is_some() {
                        Outcome::CasMismatch
                    } else {
                        Outcome::NotStored
                    };
                }
                let expires_at_ms = match expiry {
                    Expiry::Never => None,
                    Expiry::Keep => old.as_ref().and_then(|entry| entry.expires_at_ms),
                    Expiry::AtMs(at) => Some(*at),
                };
                let result = if *return_old { old_outcome() } else { Outcome::Stored { cas: 0 } };
                let cas = self.store(key, value.to_vec(), *flags, expires_at_ms);
                match result {
                    Outcome::Stored { .. } => Outcome::Stored { cas },
                    other => other,
                }
            }
            Op::Concat { key, value, prepend, create } => {
                let old = self.live(key, now).map(|entry| entry.clone());
                let (mut data, flags, expires) = match old {
                    Some(entry) => (entry.value, entry.flags, entry.expires_at_ms),
                    None if *create => (Vec::new(), 0, None),
                    None => return Outcome::NotStored,
                };
                if data.len() + value.len() > VALUE_BYTES_MAX {
                    return Outcome::Failed(OpError::TooLarge);
                }
                if *prepend {
                    data.splice(0..0, value.iter().copied());
                } else {
                    data.extend_from_slice(value);
                }
                let length = data.len() as i64;
                self.store(key, data, flags, expires);
                Outcome::Integer(length)
            }
            Op::SetRange { key, offset, value } => {
                let old = self.live(key, now).map(|entry| entry.clone());
                if value.is_empty() {
                    return Outcome::Integer(old.map_or(0, |entry| entry.value.len() as i64));
                }
                if offset + value.len() > VALUE_BYTES_MAX {
                    return Outcome::Failed(OpError::TooLarge);
                }
                let (mut data, flags, expires) = old.map_or((Vec::new(), 0, None), |entry| (entry.value, entry.flags, entry.expires_at_ms));
                if data.len() < offset + value.len() {
                    data.resize(offset + value.len(), 0);
                }
                data[*offset..offset + value.len()].copy_from_slice(value);
                let length = data.len() as i64;
                self.store(key, data, flags, expires);
                Outcome::Integer(length)
            }
            Op::Delete { key } => Outcome::Integer(i64::from(self.live(key, now).is_some() && self.items.remove(&key[..]).is_some())),
            Op::Exists { key } => Outcome::Integer(i64::from(self.live(key, now).is_some())),
            Op::Increment { key, delta, arithmetic, create } => {
                let old = self.live(key, now).map(|entry| entry.clone());
                let (text, flags, expires) = match old {
                    Some(entry) => (entry.value, entry.flags, entry.expires_at_ms),
                    None if *create => (b"0".to_vec(), 0, None),
                    None => return Outcome::NotStored,
                };
                let outcome = match arithmetic {
                    Arithmetic::Signed => {
                        let Some(number) = crate::commands::args::parse_i64(&text) else {
                            return Outcome::Failed(OpError::NotAnInteger);
                        };
                        let Some(result) = number.checked_add(*delta) else { return Outcome::Failed(OpError::Overflow) };
                        Outcome::Integer(result)
                    }
                    Arithmetic::Unsigned => {
                        let Some(number) = std::str::from_utf8(&text).ok().and_then(|text| text.parse::<u64>().ok()) else {
                            return Outcome::Failed(OpError::NotAnInteger);
                        };
                        let result = if *delta >= 0 {
                            number.wrapping_add(*delta as u64)
                        } else {
                            number.saturating_sub(delta.unsigned_abs())
                        };
                        Outcome::Unsigned(result)
                    }
                };
                let text = match &outcome {
                    Outcome::Integer(number) => number.to_string(),
                    Outcome::Unsigned(number) => number.to_string(),
                    _ => unreachable!("increments produce numbers"),
                };
                self.store(key, text.into_bytes(), flags, expires);
                outcome
            }
            Op::IncrementFloat { key, delta } => {
                let old = self.live(key, now).map(|entry| entry.clone());
                let (text, flags, expires) = old.map_or((b"0".to_vec(), 0, None), |entry| (entry.value, entry.flags, entry.expires_at_ms));
                let Some(number) = crate::commands::args::parse_f64(&text) else {
                    return Outcome::Failed(OpError::NotAFloat);
                };
                let result = number + delta;
                if !result.is_finite() {
                    return Outcome::Failed(OpError::Overflow);
                }
                let text = crate::commands::args::format_f64(result);
                self.store(key, text.clone(), flags, expires);
                Outcome::Float(text)
            }
            Op::Expire { key, expiry, condition } => {
                let Some(entry) = self.live(key, now) else { return Outcome::Integer(0) };
                let new_at = match expiry {
                    Expiry::AtMs(at) => Some(*at),
                    _ => None,
                };
                let allowed = match (condition, entry.expires_at_ms, new_at) {
                    (ExpireCondition::Always, _, _) => true,
                    (ExpireCondition::IfNone, current, _) => current.is_none(),
                    (ExpireCondition::IfSome, current, _) => current.is_some(),
                    (ExpireCondition::IfLater, None, _) => false,
                    (ExpireCondition::IfLater, Some(current), new) => new.is_none_or(|new| new > current),
                    (ExpireCondition::IfEarlier, None, _) => true,
                    (ExpireCondition::IfEarlier, Some(current), new) => new.is_some_and(|new| new < current),
                };
                if !allowed {
                    return Outcome::Integer(0);
                }
                if new_at.is_some_and(|at| at <= now) {
                    self.items.remove(&key[..]);
                } else {
                    entry.expires_at_ms = new_at;
                }
                Outcome::Integer(1)
            }
            Op::Persist { key } => match self.live(key, now) {
                Some(entry) if entry.expires_at_ms.is_some() => {
                    entry.expires_at_ms = None;
                    Outcome::Integer(1)
                }
                _ => Outcome::Integer(0),
            },
            Op::Ttl { key } => Outcome::Lifetime(match self.live(key, now) {
                None => Lifetime::Missing,
                Some(entry) => entry.expires_at_ms.map_or(Lifetime::Forever, |at| Lifetime::Ms(at.saturating_sub(now))),
            }),
            Op::ExpireTime { key } => Outcome::Lifetime(match self.live(key, now) {
                None => Lifetime::Missing,
                Some(entry) => entry.expires_at_ms.map_or(Lifetime::Forever, Lifetime::Ms),
            }),
            Op::Length { key } => Outcome::Integer(self.live(key, now).map_or(0, |entry| entry.value.len() as i64)),
            Op::Count => {
                self.items.retain(|_, entry| entry.expires_at_ms.is_none_or(|at| at > now));
                Outcome::Integer(self.items.len() as i64)
            }
            Op::Flush => {
                self.items.clear();
                Outcome::Stored { cas: 0 }
            }
            Op::Scan { cursor, count, pattern } => {
                let mut keys: Vec<&Vec<u8>> = self.items.keys().collect();
                keys.sort();
                let start = *cursor as usize;
                let page: Vec<Vec<u8>> = keys
                    .iter()
                    .skip(start)
                    .take(*count)
                    .filter(|key| pattern.as_ref().is_none_or(|pattern| glob_match(pattern, key)))
                    .map(|key| (*key).clone())
                    .collect();
                let next = start.saturating_add(*count);
                let cursor = if next >= keys.len() { 0 } else { next as u64 };
                Outcome::Keys { cursor, keys: page }
            }
            Op::RandomKey => match self.items.keys().next() {
                Some(key) => Outcome::Keys { cursor: 0, keys: vec![key.clone()] },
                None => Outcome::Missing,
            },
            Op::Stats => Outcome::Figures(ShardFigures {
                items: self.items.len() as u64,
                bytes_limit: self.memory_bytes,
                hits: self.hits,
                misses: self.misses,
                ..ShardFigures::default()
            }),
        }
    }
}
