//! The shards' snapshots added up, and written the ways clients read them: INFO sections,
//! SLOWLOG and FERRITE.HOTKEYS replies, memcached `stats` lines.

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::anomaly::Signal;
use super::hotkeys::{sort_hottest_first, HotKey};
use super::slowlog::{self, SlowEntry};
use super::{CallStats, CommandId, Counters, Family, RecoveryFigures, Snapshot, FAMILY_COUNT};
use crate::exec::{Outcome, ShardFigures};
use crate::protocol::resp::Reply;

/// Every shard's snapshot added up.
#[derive(Clone, Debug)]
pub struct Merged {
    pub enabled: bool,
    pub counters: Counters,
    /// Indexed by [`CommandId::index`].
    pub calls: Vec<CallStats>,
    /// One per [`Family`].
    pub latency: Vec<Histogram<u64>>,
    pub hot_keys: Vec<HotKey>,
    /// Newest first.
    pub slowlog: Vec<SlowEntry>,
    pub anomalies: [u64; 3],
    pub recovery: RecoveryFigures,
}

/// The snapshots carried by `Op::Stats` outcomes.
pub fn snapshots<'a>(outcomes: &'a [Outcome<'_>]) -> impl Iterator<Item = &'a Snapshot> {
    outcomes.iter().filter_map(|outcome| match outcome {
        Outcome::Figures(figures) => figures.observed.as_deref(),
        _ => None,
    })
}

pub fn merge<'a>(snapshots: impl Iterator<Item = &'a Snapshot>) -> Merged {
    let mut merged = Merged {
        enabled: false,
        counters: Counters::default(),
        calls: vec![CallStats::default(); CommandId::count()],
        latency: (0..FAMILY_COUNT)
            .map(|_| super::latency_histogram())
            .collect(),
        hot_keys: Vec::new(),
        slowlog: Vec::new(),
        anomalies: [0; 3],
        recovery: RecoveryFigures::default(),
    };
    for snapshot in snapshots {
        merged.enabled |= snapshot.enabled;
        let (sum, add) = (&mut merged.counters, &snapshot.counters);
        sum.bytes_in += add.bytes_in;
        sum.bytes_out += add.bytes_out;
        sum.connections_rejected += add.connections_rejected;
        sum.protocol_errors += add.protocol_errors;
        sum.mail_sent += add.mail_sent;
        sum.sets += add.sets;
        sum.deletes += add.deletes;
        for (id, calls) in &snapshot.calls {
            let sum = &mut merged.calls[id.index()];
            sum.calls += calls.calls;
            sum.time_ns += calls.time_ns;
        }
        for (sum, histogram) in merged.latency.iter_mut().zip(&snapshot.latency) {
            // Same bounds on every shard: adding cannot fail.
            let _ = sum.add(histogram);
        }
        merged.hot_keys.extend(snapshot.hot_keys.iter().cloned());
        merged.slowlog.extend(snapshot.slowlog.iter().cloned());
        for (sum, count) in merged.anomalies.iter_mut().zip(snapshot.anomalies) {
            *sum += count;
        }
        let (sum, add) = (&mut merged.recovery, &snapshot.recovery);
        sum.items_restored += add.items_restored;
        sum.items_corrupt += add.items_corrupt;
        sum.items_expired += add.items_expired;
        sum.segments_corrupt += add.segments_corrupt;
    }
    sort_hottest_first(&mut merged.hot_keys);
    let entries = merged.slowlog.len();
    merged.slowlog = slowlog::merge(merged.slowlog.iter(), entries)
        .into_iter()
        .cloned()
        .collect();
    merged
}

/// Hits over lookups, 0 before any lookup.
pub fn hit_ratio(figures: &ShardFigures) -> f64 {
    let lookups = figures.hits + figures.misses;
    if lookups == 0 {
        0.0
    } else {
        figures.hits as f64 / lookups as f64
    }
}

/// Latency quantiles INFO and `stats` report, with their names.
pub const QUANTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

fn micros(nanoseconds: u64) -> f64 {
    nanoseconds as f64 / 1000.0
}

/// The `# Commandstats` section's lines (Redis' format).
pub fn commandstats(merged: &Merged) -> String {
    let mut text = String::new();
    for (index, calls) in merged.calls.iter().enumerate() {
        if calls.calls == 0 {
            continue;
        }
        let usec = calls.time_ns / 1000;
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "cmdstat_{}:calls={},usec={usec},usec_per_call={:.2},rejected_calls=0,failed_calls=0\r\n",
            CommandId::from_index(index).name(),
            calls.calls,
            usec as f64 / calls.calls as f64,
        );
    }
    text
}

/// The `# Latencystats` section's lines: Redis 7's format, per command family, plus p95 and
/// max.
pub fn latencystats(merged: &Merged) -> String {
    let mut text = String::new();
    for family in Family::ALL {
        let histogram = &merged.latency[family as usize];
        if histogram.is_empty() {
            continue;
        }
        let _ = write!(text, "latency_percentiles_usec_{}:", family.name());
        for (name, quantile) in QUANTILES {
            let _ = write!(
                text,
                "{name}={:.3},",
                micros(histogram.value_at_quantile(quantile))
            );
        }
        let _ = write!(text, "max={:.3}\r\n", micros(histogram.max()));
    }
    text
}

/// The `# Ferrite` section's figures (after its static lines).
pub fn ferrite_lines(figures: &ShardFigures, merged: &Merged) -> String {
    let counters = &merged.counters;
    let recovery = &merged.recovery;
    let mut text = String::new();
    let _ = write!(
        text,
        "observability:{}\r\nkeyspace_hit_ratio:{:.4}\r\nsets:{}\r\ndeletes:{}\r\nitems:{}\r\n\
         segments_total:{}\r\nsegments_free:{}\r\nsegments_in_use:{}\r\n\
         cross_shard_requests:{}\r\ncross_shard_messages:{}\r\nprotocol_errors:{}\r\n\
         recovery_items_restored:{}\r\nrecovery_items_corrupt:{}\r\nrecovery_items_expired:{}\r\n\
         recovery_segments_corrupt:{}\r\nslowlog_len:{}\r\n",
        if merged.enabled { "on" } else { "off" },
        hit_ratio(figures),
        counters.sets,
        counters.deletes,
        figures.items,
        figures.segments_total,
        figures.segments_free,
        figures.segments_in_use,
        figures.remote_requests,
        counters.mail_sent,
        counters.protocol_errors,
        recovery.items_restored,
        recovery.items_corrupt,
        recovery.items_expired,
        recovery.segments_corrupt,
        merged.slowlog.len(),
    );
    for (signal, count) in Signal::ALL.iter().zip(merged.anomalies) {
        let _ = write!(text, "anomalies_{}:{count}\r\n", signal.name());
    }
    text
}

/// Lines added to INFO's `# Stats` (Redis' names).
pub fn stats_lines(merged: &Merged) -> String {
    format!(
        "total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\n",
        merged.counters.bytes_in, merged.counters.bytes_out, merged.counters.connections_rejected
    )
}

/// SLOWLOG GET's reply: `[id, unix time, microseconds, [arguments], client address, client
/// name]` per entry, newest first.
pub fn write_slowlog(reply: &mut Reply<'_>, merged: &Merged, count: usize) {
    let entries = &merged.slowlog[..merged.slowlog.len().min(count)];
    reply.array(entries.len());
    for entry in entries {
        reply.array(6);
        reply.integer(entry.id as i64);
        reply.integer(entry.unix_seconds as i64);
        reply.integer(entry.duration_us as i64);
        reply.array(entry.arguments.len());
        for argument in &entry.arguments {
            reply.bulk(argument);
        }
        reply.bulk(entry.peer.as_bytes());
        reply.bulk(&entry.client_name);
    }
}

/// FERRITE.HOTKEYS' reply: `[key, estimated accesses]` pairs, hottest first.
pub fn write_hot_keys(reply: &mut Reply<'_>, merged: &Merged, count: usize) {
    let keys = &merged.hot_keys[..merged.hot_keys.len().min(count)];
    reply.array(keys.len());
    for hot in keys {
        reply.array(2);
        reply.bulk(&hot.key);
        reply.integer(i64::try_from(hot.accesses).unwrap_or(i64::MAX));
    }
}

/// A key as a memcached `STAT` value: printable ASCII kept, other bytes as `\xHH`.
pub fn printable_key(key: &[u8]) -> String {
    let mut text = String::with_capacity(key.len());
    for &byte in key {
        if byte.is_ascii_graphic() && byte != b'\\' {
            text.push(byte as char);
        } else {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Observer, RecoveryFigures, Settings};

    #[test]
    fn merges_shards_and_writes_redis_lines() {
        let settings = Settings {
            enabled: false,
            ..Settings::default()
        };
        let mut first = Observer::new(0, 2, settings);
        let mut second = Observer::new(1, 2, settings);
        first.counters.bytes_in = 10;
        second.counters.bytes_in = 5;
        second.counters.sets = 2;
        let merged = merge(
            [
                first.snapshot(RecoveryFigures::default()),
                second.snapshot(RecoveryFigures {
                    items_restored: 3,
                    ..RecoveryFigures::default()
                }),
            ]
            .iter(),
        );
        assert_eq!(merged.counters.bytes_in, 15);
        assert_eq!(merged.counters.sets, 2);
        assert_eq!(merged.recovery.items_restored, 3);
        assert!(stats_lines(&merged).starts_with("total_net_input_bytes:15\r\n"));
        assert_eq!(commandstats(&merged), "");
        assert_eq!(latencystats(&merged), "");
    }

    #[test]
    fn keys_print_safely() {
        assert_eq!(printable_key(b"a b\\\x01z"), "a\\x20b\\x5c\\x01z");
    }
}
