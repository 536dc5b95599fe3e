//! Store against `HashMap<Vec<u8>, Vec<u8>>`, interleaved: each round times 1M random gets (and
//! 300k overwrites) on the store, then the same on the map, three rounds, so both see the same
//! machine load (criterion measures them minutes apart). 100k keys of 16 B, values of 100 B.
//!
//! `cargo bench -p ferrite-benches --bench store_interleaved`
use persistent::{SetOptions, Store, StoreConfig};
use platform::offload::SoftwareOffload;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

const KEYS: usize = 100_000;
const VALUE_BYTES: usize = 100;
const ROUNDS: usize = 3;
const GET_PASSES: usize = 10;
const SET_PASSES: usize = 3;
const ARENA_BYTES: usize = 256 << 20;
const NOW_MS: u64 = 1_700_000_000_000;

fn nanoseconds_per(start: Instant, operations: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / operations as f64
}

fn main() {
    // `cargo test --benches` runs bench binaries too; measure only when benchmarking.
    if !std::env::args().any(|argument| argument == "--bench") {
        return;
    }
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|index| format!("key:{index:012}").into_bytes())
        .collect();
    let mut store = Store::open(
        &StoreConfig::dram(ARENA_BYTES),
        Box::new(SoftwareOffload),
        NOW_MS,
    )
    .expect("open");
    let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for key in &keys {
        store
            .set(key, &[7u8; VALUE_BYTES], &SetOptions::default(), NOW_MS)
            .expect("fill");
        map.insert(key.clone(), vec![7u8; VALUE_BYTES]);
    }
    // A fixed shuffle (Fisher-Yates on xorshift), the same order for both.
    let mut order: Vec<usize> = (0..KEYS).collect();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for index in (1..KEYS).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(index, (state % (index as u64 + 1)) as usize);
    }
    let value = [9u8; VALUE_BYTES];
    for round in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..GET_PASSES {
            for &index in &order {
                black_box(
                    store
                        .get(&keys[index], NOW_MS)
                        .expect("present")
                        .value
                        .len(),
                );
            }
        }
        let store_get = nanoseconds_per(start, GET_PASSES * KEYS);
        let start = Instant::now();
        for _ in 0..GET_PASSES {
            for &index in &order {
                black_box(map.get(&keys[index]).expect("present").len());
            }
        }
        let map_get = nanoseconds_per(start, GET_PASSES * KEYS);
        let start = Instant::now();
        for _ in 0..SET_PASSES {
            for &index in &order {
                store
                    .set(
                        &keys[index],
                        black_box(&value),
                        &SetOptions::default(),
                        NOW_MS,
                    )
                    .expect("set");
            }
        }
        let store_set = nanoseconds_per(start, SET_PASSES * KEYS);
        let start = Instant::now();
        for _ in 0..SET_PASSES {
            for &index in &order {
                map.insert(keys[index].clone(), black_box(&value).to_vec());
            }
        }
        let map_set = nanoseconds_per(start, SET_PASSES * KEYS);
        println!(
            "round {round}: get store {store_get:.0} ns, HashMap {map_get:.0} ns; \
             set store {store_set:.0} ns, HashMap {map_set:.0} ns"
        );
    }
    assert_eq!(store.stats().evicted_items, 0);
}
