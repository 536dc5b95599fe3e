//! Each memcached command lowered to store operations, run locally or through the owner shards.

use std::borrow::Cow;

use super::finish::{self, Finish, LineKind, MetaRequest};
use super::stats;
use crate::exec::{
    Arithmetic, Condition, Creation, ExpireCondition, Expiry, MetaArithmetic, MetaRead, Op,
    UnsignedDelta,
};
use crate::protocol::memcache::{
    reply, Command, Keys, MetaFlags, MetaKey, MetaKind, MetaMode, StoreMode,
};
use crate::shard::conn::Conn;
use crate::shard::finish::Finish as ShardFinish;
use crate::shard::{owner_of, Core};

/// Largest relative expiration time, in seconds (30 days); a larger one is a unix time.
const RELATIVE_EXPTIME_SECONDS_MAX: i64 = 60 * 60 * 24 * 30;

/// The expiry memcached means by `exptime` at `now_ms`: 0 never, up to 30 days relative seconds,
/// above that an absolute unix time, negative already expired.
pub(super) fn expiry(exptime: i64, now_ms: u64) -> Expiry {
    let already_expired = Expiry::AtMs(now_ms.saturating_sub(1));
    match exptime {
        0 => Expiry::Never,
        ..0 => already_expired,
        1..=RELATIVE_EXPTIME_SECONDS_MAX => {
            Expiry::AtMs(now_ms.saturating_add(exptime.unsigned_abs().saturating_mul(1000)))
        }
        _ => Expiry::AtMs(exptime.unsigned_abs().saturating_mul(1000)),
    }
}

/// Runs one parsed command for `conn`; `now` is the read batch's clock.
pub(super) fn run(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    command: Command<'_>,
    now: u64,
) {
    match command {
        Command::Get { keys, cas } => retrieve(core, conn_index, conn, keys, None, cas, now),
        Command::GetAndTouch { exptime, keys, cas } => {
            stats::count(core.id, |counters| &counters.cmd_touch, keys.count() as u64);
            retrieve(
                core,
                conn_index,
                conn,
                keys,
                Some(expiry(exptime, now)),
                cas,
                now,
            );
        }
        Command::Store {
            mode,
            key,
            flags,
            exptime,
            data,
            noreply,
        } => {
            stats::count(core.id, |counters| &counters.cmd_set, 1);
            let key = Cow::Borrowed(key);
            let value = Cow::Borrowed(data);
            let (op, cas_command) = match mode {
                StoreMode::Append | StoreMode::Prepend => {
                    let prepend = mode == StoreMode::Prepend;
                    let op = Op::Concat {
                        key,
                        value,
                        prepend,
                        create: None,
                    };
                    (op, false)
                }
                StoreMode::Set | StoreMode::Add | StoreMode::Replace | StoreMode::Cas { .. } => {
                    let condition = match mode {
                        StoreMode::Add => Condition::IfAbsent,
                        StoreMode::Replace => Condition::IfPresent,
                        StoreMode::Cas { unique } => Condition::IfCas(unique),
                        _ => Condition::Always,
                    };
                    let expiry = expiry(exptime, now);
                    let op = Op::Set {
                        key,
                        value,
                        flags,
                        expiry,
                        condition,
                        return_old: false,
                    };
                    (op, matches!(mode, StoreMode::Cas { .. }))
                }
            };
            line(
                core,
                conn_index,
                conn,
                op,
                LineKind::Store { cas_command },
                noreply,
            );
        }
        Command::Arithmetic {
            key,
            delta,
            decrement,
            noreply,
        } => {
            let op = Op::Increment {
                key: Cow::Borrowed(key),
                arithmetic: Arithmetic::Unsigned(UnsignedDelta {
                    magnitude: delta,
                    decrement,
                }),
                create: false,
            };
            let kind = LineKind::Arithmetic { decrement };
            line(core, conn_index, conn, op, kind, noreply);
        }
        Command::Delete { key, noreply } => {
            let op = Op::Delete {
                key: Cow::Borrowed(key),
            };
            line(core, conn_index, conn, op, LineKind::Delete, noreply);
        }
        Command::Touch {
            key,
            exptime,
            noreply,
        } => {
            stats::count(core.id, |counters| &counters.cmd_touch, 1);
            let op = Op::Expire {
                key: Cow::Borrowed(key),
                expiry: expiry(exptime, now),
                condition: ExpireCondition::Always,
            };
            line(core, conn_index, conn, op, LineKind::Touch, noreply);
        }
        Command::FlushAll { delay, noreply } => {
            stats::count(core.id, |counters| &counters.cmd_flush, 1);
            // memcached takes the delay like an exptime: relative seconds, or a unix time.
            let op = match expiry(delay, now) {
                Expiry::AtMs(at_ms) if delay > 0 => Op::FlushAt { at_ms },
                _ => Op::Flush,
            };
            let shards = core.shared.shard_count;
            let finish = ShardFinish::Memcache(Finish::EveryShard {
                done: reply::Status::Ok,
                noreply,
            });
            core.run_multi(
                conn_index,
                conn,
                finish,
                (0..shards).map(|shard| (shard, op.clone())),
            );
        }
        Command::Version => reply::version(conn.reply_buffer(), super::VERSION),
        Command::Verbosity { noreply } => {
            if !noreply {
                reply::status(conn.reply_buffer(), reply::Status::Ok);
            }
        }
        Command::Quit => super::close_after_reply(conn),
        Command::Stats { args } => stats::run(core, conn_index, conn, args),
        Command::MetaNoop => reply::meta_noop(conn.reply_buffer()),
        Command::Meta {
            kind,
            key,
            flags,
            data,
        } => meta(core, conn_index, conn, kind, &key, &flags, data, now),
    }
}

/// A command with one operation and a one-line reply.
fn line(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    op: Op<'_>,
    kind: LineKind,
    noreply: bool,
) {
    let target = op.key().map_or(core.id, |key| core.owner(key));
    let finish = Finish::Line {
        kind,
        noreply,
        shard: core.id,
    };
    route(core, conn_index, conn, finish, [(target, op)]);
}

/// Runs a command's ops (`parts`: each with the shard that owns it) through their owners; its
/// reply is made by `finish` once their outcomes are in. One op goes by `run_single`, which runs
/// it at once when this shard owns it; more by `run_multi`.
fn route<'a>(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    finish: Finish,
    parts: impl IntoIterator<Item = (usize, Op<'a>)>,
) {
    let finish = ShardFinish::Memcache(finish);
    let mut parts = parts.into_iter();
    let Some((target, op)) = parts.next() else {
        return;
    };
    let Some(second) = parts.next() else {
        return core.run_single(conn_index, conn, finish, op, target);
    };
    let parts: Vec<(usize, Op<'a>)> = [(target, op), second].into_iter().chain(parts).collect();
    core.run_multi(conn_index, conn, finish, parts.into_iter());
}

/// The read of one key of a retrieval command (with a new expiry for `gat` / `gats`).
fn read(key: &[u8], touch: Option<Expiry>) -> Op<'_> {
    let key = Cow::Borrowed(key);
    match touch {
        Some(expiry) => Op::GetAndExpire { key, expiry },
        None => Op::Get { key },
    }
}

/// `get`, `gets`, `gat`, `gats`: one read per key, answered with VALUE lines and END.
fn retrieve(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    keys: Keys<'_>,
    touch: Option<Expiry>,
    cas: bool,
    now: u64,
) {
    // memcached counts a touching read as a touch only (cmd_touch, counted by the caller).
    if touch.is_none() {
        stats::count(core.id, |counters| &counters.cmd_get, keys.count() as u64);
    }
    if keys.iter().all(|key| core.owner(key) == core.id) {
        // Every key is ours: read and encode straight into the reply, borrowing the values.
        let out = conn.reply_buffer();
        let shard = core.id;
        for key in keys.iter() {
            let outcome = core.execute(&read(key, touch), now);
            finish::count_retrieval(&outcome, touch.is_some(), shard);
            finish::value_line(out, key, &outcome, cas);
        }
        reply::status(out, reply::Status::End);
        return;
    }
    let mut joined = Vec::with_capacity(keys.iter().map(|key| key.len() + 1).sum());
    for key in keys.iter() {
        if !joined.is_empty() {
            joined.push(b' ');
        }
        joined.extend_from_slice(key);
    }
    let finish = Finish::Values {
        keys: joined.into_boxed_slice(),
        cas,
        touch: touch.is_some(),
        shard: core.id,
    };
    let shards = core.shared.shard_count;
    let parts = keys
        .iter()
        .map(|key| (owner_of(key, shards), read(key, touch)));
    route(core, conn_index, conn, finish, parts);
}

/// The CAS value of an item is where it lives (`segment generation << 24 | offset`), not a
/// stored field, so a client-chosen one (`E`) cannot be kept: refused with a SERVER_ERROR.
const EXPLICIT_CAS_UNSUPPORTED: &str =
    "E (explicit CAS value) is not supported: a CAS value is the item's location";

/// At most two ops: an `ms` in append or prepend mode with `c` reads the new CAS after it.
const META_OPS_MAX: usize = 2;

/// The ops of one meta command, kept on the stack.
pub(super) struct MetaOps<'a> {
    slots: [Option<Op<'a>>; META_OPS_MAX],
    len: usize,
}

impl<'a> MetaOps<'a> {
    fn push(&mut self, op: Op<'a>) {
        assert!(
            self.len < META_OPS_MAX,
            "a meta command lowers to at most {META_OPS_MAX} ops"
        );
        self.slots[self.len] = Some(op);
        self.len += 1;
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Op<'a>> {
        self.slots[..self.len].iter().flatten()
    }
}

/// `op`, guarded by the request's `C` flag when it has one.
fn compared<'a>(compare_cas: Option<u64>, op: Op<'a>) -> Op<'a> {
    match compare_cas {
        Some(cas) => Op::IfCas {
            cas,
            op: Box::new(op),
        },
        None => op,
    }
}

/// The ops a meta command lowers to: one that does all of the command on the owner shard, and
/// for `ms` in append or prepend mode with `c` a read of the new CAS after it
/// ([`finish::meta`] reads their outcomes in this order).
pub(super) fn meta_ops<'a>(
    kind: MetaKind,
    key: &'a [u8],
    flags: &MetaFlags<'_>,
    data: &'a [u8],
    now: u64,
) -> MetaOps<'a> {
    let key = || Cow::Borrowed(key);
    let mut ops = MetaOps {
        slots: [const { None }; META_OPS_MAX],
        len: 0,
    };
    let ttl = flags.ttl.map(|ttl| expiry(ttl, now));
    match kind {
        MetaKind::Get | MetaKind::Debug => {
            let read = if kind == MetaKind::Get {
                MetaRead {
                    touch: !flags.has(b'u'),
                    claim_win: true,
                    expiry: ttl,
                    vivify: flags.vivify_ttl.map(|ttl| expiry(ttl, now)),
                    recache_within_ms: flags
                        .recache_ttl
                        .map(|seconds| seconds.max(0).unsigned_abs().saturating_mul(1000)),
                }
            } else {
                // `me` looks without leaving a trace.
                MetaRead {
                    touch: false,
                    claim_win: false,
                    expiry: None,
                    vivify: None,
                    recache_within_ms: None,
                }
            };
            ops.push(Op::MetaGet { key: key(), read });
        }
        MetaKind::Set => {
            let mode = flags.mode.unwrap_or(MetaMode::Set);
            match mode {
                MetaMode::Append | MetaMode::Prepend => {
                    let concat = Op::Concat {
                        key: key(),
                        value: Cow::Borrowed(data),
                        prepend: mode == MetaMode::Prepend,
                        create: flags.vivify_ttl.map(|ttl| Creation {
                            flags: flags.client_flags.unwrap_or(0),
                            expiry: expiry(ttl, now),
                        }),
                    };
                    ops.push(compared(flags.compare_cas, concat));
                    if flags.has(b'c') {
                        ops.push(Op::Get { key: key() });
                    }
                }
                _ => {
                    // memcached: C turns set and replace into cas (with I, an older CAS stores
                    // the value marked stale); add ignores it.
                    let condition = match (flags.compare_cas, mode) {
                        (_, MetaMode::Add) => Condition::IfAbsent,
                        (Some(cas), _) if flags.has(b'I') => Condition::IfCasOrStale(cas),
                        (Some(cas), _) => Condition::IfCas(cas),
                        (None, MetaMode::Replace) => Condition::IfPresent,
                        (None, _) => Condition::Always,
                    };
                    ops.push(Op::Set {
                        key: key(),
                        value: Cow::Borrowed(data),
                        flags: flags.client_flags.unwrap_or(0),
                        expiry: ttl.unwrap_or(Expiry::Never),
                        condition,
                        return_old: false,
                    });
                }
            }
        }
        MetaKind::Delete => {
            let op = if flags.has(b'x') {
                Op::RemoveValue {
                    key: key(),
                    expiry: ttl.unwrap_or(Expiry::Never),
                    stale: flags.has(b'I'),
                }
            } else if flags.has(b'I') {
                Op::Invalidate {
                    key: key(),
                    expiry: ttl,
                }
            } else {
                Op::Delete { key: key() }
            };
            ops.push(compared(flags.compare_cas, op));
        }
        MetaKind::Arithmetic => {
            ops.push(Op::MetaArithmetic {
                key: key(),
                arithmetic: MetaArithmetic {
                    delta: UnsignedDelta {
                        magnitude: flags.delta.unwrap_or(1),
                        decrement: flags.mode == Some(MetaMode::Decrement),
                    },
                    compare_cas: flags.compare_cas,
                    expiry: ttl,
                    vivify: flags.vivify_ttl.map(|ttl| expiry(ttl, now)),
                    initial: flags.initial.unwrap_or(0),
                },
            });
        }
    }
    ops
}

#[allow(clippy::too_many_arguments)] // one meta request, taken apart by the parser
fn meta(
    core: &mut Core,
    conn_index: u32,
    conn: &mut Conn,
    kind: MetaKind,
    key: &MetaKey<'_>,
    flags: &MetaFlags<'_>,
    data: &[u8],
    now: u64,
) {
    match kind {
        // An mg that sets a TTL is a touch if it hits, a get if not: counted with its outcome.
        MetaKind::Get if flags.ttl.is_some() => {}
        MetaKind::Get => stats::count(core.id, |counters| &counters.cmd_get, 1),
        MetaKind::Set => stats::count(core.id, |counters| &counters.cmd_set, 1),
        _ => {}
    }
    if flags.new_cas.is_some() {
        reply::server_error(conn.reply_buffer(), EXPLICIT_CAS_UNSUPPORTED);
        return;
    }
    let ops = meta_ops(kind, key.bytes(), flags, data, now);
    let target = core.owner(key.bytes());
    let shard = core.id;
    if target == shard {
        let out = conn.reply_buffer();
        let mut ops = ops.iter();
        let Some(first) = ops.next() else { return };
        match ops.next() {
            // The common case (mg, ms, md, ma): one op, its outcome borrowed from the store.
            None => {
                let outcome = core.execute(first, now);
                finish::meta(out, kind, key, flags, std::slice::from_ref(&outcome), shard);
            }
            Some(second) => {
                let first = core.execute(first, now).into_owned();
                let outcomes = [first, core.execute(second, now)];
                finish::meta(out, kind, key, flags, &outcomes, shard);
            }
        }
        return;
    }
    let finish = Finish::Meta(MetaRequest::new(kind, key, flags, shard));
    route(
        core,
        conn_index,
        conn,
        finish,
        ops.iter().map(|op| (target, op.clone())),
    );
}
