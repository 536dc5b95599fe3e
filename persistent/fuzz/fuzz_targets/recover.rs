//! Recovery of damaged store files. The input drives a real store (sets, appends, deletes,
//! expiries, with compression on) into a small file, then flips, overwrites and zeroes bytes of
//! the closed file; reopening must never panic, and everything it serves must be consistent:
//! every key the index counts can be read, scanned and iterated, and nothing else.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use persistent::{Expiry, FlushPolicy, SetOptions, Store, StoreConfig, StoreError};
use platform::offload::SoftwareOffload;

const NOW_MS: u64 = 1_700_000_000_000;
const SEGMENT_BYTES: usize = 4096;
const ARENA_BYTES: usize = common::SUPERBLOCK_BYTES + 8 * SEGMENT_BYTES;

fuzz_target!(|data: &[u8]| {
    let path = common::path("recover");
    let _ = std::fs::remove_file(&path);
    let config = StoreConfig {
        segment_bytes: SEGMENT_BYTES,
        flush: FlushPolicy::No,
        compress_min_bytes: Some(32),
        ..StoreConfig::file(&path, ARENA_BYTES)
    };
    // The first half writes, the second half damages.
    let (writes, damage) = data.split_at(data.len() / 2);
    let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW_MS).expect("create");
    for chunk in writes.chunks(4) {
        let &[op, key, len, fill] = chunk else { break };
        let key = [b'k', key % 16];
        let value = vec![fill; len as usize * 4];
        let result = match op % 5 {
            0 | 1 => store
                .set(&key, &value, &SetOptions::default(), NOW_MS)
                .map(|_| ()),
            2 => store.append(&key, &value, NOW_MS).map(|_| ()),
            3 => store.delete(&key, NOW_MS).map(|_| ()),
            _ => {
                let options = SetOptions {
                    expiry: Expiry::At(NOW_MS + fill as u64),
                    ..SetOptions::default()
                };
                store.set(&key, &value, &options, NOW_MS).map(|_| ())
            }
        };
        // Appends may outgrow a segment: that is the one error a write may give here.
        if let Err(error) = result {
            assert!(matches!(error, StoreError::ItemTooLarge { .. }), "{error}");
        }
    }
    store.close().expect("close");
    common::damage_file(&path, ARENA_BYTES, damage);
    let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW_MS)
        .expect("segment damage never fails an open");
    let scanned = common::scan_all(&mut store, NOW_MS);
    for key in &scanned {
        assert!(store.get(key, NOW_MS).is_some());
    }
    drop(store);
    let _ = std::fs::remove_file(&path);
});
