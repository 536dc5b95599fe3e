//! Memory per item, measured by RSS: 1M items of 100-byte values with 16-byte keys, in a DRAM
//! store and in a `HashMap<Vec<u8>, Vec<u8>>`, each in its own child process (so freed memory
//! of one cannot hide in the other's figure). Prints bytes per item beyond key and value, and
//! the RSS of a store written three times past its limit.
//!
//! `cargo bench -p ferrite-benches --bench store_memory`
use persistent::{SetOptions, Store, StoreConfig};
use platform::offload::SoftwareOffload;
use std::collections::HashMap;
use std::process::Command;

/// Items measured, unless `STORE_MEMORY_ITEMS` says otherwise (the index doubles at
/// 2^k × 8 keys, so the figure depends on where the count falls between doublings).
const ITEMS_DEFAULT: usize = 1_000_000;
const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;
/// Larger than the items need: untouched arena pages cost no RSS, so this does not flatter the
/// figure, and nothing is evicted.
const ARENA_BYTES: usize = 512 << 20;
const NOW_MS: u64 = 1_700_000_000_000;
/// The arena of the full-store measurement, and how many times over it is written.
const FULL_ARENA_BYTES: usize = 128 << 20;
const FULL_OVERFILL: usize = 3;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm resident field");
    // SAFETY: sysconf only reads a system constant.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page_bytes
}

fn items() -> usize {
    std::env::var("STORE_MEMORY_ITEMS")
        .ok()
        .and_then(|items| items.parse().ok())
        .unwrap_or(ITEMS_DEFAULT)
}

fn key(index: usize) -> Vec<u8> {
    let key = format!("key:{index:012}").into_bytes();
    assert_eq!(key.len(), KEY_BYTES);
    key
}

fn report(name: &str, before: usize, after: usize) {
    let items = items();
    let per_item = (after - before) as f64 / items as f64;
    println!(
        "{name}: {:.1} MiB RSS for {items} items = {per_item:.1} B/item, {:.1} B/item beyond key + value",
        (after - before) as f64 / (1 << 20) as f64,
        per_item - (KEY_BYTES + VALUE_BYTES) as f64
    );
}

fn measure_store() {
    let mut store = Store::open(
        &StoreConfig::dram(ARENA_BYTES),
        Box::new(SoftwareOffload),
        NOW_MS,
    )
    .expect("open");
    let items = items();
    let keys: Vec<Vec<u8>> = (0..items).map(key).collect();
    let value = [3u8; VALUE_BYTES];
    let before = rss_bytes();
    for key in &keys {
        store
            .set(key, &value, &SetOptions::default(), NOW_MS)
            .expect("set");
    }
    let after = rss_bytes();
    let stats = store.stats();
    assert_eq!((stats.items as usize, stats.evicted_items), (items, 0));
    report("ferrite store (DRAM)", before, after);
    println!(
        "  of which index {:.1} B/item, segments {:.1} B/item (headers, key, value, tails)",
        stats.index_bytes as f64 / items as f64,
        stats.bytes_used as f64 / items as f64
    );
}

/// A store written far past its limit: RSS must stay at the limit plus the index.
fn measure_full_store() {
    let mut store = Store::open(
        &StoreConfig::dram(FULL_ARENA_BYTES),
        Box::new(SoftwareOffload),
        NOW_MS,
    )
    .expect("open");
    let value = [3u8; VALUE_BYTES];
    let before = rss_bytes();
    let writes = FULL_ARENA_BYTES / (KEY_BYTES + VALUE_BYTES) * FULL_OVERFILL;
    for index in 0..writes {
        store
            .set(&key(index), &value, &SetOptions::default(), NOW_MS)
            .expect("set");
    }
    let after = rss_bytes();
    let stats = store.stats();
    assert!(stats.evicted_segments > 0);
    println!(
        "full store: {writes} writes into a {} MiB limit: RSS grew {:.1} MiB = limit + {:.1} MiB \
         (index {:.1} MiB for {} items), {} segments evicted",
        FULL_ARENA_BYTES >> 20,
        (after - before) as f64 / (1 << 20) as f64,
        (after - before) as f64 / (1 << 20) as f64 - stats.bytes_limit as f64 / (1 << 20) as f64,
        stats.index_bytes as f64 / (1 << 20) as f64,
        stats.items,
        stats.evicted_segments
    );
}

fn measure_hashmap() {
    let items = items();
    let keys: Vec<Vec<u8>> = (0..items).map(key).collect();
    let before = rss_bytes();
    let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for key in &keys {
        map.insert(key.clone(), vec![3u8; VALUE_BYTES]);
    }
    let after = rss_bytes();
    assert_eq!(map.len(), items);
    report("HashMap<Vec<u8>, Vec<u8>>", before, after);
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    match arguments
        .iter()
        .position(|argument| argument == "--measure")
        .map(|position| arguments[position + 1].as_str())
    {
        Some("store") => measure_store(),
        Some("hashmap") => measure_hashmap(),
        Some("full") => measure_full_store(),
        Some(other) => panic!("unknown measurement {other}"),
        None => {
            // `cargo test --benches` runs bench binaries too; measure only when benchmarking.
            if !arguments.iter().any(|argument| argument == "--bench") {
                return;
            }
            for which in ["store", "hashmap", "full"] {
                let status = Command::new(std::env::current_exe().expect("own path"))
                    .args(["--measure", which])
                    .status()
                    .expect("run the measurement");
                assert!(status.success(), "{which} measurement failed");
            }
        }
    }
}
