//! Crash test: a child process (this binary, re-executed with `--crash-child`) sets, appends
//! and deletes under load into a file-backed store and is killed with SIGKILL at a random
//! moment, many times. Each child replays a deterministic operation sequence and prints how many
//! operations returned, so after each kill the parent knows the exact state every returned
//! operation left, plus the one operation that may have been in flight. On reopen, every key
//! must hold exactly that state or the state after the in-flight operation: no value that was
//! never written, no deleted key back, no acknowledged write missing (a process crash keeps the
//! page cache, so this holds under every flush policy), and no item reported corrupt.
//!
//! Then the same on a tiered store (a small DRAM tier over the file): a crash loses what only
//! the DRAM tier held, so a key may also be missing, but never holds an older or deleted value.

use persistent::{Admission, ColdTierConfig, FlushPolicy, SetOptions, Store, StoreConfig};
use platform::offload::SoftwareOffload;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ROUNDS: u64 = 40;
/// Rounds of the tiered configuration.
const TIERED_ROUNDS: u64 = 20;
/// The tiered store's DRAM tier: eight segments, a fraction of what the keys need, so items
/// keep moving to the file.
const HOT_BYTES: usize = 4096 + 8 * SEGMENT_BYTES;
const KEYS: u64 = 300;
const SEGMENT_BYTES: usize = 64 << 10;
/// Room for every key many times over, so nothing is ever evicted.
const ARENA_BYTES: usize = 4096 + 1024 * SEGMENT_BYTES;
/// A child stops by itself after this many operations if the kill never comes.
const CHILD_OPERATIONS_MAX: u64 = 5_000_000;
/// The child ticks (everysec flush) this often.
const TICK_EVERY_OPERATIONS: u64 = 512;
const KILL_AFTER_MS_MAX: u64 = 120;
const START_MS: u64 = 1_700_000_000_000;

fn splitmix(mut state: u64) -> u64 {
    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    state = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    state ^ (state >> 31)
}

#[derive(Debug)]
enum Operation {
    Set { key: u64, value: Vec<u8> },
    Append { key: u64, data: Vec<u8> },
    Delete { key: u64 },
}

/// Operation number `index` of the sequence `seed` (values up to 3000 bytes, so items cross
/// segments and segments fill, seal and get freed).
fn operation(seed: u64, index: u64) -> Operation {
    let random = splitmix(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
    let key = random % KEYS;
    match (random >> 32) % 10 {
        0..=6 => {
            let len = ((random >> 40) % 3000) as usize;
            let mut value = format!("{index}:").into_bytes();
            value.resize(len.max(value.len()), b'a' + (index % 26) as u8);
            Operation::Set { key, value }
        }
        7 => Operation::Append {
            key,
            data: format!("+{index}").into_bytes(),
        },
        _ => Operation::Delete { key },
    }
}

fn key_name(key: u64) -> Vec<u8> {
    format!("key:{key}").into_bytes()
}

fn apply(state: &mut HashMap<u64, Vec<u8>>, operation: &Operation) {
    match operation {
        Operation::Set { key, value } => {
            state.insert(*key, value.clone());
        }
        Operation::Append { key, data } => {
            if let Some(value) = state.get_mut(key) {
                value.extend_from_slice(data);
            }
        }
        Operation::Delete { key } => {
            state.remove(key);
        }
    }
}

fn config(path: &Path) -> StoreConfig {
    StoreConfig {
        segment_bytes: SEGMENT_BYTES,
        flush: FlushPolicy::EverySec,
        ..StoreConfig::file(path, ARENA_BYTES)
    }
}

fn open(path: &Path, tiered: bool) -> Store {
    if !tiered {
        return Store::open(&config(path), Box::new(SoftwareOffload), START_MS)
            .expect("open the store");
    }
    let config = StoreConfig {
        segment_bytes: SEGMENT_BYTES,
        flush: FlushPolicy::EverySec,
        // The child never reads: every item is admitted, so the file sees every kind of write.
        cold: Some(ColdTierConfig {
            admission: Admission::All,
            ..ColdTierConfig::new(path, ARENA_BYTES)
        }),
        ..StoreConfig::dram(HOT_BYTES)
    };
    Store::open_tiered(
        &config,
        Box::new(SoftwareOffload),
        Box::new(SoftwareOffload),
        START_MS,
    )
    .expect("open the tiered store")
}

/// The child: runs operations `first..` of sequence `seed`, printing the count done after each.
fn child(path: &Path, tiered: bool, seed: u64, first: u64) {
    let mut store = open(path, tiered);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for done in 0..CHILD_OPERATIONS_MAX {
        let index = first + done;
        let now_ms = START_MS + index;
        match operation(seed, index) {
            Operation::Set { key, value } => {
                store
                    .set(&key_name(key), &value, &SetOptions::default(), now_ms)
                    .expect("set");
            }
            Operation::Append { key, data } => {
                store.append(&key_name(key), &data, now_ms).expect("append");
            }
            Operation::Delete { key } => {
                store.delete(&key_name(key), now_ms).expect("delete");
            }
        }
        if done % TICK_EVERY_OPERATIONS == 0 {
            store.tick(now_ms).expect("tick");
        }
        writeln!(out, "{}", done + 1).expect("report progress");
    }
}

/// The store's contents, read back by the parent.
fn read_state(store: &mut Store) -> HashMap<u64, Vec<u8>> {
    (0..KEYS)
        .filter_map(|key| {
            store
                .get(&key_name(key), START_MS)
                .map(|item| (key, item.value.into_owned()))
        })
        .collect()
}

fn parent(tiered: bool) {
    let name = if tiered { "tiered" } else { "file" };
    let rounds = if tiered { TIERED_ROUNDS } else { ROUNDS };
    let path: PathBuf =
        std::env::temp_dir().join(format!("ferrite-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let seed = splitmix(std::process::id() as u64 ^ START_MS ^ u64::from(tiered));
    println!("crash test ({name}): seed {seed:#x}, {rounds} rounds");
    let mut state: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut first = 0u64;
    let mut total_operations = 0u64;
    let mut found_total = 0;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .arg("--crash-child")
            .arg(&path)
            .arg(name)
            .arg(seed.to_string())
            .arg(first.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut done = 0u64;
            for line in BufReader::new(stdout).lines() {
                match line.ok().and_then(|line| line.parse().ok()) {
                    Some(count) => done = count,
                    None => break,
                }
            }
            done
        });
        let kill_after_ms = 5 + splitmix(seed ^ round) % KILL_AFTER_MS_MAX;
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        let done = reader.join().expect("reader thread");
        total_operations += done;

        let mut expected = state.clone();
        for index in first..first + done {
            apply(&mut expected, &operation(seed, index));
        }
        let in_flight = operation(seed, first + done);
        let mut expected_if_in_flight = expected.clone();
        apply(&mut expected_if_in_flight, &in_flight);

        let mut store = open(&path, tiered);
        let report = store.recovery_report().clone();
        let found = read_state(&mut store);
        let context = format!("seed {seed:#x} round {round}: {done} operations after #{first}, in flight {in_flight:?}; {report:?}");
        assert_eq!(
            (report.items_corrupt, report.segments_corrupt),
            (0, 0),
            "{context}"
        );
        assert_eq!(store.len(), found.len(), "{context}");
        for key in 0..KEYS {
            let got = found.get(&key);
            // A tiered store may have lost what only its DRAM tier held.
            let lost = tiered && got.is_none();
            assert!(
                lost || got == expected.get(&key) || got == expected_if_in_flight.get(&key),
                "key {key}: found {:?}, expected {:?} or {:?}; {context}",
                got.map(
                    |value| String::from_utf8_lossy(&value[..value.len().min(24)]).into_owned()
                ),
                expected
                    .get(&key)
                    .map(
                        |value| String::from_utf8_lossy(&value[..value.len().min(24)]).into_owned()
                    ),
                expected_if_in_flight
                    .get(&key)
                    .map(
                        |value| String::from_utf8_lossy(&value[..value.len().min(24)]).into_owned()
                    ),
            );
        }
        store.close().expect("close after checking");
        found_total += found.len();
        state = found;
        first += done + 1;
    }
    let _ = std::fs::remove_file(&path);
    assert!(
        total_operations > rounds * 100,
        "the children did too little work: {total_operations} operations"
    );
    assert!(
        found_total > 0,
        "no key survived any crash: nothing reached the file"
    );
    println!(
        "crash test ({name}): {rounds} kills, {total_operations} operations, every state exact"
    );
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    match arguments
        .iter()
        .position(|argument| argument == "--crash-child")
    {
        Some(position) => {
            let path = PathBuf::from(&arguments[position + 1]);
            let tiered = arguments[position + 2] == "tiered";
            let seed = arguments[position + 3].parse().expect("seed");
            let first = arguments[position + 4].parse().expect("first operation");
            child(&path, tiered, seed, first);
        }
        None => {
            parent(false);
            parent(true);
        }
    }
}
