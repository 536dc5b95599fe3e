//! The command layer's pure parts: exptime rules, and replies made from outcomes (the same bytes
//! whether the outcomes were local or came back from another shard).

use std::borrow::Cow;

use super::finish::{self, encode, Finish, LineKind, MetaRequest};
use super::lower::expiry;
use crate::exec::{Expiry, Lifetime, OpError, Outcome, Value};
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
        LineKind::Arithmetic,
        Outcome::Unsigned(u64::MAX),
        "18446744073709551615\r\n",
    );
    check_line(LineKind::Arithmetic, Outcome::NotStored, "NOT_FOUND\r\n");
    check_line(
        LineKind::Arithmetic,
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
    };
    let outcomes = [value(b"1", 3, 10), Outcome::Missing, value(b"", 0, 11)];
    assert_eq!(
        encoded(&finish, &outcomes),
        "VALUE a 3 1 10\r\n1\r\nVALUE c 0 0 11\r\n\r\nEND\r\n"
    );
    let flush = Finish::Flush { noreply: false };
    assert_eq!(
        encoded(
            &flush,
            &[Outcome::Stored { cas: 0 }, Outcome::Stored { cas: 0 }]
        ),
        "OK\r\n"
    );
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
    finish::meta(&mut local, kind, &key, &flags, outcomes, 0, NOW_MS);
    assert_eq!(String::from_utf8_lossy(&local), expect, "local path");
    let copied = Finish::Meta(MetaRequest::new(kind, &key, &flags, 0));
    assert_eq!(encoded(&copied, outcomes), expect, "cross-shard path");
}

#[test]
fn meta_replies_from_outcomes() {
    let forever = Outcome::Lifetime(Lifetime::Forever);
    check_meta(b"mg k v f\r\n", &[value(b"hi", 4, 9)], "VA 2 f4\r\nhi\r\n");
    check_meta(b"mg k v q\r\n", &[Outcome::Missing], "");
    check_meta(b"mg k k O7\r\n", &[Outcome::Missing], "EN kk O7\r\n");
    // t without T asks the store for the TTL first; the value comes last.
    check_meta(
        b"mg k t c s\r\n",
        &[Outcome::Lifetime(Lifetime::Ms(1500)), value(b"abc", 0, 5)],
        "HD t2 c5 s3\r\n",
    );
    check_meta(
        b"mg k t\r\n",
        &[forever.clone(), value(b"", 0, 5)],
        "HD t-1\r\n",
    );
    // N created the item: this client won the right to fill it.
    check_meta(
        b"mg k N30 v\r\n",
        &[Outcome::Stored { cas: 8 }, value(b"", 0, 8)],
        "VA 0 W\r\n\r\n",
    );
    check_meta(
        b"mg k R30 t\r\n",
        &[Outcome::Lifetime(Lifetime::Ms(10_000)), value(b"x", 0, 8)],
        "HD t10 W\r\n",
    );
    check_meta(
        b"ms k 2 c\r\nhi\r\n",
        &[Outcome::Stored { cas: 42 }],
        "HD c42\r\n",
    );
    check_meta(b"ms k 2 q\r\nhi\r\n", &[Outcome::Stored { cas: 42 }], "");
    check_meta(b"ms k 2 ME\r\nhi\r\n", &[Outcome::NotStored], "NS\r\n");
    check_meta(b"ms k 2 C5\r\nhi\r\n", &[Outcome::NotStored], "NF\r\n");
    check_meta(b"ms k 2 C5\r\nhi\r\n", &[Outcome::CasMismatch], "EX\r\n");
    check_meta(
        b"ms k 2 MA c\r\nhi\r\n",
        &[Outcome::Integer(4), value(b"hihi", 0, 43)],
        "HD c43\r\n",
    );
    check_meta(b"md k\r\n", &[Outcome::Integer(1)], "HD\r\n");
    check_meta(b"md k q\r\n", &[Outcome::Integer(0)], "NF\r\n");
    check_meta(b"md k C5\r\n", &[Outcome::Stored { cas: 0 }], "HD\r\n");
    check_meta(b"md k C5 O1\r\n", &[Outcome::CasMismatch], "EX O1\r\n");
    check_meta(b"md k C5\r\n", &[Outcome::Missing], "NF\r\n");
    check_meta(b"ma k v\r\n", &[Outcome::Unsigned(6)], "VA 1\r\n6\r\n");
    check_meta(b"ma k\r\n", &[Outcome::NotStored], "NF\r\n");
    check_meta(
        b"ma k N0 J10 v\r\n",
        &[Outcome::NotStored, Outcome::Stored { cas: 1 }],
        "VA 2\r\n10\r\n",
    );
    check_meta(
        b"ma k T60 t c v\r\n",
        &[
            Outcome::Unsigned(7),
            Outcome::Integer(1),
            Outcome::Lifetime(Lifetime::Ms(60_000)),
            value(b"7", 0, 12),
        ],
        "VA 1 t60 c12\r\n7\r\n",
    );
    check_meta(
        b"ma k\r\n",
        &[Outcome::Failed(OpError::NotAnInteger)],
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    check_meta(
        b"me k\r\n",
        &[forever, value(b"abc", 0, 3)],
        "ME k exp=-1 la=0 cas=3 fetch=no cls=1 size=3\r\n",
    );
    check_meta(
        b"me k\r\n",
        &[Outcome::Lifetime(Lifetime::Missing), Outcome::Missing],
        "EN\r\n",
    );
}
