//! The memcached command layer: text and meta requests lowered onto the shards' protocol-neutral
//! store operations ([`Op`](crate::exec::Op)), their outcomes encoded as memcached replies.
//!
//! A connection on the memcached port is parsed by [`crate::protocol::memcache`]; each command
//! becomes one or more [`Op`](crate::exec::Op)s routed to the owner shard of each key, exactly as RESP commands
//! are (there is one datapath). A command whose ops all run on the connection's own shard is
//! executed and encoded at once, borrowing keys from the input and values from the store; the
//! others travel as mail and come back in a [`Finish`] slot, so replies keep request order.
//! Replies of a whole read batch (pipelined `get`s, quiet `mg`s, ...) accumulate in the
//! connection's output and leave in one send.
//!
//! Mapping between the protocols: a memcached item is a Redis string; its client flags are kept
//! beside it (RESP writes flags 0), its CAS value is the store's. Text `cas` is a CAS-conditional
//! set, `add` / `replace` are absent / present conditions, `append` / `prepend` concatenate
//! without creating, `incr` / `decr` use unsigned 64-bit arithmetic (incr wraps, decr stops at 0).
//!
//! Meta state: each item carries a usage word in the store (fetched, stale, win token handed
//! out, last access to the minute), so `mg` answers `h` and `l`, and `W` / `X` / `Z` follow
//! memcached: `md I` keeps the item marked stale (new CAS, token free again), the first `mg` of a
//! stale item gets `X W` and the others `Z X` until a write replaces it; `R` hands the token out
//! once the TTL left falls below its value, `N` to the client that created the item; `ms I C`
//! with an older CAS stores the value marked stale. Every `mg`, `ma`, `md I` is one operation on
//! the owner shard, so its checks and changes happen in one step; `C` on `md` and on `ms` append
//! modes guards the operation. `md x` empties the value and zeroes the client flags, keeping the
//! item and its TTL. `flush_all <delay>` flushes every shard once the delay has passed.
//!
//! Not served: `E` (explicit new CAS) is refused with a `SERVER_ERROR`: an item's CAS is where it
//! lives (`segment generation << 24 | offset`), not a stored field; keeping a client-chosen value
//! would take an optional CAS field in the item, carried by every write path a meta command takes. `l` is coarse: to the minute (memcached
//! refreshes its own access time at most once a minute), wrapping after 8192 minutes.

mod finish;
mod lower;
mod stats;

pub use finish::{encode, Finish};

use persistent::PREFETCH_KEYS_MAX;

use crate::observe::CommandId;
use crate::protocol::memcache::{parse, reply, Command, Error, Limits, Parsed};
use crate::shard::conn::Conn;
use crate::shard::Core;

/// The version `version` and `stats` report: memcached's protocol level, then ours.
pub const VERSION: &str = concat!("1.6.0-ferrite-", env!("CARGO_PKG_VERSION"));

/// Per-connection memcached state.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// Bytes still to discard: the data block of a refused storage command.
    swallow: usize,
}

/// Requests parsed ahead of running them: their keys are prefetched together (one cache miss
/// time for the batch instead of one per request), up to the store's prefetch limit.
const BATCH_REQUESTS_MAX: usize = PREFETCH_KEYS_MAX;

/// Why a batch stopped being filled before it was full.
enum BatchEnd {
    /// More input may hold more requests.
    Full,
    /// The rest of the input is a partial request (or nothing).
    Incomplete,
    /// The next request was refused.
    Refused(Error),
}

/// Parses and runs as many of `input`'s requests as the connection may have in flight; returns
/// how many bytes were used. Stops at an incomplete request, when the connection pauses, or when
/// it is to be closed. Requests are parsed in batches whose keys are prefetched before the batch
/// runs.
pub fn process(core: &mut Core, conn_index: u32, conn: &mut Conn, input: &[u8]) -> usize {
    let limits = limits(core);
    // One clock read per read batch, not per command.
    let now = core.batch_ms;
    let mut offset = skip(conn, input.len());
    let mut batch: [Option<(Command<'_>, usize)>; BATCH_REQUESTS_MAX] =
        [const { None }; BATCH_REQUESTS_MAX];
    while offset < input.len() {
        let mut parsed = 0;
        let mut cursor = offset;
        let end = loop {
            if parsed == BATCH_REQUESTS_MAX {
                break BatchEnd::Full;
            }
            match parse(&input[cursor..], &limits) {
                Ok(Parsed::Complete { command, consumed }) => {
                    batch[parsed] = Some((command, consumed));
                    parsed += 1;
                    cursor += consumed;
                }
                Ok(Parsed::Incomplete) => break BatchEnd::Incomplete,
                Err(error) => break BatchEnd::Refused(error),
            }
        };
        if parsed > 1 && conn.authenticated {
            prefetch(core, &batch[..parsed]);
        }
        for slot in &mut batch[..parsed] {
            let Some((command, consumed)) = slot.take() else {
                continue;
            };
            if conn.paused() || conn.input_closed {
                return offset;
            }
            core.commands += 1;
            conn.commands += 1;
            let id = CommandId::memcache(&command);
            let seq = conn.next_seq();
            if conn.authenticated {
                lower::run(core, conn_index, conn, command, now);
            } else {
                authenticate(core, conn, command);
            }
            let request = &input[offset..offset + consumed];
            core.observe_command(id, conn, seq, || request_words(request));
            offset += consumed;
        }
        match end {
            BatchEnd::Full => {}
            BatchEnd::Incomplete => break,
            BatchEnd::Refused(Error {
                kind,
                consumed,
                swallow,
                noreply,
            }) => {
                if conn.paused() || conn.input_closed {
                    break;
                }
                core.observe.counters.protocol_errors += 1;
                if !noreply {
                    reply::error(conn.reply_buffer(), kind);
                }
                if kind.closes_connection() {
                    close_after_reply(conn);
                    return input.len();
                }
                offset += consumed;
                conn.memcache.swallow = swallow;
                offset += skip(conn, input.len() - offset);
            }
        }
        if conn.paused() || conn.input_closed {
            break;
        }
    }
    offset
}

/// Prefetches the keys of a parsed batch that this shard owns (base64 meta keys are skipped:
/// their decoded bytes live in the parsed command, and they are rare).
fn prefetch<'a>(core: &Core, batch: &'a [Option<(Command<'a>, usize)>]) {
    let mut keys: [&[u8]; PREFETCH_KEYS_MAX] = [&[]; PREFETCH_KEYS_MAX];
    let mut count = 0;
    for (command, _) in batch.iter().flatten() {
        for_each_key(command, |key| {
            if count < PREFETCH_KEYS_MAX && core.owner(key) == core.id {
                keys[count] = key;
                count += 1;
            }
        });
    }
    core.executor.prefetch(keys[..count].iter().copied());
}

/// The first key the first request in `input` looks up, if it parses whole.
pub fn first_key<'a>(core: &Core, input: &'a [u8]) -> Option<&'a [u8]> {
    match parse(input, &limits(core)) {
        Ok(Parsed::Complete { command, .. }) => key_of(&command),
        _ => None,
    }
}

/// The first key `command` names.
fn key_of<'a>(command: &Command<'a>) -> Option<&'a [u8]> {
    let mut first = None;
    for_each_key(command, |key| {
        first.get_or_insert(key);
    });
    first
}

/// Calls `visit` with each key `command` names, in order.
fn for_each_key<'a>(command: &Command<'a>, mut visit: impl FnMut(&'a [u8])) {
    match command {
        Command::Get { keys, .. } | Command::GetAndTouch { keys, .. } => {
            keys.iter().for_each(&mut visit)
        }
        Command::Meta { key, .. } if !key.is_base64() => visit(key.token),
        Command::Store { key, .. }
        | Command::Arithmetic { key, .. }
        | Command::Delete { key, .. }
        | Command::Touch { key, .. } => visit(key),
        _ => {}
    }
}

/// The parser's limits: the store's largest value, the protocol's defaults otherwise.
fn limits(core: &Core) -> Limits {
    Limits {
        value_bytes_max: core.executor.value_bytes_max(),
        ..Limits::default()
    }
}

/// A request's command line split into words, for the slow log (the data block is left out).
fn request_words(request: &[u8]) -> Vec<&[u8]> {
    let line = request
        .split(|&byte| byte == b'\n')
        .next()
        .unwrap_or(request);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.split(|&byte| byte == b' ')
        .filter(|word| !word.is_empty())
        .collect()
}

/// Discards up to `available` bytes of a refused data block; returns how many.
fn skip(conn: &mut Conn, available: usize) -> usize {
    let skipped = conn.memcache.swallow.min(available);
    conn.memcache.swallow -= skipped;
    skipped
}

/// A command on a connection that has not authenticated: memcached's `-Y` mode, where only a
/// `set` carrying `<username> <password>` (key, flags and expiry ignored) and `quit` are taken.
fn authenticate(core: &Core, conn: &mut Conn, command: Command<'_>) {
    let admitted = match (command, &core.tunables.requirepass) {
        (Command::Quit, _) => return close_after_reply(conn),
        (Command::Store { data, .. }, Some(secret)) => crate::access::memcache_admits(secret, data),
        _ => {
            let reply = crate::access::MEMCACHE_UNAUTHENTICATED;
            return conn.reply_buffer().extend_from_slice(reply);
        }
    };
    conn.authenticated = admitted;
    let reply: &[u8] = if admitted {
        b"STORED\r\n"
    } else {
        crate::access::MEMCACHE_AUTH_FAILED
    };
    conn.reply_buffer().extend_from_slice(reply);
}

/// `quit`, or an error after which the stream cannot be trusted: answer what is owed, then close.
fn close_after_reply(conn: &mut Conn) {
    conn.input_closed = true;
    conn.close_after_output = true;
}

#[cfg(test)]
mod tests;
