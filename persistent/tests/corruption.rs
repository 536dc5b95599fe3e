//! Corruption: random bits of a closed store file are flipped; reopening never serves a damaged
//! value (each key holds exactly its last written value, or nothing) and reports what it
//! skipped.

use persistent::{FlushPolicy, SetOptions, Store, StoreConfig};
use platform::offload::SoftwareOffload;
use std::collections::HashMap;

const NOW: u64 = 1_700_000_000_000;
const SEGMENT_BYTES: usize = 16 << 10;
const SUPERBLOCK_BYTES: usize = 4096;
const ARENA_BYTES: usize = SUPERBLOCK_BYTES + 64 * SEGMENT_BYTES;
const KEYS: u64 = 2_000;
const TRIALS: u64 = 40;
const FLIPS_MAX: u64 = 24;

fn splitmix(mut state: u64) -> u64 {
    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    state = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    state ^ (state >> 31)
}

#[test]
fn flipped_bits_are_skipped_and_counted_never_served() {
    let path = std::env::temp_dir().join(format!("ferrite-corruption-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = StoreConfig {
        segment_bytes: SEGMENT_BYTES,
        flush: FlushPolicy::No,
        ..StoreConfig::file(&path, ARENA_BYTES)
    };
    let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW).unwrap();
    let mut expected = HashMap::new();
    for index in 0..KEYS * 2 {
        let key = splitmix(index) % KEYS;
        let value =
            format!("{index}-{}", "v".repeat((splitmix(!index) % 200) as usize)).into_bytes();
        if index % 7 == 0 {
            store.delete(format!("key:{key}").as_bytes(), NOW).unwrap();
            expected.remove(&key);
        } else {
            store
                .set(
                    format!("key:{key}").as_bytes(),
                    &value,
                    &SetOptions::default(),
                    NOW,
                )
                .unwrap();
            expected.insert(key, value);
        }
    }
    assert_eq!(store.stats().evicted_items, 0);
    store.close().unwrap();
    let pristine = std::fs::read(&path).unwrap();

    let mut damaged_trials = 0;
    for trial in 0..TRIALS {
        let mut bytes = pristine.clone();
        let flips = 1 + splitmix(trial << 32) % FLIPS_MAX;
        for flip in 0..flips {
            let random = splitmix(trial << 32 | flip << 8 | 1);
            let position = SUPERBLOCK_BYTES + (random as usize) % (ARENA_BYTES - SUPERBLOCK_BYTES);
            bytes[position] ^= 1 << (random >> 60 & 7);
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW).unwrap();
        let report = store.recovery_report().clone();
        let mut missing = 0;
        for key in 0..KEYS {
            let found = store
                .get(format!("key:{key}").as_bytes(), NOW)
                .map(|item| item.value.into_owned());
            match (&found, expected.get(&key)) {
                (Some(found), Some(expected)) => {
                    assert_eq!(found, expected, "trial {trial}: key {key} damaged")
                }
                (Some(found), None) => {
                    panic!("trial {trial}: deleted key {key} came back as {found:?}")
                }
                (None, Some(_)) => missing += 1,
                (None, None) => {}
            }
        }
        if missing > 0 {
            damaged_trials += 1;
            assert!(
                report.items_corrupt + report.segments_corrupt > 0,
                "trial {trial}: {missing} items lost without being reported: {report:?}"
            );
        }
        drop(store);
    }
    let _ = std::fs::remove_file(&path);
    assert!(
        damaged_trials > TRIALS / 4,
        "the flips should hit items often: {damaged_trials} of {TRIALS}"
    );
}
