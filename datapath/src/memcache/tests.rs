//! The command layer's pure parts: exptime rules, and replies made from outcomes (the same bytes
//! whether the outcomes were local or came back from another shard).

use std::borrow::Cow;

use persistent::{Store, StoreConfig, ACCESS_TICK_MS};
use platform::offload::SoftwareOffload;

use super::finish::{self, encode, Finish, LineKind, MetaRequest};
use super::key_of;
use super::lower::{expiry, meta_ops};
use crate::exec::{Executor, Expiry, Lifetime, MetaValue, Op, OpError, Outcome, Usage, Value};
use crate::protocol::memcache::reply::Status;
use crate::protocol::memcache::{parse, Command, Limits, Parsed};

const NOW_MS: u64 = 1_800_000_000_000;

#[test]
fn exptime_rules() {
    let thirty_days = 60 * 60 * 24 * 30;
    let cases = [
        (0, Expiry::Never),
        (-1, Expiry::AtMs(NOW_MS - 1)),
        (10, Expiry::AtMs(NOW_MS + 10_000)),
        (
            thirty_days,
            Expiry::AtMs(NOW_MS + thirty_days as u64 * 1000),
        ),
        (
            thirty_days + 1,
            Expiry::AtMs((thirty_days as u64 + 1) * 1000),
        ),
        (1_900_000_000, Expiry::AtMs(1_900_000_000_000)),
    ];
    for (exptime, expect) in cases {
        assert_eq!(expiry(exptime, NOW_MS), expect, "exptime {exptime}");
    }
}

fn value(data: &'static [u8], flags: u32, cas: u64) -> Outcome<'static> {
    Outcome::Value(Value {
        data: Cow::Borrowed(data),
        flags,
        cas,
    })
}

fn encoded(finish: &Finish, outcomes: &[Outcome<'_>]) -> String {
    let mut out = Vec::new();
    encode(finish, outcomes, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn check_line(kind: LineKind, outcome: Outcome<'_>, expect: &str) {
    let finish = Finish::Line {
        kind,
        noreply: false,
        shard: 0,
    };
    assert_eq!(
        encoded(&finish, std::slice::from_ref(&outcome)),
        expect,
        "{kind:?} {outcome:?}"
    );
    let quiet = Finish::Line {
        kind,
        noreply: true,
        shard: 0,
    };
    assert_eq!(encoded(&quiet, &[outcome]), "", "noreply sends nothing");
}

#[test]
fn one_line_replies() {
    let store = LineKind::Store { cas_command: false };
    let cas = LineKind::Store { cas_command: true };
    check_line(store, Outcome::Stored { cas: 7 }, "STORED\r\n");
    check_line(store, Outcome::Integer(5), "STORED\r\n");
    check_line(store, Outcome::NotStored, "NOT_STORED\r\n");
    check_line(cas, Outcome::NotStored, "NOT_FOUND\r\n");
    check_line(cas, Outcome::CasMismatch, "EXISTS\r\n");
    check_line(
        store,
        Outcome::Failed(OpError::TooLarge),
        "SERVER_ERROR object too large for cache\r\n",
    );
    check_line(
        store,
        Outcome::Failed(OpError::Storage),
        "SERVER_ERROR out of memory storing object\r\n",
    );
    check_line(
        LineKind::Arithmetic { decrement: false },
        Outcome::Unsigned(u64::MAX),
        "18446744073709551615\r\n",
    );
    check_line(
        LineKind::Arithmetic { decrement: false },
        Outcome::NotStored,
        "NOT_FOUND\r\n",
    );
    check_line(
        LineKind::Arithmetic { decrement: false },
        Outcome::Failed(OpError::NotAnInteger),
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    check_line(LineKind::Delete, Outcome::Integer(1), "DELETED\r\n");
    check_line(LineKind::Delete, Outcome::Integer(0), "NOT_FOUND\r\n");
    check_line(LineKind::Touch, Outcome::Integer(1), "TOUCHED\r\n");
    check_line(LineKind::Touch, Outcome::Integer(0), "NOT_FOUND\r\n");
}

#[test]
fn values_keep_request_order_and_skip_misses() {
    let finish = Finish::Values {
        keys: b"a b c".to_vec().into_boxed_slice(),
        cas: true,
        touch: false,
        shard: 0,
    };
    let outcomes = [value(b"1", 3, 10), Outcome::Missing, value(b"", 0, 11)];
    assert_eq!(
        encoded(&finish, &outcomes),
        "VALUE a 3 1 10\r\n1\r\nVALUE c 0 0 11\r\n\r\nEND\r\n"
    );
}

#[test]
fn every_shard_answers_once_all_are_done() {
    let every_shard = |done| Finish::EveryShard {
        done,
        noreply: false,
    };
    let done = [Outcome::Stored { cas: 0 }, Outcome::Integer(0)];
    assert_eq!(encoded(&every_shard(Status::Ok), &done), "OK\r\n");
    assert_eq!(encoded(&every_shard(Status::Reset), &done), "RESET\r\n");
    let failed = [
        Outcome::Stored { cas: 0 },
        Outcome::Failed(OpError::Storage),
    ];
    assert_eq!(
        encoded(&every_shard(Status::Ok), &failed),
        "SERVER_ERROR out of memory storing object\r\n"
    );
    let quiet = Finish::EveryShard {
        done: Status::Ok,
        noreply: true,
    };
    assert_eq!(encoded(&quiet, &failed), "");
}

/// Encodes a meta reply both ways (as the local path does, from the parsed request, and as a
/// cross-shard reply does, from the copied request) and checks both give `expect`.
fn check_meta(request: &[u8], outcomes: &[Outcome<'_>], expect: &str) {
    let Ok(Parsed::Complete {
        command: Command::Meta {
            kind, key, flags, ..
        },
        ..
    }) = parse(request, &Limits::default())
    else {
        panic!("not a meta request: {}", String::from_utf8_lossy(request));
    };
    let mut local = Vec::new();
    finish::meta(&mut local, kind, &key, &flags, outcomes, 0);
    assert_eq!(String::from_utf8_lossy(&local), expect, "local path");
    let copied = Finish::Meta(MetaRequest::new(kind, &key, &flags, 0));
    assert_eq!(encoded(&copied, outcomes), expect, "cross-shard path");
}

/// A meta read's outcome.
fn found(
    data: &'static [u8],
    cas: u64,
    lifetime: Lifetime,
    usage: Usage,
    won: bool,
) -> Outcome<'static> {
    Outcome::MetaValue(MetaValue {
        value: Value {
            data: Cow::Borrowed(data),
            flags: 4,
            cas,
        },
        lifetime,
        usage,
        won,
        created: false,
    })
}

#[test]
fn meta_replies_from_outcomes() {
    let fresh = Usage::default();
    let hit = found(b"hi", 9, Lifetime::Forever, fresh, false);
    check_meta(
        b"mg k v f\r\n",
        std::slice::from_ref(&hit),
        "VA 2 f4\r\nhi\r\n",
    );
    check_meta(b"mg k v q\r\n", &[Outcome::Missing], "");
    check_meta(b"mg k k O7\r\n", &[Outcome::Missing], "EN kk O7\r\n");
    check_meta(
        b"mg k t c s\r\n",
        &[found(b"abc", 5, Lifetime::Ms(1500), fresh, false)],
        "HD t2 c5 s3\r\n",
    );
    check_meta(b"mg k t\r\n", std::slice::from_ref(&hit), "HD t-1\r\n");
    let used = Usage {
        fetched: true,
        idle_ms: 125_000,
        ..fresh
    };
    check_meta(
        b"mg k h l\r\n",
        &[found(b"", 5, Lifetime::Forever, used, false)],
        "HD h1 l125\r\n",
    );
    check_meta(b"mg k h l\r\n", std::slice::from_ref(&hit), "HD h0 l0\r\n");
    // This client won the right to recache; a stale item says X, a token taken says Z.
    check_meta(
        b"mg k N30 v\r\n",
        &[found(b"", 8, Lifetime::Ms(30_000), fresh, true)],
        "VA 0 W\r\n\r\n",
    );
    let stale = Usage {
        stale: true,
        ..fresh
    };
    check_meta(
        b"mg k c\r\n",
        &[found(b"x", 8, Lifetime::Forever, stale, true)],
        "HD c8 X W\r\n",
    );
    let stale_taken = Usage {
        win_token: true,
        ..stale
    };
    check_meta(
        b"mg k\r\n",
        &[found(b"x", 8, Lifetime::Forever, stale_taken, false)],
        "HD Z X\r\n",
    );
    check_meta(
        b"ms k 2 c\r\nhi\r\n",
        &[Outcome::Stored { cas: 42 }],
        "HD c42\r\n",
    );
    check_meta(b"ms k 2 q\r\nhi\r\n", &[Outcome::Stored { cas: 42 }], "");
    check_meta(b"ms k 2 ME\r\nhi\r\n", &[Outcome::NotStored], "NS\r\n");
    check_meta(b"ms k 2 C5\r\nhi\r\n", &[Outcome::Missing], "NF\r\n");
    check_meta(b"ms k 2 C5\r\nhi\r\n", &[Outcome::CasMismatch], "EX\r\n");
    check_meta(
        b"ms k 2 MA c\r\nhi\r\n",
        &[Outcome::Integer(4), value(b"hihi", 0, 43)],
        "HD c43\r\n",
    );
    check_meta(b"ms k 2 MA C4\r\nhi\r\n", &[Outcome::CasMismatch], "EX\r\n");
    check_meta(b"md k\r\n", &[Outcome::Integer(1)], "HD\r\n");
    check_meta(b"md k q\r\n", &[Outcome::Integer(0)], "NF\r\n");
    check_meta(b"md k I\r\n", &[Outcome::Stored { cas: 3 }], "HD\r\n");
    check_meta(b"md k x\r\n", &[Outcome::NotStored], "NF\r\n");
    check_meta(b"md k C5 O1\r\n", &[Outcome::CasMismatch], "EX O1\r\n");
    check_meta(b"md k C5\r\n", &[Outcome::Missing], "NF\r\n");
    let counter = |digits: &'static [u8], lifetime| found(digits, 12, lifetime, fresh, false);
    check_meta(
        b"ma k v\r\n",
        &[counter(b"6", Lifetime::Forever)],
        "VA 1\r\n6\r\n",
    );
    // q hides a successful ma even when it carries the value.
    check_meta(b"ma k v q\r\n", &[counter(b"6", Lifetime::Forever)], "");
    check_meta(b"ma k q\r\n", &[counter(b"6", Lifetime::Forever)], "");
    check_meta(b"ma k\r\n", &[Outcome::Missing], "NF\r\n");
    check_meta(b"ma k N0\r\n", &[Outcome::NotStored], "NS\r\n");
    check_meta(b"ma k C1\r\n", &[Outcome::CasMismatch], "EX\r\n");
    check_meta(
        b"ma k T60 t c v\r\n",
        &[counter(b"7", Lifetime::Ms(60_000))],
        "VA 1 t60 c12\r\n7\r\n",
    );
    check_meta(
        b"ma k\r\n",
        &[Outcome::Failed(OpError::NotAnInteger)],
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    check_meta(
        b"me k\r\n",
        &[found(b"abc", 3, Lifetime::Forever, used, false)],
        "ME k exp=-1 la=125 cas=3 fetch=yes cls=1 size=3\r\n",
    );
    check_meta(b"me k\r\n", &[Outcome::Missing], "EN\r\n");
}

/// One shard's executor on a DRAM store, asked meta requests end to end (parse, lower, execute,
/// encode) at a clock the test chooses.
struct Shard {
    executor: Executor,
}

impl Shard {
    fn new() -> Shard {
        let store = Store::open(
            &StoreConfig::dram(8 << 20),
            Box::new(SoftwareOffload),
            NOW_MS,
        )
        .expect("open a DRAM store");
        Shard {
            executor: Executor::with_store(store),
        }
    }

    fn ask(&mut self, request: &[u8], now: u64) -> String {
        let parsed = parse(request, &Limits::default());
        let Ok(Parsed::Complete {
            command:
                Command::Meta {
                    kind,
                    key,
                    flags,
                    data,
                },
            ..
        }) = parsed
        else {
            panic!("not a meta request: {}", String::from_utf8_lossy(request));
        };
        let ops = meta_ops(kind, key.bytes(), &flags, data, now);
        let outcomes: Vec<Outcome<'static>> = ops
            .iter()
            .map(|op| self.executor.execute(op, now).into_owned())
            .collect();
        let mut out = Vec::new();
        finish::meta(&mut out, kind, &key, &flags, &outcomes, 0);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The CAS `me` reports (it looks without leaving a trace, as a test must).
    fn cas(&mut self, key: &str, now: u64) -> u64 {
        let reply = self.ask(format!("me {key}\r\n").as_bytes(), now);
        reply
            .split_whitespace()
            .find_map(|token| token.strip_prefix("cas="))
            .and_then(|cas| cas.parse().ok())
            .unwrap_or_else(|| panic!("no CAS in {reply:?}"))
    }
}

#[test]
fn hit_before_and_last_access() {
    let mut shard = Shard::new();
    assert_eq!(shard.ask(b"ms k 1\r\nv\r\n", NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg k h l\r\n", NOW_MS + 1000), "HD h0 l0\r\n");
    // u looks without being counted: still fetched once.
    assert_eq!(shard.ask(b"mg k h u\r\n", NOW_MS + 2000), "HD h1\r\n");
    let three_minutes = NOW_MS + 3 * ACCESS_TICK_MS;
    assert_eq!(shard.ask(b"mg k l u\r\n", three_minutes), "HD l180\r\n");
    assert_eq!(shard.ask(b"mg k l\r\n", three_minutes), "HD l180\r\n");
    assert_eq!(shard.ask(b"mg k l\r\n", three_minutes), "HD l0\r\n");
    assert_eq!(
        shard.ask(b"me k\r\n", three_minutes),
        format!(
            "ME k exp=-1 la=0 cas={} fetch=yes cls=1 size=1\r\n",
            shard.cas("k", three_minutes)
        )
    );
    // A new write is a new item: not hit yet.
    shard.ask(b"ms k 1\r\nw\r\n", three_minutes);
    assert_eq!(shard.ask(b"mg k h\r\n", three_minutes), "HD h0\r\n");
}

#[test]
fn invalidation_hands_one_client_the_win_token() {
    let mut shard = Shard::new();
    shard.ask(b"ms k 3 T100\r\nold\r\n", NOW_MS);
    let before = shard.cas("k", NOW_MS);
    assert_eq!(shard.ask(b"md k I T30\r\n", NOW_MS), "HD\r\n");
    let stale = shard.cas("k", NOW_MS);
    assert_ne!(stale, before, "md I bumps the CAS");
    // The first reader wins the right to recache, the others are told someone has.
    assert_eq!(
        shard.ask(b"mg k v t\r\n", NOW_MS),
        "VA 3 t30 X W\r\nold\r\n"
    );
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS), "VA 3 Z X\r\nold\r\n");
    assert_eq!(shard.ask(b"mg k\r\n", NOW_MS), "HD Z X\r\n");
    // A set under the stale CAS replaces it: a plain item again.
    let set = format!("ms k 3 C{stale} T100\r\nnew\r\n");
    assert_eq!(shard.ask(set.as_bytes(), NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS), "VA 3\r\nnew\r\n");
    // Invalidated again: its token is free for the next reader.
    shard.ask(b"md k I\r\n", NOW_MS);
    assert_eq!(shard.ask(b"mg k\r\n", NOW_MS), "HD X W\r\n");
    // md I with a CAS that does not match changes nothing; on a missing key it is NF.
    assert_eq!(shard.ask(b"md k I C1\r\n", NOW_MS), "EX\r\n");
    assert_eq!(shard.ask(b"md gone I\r\n", NOW_MS), "NF\r\n");
}

#[test]
fn a_set_with_an_older_cas_and_i_stores_the_value_stale() {
    let mut shard = Shard::new();
    shard.ask(b"ms k 2\r\nv1\r\n", NOW_MS);
    let first = shard.cas("k", NOW_MS);
    shard.ask(b"ms k 2\r\nv2\r\n", NOW_MS);
    let second = shard.cas("k", NOW_MS);
    // Without I, an older CAS is refused; with I it stores, marked stale.
    assert_eq!(
        shard.ask(format!("ms k 2 C{first}\r\nv3\r\n").as_bytes(), NOW_MS),
        "EX\r\n"
    );
    let stale_set = format!("ms k 2 I C{first}\r\nv3\r\n");
    assert_eq!(shard.ask(stale_set.as_bytes(), NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS), "VA 2 X W\r\nv3\r\n");
    // A newer CAS than the item's is refused even with I; a matching one stores it fresh.
    let third = shard.cas("k", NOW_MS);
    let newer = format!("ms k 2 I C{}\r\nv4\r\n", third + 1);
    assert_eq!(shard.ask(newer.as_bytes(), NOW_MS), "EX\r\n");
    let matching = format!("ms k 2 I C{third}\r\nv5\r\n");
    assert_eq!(shard.ask(matching.as_bytes(), NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS), "VA 2\r\nv5\r\n");
    assert!(second < third);
    assert_eq!(shard.ask(b"ms gone 1 I C5\r\nx\r\n", NOW_MS), "NF\r\n");
}

#[test]
fn recache_and_vivify_win_once() {
    let mut shard = Shard::new();
    shard.ask(b"ms k 1 T20\r\nv\r\n", NOW_MS);
    assert_eq!(shard.ask(b"mg k R10 t\r\n", NOW_MS), "HD t20\r\n");
    assert_eq!(shard.ask(b"mg k R30 t\r\n", NOW_MS), "HD t20 W\r\n");
    assert_eq!(shard.ask(b"mg k R30 t\r\n", NOW_MS), "HD t20 Z\r\n");
    // No expiry: never due for recache.
    shard.ask(b"ms forever 1\r\nv\r\n", NOW_MS);
    assert_eq!(shard.ask(b"mg forever R30\r\n", NOW_MS), "HD\r\n");
    // N creates an empty item on a miss: its creator wins, the next readers see Z.
    assert_eq!(
        shard.ask(b"mg new N30 v t\r\n", NOW_MS),
        "VA 0 t30 W\r\n\r\n"
    );
    assert_eq!(shard.ask(b"mg new N30 v\r\n", NOW_MS), "VA 0 Z\r\n\r\n");
    assert_eq!(shard.ask(b"ms new 4\r\nfull\r\n", NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg new N30 v\r\n", NOW_MS), "VA 4\r\nfull\r\n");
}

#[test]
fn compare_cas_on_arithmetic_and_concatenation() {
    let mut shard = Shard::new();
    shard.ask(b"ms n 1\r\n5\r\n", NOW_MS);
    let cas = shard.cas("n", NOW_MS);
    assert_eq!(
        shard.ask(format!("ma n C{} v\r\n", cas + 1).as_bytes(), NOW_MS),
        "EX\r\n"
    );
    let counted = shard.ask(format!("ma n C{cas} v c\r\n").as_bytes(), NOW_MS);
    let new_cas = shard.cas("n", NOW_MS);
    assert_eq!(counted, format!("VA 1 c{new_cas}\r\n6\r\n"));
    assert_eq!(
        shard.ask(format!("ma n C{cas} T60 t\r\n").as_bytes(), NOW_MS),
        "EX\r\n"
    );
    assert_eq!(
        shard.ask(b"mg n t v\r\n", NOW_MS),
        "VA 1 t-1\r\n6\r\n",
        "T not applied on EX"
    );
    assert_eq!(shard.ask(b"ma gone C5\r\n", NOW_MS), "NF\r\n");
    assert_eq!(
        shard.ask(b"ma gone C5 N0 J3 v\r\n", NOW_MS),
        "VA 1\r\n3\r\n"
    );
    // Append and prepend modes compare too.
    let cas = shard.cas("n", NOW_MS);
    let stale = format!("ms n 1 MA C{}\r\n!\r\n", cas + 1);
    assert_eq!(shard.ask(stale.as_bytes(), NOW_MS), "EX\r\n");
    let append = format!("ms n 1 MA C{cas} c\r\n!\r\n");
    let reply = shard.ask(append.as_bytes(), NOW_MS);
    assert_eq!(reply, format!("HD c{}\r\n", shard.cas("n", NOW_MS)));
    let prepend = format!("ms n 1 MP C{}\r\n<\r\n", shard.cas("n", NOW_MS));
    assert_eq!(shard.ask(prepend.as_bytes(), NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg n v\r\n", NOW_MS), "VA 3\r\n<6!\r\n");
    assert_eq!(shard.ask(b"ms absent 1 MA C5\r\n!\r\n", NOW_MS), "NS\r\n");
    assert_eq!(
        shard.ask(b"ms absent 1 MA C5 N30\r\n!\r\n", NOW_MS),
        "HD\r\n"
    );
}

#[test]
fn arithmetic_takes_any_unsigned_delta() {
    let mut shard = Shard::new();
    shard.ask(b"ms n 1\r\n5\r\n", NOW_MS);
    // memcached adds modulo 2^64: 5 + (2^64 - 1) is 4.
    assert_eq!(
        shard.ask(b"ma n D18446744073709551615 v\r\n", NOW_MS),
        "VA 1\r\n4\r\n"
    );
    assert_eq!(
        shard.ask(b"ma n MD D18446744073709551615 v\r\n", NOW_MS),
        "VA 1\r\n0\r\n"
    );
}

#[test]
fn a_read_that_sets_a_past_ttl_returns_the_hit_then_expires_it() {
    let mut shard = Shard::new();
    shard.ask(b"ms k 1\r\nv\r\n", NOW_MS);
    assert_eq!(shard.ask(b"mg k T-1 v\r\n", NOW_MS), "VA 1\r\nv\r\n");
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS), "EN\r\n");
    // gat / gats.
    shard.ask(b"ms k 1 F3\r\nv\r\n", NOW_MS);
    let touch = Op::GetAndExpire {
        key: Cow::Borrowed(b"k"),
        expiry: expiry(-1, NOW_MS),
    };
    let cas = shard.cas("k", NOW_MS);
    assert_eq!(
        shard.executor.execute(&touch, NOW_MS).into_owned(),
        value(b"v", 3, cas)
    );
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS), "EN\r\n");
    // A later TTL: the CAS reported is the one a following write must quote.
    shard.ask(b"ms k 1\r\nv\r\n", NOW_MS);
    let reply = shard.ask(b"mg k T30 t c\r\n", NOW_MS);
    assert_eq!(reply, format!("HD t30 c{}\r\n", shard.cas("k", NOW_MS)));
}

#[test]
fn an_append_that_vivifies_takes_the_ttl_from_n_and_the_flags_from_f() {
    let mut shard = Shard::new();
    assert_eq!(shard.ask(b"ms k 1 MA N30 F5\r\nx\r\n", NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg k v f t\r\n", NOW_MS), "VA 1 f5 t30\r\nx\r\n");
    // An item that exists keeps its own TTL and flags.
    assert_eq!(shard.ask(b"ms k 1 MP N60 F7\r\n<\r\n", NOW_MS), "HD\r\n");
    assert_eq!(
        shard.ask(b"mg k v f t\r\n", NOW_MS),
        "VA 2 f5 t30\r\n<x\r\n"
    );
    assert_eq!(shard.ask(b"ms p 1 MP N60 F7\r\n<\r\n", NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg p v f t\r\n", NOW_MS), "VA 1 f7 t60\r\n<\r\n");
}

#[test]
fn removing_a_value_keeps_the_item_with_the_ttl_given() {
    let mut shard = Shard::new();
    shard.ask(b"ms k 5 F9 T100\r\nvalue\r\n", NOW_MS);
    assert_eq!(shard.ask(b"md k x C1\r\n", NOW_MS), "EX\r\n");
    let cas = shard.cas("k", NOW_MS);
    // memcached stores a new empty item: without T it never expires.
    assert_eq!(
        shard.ask(format!("md k x C{cas}\r\n").as_bytes(), NOW_MS),
        "HD\r\n"
    );
    assert_eq!(shard.ask(b"mg k v f t\r\n", NOW_MS), "VA 0 f0 t-1\r\n\r\n");
    shard.ask(b"ms k 5 F9 T100\r\nvalue\r\n", NOW_MS);
    assert_eq!(shard.ask(b"md k x T30\r\n", NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg k v f t\r\n", NOW_MS), "VA 0 f0 t30\r\n\r\n");
    // With I as well: emptied and stale, its win token for the next reader.
    shard.ask(b"ms k 5 F9\r\nvalue\r\n", NOW_MS);
    assert_eq!(shard.ask(b"md k I x T30\r\n", NOW_MS), "HD\r\n");
    assert_eq!(shard.ask(b"mg k v t\r\n", NOW_MS), "VA 0 t30 X W\r\n\r\n");
    assert_eq!(shard.ask(b"md k x q\r\n", NOW_MS), "");
    assert_eq!(shard.ask(b"md gone x\r\n", NOW_MS), "NF\r\n");
}

#[test]
fn a_delayed_flush_all_empties_the_store_when_due() {
    let mut shard = Shard::new();
    shard.ask(b"ms k 1\r\nv\r\n", NOW_MS);
    let Ok(Parsed::Complete {
        command: Command::FlushAll { delay, .. },
        ..
    }) = parse(b"flush_all 10\r\n", &Limits::default())
    else {
        panic!("flush_all did not parse");
    };
    let Expiry::AtMs(at_ms) = expiry(delay, NOW_MS) else {
        panic!("a delay is a time");
    };
    assert_eq!(
        shard.executor.execute(&Op::FlushAt { at_ms }, NOW_MS),
        Outcome::Stored { cas: 0 }
    );
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS + 9_999), "VA 1\r\nv\r\n");
    assert_eq!(shard.ask(b"mg k v\r\n", NOW_MS + 10_000), "EN\r\n");
}

#[test]
fn the_first_key_of_each_command_kind() {
    let cases: [(&[u8], Option<&[u8]>); 7] = [
        (b"get alpha beta\r\n", Some(b"alpha")),
        (b"gat 10 alpha beta\r\n", Some(b"alpha")),
        (b"mg alpha v\r\n", Some(b"alpha")),
        (b"set alpha 0 0 1\r\nx\r\n", Some(b"alpha")),
        (b"incr alpha 1\r\n", Some(b"alpha")),
        (b"mg YWxwaGE= b v\r\n", None),
        (b"version\r\n", None),
    ];
    for (input, expect) in cases {
        let Ok(Parsed::Complete { command, .. }) = parse(input, &Limits::default()) else {
            panic!("{:?} did not parse", String::from_utf8_lossy(input));
        };
        assert_eq!(
            key_of(&command),
            expect,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}
