//! memcached replies made from store outcomes: the same code for a command run on the
//! connection's shard and for one whose outcomes came back from other shards.

use super::lower::expiry;
use super::stats::{self, StatsRequest};
use crate::exec::{Expiry, Lifetime, OpError, Outcome};
use crate::protocol::memcache::reply::{self, ItemInfo, MetaStatus, Status};
use crate::protocol::memcache::{parse_flags, parse_key, MetaFlags, MetaKey, MetaKind, MetaMode};
use crate::protocol::number::write_u64;

/// memcached's reply when the store cannot take an item for want of room or a working medium.
const OUT_OF_MEMORY: &str = "out of memory storing object";
/// memcached's reply for an item over the size limit.
const TOO_LARGE: &str = "object too large for cache";

/// The one-line replies, by command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// `set` `add` `replace` `append` `prepend` `cas` (`cas_command`: a missing key is NOT_FOUND).
    Store { cas_command: bool },
    /// `incr` / `decr`: the new value.
    Arithmetic,
    /// `delete`: DELETED / NOT_FOUND.
    Delete,
    /// `touch`: TOUCHED / NOT_FOUND.
    Touch,
}

/// How a memcached reply is made once its outcomes are in.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    /// A one-line reply, counted in the stats of shard `shard`.
    Line {
        kind: LineKind,
        noreply: bool,
        shard: usize,
    },
    /// VALUE lines for the keys found, in request order, then END. `keys` is the request's key
    /// list as sent (keys separated by spaces), one allocation however many keys.
    Values { keys: Box<[u8]>, cas: bool },
    /// OK once every shard has flushed.
    Flush { noreply: bool },
    /// A `stats` reply from every shard's figures.
    Stats(Box<StatsRequest>),
    /// A meta reply.
    Meta(MetaRequest),
}

/// A meta request copied out of the input buffer (key token and flag tokens in one allocation),
/// re-parsed when its outcomes arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaRequest {
    kind: MetaKind,
    /// Counted in the stats of this shard.
    shard: u32,
    /// `text[..key_len]` is the key token, the rest the flag tokens.
    key_len: u8,
    text: Box<[u8]>,
}

impl MetaRequest {
    /// The copy of a parsed request that travels with its reply slot.
    pub(super) fn new(
        kind: MetaKind,
        key: &MetaKey<'_>,
        flags: &MetaFlags<'_>,
        shard: usize,
    ) -> MetaRequest {
        let mut text = Vec::with_capacity(key.token.len() + flags.text().len());
        text.extend_from_slice(key.token);
        text.extend_from_slice(flags.text());
        MetaRequest {
            kind,
            // Keys are at most KEY_BYTES_MAX (250) bytes and shards far fewer than 2^32.
            shard: shard as u32,
            key_len: key.token.len() as u8,
            text: text.into_boxed_slice(),
        }
    }
}

const _: () = assert!(crate::protocol::memcache::KEY_BYTES_MAX <= u8::MAX as usize);

/// Writes the reply for `outcomes` (one per op, in op order).
pub fn encode(finish: &Finish, outcomes: &[Outcome<'_>], out: &mut Vec<u8>) {
    match finish {
        Finish::Line {
            kind,
            noreply,
            shard,
        } => {
            if !noreply {
                line(out, *kind, outcomes.first(), *shard);
            }
        }
        Finish::Values { keys, cas } => {
            let keys = keys.split(|&byte| byte == b' ');
            for (key, outcome) in keys.zip(outcomes) {
                value_line(out, key, outcome, *cas);
            }
            reply::status(out, Status::End);
        }
        Finish::Flush { noreply } => {
            if !noreply {
                match first_failure(outcomes) {
                    Some(_) => reply::server_error(out, OUT_OF_MEMORY),
                    None => reply::status(out, Status::Ok),
                }
            }
        }
        Finish::Stats(request) => stats::encode(request, outcomes, out),
        Finish::Meta(request) => {
            // The copy was made from a request the parser accepted, so it parses again.
            let (key, flags) = request.text.split_at(usize::from(request.key_len));
            let Ok(flags) = parse_flags(request.kind, flags) else {
                return reply::server_error(out, "internal error: meta flags lost");
            };
            let Ok(key) = parse_key(key, &flags) else {
                return reply::server_error(out, "internal error: meta key lost");
            };
            meta(
                out,
                request.kind,
                &key,
                &flags,
                outcomes,
                request.shard as usize,
                crate::shard::now_ms(),
            );
        }
    }
}

fn first_failure(outcomes: &[Outcome<'_>]) -> Option<OpError> {
    outcomes.iter().find_map(|outcome| match outcome {
        Outcome::Failed(error) => Some(*error),
        _ => None,
    })
}

/// The reply line for an operation error.
fn failure(out: &mut Vec<u8>, error: OpError) {
    match error {
        OpError::NotAnInteger => out
            .extend_from_slice(b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
        OpError::TooLarge => reply::server_error(out, TOO_LARGE),
        OpError::KeyTooLong => {
            reply::error(out, crate::protocol::memcache::ErrorKind::BadCommandLine)
        }
        _ => reply::server_error(out, OUT_OF_MEMORY),
    }
}

fn line(out: &mut Vec<u8>, kind: LineKind, outcome: Option<&Outcome<'_>>, shard: usize) {
    let Some(outcome) = outcome else { return };
    if let Outcome::Failed(error) = outcome {
        return failure(out, *error);
    }
    match kind {
        LineKind::Store { cas_command } => match outcome {
            Outcome::Stored { .. } | Outcome::Integer(_) => {
                stats::count(shard, |counters| &counters.total_items, 1);
                reply::status(out, Status::Stored);
            }
            Outcome::CasMismatch => reply::status(out, Status::Exists),
            _ if cas_command => reply::status(out, Status::NotFound),
            _ => reply::status(out, Status::NotStored),
        },
        LineKind::Arithmetic => match outcome {
            Outcome::Unsigned(value) => reply::number(out, *value),
            Outcome::Integer(value) if *value >= 0 => reply::number(out, value.unsigned_abs()),
            _ => reply::status(out, Status::NotFound),
        },
        LineKind::Delete => match outcome {
            Outcome::Integer(deleted) if *deleted > 0 => reply::status(out, Status::Deleted),
            _ => reply::status(out, Status::NotFound),
        },
        LineKind::Touch => match outcome {
            Outcome::Integer(touched) if *touched > 0 => reply::status(out, Status::Touched),
            _ => reply::status(out, Status::NotFound),
        },
    }
}

/// One `VALUE` line and data block for a hit; nothing for a miss.
pub(super) fn value_line(out: &mut Vec<u8>, key: &[u8], outcome: &Outcome<'_>, cas: bool) {
    if let Outcome::Value(value) = outcome {
        reply::value(out, key, value.flags, &value.data, cas.then_some(value.cas));
    }
}

/// Where each op's outcome sits in a meta command's outcome list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct MetaRoles {
    /// `mg N`: the create-if-absent.
    pub vivify: Option<usize>,
    /// `ma N`: the create-if-absent with the initial value.
    pub create: Option<usize>,
    /// The remaining-TTL query.
    pub ttl: Option<usize>,
    /// The read that returns the CAS value (`ms` append modes, `ma`).
    pub cas: Option<usize>,
    /// The op whose outcome decides the reply code.
    pub main: usize,
}

/// The op layout of a meta command; `lower::meta_ops` pushes the ops in this order.
pub(super) fn meta_roles(kind: MetaKind, flags: &MetaFlags<'_>) -> MetaRoles {
    let mut roles = MetaRoles::default();
    let mut next = 0;
    let mut take = || {
        next += 1;
        next - 1
    };
    match kind {
        MetaKind::Get => {
            roles.vivify = flags.vivify_ttl.map(|_| take());
            let wants_ttl = flags.has(b't') || flags.recache_ttl.is_some();
            roles.ttl = (wants_ttl && flags.ttl.is_none()).then(&mut take);
            roles.main = take();
        }
        MetaKind::Set => {
            roles.main = take();
            let concat = matches!(flags.mode, Some(MetaMode::Append | MetaMode::Prepend));
            roles.cas = (concat && flags.has(b'c')).then(&mut take);
        }
        MetaKind::Delete => roles.main = take(),
        MetaKind::Arithmetic => {
            roles.main = take();
            if flags.ttl.is_some() {
                take();
            }
            roles.create = flags.vivify_ttl.map(|_| take());
            roles.ttl = flags.has(b't').then(&mut take);
            roles.cas = flags.has(b'c').then(&mut take);
        }
        MetaKind::Debug => {
            roles.ttl = Some(take());
            roles.main = take();
        }
    }
    roles
}

/// Seconds left, memcached style: -1 for no expiry, rounded up otherwise.
fn seconds_left(lifetime: &Lifetime) -> i64 {
    match lifetime {
        Lifetime::Ms(ms) => ms.div_ceil(1000) as i64,
        Lifetime::Forever | Lifetime::Missing => -1,
    }
}

/// The TTL an item has after `mg T` / `ma T` set it at `now`.
fn seconds_after_touch(ttl: i64, now: u64) -> i64 {
    match expiry(ttl, now) {
        Expiry::AtMs(at) => at.saturating_sub(now).div_ceil(1000) as i64,
        Expiry::Never | Expiry::Keep => -1,
    }
}

/// The TTL a meta reply reports: from the TTL query, or from the TTL the request just set.
fn reported_ttl(
    roles: &MetaRoles,
    flags: &MetaFlags<'_>,
    outcomes: &[Outcome<'_>],
    now: u64,
) -> i64 {
    if let Some(Outcome::Lifetime(lifetime)) = roles.ttl.and_then(|index| outcomes.get(index)) {
        return seconds_left(lifetime);
    }
    flags.ttl.map_or(-1, |ttl| seconds_after_touch(ttl, now))
}

/// A meta reply from its outcomes (laid out as [`meta_roles`] says).
pub(super) fn meta(
    out: &mut Vec<u8>,
    kind: MetaKind,
    key: &MetaKey<'_>,
    flags: &MetaFlags<'_>,
    outcomes: &[Outcome<'_>],
    shard: usize,
    now: u64,
) {
    let roles = meta_roles(kind, flags);
    let Some(main) = outcomes.get(roles.main) else {
        return;
    };
    if let Outcome::Failed(error) = main {
        return failure(out, *error);
    }
    let outcome_at = |index: Option<usize>| index.and_then(|index| outcomes.get(index));
    let cas_of = |index: Option<usize>| match outcome_at(index) {
        Some(Outcome::Value(value)) => value.cas,
        _ => 0,
    };
    let write = |out: &mut Vec<u8>, status, item: Option<&ItemInfo>, data: &[u8]| {
        reply::meta(out, kind, key, flags, status, item, data)
    };
    match kind {
        MetaKind::Get => {
            let Outcome::Value(value) = main else {
                return write(out, MetaStatus::Miss, None, b"");
            };
            let ttl_seconds = reported_ttl(&roles, flags, outcomes, now);
            let recache = flags
                .recache_ttl
                .is_some_and(|below| ttl_seconds >= 0 && ttl_seconds < below);
            let vivified = matches!(outcome_at(roles.vivify), Some(Outcome::Stored { .. }));
            let item = ItemInfo {
                cas: value.cas,
                client_flags: value.flags,
                size: value.data.len(),
                ttl_seconds,
                won: vivified || recache,
                ..ItemInfo::default()
            };
            let status = if flags.has(b'v') {
                MetaStatus::Value
            } else {
                MetaStatus::Done
            };
            write(out, status, Some(&item), &value.data);
        }
        MetaKind::Set => match main {
            Outcome::Stored { cas } => {
                stats::count(shard, |counters| &counters.total_items, 1);
                write(
                    out,
                    MetaStatus::Done,
                    Some(&ItemInfo {
                        cas: *cas,
                        ..ItemInfo::default()
                    }),
                    b"",
                );
            }
            Outcome::Integer(_) => {
                stats::count(shard, |counters| &counters.total_items, 1);
                let item = ItemInfo {
                    cas: cas_of(roles.cas),
                    ..ItemInfo::default()
                };
                write(out, MetaStatus::Done, Some(&item), b"");
            }
            Outcome::CasMismatch => write(out, MetaStatus::Exists, None, b""),
            _ if flags.compare_cas.is_some() => write(out, MetaStatus::NotFound, None, b""),
            _ => write(out, MetaStatus::NotStored, None, b""),
        },
        MetaKind::Delete => match main {
            Outcome::Integer(deleted) if *deleted > 0 => write(out, MetaStatus::Done, None, b""),
            Outcome::Stored { .. } => write(out, MetaStatus::Done, None, b""),
            Outcome::CasMismatch => write(out, MetaStatus::Exists, None, b""),
            _ => write(out, MetaStatus::NotFound, None, b""),
        },
        MetaKind::Arithmetic => {
            let value = match main {
                Outcome::Unsigned(value) => *value,
                Outcome::Integer(value) if *value >= 0 => value.unsigned_abs(),
                _ => match outcome_at(roles.create) {
                    Some(Outcome::Stored { .. }) => flags.initial.unwrap_or(0),
                    Some(Outcome::Failed(error)) => return failure(out, *error),
                    Some(_) => return write(out, MetaStatus::NotStored, None, b""),
                    None => return write(out, MetaStatus::NotFound, None, b""),
                },
            };
            let item = ItemInfo {
                cas: cas_of(roles.cas),
                ttl_seconds: reported_ttl(&roles, flags, outcomes, now),
                ..ItemInfo::default()
            };
            if flags.has(b'v') {
                let mut digits = Vec::new();
                write_u64(&mut digits, value);
                write(out, MetaStatus::Value, Some(&item), &digits);
            } else {
                write(out, MetaStatus::Done, Some(&item), b"");
            }
        }
        MetaKind::Debug => {
            let Outcome::Value(value) = main else {
                return write(out, MetaStatus::Miss, None, b"");
            };
            let item = ItemInfo {
                cas: value.cas,
                size: value.data.len(),
                ttl_seconds: reported_ttl(&roles, flags, outcomes, now),
                ..ItemInfo::default()
            };
            reply::meta_debug(out, key, &item);
        }
    }
}
