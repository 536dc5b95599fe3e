//! Random operation sequences against a simple model (a HashMap with expiry), on a DRAM store
//! and on a file store that is also closed and reopened (or copied as a crash would leave it)
//! between operations. Every answer is checked.

use persistent::{
    Condition, Expiry, ExpiryState, FlushPolicy, SetOptions, SetStatus, Store, StoreConfig,
    StoreError,
};
use platform::offload::SoftwareOffload;
use proptest::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;

const START_MS: u64 = 1_700_000_000_000;
/// Small segments so a few hundred operations fill, seal and free many of them.
const SEGMENT_BYTES: usize = 4096;
/// Large enough that nothing is ever evicted (the model does not evict).
const ARENA_BYTES: usize = 4096 + 512 * SEGMENT_BYTES;
const KEYS: usize = 6;
/// Compression on, with a low threshold, so LZ4 items go through every operation.
const COMPRESS_MIN_BYTES: usize = 48;

#[derive(Clone, Debug)]
enum Operation {
    Set {
        key: usize,
        value: Vec<u8>,
        condition: u8,
        expiry: Option<u64>,
        keep_ttl: bool,
        flags: u32,
        get: bool,
    },
    Get {
        key: usize,
    },
    Delete {
        key: usize,
    },
    Append {
        key: usize,
        data: Vec<u8>,
        front: bool,
    },
    IncrU64 {
        key: usize,
        delta: u64,
        down: bool,
    },
    IncrI64 {
        key: usize,
        delta: i64,
    },
    SetExpiry {
        key: usize,
        expiry: Option<u64>,
    },
    Persist {
        key: usize,
    },
    FlushAll,
    FlushAllAt {
        delay_ms: u64,
    },
    Advance {
        ms: u64,
    },
    Tick,
    Reopen {
        crash: bool,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    let key = 0..KEYS;
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        (0u64..1000).prop_map(|n| n.to_string().into_bytes()),
        Just(b"18446744073709551615".to_vec()),
        Just(b"-9223372036854775808".to_vec()),
        // Long and repetitive: stored LZ4-compressed.
        (COMPRESS_MIN_BYTES..300).prop_map(|len| vec![b'z'; len]),
    ];
    // Multiples of 100 ms on both sides, so items often expire exactly at `now_ms`.
    let expiry = proptest::option::of((0u64..40).prop_map(|tenths| tenths * 100));
    prop_oneof![
        6 => (key.clone(), value.clone(), 0u8..4, expiry.clone(), any::<bool>(), prop_oneof![Just(0u32), any::<u32>()], any::<bool>())
            .prop_map(|(key, value, condition, expiry, keep_ttl, flags, get)| Operation::Set { key, value, condition, expiry, keep_ttl, flags, get }),
        4 => key.clone().prop_map(|key| Operation::Get { key }),
        2 => key.clone().prop_map(|key| Operation::Delete { key }),
        2 => (key.clone(), proptest::collection::vec(any::<u8>(), 0..20), any::<bool>())
            .prop_map(|(key, data, front)| Operation::Append { key, data, front }),
        2 => (key.clone(), prop_oneof![0u64..10, Just(u64::MAX)], any::<bool>())
            .prop_map(|(key, delta, down)| Operation::IncrU64 { key, delta, down }),
        2 => (key.clone(), prop_oneof![-10i64..10, Just(i64::MAX), Just(i64::MIN)])
            .prop_map(|(key, delta)| Operation::IncrI64 { key, delta }),
        2 => (key.clone(), expiry).prop_map(|(key, expiry)| Operation::SetExpiry { key, expiry }),
        1 => key.prop_map(|key| Operation::Persist { key }),
        1 => Just(Operation::FlushAll),
        1 => (0u64..30).prop_map(|tenths| Operation::FlushAllAt { delay_ms: tenths * 100 }),
        3 => (0u64..15).prop_map(|tenths| Operation::Advance { ms: tenths * 100 }),
        1 => Just(Operation::Tick),
        1 => any::<bool>().prop_map(|crash| Operation::Reopen { crash }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    /// 0 = never.
    expiry_ms: u64,
    cas: u64,
}

/// The model: a map, and the same expiry rule.
struct Model {
    entries: HashMap<usize, Entry>,
    /// A pending delayed flush: everything goes at the first operation at or after it.
    flush_at_ms: Option<u64>,
}

impl Model {
    fn live(&mut self, key: usize, now_ms: u64) -> Option<&mut Entry> {
        if self.flush_at_ms.is_some_and(|at_ms| at_ms <= now_ms) {
            self.entries.clear();
            self.flush_at_ms = None;
        }
        if self
            .entries
            .get(&key)
            .is_some_and(|entry| entry.expiry_ms != 0 && entry.expiry_ms <= now_ms)
        {
            self.entries.remove(&key);
        }
        self.entries.get_mut(&key)
    }
}

/// An item as the iterator checks it: key, value, flags, expiry, CAS.
type ItemTuple = (Vec<u8>, Vec<u8>, u32, Option<u64>, u64);

fn key_name(key: usize) -> Vec<u8> {
    format!("key:{key}").into_bytes()
}

struct Subject {
    store: Option<Store>,
    config: StoreConfig,
    path: Option<PathBuf>,
}

impl Subject {
    fn store(&mut self) -> &mut Store {
        self.store.as_mut().expect("open")
    }

    /// Closes (or crashes) and reopens a file store; false for a DRAM store, which stays.
    fn reopen(&mut self, crash: bool, now_ms: u64) -> bool {
        let Some(path) = self.path.clone() else {
            return false;
        };
        if crash {
            // The file as a crash leaves it: copy it while the store still has it open.
            let copy = path.with_extension("crash");
            std::fs::copy(&path, &copy).unwrap();
            self.store = None;
            std::fs::rename(&copy, &path).unwrap();
        } else {
            self.store.take().expect("open").close().unwrap();
        }
        let store = Store::open(&self.config, Box::new(SoftwareOffload), now_ms).unwrap();
        let report = store.recovery_report();
        assert_eq!(
            (report.items_corrupt, report.segments_corrupt),
            (0, 0),
            "{report:?}"
        );
        assert_eq!(report.clean_shutdown, !crash);
        self.store = Some(store);
        true
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        self.store = None;
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn run(operations: Vec<Operation>, file: bool) -> Result<(), TestCaseError> {
    let (config, path) = if file {
        let path = std::env::temp_dir().join(format!(
            "ferrite-model-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let config = StoreConfig {
            segment_bytes: SEGMENT_BYTES,
            flush: FlushPolicy::No,
            compress_min_bytes: Some(COMPRESS_MIN_BYTES),
            ..StoreConfig::file(&path, ARENA_BYTES)
        };
        (config, Some(path))
    } else {
        (
            StoreConfig {
                segment_bytes: SEGMENT_BYTES,
                compress_min_bytes: Some(COMPRESS_MIN_BYTES),
                ..StoreConfig::dram(ARENA_BYTES)
            },
            None,
        )
    };
    let mut now_ms = START_MS;
    let store = Store::open(&config, Box::new(SoftwareOffload), now_ms).unwrap();
    let mut subject = Subject {
        store: Some(store),
        config,
        path,
    };
    let mut model = Model {
        entries: HashMap::new(),
        flush_at_ms: None,
    };
    for operation in operations {
        match operation {
            Operation::Set {
                key,
                value,
                condition,
                expiry,
                keep_ttl,
                flags,
                get,
            } => {
                let existing = model.live(key, now_ms).cloned();
                let condition = match condition {
                    0 => Condition::Always,
                    1 => Condition::IfAbsent,
                    2 => Condition::IfPresent,
                    _ => Condition::IfCas(
                        existing
                            .as_ref()
                            .map_or(7, |entry| entry.cas + u64::from(flags % 2 == 1)),
                    ),
                };
                let expiry = match (keep_ttl, expiry) {
                    (true, _) => Expiry::Keep,
                    (false, None) => Expiry::Never,
                    (false, Some(ms)) => Expiry::At(now_ms - 500 + ms),
                };
                let options = SetOptions {
                    condition,
                    expiry,
                    flags,
                    return_previous: get,
                };
                let result = subject
                    .store()
                    .set(&key_name(key), &value, &options, now_ms)
                    .unwrap();
                let expected_previous = if get {
                    existing.as_ref().map(|entry| entry.value.clone())
                } else {
                    None
                };
                prop_assert_eq!(&result.previous, &expected_previous);
                let expected_blocked = match (condition, &existing) {
                    (Condition::IfAbsent, Some(_)) | (Condition::IfPresent, None) => {
                        Some(SetStatus::NotStored)
                    }
                    (Condition::IfCas(_), None) => Some(SetStatus::NotFound),
                    (Condition::IfCas(cas), Some(entry)) if entry.cas != cas => {
                        Some(SetStatus::Exists)
                    }
                    _ => None,
                };
                match (expected_blocked, result.status) {
                    (Some(expected), status) => prop_assert_eq!(status, expected),
                    (None, SetStatus::Stored { cas }) => {
                        let expiry_ms = match expiry {
                            Expiry::Never => 0,
                            Expiry::At(at_ms) => at_ms,
                            Expiry::Keep => existing.map_or(0, |entry| entry.expiry_ms),
                        };
                        if expiry_ms != 0 && expiry_ms <= now_ms {
                            prop_assert_eq!(cas, 0);
                            model.entries.remove(&key);
                        } else {
                            model.entries.insert(
                                key,
                                Entry {
                                    value,
                                    flags,
                                    expiry_ms,
                                    cas,
                                },
                            );
                        }
                    }
                    (None, status) => prop_assert!(false, "expected Stored, got {:?}", status),
                }
            }
            Operation::Get { key } => {
                let expected = model.live(key, now_ms).cloned();
                let found = subject
                    .store()
                    .get(&key_name(key), now_ms)
                    .map(|item| Entry {
                        value: item.value.into_owned(),
                        flags: item.flags,
                        expiry_ms: item.expiry_ms.unwrap_or(0),
                        cas: item.cas,
                    });
                prop_assert_eq!(found, expected);
            }
            Operation::Delete { key } => {
                let expected = model.live(key, now_ms).is_some();
                model.entries.remove(&key);
                prop_assert_eq!(
                    subject.store().delete(&key_name(key), now_ms).unwrap(),
                    expected
                );
            }
            Operation::Append { key, data, front } => {
                let store = subject.store.as_mut().unwrap();
                let result = if front {
                    store.prepend(&key_name(key), &data, now_ms).unwrap()
                } else {
                    store.append(&key_name(key), &data, now_ms).unwrap()
                };
                let expected = model.live(key, now_ms).map(|entry| {
                    entry.value = if front {
                        [&data[..], &entry.value].concat()
                    } else {
                        [&entry.value[..], &data].concat()
                    };
                    entry.value.len()
                });
                prop_assert_eq!(result, expected);
                refresh_cas(&mut subject, &mut model, key, now_ms);
            }
            Operation::IncrU64 { key, delta, down } => {
                let store = subject.store.as_mut().unwrap();
                let result = if down {
                    store.decr_u64(&key_name(key), delta, now_ms)
                } else {
                    store.incr_u64(&key_name(key), delta, now_ms)
                };
                match model.live(key, now_ms) {
                    None => prop_assert!(matches!(result, Ok(None))),
                    Some(entry) => {
                        let parsed = std::str::from_utf8(&entry.value)
                            .ok()
                            .filter(|text| {
                                !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
                            })
                            .and_then(|text| text.parse::<u64>().ok());
                        match parsed {
                            None => prop_assert!(
                                matches!(result, Err(StoreError::NotAnInteger)),
                                "{:?}",
                                result
                            ),
                            Some(number) => {
                                let next = if down {
                                    number.saturating_sub(delta)
                                } else {
                                    number.wrapping_add(delta)
                                };
                                prop_assert_eq!(result.unwrap(), Some(next));
                                entry.value = next.to_string().into_bytes();
                            }
                        }
                    }
                }
                refresh_cas(&mut subject, &mut model, key, now_ms);
            }
            Operation::IncrI64 { key, delta } => {
                let result = subject.store().incr_i64(&key_name(key), delta, now_ms);
                let current = model.live(key, now_ms).map(|entry| entry.value.clone());
                let parsed = match &current {
                    None => Some(0),
                    Some(value) => std::str::from_utf8(value).ok().and_then(|text| {
                        text.parse::<i64>()
                            .ok()
                            .filter(|number| number.to_string() == text)
                    }),
                };
                match parsed {
                    None => prop_assert!(
                        matches!(result, Err(StoreError::NotAnInteger)),
                        "{:?}",
                        result
                    ),
                    Some(number) => match number.checked_add(delta) {
                        None => prop_assert!(
                            matches!(result, Err(StoreError::Overflow)),
                            "{:?}",
                            result
                        ),
                        Some(next) => {
                            prop_assert_eq!(result.unwrap(), next);
                            let entry = model.entries.entry(key).or_insert(Entry {
                                value: Vec::new(),
                                flags: 0,
                                expiry_ms: 0,
                                cas: 0,
                            });
                            entry.value = next.to_string().into_bytes();
                        }
                    },
                }
                refresh_cas(&mut subject, &mut model, key, now_ms);
            }
            Operation::SetExpiry { key, expiry } => {
                let expiry = expiry.map(|ms| now_ms - 500 + ms);
                let result = subject
                    .store()
                    .set_expiry(&key_name(key), expiry, now_ms)
                    .unwrap();
                let present = model.live(key, now_ms).is_some();
                prop_assert_eq!(result, present);
                if present {
                    match expiry {
                        Some(at_ms) if at_ms <= now_ms => {
                            model.entries.remove(&key);
                        }
                        _ => model.entries.get_mut(&key).unwrap().expiry_ms = expiry.unwrap_or(0),
                    }
                }
                refresh_cas(&mut subject, &mut model, key, now_ms);
            }
            Operation::Persist { key } => {
                let result = subject.store().persist(&key_name(key), now_ms).unwrap();
                let had_ttl = model
                    .live(key, now_ms)
                    .is_some_and(|entry| entry.expiry_ms != 0);
                prop_assert_eq!(result, had_ttl);
                if let Some(entry) = model.live(key, now_ms) {
                    entry.expiry_ms = 0;
                }
                refresh_cas(&mut subject, &mut model, key, now_ms);
            }
            Operation::FlushAll => {
                subject.store().flush_all(now_ms).unwrap();
                model.entries.clear();
                model.flush_at_ms = None;
            }
            Operation::FlushAllAt { delay_ms } => {
                subject
                    .store()
                    .flush_all_at(now_ms + delay_ms, now_ms)
                    .unwrap();
                model.flush_at_ms = Some(now_ms + delay_ms);
            }
            Operation::Advance { ms } => now_ms += ms,
            Operation::Tick => subject.store().tick(now_ms).unwrap(),
            Operation::Reopen { crash } => {
                if subject.reopen(crash, now_ms) {
                    // A delayed flush is not kept across a restart.
                    model.flush_at_ms = None;
                }
            }
        }
        // After every operation: the TTL view and the key count agree with the model.
        for key in 0..KEYS {
            let expected = match model.live(key, now_ms) {
                None => ExpiryState::Missing,
                Some(entry) if entry.expiry_ms == 0 => ExpiryState::Never,
                Some(entry) => ExpiryState::At(entry.expiry_ms),
            };
            prop_assert_eq!(
                subject.store().expiry(&key_name(key), now_ms),
                expected,
                "key {}",
                key
            );
        }
        prop_assert_eq!(subject.store().len(), model.entries.len());
        let stats = subject.store().stats();
        prop_assert_eq!(
            (stats.evicted_items, stats.items as usize),
            (0, model.entries.len())
        );
        // SCAN (two keys per call), the item iterator and RANDOMKEY see exactly the model's keys.
        let mut expected_keys: Vec<Vec<u8>> =
            model.entries.keys().map(|&key| key_name(key)).collect();
        expected_keys.sort();
        let mut scanned = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = subject
                .store()
                .scan(cursor, 2, now_ms, |key| scanned.push(key.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        scanned.sort();
        prop_assert_eq!(&scanned, &expected_keys);
        let mut items: Vec<ItemTuple> = subject
            .store()
            .items(now_ms)
            .map(|item| {
                (
                    item.key.to_vec(),
                    item.value.into_owned(),
                    item.flags,
                    item.expiry_ms,
                    item.cas,
                )
            })
            .collect();
        items.sort();
        let mut expected_items: Vec<ItemTuple> = model
            .entries
            .iter()
            .map(|(&key, entry)| {
                let expiry = (entry.expiry_ms != 0).then_some(entry.expiry_ms);
                (
                    key_name(key),
                    entry.value.clone(),
                    entry.flags,
                    expiry,
                    entry.cas,
                )
            })
            .collect();
        expected_items.sort();
        prop_assert_eq!(items, expected_items);
        let random = subject.store().random_key(now_ms);
        prop_assert_eq!(random.is_some(), !expected_keys.is_empty());
        if let Some(random) = random {
            prop_assert!(expected_keys.contains(&random));
        }
    }
    Ok(())
}

/// Operations that rewrite an item give it a new CAS; the model learns it from the store
/// (its uniqueness is checked by the CAS conditions of later sets).
fn refresh_cas(subject: &mut Subject, model: &mut Model, key: usize, now_ms: u64) {
    let cas = subject
        .store()
        .get(&key_name(key), now_ms)
        .map(|item| item.cas);
    if let (Some(entry), Some(cas)) = (model.live(key, now_ms), cas) {
        entry.cas = cas;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dram_store_matches_the_model(operations in proptest::collection::vec(operation(), 1..200)) {
        run(operations, false)?;
    }
}

proptest! {
    // Fewer cases: every reopen maps, walks and msyncs a file.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn file_store_matches_the_model_across_reopens(operations in proptest::collection::vec(operation(), 1..200)) {
        run(operations, true)?;
    }
}
