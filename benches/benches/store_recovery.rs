//! Recovery time of a full 1 GiB store file of 100-byte items (every item's CRC-64 checked, the
//! index rebuilt), as wall time and as CPU time (user + sys of this process): on a machine
//! shared with other work the wall time includes waiting for a core, the CPU time does not.
//!
//! `cargo bench -p ferrite-benches --bench store_recovery`
use persistent::{FlushPolicy, SetOptions, Store, StoreConfig};
use platform::offload::SoftwareOffload;
use std::time::Instant;

const ARENA_BYTES: usize = 1 << 30;
const VALUE_BYTES: usize = 100;
const OPENS: usize = 3;
const NOW_MS: u64 = 1_700_000_000_000;

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes one rusage into the pointer it is given, which points at enough
    // space; it is read only after the call succeeded.
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()),
            0,
            "getrusage"
        );
        usage.assume_init()
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn main() {
    // `cargo test --benches` runs bench binaries too; measure only when benchmarking.
    if !std::env::args().any(|argument| argument == "--bench") {
        return;
    }
    let path = std::env::temp_dir().join(format!("ferrite-bench-recovery-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = StoreConfig {
        flush: FlushPolicy::No,
        ..StoreConfig::file(&path, ARENA_BYTES)
    };
    let mut store = Store::open(&config, Box::new(SoftwareOffload), NOW_MS).expect("create");
    let value = [5u8; VALUE_BYTES];
    let mut index = 0usize;
    while store.stats().evicted_segments == 0 {
        store
            .set(
                format!("key:{index:012}").as_bytes(),
                &value,
                &SetOptions::default(),
                NOW_MS,
            )
            .expect("fill");
        index += 1;
    }
    let used_bytes = store.stats().bytes_used;
    store.close().expect("close");
    for _ in 0..OPENS {
        let (wall, cpu) = (Instant::now(), cpu_seconds());
        let store = Store::open(&config, Box::new(SoftwareOffload), NOW_MS).expect("reopen");
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        let report = store.recovery_report();
        assert_eq!(report.items_corrupt, 0);
        println!(
            "recovered {} items ({:.2} GiB of segments) in {wall:.3} s wall, {cpu:.3} s CPU: \
             {:.3} s CPU per GiB",
            report.items_restored,
            used_bytes as f64 / (1u64 << 30) as f64,
            cpu / (used_bytes as f64 / (1u64 << 30) as f64)
        );
        drop(store);
    }
    let _ = std::fs::remove_file(&path);
}
