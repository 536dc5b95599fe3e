//! Observability: what each shard counts and times, and where it is read.
//!
//! Each shard owns one [`Observer`]: plain counters, latency histograms per command family
//! (hdrhistogram), calls per command, a hot-key sketch ([`hotkeys`]), a slow log ([`slowlog`])
//! and an anomaly detector ([`anomaly`]). Only the shard writes to it, without atomics; readers
//! (INFO, memcached `stats`, SLOWLOG, FERRITE.HOTKEYS, the Prometheus endpoint in
//! [`exporter`]) ask every shard for a [`Snapshot`] (by `Op::Stats`, or by mail from the
//! exporter's thread) and add them up ([`report`]).
//!
//! Latency is measured from the moment a read batch reached the shard to the moment a
//! command's reply was queued, or, for a reply that waits for other shards, to the moment its
//! last outcome arrived: one clock read per command, plus one for the first batch of a loop
//! tick (the batches after it start when the previous command ended). With `--observability off` no clock is
//! read, no histogram, slow log, hot-key sketch or anomaly window is kept; the counters stay.

pub mod anomaly;
pub mod exporter;
pub mod hotkeys;
pub mod report;
pub mod slowlog;

use quanta::Instant;

use hdrhistogram::Histogram;

use crate::commands::table::{Spec, COMMANDS};
use crate::exec::{Op, Outcome};
use crate::protocol::memcache::{Command as MemcacheCommand, MetaKind, StoreMode};
use crate::shard::conn::Conn;
use anomaly::{Detector, Signal, Window};
use hotkeys::{HotKey, HotKeys};
use slowlog::{SlowEntry, SlowLog};

/// Largest latency a histogram holds (longer ones are recorded as this): one minute.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Significant decimal digits the histograms keep (1 % resolution; about 30 KiB each).
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 2;

/// How a shard observes, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Timing, histograms, slow log, hot keys and anomaly windows (`--observability`).
    pub enabled: bool,
    /// `--slowlog-log-slower-than`, microseconds (negative: off).
    pub slowlog_slower_than_us: i64,
    /// `--slowlog-max-len`, entries per shard.
    pub slowlog_len_max: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: true,
            slowlog_slower_than_us: slowlog::SLOWER_THAN_US_DEFAULT,
            slowlog_len_max: slowlog::LEN_MAX_DEFAULT,
        }
    }
}

/// Commands by what they do to the keyspace; each family has its own latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Read,
    Write,
    Other,
}

/// Number of [`Family`] values.
pub const FAMILY_COUNT: usize = 3;

impl Family {
    pub const ALL: [Family; FAMILY_COUNT] = [Family::Read, Family::Write, Family::Other];

    pub fn name(self) -> &'static str {
        match self {
            Family::Read => "read",
            Family::Write => "write",
            Family::Other => "other",
        }
    }
}

/// The memcached commands, named with an `mc_` prefix (so memcached's `get` is not RESP's), and
/// their families.
const MEMCACHE_COMMANDS: [(&str, Family); 25] = [
    ("mc_get", Family::Read),
    ("mc_gets", Family::Read),
    ("mc_gat", Family::Read),
    ("mc_gats", Family::Read),
    ("mc_set", Family::Write),
    ("mc_add", Family::Write),
    ("mc_replace", Family::Write),
    ("mc_append", Family::Write),
    ("mc_prepend", Family::Write),
    ("mc_cas", Family::Write),
    ("mc_incr", Family::Write),
    ("mc_decr", Family::Write),
    ("mc_delete", Family::Write),
    ("mc_touch", Family::Write),
    ("mc_flush_all", Family::Write),
    ("mc_version", Family::Other),
    ("mc_verbosity", Family::Other),
    ("mc_quit", Family::Other),
    ("mc_stats", Family::Other),
    ("mc_mg", Family::Read),
    ("mc_ms", Family::Write),
    ("mc_md", Family::Write),
    ("mc_ma", Family::Write),
    ("mc_me", Family::Read),
    ("mc_mn", Family::Other),
];

/// The position of `name` in [`MEMCACHE_COMMANDS`] (evaluated at compile time; a name missing
/// from the list fails the build).
const fn memcache_index(name: &str) -> usize {
    let name = name.as_bytes();
    let mut index = 0;
    while index < MEMCACHE_COMMANDS.len() {
        let known = MEMCACHE_COMMANDS[index].0.as_bytes();
        if known.len() == name.len() {
            let mut byte = 0;
            while byte < name.len() && known[byte] == name[byte] {
                byte += 1;
            }
            if byte == name.len() {
                return index;
            }
        }
        index += 1;
    }
    panic!("a memcached command missing from MEMCACHE_COMMANDS");
}

/// Which command ran: an index over the RESP table, then the memcached commands, then one
/// slot for unknown RESP commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CommandId(u16);

impl CommandId {
    /// Commands there are ids for.
    pub fn count() -> usize {
        COMMANDS.len() + MEMCACHE_COMMANDS.len() + 1
    }

    /// A RESP command not in the table.
    pub fn unknown() -> CommandId {
        CommandId((Self::count() - 1) as u16)
    }

    /// A RESP command of the table.
    pub fn resp(spec: &'static Spec) -> CommandId {
        // The table is one static slice: the entry's index is its offset in it.
        let offset = spec as *const Spec as usize - COMMANDS.as_ptr() as usize;
        let index = offset / std::mem::size_of::<Spec>();
        debug_assert!(std::ptr::eq(&COMMANDS[index], spec));
        CommandId(index as u16)
    }

    pub fn memcache(command: &MemcacheCommand<'_>) -> CommandId {
        // Names are looked up when compiling, not per command.
        let index = match command {
            MemcacheCommand::Get { cas: false, .. } => const { memcache_index("mc_get") },
            MemcacheCommand::Get { cas: true, .. } => const { memcache_index("mc_gets") },
            MemcacheCommand::GetAndTouch { cas: false, .. } => const { memcache_index("mc_gat") },
            MemcacheCommand::GetAndTouch { cas: true, .. } => const { memcache_index("mc_gats") },
            MemcacheCommand::Store { mode, .. } => match mode {
                StoreMode::Set => const { memcache_index("mc_set") },
                StoreMode::Add => const { memcache_index("mc_add") },
                StoreMode::Replace => const { memcache_index("mc_replace") },
                StoreMode::Append => const { memcache_index("mc_append") },
                StoreMode::Prepend => const { memcache_index("mc_prepend") },
                StoreMode::Cas { .. } => const { memcache_index("mc_cas") },
            },
            MemcacheCommand::Arithmetic {
                decrement: false, ..
            } => const { memcache_index("mc_incr") },
            MemcacheCommand::Arithmetic {
                decrement: true, ..
            } => const { memcache_index("mc_decr") },
            MemcacheCommand::Delete { .. } => const { memcache_index("mc_delete") },
            MemcacheCommand::Touch { .. } => const { memcache_index("mc_touch") },
            MemcacheCommand::FlushAll { .. } => const { memcache_index("mc_flush_all") },
            MemcacheCommand::Version => const { memcache_index("mc_version") },
            MemcacheCommand::Verbosity { .. } => const { memcache_index("mc_verbosity") },
            MemcacheCommand::Quit => const { memcache_index("mc_quit") },
            MemcacheCommand::Stats { .. } => const { memcache_index("mc_stats") },
            MemcacheCommand::Meta { kind, .. } => match kind {
                MetaKind::Get => const { memcache_index("mc_mg") },
                MetaKind::Set => const { memcache_index("mc_ms") },
                MetaKind::Delete => const { memcache_index("mc_md") },
                MetaKind::Arithmetic => const { memcache_index("mc_ma") },
                MetaKind::Debug => const { memcache_index("mc_me") },
            },
            MemcacheCommand::MetaNoop => const { memcache_index("mc_mn") },
        };
        CommandId((COMMANDS.len() + index) as u16)
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    pub fn from_index(index: usize) -> CommandId {
        assert!(index < Self::count(), "command index out of range");
        CommandId(index as u16)
    }

    pub fn name(self) -> &'static str {
        let index = self.index();
        match COMMANDS.get(index) {
            Some(spec) => spec.name,
            None => MEMCACHE_COMMANDS
                .get(index - COMMANDS.len())
                .map_or("unknown", |(name, _)| name),
        }
    }

    pub fn family(self) -> Family {
        let index = self.index();
        match COMMANDS.get(index) {
            Some(spec) if spec.flags.contains(&"write") => Family::Write,
            Some(spec) if spec.flags.contains(&"readonly") => Family::Read,
            Some(_) => Family::Other,
            None => MEMCACHE_COMMANDS
                .get(index - COMMANDS.len())
                .map_or(Family::Other, |(_, family)| *family),
        }
    }
}

/// A shard's plain counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes the socket (or RDMA link) took from us.
    pub bytes_out: u64,
    /// Connections turned away (`--max-clients`, or arriving during shutdown).
    pub connections_rejected: u64,
    /// Requests that did not parse (the connection got the protocol's error).
    pub protocol_errors: u64,
    /// Messages posted to other shards (each carries every request and reply of one tick).
    pub mail_sent: u64,
    /// SET-family writes (memcached's storage commands included) that stored an item; a SET
    /// with GET, which answers the old value, is not counted.
    pub sets: u64,
    /// Keys deleted by a delete command.
    pub deletes: u64,
}

/// Calls of one command and the time they took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    pub calls: u64,
    pub time_ns: u64,
}

/// What CONFIG RESETSTAT and SLOWLOG RESET clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetScope {
    /// Every counter, histogram, hot key and the slow log.
    All,
    Slowlog,
}

/// Store recovery figures of a shard's file tier (zero for DRAM).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryFigures {
    pub items_restored: u64,
    pub items_corrupt: u64,
    pub items_expired: u64,
    pub segments_corrupt: u64,
}

impl RecoveryFigures {
    pub fn of(report: Option<&persistent::RecoveryReport>) -> RecoveryFigures {
        report.map_or_else(RecoveryFigures::default, |report| RecoveryFigures {
            items_restored: report.items_restored,
            items_corrupt: report.items_corrupt,
            items_expired: report.items_expired,
            segments_corrupt: report.segments_corrupt,
        })
    }
}

/// One shard's figures at one moment, as readers get them.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub shard: usize,
    pub enabled: bool,
    pub counters: Counters,
    /// Commands called at least once.
    pub calls: Vec<(CommandId, CallStats)>,
    /// One histogram per [`Family`], in nanoseconds.
    pub latency: Vec<Histogram<u64>>,
    pub hot_keys: Vec<HotKey>,
    pub slowlog: Vec<SlowEntry>,
    /// Windows that fired each [`Signal`], in [`Signal::ALL`] order.
    pub anomalies: [u64; 3],
    pub recovery: RecoveryFigures,
}

// Histograms compare by their counts, an equivalence.
impl Eq for Snapshot {}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("the bounds are valid constants")
}

/// Where a shard is in its current anomaly window.
#[derive(Debug, Default)]
struct WindowStart {
    at_ms: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
}

/// One shard's observability state; written only by its shard.
#[derive(Debug)]
pub struct Observer {
    shard: usize,
    enabled: bool,
    pub counters: Counters,
    calls: Box<[CallStats]>,
    /// Each command's family, by [`CommandId::index`] (looked up once, not per command).
    families: Box<[Family]>,
    latency: Vec<Histogram<u64>>,
    /// Every command's latency in the current anomaly window.
    window_latency: Histogram<u64>,
    window: WindowStart,
    hot_keys: HotKeys,
    slowlog: SlowLog,
    detector: Detector,
    /// When the read batch being processed reached the shard (None when timing is off).
    batch_started: Option<Instant>,
    /// When the command being run started: the batch's arrival, or the end of the command
    /// before it in the batch (the slow log times each command's own work).
    command_started: Option<Instant>,
    /// The last clock reading of this loop tick: a batch that follows work in the same tick
    /// starts when that work ended, without a clock read of its own.
    tick_clock: Option<Instant>,
}

impl Observer {
    pub fn new(shard: usize, shard_count: usize, settings: Settings) -> Observer {
        // The TSC clock calibrates on first use (up to 200 ms): at start, not on a command.
        Instant::now();
        Observer {
            shard,
            enabled: settings.enabled,
            counters: Counters::default(),
            calls: vec![CallStats::default(); CommandId::count()].into_boxed_slice(),
            families: (0..CommandId::count())
                .map(|index| CommandId::from_index(index).family())
                .collect(),
            latency: Family::ALL.iter().map(|_| latency_histogram()).collect(),
            window_latency: latency_histogram(),
            window: WindowStart::default(),
            hot_keys: HotKeys::new(hotkeys::SAMPLE_ONE_IN, 0x9E37_79B9 ^ shard as u64),
            slowlog: SlowLog::new(
                shard,
                shard_count,
                settings.slowlog_slower_than_us,
                settings.slowlog_len_max,
            ),
            detector: Detector::default(),
            batch_started: None,
            command_started: None,
            tick_clock: None,
        }
    }

    /// A read batch reached the shard: the commands parsed from it are timed from now (or
    /// from the end of the previous command, when the shard went on from it in the same tick).
    pub fn begin_batch(&mut self) {
        if self.enabled {
            let now = *self.tick_clock.get_or_insert_with(Instant::now);
            self.batch_started = Some(now);
            self.command_started = Some(now);
        }
    }

    /// The loop tick ended: the next batch may have waited, so it reads the clock again.
    pub fn end_tick(&mut self) {
        self.tick_clock = None;
    }

    /// A command was run: counts it and logs it as slow when it is (`arguments` are asked for
    /// only then). Its latency is recorded now when its reply is queued; when the reply
    /// `waits` for other shards, the batch's start is returned, for [`Observer::reply_ready`]
    /// to record the latency when the last outcome arrives. The slow log, like Redis', times
    /// the command's own work: up to here.
    pub fn command_done<'a>(
        &mut self,
        id: CommandId,
        conn: &Conn,
        waits: bool,
        arguments: impl FnOnce() -> Vec<&'a [u8]>,
    ) -> Option<Instant> {
        self.calls[id.index()].calls += 1;
        let started = self.batch_started?;
        let now = Instant::now();
        self.tick_clock = Some(now);
        let own_work = self.command_started.replace(now).unwrap_or(started);
        let duration_ns = nanos_between(started, now);
        if !waits {
            self.record_latency(id, duration_ns);
        }
        let own_ns = nanos_between(own_work, now);
        if self.slowlog.is_slow(own_ns) {
            let unix_seconds = crate::shard::now_ms() / 1000;
            self.slowlog.push(
                own_ns,
                unix_seconds,
                arguments().into_iter(),
                conn.peer.to_string(),
                conn.resp.name.clone().unwrap_or_default(),
            );
        }
        waits.then_some(started)
    }

    /// The last outcome of a command that waited for other shards arrived: its reply is ready.
    pub fn reply_ready(&mut self, id: CommandId, started: Instant) {
        let now = Instant::now();
        self.tick_clock = Some(now);
        self.record_latency(id, nanos_between(started, now));
    }

    fn record_latency(&mut self, id: CommandId, duration_ns: u64) {
        self.calls[id.index()].time_ns += duration_ns;
        self.latency[self.families[id.index()] as usize].saturating_record(duration_ns);
        self.window_latency.saturating_record(duration_ns);
    }

    /// An op ran on this shard's store: count writes and deletes, sample its key.
    pub fn op_done(&mut self, op: &Op<'_>, outcome: &Outcome<'_>) {
        match (op, outcome) {
            (Op::Set { .. }, Outcome::Stored { .. }) => self.counters.sets += 1,
            (Op::Delete { .. }, Outcome::Integer(deleted)) => {
                self.counters.deletes += *deleted as u64
            }
            _ => {}
        }
        if self.enabled {
            if let Some(key) = op.key() {
                self.hot_keys.access(key);
            }
        }
    }

    /// Called on every store tick; closes an anomaly window when one is due. `hits`, `misses`
    /// and `evictions` are the shard's running totals.
    pub fn tick(&mut self, now_ms: u64, hits: u64, misses: u64, evictions: u64) {
        if !self.enabled {
            return;
        }
        if self.window.at_ms == 0 {
            self.start_window(now_ms, hits, misses, evictions);
            return;
        }
        if now_ms.saturating_sub(self.window.at_ms) < anomaly::WINDOW_MS {
            return;
        }
        let commands = self.window_latency.len();
        let window = Window {
            hits: hits.saturating_sub(self.window.hits),
            misses: misses.saturating_sub(self.window.misses),
            evictions: evictions.saturating_sub(self.window.evictions),
            commands,
            p99_ns: self.window_latency.value_at_quantile(0.99),
        };
        for fired in self.detector.observe(&window, now_ms) {
            if fired.log {
                tracing::warn!(
                    shard = self.shard,
                    signal = fired.signal.name(),
                    observed = fired.observed,
                    baseline = fired.baseline,
                    hits = window.hits,
                    misses = window.misses,
                    evictions = window.evictions,
                    commands = window.commands,
                    p99_us = window.p99_ns / 1000,
                    "anomaly (logged at most once a minute per signal; every window is counted)"
                );
            }
        }
        self.start_window(now_ms, hits, misses, evictions);
    }

    fn start_window(&mut self, now_ms: u64, hits: u64, misses: u64, evictions: u64) {
        self.window_latency.reset();
        self.window = WindowStart {
            at_ms: now_ms,
            hits,
            misses,
            evictions,
        };
    }

    /// A CONFIG SET change: the slow log's settings are kept here.
    pub fn configure(&mut self, change: &crate::tunables::Change) {
        match change {
            crate::tunables::Change::SlowlogSlowerThan(micros) => {
                self.slowlog.set_slower_than_us(*micros)
            }
            crate::tunables::Change::SlowlogMaxLen(length) => self.slowlog.set_len_max(*length),
            _ => {}
        }
    }

    /// The CONFIG GET pairs of the settings kept here.
    pub fn settings_pairs(&self) -> [(String, String); 2] {
        [
            (
                "slowlog-log-slower-than".to_owned(),
                self.slowlog.slower_than_us().to_string(),
            ),
            (
                "slowlog-max-len".to_owned(),
                self.slowlog.len_max().to_string(),
            ),
        ]
    }

    pub fn reset(&mut self, scope: ResetScope) {
        self.slowlog.reset();
        if scope == ResetScope::Slowlog {
            return;
        }
        self.counters = Counters::default();
        self.calls
            .iter_mut()
            .for_each(|calls| *calls = CallStats::default());
        self.latency.iter_mut().for_each(Histogram::reset);
        self.hot_keys.reset();
        self.detector.reset_counts();
        // The window's running totals restart with the store's counters.
        self.window.at_ms = 0;
    }

    pub fn snapshot(&self, recovery: RecoveryFigures) -> Snapshot {
        Snapshot {
            shard: self.shard,
            enabled: self.enabled,
            counters: self.counters,
            calls: self
                .calls
                .iter()
                .enumerate()
                .filter(|(_, calls)| calls.calls > 0)
                .map(|(index, calls)| (CommandId::from_index(index), *calls))
                .collect(),
            latency: self.latency.clone(),
            hot_keys: self.hot_keys.top(),
            slowlog: self.slowlog.entries().cloned().collect(),
            anomalies: Signal::ALL.map(|signal| self.detector.count(signal)),
            recovery,
        }
    }
}

/// Nanoseconds from `start` to `end`, at least 1 (a recorded latency is never zero).
fn nanos_between(start: Instant, end: Instant) -> u64 {
    (end.duration_since(start).as_nanos() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_name_and_classify_every_command() {
        let get = crate::commands::table::lookup(b"GET").unwrap();
        let id = CommandId::resp(get);
        assert_eq!(id.name(), "get");
        assert_eq!(id.family(), Family::Read);
        let set = CommandId::resp(crate::commands::table::lookup(b"set").unwrap());
        assert_eq!(set.family(), Family::Write);
        let ping = CommandId::resp(crate::commands::table::lookup(b"ping").unwrap());
        assert_eq!(ping.family(), Family::Other);
        assert_eq!(CommandId::unknown().name(), "unknown");
        for (index, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(CommandId::resp(spec).index(), index);
        }
        let names: std::collections::HashSet<&str> = (0..CommandId::count())
            .map(|index| CommandId::from_index(index).name())
            .collect();
        assert_eq!(names.len(), CommandId::count(), "names are unique");
        let limits = crate::protocol::memcache::Limits::default();
        let Ok(crate::protocol::memcache::Parsed::Complete { command, .. }) =
            crate::protocol::memcache::parse(b"gets a b\r\n", &limits)
        else {
            panic!("gets parses");
        };
        let mc = CommandId::memcache(&command);
        assert_eq!((mc.name(), mc.family()), ("mc_gets", Family::Read));
    }

    #[test]
    fn the_slow_log_times_each_command_of_a_batch_by_its_own_work() {
        let settings = Settings {
            slowlog_slower_than_us: 20_000,
            ..Settings::default()
        };
        let mut observer = Observer::new(0, 1, settings);
        let peer = "127.0.0.1:1".parse().unwrap();
        let conn = Conn::new(1, 1, crate::shard::conn::Protocol::Resp, peer, 0);
        let get = CommandId::resp(crate::commands::table::lookup(b"GET").unwrap());
        observer.begin_batch();
        // The first command of the batch works for 50 ms; the next ones take no time.
        std::thread::sleep(std::time::Duration::from_millis(50));
        observer.command_done(get, &conn, false, || vec![&b"get"[..], b"slow"]);
        observer.command_done(get, &conn, false, || vec![&b"get"[..], b"fast"]);
        observer.command_done(get, &conn, false, || vec![&b"get"[..], b"fast"]);
        assert_eq!(observer.slowlog.len(), 1, "only the slow command is logged");
        // Latency still runs from the batch's arrival to each reply.
        let family = observer.families[get.index()] as usize;
        assert_eq!(observer.latency[family].len(), 3);
        assert!(
            observer.latency[family].min() >= 45_000_000,
            "within the histogram's precision"
        );
    }
}
