//! Recovery of damaged store files. The input drives a real store (sets, appends, deletes,
//! expiries, with compression on) into a small file, then flips, overwrites and zeroes bytes of
//! the closed file; reopening must never panic, and everything it serves must be consistent:
//! every key the index counts can be read, scanned and iterated, and nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use persistent::{Expiry, FlushPolicy, SetOptions, Store, StoreConfig, StoreError};
use platform::offload::SoftwareOffload;
use std::path::PathBuf;

const NOW_MS: u64 = 1_700_000_000_000;
const SEGMENT_BYTES: usize = 4096;
const SUPERBLOCK_BYTES: usize = 4096;
const ARENA_BYTES: usize = SUPERBLOCK_BYTES + 8 * SEGMENT_BYTES;

fn path() -> PathBuf {
    let directory = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    directory.join(format!("ferrite-fuzz-recover-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let path = path();
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
    let mut bytes = std::fs::read(&path).expect("read back");
    for chunk in damage.chunks(4) {
        let &[high, low, mode, value] = chunk else {
            break;
        };
        let position = SUPERBLOCK_BYTES
            + (u16::from_le_bytes([low, high]) as usize) % (ARENA_BYTES - SUPERBLOCK_BYTES);
        match mode % 3 {
            0 => bytes[position] ^= value,
            1 => bytes[position] = value,
            _ => bytes[position..(position + value as usize).min(ARENA_BYTES)].fill(0),
        }
    }
    std::fs::write(&path, &bytes).expect("write damaged");
    let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW_MS)
        .expect("segment damage never fails an open");
    let count = store.len();
    let mut scanned = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = store.scan(cursor, 8, NOW_MS, |key| scanned.push(key.to_vec()));
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(scanned.len(), count);
    assert_eq!(
        store.items(NOW_MS).count(),
        count,
        "iteration yields exactly the indexed items"
    );
    for key in &scanned {
        assert!(store.get(key, NOW_MS).is_some());
    }
    drop(store);
    let _ = std::fs::remove_file(&path);
});
