//! What observing one command costs its shard: the batch clock read, the op hook (write and
//! delete counters, hot-key sampling) and the command hook (calls, time, latency histogram,
//! anomaly window, slow-log check), with `--observability` on and off. The end-to-end figure
//! (ops/s at P=1, same run) is `benches/scripts/observe_overhead.sh`.

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datapath::commands::table;
use datapath::exec::{Op, Outcome};
use datapath::observe::{CommandId, Observer, Settings};
use datapath::shard::conn::{Conn, Protocol};

/// Distinct keys the benchmark cycles through (the hot-key sketch sees a spread of keys).
const KEYS: usize = 4096;

fn per_command(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|n| format!("key:{n:012}").into_bytes())
        .collect();
    let conn = Conn::new(1, 1, Protocol::Resp, "127.0.0.1:5000".parse().unwrap(), 0);
    let get = CommandId::resp(table::lookup(b"get").expect("get is a command"));
    let mut group = c.benchmark_group("observe_per_command");
    group.throughput(Throughput::Elements(1));
    // "on": one receive per loop tick, the worst case (two clock reads per command); "on, busy
    // tick": many receives per tick (one clock read per command); "off": the counters only.
    for (name, enabled, tick_per_command) in [
        ("on", true, true),
        ("on_busy_tick", true, false),
        ("off", false, true),
    ] {
        let settings = Settings {
            enabled,
            ..Settings::default()
        };
        let mut observer = Observer::new(0, 1, settings);
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % KEYS;
                observer.begin_batch();
                let op = Op::Get {
                    key: Cow::Borrowed(&keys[next]),
                };
                observer.op_done(black_box(&op), &Outcome::Missing);
                observer.command_done(get, &conn, false, Vec::new);
                if tick_per_command {
                    observer.end_tick();
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_command);
criterion_main!(benches);
