//! memcached replies made from store outcomes: the same code for a command run on the
//! connection's shard and for one whose outcomes came back from other shards.

use super::stats::{self, StatsRequest, Tally};
use crate::exec::{Lifetime, MetaValue, OpError, Outcome};
use crate::protocol::memcache::reply::{self, ItemInfo, MetaStatus, Status};
use crate::protocol::memcache::{parse_flags, parse_key, MetaFlags, MetaKey, MetaKind, MetaMode};

/// memcached's reply when the store cannot take an item for want of room or a working medium.
const OUT_OF_MEMORY: &str = "out of memory storing object";
/// memcached's reply for an item over the size limit.
const TOO_LARGE: &str = "object too large for cache";

/// The one-line replies, by command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// `set` `add` `replace` `append` `prepend` `cas` (`cas_command`: a missing key is NOT_FOUND).
    Store { cas_command: bool },
    /// `incr` / `decr` (`decrement`): the new value.
    Arithmetic { decrement: bool },
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
    /// list as sent (keys separated by spaces), one allocation however many keys. `touch`
    /// (`gat`, `gats`): each key counted a touch hit or miss in the stats of shard `shard`.
    Values {
        keys: Box<[u8]>,
        cas: bool,
        touch: bool,
        shard: usize,
    },
    /// `done` once every shard has answered (`flush_all`: OK, `stats reset`: RESET), a
    /// SERVER_ERROR if one failed.
    EveryShard { done: Status, noreply: bool },
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
            if let Some(outcome) = outcomes.first() {
                count_line(*kind, outcome, *shard);
            }
            if !noreply {
                line(out, *kind, outcomes.first(), *shard);
            }
        }
        Finish::Values {
            keys,
            cas,
            touch,
            shard,
        } => {
            let keys = keys.split(|&byte| byte == b' ');
            for (key, outcome) in keys.zip(outcomes) {
                count_retrieval(outcome, *touch, *shard);
                value_line(out, key, outcome, *cas);
            }
            reply::status(out, Status::End);
        }
        Finish::EveryShard { done, noreply } => {
            if !noreply {
                match first_failure(outcomes) {
                    Some(_) => reply::server_error(out, OUT_OF_MEMORY),
                    None => reply::status(out, *done),
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
        LineKind::Arithmetic { .. } => match outcome {
            Outcome::Unsigned(value) => reply::number(out, *value),
            Outcome::Integer(value) if *value >= 0 => reply::number(out, value.unsigned_abs()),
            _ => reply::status(out, Status::NotFound),
        },
        LineKind::Delete => found_or_not(out, outcome, Status::Deleted),
        LineKind::Touch => found_or_not(out, outcome, Status::Touched),
    }
}

/// The hit or miss a one-line command's outcome counts in the stats (an op that failed counts
/// nothing, as in memcached).
fn count_line(kind: LineKind, outcome: &Outcome<'_>, shard: usize) {
    let tally = match (kind, outcome) {
        (_, Outcome::Failed(_)) => return,
        (LineKind::Store { cas_command: true }, outcome) => cas_tally(outcome),
        (LineKind::Store { .. }, _) => return,
        (LineKind::Arithmetic { decrement }, outcome) => {
            let hit = matches!(outcome, Outcome::Unsigned(_) | Outcome::Integer(0..));
            arithmetic_tally(decrement, hit)
        }
        (LineKind::Delete, outcome) => {
            hit_or_miss(counted(outcome), Tally::DeleteHits, Tally::DeleteMisses)
        }
        (LineKind::Touch, outcome) => {
            hit_or_miss(counted(outcome), Tally::TouchHits, Tally::TouchMisses)
        }
    };
    stats::tally(shard, tally);
}

/// The hit or miss a meta command's outcome counts in the stats, as memcached counts them: `mg`
/// with `T` a touch hit, `md` a delete (an item kept stale or emptied counts nothing), `ma` an
/// increment or decrement, `ms` with `C` in set or replace mode a CAS store.
fn count_meta(kind: MetaKind, flags: &MetaFlags<'_>, outcome: &Outcome<'_>, shard: usize) {
    let tally = match kind {
        // memcached counts an mg with T that hits as a touch, one that misses as a get.
        MetaKind::Get if flags.ttl.is_some() => {
            let hit = matches!(outcome, Outcome::MetaValue(_));
            if hit {
                stats::count(shard, |counters| &counters.cmd_touch, 1);
            } else {
                stats::count(shard, |counters| &counters.cmd_get, 1);
            }
            hit_or_miss(hit, Tally::TouchHits, Tally::GetMisses)
        }
        MetaKind::Get => retrieval_tally(outcome, false),
        MetaKind::Delete => match outcome {
            Outcome::Stored { .. } => return,
            outcome => hit_or_miss(counted(outcome), Tally::DeleteHits, Tally::DeleteMisses),
        },
        MetaKind::Arithmetic => match outcome {
            // memcached counts an ma that creates its item (N) as neither hit nor miss.
            Outcome::MetaValue(found) if found.created => return,
            Outcome::MetaValue(_) => {
                arithmetic_tally(flags.mode == Some(MetaMode::Decrement), true)
            }
            Outcome::Missing => arithmetic_tally(flags.mode == Some(MetaMode::Decrement), false),
            _ => return,
        },
        MetaKind::Set
            if flags.compare_cas.is_some()
                && matches!(flags.mode, None | Some(MetaMode::Set | MetaMode::Replace)) =>
        {
            cas_tally(outcome)
        }
        _ => return,
    };
    stats::tally(shard, tally);
}

/// One key of a retrieval (`get`, `gets`; `gat`, `gats` when `touching`): a get or, as
/// memcached counts a touching read, a touch hit or miss.
pub(super) fn count_retrieval(outcome: &Outcome<'_>, touching: bool, shard: usize) {
    stats::tally(shard, retrieval_tally(outcome, touching));
}

fn retrieval_tally(outcome: &Outcome<'_>, touching: bool) -> Tally {
    let hit = matches!(outcome, Outcome::Value(_) | Outcome::MetaValue(_));
    if touching {
        hit_or_miss(hit, Tally::TouchHits, Tally::TouchMisses)
    } else {
        hit_or_miss(hit, Tally::GetHits, Tally::GetMisses)
    }
}

fn hit_or_miss(hit: bool, hits: Tally, misses: Tally) -> Tally {
    if hit {
        hits
    } else {
        misses
    }
}

fn arithmetic_tally(decrement: bool, hit: bool) -> Tally {
    match (decrement, hit) {
        (false, true) => Tally::IncrHits,
        (false, false) => Tally::IncrMisses,
        (true, true) => Tally::DecrHits,
        (true, false) => Tally::DecrMisses,
    }
}

/// A CAS store: stored, refused for a newer CAS, or missing.
fn cas_tally(outcome: &Outcome<'_>) -> Tally {
    match outcome {
        Outcome::Stored { .. } | Outcome::Integer(_) => Tally::CasHits,
        Outcome::CasMismatch => Tally::CasBadval,
        _ => Tally::CasMisses,
    }
}

/// Whether a `delete` / `touch` op counted a key.
fn counted(outcome: &Outcome<'_>) -> bool {
    matches!(outcome, Outcome::Integer(count) if *count > 0)
}

/// `found` when the op counted a key (`delete`, `touch`), NOT_FOUND otherwise.
fn found_or_not(out: &mut Vec<u8>, outcome: &Outcome<'_>, found: Status) {
    let status = if counted(outcome) {
        found
    } else {
        Status::NotFound
    };
    reply::status(out, status);
}

/// One `VALUE` line and data block for a hit; nothing for a miss.
pub(super) fn value_line(out: &mut Vec<u8>, key: &[u8], outcome: &Outcome<'_>, cas: bool) {
    if let Outcome::Value(value) = outcome {
        reply::value(out, key, value.flags, &value.data, cas.then_some(value.cas));
    }
}

/// Seconds left, memcached style: -1 for no expiry, rounded up otherwise.
fn seconds_left(lifetime: &Lifetime) -> i64 {
    match lifetime {
        Lifetime::Ms(ms) => ms.div_ceil(1000) as i64,
        Lifetime::Forever | Lifetime::Missing => -1,
    }
}

/// What a meta reply reports about the item a meta read or `ma` found.
fn item_info(found: &MetaValue<'_>) -> ItemInfo {
    ItemInfo {
        cas: found.value.cas,
        client_flags: found.value.flags,
        size: found.value.data.len(),
        ttl_seconds: seconds_left(&found.lifetime),
        last_access_seconds: found.usage.idle_ms / 1000,
        hit_before: found.usage.fetched,
        won: found.won,
        stale: found.usage.stale,
        win_sent: found.usage.win_token,
    }
}

/// A meta reply from its outcomes: the command's own op first, then (`ms` append or prepend
/// modes with `c`) the read of the new CAS; see `lower::meta_ops`.
pub(super) fn meta(
    out: &mut Vec<u8>,
    kind: MetaKind,
    key: &MetaKey<'_>,
    flags: &MetaFlags<'_>,
    outcomes: &[Outcome<'_>],
    shard: usize,
) {
    let Some(main) = outcomes.first() else {
        return;
    };
    if let Outcome::Failed(error) = main {
        return failure(out, *error);
    }
    count_meta(kind, flags, main, shard);
    let write = |out: &mut Vec<u8>, status, item: Option<&ItemInfo>, data: &[u8]| {
        reply::meta(out, kind, key, flags, status, item, data)
    };
    match kind {
        MetaKind::Get => {
            let Outcome::MetaValue(found) = main else {
                return write(out, MetaStatus::Miss, None, b"");
            };
            let status = if flags.has(b'v') {
                MetaStatus::Value
            } else {
                MetaStatus::Done
            };
            write(out, status, Some(&item_info(found)), &found.value.data);
        }
        MetaKind::Set => {
            let cas = match main {
                Outcome::Stored { cas } => *cas,
                Outcome::Integer(_) => match outcomes.get(1) {
                    Some(Outcome::Value(value)) => value.cas,
                    _ => 0,
                },
                Outcome::CasMismatch => return write(out, MetaStatus::Exists, None, b""),
                Outcome::Missing => return write(out, MetaStatus::NotFound, None, b""),
                _ => return write(out, MetaStatus::NotStored, None, b""),
            };
            stats::count(shard, |counters| &counters.total_items, 1);
            let item = ItemInfo {
                cas,
                ..ItemInfo::default()
            };
            write(out, MetaStatus::Done, Some(&item), b"");
        }
        MetaKind::Delete => match main {
            Outcome::Integer(deleted) if *deleted > 0 => write(out, MetaStatus::Done, None, b""),
            Outcome::Stored { .. } => write(out, MetaStatus::Done, None, b""),
            Outcome::CasMismatch => write(out, MetaStatus::Exists, None, b""),
            _ => write(out, MetaStatus::NotFound, None, b""),
        },
        MetaKind::Arithmetic => match main {
            Outcome::MetaValue(found) => {
                let item = ItemInfo {
                    cas: found.value.cas,
                    ttl_seconds: seconds_left(&found.lifetime),
                    ..ItemInfo::default()
                };
                if flags.has(b'v') {
                    write(out, MetaStatus::Value, Some(&item), &found.value.data);
                } else {
                    write(out, MetaStatus::Done, Some(&item), b"");
                }
            }
            Outcome::NotStored => write(out, MetaStatus::NotStored, None, b""),
            Outcome::CasMismatch => write(out, MetaStatus::Exists, None, b""),
            _ => write(out, MetaStatus::NotFound, None, b""),
        },
        MetaKind::Debug => match main {
            Outcome::MetaValue(found) => reply::meta_debug(out, key, &item_info(found)),
            _ => write(out, MetaStatus::Miss, None, b""),
        },
    }
}
