//! The tiered store against a map, then its cold file damaged. The input drives a store with a
//! DRAM tier of four small segments over a file tier of eight (sets, appends, deletes, reads
//! that promote), so items keep moving between tiers and the file tier evicts; every value read
//! must be the key's last written one (or missing, once evicted: never an older or deleted one).
//! After a close (which demotes the DRAM tier) bytes of the file are flipped, overwritten and
//! zeroed; the reopened store must serve only last-written values and be consistent: every key
//! it counts can be read, scanned and iterated.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use persistent::{
    Admission, ColdTierConfig, FlushPolicy, SetOptions, Store, StoreConfig, StoreError,
};
use platform::offload::SoftwareOffload;
use std::collections::HashMap;

const NOW_MS: u64 = 1_700_000_000_000;
const SEGMENT_BYTES: usize = 4096;
const HOT_BYTES: usize = common::SUPERBLOCK_BYTES + 4 * SEGMENT_BYTES;
const COLD_BYTES: usize = common::SUPERBLOCK_BYTES + 8 * SEGMENT_BYTES;
/// Reads within this window promote; the fuzzer's clock advances by the input.
const WINDOW_MS: u64 = 100;

fn open(config: &StoreConfig) -> Store {
    Store::open_tiered(
        config,
        Box::new(SoftwareOffload),
        Box::new(SoftwareOffload),
        NOW_MS,
    )
    .expect("damage to the file's segments never fails an open")
}

fn check(store: &mut Store, model: &HashMap<u8, Vec<u8>>, now_ms: u64) {
    for (key, expected) in model {
        if let Some(item) = store.get(&[b'k', *key], now_ms) {
            assert_eq!(&*item.value, &expected[..], "key {key}: not its last value");
        }
    }
    for key in 0..=u8::MAX {
        if !model.contains_key(&key) {
            assert!(
                store.get(&[b'k', key], now_ms).is_none(),
                "key {key} came back"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&policy, data)) = data.split_first() else {
        return;
    };
    let path = common::path("tiered");
    let _ = std::fs::remove_file(&path);
    let config = StoreConfig {
        segment_bytes: SEGMENT_BYTES,
        flush: FlushPolicy::No,
        cold: Some(ColdTierConfig {
            admission: if policy % 2 == 0 {
                Admission::All
            } else {
                Admission::Reused
            },
            compress_min_bytes: 32,
            promote_window_ms: WINDOW_MS,
            ..ColdTierConfig::new(&path, COLD_BYTES)
        }),
        ..StoreConfig::dram(HOT_BYTES)
    };
    // The first half drives the store, the second half damages its file.
    let (operations, damage) = data.split_at(data.len() / 2);
    let mut store = open(&config);
    let mut model: HashMap<u8, Vec<u8>> = HashMap::new();
    let mut now_ms = NOW_MS;
    for chunk in operations.chunks(4) {
        let &[op, key_byte, len, fill] = chunk else {
            break;
        };
        let key_id = key_byte % 32;
        let key = [b'k', key_id];
        let value = vec![fill; len as usize * 4];
        now_ms += u64::from(op >> 4) * 10;
        let result = match op % 6 {
            0 | 1 => store
                .set(&key, &value, &SetOptions::default(), now_ms)
                .map(|_| {
                    model.insert(key_id, value.clone());
                }),
            2 => store.append(&key, &value, now_ms).map(|appended| {
                if appended.is_some() {
                    model
                        .get_mut(&key_id)
                        .expect("appended to a held key")
                        .extend_from_slice(&value);
                }
            }),
            3 => store.delete(&key, now_ms).map(|_| {
                model.remove(&key_id);
            }),
            _ => {
                if let Some(item) = store.get(&key, now_ms) {
                    assert_eq!(
                        Some(&*item.value),
                        model.get(&key_id).map(|value| &value[..])
                    );
                }
                Ok(())
            }
        };
        match result {
            Ok(()) => {}
            // Appends may outgrow a segment: that is the one error a write may give here.
            Err(StoreError::ItemTooLarge { .. }) => {}
            Err(error) => panic!("{error}"),
        }
        // Evicted from the file tier: the model forgets what the store no longer holds.
        model.retain(|key_id, _| store.contains(&[b'k', *key_id], now_ms));
    }
    check(&mut store, &model, now_ms);
    store.close().expect("close");
    common::damage_file(&path, COLD_BYTES, damage);
    let mut store = open(&config);
    let scanned = common::scan_all(&mut store, now_ms);
    check(&mut store, &model, now_ms);
    for key in &scanned {
        assert!(store.get(key, now_ms).is_some());
    }
    drop(store);
    let _ = std::fs::remove_file(&path);
});
