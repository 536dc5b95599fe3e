//! Runs one load: threads of epoll-driven connections, each with one pipelined batch in flight.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use platform::verbs::LinkConfig;

use super::transport::{Transport, TransportKind};
use super::wire::{Framed, Outcome, Protocol};
use super::workload::{value_for, write_key, KeyDistribution, KeyPicker, ValueKind};

/// Latencies above this are clamped (a minute: anything slower is a stall worth seeing as max).
const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Epoll events taken per wait.
const EVENTS_PER_WAIT: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Set,
    Get,
    /// Random keys, GETs; a GET that misses is followed by a SET of its key in the
    /// connection's next batch (a look-aside cache filling itself). `requests` counts the GETs.
    Cache,
    /// Random keys, GET with probability `read_ratio`, else SET.
    Mixed {
        read_ratio: f64,
    },
    /// SET key_start.. key_start+requests, in order (a preload).
    Load,
    /// GET key_start.. key_start+requests, in order, each once (what a load wrote: a read that
    /// no earlier read of the run has warmed).
    Read,
    /// SET every key of the range with its key-derived value, then GET each and compare.
    Verify,
}

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub protocol: Protocol,
    pub address: SocketAddr,
    pub transport: TransportKind,
    pub mode: Mode,
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub requests: u64,
    pub keyspace: u64,
    pub key_start: u64,
    pub key_digits: usize,
    pub value_size: usize,
    pub value_kind: ValueKind,
    pub keys: KeyDistribution,
    pub max_duration: Duration,
    pub seed: u64,
}

/// What one run did.
pub struct Report {
    pub latency_ns: Histogram<u64>,
    pub stored: u64,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    /// GET replies whose value was not the one written (verify mode).
    pub wrong_values: u64,
    pub io_errors: u64,
    pub wall: Duration,
}

impl Report {
    pub fn replies(&self) -> u64 {
        self.stored + self.hits + self.misses + self.errors
    }

    fn merge(&mut self, other: &Report) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms share bounds");
        self.stored += other.stored;
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        self.wrong_values += other.wrong_values;
        self.io_errors += other.io_errors;
    }

    fn empty() -> Report {
        Report {
            latency_ns: Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid bounds"),
            stored: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            wrong_values: 0,
            io_errors: 0,
            wall: Duration::ZERO,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Random,
    Sequential,
    VerifySet,
    VerifyGet,
}

struct Connection {
    transport: Transport,
    output: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    /// Key number of each request of the batch in flight, for verify.
    batch_keys: Vec<u64>,
    batch_replies: usize,
    /// Keys whose GET missed, set at the start of the next batch (cache mode).
    refill: Vec<u64>,
    batch_started: Instant,
    picker: KeyPicker,
    idle: bool,
    broken: bool,
}

/// Requests are claimed in batches from one counter shared by all threads.
struct Claims {
    next: AtomicU64,
    limit: u64,
}

impl Claims {
    fn claim(&self, count: usize) -> Option<(u64, usize)> {
        let start = self.next.fetch_add(count as u64, Ordering::Relaxed);
        (start < self.limit).then(|| (start, count.min((self.limit - start) as usize)))
    }
}

/// Runs the load and returns its report. Connect failures are returned, not retried.
pub fn run(config: &LoadConfig) -> std::io::Result<Report> {
    let phases: &[Phase] = match config.mode {
        Mode::Set | Mode::Get | Mode::Cache | Mode::Mixed { .. } => &[Phase::Random],
        Mode::Load | Mode::Read => &[Phase::Sequential],
        Mode::Verify => &[Phase::VerifySet, Phase::VerifyGet],
    };
    let mut connections = Vec::with_capacity(config.connections);
    for index in 0..config.connections {
        let transport = Transport::connect(
            config.transport,
            config.address,
            config.protocol.greeting(),
            LinkConfig::default(),
        )?;
        let seed = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64 + 1);
        connections.push(Connection {
            transport,
            output: Vec::with_capacity(64 * 1024),
            written: 0,
            input: Vec::with_capacity(64 * 1024),
            batch_keys: Vec::with_capacity(config.pipeline),
            refill: Vec::with_capacity(config.pipeline),
            batch_replies: 0,
            batch_started: Instant::now(),
            picker: KeyPicker::new(config.keys, config.keyspace, seed),
            idle: true,
            broken: false,
        });
    }
    let threads = config.threads.clamp(1, config.connections.max(1));
    let mut groups: Vec<Vec<Connection>> = (0..threads).map(|_| Vec::new()).collect();
    for (index, connection) in connections.into_iter().enumerate() {
        groups[index % threads].push(connection);
    }
    let mut total = Report::empty();
    let started = Instant::now();
    let deadline = started + config.max_duration;
    for &phase in phases {
        let claims = Claims {
            next: AtomicU64::new(0),
            limit: config.requests,
        };
        let barrier = Barrier::new(threads);
        let reports: Vec<Report> = std::thread::scope(|scope| {
            let workers: Vec<_> = groups
                .iter_mut()
                .map(|group| {
                    let (claims, barrier) = (&claims, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        drive(config, phase, group, claims, deadline)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("load thread panicked"))
                .collect()
        });
        for report in &reports {
            total.merge(report);
        }
    }
    total.wall = started.elapsed();
    Ok(total)
}

fn drive(
    config: &LoadConfig,
    phase: Phase,
    group: &mut [Connection],
    claims: &Claims,
    deadline: Instant,
) -> Report {
    let mut report = Report::empty();
    // SAFETY: epoll_create1 with valid flags; the fd is closed at the end of this function.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(
        epoll >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    for (index, connection) in group.iter().enumerate() {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: index as u64,
        };
        // SAFETY: both fds are open; `event` is valid for the call.
        unsafe {
            libc::epoll_ctl(
                epoll,
                libc::EPOLL_CTL_ADD,
                connection.transport.fd(),
                &mut event,
            )
        };
    }
    let value = value_for(config.value_kind, 0, config.value_size);
    let mut key = Vec::with_capacity(64);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
    let mut exhausted = false;
    loop {
        if !exhausted && Instant::now() < deadline {
            for connection in group
                .iter_mut()
                .filter(|connection| connection.idle && !connection.broken)
            {
                let Some((start, count)) = claims.claim(config.pipeline) else {
                    exhausted = true;
                    break;
                };
                start_batch(config, phase, connection, start, count, &value, &mut key);
                flush(connection, &mut report);
            }
        }
        if group
            .iter()
            .all(|connection| connection.idle || connection.broken)
        {
            break;
        }
        let wait_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .clamp(1, 1000) as i32;
        // SAFETY: `events` has EVENTS_PER_WAIT entries.
        let ready = unsafe {
            libc::epoll_wait(epoll, events.as_mut_ptr(), EVENTS_PER_WAIT as i32, wait_ms)
        };
        if ready <= 0 && Instant::now() >= deadline {
            break;
        }
        for event in &events[..ready.max(0) as usize] {
            let connection = &mut group[event.u64 as usize];
            if connection.written < connection.output.len() {
                flush(connection, &mut report);
            }
            receive(config, phase, connection, &mut report);
        }
    }
    // SAFETY: closes the epoll fd made above, once.
    unsafe { libc::close(epoll) };
    report
}

fn start_batch(
    config: &LoadConfig,
    phase: Phase,
    connection: &mut Connection,
    start: u64,
    count: usize,
    fill_value: &[u8],
    key: &mut Vec<u8>,
) {
    connection.output.clear();
    connection.written = 0;
    connection.batch_keys.clear();
    connection.batch_replies = 0;
    for number in connection.refill.drain(..) {
        key.clear();
        write_key(key, number, config.key_digits);
        let value = value_for(config.value_kind, number, config.value_size);
        config
            .protocol
            .write_set(&mut connection.output, key, &value);
        connection.batch_keys.push(number);
    }
    for offset in 0..count as u64 {
        let number = match phase {
            Phase::Random => connection.picker.pick(),
            Phase::Sequential | Phase::VerifySet | Phase::VerifyGet => {
                config.key_start + start + offset
            }
        };
        key.clear();
        write_key(key, number, config.key_digits);
        let read = match (phase, config.mode) {
            (Phase::VerifyGet, _)
            | (Phase::Random, Mode::Get | Mode::Cache)
            | (Phase::Sequential, Mode::Read) => true,
            (Phase::Random, Mode::Mixed { read_ratio }) => connection.picker.chance(read_ratio),
            _ => false,
        };
        if read {
            config.protocol.write_get(&mut connection.output, key);
        } else if phase == Phase::VerifySet || config.value_kind == ValueKind::Json {
            let value = value_for(config.value_kind, number, config.value_size);
            config
                .protocol
                .write_set(&mut connection.output, key, &value);
        } else {
            config
                .protocol
                .write_set(&mut connection.output, key, fill_value);
        }
        connection.batch_keys.push(number);
    }
    connection.idle = false;
    connection.batch_started = Instant::now();
}

fn flush(connection: &mut Connection, report: &mut Report) {
    while connection.written < connection.output.len() {
        match connection
            .transport
            .write(&connection.output[connection.written..])
        {
            Ok(0) => return fail(connection, report),
            Ok(written) => connection.written += written,
            Err(error) if error.kind() == ErrorKind::WouldBlock => return,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return fail(connection, report),
        }
    }
}

fn fail(connection: &mut Connection, report: &mut Report) {
    connection.broken = true;
    report.io_errors += 1;
}

fn receive(config: &LoadConfig, phase: Phase, connection: &mut Connection, report: &mut Report) {
    if !matches!(
        connection.transport.read_into(&mut connection.input),
        Ok(true)
    ) {
        return fail(connection, report);
    }
    let now = Instant::now();
    let mut consumed = 0;
    while connection.batch_replies < connection.batch_keys.len() {
        match config.protocol.frame_reply(&connection.input[consumed..]) {
            Framed::Incomplete => break,
            Framed::Garbage => return fail(connection, report),
            Framed::Reply {
                len,
                outcome,
                value,
            } => {
                match outcome {
                    Outcome::Stored => report.stored += 1,
                    Outcome::Hit => report.hits += 1,
                    Outcome::Miss => {
                        report.misses += 1;
                        if config.mode == Mode::Cache {
                            let number = connection.batch_keys[connection.batch_replies];
                            connection.refill.push(number);
                        }
                    }
                    Outcome::Error => report.errors += 1,
                }
                if let (Phase::VerifyGet, Some((offset, length))) = (phase, value) {
                    let number = connection.batch_keys[connection.batch_replies];
                    let expected = value_for(config.value_kind, number, config.value_size);
                    let got = &connection.input[consumed + offset..consumed + offset + length];
                    report.wrong_values += u64::from(got != expected.as_slice());
                }
                let latency = now.duration_since(connection.batch_started).as_nanos() as u64;
                report
                    .latency_ns
                    .saturating_record(latency.clamp(1, LATENCY_NS_MAX));
                connection.batch_replies += 1;
                consumed += len;
            }
        }
    }
    connection.input.drain(..consumed);
    if connection.batch_replies == connection.batch_keys.len() {
        connection.idle = true;
    }
}
