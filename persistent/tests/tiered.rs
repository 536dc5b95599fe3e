//! The tiered store: a small DRAM hot tier over a cold file tier. Demotion (and its admission
//! rule), promotion, deletes and overwrites across tiers, restart, cold compression (and when it
//! is skipped), damaged cold items, and random operation sequences against a model.

use persistent::{
    Admission, ColdTierConfig, Condition, Expiry, ExpiryState, FlushPolicy, SetOptions, SetStatus,
    Store, StoreConfig, StoreError,
};
use platform::offload::SoftwareOffload;
use proptest::prelude::*;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const NOW: u64 = 1_700_000_000_000;
const SEGMENT_BYTES: usize = 4096;
const SUPERBLOCK_BYTES: usize = 4096;
/// Four hot segments: a few dozen items fill the hot tier.
const HOT_BYTES: usize = SUPERBLOCK_BYTES + 4 * SEGMENT_BYTES;
/// Room for everything the tests write, so the cold tier never evicts.
const COLD_BYTES: usize = SUPERBLOCK_BYTES + 512 * SEGMENT_BYTES;
const WINDOW_MS: u64 = 1_000;

/// A temporary cold file, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        let path = std::env::temp_dir().join(format!(
            "ferrite-tiered-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn config(path: &Path, admission: Admission) -> StoreConfig {
    StoreConfig {
        segment_bytes: SEGMENT_BYTES,
        flush: FlushPolicy::No,
        cold: Some(ColdTierConfig {
            admission,
            promote_window_ms: WINDOW_MS,
            ..ColdTierConfig::new(path, COLD_BYTES)
        }),
        ..StoreConfig::dram(HOT_BYTES)
    }
}

fn open(config: &StoreConfig, now_ms: u64) -> Store {
    Store::open_tiered(
        config,
        Box::new(SoftwareOffload),
        Box::new(SoftwareOffload),
        now_ms,
    )
    .expect("open the tiered store")
}

fn key(index: usize) -> Vec<u8> {
    format!("key:{index}").into_bytes()
}

/// A JSON-like record: compresses well, and unique per (index, version).
fn record(index: usize, version: usize) -> Vec<u8> {
    format!(
        "{{\"id\":{index},\"version\":{version},\"name\":\"user-{index}\",\"tags\":[\"alpha\",\"beta\",\"gamma\"],\"bio\":\"{}\"}}",
        "lorem ipsum dolor sit amet ".repeat(8)
    )
    .into_bytes()
}

fn set(store: &mut Store, key: &[u8], value: &[u8], now_ms: u64) {
    let result = store
        .set(key, value, &SetOptions::default(), now_ms)
        .unwrap();
    assert!(matches!(result.status, SetStatus::Stored { .. }));
}

fn value(store: &mut Store, key: &[u8], now_ms: u64) -> Option<Vec<u8>> {
    store.get(key, now_ms).map(|item| item.value.into_owned())
}

fn cold_items(store: &Store) -> u64 {
    store.tier_stats().unwrap().cold.items
}

#[test]
fn a_full_hot_tier_demotes_instead_of_evicting_and_a_restart_keeps_everything() {
    let path = TempPath::new("demote");
    let config = config(&path.0, Admission::All);
    let mut store = open(&config, NOW);
    const KEYS: usize = 200;
    for index in 0..KEYS {
        set(&mut store, &key(index), &record(index, 0), NOW);
    }
    let tier = store.tier_stats().unwrap();
    assert!(
        tier.demoted_items > 0 && tier.demoted_segments > 0,
        "{tier:?}"
    );
    assert_eq!(
        (store.stats().evicted_items, tier.cold.evicted_items),
        (0, 0)
    );
    assert_eq!(store.len(), KEYS);
    assert_eq!(store.stats().items, KEYS as u64);
    assert!(
        tier.cold.compressed_items > 0,
        "JSON records compress: {tier:?}"
    );
    for index in 0..KEYS {
        assert_eq!(value(&mut store, &key(index), NOW), Some(record(index, 0)));
    }
    // No key is in both tiers: the iterator sees each once.
    let mut seen: Vec<Vec<u8>> = store.items(NOW).map(|item| item.key.to_vec()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), KEYS);
    store.close().unwrap();
    let mut store = open(&config, NOW);
    assert!(store.recovery_report().clean_shutdown);
    assert_eq!(store.len(), KEYS);
    assert_eq!(
        cold_items(&store),
        KEYS as u64,
        "shutdown demoted the hot tier"
    );
    for index in 0..KEYS {
        assert_eq!(value(&mut store, &key(index), NOW), Some(record(index, 0)));
    }
}

#[test]
fn only_items_read_in_dram_or_written_again_are_admitted_to_the_cold_tier() {
    let path = TempPath::new("admission");
    let mut store = open(&config(&path.0, Admission::Reused), NOW);
    // The first 20 keys are read once; the next ones are written and never read.
    for index in 0..20 {
        set(&mut store, &key(index), &record(index, 0), NOW);
        assert!(store.get(&key(index), NOW).is_some());
    }
    for index in 20..200 {
        set(&mut store, &key(index), &record(index, 0), NOW);
    }
    let tier = store.tier_stats().unwrap();
    assert!(tier.rejected_items > 0, "{tier:?}");
    assert_eq!(tier.demoted_items, 20, "{tier:?}");
    for index in 0..20 {
        assert_eq!(value(&mut store, &key(index), NOW), Some(record(index, 0)));
    }
    let held = (20..200)
        .filter(|&index| store.contains(&key(index), NOW))
        .count();
    assert_eq!(
        held as u64 + tier.rejected_items,
        180,
        "each unread key is held in DRAM or was kept out"
    );
    // A kept-out key written again is not a one-hit wonder: its next demotion is admitted,
    // even unread (unless a later refusal took its slot of the filter: rare, hence the margin).
    let dropped: Vec<usize> = (20..200)
        .filter(|&index| !store.contains(&key(index), NOW))
        .collect();
    for &index in &dropped {
        set(&mut store, &key(index), &record(index, 1), NOW);
    }
    for index in 1000..1200 {
        set(&mut store, &key(index), &record(index, 0), NOW);
    }
    let back = dropped
        .iter()
        .filter(|&&index| value(&mut store, &key(index), NOW) == Some(record(index, 1)))
        .count();
    assert!(
        back + 5 >= dropped.len(),
        "{back} of {} rewritten keys admitted",
        dropped.len()
    );
}

#[test]
fn a_second_read_within_the_window_promotes() {
    let path = TempPath::new("promote");
    let mut store = open(&config(&path.0, Admission::All), NOW);
    for index in 0..200 {
        set(&mut store, &key(index), &record(index, 0), NOW);
    }
    let cold_before = cold_items(&store);
    // key 0 was written first: it is in the cold tier now.
    let first = store.get(&key(0), NOW).unwrap();
    assert_eq!(&*first.value, &record(0, 0)[..]);
    let cold_cas = first.cas;
    assert_eq!(cold_items(&store), cold_before, "one read does not promote");
    // A second read after the window: still not hot enough.
    assert!(store.get(&key(0), NOW + WINDOW_MS + 1).is_some());
    assert_eq!(store.tier_stats().unwrap().promoted_items, 0);
    // A second read within the window moves it to DRAM, with a new CAS.
    let promoted = store.get(&key(0), NOW + WINDOW_MS + 2).unwrap();
    assert_eq!(&*promoted.value, &record(0, 0)[..]);
    assert_ne!(promoted.cas, cold_cas);
    let tier = store.tier_stats().unwrap();
    assert_eq!((tier.promoted_items, tier.cold_hits), (1, 3));
    assert_eq!(tier.cold.items, cold_before - 1);
    assert_eq!(store.len(), 200);
}

#[test]
fn writes_and_deletes_reach_the_cold_tier_and_stay_done_after_a_restart() {
    let path = TempPath::new("writes");
    let config = config(&path.0, Admission::All);
    let mut store = open(&config, NOW);
    for index in 0..200 {
        set(&mut store, &key(index), &record(index, 0), NOW);
    }
    // Keys 0..5 are cold now. Overwrite, delete, append, count, expire and cas them.
    set(&mut store, &key(0), b"new", NOW);
    assert!(store.delete(&key(1), NOW).unwrap());
    assert_eq!(
        store.append(&key(2), b"!", NOW).unwrap(),
        Some(record(2, 0).len() + 1)
    );
    set(&mut store, &key(199), b"41", NOW);
    assert!(store.set_expiry(&key(3), Some(NOW + 50), NOW).unwrap());
    let cold_cas = store.get(&key(4), NOW).unwrap().cas;
    let result = store
        .set(
            &key(4),
            b"swapped",
            &SetOptions {
                condition: Condition::IfCas(cold_cas),
                ..SetOptions::default()
            },
            NOW,
        )
        .unwrap();
    assert!(
        matches!(result.status, SetStatus::Stored { .. }),
        "{result:?}"
    );
    let result = store
        .set(
            &key(5),
            b"x",
            &SetOptions {
                expiry: Expiry::At(NOW - 1),
                ..SetOptions::default()
            },
            NOW,
        )
        .unwrap();
    assert_eq!(result.status, SetStatus::Stored { cas: 0 });
    // Push the changed keys out of DRAM again and restart.
    for index in 200..400 {
        set(&mut store, &key(index), &record(index, 0), NOW);
    }
    store.close().unwrap();
    let mut store = open(&config, NOW + 100);
    assert_eq!(
        value(&mut store, &key(0), NOW + 100).as_deref(),
        Some(&b"new"[..])
    );
    assert_eq!(value(&mut store, &key(1), NOW + 100), None);
    let mut appended = record(2, 0);
    appended.push(b'!');
    assert_eq!(value(&mut store, &key(2), NOW + 100), Some(appended));
    assert_eq!(value(&mut store, &key(3), NOW + 100), None, "expired");
    assert_eq!(
        value(&mut store, &key(4), NOW + 100).as_deref(),
        Some(&b"swapped"[..])
    );
    assert_eq!(value(&mut store, &key(5), NOW + 100), None);
    assert_eq!(store.incr_u64(&key(199), 1, NOW + 100).unwrap(), Some(42));
    assert_eq!(store.len(), 400 - 3);
}

#[test]
fn a_crash_loses_at_most_the_hot_tier_and_brings_nothing_deleted_back() {
    let path = TempPath::new("crash");
    let config = config(&path.0, Admission::All);
    let mut store = open(&config, NOW);
    let mut latest: HashMap<usize, Option<Vec<u8>>> = HashMap::new();
    for round in 0..3 {
        for index in 0..150 {
            let value = record(index, round);
            set(&mut store, &key(index), &value, NOW);
            latest.insert(index, Some(value));
            if index % 5 == round {
                store.delete(&key(index), NOW).unwrap();
                latest.insert(index, None);
            }
        }
    }
    // The file as a crash leaves it: copied while the store still has it open.
    let copy = TempPath::new("crash-copy");
    std::fs::copy(&path.0, &copy.0).unwrap();
    drop(store);
    std::fs::rename(&copy.0, &path.0).unwrap();
    let mut store = open(&config, NOW);
    let report = store.recovery_report().clone();
    assert!(!report.clean_shutdown);
    assert_eq!((report.items_corrupt, report.segments_corrupt), (0, 0));
    assert!(report.items_restored > 0, "{report:?}");
    for (index, expected) in &latest {
        let found = value(&mut store, &key(*index), NOW);
        assert!(
            found.is_none() || found == *expected,
            "key {index}: an old or deleted value came back"
        );
    }
}

#[test]
fn values_that_do_not_compress_enough_are_stored_raw() {
    let path = TempPath::new("ratio");
    // 600 bytes of noise then 200 zeros: LZ4 saves about a quarter (ratio near 1.3).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noisy = |index: usize, zeros: usize| {
        let mut value: Vec<u8> = (0..600)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        value.resize(600 + zeros, 0);
        value[0] = index as u8;
        value
    };
    let mut fill = |store: &mut Store, values: &mut Vec<Vec<u8>>, zeros: usize| {
        for index in 0..60 {
            let value = noisy(index, zeros);
            set(store, &key(index), &value, NOW);
            values.push(value);
        }
    };
    // Pure noise never pays: every demoted value stays raw.
    let mut store = open(&config(&path.0, Admission::All), NOW);
    let mut values = Vec::new();
    fill(&mut store, &mut values, 0);
    store.close().unwrap();
    let mut store = open(&config(&path.0, Admission::All), NOW);
    let tier = store.tier_stats().unwrap();
    assert_eq!(tier.cold.compressed_items, 0);
    for (index, value) in values.iter().enumerate() {
        assert_eq!(
            store
                .get(&key(index), NOW)
                .map(|item| item.value.into_owned())
                .as_ref(),
            Some(value)
        );
    }
    drop(store);
    // The same values with a zero tail compress by about 1.3x: kept at a 1.25 ratio, refused
    // at 1.5.
    for (ratio_percent, compressed) in [(125, true), (150, false)] {
        let path = TempPath::new(&format!("ratio-{ratio_percent}"));
        let config = StoreConfig {
            compress_ratio_min_percent: ratio_percent,
            ..config(&path.0, Admission::All)
        };
        let mut store = open(&config, NOW);
        let mut values = Vec::new();
        fill(&mut store, &mut values, 200);
        let tier = store.tier_stats().unwrap();
        assert!(tier.demoted_items > 0);
        if compressed {
            assert_eq!(tier.cold.compressed_items, tier.demoted_items, "{tier:?}");
            assert_eq!(tier.cold.compress_skipped, 0);
            assert!(
                tier.cold.compressed_stored_bytes * 125 <= tier.cold.compressed_raw_bytes * 100
            );
        } else {
            assert_eq!(tier.cold.compressed_items, 0, "{tier:?}");
            assert_eq!(tier.cold.compress_skipped, tier.demoted_items);
        }
        for (index, value) in values.iter().enumerate() {
            assert_eq!(value_of(&mut store, index).as_ref(), Some(value));
        }
    }
}

fn value_of(store: &mut Store, index: usize) -> Option<Vec<u8>> {
    value(store, &key(index), NOW)
}

/// Where `needle` first occurs in the file, past the superblock.
fn find_in_file(path: &Path, needle: &[u8]) -> usize {
    let bytes = std::fs::read(path).unwrap();
    SUPERBLOCK_BYTES
        + bytes[SUPERBLOCK_BYTES..]
            .windows(needle.len())
            .position(|window| window == needle)
            .expect("the key is in the file")
}

#[test]
fn a_damaged_compressed_cold_item_is_counted_and_never_served() {
    let path = TempPath::new("damage");
    let config = config(&path.0, Admission::All);
    let mut store = open(&config, NOW);
    for index in 0..200 {
        set(&mut store, &key(index), &record(index, 0), NOW);
    }
    store.close().unwrap();
    // Damage key:7's compressed value while the store runs (through the file, which the
    // mapping shares), then key:8's while it is closed.
    let mut store = open(&config, NOW);
    assert!(store.tier_stats().unwrap().cold.items == 200);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path.0)
        .unwrap();
    let damage = |needle: &[u8]| {
        let at = find_in_file(&path.0, needle) + needle.len() + 4;
        let mut byte = [0u8; 1];
        file.read_at(&mut byte, at as u64).unwrap();
        file.write_at(&[byte[0] ^ 0x20], at as u64).unwrap();
    };
    damage(b"key:7");
    assert_eq!(value(&mut store, b"key:7", NOW), None);
    assert_eq!(store.tier_stats().unwrap().cold.corrupt_items, 1);
    assert_eq!(
        value(&mut store, b"key:7", NOW),
        None,
        "dropped, not retried"
    );
    assert_eq!(store.len(), 199);
    store.close().unwrap();
    damage(b"key:8");
    drop(file);
    let mut store = open(&config, NOW);
    // key:8, and key:7 again: marked dead, its bytes still fail their check.
    assert_eq!(store.recovery_report().items_corrupt, 2);
    assert_eq!(value(&mut store, b"key:8", NOW), None);
    for index in (0..200).filter(|&index| index != 7 && index != 8) {
        assert_eq!(value(&mut store, &key(index), NOW), Some(record(index, 0)));
    }
}

#[test]
fn a_tiered_configuration_needs_two_engines_and_a_dram_hot_tier() {
    let path = TempPath::new("config");
    let config = config(&path.0, Admission::All);
    assert!(matches!(
        Store::open(&config, Box::new(SoftwareOffload), NOW),
        Err(StoreError::Config { .. })
    ));
    let on_file = StoreConfig {
        arena: persistent::ArenaConfig::File {
            path: path.0.with_extension("hot"),
            bytes: HOT_BYTES,
        },
        ..config.clone()
    };
    assert!(matches!(
        Store::open_tiered(
            &on_file,
            Box::new(SoftwareOffload),
            Box::new(SoftwareOffload),
            NOW
        ),
        Err(StoreError::Config { .. })
    ));
    let low_ratio = StoreConfig {
        compress_ratio_min_percent: 99,
        ..config
    };
    assert!(matches!(
        Store::open_tiered(
            &low_ratio,
            Box::new(SoftwareOffload),
            Box::new(SoftwareOffload),
            NOW
        ),
        Err(StoreError::Config { .. })
    ));
}

// ---- Random sequences against a model ----

const MODEL_KEYS: usize = 40;

#[derive(Clone, Debug)]
enum Operation {
    Set {
        key: usize,
        len: usize,
        condition: u8,
        expiry: Option<u64>,
        flags: u32,
    },
    Get {
        key: usize,
    },
    Delete {
        key: usize,
    },
    Append {
        key: usize,
    },
    Incr {
        key: usize,
    },
    SetExpiry {
        key: usize,
        expiry: Option<u64>,
    },
    Advance {
        ms: u64,
    },
    Tick,
    FlushAll,
    Reopen,
}

fn operation() -> impl Strategy<Value = Operation> {
    let key = 0..MODEL_KEYS;
    let expiry = proptest::option::of((0u64..40).prop_map(|tenths| tenths * 100));
    prop_oneof![
        8 => (key.clone(), 0usize..400, 0u8..4, expiry.clone(), prop_oneof![Just(0u32), any::<u32>()])
            .prop_map(|(key, len, condition, expiry, flags)| Operation::Set { key, len, condition, expiry, flags }),
        6 => key.clone().prop_map(|key| Operation::Get { key }),
        2 => key.clone().prop_map(|key| Operation::Delete { key }),
        1 => key.clone().prop_map(|key| Operation::Append { key }),
        1 => key.clone().prop_map(|key| Operation::Incr { key }),
        1 => (key, expiry).prop_map(|(key, expiry)| Operation::SetExpiry { key, expiry }),
        2 => (0u64..8).prop_map(|tenths| Operation::Advance { ms: tenths * 100 }),
        1 => Just(Operation::Tick),
        1 => Just(Operation::FlushAll),
        1 => Just(Operation::Reopen),
    ]
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    expiry_ms: u64,
    cas: u64,
}

fn live(model: &mut HashMap<usize, Entry>, key: usize, now_ms: u64) -> Option<&mut Entry> {
    if model
        .get(&key)
        .is_some_and(|entry| entry.expiry_ms != 0 && entry.expiry_ms <= now_ms)
    {
        model.remove(&key);
    }
    model.get_mut(&key)
}

fn run(operations: Vec<Operation>) -> Result<(), TestCaseError> {
    let path = TempPath::new("model");
    let config = config(&path.0, Admission::All);
    let mut now_ms = NOW;
    let mut store = Some(open(&config, now_ms));
    let mut model: HashMap<usize, Entry> = HashMap::new();
    for (step, operation) in operations.into_iter().enumerate() {
        let subject = store.as_mut().unwrap();
        match operation {
            Operation::Set {
                key: index,
                len,
                condition,
                expiry,
                flags,
            } => {
                let existing = live(&mut model, index, now_ms).cloned();
                let condition = match condition {
                    0 => Condition::Always,
                    1 => Condition::IfAbsent,
                    2 => Condition::IfPresent,
                    _ => Condition::IfCas(
                        existing
                            .as_ref()
                            .map_or(7, |entry| entry.cas + u64::from(flags % 2)),
                    ),
                };
                let expiry_ms = expiry.map_or(0, |ms| now_ms - 500 + ms);
                let value = format!("{step}:{}", "json".repeat(len / 4)).into_bytes();
                let options = SetOptions {
                    condition,
                    expiry: if expiry_ms == 0 {
                        Expiry::Never
                    } else {
                        Expiry::At(expiry_ms)
                    },
                    flags,
                    return_previous: false,
                };
                let status = subject
                    .set(&key(index), &value, &options, now_ms)
                    .unwrap()
                    .status;
                let expected = match (condition, &existing) {
                    (Condition::IfAbsent, Some(_)) | (Condition::IfPresent, None) => {
                        SetStatus::NotStored
                    }
                    (Condition::IfCas(_), None) => SetStatus::NotFound,
                    (Condition::IfCas(cas), Some(entry)) if entry.cas != cas => SetStatus::Exists,
                    _ => {
                        if expiry_ms != 0 && expiry_ms <= now_ms {
                            model.remove(&index);
                        } else {
                            model.insert(
                                index,
                                Entry {
                                    value,
                                    flags,
                                    expiry_ms,
                                    cas: 0,
                                },
                            );
                        }
                        status
                    }
                };
                prop_assert_eq!(status, expected);
            }
            Operation::Get { key: index } => {
                let found = subject.get(&key(index), now_ms).map(|item| Entry {
                    value: item.value.into_owned(),
                    flags: item.flags,
                    expiry_ms: item.expiry_ms.unwrap_or(0),
                    cas: item.cas,
                });
                let expected = live(&mut model, index, now_ms).cloned();
                prop_assert_eq!(found.is_some(), expected.is_some());
                if let (Some(found), Some(expected)) = (found, expected) {
                    prop_assert_eq!(
                        (&found.value, found.flags, found.expiry_ms),
                        (&expected.value, expected.flags, expected.expiry_ms)
                    );
                    // The CAS a read reports is the item's current one (it may have moved).
                    model.get_mut(&index).unwrap().cas = found.cas;
                }
            }
            Operation::Delete { key: index } => {
                let expected = live(&mut model, index, now_ms).is_some();
                model.remove(&index);
                prop_assert_eq!(subject.delete(&key(index), now_ms).unwrap(), expected);
            }
            Operation::Append { key: index } => {
                let result = subject.append(&key(index), b"+", now_ms).unwrap();
                let expected = live(&mut model, index, now_ms).map(|entry| {
                    entry.value.push(b'+');
                    entry.value.len()
                });
                prop_assert_eq!(result, expected);
            }
            Operation::Incr { key: index } => {
                let result = subject.incr_i64(&key(index), 1, now_ms);
                let current = live(&mut model, index, now_ms).map(|entry| entry.value.clone());
                let parsed = match &current {
                    None => Some(0i64),
                    Some(value) => std::str::from_utf8(value).ok().and_then(|text| {
                        text.parse::<i64>().ok().filter(|n| n.to_string() == text)
                    }),
                };
                match parsed {
                    None => prop_assert!(matches!(result, Err(StoreError::NotAnInteger))),
                    Some(number) => {
                        prop_assert_eq!(result.unwrap(), number + 1);
                        let entry = model.entry(index).or_insert(Entry {
                            value: Vec::new(),
                            flags: 0,
                            expiry_ms: 0,
                            cas: 0,
                        });
                        entry.value = (number + 1).to_string().into_bytes();
                    }
                }
            }
            Operation::SetExpiry { key: index, expiry } => {
                let expiry = expiry.map(|ms| now_ms - 500 + ms);
                let result = subject.set_expiry(&key(index), expiry, now_ms).unwrap();
                let present = live(&mut model, index, now_ms).is_some();
                prop_assert_eq!(result, present);
                if present {
                    match expiry {
                        Some(at_ms) if at_ms <= now_ms => {
                            model.remove(&index);
                        }
                        _ => model.get_mut(&index).unwrap().expiry_ms = expiry.unwrap_or(0),
                    }
                }
            }
            Operation::Advance { ms } => now_ms += ms,
            Operation::Tick => subject.tick(now_ms).unwrap(),
            Operation::FlushAll => {
                subject.flush_all(now_ms).unwrap();
                model.clear();
            }
            Operation::Reopen => {
                store.take().unwrap().close().unwrap();
                store = Some(open(&config, now_ms));
            }
        }
        let subject = store.as_mut().unwrap();
        // Every key: the TTL view agrees with the model.
        for index in 0..MODEL_KEYS {
            let expected = match live(&mut model, index, now_ms) {
                None => ExpiryState::Missing,
                Some(entry) if entry.expiry_ms == 0 => ExpiryState::Never,
                Some(entry) => ExpiryState::At(entry.expiry_ms),
            };
            prop_assert_eq!(
                subject.expiry(&key(index), now_ms),
                expected,
                "key {}",
                index
            );
        }
        prop_assert_eq!(subject.len(), model.len());
        let tier = subject.tier_stats().unwrap();
        prop_assert_eq!(
            (
                subject.stats().evicted_items,
                tier.cold.evicted_items,
                tier.cold.corrupt_items
            ),
            (0, 0, 0)
        );
        // The iterator sees each model key once (never in both tiers), with its value; the
        // model learns each item's current CAS from it.
        let mut items: Vec<(Vec<u8>, Vec<u8>, u32, u64)> = subject
            .items(now_ms)
            .map(|item| {
                (
                    item.key.to_vec(),
                    item.value.into_owned(),
                    item.flags,
                    item.cas,
                )
            })
            .collect();
        items.sort();
        let mut expected: Vec<(Vec<u8>, Vec<u8>, u32)> = model
            .iter()
            .map(|(&index, entry)| (key(index), entry.value.clone(), entry.flags))
            .collect();
        expected.sort();
        let found: Vec<(Vec<u8>, Vec<u8>, u32)> = items
            .iter()
            .map(|(k, v, f, _)| (k.clone(), v.clone(), *f))
            .collect();
        prop_assert_eq!(found, expected);
        for (item_key, _, _, cas) in items {
            let index: usize = std::str::from_utf8(&item_key[4..])
                .unwrap()
                .parse()
                .unwrap();
            model.get_mut(&index).unwrap().cas = cas;
        }
        // SCAN over both tiers sees exactly the model's keys.
        let mut scanned = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = subject.scan(cursor, 3, now_ms, |key| scanned.push(key.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        scanned.sort();
        let mut keys: Vec<Vec<u8>> = model.keys().map(|&index| key(index)).collect();
        keys.sort();
        prop_assert_eq!(scanned, keys);
        let random = subject.random_key(now_ms);
        prop_assert_eq!(random.is_some(), !model.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tiered_store_matches_the_model(operations in proptest::collection::vec(operation(), 1..250)) {
        run(operations)?;
    }
}
