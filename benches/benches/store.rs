//! The store's hot paths: get and set of 100-byte values in the DRAM and file arenas, with a
//! `HashMap<Vec<u8>, Vec<u8>>` measured in the same run as the floor; a pipelined batch of gets
//! with and without `Store::prefetch` first; and how long reopening (recovering) a 1 GiB file of
//! 100-byte items takes.
//!
//! `cargo bench -p ferrite-benches --bench store`
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use persistent::{FlushPolicy, SetOptions, Store, StoreConfig, PREFETCH_KEYS_MAX};
use platform::offload::SoftwareOffload;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

const KEYS: usize = 100_000;
const VALUE_BYTES: usize = 100;
const ARENA_BYTES: usize = 256 << 20;
const RECOVERY_ARENA_BYTES: usize = 1 << 30;
const NOW_MS: u64 = 1_700_000_000_000;

fn key(index: usize) -> Vec<u8> {
    format!("key:{index:012}").into_bytes()
}

/// A fixed pseudo-random visiting order over the keys (so caches see a realistic spread).
fn order() -> Vec<usize> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..KEYS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % KEYS as u64) as usize
        })
        .collect()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferrite-bench-{}-{name}", std::process::id()))
}

fn filled(config: &StoreConfig, keys: &[Vec<u8>]) -> Store {
    let mut store = Store::open(config, Box::new(SoftwareOffload), NOW_MS).expect("open the store");
    let value = [7u8; VALUE_BYTES];
    for key in keys {
        store
            .set(key, &value, &SetOptions::default(), NOW_MS)
            .expect("fill");
    }
    store
}

/// Benchmarks `set` of the keys in `order`, one per iteration, as `set/name`.
fn bench_sets(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    store: &mut Store,
    keys: &[Vec<u8>],
    order: &[usize],
    value: &[u8],
) {
    let mut next = 0usize;
    group.bench_function(BenchmarkId::new("set", name), |bench| {
        bench.iter(|| {
            next = (next + 1) % KEYS;
            store
                .set(
                    &keys[order[next]],
                    black_box(value),
                    &SetOptions::default(),
                    NOW_MS,
                )
                .expect("set")
        })
    });
}

fn get_and_set(criterion: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let order = order();
    let file_path = temp_path("getset");
    let _ = std::fs::remove_file(&file_path);
    let arenas = [
        ("dram", StoreConfig::dram(ARENA_BYTES)),
        (
            "file",
            StoreConfig {
                flush: FlushPolicy::EverySec,
                ..StoreConfig::file(&file_path, ARENA_BYTES)
            },
        ),
    ];
    let value = [9u8; VALUE_BYTES];
    let mut group = criterion.benchmark_group("store_100B");
    group.throughput(Throughput::Elements(1));
    for (name, config) in &arenas {
        let mut store = filled(config, &keys);
        let mut next = 0usize;
        group.bench_function(BenchmarkId::new("get", name), |bench| {
            bench.iter(|| {
                next = (next + 1) % KEYS;
                let item = store.get(&keys[order[next]], NOW_MS).expect("present");
                black_box(item.value.len())
            })
        });
        bench_sets(&mut group, name, &mut store, &keys, &order, &value);
        assert_eq!(
            store.stats().evicted_items,
            0,
            "the benchmark must not measure eviction"
        );
        drop(store);
    }
    let _ = std::fs::remove_file(&file_path);

    // `always`: every set waits for its msync (item and segment header pages). Filled under
    // everysec (100k msyncs would take a while), then reopened.
    let everysec = StoreConfig {
        flush: FlushPolicy::EverySec,
        ..StoreConfig::file(&file_path, ARENA_BYTES)
    };
    drop(filled(&everysec, &keys));
    let always = StoreConfig {
        flush: FlushPolicy::Always,
        ..everysec
    };
    let mut store = Store::open(&always, Box::new(SoftwareOffload), NOW_MS).expect("reopen");
    bench_sets(&mut group, "file_always", &mut store, &keys, &order, &value);
    drop(store);
    let _ = std::fs::remove_file(&file_path);

    let mut map: HashMap<Vec<u8>, Vec<u8>> = keys
        .iter()
        .map(|key| (key.clone(), vec![7u8; VALUE_BYTES]))
        .collect();
    let mut next = 0usize;
    group.bench_function(BenchmarkId::new("get", "hashmap"), |bench| {
        bench.iter(|| {
            next = (next + 1) % KEYS;
            black_box(map.get(&keys[order[next]]).expect("present").len())
        })
    });
    group.bench_function(BenchmarkId::new("set", "hashmap"), |bench| {
        bench.iter(|| {
            next = (next + 1) % KEYS;
            // What a cache must do on a set: own a copy of key and value.
            map.insert(keys[order[next]].clone(), black_box(&value).to_vec())
        })
    });
    group.finish();
}

/// A pipelined batch as a shard runs it: `PREFETCH_KEYS_MAX` gets of keys spread over the store,
/// after `Store::prefetch` of all of them (what the shard does) or one after another.
fn batch_gets(criterion: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let order = order();
    let mut store = filled(&StoreConfig::dram(ARENA_BYTES), &keys);
    let mut group = criterion.benchmark_group("store_batch_100B");
    group.throughput(Throughput::Elements(PREFETCH_KEYS_MAX as u64));
    for (name, prefetched) in [("one_by_one", false), ("prefetched", true)] {
        let mut next = 0usize;
        group.bench_function(BenchmarkId::new("get", name), |bench| {
            bench.iter(|| {
                let batch = &order[next..next + PREFETCH_KEYS_MAX];
                next = (next + PREFETCH_KEYS_MAX) % (KEYS - PREFETCH_KEYS_MAX);
                if prefetched {
                    store.prefetch(batch.iter().map(|&index| keys[index].as_slice()));
                }
                batch
                    .iter()
                    .map(|&index| {
                        store
                            .get(&keys[index], NOW_MS)
                            .expect("present")
                            .value
                            .len()
                    })
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

fn recovery(criterion: &mut Criterion) {
    let path = temp_path("recovery");
    let _ = std::fs::remove_file(&path);
    let config = StoreConfig {
        flush: FlushPolicy::No,
        ..StoreConfig::file(&path, RECOVERY_ARENA_BYTES)
    };
    let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW_MS).expect("create");
    let value = [5u8; VALUE_BYTES];
    let mut index = 0usize;
    // Fill until the arena is full (the first eviction).
    while store.stats().evicted_segments == 0 {
        store
            .set(&key(index), &value, &SetOptions::default(), NOW_MS)
            .expect("fill");
        index += 1;
    }
    let used_bytes = store.stats().bytes_used;
    store.close().expect("close");
    let mut group = criterion.benchmark_group("store_recovery");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Bytes(used_bytes));
    group.bench_function(BenchmarkId::new("open", "1GiB_100B_items"), |bench| {
        // The store is returned so closing it (msync, superblock) is not timed.
        bench.iter_with_large_drop(|| {
            let store = Store::open(&config, Box::new(SoftwareOffload), NOW_MS).expect("reopen");
            assert!(store.len() > 1_000_000);
            store
        })
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, get_and_set, batch_gets, recovery);
criterion_main!(benches);
