//! A client connection as a shard sees it: bytes in, replies out in request order.
//!
//! Replies leave in the order requests came, whatever shard executes them. A request answered
//! at once, with nothing queued before it, is encoded straight into `output`. Otherwise it takes
//! a [`Slot`] at the back of the queue: `Ready` with its encoded bytes, or `Waiting` for the
//! outcomes other shards will send back. Whenever the front of the queue is complete it moves to
//! `output`, so `output` only ever holds replies whose predecessors are all there.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::exec::Outcome;
use crate::protocol::resp::Version;
use crate::shard::finish::Finish;

/// Replies a connection may have queued (waiting for other shards or for earlier replies)
/// before the shard stops parsing its input; bounds the cross-shard mail one client can cause.
pub const PENDING_REPLIES_MAX: usize = 1024;
/// Output bytes (sent or queued behind a waiting reply) beyond which the shard stops parsing a
/// connection's input until the socket takes some: a client that pipelines without reading
/// cannot grow our memory through replies.
pub const OUTPUT_PAUSE_BYTES: usize = 4 << 20;
/// Outcomes a connection may be owed by fanned-out requests (keys of MGET, memcached multi-key
/// get) before the shard stops parsing its input. Counting replies alone let 1024 pipelined
/// 60,000-key gets hold 60 million outcomes. Each owed outcome can hold a
/// value copy, so this bounds a connection's in-flight values at this many items; one request
/// with more keys is still taken whole (parsing pauses until it completes).
pub const PENDING_PARTS_MAX: usize = 4096;
/// Reply bytes a connection may be owed at once: unsent output, replies queued behind a waiting
/// one, and the values gathered for fanned-out requests. Parsing pauses long before this
/// ([`OUTPUT_PAUSE_BYTES`]); only a single request asking for more (an MGET or memcached `get`
/// of thousands of large values) reaches it, and its client is then disconnected rather than
/// letting one reply take the server's memory (Redis' client-output-buffer-limit, always on).
pub const OWED_BYTES_MAX: usize = 256 << 20;
/// Unparsed input a connection may hold (Redis' client-query-buffer-limit is 1 GiB; ours is
/// the largest request we accept plus room to pipeline). Past it the connection is closed.
pub const INPUT_BYTES_MAX: usize = 64 << 20;

/// Which protocol a listener (and so a connection) speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Resp,
    Memcache,
}

/// Per-connection RESP state (HELLO, CLIENT SETNAME, ...).
#[derive(Clone, Debug, Default)]
pub struct RespSession {
    pub version: Version,
    pub name: Option<Vec<u8>>,
    pub library_name: Option<Vec<u8>>,
    pub library_version: Option<Vec<u8>>,
}

/// A reply not yet in `output`.
#[derive(Debug)]
pub enum Slot {
    /// Encoded, waiting only for the replies before it.
    Ready(Vec<u8>),
    /// Waiting for `remaining` outcomes from other shards.
    Waiting(Pending),
}

/// A fanned-out request: where each part's outcome goes and how the reply is made of them.
#[derive(Debug)]
pub struct Pending {
    pub finish: Finish,
    pub outcomes: Vec<Option<Outcome<'static>>>,
    pub remaining: usize,
    /// Bytes of the values and keys the outcomes hold.
    bytes: usize,
    /// The command and when its read batch reached the shard: its latency is recorded when
    /// the last outcome arrives (None when timing is off).
    pub timing: Option<(crate::observe::CommandId, quanta::Instant)>,
}

#[derive(Debug)]
pub struct Conn {
    /// Distinguishes this connection from earlier ones that used the same slab index, so a late
    /// reply for a closed connection is dropped instead of reaching a stranger.
    pub generation: u32,
    /// Process-wide id (CLIENT ID).
    pub client_id: u64,
    pub protocol: Protocol,
    pub peer: SocketAddr,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    pub resp: RespSession,
    pub memcache: crate::memcache::Session,
    /// Close once `output` has been sent (QUIT, protocol error).
    pub close_after_output: bool,
    /// Reading and parsing stopped for good (closing, or the server is stopping).
    pub input_closed: bool,
    /// Close now, dropping whatever is owed (a timeout cut the client off).
    pub abort: bool,
    /// The client gave the password, or none is required (set when accepted).
    pub authenticated: bool,
    /// When bytes last arrived (idle timeout).
    pub(crate) last_input_ms: u64,
    /// When a request last completed or the socket last took output (stall timeout).
    pub(crate) last_progress_ms: u64,
    /// Output was handed to the loop and not all of it has been taken by the socket yet.
    pub(crate) awaiting_send: bool,
    /// The connection is in the shard's list of connections with new output.
    pub(crate) in_dirty_list: bool,
    pub(crate) slots: VecDeque<Slot>,
    /// Outcomes still owed to Waiting slots (see [`PENDING_PARTS_MAX`]).
    pending_parts: usize,
    /// Bytes of Ready slots that a Waiting slot has closed (the back slot, still growing, is
    /// counted when [`Conn::paused`] looks).
    queued_bytes: usize,
    /// Bytes held by the outcomes of Waiting slots (see [`OWED_BYTES_MAX`]).
    gathered_bytes: usize,
    /// Sequence number of `slots.front()`.
    pub(crate) first_seq: u64,
    pub(crate) created_ms: u64,
    pub(crate) commands: u64,
    pub(crate) last_command: &'static str,
}

impl Conn {
    pub fn new(
        generation: u32,
        client_id: u64,
        protocol: Protocol,
        peer: SocketAddr,
        now_ms: u64,
    ) -> Conn {
        Conn {
            generation,
            client_id,
            protocol,
            peer,
            input: Vec::new(),
            output: Vec::new(),
            resp: RespSession::default(),
            memcache: crate::memcache::Session::default(),
            close_after_output: false,
            input_closed: false,
            abort: false,
            authenticated: false,
            last_input_ms: now_ms,
            last_progress_ms: now_ms,
            awaiting_send: false,
            in_dirty_list: false,
            slots: VecDeque::new(),
            pending_parts: 0,
            queued_bytes: 0,
            gathered_bytes: 0,
            first_seq: 0,
            created_ms: now_ms,
            commands: 0,
            last_command: "NULL",
        }
    }

    /// Whether parsing must wait (too many replies queued, or too much output unsent).
    pub fn paused(&self) -> bool {
        self.slots.len() >= PENDING_REPLIES_MAX
            || self.pending_parts >= PENDING_PARTS_MAX
            || self.encoded_bytes() >= OUTPUT_PAUSE_BYTES
    }

    /// Encoded reply bytes not yet sent: `output`, the Ready slots a Waiting one closed, and the
    /// back Ready slot, still growing.
    fn encoded_bytes(&self) -> usize {
        let growing = match self.slots.back() {
            Some(Slot::Ready(bytes)) => bytes.len(),
            _ => 0,
        };
        self.output.len() + self.queued_bytes + growing
    }

    /// Whether replies are still owed (queued or unsent).
    pub fn owes_replies(&self) -> bool {
        !self.slots.is_empty() || !self.output.is_empty()
    }

    /// Where a reply produced now goes: `output` when nothing is queued before it, else a new
    /// Ready slot. Returns the buffer to encode into.
    pub fn reply_buffer(&mut self) -> &mut Vec<u8> {
        if self.slots.is_empty() {
            return &mut self.output;
        }
        // Replies ready one after another behind a waiting one share one buffer.
        if !matches!(self.slots.back(), Some(Slot::Ready(_))) {
            self.slots.push_back(Slot::Ready(Vec::new()));
        }
        match self.slots.back_mut() {
            Some(Slot::Ready(buffer)) => buffer,
            _ => unreachable!("the back slot is Ready"),
        }
    }

    /// A RESP encoder for a reply produced now (see [`Conn::reply_buffer`]).
    pub fn reply(&mut self) -> crate::protocol::resp::Reply<'_> {
        let version = self.resp.version;
        crate::protocol::resp::Reply::new(self.reply_buffer(), version)
    }

    /// Queues a reply that waits for `parts` outcomes; returns its sequence number.
    pub fn push_pending(&mut self, finish: Finish, parts: usize) -> u64 {
        let seq = self.first_seq + self.slots.len() as u64;
        if let Some(Slot::Ready(bytes)) = self.slots.back() {
            self.queued_bytes += bytes.len();
        }
        self.pending_parts += parts;
        let outcomes = (0..parts).map(|_| None).collect();
        self.slots.push_back(Slot::Waiting(Pending {
            finish,
            outcomes,
            remaining: parts,
            bytes: 0,
            timing: None,
        }));
        seq
    }

    /// The sequence number the next queued reply will take.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.slots.len() as u64
    }

    /// Whether reply `seq` waits for outcomes from other shards.
    pub fn is_waiting(&self, seq: u64) -> bool {
        let Some(index) = seq.checked_sub(self.first_seq) else {
            return false;
        };
        matches!(self.slots.get(index as usize), Some(Slot::Waiting(pending)) if pending.remaining > 0)
    }

    /// Records the outcome of part `part` of reply `seq`. Returns false for an unknown slot
    /// (a stale or duplicate reply, or a connection just cut off), which is ignored. A
    /// connection owed more than [`OWED_BYTES_MAX`] is cut off here.
    pub fn fill(&mut self, seq: u64, part: usize, outcome: Outcome<'static>) -> bool {
        let bytes = outcome_bytes(&outcome);
        let Some(pending) = self.pending_mut(seq) else {
            return false;
        };
        match pending.outcomes.get_mut(part) {
            Some(place @ None) => {
                *place = Some(outcome);
                pending.remaining -= 1;
                pending.bytes += bytes;
            }
            _ => return false,
        }
        self.gathered_bytes += bytes;
        if self.gathered_bytes + self.encoded_bytes() > OWED_BYTES_MAX {
            tracing::debug!(client = self.client_id, peer = %self.peer, "closing client: owed replies over {OWED_BYTES_MAX} bytes");
            self.cut_off();
            return false;
        }
        true
    }

    /// Closes the connection now: no more input, and whatever it is owed is dropped (the loop
    /// closes the socket when it sees `abort`).
    pub fn cut_off(&mut self) {
        self.abort = true;
        self.input_closed = true;
        self.input = Vec::new();
        self.output = Vec::new();
        self.first_seq += self.slots.len() as u64;
        self.slots.clear();
        self.pending_parts = 0;
        self.queued_bytes = 0;
        self.gathered_bytes = 0;
    }

    /// The pending slot `seq`, if it is waiting.
    pub fn pending_mut(&mut self, seq: u64) -> Option<&mut Pending> {
        let index = seq.checked_sub(self.first_seq)?;
        match self.slots.get_mut(index as usize) {
            Some(Slot::Waiting(pending)) => Some(pending),
            _ => None,
        }
    }

    /// Moves every complete reply at the front of the queue into `output`, in order.
    pub fn flush_ready(&mut self) {
        while let Some(front) = self.slots.front() {
            match front {
                Slot::Waiting(pending) if pending.remaining > 0 => break,
                _ => {}
            }
            let Some(slot) = self.slots.pop_front() else {
                break;
            };
            self.first_seq += 1;
            match &slot {
                // A Ready slot with slots behind it was closed (and counted) by a Waiting one.
                Slot::Ready(bytes) if !self.slots.is_empty() => self.queued_bytes -= bytes.len(),
                Slot::Ready(_) => {}
                Slot::Waiting(pending) => {
                    self.pending_parts -= pending.outcomes.len();
                    self.gathered_bytes -= pending.bytes;
                }
            }
            match slot {
                // Nothing unsent before it: take the buffer over instead of copying it.
                Slot::Ready(bytes) if self.output.is_empty() => self.output = bytes,
                Slot::Ready(bytes) => self.output.extend_from_slice(&bytes),
                Slot::Waiting(pending) => {
                    let outcomes: Vec<Outcome<'static>> =
                        pending.outcomes.into_iter().flatten().collect();
                    crate::shard::finish::encode(
                        &pending.finish,
                        &outcomes,
                        self.resp.version,
                        &mut self.output,
                    );
                }
            }
        }
    }
}

/// The bytes an outcome carries to its reply (values and keys; the rest are a few bytes).
fn outcome_bytes(outcome: &Outcome<'_>) -> usize {
    match outcome {
        Outcome::Value(value) => value.data.len(),
        Outcome::Keys { keys, .. } => keys.iter().map(Vec::len).sum(),
        _ => 0,
    }
}

/// The CLIENT LIST / CLIENT INFO line of a connection.
pub fn client_line(conn: &Conn) -> String {
    let text = |field: &Option<Vec<u8>>| {
        field
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .into_owned()
    };
    let name = text(&conn.resp.name);
    let library_name = text(&conn.resp.library_name);
    let library_version = text(&conn.resp.library_version);
    let now = crate::shard::now_ms();
    let age = now.saturating_sub(conn.created_ms) / 1000;
    let idle = now.saturating_sub(conn.last_input_ms) / 1000;
    let resp = if conn.resp.version == crate::protocol::resp::Version::Resp3 {
        3
    } else {
        2
    };
    format!(
        "id={} addr={} name={name} age={age} idle={idle} flags=N db=0 qbuf={} obl={} cmd={} resp={resp} lib-name={library_name} lib-ver={library_version}\n",
        conn.client_id,
        conn.peer,
        conn.input.len(),
        conn.output.len(),
        conn.last_command,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn::new(
            0,
            1,
            Protocol::Resp,
            SocketAddr::from(([127, 0, 0, 1], 1)),
            0,
        )
    }

    #[test]
    fn owed_outcomes_pause_parsing_until_they_arrive() {
        let mut conn = conn();
        let wide = conn.push_pending(Finish::BulkArray, PENDING_PARTS_MAX - 1);
        assert!(!conn.paused());
        let narrow = conn.push_pending(Finish::Bulk, 1);
        assert!(
            conn.paused(),
            "{PENDING_PARTS_MAX} owed outcomes must pause parsing"
        );
        for part in 0..PENDING_PARTS_MAX - 1 {
            assert!(conn.fill(wide, part, Outcome::Missing));
        }
        conn.flush_ready();
        assert!(!conn.paused(), "one outcome owed");
        assert!(conn.fill(narrow, 0, Outcome::Missing));
        conn.flush_ready();
        assert!(conn.slots.is_empty(), "every reply left the queue");
        assert_eq!((conn.pending_parts, conn.queued_bytes), (0, 0));
    }

    #[test]
    fn replies_queued_behind_a_waiting_one_count_toward_the_output_limit() {
        let mut conn = conn();
        let half = OUTPUT_PAUSE_BYTES / 2;
        let first = conn.push_pending(Finish::Bulk, 1);
        conn.reply_buffer().extend(std::iter::repeat_n(b'a', half));
        assert!(!conn.paused());
        let second = conn.push_pending(Finish::Bulk, 1);
        conn.reply_buffer().extend(std::iter::repeat_n(b'b', half));
        assert!(
            conn.paused(),
            "two half-limit replies queued behind waiting ones"
        );
        assert!(conn.fill(first, 0, Outcome::Missing));
        assert!(conn.fill(second, 0, Outcome::Missing));
        conn.flush_ready();
        assert_eq!(conn.queued_bytes, 0);
        assert!(
            conn.output.len() >= 2 * half,
            "every reply reached the output in order"
        );
        conn.output.clear();
        assert!(!conn.paused());
    }
}
