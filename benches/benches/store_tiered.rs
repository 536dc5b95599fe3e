//! The tiered store, per tier, interleaved: each round times GETs of 1 KiB JSON-like values that
//! hit the DRAM tier, GETs that hit the cold (file, LZ4) tier, and the same hot GETs on a
//! DRAM-only store, then the software engine compressing and decompressing those values (the
//! CPU a demotion and a cold read spend per byte). Five rounds, so all see the same machine
//! load; prints medians of each round's p50 and p99 (per-GET times, `Instant` around each) and
//! of the per-byte costs, and the cold tier's compression ratio.
//!
//! `cargo bench -p ferrite-benches --bench store_tiered`
use ferrite_benches::load::workload::{value_for, ValueKind};
use hdrhistogram::Histogram;
use persistent::{Admission, ColdTierConfig, SetOptions, Store, StoreConfig};
use platform::offload::{compress_bound, Offload, SoftwareOffload};
use std::hint::black_box;
use std::time::Instant;

const VALUE_BYTES: usize = 1024;
/// 32 MiB of DRAM; 48k items of about 1.05 KiB (key, header, value) fill it about 1.5 times,
/// so the older third ends in the cold tier.
const HOT_BYTES: usize = 32 << 20;
const COLD_BYTES: usize = 256 << 20;
const KEYS: usize = 48_000;
/// GETs per tier per round (keys drawn from the tier's own set).
const GETS: usize = 100_000;
const ROUNDS: usize = 5;
const NOW_MS: u64 = 1_700_000_000_000;

fn key(index: usize) -> Vec<u8> {
    format!("key:{index:012}").into_bytes()
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn fill(store: &mut Store) {
    for index in 0..KEYS {
        let value = value_for(ValueKind::Json, index as u64, VALUE_BYTES);
        store
            .set(&key(index), &value, &SetOptions::default(), NOW_MS)
            .expect("fill");
    }
}

/// p50 and p99 in ns of GETs of keys drawn from `keys`.
fn time_gets(store: &mut Store, keys: &[Vec<u8>], seed: u64) -> (u64, u64) {
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    let mut state = seed | 1;
    for _ in 0..GETS {
        let key = &keys[(xorshift(&mut state) % keys.len() as u64) as usize];
        let start = Instant::now();
        let item = store.get(key, NOW_MS).expect("a held key");
        black_box(&item.value);
        drop(item);
        histogram
            .record(start.elapsed().as_nanos() as u64)
            .expect("record");
    }
    (
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
    )
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench binaries too; measure only when benchmarking.
    if !std::env::args().any(|argument| argument == "--bench") {
        return;
    }
    let path = std::env::temp_dir().join(format!("ferrite-bench-tiered-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let tiered_config = StoreConfig {
        cold: Some(ColdTierConfig {
            admission: Admission::All,
            // Never promote: every cold GET stays a cold GET.
            promote_window_ms: 0,
            ..ColdTierConfig::new(&path, COLD_BYTES)
        }),
        ..StoreConfig::dram(HOT_BYTES)
    };
    let mut tiered = Store::open_tiered(
        &tiered_config,
        Box::new(SoftwareOffload),
        Box::new(SoftwareOffload),
        NOW_MS,
    )
    .expect("open the tiered store");
    let mut dram = Store::open(
        &StoreConfig::dram(HOT_BYTES),
        Box::new(SoftwareOffload),
        NOW_MS,
    )
    .expect("open the DRAM store");
    fill(&mut tiered);
    fill(&mut dram);
    let tier = tiered.tier_stats().expect("tiered");
    let cold_items = tier.cold.items as usize;
    assert!(cold_items > KEYS / 4, "{tier:?}");
    // Demotion takes the oldest first: keys below `cold_items` are cold (some of the boundary
    // segment's may not be, so leave a margin), the newest are hot in both stores.
    let cold_keys: Vec<Vec<u8>> = (0..cold_items * 9 / 10).map(key).collect();
    let hot_keys: Vec<Vec<u8>> = (KEYS - KEYS / 4..KEYS).map(key).collect();
    assert!(hot_keys.iter().all(|key| dram.contains(key, NOW_MS)));
    let values: Vec<Vec<u8>> = (0..256)
        .map(|index| value_for(ValueKind::Json, index, VALUE_BYTES))
        .collect();
    let mut engine = SoftwareOffload;
    let mut compressed = vec![0u8; compress_bound(VALUE_BYTES)];
    let mut decompressed = vec![0u8; VALUE_BYTES];

    let mut figures: [Vec<f64>; 8] = Default::default();
    for round in 0..ROUNDS {
        let seed = 0x9E37_79B9 + round as u64;
        let (p50, p99) = time_gets(&mut dram, &hot_keys, seed);
        figures[0].push(p50 as f64);
        figures[1].push(p99 as f64);
        let (p50, p99) = time_gets(&mut tiered, &hot_keys, seed);
        figures[2].push(p50 as f64);
        figures[3].push(p99 as f64);
        let (p50, p99) = time_gets(&mut tiered, &cold_keys, seed);
        figures[4].push(p50 as f64);
        figures[5].push(p99 as f64);
        let start = Instant::now();
        let mut raw_bytes = 0usize;
        for _ in 0..40 {
            for value in &values {
                black_box(engine.compress(value, &mut compressed).expect("compress"));
                raw_bytes += value.len();
            }
        }
        figures[6].push(start.elapsed().as_nanos() as f64 / raw_bytes as f64);
        let blocks: Vec<Vec<u8>> = values
            .iter()
            .map(|value| {
                let len = engine.compress(value, &mut compressed).expect("compress");
                compressed[..len].to_vec()
            })
            .collect();
        let start = Instant::now();
        for _ in 0..40 {
            for block in &blocks {
                black_box(
                    engine
                        .decompress(block, &mut decompressed)
                        .expect("decompress"),
                );
            }
        }
        figures[7].push(start.elapsed().as_nanos() as f64 / raw_bytes as f64);
    }
    let cold = tiered.tier_stats().expect("tiered").cold;
    println!(
        "store_tiered: {KEYS} keys of {VALUE_BYTES} B JSON; {} in the cold tier; medians of {ROUNDS} rounds",
        cold.items
    );
    let [dram_p50, dram_p99, hot_p50, hot_p99, cold_p50, cold_p99, compress, decompress] =
        figures.each_mut().map(|values| median(values));
    println!("GET DRAM-only store      p50 {dram_p50:.0} ns  p99 {dram_p99:.0} ns");
    println!("GET tiered, DRAM tier    p50 {hot_p50:.0} ns  p99 {hot_p99:.0} ns");
    println!("GET tiered, cold tier    p50 {cold_p50:.0} ns  p99 {cold_p99:.0} ns");
    println!(
        "cold compression: {} of {} values, ratio {:.2} ({} -> {} bytes)",
        cold.compressed_items,
        cold.compressed_items + cold.compress_skipped,
        cold.compressed_raw_bytes as f64 / cold.compressed_stored_bytes.max(1) as f64,
        cold.compressed_raw_bytes,
        cold.compressed_stored_bytes
    );
    println!(
        "software engine: compress {compress:.2} ns per raw byte ({:.0} MB/s), decompress {decompress:.2} ns per raw byte ({:.0} MB/s)",
        1000.0 / compress,
        1000.0 / decompress
    );
    drop(tiered);
    let _ = std::fs::remove_file(&path);
}
