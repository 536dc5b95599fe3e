//! A shard: one thread, one core, one store, its connections and its mailbox.
//!
//! This is the part of the datapath both event loops share. A loop (epoll or io_uring) owns the
//! sockets and calls in with what happened — a connection accepted, bytes received, output sent,
//! a connection closed, mail waiting — and then sends whatever output the shard produced. The
//! shard parses, routes each key to its owner shard, executes what it owns, batches what it
//! does not into one message per target shard per tick, and keeps every connection's replies
//! in request order.

pub mod conn;
pub mod finish;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::exec::{Executor, Op, Outcome};
use crate::mailbox::{Address, Mailbox};
use crate::observe::{CommandId, Observer, RecoveryFigures, ResetScope};
use crate::protocol::resp;
use crate::tunables::{Change, Tunables};
use conn::{Conn, Protocol, INPUT_BYTES_MAX};
use finish::Finish;

/// Where a cross-shard reply goes: connection slot (checked by generation), reply, part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub conn: u32,
    pub generation: u32,
    pub seq: u64,
    pub part: u32,
}

#[derive(Debug)]
pub struct RemoteRequest {
    pub ticket: Ticket,
    pub op: Op<'static>,
}

#[derive(Debug)]
pub struct RemoteReply {
    pub ticket: Ticket,
    pub outcome: Outcome<'static>,
}

/// One message between shards: everything one shard had for another in one loop tick.
#[derive(Debug, Default)]
pub struct Mail {
    pub from: usize,
    pub requests: Vec<RemoteRequest>,
    pub replies: Vec<RemoteReply>,
    /// The metrics endpoint asks for the shard's figures (`Op::Stats`) on this channel.
    pub observe: Option<crossbeam::channel::Sender<crate::exec::ShardFigures>>,
}

/// Facts about the whole server that every shard reads (INFO, CLIENT) and the few counters
/// touched only when a connection opens or closes, never per request.
#[derive(Debug)]
pub struct Shared {
    pub shard_count: usize,
    /// Most client connections at once (CONFIG SET maxclients changes it).
    pub clients_max: AtomicUsize,
    pub clients: AtomicUsize,
    pub next_client_id: AtomicU64,
    /// Set once by the signal handler thread; every loop checks it when woken.
    pub stopping: AtomicBool,
    /// Shards that have no replies left to send after a stop.
    pub drained: AtomicUsize,
    pub started_ms: u64,
    /// `# Server` section lines for INFO (version, ports, backend, offload, arena, ...).
    pub server_info: String,
    /// Name and value of every setting CONFIG GET reports.
    pub settings: Vec<(String, String)>,
    /// Each shard's io_uring descriptor once its loop runs (-1 before, or under epoll): other
    /// shards wake it with IORING_OP_MSG_RING from their own ring instead of an eventfd write.
    pub ring_fds: Vec<std::sync::atomic::AtomicI32>,
    pub addresses: Vec<Address<Mail>>,
}

impl Shared {
    pub fn stop_requested(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn clients_max(&self) -> usize {
        self.clients_max.load(Ordering::Relaxed)
    }
}

/// Milliseconds since the unix epoch: the store's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// The shard that owns `key` among `shard_count`: FNV-1a 64 of the key, mixed by MurmurHash3's
/// 64-bit finalizer (FNV alone leaves keys that differ in their last bytes clustered in the high
/// bits), reduced by Lemire's multiply-shift. Fixed forever: a file tier written by one run is
/// re-homed by the next with this function.
pub fn owner_of(key: &[u8], shard_count: usize) -> usize {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = key.iter().fold(FNV_OFFSET, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    (((hash >> 32) * shard_count as u64) >> 32) as usize
}

/// Everything of a shard except its connections, so a command can borrow one connection
/// mutably and the rest of the shard at the same time.
pub struct Core {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub executor: Executor,
    outbox: Vec<Mail>,
    outbox_dirty: Vec<usize>,
    pub limits: resp::Limits,
    /// This shard's copy of the settings CONFIG SET changes.
    pub tunables: Tunables,
    pub connections_total: u64,
    pub connections_open: u64,
    pub commands: u64,
    pub remote_requests: u64,
    /// The wall clock (ms) when the batch being run arrived: the commands of one read batch
    /// share one clock read instead of one each.
    pub batch_ms: u64,
    pub observe: Observer,
    /// A random stream for RANDOMKEY's pick (xorshift; not for secrets).
    random_state: u64,
}

impl Core {
    /// A read batch arrived: read the clock once for its commands and their timing.
    fn begin_batch(&mut self) {
        self.batch_ms = now_ms();
        self.observe.begin_batch();
    }

    /// The shard that owns `key`.
    pub fn owner(&self, key: &[u8]) -> usize {
        owner_of(key, self.shared.shard_count)
    }

    pub fn next_random(&mut self) -> u64 {
        let mut x = self.random_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random_state = x;
        x
    }

    /// Executes `op` on this shard's store; per-shard figures get the shard's own counters, and
    /// a settings change is the shard's, not the store's.
    pub fn execute(&mut self, op: &Op<'_>, now: u64) -> Outcome<'_> {
        match op {
            Op::Configure(changes) => {
                for change in changes {
                    if let Change::MaxClients(clients) = change {
                        self.shared.clients_max.store(*clients, Ordering::Relaxed);
                    }
                    self.tunables.apply(change);
                    self.observe.configure(change);
                }
                return Outcome::Stored { cas: 0 };
            }
            Op::ResetStats(scope) => {
                self.reset_stats(*scope);
                return Outcome::Integer(0);
            }
            Op::Stats => return Outcome::Figures(Box::new(self.figures(now))),
            _ => {}
        }
        let outcome = self.executor.execute(op, now);
        self.observe.op_done(op, &outcome);
        outcome
    }

    /// This shard's figures: the store's, the shard's counters and its observability snapshot.
    pub fn figures(&mut self, now: u64) -> crate::exec::ShardFigures {
        let Outcome::Figures(mut figures) = self.executor.execute(&Op::Stats, now) else {
            unreachable!("Op::Stats yields figures");
        };
        figures.connections = self.connections_open;
        figures.connections_total = self.connections_total;
        figures.commands = self.commands;
        figures.remote_requests = self.remote_requests;
        let recovery = RecoveryFigures::of(self.executor.recovery_report());
        figures.observed = Some(Box::new(self.observe.snapshot(recovery)));
        *figures
    }

    /// A command parsed from `conn`'s input ran; `seq` is the reply slot it would have taken
    /// had it queued one (see [`Observer::command_done`]).
    pub fn observe_command<'a>(
        &mut self,
        id: CommandId,
        conn: &mut Conn,
        seq: u64,
        arguments: impl FnOnce() -> Vec<&'a [u8]>,
    ) {
        let waits = conn.is_waiting(seq);
        if let Some(started) = self.observe.command_done(id, conn, waits, arguments) {
            if let Some(pending) = conn.pending_mut(seq) {
                pending.timing = Some((id, started));
            }
        }
    }

    fn reset_stats(&mut self, scope: ResetScope) {
        self.observe.reset(scope);
        if scope == ResetScope::All {
            self.commands = 0;
            self.remote_requests = 0;
            self.connections_total = 0;
            self.executor.reset_hit_counters();
        }
    }

    fn outbox_for(&mut self, shard: usize) -> &mut Mail {
        let mail = &mut self.outbox[shard];
        if mail.requests.is_empty() && mail.replies.is_empty() {
            self.outbox_dirty.push(shard);
        }
        mail
    }

    /// Runs one command that has a single operation: locally and straight into the reply when
    /// this shard owns the key and nothing is queued before it; else through a reply slot.
    pub fn run_single(
        &mut self,
        conn_index: u32,
        conn: &mut Conn,
        finish: Finish,
        op: Op<'_>,
        target: usize,
    ) {
        if target == self.id {
            let version = conn.resp.version;
            let outcome = self.execute(&op, self.batch_ms);
            finish::encode(
                &finish,
                std::slice::from_ref(&outcome),
                version,
                conn.reply_buffer(),
            );
        } else {
            let seq = conn.push_pending(finish, 1);
            self.send_request(
                target,
                Ticket {
                    conn: conn_index,
                    generation: conn.generation,
                    seq,
                    part: 0,
                },
                op,
            );
        }
    }

    /// Runs a command made of several operations (MGET, MSET, DEL, DBSIZE, ...): local parts
    /// at once, the others by mail; the reply is encoded when the last part is in.
    pub fn run_multi<'a>(
        &mut self,
        conn_index: u32,
        conn: &mut Conn,
        finish: Finish,
        parts: impl ExactSizeIterator<Item = (usize, Op<'a>)>,
    ) {
        let seq = conn.push_pending(finish, parts.len());
        let now = self.batch_ms;
        for (part, (target, op)) in parts.enumerate() {
            let ticket = Ticket {
                conn: conn_index,
                generation: conn.generation,
                seq,
                part: part as u32,
            };
            // CLIENT LIST needs every connection of the shard, which only the shard's mail
            // handler sees (the caller's connection is borrowed here): it goes by mail, to self too.
            if target == self.id && op != Op::ClientList {
                let outcome = self.execute(&op, now).into_owned();
                conn.fill(seq, part, outcome);
            } else {
                self.send_request(target, ticket, op);
            }
        }
        self.continue_if_complete(conn_index, conn, seq);
        conn.flush_ready();
    }

    /// A multi-phase command whose phase just completed starts its next phase in the same slot.
    pub fn continue_if_complete(&mut self, conn_index: u32, conn: &mut Conn, seq: u64) {
        let Some(pending) = conn.pending_mut(seq) else {
            return;
        };
        if pending.remaining > 0 {
            return;
        }
        let Finish::MsetNx { pairs } = &mut pending.finish else {
            return;
        };
        let pairs = std::mem::take(pairs);
        let any_exists = pending
            .outcomes
            .iter()
            .flatten()
            .any(|outcome| matches!(outcome, Outcome::Integer(count) if *count > 0));
        if any_exists {
            pending.finish = Finish::StoredFlag;
            pending.outcomes = vec![Some(Outcome::NotStored)];
            return;
        }
        // Between the phases another client may have set one of the keys: across shards MSETNX
        // is not atomic (documented); IfAbsent keeps it from overwriting such a key.
        let parts = pairs.len() / 2;
        pending.finish = Finish::StoredFlag;
        pending.outcomes = (0..parts).map(|_| None).collect();
        pending.remaining = parts;
        let now = self.batch_ms;
        for (part, pair) in pairs.chunks_exact(2).enumerate() {
            let op = Op::Set {
                key: std::borrow::Cow::Owned(pair[0].clone()),
                value: std::borrow::Cow::Owned(pair[1].clone()),
                flags: 0,
                expiry: crate::exec::Expiry::Never,
                condition: crate::exec::Condition::IfAbsent,
                return_old: false,
            };
            let target = self.owner(&pair[0]);
            if target == self.id {
                let outcome = self.execute(&op, now).into_owned();
                conn.fill(seq, part, outcome);
            } else {
                let ticket = Ticket {
                    conn: conn_index,
                    generation: conn.generation,
                    seq,
                    part: part as u32,
                };
                self.send_request(target, ticket, op);
            }
        }
    }

    fn send_request(&mut self, target: usize, ticket: Ticket, op: Op<'_>) {
        let op = op.into_owned();
        self.outbox_for(target)
            .requests
            .push(RemoteRequest { ticket, op });
    }

    /// Posts this tick's batches, one message per shard that has any; shards that sleep are
    /// listed in `wake` for the loop to wake (one wake per shard per tick at most).
    pub fn post_outbox(&mut self, wake: &mut Vec<usize>) {
        for shard in self.outbox_dirty.drain(..) {
            let mail = std::mem::take(&mut self.outbox[shard]);
            self.observe.counters.mail_sent += 1;
            if self.shared.addresses[shard].post_quietly(Mail {
                from: self.id,
                ..mail
            }) {
                wake.push(shard);
            }
        }
    }
}

/// Parses and runs the requests at the start of `input` while the connection may have more in
/// flight; returns the bytes consumed (all of them after a protocol error, which closes input).
fn run_requests(
    core: &mut Core,
    requests: &mut [resp::Request; LOOKAHEAD_REQUESTS],
    index: u32,
    conn: &mut Conn,
    input: &[u8],
) -> usize {
    if conn.protocol == Protocol::Memcache {
        return crate::memcache::process(core, index, conn, input);
    }
    let mut offset = 0;
    let mut lengths = [0usize; LOOKAHEAD_REQUESTS];
    while offset < input.len() && !conn.paused() && !conn.input_closed {
        // Parse a batch ahead of running it, so that its keys' cache misses overlap.
        let mut parsed = 0;
        let mut cursor = offset;
        let mut refused = None;
        while parsed < LOOKAHEAD_REQUESTS && cursor < input.len() {
            match resp::parse(&input[cursor..], &core.limits, &mut requests[parsed]) {
                Ok(resp::Parsed::Complete { consumed }) => {
                    lengths[parsed] = consumed;
                    cursor += consumed;
                    parsed += 1;
                }
                Ok(resp::Parsed::Incomplete) => break,
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        if parsed > 1 && conn.authenticated {
            prefetch_keys(
                core,
                &requests[..parsed],
                &lengths[..parsed],
                &input[offset..],
            );
        }
        for (request, &consumed) in requests[..parsed].iter().zip(&lengths) {
            if conn.paused() || conn.input_closed {
                return offset;
            }
            if !request.is_empty() {
                let bytes = &input[offset..offset + consumed];
                let seq = conn.next_seq();
                let spec = crate::commands::dispatch(core, index, conn, request, bytes);
                let id = spec.map_or_else(CommandId::unknown, CommandId::resp);
                core.observe_command(id, conn, seq, || request.args(bytes).collect());
            }
            offset += consumed;
        }
        if let Some(error) = refused {
            if conn.paused() || conn.input_closed {
                return offset;
            }
            core.observe.counters.protocol_errors += 1;
            conn.reply().error_fmt(format_args!("ERR {error}"));
            conn.input_closed = true;
            conn.close_after_output = true;
            conn.input.clear();
            return input.len();
        }
        if parsed < LOOKAHEAD_REQUESTS {
            // The rest is a partial request (or nothing).
            break;
        }
    }
    offset
}

/// Requests parsed ahead of running them (see [`prefetch_keys`]).
const LOOKAHEAD_REQUESTS: usize = persistent::PREFETCH_KEYS_MAX;

/// Brings the index entries and items of a parsed batch's keys into the cache together (one
/// cache-miss time for the batch instead of one per request). The key is taken to be the first
/// argument, as it is for nearly every command; a guess that is no key costs one index probe.
fn prefetch_keys(core: &Core, requests: &[resp::Request], lengths: &[usize], input: &[u8]) {
    let mut keys: [&[u8]; LOOKAHEAD_REQUESTS] = [&[]; LOOKAHEAD_REQUESTS];
    let mut count = 0;
    let mut start = 0;
    for (request, &length) in requests.iter().zip(lengths) {
        let bytes = &input[start..start + length];
        start += length;
        if request.len() >= 2 {
            let key = request.arg(bytes, 1);
            if core.owner(key) == core.id {
                keys[count] = key;
                count += 1;
            }
        }
    }
    core.executor.prefetch(keys[..count].iter().copied());
}

/// The per-shard state both event loops drive.
pub struct Shard {
    pub core: Core,
    pub mailbox: Mailbox<Mail>,
    conns: Vec<Option<Conn>>,
    free_conns: Vec<u32>,
    next_generation: u32,
    /// Connections with output to send since the loop last asked.
    dirty: Vec<u32>,
    /// Connections whose parsing was paused and may go on.
    resumable: Vec<u32>,
    requests: Box<[resp::Request; LOOKAHEAD_REQUESTS]>,
    last_store_tick_ms: u64,
    last_sweep_ms: u64,
    /// When the loop's previous tick ended (an idle loop sleeps at most [`STORE_TICK_MS`]): the
    /// whole-second client timeouts are measured with it, so a request costs no clock read.
    clock_ms: u64,
}

/// How often a shard gives its store its periodic work (expired segments, delayed flushes, the
/// file tier's once-a-second msync); also the longest an idle loop sleeps.
pub const STORE_TICK_MS: u64 = 200;

/// How often a shard looks for clients to cut off (idle or stalled): the timeouts are whole
/// seconds, so this is their resolution.
pub const CLIENT_SWEEP_MS: u64 = 1000;

/// Why an accepted connection was turned away.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Bytes to send before closing.
    TooManyClients(&'static [u8]),
}

impl Shard {
    pub fn new(
        id: usize,
        shared: Arc<Shared>,
        executor: Executor,
        mailbox: Mailbox<Mail>,
        tunables: Tunables,
        observe: crate::observe::Settings,
    ) -> Shard {
        let shard_count = shared.shard_count;
        let limits = resp::Limits {
            bulk_bytes_max: executor.value_bytes_max(),
            ..resp::Limits::default()
        };
        Shard {
            core: Core {
                id,
                shared,
                executor,
                outbox: (0..shard_count).map(|_| Mail::default()).collect(),
                outbox_dirty: Vec::new(),
                limits,
                tunables,
                connections_total: 0,
                connections_open: 0,
                commands: 0,
                remote_requests: 0,
                batch_ms: now_ms(),
                observe: Observer::new(id, shard_count, observe),
                random_state: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1),
            },
            mailbox,
            conns: Vec::new(),
            free_conns: Vec::new(),
            next_generation: 0,
            dirty: Vec::new(),
            resumable: Vec::new(),
            requests: Box::new(std::array::from_fn(|_| resp::Request::new())),
            last_store_tick_ms: now_ms(),
            last_sweep_ms: now_ms(),
            clock_ms: now_ms(),
        }
    }

    /// Runs the store's periodic work when it is due; loops call this every tick.
    pub fn maintenance(&mut self) {
        let now = now_ms();
        self.clock_ms = now;
        if now.saturating_sub(self.last_store_tick_ms) < STORE_TICK_MS {
            return;
        }
        self.last_store_tick_ms = now;
        if let Err(error) = self.core.executor.tick(now) {
            tracing::error!(shard = self.core.id, %error, "store maintenance failed");
        }
        let (hits, misses, evicted) = self.core.executor.hits_misses_evictions();
        self.core.observe.tick(now, hits, misses, evicted);
        if now.saturating_sub(self.last_sweep_ms) >= CLIENT_SWEEP_MS {
            self.last_sweep_ms = now;
            self.cut_off_idle_and_stalled(now);
        }
    }

    /// Closes clients past the idle timeout (nothing sent, nothing owed) or the stall timeout (a
    /// partial request, or replies the client does not read, with no progress). A cut-off
    /// connection drops what it is owed: the loop closes it at once.
    fn cut_off_idle_and_stalled(&mut self, now: u64) {
        let idle_ms = self.core.tunables.idle_timeout_secs.saturating_mul(1000);
        let stall_ms = self.core.tunables.stall_timeout_secs.saturating_mul(1000);
        if idle_ms == 0 && stall_ms == 0 {
            return;
        }
        for (index, slot) in self.conns.iter_mut().enumerate() {
            let Some(conn) = slot.as_mut().filter(|conn| !conn.abort) else {
                continue;
            };
            let sending = conn.awaiting_send || conn.owes_replies();
            let partial_request = !conn.input.is_empty() && !conn.paused();
            let reason = if idle_ms > 0
                && !sending
                && !partial_request
                && now.saturating_sub(conn.last_input_ms) >= idle_ms
            {
                "idle"
            } else if stall_ms > 0
                && (partial_request || conn.awaiting_send)
                && now.saturating_sub(conn.last_progress_ms) >= stall_ms
            {
                "stalled"
            } else {
                continue;
            };
            tracing::debug!(shard = self.core.id, client = conn.client_id, peer = %conn.peer, reason, "closing client");
            conn.cut_off();
            if !conn.in_dirty_list {
                conn.in_dirty_list = true;
                self.dirty.push(index as u32);
            }
        }
    }

    /// Registers an accepted connection; the loop keeps the socket under the returned index.
    pub fn accept(&mut self, protocol: Protocol, peer: SocketAddr) -> Result<u32, Refusal> {
        let shared = &self.core.shared;
        if shared.clients.fetch_add(1, Ordering::Relaxed) >= shared.clients_max()
            || shared.stop_requested()
        {
            shared.clients.fetch_sub(1, Ordering::Relaxed);
            self.core.observe.counters.connections_rejected += 1;
            return Err(Refusal::TooManyClients(match protocol {
                Protocol::Resp => b"-ERR max number of clients reached\r\n",
                Protocol::Memcache => b"SERVER_ERROR Too many open connections\r\n",
            }));
        }
        let client_id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
        self.next_generation = self.next_generation.wrapping_add(1);
        let mut conn = Conn::new(self.next_generation, client_id, protocol, peer, now_ms());
        conn.authenticated = self.core.tunables.requirepass.is_none();
        self.core.connections_total += 1;
        self.core.connections_open += 1;
        let index = match self.free_conns.pop() {
            Some(index) => {
                self.conns[index as usize] = Some(conn);
                index
            }
            None => {
                self.conns.push(Some(conn));
                (self.conns.len() - 1) as u32
            }
        };
        Ok(index)
    }

    pub fn conn(&self, index: u32) -> Option<&Conn> {
        self.conns.get(index as usize).and_then(Option::as_ref)
    }

    pub fn conn_mut(&mut self, index: u32) -> Option<&mut Conn> {
        self.conns.get_mut(index as usize).and_then(Option::as_mut)
    }

    /// Forgets a connection whose socket the loop has closed. Replies still on their way to it
    /// are dropped when they arrive (the generation no longer matches).
    pub fn close(&mut self, index: u32) {
        if let Some(slot) = self.conns.get_mut(index as usize) {
            if slot.take().is_some() {
                self.free_conns.push(index);
                self.core.connections_open -= 1;
                self.core.shared.clients.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Open connections on this shard.
    pub fn connection_count(&self) -> usize {
        self.conns.len() - self.free_conns.len()
    }

    /// Bytes arrived on a connection: buffer them, then parse and run every complete request.
    pub fn receive(&mut self, index: u32, bytes: &[u8]) {
        let Some(conn) = self.conns.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        if conn.input_closed {
            return;
        }
        self.core.observe.counters.bytes_in += bytes.len() as u64;
        self.core.begin_batch();
        let now = self.clock_ms;
        conn.last_input_ms = now;
        if conn.input.len() + bytes.len() > INPUT_BYTES_MAX {
            // Redis closes a client whose query buffer passes its limit; so do we.
            conn.input.clear();
            conn.input_closed = true;
            conn.close_after_output = true;
            self.mark_dirty(index);
            return;
        }
        let consumed = if conn.input.is_empty() {
            // The common case: parse straight from the received bytes, keep only a partial tail.
            let consumed = run_requests(&mut self.core, &mut self.requests, index, conn, bytes);
            if !conn.input_closed {
                conn.input.extend_from_slice(&bytes[consumed..]);
            }
            consumed
        } else {
            conn.input.extend_from_slice(bytes);
            let input = std::mem::take(&mut conn.input);
            let consumed = run_requests(&mut self.core, &mut self.requests, index, conn, &input);
            conn.input = input;
            conn.input.drain(..consumed);
            consumed
        };
        if consumed > 0 {
            conn.last_progress_ms = now;
        }
        if !conn.output.is_empty() || conn.close_after_output || conn.abort {
            self.mark_dirty(index);
        }
    }

    /// Parses and runs as many buffered requests as the connection may have in flight.
    fn process(&mut self, index: u32) {
        let Some(conn) = self.conns.get_mut(index as usize).and_then(Option::as_mut) else {
            return;
        };
        self.core.begin_batch();
        let input = std::mem::take(&mut conn.input);
        let consumed = run_requests(&mut self.core, &mut self.requests, index, conn, &input);
        conn.input = input;
        conn.input.drain(..consumed);
        if consumed > 0 {
            conn.last_progress_ms = self.clock_ms;
        }
        if !conn.output.is_empty() || conn.close_after_output || conn.abort {
            self.mark_dirty(index);
        }
    }

    fn mark_dirty(&mut self, index: u32) {
        if let Some(conn) = self.conns.get_mut(index as usize).and_then(Option::as_mut) {
            if !conn.in_dirty_list {
                conn.in_dirty_list = true;
                self.dirty.push(index);
            }
        }
    }

    /// The loop sent `bytes` of a connection's output: a paused connection may go on parsing.
    pub fn output_sent(&mut self, index: u32, bytes: usize) {
        self.core.observe.counters.bytes_out += bytes as u64;
        let now = self.clock_ms;
        if let Some(conn) = self.conn_mut(index) {
            conn.last_progress_ms = now;
            conn.awaiting_send = !conn.output.is_empty();
            if !conn.input.is_empty() && !conn.paused() {
                self.resumable.push(index);
            }
        }
    }

    /// Connections with output to send (each listed once); the loop sends `conn.output`.
    pub fn take_dirty(&mut self, into: &mut Vec<u32>) {
        for &index in &self.dirty {
            if let Some(conn) = self.conns.get_mut(index as usize).and_then(Option::as_mut) {
                conn.in_dirty_list = false;
                conn.awaiting_send |= !conn.output.is_empty();
            }
        }
        into.append(&mut self.dirty);
    }

    /// Brings into the cache the keys that the first request of each received input looks up,
    /// before any is run. At P=1 a tick serves one request from each of many connections, so
    /// their cache misses overlap here instead of coming one after another; pipelined input gets
    /// the same from [`run_requests`]' lookahead.
    pub fn prefetch_received<'a>(&mut self, received: impl Iterator<Item = (u32, &'a [u8])>) {
        let mut keys: [&[u8]; LOOKAHEAD_REQUESTS] = [&[]; LOOKAHEAD_REQUESTS];
        let mut count = 0;
        let scratch = &mut self.requests[0];
        for (index, bytes) in received {
            let Some(conn) = self.conns.get(index as usize).and_then(Option::as_ref) else {
                continue;
            };
            // Bytes after a partial request do not start one; unauthenticated input runs nothing.
            if !conn.input.is_empty() || !conn.authenticated {
                continue;
            }
            let key = match conn.protocol {
                Protocol::Memcache => crate::memcache::first_key(&self.core, bytes),
                Protocol::Resp => match resp::parse(bytes, &self.core.limits, scratch) {
                    Ok(resp::Parsed::Complete { .. }) if scratch.len() >= 2 => {
                        scratch.input_arg(bytes, 1)
                    }
                    _ => None,
                },
            };
            if let Some(key) = key.filter(|key| self.core.owner(key) == self.core.id) {
                keys[count] = key;
                count += 1;
            }
            if count == keys.len() {
                self.core.executor.prefetch(keys.iter().copied());
                count = 0;
            }
        }
        // One key alone is looked up at once: nothing to overlap it with.
        if count > 1 {
            self.core.executor.prefetch(keys[..count].iter().copied());
        }
    }

    /// Handles all waiting mail: executes other shards' requests (replies batched back) and
    /// files the replies to ours.
    pub fn deliver_mail(&mut self) {
        // Replies can start a command's next phase (MSETNX), which runs at this clock too.
        self.core.batch_ms = now_ms();
        let now = self.core.batch_ms;
        while let Some(mail) = self.mailbox.try_receive() {
            if let Some(answer) = mail.observe {
                // The endpoint may have given up waiting; nothing else to do then.
                let _ = answer.send(self.core.figures(now));
            }
            for (index, request) in mail.requests.iter().enumerate() {
                // The keys of the next few requests are fetched into the cache together.
                if index % persistent::PREFETCH_KEYS_MAX == 0 {
                    let ahead = mail.requests[index..].iter();
                    let keys = ahead.filter_map(|request| request.op.key());
                    self.core.executor.prefetch(keys);
                }
                self.core.remote_requests += 1;
                let outcome = match &request.op {
                    Op::ClientList => Outcome::Keys {
                        cursor: 0,
                        keys: self.client_lines(),
                    },
                    op => self.core.execute(op, now).into_owned(),
                };
                self.core.outbox_for(mail.from).replies.push(RemoteReply {
                    ticket: request.ticket,
                    outcome,
                });
            }
            for reply in mail.replies {
                let ticket = reply.ticket;
                let Some(conn) = self
                    .conns
                    .get_mut(ticket.conn as usize)
                    .and_then(Option::as_mut)
                else {
                    continue;
                };
                if conn.generation != ticket.generation {
                    continue;
                }
                if conn.fill(ticket.seq, ticket.part as usize, reply.outcome) {
                    self.core
                        .continue_if_complete(ticket.conn, conn, ticket.seq);
                    if let Some(pending) = conn.pending_mut(ticket.seq) {
                        if pending.remaining == 0 {
                            if let Some((id, started)) = pending.timing.take() {
                                self.core.observe.reply_ready(id, started);
                            }
                        }
                    }
                    let was_paused = conn.paused();
                    conn.flush_ready();
                    if was_paused && !conn.paused() && !conn.input.is_empty() {
                        self.resumable.push(ticket.conn);
                    }
                    // A closing connection is looked at again even when the reply added
                    // nothing to send (noreply, meta q): it may owe nothing now, and close.
                    if !conn.output.is_empty() || conn.close_after_output {
                        self.mark_dirty(ticket.conn);
                    }
                } else if conn.abort {
                    self.mark_dirty(ticket.conn);
                }
            }
        }
    }

    /// End of a loop tick: resume paused connections that may go on, then post the batches.
    /// `wake` receives the shards that sleep and must be woken by the loop.
    pub fn end_tick(&mut self, wake: &mut Vec<usize>) {
        // Resuming can pause again and enqueue more; each index is looked at once per tick.
        let resumable = std::mem::take(&mut self.resumable);
        for index in resumable {
            self.process(index);
        }
        self.core.post_outbox(wake);
        self.core.observe.end_tick();
    }

    /// Stop: no more input is parsed on any connection; what is owed is still delivered.
    pub fn stop_reading(&mut self) {
        for conn in self.conns.iter_mut().flatten() {
            conn.input_closed = true;
            conn.input.clear();
        }
    }

    /// One CLIENT LIST line per connection of this shard.
    fn client_lines(&self) -> Vec<Vec<u8>> {
        self.conns
            .iter()
            .flatten()
            .map(|conn| conn::client_line(conn).into_bytes())
            .collect()
    }

    /// Whether every connection has been answered in full (nothing queued, nothing unsent).
    pub fn owes_nothing(&self) -> bool {
        self.conns.iter().flatten().all(|conn| !conn.owes_replies())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_every_shard_and_stay_put() {
        for shards in 1..=8 {
            let mut seen = vec![0usize; shards];
            for n in 0..4000 {
                let key = format!("key:{n:012}");
                let owner = owner_of(key.as_bytes(), shards);
                assert_eq!(owner, owner_of(key.as_bytes(), shards));
                seen[owner] += 1;
            }
            assert!(
                seen.iter().all(|&count| count > 4000 / shards / 2),
                "{shards} shards: {seen:?}"
            );
        }
        // The function is part of the file format (re-homing): pin its values.
        let pinned: Vec<usize> = ["foo", "bar", "key:000000000001", ""]
            .iter()
            .map(|key| owner_of(key.as_bytes(), 16))
            .collect();
        assert_eq!(pinned, vec![10, 15, 12, 14]);
        assert_eq!(owner_of(b"", 1), 0);
    }
}
