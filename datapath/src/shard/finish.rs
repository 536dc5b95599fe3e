//! How a command's reply is made from its operations' outcomes.
//!
//! A [`Finish`] is chosen when the command is parsed and travels with the reply slot; when every
//! outcome is in (at once on the local path, or when the other shards have answered), [`encode`]
//! writes the reply. The same code runs on both paths, so a cross-shard reply is byte for byte
//! the reply the owner would have given locally. The memcached protocol adds its own variants.

use crate::exec::{Lifetime, OpError, Outcome, ShardFigures};
use crate::observe::report::{self, Merged};
use crate::protocol::resp::{Reply, Version};

/// Unit of a TTL-style reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Milliseconds,
}

/// How the outcomes become a RESP reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    /// The value as a bulk string, or null.
    Bulk,
    /// `+OK` when stored, null when a condition (NX / XX) held it back.
    OkOrNull,
    /// `+OK` once every part is done (MSET, FLUSHALL, SETEX).
    Ok,
    /// `:1` when stored, `:0` when not (SETNX).
    StoredFlag,
    /// One bulk string or null per part, as an array (MGET).
    BulkArray,
    /// The integer outcome of a single op (INCR, STRLEN, EXPIRE, ...).
    Integer,
    /// The sum of the parts' integers (DEL, EXISTS, DBSIZE).
    Sum,
    /// A float formatted as a bulk string (INCRBYFLOAT).
    Float,
    /// `+string` or `+none` from an Exists outcome (TYPE).
    Type,
    /// Time to live, or unix expiry time (EXPIRETIME) in the unit given: -2 missing, -1 forever.
    Lifetime { unit: TimeUnit, absolute: bool },
    /// The substring `start..=end` of the value, with Redis' negative-index rules (GETRANGE).
    Range { start: i64, end: i64 },
    /// Every shard's keys in one array (KEYS).
    KeyArray,
    /// `[cursor, [keys]]` where the cursor goes on from `shard` (SCAN).
    Scan { shard: usize, shard_count: usize },
    /// Every shard's CLIENT LIST lines, as one text reply.
    ClientList,
    /// One key chosen among the shards' random keys (RANDOMKEY); `pick` selects which.
    RandomKey { pick: usize },
    /// MSETNX, first phase: the parts are Exists checks; when none exists, the same slot
    /// becomes a second phase that sets every pair (`pairs`: key, value, key, value, ...).
    MsetNx { pairs: Vec<Vec<u8>> },
    /// The INFO text: `text_before` (server-wide sections already rendered), then the sections
    /// made from the shards' figures.
    Info(Box<InfoRequest>),
    /// SLOWLOG GET: the shards' slow logs merged, newest first, at most `count` entries.
    SlowlogGet { count: usize },
    /// SLOWLOG LEN: entries in every shard's slow log.
    SlowlogLen,
    /// FERRITE.HOTKEYS: the shards' hottest keys, at most `count`.
    HotKeys { count: usize },
    /// A memcached reply, encoded by the memcached layer.
    Memcache(crate::memcache::Finish),
}

/// What INFO asked for and what the connection's shard knew.
#[derive(Clone, Debug, PartialEq)]
pub struct InfoRequest {
    pub text_before: String,
    pub memory: bool,
    pub stats: bool,
    pub keyspace: bool,
    pub clients: bool,
    /// `--max-clients`, for the Clients section.
    pub clients_max: usize,
    pub commandstats: bool,
    pub latencystats: bool,
    /// The Ferrite section's fixed lines, when it is asked for (its figures follow them).
    pub ferrite: Option<String>,
}

/// SCAN cursors carry the shard in their top bits and the shard's own cursor below.
pub const SCAN_SHARD_SHIFT: u32 = 48;
/// Largest per-shard cursor a SCAN cursor can carry.
pub const SCAN_LOCAL_CURSOR_MAX: u64 = (1 << SCAN_SHARD_SHIFT) - 1;

/// Writes the reply for `outcomes` (one per part, in part order) to `out`.
pub fn encode(finish: &Finish, outcomes: &[Outcome<'_>], version: Version, out: &mut Vec<u8>) {
    if let Finish::Memcache(finish) = finish {
        return crate::memcache::encode(finish, outcomes, out);
    }
    let mut reply = Reply::new(out, version);
    if let Some(error) = outcomes.iter().find_map(|outcome| match outcome {
        Outcome::Failed(error) => Some(*error),
        _ => None,
    }) {
        write_error(&mut reply, error);
        return;
    }
    match finish {
        Finish::Bulk => match outcomes.first() {
            Some(Outcome::Value(value)) => reply.bulk(&value.data),
            _ => reply.null(),
        },
        Finish::OkOrNull => match outcomes.first() {
            Some(Outcome::NotStored | Outcome::CasMismatch) => reply.null(),
            _ => reply.simple(b"OK"),
        },
        Finish::Ok => reply.simple(b"OK"),
        Finish::StoredFlag => {
            let stored = outcomes
                .iter()
                .all(|outcome| matches!(outcome, Outcome::Stored { .. }));
            reply.integer(i64::from(stored));
        }
        Finish::BulkArray => {
            reply.array(outcomes.len());
            for outcome in outcomes {
                match outcome {
                    Outcome::Value(value) => reply.bulk(&value.data),
                    _ => reply.null(),
                }
            }
        }
        Finish::Integer | Finish::Sum => reply.integer(outcomes.iter().map(integer_of).sum()),
        Finish::Float => match outcomes.first() {
            Some(Outcome::Float(text)) => reply.bulk(text),
            _ => reply.null(),
        },
        Finish::Type => {
            let exists = outcomes.first().map(integer_of).unwrap_or(0) > 0;
            reply.simple(if exists { b"string" } else { b"none" });
        }
        Finish::Lifetime { unit, absolute } => {
            let number = match outcomes.first() {
                Some(Outcome::Lifetime(Lifetime::Ms(ms))) => match (unit, absolute) {
                    (TimeUnit::Milliseconds, _) => *ms as i64,
                    // Redis rounds a remaining TTL to the nearest second, an absolute time down.
                    (TimeUnit::Seconds, false) => ms.saturating_add(500) as i64 / 1000,
                    (TimeUnit::Seconds, true) => (ms / 1000) as i64,
                },
                Some(Outcome::Lifetime(Lifetime::Forever)) => -1,
                _ => -2,
            };
            reply.integer(number);
        }
        Finish::Range { start, end } => match outcomes.first() {
            Some(Outcome::Value(value)) => reply.bulk(substring(&value.data, *start, *end)),
            _ => reply.bulk(b""),
        },
        Finish::KeyArray => {
            let total = outcomes.iter().map(|outcome| keys_of(outcome).len()).sum();
            reply.array(total);
            for key in outcomes.iter().flat_map(keys_of) {
                reply.bulk(key);
            }
        }
        Finish::Scan { shard, shard_count } => {
            let (local_cursor, keys) = match outcomes.first() {
                Some(Outcome::Keys { cursor, keys }) => (*cursor, keys.as_slice()),
                _ => (0, &[][..]),
            };
            let next = if local_cursor != 0 {
                ((*shard as u64) << SCAN_SHARD_SHIFT) | local_cursor
            } else if shard + 1 < *shard_count {
                (*shard as u64 + 1) << SCAN_SHARD_SHIFT
            } else {
                0
            };
            reply.array(2);
            reply.bulk(next.to_string().as_bytes());
            reply.array(keys.len());
            for key in keys {
                reply.bulk(key);
            }
        }
        Finish::ClientList => {
            let text: Vec<u8> = outcomes
                .iter()
                .flat_map(keys_of)
                .flatten()
                .copied()
                .collect();
            reply.verbatim(b"txt", &text);
        }
        Finish::RandomKey { pick } => {
            let found: Vec<&Vec<u8>> = outcomes.iter().flat_map(keys_of).collect();
            match found.get(pick % found.len().max(1)) {
                Some(key) => reply.bulk(key),
                None => reply.null(),
            }
        }
        // Only reached if the continuation did not run: a programming error, but never a panic
        // on the request path; the client sees an error.
        Finish::MsetNx { .. } => reply.error(b"ERR internal error: MSETNX continuation missing"),
        Finish::Info(request) => {
            let figures = ShardFigures::total(outcomes);
            let merged = report::merge(report::snapshots(outcomes));
            let text = info_text(request, &figures, &merged);
            reply.verbatim(b"txt", text.as_bytes());
        }
        Finish::SlowlogGet { count } => {
            let merged = report::merge(report::snapshots(outcomes));
            report::write_slowlog(&mut reply, &merged, *count);
        }
        Finish::SlowlogLen => {
            let entries: usize = report::snapshots(outcomes)
                .map(|snapshot| snapshot.slowlog.len())
                .sum();
            reply.integer(entries as i64);
        }
        Finish::HotKeys { count } => {
            let merged = report::merge(report::snapshots(outcomes));
            report::write_hot_keys(&mut reply, &merged, *count);
        }
        Finish::Memcache(_) => unreachable!("memcached replies are encoded above"),
    }
}

const _: () = assert!(
    persistent::KEY_BYTES_MAX == 65_535,
    "the KeyTooLong message quotes the limit"
);

/// Redis' wording for each operation error.
pub fn write_error(reply: &mut Reply<'_>, error: OpError) {
    reply.error(match error {
        OpError::NotAnInteger => b"ERR value is not an integer or out of range",
        OpError::NotAFloat => b"ERR value is not a valid float",
        OpError::Overflow => b"ERR increment or decrement would overflow",
        OpError::NotAFloatResult => b"ERR increment would produce NaN or Infinity",
        OpError::TooLarge => b"ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        OpError::KeyTooLong => b"ERR key is longer than the store's limit of 65535 bytes",
        OpError::Storage => b"ERR the store could not write to its medium (see the server log)",
    });
}

fn integer_of(outcome: &Outcome<'_>) -> i64 {
    match outcome {
        Outcome::Integer(number) => *number,
        Outcome::Unsigned(number) => i64::try_from(*number).unwrap_or(i64::MAX),
        _ => 0,
    }
}

fn keys_of<'a>(outcome: &'a Outcome<'_>) -> &'a [Vec<u8>] {
    match outcome {
        Outcome::Keys { keys, .. } => keys,
        _ => &[],
    }
}

/// GETRANGE's slice: negative indexes count from the end, both ends inclusive, clamped.
pub fn substring(data: &[u8], start: i64, end: i64) -> &[u8] {
    let length = data.len() as i64;
    if length == 0 {
        return &[];
    }
    let start = if start < 0 {
        (length + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        length + end
    } else {
        end.min(length - 1)
    };
    if start > end || start >= length || end < 0 {
        return &[];
    }
    &data[start as usize..=end as usize]
}

fn info_text(request: &InfoRequest, figures: &ShardFigures, merged: &Merged) -> String {
    use std::fmt::Write;
    let mut text = request.text_before.clone();
    // Writing to a String cannot fail.
    if request.clients {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\r\n",
            figures.connections, request.clients_max
        );
    }
    if request.memory {
        let _ = write!(
            text,
            "# Memory\r\nused_memory:{}\r\nmaxmemory:{}\r\nmaxmemory_policy:segment-eviction\r\n",
            figures.bytes_used, figures.bytes_limit
        );
        if figures.tier.tiered() {
            // The lines above are the DRAM tier's; these the file tier's.
            for (name, value) in figures.tier.lines() {
                let _ = write!(text, "{name}:{value}\r\n");
            }
        }
        text.push_str("\r\n");
    }
    if request.stats {
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\ncross_shard_requests:{}\r\n\r\n",
            figures.connections_total,
            figures.commands,
            figures.hits,
            figures.misses,
            figures.expired_items,
            figures.evicted_items,
            figures.remote_requests
        );
        // The observed figures go inside the section, before its blank line.
        text.truncate(text.len() - 2);
        text.push_str(&report::stats_lines(merged));
        text.push_str("\r\n");
    }
    if request.commandstats {
        let _ = write!(
            text,
            "# Commandstats\r\n{}\r\n",
            report::commandstats(merged)
        );
    }
    if request.latencystats {
        let _ = write!(
            text,
            "# Latencystats\r\n{}\r\n",
            report::latencystats(merged)
        );
    }
    if request.keyspace {
        text.push_str("# Keyspace\r\n");
        if figures.items > 0 {
            let _ = write!(
                text,
                "db0:keys={},expires={},avg_ttl=0\r\n",
                figures.items, figures.items_with_expiry
            );
        }
        text.push_str("\r\n");
    }
    if let Some(fixed) = &request.ferrite {
        let _ = write!(
            text,
            "# Ferrite\r\n{fixed}{}\r\n",
            report::ferrite_lines(figures, merged)
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_follows_redis_index_rules() {
        let data = b"This is a string";
        assert_eq!(substring(data, 0, 3), b"This");
        assert_eq!(substring(data, -3, -1), b"ing");
        assert_eq!(substring(data, 0, -1), data);
        assert_eq!(substring(data, 10, 100), b"string");
        assert_eq!(substring(data, 5, 3), b"");
        assert_eq!(substring(data, -100, 1), b"Th");
        assert_eq!(substring(b"", 0, -1), b"");
    }

    fn encoded(finish: Finish, outcomes: &[Outcome<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&finish, outcomes, Version::Resp2, &mut out);
        out
    }

    #[test]
    fn ttl_rounds_like_redis() {
        let ttl = |ms| {
            encoded(
                Finish::Lifetime {
                    unit: TimeUnit::Seconds,
                    absolute: false,
                },
                &[Outcome::Lifetime(Lifetime::Ms(ms))],
            )
        };
        assert_eq!(ttl(10_000), b":10\r\n");
        assert_eq!(ttl(9_600), b":10\r\n");
        assert_eq!(ttl(9_400), b":9\r\n");
        let missing = encoded(
            Finish::Lifetime {
                unit: TimeUnit::Milliseconds,
                absolute: false,
            },
            &[Outcome::Lifetime(Lifetime::Missing)],
        );
        assert_eq!(missing, b":-2\r\n");
    }

    #[test]
    fn scan_cursor_moves_to_the_next_shard_when_one_is_done() {
        let page = |cursor| Outcome::Keys {
            cursor,
            keys: vec![b"k".to_vec()],
        };
        let out = encoded(
            Finish::Scan {
                shard: 0,
                shard_count: 2,
            },
            &[page(0)],
        );
        assert!(out.starts_with(
            format!(
                "*2\r\n${}\r\n{}\r\n",
                (1u64 << 48).to_string().len(),
                1u64 << 48
            )
            .as_bytes()
        ));
        let out = encoded(
            Finish::Scan {
                shard: 1,
                shard_count: 2,
            },
            &[page(0)],
        );
        assert!(
            out.starts_with(b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        let out = encoded(
            Finish::Scan {
                shard: 1,
                shard_count: 2,
            },
            &[page(7)],
        );
        let expected = ((1u64 << 48) | 7).to_string();
        assert!(String::from_utf8_lossy(&out).contains(&expected));
    }

    #[test]
    fn an_error_in_any_part_is_the_reply() {
        let out = encoded(
            Finish::Sum,
            &[Outcome::Integer(1), Outcome::Failed(OpError::NotAnInteger)],
        );
        assert_eq!(out, b"-ERR value is not an integer or out of range\r\n");
    }
}
