//! `stats`, `stats settings`, `stats items`, `stats slabs` with memcached's names, from every
//! shard's figures and this layer's command counters; `stats reset` zeroes them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::finish::Finish;
use crate::exec::{Op, Outcome, ShardFigures};
use crate::observe::{report, Family, ResetScope};
use crate::protocol::memcache::reply::{self, Status};
use crate::protocol::memcache::{ErrorKind, Keys};
use crate::shard::conn::Conn;
use crate::shard::finish::Finish as ShardFinish;
use crate::shard::{now_ms, Core};

/// Shards with a counter slot of their own; shards beyond share slots (the sums stay right).
const COUNTER_SLOTS: usize = 64;

/// The memcached command counters of one shard, on a cache line of their own: each shard adds
/// only to its own slot, so counting shares nothing between shards on the request path.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct Counters {
    /// Keys asked for by get, gets, gat, gats, mg.
    pub cmd_get: AtomicU64,
    /// Storage commands (set, add, replace, append, prepend, cas, ms).
    pub cmd_set: AtomicU64,
    /// touch, gat, gats keys.
    pub cmd_touch: AtomicU64,
    /// flush_all.
    pub cmd_flush: AtomicU64,
    /// Successful stores.
    pub total_items: AtomicU64,
    /// The hits and misses of reads, deletes, increments, CAS stores and touches, by [`Tally`].
    tallies: [AtomicU64; TALLIES],
}

/// A hit or miss count memcached reports: `get`/`gets`/`mg` (not the store's hits, which RESP
/// reads count too), `delete`/`md`, `incr`/`decr`/`ma`, `cas`/`ms C`, `touch`/`gat`/`gats`/`mg T`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tally {
    GetHits,
    GetMisses,
    DeleteMisses,
    DeleteHits,
    IncrMisses,
    IncrHits,
    DecrMisses,
    DecrHits,
    CasMisses,
    CasHits,
    CasBadval,
    TouchHits,
    TouchMisses,
}

/// How many [`Tally`] counts there are.
const TALLIES: usize = 13;
const _: () = assert!(Tally::TouchMisses as usize + 1 == TALLIES);

/// Each [`Tally`]'s `stats` name, in memcached's order (the enum's).
const TALLY_NAMES: [&str; TALLIES] = [
    "get_hits",
    "get_misses",
    "delete_misses",
    "delete_hits",
    "incr_misses",
    "incr_hits",
    "decr_misses",
    "decr_hits",
    "cas_misses",
    "cas_hits",
    "cas_badval",
    "touch_hits",
    "touch_misses",
];

impl Counters {
    const fn new() -> Counters {
        Counters {
            cmd_get: AtomicU64::new(0),
            cmd_set: AtomicU64::new(0),
            cmd_touch: AtomicU64::new(0),
            cmd_flush: AtomicU64::new(0),
            total_items: AtomicU64::new(0),
            tallies: [const { AtomicU64::new(0) }; TALLIES],
        }
    }

    fn reset(&self) {
        let counters = [
            &self.cmd_get,
            &self.cmd_set,
            &self.cmd_touch,
            &self.cmd_flush,
            &self.total_items,
        ];
        for counter in counters.into_iter().chain(&self.tallies) {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

static COUNTERS: [Counters; COUNTER_SLOTS] = [const { Counters::new() }; COUNTER_SLOTS];

/// Adds `amount` to one of shard `shard`'s counters.
pub(super) fn count(shard: usize, counter: impl Fn(&Counters) -> &AtomicU64, amount: u64) {
    counter(&COUNTERS[shard % COUNTER_SLOTS]).fetch_add(amount, Ordering::Relaxed);
}

/// Counts one `tally` for shard `shard`.
pub(super) fn tally(shard: usize, tally: Tally) {
    count(shard, |counters| &counters.tallies[tally as usize], 1);
}

fn total(counter: impl Fn(&Counters) -> &AtomicU64) -> u64 {
    COUNTERS
        .iter()
        .map(|slot| counter(slot).load(Ordering::Relaxed))
        .sum()
}

/// Which `stats` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsKind {
    General,
    Settings,
    Items,
    Slabs,
    /// The hottest keys (Ferrite's own: count-min sketch over sampled accesses).
    HotKeys,
}

/// What the connection's shard knew when `stats` came; the shards' figures are added on arrival.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsRequest {
    kind: StatsKind,
    uptime_seconds: u64,
    time_seconds: u64,
    threads: u64,
    curr_connections: u64,
    max_connections: u64,
    item_size_max: u64,
    cmd_get: u64,
    cmd_set: u64,
    cmd_touch: u64,
    cmd_flush: u64,
    total_items: u64,
    tallies: [u64; TALLIES],
    /// Ferrite's observability settings, for `stats settings`.
    observe_settings: Vec<(String, String)>,
}

/// Runs `stats [args]`: every shard reports its figures.
pub(super) fn run(core: &mut Core, conn_index: u32, conn: &mut Conn, args: Keys<'_>) {
    let mut words = args.iter();
    let kind = match (words.next(), words.next()) {
        (None, _) => StatsKind::General,
        (Some(b"settings"), None) => StatsKind::Settings,
        (Some(b"items"), None) => StatsKind::Items,
        (Some(b"slabs"), None) => StatsKind::Slabs,
        (Some(b"hotkeys"), None) => StatsKind::HotKeys,
        (Some(b"reset"), None) => return reset(core, conn_index, conn),
        // memcached answers ERROR to the stats it does not know.
        _ => return reply::error(conn.reply_buffer(), ErrorKind::UnknownCommand),
    };
    let shared = &core.shared;
    let now = now_ms();
    let request = StatsRequest {
        kind,
        uptime_seconds: now.saturating_sub(shared.started_ms) / 1000,
        time_seconds: now / 1000,
        threads: shared.shard_count as u64,
        curr_connections: shared.clients.load(Ordering::Relaxed) as u64,
        max_connections: shared.clients_max() as u64,
        item_size_max: core.executor.value_bytes_max() as u64,
        cmd_get: total(|counters| &counters.cmd_get),
        cmd_set: total(|counters| &counters.cmd_set),
        cmd_touch: total(|counters| &counters.cmd_touch),
        cmd_flush: total(|counters| &counters.cmd_flush),
        total_items: total(|counters| &counters.total_items),
        tallies: std::array::from_fn(|index| total(|counters| &counters.tallies[index])),
        observe_settings: shared
            .settings
            .iter()
            .filter(|(name, _)| {
                name.starts_with("ferrite-observability") || name.starts_with("ferrite-metrics")
            })
            .cloned()
            .chain(core.observe.settings_pairs())
            .map(|(name, value)| (name.replace('-', "_"), value))
            .collect(),
    };
    let shards = shared.shard_count;
    let finish = ShardFinish::Memcache(Finish::Stats(Box::new(request)));
    core.run_multi(
        conn_index,
        conn,
        finish,
        (0..shards).map(|shard| (shard, Op::Stats)),
    );
}

/// `stats reset`: zeroes the command counters and every shard's figures (hits, misses, total
/// connections, bytes, latencies), as memcached's `stats_reset` does; answered RESET.
fn reset(core: &mut Core, conn_index: u32, conn: &mut Conn) {
    COUNTERS.iter().for_each(Counters::reset);
    let finish = ShardFinish::Memcache(Finish::EveryShard {
        done: Status::Reset,
        noreply: false,
    });
    let shards = core.shared.shard_count;
    core.run_multi(
        conn_index,
        conn,
        finish,
        (0..shards).map(|shard| (shard, Op::ResetStats(ResetScope::All))),
    );
}

/// Segments hold items of every size: `stats slabs` / `stats items` show one class, 1.
const SLAB_CLASS: &str = "1";
/// Bytes per page in `stats slabs`: the store's segment size.
const PAGE_BYTES: u64 = 1 << 20;

/// Writes the `stats` reply.
pub(super) fn encode(request: &StatsRequest, outcomes: &[Outcome<'_>], out: &mut Vec<u8>) {
    let figures = ShardFigures::total(outcomes);
    let merged = report::merge(report::snapshots(outcomes));
    let mut number = |name: &str, value: u64| reply::stat_number(out, name, value);
    match request.kind {
        StatsKind::General => {
            number("pid", u64::from(std::process::id()));
            number("uptime", request.uptime_seconds);
            number("time", request.time_seconds);
            reply::stat(out, "version", super::VERSION.as_bytes());
            let mut number = |name: &str, value: u64| reply::stat_number(out, name, value);
            number("pointer_size", usize::BITS.into());
            number("max_connections", request.max_connections);
            number("curr_connections", request.curr_connections);
            number("total_connections", figures.connections_total);
            number("cmd_get", request.cmd_get);
            number("cmd_set", request.cmd_set);
            number("cmd_flush", request.cmd_flush);
            number("cmd_touch", request.cmd_touch);
            for (name, value) in TALLY_NAMES.iter().zip(request.tallies) {
                number(name, value);
            }
            number("evictions", figures.evicted_items);
            number("expired_unfetched", figures.expired_items);
            number("limit_maxbytes", figures.bytes_limit);
            number("threads", request.threads);
            number("bytes", figures.bytes_used);
            number("curr_items", figures.items);
            number("total_items", request.total_items);
            number("bytes_read", merged.counters.bytes_in);
            number("bytes_written", merged.counters.bytes_out);
            number("rejected_connections", merged.counters.connections_rejected);
            number("protocol_errors", merged.counters.protocol_errors);
            for (family, histogram) in Family::ALL.iter().zip(&merged.latency) {
                for (name, quantile) in report::QUANTILES {
                    let value = histogram.value_at_quantile(quantile) / 1000;
                    number(&format!("latency_{}_{name}_us", family.name()), value);
                }
            }
            for (name, value) in figures
                .tier
                .lines()
                .into_iter()
                .filter(|_| figures.tier.tiered())
            {
                number(name, value);
            }
        }
        StatsKind::Settings => {
            number("maxbytes", figures.bytes_limit);
            number("maxconns", request.max_connections);
            number("num_threads", request.threads);
            number("item_size_max", request.item_size_max);
            reply::stat(out, "evictions", b"on");
            reply::stat(out, "cas_enabled", b"yes");
            if figures.tier.tiered() {
                reply::stat_number(out, "tier_cold_maxbytes", figures.tier.cold_bytes_limit);
            }
            for (name, value) in &request.observe_settings {
                reply::stat(out, name, value.as_bytes());
            }
        }
        StatsKind::HotKeys => {
            for (rank, hot) in merged.hot_keys.iter().enumerate() {
                let key = report::printable_key(&hot.key);
                reply::stat(out, &format!("hotkey:{}:key", rank + 1), key.as_bytes());
                reply::stat_number(out, &format!("hotkey:{}:accesses", rank + 1), hot.accesses);
            }
        }
        StatsKind::Items => {
            let name = |stat: &str| format!("items:{SLAB_CLASS}:{stat}");
            number(&name("number"), figures.items);
            number(&name("evicted"), figures.evicted_items);
            number(&name("expired_unfetched"), figures.expired_items);
        }
        StatsKind::Slabs => {
            let name = |stat: &str| format!("{SLAB_CLASS}:{stat}");
            let pages = figures.bytes_used.div_ceil(PAGE_BYTES);
            number(&name("chunk_size"), request.item_size_max);
            number(
                &name("chunks_per_page"),
                PAGE_BYTES / request.item_size_max.max(1),
            );
            number(&name("total_pages"), pages);
            number(&name("used_chunks"), figures.items);
            number(&name("mem_requested"), figures.bytes_used);
            number("active_slabs", 1);
            number("total_malloced", figures.bytes_used);
        }
    }
    reply::status(out, Status::End);
}
